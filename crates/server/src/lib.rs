//! Kontor's HTTP server: the REST API over the core, health and readiness, the OpenAPI document,
//! and the background jobs (recycle-bin retention) that run on whichever node holds their lease.

pub mod backups;
pub mod client_addr;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod jobs;
pub mod lifecycle;
pub mod openapi;
pub mod routes;
pub mod smoke;
pub mod tracked_jobs;
pub mod transfer;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;
use error::ApiError;
use kontor_core::Kontor;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request body accepted.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Settings of the HTTP layer.
#[derive(Clone, Default)]
pub struct HttpConfig {
    /// Proxies (load balancers) whose forwarding headers name the real client address.
    pub trusted_proxies: client_addr::TrustedProxies,
    /// Backups for the admin API (`None`: the backup routes answer 404).
    pub backups: Option<Arc<backups::BackupDesk>>,
    /// The 1C exchange (`None`: `/1c_exchange` answers that it is not set up).
    pub exchange: Option<Arc<exchange::ExchangeDesk>>,
    /// This node's search index (`None`: the search routes answer 404). `serve` keeps it
    /// current from the journal.
    pub search: Option<Arc<kontor_search::Search>>,
    /// Where imports' uploads and exports' files wait (`None`: those routes answer 404).
    pub transfer: Option<Arc<transfer::TransferDesk>>,
    /// A Unix socket for the administrator's commands on this machine (`kontor import` while
    /// the server holds the data directory): no token needed, only access to the socket file.
    pub local_socket: Option<std::path::PathBuf>,
}

pub struct AppState {
    pub kontor: Arc<Kontor>,
    pub jobs: Arc<jobs::JobStatus>,
    pub http: HttpConfig,
    /// Backups as the admin API sees them (`None`: this server has no backup settings).
    pub backups: Option<Arc<backups::BackupDesk>>,
    /// Maintenance, the scheduled shutdown and how far a stop got.
    pub lifecycle: lifecycle::Lifecycle,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(kontor: Arc<Kontor>, jobs: Arc<jobs::JobStatus>, http: HttpConfig) -> Arc<AppState> {
        let backups = http.backups.clone();
        Arc::new(AppState {
            kontor,
            jobs,
            http,
            backups,
            lifecycle: lifecycle::Lifecycle::default(),
            shutting_down: AtomicBool::new(false),
        })
    }

    /// Whether this server has begun to stop (read-only, draining).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed) || self.lifecycle.stopping().is_some()
    }
}

