//! kill -9 right after writes were acknowledged loses none of them.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn kill_9_after_acknowledged_writes_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    init_data(&data, "a@k.ru", "crash-test-1");

    let srv = Server::start(&data);
    let tok = token(&srv.base, "a@k.ru", "crash-test-1").await;
    let client = reqwest::Client::new();

    // Sequential acknowledged creates, updates and a delete, then concurrent creates; kill -9 the
    // moment the last acknowledgement arrives.
    let mut ids = Vec::new();
    for i in 0..40 {
        let r = client
            .post(format!("{}/api/v1/contacts", srv.base))
            .bearer_auth(&tok)
            .json(&json!({"first_name": format!("C{i}"), "email": format!("c{i}@k.ru")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let r = client
        .patch(format!("{}/api/v1/contacts/{}", srv.base, ids[0]))
        .bearer_auth(&tok)
        .json(&json!({"last_name": "Updated"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .delete(format!("{}/api/v1/contacts/{}", srv.base, ids[1]))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (c, base, tok) = (client.clone(), srv.base.clone(), tok.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(format!("{base}/api/v1/contacts"))
                .bearer_auth(&tok)
                .json(&json!({"first_name": format!("P{i}")}))
                .send()
                .await
                .ok()?;
            (r.status() == StatusCode::CREATED).then_some(())?;
            r.json::<Value>().await.ok()?["id"]
                .as_str()
                .map(str::to_string)
        }));
    }
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            ids.push(id);
        }
    }
    srv.kill9();

    let srv = Server::start(&data);
    let tok = token(&srv.base, "a@k.ru", "crash-test-1").await;
    for (i, id) in ids.iter().enumerate() {
        let r = client
            .get(format!("{}/api/v1/contacts/{id}", srv.base))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if i == 1 {
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body["error"]["code"], "in_trash");
        } else {
            assert_eq!(
                status,
                StatusCode::OK,
                "acknowledged contact {id} lost: {body}"
            );
        }
        if i == 0 {
            assert_eq!(body["last_name"], "Updated");
        }
    }
    // The journal survived too: one create per acknowledged contact, contiguous seqs.
    let r = client
        .get(format!(
            "{}/api/v1/history?entity=contacts&op=create&limit=500&order=asc",
            srv.base
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), ids.len());
    let r = client
        .get(format!("{}/api/v1/history?limit=500&order=asc", srv.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    let all: Value = r.json().await.unwrap();
    let seqs: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "journal seqs have a gap"
    );
}
