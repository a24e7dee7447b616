//! The 1C:Enterprise exchange over HTTP ("exchange with a site", CommerceML): 1C calls
//! `/1c_exchange` (or `/bitrix/admin/1c_exchange.php`, so settings written for a 1C-Bitrix site
//! work unchanged) with `type` and `mode`. Every answer is plain text whose first line is
//! `success`, `progress` or `failure` — never an HTML page — except `checkauth` (cookie lines)
//! and `init` (`key=value` lines), as `COMMERCEML.md` §1 describes.
//!
//! A session starts at `checkauth` (HTTP Basic, users of role `exchange` only, rate limited as
//! logins are) and is carried by a cookie; every later call may also come with Basic
//! credentials instead. Uploaded files live in a folder of the session on this node (behind a
//! load balancer, route one 1C session to one node), and they are imported by a background
//! run ([`run`]) that answers `progress` until each file is applied. `type=sale&mode=query`
//! answers the invoices as a CommerceML document ([`kontor_exchange::sale`]); only
//! `mode=success` moves the position they are sent from.

pub mod run;
pub mod upload;

use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kontor_core::auth;
use kontor_domain::Actor;
use run::{FileState, ImportRun, RunKind, RunSetup};
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
    runs: HashMap<RunKind, ImportRun>,
    /// Invoices answered at `query`, waiting for `success`: (1C database record, position).
    sale_pending: Option<(String, i64)>,
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
                runs: HashMap::new(),
                sale_pending: None,
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
            if quiet > DAY && s.runs.values().all(ImportRun::is_ended) {
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
    let pairs =
        crate::extract::serde_urlencoded_pairs(uri.query().unwrap_or("")).unwrap_or_default();
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
    let run_kind = if kind == "catalog" {
        RunKind::Catalog
    } else {
        RunKind::Sale
    };
    let dir = s.dir.join(&kind);
    match (run_kind, mode.as_str()) {
        (_, "init") => init(&desk, &mut s, run_kind, &p, &dir).await,
        (_, "file") => file(&state, &desk, &mut s, run_kind, &p, &dir, &headers, body).await,
        (_, "import") => {
            let Some(name) = p.filename.as_deref() else {
                return failure("mode=import needs filename=");
            };
            import(
                &state,
                &desk,
                &mut s,
                run_kind,
                name,
                dir,
                desk.config.step_time,
            )
            .await
        }
        (RunKind::Catalog, "deactivate") => end_run(&desk, &mut s, run_kind, true).await,
        (_, "complete") => end_run(&desk, &mut s, run_kind, false).await,
        (RunKind::Sale, "query") => query(&state, &mut s).await,
        (RunKind::Sale, "success") => confirm(&state, &mut s).await,
        (_, "") => failure("the request names no mode (checkauth, init, file, import, …)"),
        (_, other) => failure(&format!(
            "Unknown command '{other}' for type={kind}; expected checkauth, init, file, import, {}",
            if kind == "catalog" {
                "deactivate, complete"
            } else {
                "query, success, complete"
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

/// `mode=init`: a new exchange of this type starts with an empty upload folder; the run of
/// the previous one ends first.
async fn init(
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    kind: RunKind,
    p: &Params,
    dir: &Path,
) -> Response {
    if let Some(run) = s.runs.remove(&kind) {
        run.finish(false);
        // Ending a run is short (what a full upload no longer lists); wait for it, so the
        // next run starts from what this one left.
        while run.wait_end(desk.config.step_time).await.is_none() {}
    }
    if let Err(e) = reset_dir(dir) {
        return failure(&format!("cannot prepare the upload folder: {e}"));
    }
    let zip = if desk.config.zip { "yes" } else { "no" };
    let limit = desk.config.file_limit;
    if kind == RunKind::Sale {
        s.version = p.version.clone().filter(|v| !v.trim().is_empty());
        if let Some(v) = &s.version {
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
#[allow(clippy::too_many_arguments)]
async fn file(
    state: &AppState,
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    kind: RunKind,
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
    if let Some(run) = s.runs.get(&kind) {
        if !run.forget(&key) {
            return failure(&format!(
                "{key} is being imported; upload it again after the import has answered"
            ));
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
    // The old sale protocol (no `version=` at init) imports a file as soon as it is whole.
    let ends_whole = kind == RunKind::Sale
        && s.version.is_none()
        && bytes
            .trim_ascii_end()
            .ends_with("</КоммерческаяИнформация>".as_bytes());
    let (folder, max) = (dir.to_path_buf(), desk.config.max_file_bytes);
    let written = tokio::task::spawn_blocking(move || upload::append(&folder, &name, &bytes, max))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match written {
        Ok(_) if ends_whole => {
            // No progress loop in this protocol: the answer waits for the import.
            import(state, desk, s, kind, &key, dir.to_path_buf(), Duration::MAX).await
        }
        Ok(size) => success(&format!("{key}: {size} bytes")),
        Err(e) => failure(&e),
    }
}

/// `mode=import&filename=…`: the file goes to the session's run of this type; the answer
/// comes when it is applied, or `progress` after `step`.
async fn import(
    state: &AppState,
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    kind: RunKind,
    raw_name: &str,
    dir: PathBuf,
    step: Duration,
) -> Response {
    let key = match upload::safe_name(raw_name) {
        Ok(n) => n.to_string_lossy().replace('\\', "/"),
        Err(e) => return failure(&e),
    };
    let run = match s.runs.get(&kind).filter(|r| !r.is_ended()) {
        Some(run) => run.clone(),
        None => {
            // The run follows the settings of the user's 1C database as they are now.
            let options = match database_of(state, &s.actor).await {
                Ok(database) => kontor_exchange::settings::options_of(&database),
                Err(e) => Err(e.to_string()),
            };
            let options = match options {
                Ok(o) => kontor_exchange::Options {
                    chunk: desk.config.import.chunk,
                    ..o
                },
                Err(e) => return failure(&format!("the exchange settings cannot be used: {e}")),
            };
            let setup = RunSetup {
                kind,
                kontor: state.kontor.clone(),
                actor: s.actor.clone(),
                options,
                dir,
                max_unpacked: desk.config.max_file_bytes,
                last_seen: s.last_seen.clone(),
                idle: desk.config.idle_end,
            };
            match ImportRun::start(setup, &state.jobs.node_id).await {
                Ok(run) => {
                    tracing::info!(job = %run.job_id, kind = kind.job_kind(), "1C exchange run started");
                    s.runs.insert(kind, run.clone());
                    run
                }
                Err(e) => return failure(&e),
            }
        }
    };
    if let Err(e) = run.import(&key) {
        return failure(&e);
    }
    match run.wait_file(&key, step).await {
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

/// `mode=deactivate` / `mode=complete`: the run ends (deactivate: what no file of the run
/// listed is missing); the answer comes when it has, or `progress` after the step time.
async fn end_run(
    desk: &ExchangeDesk,
    s: &mut ExchangeSession,
    kind: RunKind,
    deactivate: bool,
) -> Response {
    let Some(run) = s.runs.get(&kind).cloned() else {
        return success("nothing was imported in this session");
    };
    run.finish(deactivate);
    match run.wait_end(desk.config.step_time).await {
        None => progress("finishing the exchange run"),
        Some(Ok(report)) => success(&format!(
            "the exchange run {} is complete\n{}",
            run.job_id,
            run::summary(&report)
        )),
        Some(Err(e)) => failure(&e),
    }
}

/// `type=sale&mode=query`: the invoices changed since 1C last confirmed, as one CommerceML
/// document (windows-1251 by default, or UTF-8 with a BOM as the 1C database's record says;
/// CML 3.1 containers when 1C asked for 3.x at `init`).
async fn query(state: &AppState, s: &mut ExchangeSession) -> Response {
    use kontor_commerceml::{OutputEncoding, WriteOptions};
    use kontor_exchange::sale;
    let kontor = state.kontor.as_ref();
    let outcome = async {
        let database = database_of(state, &s.actor).await?;
        let out = sale::invoices_for_1c(kontor, &database, sale::sent_seq(&database)).await?;
        Ok::<_, kontor_core::CoreError>((database, out))
    }
    .await;
    let (database, out) = match outcome {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "the invoices for 1C could not be read");
            return failure(&format!("the invoices could not be read: {e}"));
        }
    };
    let version = s.version.clone().unwrap_or_else(|| "2.05".into());
    let cml3 = version.starts_with('3');
    let utf8 = cml3
        || database
            .data
            .get("invoice_encoding")
            .and_then(serde_json::Value::as_str)
            == Some("utf-8");
    let namespace = if cml3 {
        Some("urn:1C.ru:commerceml_3".to_string())
    } else if version.as_str() >= "2.07" {
        Some("urn:1C.ru:commerceml_2".to_string())
    } else {
        None
    };
    let options = WriteOptions {
        encoding: if utf8 {
            OutputEncoding::Utf8Bom
        } else {
            OutputEncoding::Windows1251
        },
        schema_version: version,
        generated_at: String::new(),
        container: cml3,
        namespace,
    };
    let mut xml = Vec::new();
    if let Err(e) = kontor_commerceml::write_documents(&mut xml, &out.documents, &options) {
        return failure(&format!("the invoices could not be written: {e}"));
    }
    tracing::info!(
        invoices = out.documents.len(),
        head = out.head,
        "invoices answered to 1C"
    );
    s.sale_pending = Some((database.id.clone(), out.head));
    let charset = if utf8 { "utf-8" } else { "windows-1251" };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&format!("application/xml; charset={charset}"))
                .unwrap_or(HeaderValue::from_static("application/xml")),
        )],
        xml,
    )
        .into_response()
}

/// `type=sale&mode=success`: 1C has the invoices of the last `query`; the position moves.
async fn confirm(state: &AppState, s: &mut ExchangeSession) -> Response {
    let Some((database, head)) = s.sale_pending.take() else {
        return success("no invoices were waiting for confirmation in this session");
    };
    match kontor_exchange::sale::confirm_sent(&state.kontor, &database, head).await {
        Ok(()) => success(""),
        Err(e) => {
            s.sale_pending = Some((database, head));
            failure(&format!("the confirmation could not be recorded: {e}"))
        }
    }
}

/// The `onec_databases` record of the exchange user (made on first use).
async fn database_of(
    state: &AppState,
    actor: &Actor,
) -> Result<kontor_domain::Record, kontor_core::CoreError> {
    let user = state
        .kontor
        .store
        .get(kontor_domain::Entity::Users, &actor.user_id)
        .await?
        .ok_or_else(|| kontor_core::CoreError::Unauthorized("this account is deleted".into()))?;
    kontor_exchange::sale::onec_database(&state.kontor, &user).await
}
