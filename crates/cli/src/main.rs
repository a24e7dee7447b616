//! The `kontor` binary: `serve`, `init`, `user` administration, `backup` and `restore`. Every command that touches
//! a data directory locks it first, so a running server and a CLI command never write at once.

mod backup;
mod config;
mod exchange;
mod local;
mod operations;
mod search;
mod status;
mod transfer;
mod upgrade;

use clap::{Args, Parser, Subcommand};
use config::FileConfig;
use kontor_core::datadir::{DataDir, DataDirError};
use kontor_core::{auth, CoreError, Kontor, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::permission::{Actor, Role};
use kontor_domain::Entity;
use kontor_store::postgres::{redact_url, PgStore};
use kontor_store::sqlite::SqliteStore;
use kontor_store::DynStore;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "kontor",
    version,
    about = "Kontor: a CRM server that never loses a record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct DataArg {
    /// Data directory (SQLite database, config, lock).
    #[arg(long, env = "KONTOR_DATA", default_value = "./kontor-data")]
    pub data: PathBuf,
    /// PostgreSQL URL (postgres://user:pass@host:port/db); without it, SQLite in the data directory.
    #[arg(long, env = "KONTOR_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server; initialises the data directory on first start.
    Serve {
        #[command(flatten)]
        data: DataArg,
        /// Address to listen on (default 127.0.0.1:8080, or `listen` in kontor.toml).
        #[arg(long, env = "KONTOR_LISTEN")]
        listen: Option<SocketAddr>,
        /// Days deleted records stay in the recycle bin; 0 keeps them forever (default 30).
        #[arg(long, env = "KONTOR_TRASH_RETENTION_DAYS")]
        trash_retention_days: Option<u32>,
        /// Load balancers or reverse proxies whose X-Forwarded-For / Forwarded headers name the
        /// client (comma-separated addresses or networks, e.g. 10.0.0.0/8,127.0.0.1). Without
        /// it, forwarding headers are ignored and the direct peer counts as the client.
        #[arg(long, env = "KONTOR_TRUSTED_PROXIES", value_delimiter = ',')]
        trusted_proxies: Option<Vec<String>>,
        #[command(flatten)]
        backup: backup::ShipArgs,
        #[command(flatten)]
        exchange: exchange::ServeArgs,
    },
    /// Initialise a new data directory with an admin user (non-interactive).
    Init {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        admin_email: String,
        /// Admin password; generated and printed when absent.
        #[arg(long, env = "KONTOR_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Archives: create, verify, list.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Build a new Kontor from an archive or a backup target (as it was at any point the
    /// target holds): a new data directory, or an empty PostgreSQL database. With
    /// --catch-up, apply to a restored database what the old server shipped since.
    Restore {
        #[command(flatten)]
        args: backup::RestoreArgs,
    },
    /// The 1C exchange offline: CommerceML files or folders in.
    Exchange {
        #[command(subcommand)]
        command: exchange::ExchangeCommand,
    },
    /// Search companies, contacts, leads, deals, products and invoices; `search rebuild`
    /// builds the index again.
    Search(search::SearchArgs),
    /// Where this Kontor and its data stand: versions, schema and pending migrations, data
    /// size, journal head, backups. Reads only; safe while the server runs.
    Status(status::StatusArgs),
    /// Maintenance mode: `on` makes the data read-only for every node (writes get 503 with the
    /// message, reads go on), `off` opens it again, `status` tells. Through the running
    /// server, or on the database when none runs.
    Maintenance(operations::MaintenanceArgs),
    /// Shut the running server down, announced: now, --at a time or --in a while, with a
    /// --message every user sees; --cancel, --status. At the time: read-only, a verified
    /// final snapshot, requests drained, the database closed, exit 0.
    Shutdown(operations::ShutdownArgs),
    /// Bring the data to this Kontor's schema: a running server is stopped (announced, with
    /// --in and --message), a pinned snapshot is taken and verified, the migrations run in one
    /// transaction, every record and the journal are checked and the API smoke-tested; any
    /// failure rolls back. --rehearse does it all on a clone and leaves live untouched.
    Upgrade(upgrade::UpgradeArgs),
    /// Import a CSV or XLSX file into an entity (one journal batch, undone as one); with
    /// --dry-run, report what it would do. Works while the server runs.
    Import(transfer::ImportArgs),
    /// Export a list (filters, q, sort) as CSV, XLSX or JSON Lines. Works while the server runs.
    Export(transfer::ExportArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; prints a generated password when none is given.
    Add {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// admin, manager, exchange or a custom role.
        #[arg(long, default_value = "manager")]
        role: String,
        #[arg(long, env = "KONTOR_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List users.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Set a user's password (generated and printed when none is given); revokes their tokens.
    Passwd {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        email: String,
        #[arg(long, env = "KONTOR_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Disable a user's account and revoke their tokens.
    Disable {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        email: String,
    },
}

/// Errors the CLI reports, each with its exit code.
#[derive(Debug)]
pub(crate) enum CliError {
    DataDir(DataDirError),
    Core(CoreError),
    Usage(String),
    /// A named thing (a user) does not exist.
    NotFound(String),
    Io(String),
    Backup(kontor_backup::BackupError),
    /// An exchange file could not be read (what and where).
    Exchange(String),
    /// A run completed, but some of its records failed.
    RecordsFailed(String),
}

impl std::error::Error for CliError {}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::DataDir(e) => write!(f, "{e}"),
            CliError::Core(CoreError::Domain(d)) => match d {
                kontor_domain::DomainError::Invalid(fe) if !fe.field.is_empty() => {
                    write!(f, "{} (field: {})", fe.message, fe.field)
                }
                other => write!(f, "{other}"),
            },
            CliError::Core(e) => write!(f, "{e}"),
            CliError::Usage(m)
            | CliError::NotFound(m)
            | CliError::Io(m)
            | CliError::Exchange(m)
            | CliError::RecordsFailed(m) => write!(f, "{m}"),
            CliError::Backup(e) => write!(f, "{e}"),
        }
    }
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::DataDir(DataDirError::Locked { .. }) => 3,
            CliError::DataDir(_) | CliError::NotFound(_) => 4,
            CliError::Core(CoreError::Domain(_)) => 5,
            CliError::Core(CoreError::Store(kontor_store::StoreError::Unavailable(_))) => 6,
            CliError::Core(_) | CliError::Io(_) => 1,
            CliError::Backup(e) => backup::exit_code(e),
            CliError::RecordsFailed(_) => 12,
            CliError::Exchange(_) => 13,
        }
    }
}

