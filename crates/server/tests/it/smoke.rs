use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

async fn health_login_create_read(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (s, v) = srv.anon().get("/healthz").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, _) = srv.anon().get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
    let admin = srv.admin().await;
    let c = admin
        .create("companies", json!({"name": "Acme", "inn": "7707083893"}))
        .await;
    let (s, got) = admin.get(&format!("/api/v1/companies/{}", id(&c))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["name"], "Acme");
    assert_eq!(got["owner_id"], json!(admin.user_id));
    srv.stop().await;
}

crate::engine_tests!(health_login_create_read,);
