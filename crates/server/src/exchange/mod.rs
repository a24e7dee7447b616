//! The 1C:Enterprise exchange over HTTP ("exchange with a site", CommerceML): 1C calls
//! `/1c_exchange` (or `/bitrix/admin/1c_exchange.php`, so settings written for a 1C-Bitrix site
//! work unchanged) with `type` and `mode`. Every answer is plain text whose first line is
//! `success`, `progress` or `failure` — never an HTML page — except `checkauth` (cookie lines)
//! and `init` (`key=value` lines), as `COMMERCEML.md` §1 describes.
//!
//! A session starts at `checkauth` (HTTP Basic, users of role `exchange` only, rate limited as
//! logins are) and is carried by a cookie; every later call may also come with Basic
//! credentials instead. Uploaded files live in a folder of the session on this node (behind a
//! load balancer, route one 1C session to one node), and a catalog's files are imported by a
//! background run ([`catalog_run`]) that answers `progress` until each file is applied.

pub mod catalog_run;
pub mod upload;

use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use catalog_run::{CatalogRun, FileState, RunSetup};
use kontor_core::auth;
use kontor_domain::Actor;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie that carries an exchange session.
pub const COOKIE: &str = "kontor_exchange";

/// How the exchange behaves on this server.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// Where sessions keep their uploads (one folder per session).
    pub upload_dir: PathBuf,
    /// Largest request body 1C may send at once (`file_limit=` of `init`).
    pub file_limit: u64,
    /// Whether 1C may send zip archives (`zip=yes`).
    pub zip: bool,
    /// Largest file (or unpacked zip) one exchange may upload.
    pub max_file_bytes: u64,
    /// How long an `import` works before it answers `progress` (1C asks again).
    pub step_time: Duration,
    /// A catalog run ends after this long without a request of its session.
    pub idle_end: Duration,
    pub import: kontor_exchange::Options,
}

impl ExchangeConfig {
    pub fn new(upload_dir: PathBuf) -> ExchangeConfig {
        ExchangeConfig {
            upload_dir,
            file_limit: 8 * 1024 * 1024,
            zip: true,
            max_file_bytes: 4 * 1024 * 1024 * 1024,
            step_time: Duration::from_secs(20),
            idle_end: Duration::from_secs(120),
            import: kontor_exchange::Options::default(),
        }
    }
}

/// The exchange sessions this node serves.
pub struct ExchangeDesk {
    pub config: ExchangeConfig,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<ExchangeSession>>>>,
}

/// One 1C session on this node.
struct ExchangeSession {
    actor: Actor,
    sessid: String,
    /// This session's upload folder.
    dir: PathBuf,
    /// `version=` 1C asked for at `init` (the sale side's "new protocol").
    version: Option<String>,
    catalog: Option<CatalogRun>,
    last_seen: Arc<Mutex<Instant>>,
}

impl ExchangeDesk {
    pub fn new(config: ExchangeConfig) -> Arc<ExchangeDesk> {
        Arc::new(ExchangeDesk {
            config,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The session under `key`, made on first use.
    fn session(&self, key: &str, actor: Actor) -> Arc<tokio::sync::Mutex<ExchangeSession>> {
        let mut sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let session = sessions.entry(key.to_string()).or_insert_with(|| {
            Arc::new(tokio::sync::Mutex::new(ExchangeSession {
                actor: actor.clone(),
                sessid: sessid_for(key),
                dir: self.config.upload_dir.join(key),
                version: None,
                catalog: None,
                last_seen: Arc::new(Mutex::new(Instant::now())),
            }))
        });
        session.clone()
    }

    /// Drops sessions (and their folders) idle for a day.
    async fn prune(&self) {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let stale: Vec<(String, Arc<tokio::sync::Mutex<ExchangeSession>>)> = {
            let sessions = match self.sessions.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            sessions
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        };
        for (key, session) in stale {
            let Ok(s) = session.try_lock() else { continue };
            let quiet = s.last_seen.lock().map(|t| t.elapsed()).unwrap_or_default();
            if quiet > DAY && s.catalog.as_ref().is_none_or(CatalogRun::is_ended) {
                let _ = std::fs::remove_dir_all(&s.dir);
                drop(s);
                if let Ok(mut sessions) = self.sessions.lock() {
                    sessions.remove(&key);
                }
            }
        }
    }
}

/// An answer 1C reads: text in windows-1251 (what 1C expects from a site; every character
/// 1C's messages use fits), status 200.
fn text(body: &str) -> Response {
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(body);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=windows-1251"),
        )],
        bytes.into_owned(),
    )
        .into_response()
}

