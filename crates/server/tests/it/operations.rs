//! Maintenance mode and the announced shutdown through the HTTP API: only admins switch or
//! schedule (refusals recorded); while maintenance lasts writes get 503 with `Retry-After` and
//! the message, reads and logins go on, `/readyz` is not ready; every user sees the
//! announcements. (The stop itself, through the real binary, is in the CLI tests.)

use crate::support::{Engine, TestServer};
use reqwest::StatusCode;
use serde_json::json;

async fn maintenance_freezes_writes_for_everyone_and_only_admins_switch_it(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let manager = srv.user("m@k.ru", "manager", None).await;
    let kept = manager.create("companies", json!({"name": "Альфа"})).await;

    let (s, state) = admin.get("/api/v1/admin/maintenance").await;
    assert_eq!(
        (s, state["read_only"].clone()),
        (StatusCode::OK, json!(false))
    );

    // A manager may not switch it; the attempt is recorded.
    let (s, refused) = manager
        .put("/api/v1/admin/maintenance", json!({"on": true}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{refused}");
    let recorded = srv
        .kontor
        .store
        .jobs("maintenance", None, 10)
        .await
        .unwrap();
    assert!(
        recorded
            .iter()
            .any(|r| r.state == "refused" && r.created_by == manager.user_id),
        "{recorded:?}"
    );

    // Bad input names the field.
    let (s, bad) = admin
        .put("/api/v1/admin/maintenance", json!({"on": "yes"}))
        .await;
    assert_eq!(
        (s, bad["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("on"))
    );
    let (s, bad) = admin
        .put(
            "/api/v1/admin/maintenance",
            json!({"on": true, "retry_after_seconds": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    let (s, on) = admin
        .put(
            "/api/v1/admin/maintenance",
            json!({"on": true, "message": "Обновление до 15:00", "retry_after_seconds": 90}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{on}");
    assert_eq!(
        (on["read_only"].clone(), on["reason"].clone()),
        (json!(true), json!("maintenance"))
    );

    // Writes are refused with the message and when to come back; nothing is written.
    let head = srv.kontor.store.journal_head().await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/companies", srv.base))
        .bearer_auth(manager.token.as_deref().unwrap())
        .json(&json!({"name": "Бета"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "90");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "read_only", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Обновление до 15:00"),
        "{body}"
    );
    let id = kept["id"].as_str().unwrap();
    let (s, _) = manager
        .patch(&format!("/api/v1/companies/{id}"), json!({"name": "Гамма"}))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _) = admin.delete(&format!("/api/v1/companies/{id}")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(srv.kontor.store.journal_head().await.unwrap(), head);

    // Reads and logins go on; readiness says why not; every user is told.
    let (s, list) = manager.get("/api/v1/companies").await;
    assert_eq!(
        (s, list["items"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let again = srv.login("m@k.ru", "user-password-1").await;
    let (s, ready) = srv.anon().get("/readyz").await;
    assert_eq!(
        (s, ready["status"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("maintenance"))
    );
    let (s, told) = again.get("/api/v1/announcements").await;
    assert_eq!(s, StatusCode::OK);
    let told = &told["announcements"];
    assert_eq!(told.as_array().unwrap().len(), 1, "{told}");
    assert_eq!(
        (told[0]["kind"].clone(), told[0]["message"].clone()),
        (json!("read_only"), json!("Обновление до 15:00"))
    );

    // A second store on the same database (another node, or the one after a restart) finds
    // the freeze too.
    assert!(srv.kontor.store.read_only().await.unwrap().is_some());

    let (s, off) = admin
        .put("/api/v1/admin/maintenance", json!({"on": false}))
        .await;
    assert_eq!(
        (s, off["read_only"].clone()),
        (StatusCode::OK, json!(false)),
        "{off}"
    );
    manager.create("companies", json!({"name": "Бета"})).await;
    let (s, _) = srv.anon().get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
    srv.stop().await;
}

async fn a_shutdown_is_scheduled_announced_and_cancelled_by_admins_only(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let manager = srv.user("m@k.ru", "manager", None).await;

    let (s, refused) = manager
        .post(
            "/api/v1/admin/shutdown",
            json!({"in_seconds": 60, "message": "mine"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{refused}");
    let (s, _) = manager.delete("/api/v1/admin/shutdown").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let recorded = srv.kontor.store.jobs("shutdown", None, 10).await.unwrap();
    assert_eq!(
        recorded
            .iter()
            .filter(|r| r.state == "refused" && r.created_by == manager.user_id)
            .count(),
        2,
        "{recorded:?}"
    );

    for (body, field) in [
        (json!({}), "at"),
        (json!({"at": "tomorrow"}), "at"),
        (
            json!({"at": "2030-01-01T00:00:00Z", "in_seconds": 5}),
            "in_seconds",
        ),
        (json!({"in_seconds": -5}), "in_seconds"),
        (json!({"in_seconds": 60, "when": 1}), "when"),
    ] {
        let (s, bad) = admin.post("/api/v1/admin/shutdown", body.clone()).await;
        assert_eq!(
            (s, bad["error"]["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field)),
            "{body}: {bad}"
        );
    }

    let (s, plan) = admin
        .post(
            "/api/v1/admin/shutdown",
            json!({"in_seconds": 3600, "message": "Плановое обслуживание"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{plan}");
    assert_eq!(plan["scheduled"], true);
    assert_eq!(plan["reminders"].as_array().unwrap().len(), 3, "{plan}");
    let (s, told) = manager.get("/api/v1/announcements").await;
    assert_eq!(s, StatusCode::OK);
    let first = &told["announcements"][0];
    assert_eq!(
        (first["kind"].clone(), first["message"].clone()),
        (json!("shutdown"), json!("Плановое обслуживание")),
        "{told}"
    );
    assert_eq!(first["at"], plan["at"]);
    assert!(
        (3590..=3600).contains(&first["seconds_left"].as_i64().unwrap()),
        "{first}"
    );
    // Writes go on until the time.
    manager.create("companies", json!({"name": "Альфа"})).await;

    // Moved: the old one is cancelled, one is announced.
    let (s, moved) = admin
        .post("/api/v1/admin/shutdown", json!({"in_seconds": 7200}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{moved}");
    let old = srv
        .kontor
        .store
        .job(plan["job"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.state, "cancelled");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, told) = manager.get("/api/v1/announcements").await;
    assert_eq!(told["announcements"].as_array().unwrap().len(), 1, "{told}");
    assert_eq!(told["announcements"][0]["at"], moved["at"]);

    let (s, cancelled) = admin.delete("/api/v1/admin/shutdown").await;
    assert_eq!(
        (s, cancelled["cancelled"].clone()),
        (StatusCode::OK, moved["job"].clone()),
        "{cancelled}"
    );
    let (_, state) = admin.get("/api/v1/admin/shutdown").await;
    assert_eq!(state["scheduled"], false);
    let (_, told) = manager.get("/api/v1/announcements").await;
    assert_eq!(told["announcements"], json!([]), "{told}");
    srv.stop().await;
}

crate::engine_tests!(
    maintenance_freezes_writes_for_everyone_and_only_admins_switch_it,
    a_shutdown_is_scheduled_announced_and_cancelled_by_admins_only,
);
