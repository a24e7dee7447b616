//! The `kontor` binary: `serve`, `init` and `user` administration. Every command that touches
//! a data directory locks it first, so a running server and a CLI command never write at once.

mod config;

use clap::{Args, Parser, Subcommand};
use config::FileConfig;
use kontor_core::datadir::{DataDir, DataDirError};
use kontor_core::{auth, CoreError, Kontor, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::permission::{Actor, Role};
use kontor_domain::Entity;
use kontor_store::sqlite::SqliteStore;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
struct DataArg {
    /// Data directory (database, config, lock).
    #[arg(long, env = "KONTOR_DATA", default_value = "./kontor-data")]
    data: PathBuf,
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
enum CliError {
    DataDir(DataDirError),
    Core(CoreError),
    Usage(String),
    Io(String),
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
            CliError::Usage(m) | CliError::Io(m) => write!(f, "{m}"),
        }
    }
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::DataDir(DataDirError::Locked { .. }) => 3,
            CliError::DataDir(_) => 4,
            CliError::Core(CoreError::Domain(_)) => 5,
            CliError::Core(_) | CliError::Io(_) => 1,
        }
    }
}

impl From<DataDirError> for CliError {
    fn from(e: DataDirError) -> Self {
        CliError::DataDir(e)
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
        } => serve(&data.data, listen, trash_retention_days).await,
        Command::Init {
            data,
            admin_email,
            admin_password,
        } => {
            let dir = DataDir::open(&data.data, true)?;
            if dir.is_initialised() {
                return Err(DataDirError::AlreadyInitialised {
                    path: data.data.display().to_string(),
                }
                .into());
            }
            let generated = admin_password.is_none();
            let password = admin_password.unwrap_or_else(auth::generate_password);
            auth::check_password_strength(&password)?;
            initialise(&dir, &admin_email, &password).await?;
            println!("Kontor data directory initialised: {}", data.data.display());
            println!("admin e-mail:    {admin_email}");
            if generated {
                println!("admin password:  {password}   (shown once; change it with `kontor user passwd`)");
            }
            Ok(())
        }
        Command::User { command } => user(command).await,
    }
}

/// Creates the database and the first admin in a locked, empty data directory.
async fn initialise(dir: &DataDir, email: &str, password: &str) -> Result<(), CliError> {
    config::write_template(&dir.config_path())
        .map_err(|e| CliError::Io(format!("cannot write config: {e}")))?;
    let store = SqliteStore::open(&dir.db_path()).await?;
    let kontor = Kontor::new(Arc::new(store), Settings::default());
    let mut fields = Map::new();
    fields.insert("email".into(), Value::from(email));
    fields.insert("name".into(), Value::from("Administrator"));
    fields.insert("role".into(), Value::from("admin"));
    let result = kontor
        .add_user(&Actor::system(), Origin::System, fields, password)
        .await;
    kontor.store.close().await;
    if result.is_err() {
        // Leave no half-initialised directory behind: the next attempt starts clean.
        for f in ["kontor.db", "kontor.db-wal", "kontor.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
    }
    result?;
    Ok(())
}

async fn serve(
    data: &Path,
    listen: Option<SocketAddr>,
    retention: Option<u32>,
) -> Result<(), CliError> {
    let dir = DataDir::open(data, true)?;
    let file = FileConfig::load(&dir.config_path()).map_err(CliError::Usage)?;
    if !dir.is_initialised() {
        let email = "admin@kontor.local";
        let password = auth::generate_password();
        initialise(&dir, email, &password).await?;
        println!(
            "Initialised a new Kontor data directory: {}",
            data.display()
        );
        println!("admin e-mail:    {email}");
        println!("admin password:  {password}   (shown once; change it with `kontor user passwd`)");
    }
    let listen = listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let settings = Settings {
        trash_retention_days: retention.or(file.trash_retention_days).unwrap_or(30),
    };
    let store = SqliteStore::open(&dir.db_path()).await?;
    let kontor = Arc::new(Kontor::new(Arc::new(store), settings));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Io(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Io(format!("cannot read the listening address: {e}")))?;
    println!("Kontor listening on http://{addr}");
    tracing::info!(%addr, data = %data.display(), "Kontor started");
    kontor_server::serve(
        kontor,
        listener,
        kontor_server::jobs::JobConfig::default(),
        shutdown_signal(),
    )
    .await
    .map_err(|e| CliError::Io(format!("server error: {e}")))?;
    drop(dir);
    Ok(())
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

/// Opens an initialised data directory for a CLI command.
async fn open_existing(data: &Path) -> Result<(DataDir, Kontor), CliError> {
    let dir = DataDir::open(data, false)?;
    if !dir.is_initialised() {
        return Err(DataDirError::NotInitialised {
            path: data.display().to_string(),
        }
        .into());
    }
    let store = SqliteStore::open(&dir.db_path()).await?;
    Ok((dir, Kontor::new(Arc::new(store), Settings::default())))
}

async fn find_user(kontor: &Kontor, email: &str) -> Result<kontor_domain::Record, CliError> {
    kontor
        .user_by_email(email)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no user with e-mail {email}")))
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
            let (_dir, kontor) = open_existing(&data.data).await?;
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
            kontor.store.close().await;
            let rec = result?;
            println!("added user {email} (role {role}, id {})", rec.id);
            if generated {
                println!("password: {password}   (shown once)");
            }
            Ok(())
        }
        UserCommand::List { data } => {
            let (_dir, kontor) = open_existing(&data.data).await?;
            let users = kontor.store.all_records(Entity::Users).await;
            kontor.store.close().await;
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
            let (_dir, kontor) = open_existing(&data.data).await?;
            let generated = password.is_none();
            let password = password.unwrap_or_else(auth::generate_password);
            let result = async {
                let u = find_user(&kontor, &email).await?;
                kontor
                    .set_password(&system, Origin::System, &u.id, &password)
                    .await?;
                Ok::<_, CliError>(())
            }
            .await;
            kontor.store.close().await;
            result?;
            println!("password changed for {email}; their tokens are revoked");
            if generated {
                println!("password: {password}   (shown once)");
            }
            Ok(())
        }
        UserCommand::Disable { data, email } => {
            let (_dir, kontor) = open_existing(&data.data).await?;
            let result = async {
                let u = find_user(&kontor, &email).await?;
                kontor.disable_user(&system, Origin::System, &u.id).await?;
                Ok::<_, CliError>(())
            }
            .await;
            kontor.store.close().await;
            result?;
            println!("disabled {email}; their tokens are revoked");
            Ok(())
        }
    }
}
