//! Runs the `kontor` binary: one-shot commands, and a server process whose address is read from
//! its first line of output.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn kontor() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kontor"));
    c.env("KONTOR_LOG", "warn")
        .env_remove("KONTOR_ADMIN_PASSWORD")
        .env_remove("KONTOR_USER_PASSWORD")
        .env_remove("KONTOR_DATA")
        .env_remove("KONTOR_LISTEN")
        .env_remove("KONTOR_DATABASE_URL");
    c
}

pub fn run(args: &[&str]) -> Output {
    kontor().args(args).output().expect("run kontor")
}

/// `kontor init` of a fresh data directory with this admin; fails the test if it fails.
pub fn init_data(data: &Path, email: &str, password: &str) {
    let o = run(&[
        "init",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--admin-email",
        email,
        "--admin-password",
        password,
    ]);
    assert!(o.status.success(), "kontor init: {}", stderr(&o));
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `kontor serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Lines printed before "listening" (e.g. a generated admin password).
    pub banner: Vec<String>,
    /// Lines printed after "listening", as they come.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[])
    }

    /// `kontor serve` with extra arguments (e.g. `--database URL`).
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Self::start_env(data, extra, &[])
    }

    /// [`Server::start_with`] with extra environment variables.
    // The child is killed and waited for in Drop.
    #[allow(clippy::zombie_processes)]
    pub fn start_env(data: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
        let mut child = kontor()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args([
                "serve",
                "--data",
                data.to_str().expect("utf-8 path"),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kontor serve");
        let out = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(out);
        let mut banner = Vec::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read server output");
            assert!(
                n > 0,
                "server exited before listening; output so far: {banner:?}"
            );
            if let Some(addr) = line.trim().strip_prefix("Kontor listening on ") {
                let base = addr.to_string();
                // Keep draining stdout so the server never blocks on a full pipe.
                let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let kept = output.clone();
                std::thread::spawn(move || {
                    for line in reader.lines().map_while(Result::ok) {
                        kept.lock().unwrap().push(line);
                    }
                });
                return Server {
                    child,
                    base,
                    banner,
                    output,
                };
            }
            banner.push(line.trim().to_string());
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        panic!("server did not exit within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn login(base: &str, email: &str, password: &str) -> (reqwest::StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn token(base: &str, email: &str, password: &str) -> String {
    let (status, body) = login(base, email, password).await;
    assert_eq!(status, reqwest::StatusCode::OK, "login: {body}");
    body["token"].as_str().expect("token").to_string()
}

/// Every item of a paged list (`path` relative to `/api/v1/`, with its query), following
/// `next_cursor` to the end.
pub async fn all_items(base: &str, tok: &str, path: &str) -> Vec<Value> {
    let client = reqwest::Client::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/{path}");
        if let Some(c) = &cursor {
            url.push_str(&format!("{sep}cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(tok)
            .send()
            .await
            .expect("list request")
            .json()
            .await
            .expect("list body");
        out.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => return out,
        }
    }
}
