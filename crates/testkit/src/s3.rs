//! A real S3-compatible server on loopback for the object-store backup target: `s3rver` (from
//! npm), found at `KONTOR_S3RVER`, in `.ci/tools/node_modules/.bin`, or on `PATH`. Each call
//! starts one with its own data directory and a bucket `kontor`; it stops when dropped. Without
//! it the test is skipped loudly — and under CI (`CI` set) the test fails instead, so a missing
//! server never passes unnoticed.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

/// The bucket every server starts with.
pub const BUCKET: &str = "kontor";
/// s3rver's fixed credentials.
pub const ACCESS_KEY: &str = "S3RVER";
pub const SECRET_KEY: &str = "S3RVER";

fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KONTOR_S3RVER") {
        return Some(PathBuf::from(p));
    }
    let repo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/tools/node_modules/.bin/s3rver");
    if repo.is_file() {
        return Some(repo);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("s3rver"))
            .find(|p| p.is_file())
    })
}

impl S3Server {
    /// A running server, or `None` (with a loud line) when s3rver is not installed.
    pub fn start(test: &str) -> Option<S3Server> {
        let Some(bin) = find() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: s3rver is not installed (.ci/run installs it with npm)"
            );
            eprintln!("*** SKIPPED (no s3rver; `npm install s3rver` or set KONTOR_S3RVER): {test}");
            return None;
        };
        let dir = tempfile::tempdir().expect("s3rver directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(&bin)
            .arg("-d")
            .arg(dir.path())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--silent"])
            .args(["--configure-bucket", BUCKET])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3rver");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "s3rver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(S3Server {
            child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The environment a Kontor process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
