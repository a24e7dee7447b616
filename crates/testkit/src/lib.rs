//! Test support shared by Kontor's test suites.
//!
//! Every storage and HTTP test runs on both engines. SQLite needs nothing. For PostgreSQL the
//! suite uses the server named by `KONTOR_TEST_PG` (a URL whose user may create databases), or
//! else starts its own throw-away server from the installed PostgreSQL binaries on a loopback
//! port (as the unprivileged user `nobody` when run as root, since `initdb` refuses root) and
//! stops it when the test process exits. Each test gets a fresh database. When neither is
//! possible, the PostgreSQL half says so loudly and is skipped — never silently.

pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A PostgreSQL server tests may create databases on.
pub struct PgServer {
    /// URL of the maintenance database, as a user allowed to create databases.
    admin_url: String,
    /// Set when this process started the server and must stop it.
    owned: Option<OwnedServer>,
}

struct OwnedServer {
    bin: PathBuf,
    data: PathBuf,
    as_nobody: bool,
    /// Server options (port, socket directory, ...) for restarts.
    opts: String,
    _dir: tempfile::TempDir,
}

/// Password of the `postgres` user on servers started here.
pub const PASSWORD: &str = "kontor-test-pw";

static SHARED: OnceLock<Option<PgServer>> = OnceLock::new();
static TO_STOP: Mutex<Vec<(PathBuf, PathBuf, bool)>> = Mutex::new(Vec::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL server of this test process, if there can be one.
pub fn postgres() -> Option<&'static PgServer> {
    SHARED
        .get_or_init(|| {
            let server = match std::env::var("KONTOR_TEST_PG") {
                Ok(url) if !url.trim().is_empty() => Ok(PgServer {
                    admin_url: url.trim().to_string(),
                    owned: None,
                }),
                _ => PgServer::start(),
            };
            match server {
                Ok(s) => Some(s),
                Err(why) => {
                    eprintln!(
                        "\n************************************************************\n\
                         *** PostgreSQL is NOT AVAILABLE: {why}\n\
                         *** The PostgreSQL half of the tests is SKIPPED.\n\
                         *** Install PostgreSQL (apt-get install postgresql) or set\n\
                         *** KONTOR_TEST_PG=postgres://user:pass@host:port/postgres\n\
                         ************************************************************\n"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Call at the start of a PostgreSQL test: true (and a loud line) when it must be skipped.
pub fn skip_postgres(test: &str) -> bool {
    if postgres().is_some() {
        return false;
    }
    eprintln!("*** SKIPPED on PostgreSQL (no server): {test}");
    true
}

/// The folder of real CommerceML exchange files (`shared/data/commerceml`, beside the
/// checkout, or `KONTOR_SHARED_DATA`). They are not part of the repository; a test that needs
/// them is skipped loudly without them, and fails under CI, which always has them.
pub fn commerceml_samples(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("KONTOR_SHARED_DATA")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|a| a.join("shared/data/commerceml"))
                .find(|p| p.is_dir())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: the CommerceML samples (shared/data/commerceml beside the checkout) are missing under CI"
        );
        eprintln!("*** SKIPPED (no shared/data/commerceml beside the checkout): {test}");
    }
    found
}

/// Directories that may hold the PostgreSQL server binaries, best first.
fn candidate_bin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(p) = std::env::var("KONTOR_PG_BIN") {
        dirs.push(PathBuf::from(p));
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by_key(|p| {
        std::cmp::Reverse(
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    dirs.extend(versioned);
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn find_bin_dir() -> Option<PathBuf> {
    candidate_bin_dirs().into_iter().find(|d| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn id_of(flag: &str, name: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// Runs a PostgreSQL binary, as `nobody` when we are root.
fn pg_command(bin: &Path, tool: &str, as_nobody: bool) -> Command {
    if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

extern "C" fn stop_servers_at_exit() {
    let list = std::mem::take(&mut *TO_STOP.lock().unwrap_or_else(|p| p.into_inner()));
    for (bin, data, as_nobody) in list {
        let _ = pg_command(&bin, "pg_ctl", as_nobody)
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Statics are never dropped, so their temporary directories are removed here.
        if let Some(dir) = data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
}

impl PgServer {
    /// Starts a throw-away server tuned for tests (no fsync); it is stopped when this process
    /// exits (or by [`PgServer::stop`]).
    pub fn start() -> Result<PgServer, String> {
        Self::start_with(false)
    }

    /// Starts a throw-away server with PostgreSQL's default durability (fsync on every commit),
    /// for benchmarks that compare engines fairly.
    pub fn start_durable() -> Result<PgServer, String> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<PgServer, String> {
        let bin = find_bin_dir()
            .ok_or("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found")?;
        let as_nobody = is_root();
        let dir = tempfile::Builder::new()
            .prefix("kontor-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| e.to_string())?;
        if as_nobody {
            use std::os::unix::fs::PermissionsExt;
            let uid = id_of("-u", "nobody").ok_or("user nobody is missing")?;
            let gid = id_of("-g", "nobody").ok_or("group of nobody is missing")?;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(&sock, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        // Local socket connections are trusted; TCP connections need the password, so tests can
        // also check what a wrong one does.
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
        if as_nobody {
            let uid = id_of("-u", "nobody").ok_or("user nobody is missing")?;
            std::os::unix::fs::chown(&pwfile, Some(uid), None).map_err(|e| e.to_string())?;
        }
        let out = pg_command(&bin, "initdb", as_nobody)
            .arg("-D")
            .arg(&data)
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let port = free_port()?;
        let speed = if durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300{speed}",
            sock.display()
        );
        let out = pg_command(&bin, "pg_ctl", as_nobody)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
            return Err(format!("pg_ctl start failed: {}", log.trim()));
        }
        {
            let mut list = TO_STOP.lock().unwrap_or_else(|p| p.into_inner());
            if list.is_empty() {
                // SAFETY: registering a plain extern "C" function with the C runtime.
                unsafe {
                    atexit(stop_servers_at_exit);
                }
            }
            list.push((bin.clone(), data.clone(), as_nobody));
        }
        Ok(PgServer {
            admin_url: format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"),
            owned: Some(OwnedServer {
                bin,
                data,
                as_nobody,
                opts,
                _dir: dir,
            }),
        })
    }

    /// A server someone else runs, by the URL of its maintenance database.
    pub fn external(admin_url: &str) -> PgServer {
        PgServer {
            admin_url: admin_url.to_string(),
            owned: None,
        }
    }

    /// URL of the maintenance database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Whether this process started the server (and so knows its password rules).
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        use sqlx::Connection;
        let name = format!(
            "kontor_t{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to test PostgreSQL: {e}"));
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("create test database: {e}"));
        let _ = conn.close().await;
        self.database_url(&name)
    }

    /// The URL of another database on this server.
    pub fn database_url(&self, db: &str) -> String {
        let url = &self.admin_url;
        let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
        let after = &url[scheme_end..];
        let (authority, rest) = match after.find('/') {
            Some(i) => (&after[..i], &after[i + 1..]),
            None => (after, ""),
        };
        let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
        format!("{}{authority}/{db}{query}", &url[..scheme_end])
    }

    /// Stops a server this process started (immediately, as a crash would).
    pub fn stop(&self) {
        if let Some(o) = &self.owned {
            let _ = pg_command(&o.bin, "pg_ctl", o.as_nobody)
                .arg("-D")
                .arg(&o.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) -> Result<(), String> {
        let Some(o) = &self.owned else {
            return Err("not a server this process started".into());
        };
        let out = pg_command(&o.bin, "pg_ctl", o.as_nobody)
            .arg("-D")
            .arg(&o.data)
            .arg("-l")
            .arg(o.data.parent().unwrap_or(&o.data).join("log"))
            .args(["-w", "-t", "60", "-o", &o.opts, "start"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}
