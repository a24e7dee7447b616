//! A simulated 1C:Enterprise: the client side of the "exchange with a site" protocol as
//! `COMMERCEML.md` §1 describes it, written from the protocol text. It logs in with HTTP Basic
//! (`checkauth`), then sends the cookie it was given and echoes `sessid=` like 1C does; it
//! reads `zip=` and `file_limit=` from `init`, packs the files into one zip when the site takes
//! zips, cuts every upload into parts of at most `file_limit` bytes, and repeats `import` while
//! the site answers `progress`. Every answer's first line must be `success`, `progress` or
//! `failure` — anything else is what real 1C reports as an unknown status.

use std::io::Write;
use std::path::Path;

pub struct OneC {
    http: reqwest::Client,
    pub url: String,
    login: String,
    password: String,
    cookie: Option<String>,
    sessid: Option<String>,
    /// Send Basic credentials on every request, not only on `checkauth`.
    pub basic_always: bool,
    /// Pack uploads into one zip when the site says `zip=yes`.
    pub use_zip: bool,
    pub zip_offered: bool,
    pub file_limit: usize,
    /// `progress` answers seen so far.
    pub progress_answers: usize,
    /// Requests sent so far.
    pub requests: usize,
}

/// An answer: its first line and the rest.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: String,
    pub text: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status == "success"
    }
}

impl OneC {
    /// A 1C configured with the site URL (`base` + `path`, e.g. `/1c_exchange`) and a user.
    pub fn new(base: &str, path: &str, login: &str, password: &str) -> OneC {
        OneC {
            http: reqwest::Client::new(),
            url: format!("{base}{path}"),
            login: login.into(),
            password: password.into(),
            cookie: None,
            sessid: None,
            basic_always: false,
            use_zip: false,
            zip_offered: false,
            file_limit: 0,
            progress_answers: 0,
            requests: 0,
        }
    }

