//! The backup admin API through the real binary: an admin starts a snapshot and a verification
//! as jobs and follows them at `/api/v1/jobs/{id}`; the list shows the archives with their
//! verification and the log with who did what; the status shows shipping and lag; a manager
//! is refused everywhere and cannot see an admin's job.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const PW: &str = "admin-api-test-1";

async fn call(method: &str, url: &str, tok: &str) -> (StatusCode, Value, Option<String>) {
    let client = reqwest::Client::new();
    let req = match method {
        "POST" => client.post(url).json(&json!({})),
        _ => client.get(url),
    };
    let r = req.bearer_auth(tok).send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), location)
}

/// Polls a job until it ends; returns its last state.
async fn finished(base: &str, tok: &str, location: &str) -> Value {
    for _ in 0..600 {
        let (s, job, _) = call("GET", &format!("{base}{location}"), tok).await;
        assert_eq!(s, StatusCode::OK, "{job}");
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {location} did not end within 30 s");
}

#[tokio::test]
async fn an_admin_snapshots_verifies_and_follows_jobs_and_a_manager_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_with(&data, &["--backup-to", target.to_str().unwrap()]);
    let base = srv.base.clone();
    let admin = token(&base, "a@k.ru", PW).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "m@k.ru", "name": "M", "role": "manager", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let manager = token(&base, "m@k.ru", PW).await;

    // Start a snapshot; follow the job to its end.
    let (s, job, location) = call("POST", &format!("{base}/api/v1/admin/backups"), &admin).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let location = location.expect("Location of the job");
    assert_eq!(
        location,
        format!("/api/v1/jobs/{}", job["id"].as_str().unwrap())
    );
    let done = finished(&base, &admin, &location).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["kind"], "backup.create");
    let archive = done["result"]["archive"].as_str().unwrap().to_string();
    assert!(
        done["result"]["verified_seconds"].as_f64().is_some(),
        "{done}"
    );
    assert!(
        done["progress"]["done"].as_i64().unwrap() > 0,
        "progress was reported: {done}"
    );

    // Listed, verified, logged with who did it.
    let (s, list, _) = call("GET", &format!("{base}/api/v1/admin/backups"), &admin).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let listed = list["archives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == archive.as_str())
        .unwrap_or_else(|| panic!("{archive} not listed: {list}"));
    assert_eq!(listed["verification"]["ok"], true, "{listed}");
    assert!(
        !listed["retention"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    let by_api = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["by"].as_str().unwrap_or("").starts_with("api:"))
        .count();
    assert!(
        by_api >= 2,
        "create and verify by the API are logged: {list}"
    );

    // Verify it again on request.
    let (s, job, location) = call(
        "POST",
        &format!("{base}/api/v1/admin/backups/{archive}/verify"),
        &admin,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let done = finished(&base, &admin, &location.unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["subject"], archive.as_str());
    let missing = "kontor-20200101T000000.000Z-seq000000000001.kontor.tar";
    let (s, _, _) = call(
        "POST",
        &format!("{base}/api/v1/admin/backups/{missing}/verify"),
        &admin,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Status: shipping runs, nothing lags, the newest verified snapshot is named.
    let (s, status, _) = call(
        "GET",
        &format!("{base}/api/v1/admin/backups/status"),
        &admin,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{status}");
    assert_eq!(status["shipping"]["running"], true, "{status}");
    assert!(
        status["shipping"]["lag_seconds"].as_f64().unwrap() < 5.0,
        "{status}"
    );
    assert!(status["newest_verified"]["id"].is_string(), "{status}");
    assert_eq!(status["failed_verifications"], json!([]));

    // A manager: refused, and the admin's job is not theirs to see.
    for (method, path) in [
        ("GET", "/api/v1/admin/backups"),
        ("POST", "/api/v1/admin/backups"),
        ("GET", "/api/v1/admin/backups/status"),
    ] {
        let (s, _, _) = call(method, &format!("{base}{path}"), &manager).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let job_url = format!("{base}{}", location_of(&done));
    let (s, _, _) = call("GET", &job_url, &manager).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

fn location_of(job: &Value) -> String {
    format!("/api/v1/jobs/{}", job["id"].as_str().unwrap())
}