fn success(details: &str) -> Response {
    text(&format!("success\n{details}"))
}

fn failure(details: &str) -> Response {
    text(&format!("failure\n{details}"))
}

fn progress(details: &str) -> Response {
    text(&format!("progress\n{details}"))
}

/// The query parameters 1C sends; others (and repeats) are ignored, as a site does.
#[derive(Default)]
struct Params {
    kind: Option<String>,
    mode: Option<String>,
    filename: Option<String>,
    version: Option<String>,
}

fn params(uri: &Uri) -> Params {
    let pairs: Vec<(String, String)> = uri
        .query()
        .and_then(|q| {
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
                &format!("/?{q}").parse().ok()?,
            )
            .ok()
        })
        .map(|axum::extract::Query(v)| v)
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    Params {
        kind: get("type"),
        mode: get("mode"),
        filename: get("filename"),
        version: get("version"),
    }
}

/// `Authorization: Basic …` as (login, password).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_string(), password.to_string()))
}

/// The exchange cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
}

/// `GET|POST /1c_exchange?type=…&mode=…`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let Some(desk) = state.http.exchange.clone() else {
        return failure("the 1C exchange is not set up on this server");
    };
    let p = params(&uri);
    let kind = p.kind.clone().unwrap_or_default();
    if kind != "catalog" && kind != "sale" {
        return failure(&format!(
            "Unknown command type '{kind}'; this server exchanges type=catalog and type=sale"
        ));
    }
    let client = state
        .http
        .trusted_proxies
        .client(peer, &headers)
        .to_string();
    let mode = p.mode.clone().unwrap_or_default();
    if mode == "checkauth" {
        return checkauth(&state, &desk, &headers, &client).await;
    }
    let (key, actor) = match caller(&state, &headers, &client).await {
        Ok(c) => c,
        Err(message) => return failure(&message),
    };
    let session = desk.session(&key, actor);
    let mut s = session.lock().await;
    if let Ok(mut t) = s.last_seen.lock() {
        *t = Instant::now();
    }
    let dir = s.dir.join(&kind);
    match mode.as_str() {
        "init" => init(&desk, &mut s, &kind, &p, &dir).await,
        "file" => file(&desk, &mut s, &kind, &p, &dir, &headers, body).await,
        "import" if kind == "catalog" => {
            import_catalog(&state, &desk, &mut s, &p, dir, &client).await
        }
        "deactivate" | "complete" if kind == "catalog" => {
            end_catalog(&desk, &mut s, mode == "deactivate").await
        }
        "import" | "query" | "success" | "complete" => failure(&format!(
            "type=sale is not served yet by this Kontor version (mode={mode})"
        )),
        "" => failure("the request names no mode (checkauth, init, file, import, …)"),
        other => failure(&format!(
            "Unknown command '{other}' for type={kind}; expected checkauth, init, file, import{}",
            if kind == "catalog" {
                ", deactivate, complete"
            } else {
                ", query, success"
            }
        )),
    }
}

/// The session key of a cookie session (part of the token's hash: the token itself is never
/// written anywhere, not even as a folder name).
fn cookie_key(token: &str) -> String {
    auth::token_hash(token)[..24].to_string()
}

