//! Test harness: a real Kontor HTTP server on a random loopback port over a real database — a
//! SQLite file in a temporary directory, or a fresh PostgreSQL database — and a small JSON
//! client. Each test gets its own server and database.

use kontor_core::{Kontor, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::permission::Actor;
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::DynStore;
pub use kontor_testkit::Engine;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestServer {
    pub base: String,
    pub kontor: Arc<Kontor>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<kontor_server::lifecycle::StopReport>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(engine: Engine) -> TestServer {
        Self::start_with(engine, Settings::default()).await
    }

    pub async fn start_with(engine: Engine, settings: Settings) -> TestServer {
        Self::start_full(engine, settings, kontor_server::HttpConfig::default()).await
    }

    pub async fn start_full(
        engine: Engine,
        settings: Settings,
        mut http: kontor_server::HttpConfig,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        if http.transfer.is_none() {
            http.transfer = Some(Arc::new(kontor_server::transfer::TransferDesk::new(
                dir.path(),
            )));
        }
        if http.search.is_none() {
            http.search = Some(Arc::new(
                kontor_search::Search::open(&dir.path().join("search")).expect("search index"),
            ));
        }
        let store: DynStore = match engine {
            Engine::Sqlite => Arc::new(
                SqliteStore::open(&dir.path().join("kontor.db"))
                    .await
                    .expect("open SQLite store"),
            ),
            Engine::Postgres => {
                let pg = kontor_testkit::postgres().expect("PostgreSQL for tests");
                let url = pg.fresh_database().await;
                Arc::new(PgStore::connect(&url).await.expect("open PostgreSQL store"))
            }
        };
        let kontor = Arc::new(Kontor::new(store, settings));
        let mut fields = Map::new();
        fields.insert("email".into(), json!(ADMIN_EMAIL));
        fields.insert("role".into(), json!("admin"));
        kontor
            .add_user(&Actor::system(), Origin::System, fields, ADMIN_PASSWORD)
            .await
            .expect("create admin");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(kontor_server::serve(
            kontor.clone(),
            listener,
            kontor_server::jobs::JobConfig::default(),
            http,
            async {
                let _ = rx.await;
            },
        ));
        TestServer {
            base,
            kontor,
            client: reqwest::Client::new(),
            stop: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// A client with no token.
    pub fn anon(&self) -> Api {
        Api {
            base: self.base.clone(),
            client: self.client.clone(),
            token: None,
            user_id: String::new(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Api {
        let (status, body) = self
            .anon()
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {email} failed: {body}");
        Api {
            base: self.base.clone(),
            client: self.client.clone(),
            token: body["token"].as_str().map(str::to_string),
            user_id: body["user"]["id"].as_str().unwrap_or_default().to_string(),
        }
    }

    pub async fn admin(&self) -> Api {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` (and optional team) through the API and logs them in.
    pub async fn user(&self, email: &str, role: &str, team_id: Option<&str>) -> Api {
        let admin = self.admin().await;
        let mut body = json!({"email": email, "password": "user-password-1", "role": role});
        if let Some(t) = team_id {
            body["team_id"] = json!(t);
        }
        let (status, created) = admin.post("/api/v1/users", body).await;
        assert_eq!(status, StatusCode::CREATED, "create user: {created}");
        self.login(email, "user-password-1").await
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// A JSON client, optionally authenticated.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub token: Option<String>,
    pub user_id: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON body for {path}: {text}"))
        };
        (status, value)
    }

    /// Sends a raw body with a content type, for malformed-input tests.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a record and returns it, failing the test on any other status.
    pub async fn create(&self, entity: &str, body: Value) -> Value {
        let (status, v) = self.post(&format!("/api/v1/{entity}"), body).await;
        assert_eq!(status, StatusCode::CREATED, "create {entity}: {v}");
        v
    }
}

/// A query-string value, percent-encoded.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The id of a record returned by the API.
pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("record has an id").to_string()
}

/// Asserts an error response: status, code and (when given) the field it names.
pub fn assert_error(
    got: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(got.0, status, "unexpected status; body {}", got.1);
    assert_eq!(
        got.1["error"]["code"], code,
        "unexpected code; body {}",
        got.1
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without message: {}",
        got.1
    );
    if let Some(f) = field {
        assert_eq!(
            got.1["error"]["field"], f,
            "unexpected field; body {}",
            got.1
        );
    }
}