impl From<DataDirError> for CliError {
    fn from(e: DataDirError) -> Self {
        CliError::DataDir(e)
    }
}
impl From<kontor_backup::BackupError> for CliError {
    fn from(e: kontor_backup::BackupError) -> Self {
        CliError::Backup(e)
    }
}
impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        CliError::Core(e)
    }
}
impl From<kontor_store::StoreError> for CliError {
    fn from(e: kontor_store::StoreError) -> Self {
        CliError::Core(CoreError::Store(e))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KONTOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cmd: Command) -> Result<(), CliError> {
    match cmd {
        Command::Serve {
            data,
            listen,
            trash_retention_days,
            trusted_proxies,
            backup,
            exchange,
        } => {
            serve(
                &data,
                listen,
                trash_retention_days,
                trusted_proxies,
                backup,
                exchange,
            )
            .await
        }
        Command::Init {
            data,
            admin_email,
            admin_password,
        } => {
            let target = Target::open(&data, true).await?;
            if target.is_initialised().await? {
                let path = target.describe();
                target.close().await;
                return Err(DataDirError::AlreadyInitialised { path }.into());
            }
            let generated = admin_password.is_none();
            let password = admin_password.unwrap_or_else(auth::generate_password);
            let result = match auth::check_password_strength(&password) {
                Ok(()) => initialise(&target, &admin_email, &password).await,
                Err(e) => Err(e.into()),
            };
            let desc = target.describe();
            target.close().await;
            result?;
            println!("Kontor initialised: {desc}");
            println!("admin e-mail:    {admin_email}");
            if generated {
                println!("admin password:  {password}   (shown once; change it with `kontor user passwd`)");
            }
            Ok(())
        }
        Command::User { command } => user(command).await,
        Command::Backup { command } => backup::backup(command).await,
        Command::Restore { args } => backup::restore(args).await,
        Command::Exchange { command } => exchange::exchange(command).await,
        Command::Search(args) => search::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Maintenance(args) => operations::maintenance(args).await,
        Command::Shutdown(args) => operations::shutdown(args).await,
        Command::Upgrade(args) => upgrade::run(args).await,
        Command::Import(args) => transfer::import(args).await,
        Command::Export(args) => transfer::export(args).await,
    }
}

/// Where a command's data lives: SQLite in a locked data directory, or a PostgreSQL database
/// (the data directory, when there is one, then only holds the config file).
pub(crate) struct Target {
    pub(crate) dir: Option<DataDir>,
    pub(crate) url: Option<String>,
    kontor: Arc<Kontor>,
}

impl Target {
    /// Opens the store; `create` makes a missing SQLite data directory (serve, init).
    pub(crate) async fn open(args: &DataArg, create: bool) -> Result<Target, CliError> {
        let file = FileConfig::load(&args.data.join(kontor_core::datadir::CONFIG_FILE))
            .map_err(CliError::Usage)?;
        Self::open_with(args, &file, create, Settings::default()).await
    }