/// The `sessid=` (1C-Bitrix's CSRF token) of a session: 1C echoes it in later requests, where
/// it is accepted and not needed (the cookie or Basic credentials authenticate).
fn sessid_for(key: &str) -> String {
    auth::token_hash(&format!("sessid:{key}"))[..32].to_string()
}

/// `mode=checkauth`: Basic credentials of an exchange user open a session.
async fn checkauth(
    state: &AppState,
    desk: &ExchangeDesk,
    headers: &HeaderMap,
    client: &str,
) -> Response {
    let Some((login, password)) = basic(headers) else {
        return failure(
            "no credentials: 1C sends the exchange user's name and password (HTTP Basic) with checkauth",
        );
    };
    desk.prune().await;
    match state.kontor.exchange_login(&login, &password, client).await {
        Ok((_, ok)) => {
            let sessid = sessid_for(&cookie_key(&ok.token));
            text(&format!(
                "success\n{COOKIE}\n{}\nsessid={sessid}\ntimestamp={}\n",
                ok.token,
                chrono::Utc::now().timestamp()
            ))
        }
        Err(e) => failure(&login_failure(e)),
    }
}

fn login_failure(e: kontor_core::CoreError) -> String {
    use kontor_core::CoreError;
    match e {
        CoreError::Unauthorized(m) => format!("authorization failed: {m}"),
        CoreError::Domain(d) => d.to_string(),
        other => {
            tracing::error!(error = %other, "exchange login failed");
            "the server could not check the credentials; see its log".to_string()
        }
    }
}

/// Who calls: the session cookie, else Basic credentials. Returns the session key too.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    client: &str,
) -> Result<(String, Actor), String> {
    if let Some(token) = cookie(headers) {
        match auth::actor_for_token(state.kontor.store.as_ref(), &token).await {
            Ok(actor) => {
                auth::require_exchange_role(&actor).map_err(|e| e.to_string())?;
                return Ok((cookie_key(&token), actor));
            }
            Err(e) if basic(headers).is_none() => {
                return Err(format!("the exchange session is not valid ({e}); 1C must log in again (mode=checkauth)"));
            }
            Err(_) => {}
        }
    }
    let Some((login, password)) = basic(headers) else {
        return Err("not logged in: call mode=checkauth first and send its cookie, or send HTTP Basic credentials".into());
    };
    let actor = state
        .kontor
        .exchange_actor(&login, &password, client)
        .await
        .map_err(login_failure)?;
    Ok((format!("user-{}", actor.user_id), actor))
}

/// `mode=init`: a new exchange of this type starts with an empty upload folder; the catalog
/// run of the previous one ends first.
async fn init(
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    kind: &str,
    p: &Params,
    dir: &Path,
) -> Response {
    if kind == "catalog" {
        if let Some(run) = s.catalog.take() {
            run.finish(false);
            // Ending a run is short (what a full upload no longer lists); wait for it, so
            // the next run starts from what this one left.
            while run.wait_end(desk.config.step_time).await.is_none() {}
        }
    }
    if let Err(e) = reset_dir(dir) {
        return failure(&format!("cannot prepare the upload folder: {e}"));
    }
    let zip = if desk.config.zip { "yes" } else { "no" };
    let limit = desk.config.file_limit;
    if kind == "sale" {
        s.version = p.version.clone();
        if let Some(v) = &p.version {
            return text(&format!(
                "zip={zip}\nfile_limit={limit}\nsessid={}\nversion={v}",
                s.sessid
            ));
        }
    }
    text(&format!("zip={zip}\nfile_limit={limit}"))
}

fn reset_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)
}

