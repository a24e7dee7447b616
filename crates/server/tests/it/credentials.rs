//! Credentials are not business data: password hashes never show up in history, search or
//! images, a password change is recorded as such, and undo or restore never bring an old
//! password back.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

/// Creates a user with a password and returns (admin client, user id).
async fn user_with_password(srv: &TestServer, email: &str, password: &str) -> (Api, String) {
    let admin = srv.admin().await;
    let (s, u) = admin
        .post(
            "/api/v1/users",
            json!({"email": email, "password": password, "role": "manager", "name": "Vera"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    (admin, id(&u))
}

async fn login_status(srv: &TestServer, email: &str, password: &str) -> StatusCode {
    srv.anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
        .0
}

async fn undoing_a_password_change_keeps_the_new_password(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, uid) = user_with_password(&srv, "vera@firm.ru", "old-password-1").await;
    let created = mark().await;
    let (s, changed) = admin
        .patch(
            &format!("/api/v1/users/{uid}"),
            json!({"password": "new-password-2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert!(changed["password_changed_at"].is_string(), "{changed}");

    // The change is in the history as a password change, with no hash anywhere.
    let hist = items(&admin, &format!("/api/v1/users/{uid}/history")).await;
    let latest = &hist[0];
    let fields: Vec<&str> = latest["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["password_changed_at"], "{latest}");
    let all = admin
        .get("/api/v1/history?entity=users")
        .await
        .1
        .to_string();
    assert!(!all.contains("argon2"), "a hash leaked into history: {all}");
    let batch = latest["batch"].as_str().unwrap().to_string();

    // Undo of that batch says what it left alone and changes nothing.
    let (s, undone) = admin
        .post("/api/v1/history/undo", json!({"batch": batch}))
        .await;
    assert_eq!(s, StatusCode::OK, "{undone}");
    assert_eq!(undone["changes"], json!([]), "{undone}");
    assert_eq!(
        undone["skipped"][0]["field"], "password_changed_at",
        "{undone}"
    );
    assert_eq!(
        login_status(&srv, "vera@firm.ru", "new-password-2").await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&srv, "vera@firm.ru", "old-password-1").await,
        StatusCode::UNAUTHORIZED
    );

    // Nor does undoing everything the admin did since the user was created.
    let (s, r) = admin
        .post(
            "/api/v1/history/undo",
            json!({"actor": admin.user_id, "from": created, "to": now()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["skipped"][0]["field"], "password_changed_at", "{r}");
    assert_eq!(
        login_status(&srv, "vera@firm.ru", "new-password-2").await,
        StatusCode::OK
    );
}

async fn restoring_a_user_to_the_past_never_touches_the_password(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, uid) = user_with_password(&srv, "ivan@firm.ru", "first-password-1").await;
    let t0 = mark().await;
    let (s, _) = admin
        .patch(
            &format!("/api/v1/users/{uid}"),
            json!({"name": "Ivan Petrov", "password": "second-password-2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, r) = admin
        .post(&format!("/api/v1/users/{uid}/restore"), json!({"at": t0}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["record"]["name"], "Vera", "fields come back: {r}");
    assert_eq!(r["skipped"][0]["field"], "password_changed_at", "{r}");
    assert_eq!(
        login_status(&srv, "ivan@firm.ru", "second-password-2").await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&srv, "ivan@firm.ru", "first-password-1").await,
        StatusCode::UNAUTHORIZED
    );
}

async fn search_never_matches_a_password_hash(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, _) = user_with_password(&srv, "olga@firm.ru", "some-password-1").await;
    for q in ["argon2id", "$argon2", "m=19456", "v=19"] {
        let got = items(&admin, &format!("/api/v1/users?q={}", urlencode(q))).await;
        assert!(got.is_empty(), "q={q} matched {got:?}");
    }
    let got = items(&admin, "/api/v1/users?q=olga").await;
    assert_eq!(got.len(), 1);
    assert!(got[0].get("password_hash").is_none());
    let (s, e) = admin.get("/api/v1/users?password_hash=x").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

async fn a_deleted_user_comes_back_from_the_bin_with_their_password(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, uid) = user_with_password(&srv, "petr@firm.ru", "kept-password-1").await;
    let (s, _) = admin.delete(&format!("/api/v1/users/{uid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        login_status(&srv, "petr@firm.ru", "kept-password-1").await,
        StatusCode::UNAUTHORIZED
    );
    let trash = items(&admin, "/api/v1/trash?entity=users").await;
    assert_eq!(ids(&trash), vec![uid.clone()]);
    let (s, r) = admin
        .post(&format!("/api/v1/trash/users/{uid}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        login_status(&srv, "petr@firm.ru", "kept-password-1").await,
        StatusCode::OK
    );
    // A manager sees no users in the bin and cannot restore one.
    let m = srv.user("m@firm.ru", "manager", None).await;
    let (s, _) = m
        .post(&format!("/api/v1/trash/users/{uid}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

crate::engine_tests!(
    undoing_a_password_change_keeps_the_new_password,
    restoring_a_user_to_the_past_never_touches_the_password,
    search_never_matches_a_password_hash,
    a_deleted_user_comes_back_from_the_bin_with_their_password,
);