    async fn open_with(
        args: &DataArg,
        file: &FileConfig,
        create: bool,
        settings: Settings,
    ) -> Result<Target, CliError> {
        let url = args.database.clone().or_else(|| file.database.clone());
        let (dir, store): (Option<DataDir>, DynStore) = match &url {
            Some(url) => {
                if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                    return Err(CliError::Usage(format!(
                        "--database must be a postgres:// URL, not {}",
                        redact_url(url)
                    )));
                }
                refuse_pending(PgStore::inspect(url).await?, "the PostgreSQL database")?;
                let store = PgStore::connect(url).await?;
                (None, Arc::new(store))
            }
            None => {
                let dir = DataDir::open(&args.data, create)?;
                if dir.db_path().exists() {
                    refuse_pending(SqliteStore::inspect(&dir.db_path()).await?, "the database")?;
                }
                let store = SqliteStore::open(&dir.db_path()).await?;
                (Some(dir), Arc::new(store))
            }
        };
        Ok(Target {
            dir,
            url,
            kontor: Arc::new(Kontor::new(store, settings)),
        })
    }

    pub(crate) fn describe(&self) -> String {
        match (&self.url, &self.dir) {
            (Some(url), _) => format!("PostgreSQL database {}", redact_url(url)),
            (None, Some(dir)) => format!("data directory {}", dir.path().display()),
            (None, None) => "nothing".into(),
        }
    }

    /// Initialised means the first admin exists.
    async fn is_initialised(&self) -> Result<bool, CliError> {
        Ok(!self
            .kontor
            .store
            .all_records(Entity::Users)
            .await?
            .is_empty())
    }

    pub(crate) async fn close(self) {
        self.kontor.store.close().await;
    }
}

/// A database with data at an older schema is not migrated on the side by an ordinary open:
/// `kontor upgrade` does it with a pinned snapshot, checks and rollback. (A new, empty
/// database is created at the current schema.)
fn refuse_pending(inspection: kontor_store::Inspection, what: &str) -> Result<(), CliError> {
    let m = &inspection.migrations;
    if m.schema_version > 0 && !m.pending.is_empty() && m.refusal("").is_none() {
        return Err(CliError::Core(CoreError::Store(
            kontor_store::StoreError::Schema(format!(
                "{what} is at schema version {}; this Kontor works at {}: run `kontor upgrade` \
             (a verified snapshot first, checks, rollback on failure; `kontor upgrade --rehearse` \
             tries it on a clone)",
                m.schema_version, m.current_version
            )),
        )));
    }
    Ok(())
}