    fn url_for(&self, kind: &str, mode: &str, extra: &str) -> String {
        let mut q = format!("{}?type={kind}&mode={mode}", self.url);
        if let Some(s) = &self.sessid {
            q.push('&');
            q.push_str(s);
        }
        q.push_str(extra);
        q
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, basic: bool) -> (u16, String) {
        self.requests += 1;
        let mut req = req;
        if basic || self.basic_always {
            req = req.basic_auth(&self.login, Some(&self.password));
        }
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send().await.expect("request to the site");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = resp.bytes().await.expect("answer body");
        assert!(
            !ctype.contains("html"),
            "the site answered HTML ({ctype}), which 1C cannot read"
        );
        let text = if ctype.contains("windows-1251") {
            encoding_rs::WINDOWS_1251.decode(&bytes).0.into_owned()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        (status, text)
    }

    /// A status answer as 1C reads it.
    fn read_status(status: u16, text: &str) -> Answer {
        assert_eq!(status, 200, "HTTP {status}: {text}");
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        assert!(
            ["success", "progress", "failure"].contains(&first),
            "unknown status line {first:?} (1C: «Получен неизвестный статус»): {text}"
        );
        Answer {
            status: first.to_string(),
            text: rest.to_string(),
        }
    }

    /// `mode=checkauth`.
    pub async fn checkauth(&mut self, kind: &str) -> Answer {
        self.cookie = None;
        self.sessid = None;
        let url = self.url_for(kind, "checkauth", "");
        let (status, text) = self.send(self.http.get(url), true).await;
        let answer = Self::read_status(status, &text);
        if answer.ok() {
            let lines: Vec<&str> = answer.text.lines().collect();
            assert!(lines.len() >= 2, "checkauth answer: {text:?}");
            self.cookie = Some(format!("{}={}", lines[0], lines[1]));
            self.sessid = lines
                .get(2)
                .filter(|l| l.starts_with("sessid="))
                .map(|l| l.to_string());
        }
        answer
    }

    /// `mode=init`: returns the `key=value` lines.
    pub async fn init(&mut self, kind: &str, version: Option<&str>) -> Vec<(String, String)> {
        let extra = version.map(|v| format!("&version={v}")).unwrap_or_default();
        let url = self.url_for(kind, "init", &extra);
        let (status, text) = self.send(self.http.get(url), false).await;
        assert_eq!(status, 200, "{text}");
        assert!(!text.starts_with("failure"), "init failed: {text}");
        let pairs: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &pairs {
            match k.as_str() {
                "zip" => self.zip_offered = v == "yes",
                "file_limit" => self.file_limit = v.parse().expect("file_limit is a number"),
                _ => {}
            }
        }
        assert!(self.file_limit > 0, "init names no file_limit: {text}");
        pairs
    }

    /// `mode=file`: the bytes in parts of at most `file_limit`; each part must succeed.
    pub async fn upload(&mut self, kind: &str, name: &str, bytes: &[u8]) -> Answer {
        let mut last = None;
        for part in bytes.chunks(self.file_limit.max(1)) {
            let url = self.url_for(kind, "file", &format!("&filename={}", encode(name)));
            let (status, text) = self
                .send(self.http.post(url).body(part.to_vec()), false)
                .await;
            let answer = Self::read_status(status, &text);
            if !answer.ok() {
                return answer;
            }
            last = Some(answer);
        }
        last.expect("at least one part")
    }

    /// `mode=import`, repeated while the site answers `progress`.
    pub async fn import(&mut self, kind: &str, name: &str) -> Answer {
        for _ in 0..100_000 {
            let url = self.url_for(kind, "import", &format!("&filename={}", encode(name)));
            let (status, text) = self.send(self.http.get(url), false).await;
            let answer = Self::read_status(status, &text);
            if answer.status != "progress" {
                return answer;
            }
            self.progress_answers += 1;
        }
        panic!("the site answered progress forever for {name}");
    }

    /// `type=sale&mode=query`: the site's documents; returns the content type and the body.
    pub async fn query(&mut self) -> (String, Vec<u8>) {
        self.requests += 1;
        let mut req = self.http.get(self.url_for("sale", "query", ""));
        if self.basic_always {
            req = req.basic_auth(&self.login, Some(&self.password));
        }
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send().await.expect("query");
        assert_eq!(resp.status().as_u16(), 200);
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().await.expect("query body").to_vec();
        assert!(
            !body.starts_with(b"failure"),
            "query failed: {}",
            String::from_utf8_lossy(&body)
        );
        (ctype, body)
    }

    /// Any other mode, repeated while `progress`.
    pub async fn call(&mut self, kind: &str, mode: &str) -> Answer {
        for _ in 0..10_000 {
            let url = self.url_for(kind, mode, "");
            let (status, text) = self.send(self.http.get(url), false).await;
            let answer = Self::read_status(status, &text);
            if answer.status != "progress" {
                return answer;
            }
            self.progress_answers += 1;
        }
        panic!("the site answered progress forever for mode={mode}");
    }

    /// A whole catalog exchange of `files` (name as 1C sends it, path on disk), in order:
    /// checkauth, init, the uploads (one zip when the site takes zips and `use_zip`), one
    /// import per file. Returns each file's import answer; panics on a failed upload.
    pub async fn catalog_exchange(&mut self, files: &[(String, &Path)]) -> Vec<Answer> {
        let auth = self.checkauth("catalog").await;
        assert!(auth.ok(), "checkauth: {auth:?}");
        self.init("catalog", None).await;
        if self.use_zip && self.zip_offered {
            let zip = zip_files(files);
            let a = self.upload("catalog", "exchange.zip", &zip).await;
            assert!(a.ok(), "zip upload: {a:?}");
        } else {
            for (name, path) in files {
                let bytes = std::fs::read(path).expect("read sample");
                let a = self.upload("catalog", name, &bytes).await;
                assert!(a.ok(), "upload of {name}: {a:?}");
            }
        }
        let mut answers = Vec::new();
        for (name, _) in files {
            answers.push(self.import("catalog", name).await);
        }
        answers
    }
}

/// Percent-encodes a file name for the query string.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The files in one zip, under the names 1C gives them.
pub fn zip_files(files: &[(String, &Path)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    for (name, path) in files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        w.write_all(&std::fs::read(path).expect("read sample"))
            .expect("zip write");
    }
    w.finish().expect("zip finish");
    buf.into_inner()
}