/// `mode=file&filename=…`: the body is appended to the named file (a big file comes in parts).
async fn file(
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    kind: &str,
    p: &Params,
    dir: &Path,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(raw_name) = p.filename.as_deref() else {
        return failure("mode=file needs filename=");
    };
    let name = match upload::safe_name(raw_name) {
        Ok(n) => n,
        Err(e) => return failure(&e),
    };
    let limit = desk.config.file_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return failure(&format!(
            "the request body of {raw_name} is {n} bytes, more than file_limit={limit}; send the file in parts"
        ));
    }
    let key = name.to_string_lossy().replace('\\', "/");
    if kind == "catalog" {
        if let Some(run) = &s.catalog {
            if !run.forget(&key) {
                return failure(&format!(
                    "{key} is being imported; upload it again after the import has answered"
                ));
            }
        }
    }
    let bytes = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await
    {
        Ok(b) => b,
        Err(e) => {
            return failure(&format!(
                "cannot read the body of {raw_name} (at most file_limit={limit} bytes per request): {e}"
            ))
        }
    };
    if bytes.is_empty() {
        return failure(&format!("the body of {raw_name} is empty"));
    }
    let (dir, max) = (dir.to_path_buf(), desk.config.max_file_bytes);
    let written = tokio::task::spawn_blocking(move || upload::append(&dir, &name, &bytes, max))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match written {
        Ok(size) => success(&format!("{key}: {size} bytes")),
        Err(e) => failure(&e),
    }
}

/// `type=catalog&mode=import&filename=…`: the file goes to the session's run; the answer
/// comes when it is applied, or `progress` after the step time.
async fn import_catalog(
    state: &AppState,
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    p: &Params,
    dir: PathBuf,
    client: &str,
) -> Response {
    let Some(raw_name) = p.filename.as_deref() else {
        return failure("mode=import needs filename=");
    };
    let key = match upload::safe_name(raw_name) {
        Ok(n) => n.to_string_lossy().replace('\\', "/"),
        Err(e) => return failure(&e),
    };
    let run = match s.catalog.clone().filter(|r| !r.is_ended()) {
        Some(run) => run,
        None => {
            let setup = RunSetup {
                kontor: state.kontor.clone(),
                actor: s.actor.clone(),
                options: desk.config.import.clone(),
                dir,
                max_unpacked: desk.config.max_file_bytes,
                last_seen: s.last_seen.clone(),
                idle: desk.config.idle_end,
            };
            match CatalogRun::start(setup, &state.jobs.node_id).await {
                Ok(run) => {
                    tracing::info!(job = %run.job_id, %client, "1C catalog exchange started");
                    s.catalog = Some(run.clone());
                    run
                }
                Err(e) => return failure(&e),
            }
        }
    };
    if let Err(e) = run.import(&key) {
        return failure(&e);
    }
    match run.wait_file(&key, desk.config.step_time).await {
        Some(FileState::Done(summary)) => success(&format!(
            "{key} imported (exchange run {})\n{summary}",
            run.job_id
        )),
        Some(FileState::Failed(e)) => failure(&e),
        Some(FileState::Queued) => progress(&format!("{key}: waiting for the files before it")),
        Some(FileState::Unpacking) => progress("unpacking the zip archive"),
        Some(FileState::Reading { read, total }) => progress(&format!(
            "{key}: {:.1}% read ({read} of {total} bytes)",
            if total > 0 {
                read as f64 * 100.0 / total as f64
            } else {
                0.0
            }
        )),
        None => match run.status().ended {
            Some(Err(e)) => failure(&e),
            _ => failure("the exchange run has ended; start again with mode=init"),
        },
    }
}

/// `mode=deactivate` / `mode=complete`: the catalog run ends (deactivate: what no file of the
/// run listed is missing); the answer comes when it has, or `progress` after the step time.
async fn end_catalog(desk: &ExchangeDesk, s: &mut ExchangeSession, deactivate: bool) -> Response {
    let Some(run) = s.catalog.clone() else {
        return success("nothing was imported in this session");
    };
    run.finish(deactivate);
    match run.wait_end(desk.config.step_time).await {
        None => progress("finishing the exchange run"),
        Some(Ok(report)) => success(&format!(
            "the exchange run {} is complete\n{}",
            run.job_id,
            catalog_run::summary(&report)
        )),
        Some(Err(e)) => failure(&e),
    }
}