/// Every route of the API. `openapi::ROUTES` lists the same ones, and a test keeps them equal.
pub fn router(state: Arc<AppState>) -> Router {
    use routes::*;
    let api = Router::new()
        .route("/openapi.json", get(system::openapi))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/trash", get(trash::list))
        .route("/trash/{entity}/{id}", get(trash::get).delete(trash::purge))
        .route("/trash/{entity}/{id}/restore", post(trash::restore))
        .route("/history", get(history::list))
        .route("/history/undo", post(history::undo))
        .route("/batch", post(records::batch))
        .route("/admin/backups", get(backups::list).post(backups::create))
        .route("/admin/backups/status", get(backups::status))
        .route("/admin/backups/{id}/verify", post(backups::verify))
        .route("/jobs/{id}", get(backups::job))
        .route("/search", get(search::search))
        .route("/admin/search", get(search::state))
        .route(
            "/admin/maintenance",
            get(operations::maintenance).put(operations::set_maintenance),
        )
        .route(
            "/admin/shutdown",
            get(operations::shutdown)
                .post(operations::schedule_shutdown)
                .delete(operations::cancel_shutdown),
        )
        .route("/announcements", get(operations::announcements))
        .route("/admin/search/rebuild", post(search::rebuild))
        .route(
            "/imports",
            get(transfer::list)
                .post(transfer::create)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/imports/local", post(transfer::create_local))
        .route("/imports/{id}", get(transfer::get))
        .route("/imports/{id}/errors.csv", get(transfer::errors_csv))
        .route("/imports/{id}/apply", post(transfer::apply))
        .route(
            "/export/{entity}",
            get(transfer::export_now).post(transfer::create_export),
        )
        .route("/exports/{id}/file", get(transfer::export_file))
        .route("/exchange/runs", get(exchange_runs::list))
        .route("/exchange/runs/{id}", get(exchange_runs::get))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/users/{id}/restore", post(users::restore_to_time))
        .route("/users/{id}/history", get(users::history))
        .route("/{entity}", get(records::list).post(records::create))
        .route(
            "/{entity}/{id}",
            get(records::get)
                .patch(records::update)
                .delete(records::delete),
        )
        .route("/{entity}/{id}/restore", post(records::restore_to_time))
        .route("/{entity}/{id}/history", get(records::record_history));
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/1c_exchange", any(exchange::handle))
        .route("/bitrix/admin/1c_exchange.php", any(exchange::handle))
        .nest("/api/v1", api)
        // Everything under /api/ is the API's, answered in JSON, even where no route is.
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .merge(web::router())
        .fallback(|| async { ApiError::NotFound("no such path; see /api/v1/openapi.json".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("no such path; see /api/v1/openapi.json".into())
}

/// How long requests still in flight may take once a stop has begun, and how long the writes
/// in flight may take to end before the node goes read-only anyway.
pub const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the API on `listener` until `shutdown` resolves (a signal) or a scheduled shutdown
/// is due, then stops: read-only, a verified final snapshot, requests drained (within
/// [`DRAIN_DEADLINE`]), background jobs stopped, the store closed (checkpointing SQLite).
/// Returns how the final snapshot went.
pub async fn serve(
    kontor: Arc<Kontor>,
    listener: TcpListener,
    jobs: jobs::JobConfig,
    http: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<lifecycle::StopReport> {
    let status = jobs::JobStatus::new(jobs.node_id.clone());
    let state = AppState::new(kontor.clone(), status.clone(), http);
    state.lifecycle.take_up(&kontor.store).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let job_handle = tokio::spawn(jobs::run(kontor.clone(), jobs, status, stop_rx.clone()));
    if let Some(s) = &state.http.search {
        kontor.attach_text_index(s.clone());
    }
    let follower = state
        .http
        .search
        .clone()
        .map(|s| tokio::spawn(s.follow(kontor.clone(), stop_rx.clone())));
    if let Some(desk) = state.http.transfer.clone() {
        let (kontor, node) = (kontor.clone(), state.jobs.node_id.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                desk.resume_interrupted(kontor.clone(), &node).await;
                tokio::select! {
                    _ = tokio::time::sleep(transfer::RESUME_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }
    let local = match &state.http.local_socket {
        Some(path) => Some(serve_local(path, router(state.clone()), stop_rx.clone())?),
        None => None,
    };
    let app = router(state.clone());
    let st = state.clone();
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let trigger = tokio::select! {
            _ = shutdown => lifecycle::Trigger::Signal,
            plan = st.lifecycle.due() => lifecycle::Trigger::Scheduled(plan),
        };
        tracing::info!(?trigger, "stopping: read-only, final snapshot, then drain");
        let stopped = st.lifecycle.stop(&st, trigger, DRAIN_DEADLINE).await;
        st.shutting_down.store(true, Ordering::Relaxed);
        let _ = stopped_tx.send(stopped);
        tracing::info!("draining requests");
    });
    // Requests still running when the drain's deadline passes are left behind.
    let mut stopped_rx = stopped_rx;
    let mut stopped = None;
    let result = tokio::select! {
        r = server => r,
        _ = async {
            if let Ok(s) = (&mut stopped_rx).await {
                stopped = Some(s);
            }
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } => {
            tracing::warn!(seconds = DRAIN_DEADLINE.as_secs(), "requests still running after the drain deadline are cut off");
            Ok(())
        }
    };
    let stopped = match stopped {
        Some(s) => Some(s),
        None => stopped_rx.await.ok(),
    };
    let _ = stop_tx.send(true);
    if let Some((task, path)) = local {
        let _ = task.await;
        let _ = std::fs::remove_file(path);
    }
    let _ = job_handle.await;
    if let Some(f) = follower {
        let _ = f.await;
    }
    let report = match stopped {
        Some((report, job)) => {
            if let Some(job) = job {
                job.finish(report.snapshot.clone()).await;
            }
            report
        }
        None => lifecycle::StopReport {
            snapshot: Err("the server stopped before its stop sequence ran".into()),
        },
    };
    kontor.store.close().await;
    tracing::info!("database closed");
    result.map(|()| report)
}

/// Serves the API on a Unix socket only this machine's owner of the data directory can open
/// (mode 0600): requests there act as the local administrator (see [`extract::LocalPeer`]).
#[cfg(unix)]
fn serve_local(
    path: &std::path::Path,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(tokio::task::JoinHandle<()>, std::path::PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    // A socket left by a server that did not stop cleanly: nobody listens on it any more
    // (the data directory's lock says this server owns it now).
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let app = app.layer(axum::Extension(extract::LocalPeer));
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the local socket stopped");
        }
    });
    Ok((task, path.to_path_buf()))
}

#[cfg(not(unix))]
fn serve_local(
    _: &std::path::Path,
    _: Router,
    _: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(tokio::task::JoinHandle<()>, std::path::PathBuf)> {
    Err(std::io::Error::other("a local socket needs a Unix system"))
}