/// Creates the first admin (and, for SQLite, the config template).
async fn initialise(target: &Target, email: &str, password: &str) -> Result<(), CliError> {
    if let Some(dir) = &target.dir {
        config::write_template(&dir.config_path())
            .map_err(|e| CliError::Io(format!("cannot write config: {e}")))?;
    }
    let mut fields = Map::new();
    fields.insert("email".into(), Value::from(email));
    fields.insert("name".into(), Value::from("Administrator"));
    fields.insert("role".into(), Value::from("admin"));
    target
        .kontor
        .add_user(&Actor::system(), Origin::System, fields, password)
        .await?;
    Ok(())
}

async fn serve(
    args: &DataArg,
    listen: Option<SocketAddr>,
    retention: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    ship: backup::ShipArgs,
    exchange: exchange::ServeArgs,
) -> Result<(), CliError> {
    let file = FileConfig::load(&args.data.join(kontor_core::datadir::CONFIG_FILE))
        .map_err(CliError::Usage)?;
    // The data directory is locked for the server's lifetime on either engine: it holds the
    // config (and later backups), and two servers must not share it. (For SQLite the store
    // itself takes the lock.)
    let dir_lock = match args.database.as_ref().or(file.database.as_ref()) {
        Some(_) => Some(DataDir::open(&args.data, true)?),
        None => None,
    };
    let proxies = trusted_proxies
        .or_else(|| file.trusted_proxies.clone())
        .unwrap_or_default();
    let mut http = kontor_server::HttpConfig {
        trusted_proxies: kontor_server::client_addr::TrustedProxies::parse(
            proxies.iter().map(String::as_str),
        )
        .map_err(CliError::Usage)?,
        backups: None,
        exchange: Some(exchange.desk(&args.data)?),
        search: None,
        transfer: Some(Arc::new(kontor_server::transfer::TransferDesk::new(
            &args.data,
        ))),
        local_socket: Some(args.data.join(kontor_core::datadir::SOCKET_FILE)),
    };
    let settings = Settings {
        trash_retention_days: retention.or(file.trash_retention_days).unwrap_or(30),
        ..Settings::default()
    };
    let target = Target::open_with(args, &file, true, settings).await?;
    if !target.is_initialised().await? {
        let email = "admin@kontor.local";
        let password = auth::generate_password();
        match initialise(&target, email, &password).await {
            Ok(()) => {
                println!("Initialised {}", target.describe());
                println!("admin e-mail:    {email}");
                println!("admin password:  {password}   (shown once; change it with `kontor user passwd`)");
            }
            // Another node initialised the shared database at the same moment.
            Err(CliError::Core(CoreError::Domain(kontor_domain::DomainError::Duplicate {
                ..
            }))) => {}
            Err(e) => return Err(e),
        }
    }
    let (shipper, desk) = match backup::shipper(&ship, &file, &target, &args.data).await {
        Ok(s) => s,
        Err(e) => {
            target.close().await;
            return Err(e);
        }
    };
    http.backups = Some(desk);
    match search::open_index(&args.data) {
        Ok(index) => http.search = Some(Arc::new(index)),
        Err(e) => {
            target.close().await;
            return Err(e);
        }
    }
    let listen = listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Io(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Io(format!("cannot read the listening address: {e}")))?;
    println!("Kontor listening on http://{addr}");
    tracing::info!(%addr, store = %target.describe(), "Kontor started");
    let poller = match exchange.folder_poller(&target.kontor).await {
        Ok(p) => p,
        Err(e) => {
            target.close().await;
            return Err(e);
        }
    };
    let Target { dir, kontor, .. } = target;
    let (stop_shipping, stopped) = tokio::sync::watch::channel(false);
    let stopped_poll = stopped.clone();
    let shipping = shipper.map(|s| {
        if let Some(t) = &ship.backup_to {
            println!("Shipping the journal to backup target {}", t.display());
        }
        tokio::spawn(s.run(Arc::clone(&kontor), stopped))
    });
    let polling = poller.map(|p| {
        println!("Polling the exchange folder {}", p.describe());
        tokio::spawn(p.run(stopped_poll))
    });
    let served = kontor_server::serve(
        Arc::clone(&kontor),
        listener,
        kontor_server::jobs::JobConfig::default(),
        http,
        shutdown_signal(),
    )
    .await;
    // The last entries go to the backup target before the database closes.
    let _ = stop_shipping.send(true);
    if let Some(task) = shipping {
        let _ = task.await;
    }
    if let Some(task) = polling {
        let _ = task.await;
    }
    let report = served.map_err(|e| CliError::Io(format!("server error: {e}")))?;
    drop(dir);
    drop(dir_lock);
    match report.snapshot {
        Ok(s) => {
            println!(
                "Stopped. Final snapshot {} (journal seq {}) verified.",
                s["archive"].as_str().unwrap_or("?"),
                s["seq"]
            );
            Ok(())
        }
        Err(e) => Err(CliError::Io(format!(
            "stopped without a verified final snapshot: {e}"
        ))),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Opens initialised data for a CLI command.
pub(crate) async fn open_existing(args: &DataArg) -> Result<Target, CliError> {
    let target = Target::open(args, false).await?;
    if !target.is_initialised().await? {
        let desc = target.describe();
        target.close().await;
        return Err(DataDirError::NotInitialised { path: desc }.into());
    }
    Ok(target)
}

pub(crate) async fn find_user(
    kontor: &Kontor,
    email: &str,
) -> Result<kontor_domain::Record, CliError> {
    kontor
        .user_by_email(email)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no user with e-mail {email}")))
}

async fn user(cmd: UserCommand) -> Result<(), CliError> {
    let system = Actor::system();
    match cmd {
        UserCommand::Add {
            data,
            email,
            name,
            role,
            password,
        } => {
            if Role::builtin(&role).is_none() && role.trim().is_empty() {
                return Err(CliError::Usage("--role must not be empty".into()));
            }
            let target = open_existing(&data).await?;
            let kontor = &target.kontor;
            let generated = password.is_none();
            let password = password.unwrap_or_else(auth::generate_password);
            let mut fields = Map::new();
            fields.insert("email".into(), Value::from(email.clone()));
            fields.insert("role".into(), Value::from(role.clone()));
            if let Some(n) = name {
                fields.insert("name".into(), Value::from(n));
            }
            let result = kontor
                .add_user(&system, Origin::System, fields, &password)
                .await;
            target.close().await;
            let rec = result?;
            println!("added user {email} (role {role}, id {})", rec.id);
            if generated {
                println!("password: {password}   (shown once)");
            }
            Ok(())
        }
        UserCommand::List { data } => {
            let target = open_existing(&data).await?;
            let kontor = &target.kontor;
            let users = kontor.store.all_records(Entity::Users).await;
            target.close().await;
            println!("{:<36}  {:<32}  {:<10}  status", "id", "email", "role");
            for u in users? {
                let s = |k: &str| {
                    u.data
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let status = if u.is_deleted() {
                    "deleted"
                } else if u.data.get("disabled") == Some(&Value::Bool(true)) {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{:<36}  {:<32}  {:<10}  {status}",
                    u.id,
                    s("email"),
                    s("role")
                );
            }
            Ok(())
        }
        UserCommand::Passwd {
            data,
            email,
            password,
        } => {
            let target = open_existing(&data).await?;
            let kontor = &target.kontor;
            let generated = password.is_none();
            let password = password.unwrap_or_else(auth::generate_password);
            let result = async {
                let u = find_user(kontor, &email).await?;
                kontor
                    .set_password(&system, Origin::System, &u.id, &password)
                    .await?;
                Ok::<_, CliError>(())
            }
            .await;
            target.close().await;
            result?;
            println!("password changed for {email}; their tokens are revoked");
            if generated {
                println!("password: {password}   (shown once)");
            }
            Ok(())
        }
        UserCommand::Disable { data, email } => {
            let target = open_existing(&data).await?;
            let kontor = &target.kontor;
            let result = async {
                let u = find_user(kontor, &email).await?;
                kontor.disable_user(&system, Origin::System, &u.id).await?;
                Ok::<_, CliError>(())
            }
            .await;
            target.close().await;
            result?;
            println!("disabled {email}; their tokens are revoked");
            Ok(())
        }
    }
}
