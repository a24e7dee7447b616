//! The web pages in a real browser: headless Chromium driven through ChromeDriver (WebDriver)
//! against the real `kontor serve`, walking the journeys of a sales manager and an
//! administrator. Every page visited is saved as a screenshot under
//! `target/tmp/browser-screenshots/` (CI keeps them as artefacts).
//!
//! Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages,
//! which `.ci/run` installs; without them the test is skipped loudly, and fails under CI.

use crate::support::{init_data, token, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin@browser.test";
const PASSWORD: &str = "browser-admin-1";

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chrome_binaries(test: &str) -> Option<(PathBuf, PathBuf)> {
    let pick = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let driver = pick("KONTOR_CHROMEDRIVER", "/usr/bin/chromedriver");
    let browser = pick("KONTOR_CHROMIUM", "/usr/bin/chromium");
    if driver.exists() && browser.exists() {
        return Some((driver, browser));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: chromium and chromedriver are missing under CI (.ci/run installs them)"
    );
    eprintln!(
        "*** SKIPPED (no {} or {}): {test}",
        driver.display(),
        browser.display()
    );
    None
}

async fn start_driver(driver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A browser session that saves a screenshot of every page it visits.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
    taken: usize,
}

impl Browser {
    async fn open(driver: &Driver, chromium: &Path, base: &str, lang: &str, name: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap().keep();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--lang={lang}"), format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": {"intl.accept_languages": lang},
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a WebDriver session");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("browser-screenshots")
            .join(name);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            base: base.to_string(),
            shots,
            taken: 0,
        }
    }

    /// Saves what the browser shows now as `NN-label.png`.
    async fn shot(&mut self, label: &str) {
        self.taken += 1;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(
            self.shots.join(format!("{:02}-{label}.png", self.taken)),
            png,
        )
        .unwrap();
    }

    async fn visit(&mut self, path: &str, label: &str) -> String {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
        self.shot(label).await;
        self.client.source().await.unwrap()
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks, waits for the next page and photographs it; its source.
    async fn click(&mut self, css: &str, label: &str) -> String {
        let before = self.client.current_url().await.unwrap();
        let el = self.client.find(Locator::Css(css)).await.unwrap();
        el.click().await.unwrap();
        // A form post always lands on a new document; wait until it has.
        let started = Instant::now();
        loop {
            let ready: Value = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .unwrap_or(Value::Null);
            let url = self.client.current_url().await.unwrap();
            if ready == "complete" && (url != before || started.elapsed() > Duration::from_secs(2))
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{label}: no new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.shot(label).await;
        self.client.source().await.unwrap()
    }

    /// Chooses the option of value `value` in a select.
    async fn select(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.select_by_value(value).await.unwrap();
    }

    /// Waits until an element matches `css`; its `value`.
    async fn wait_for_value(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(Some(v)) = el.prop("value").await {
                    return v;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nothing matches {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the address's query contains `part` (a page a script updated in place).
    async fn wait_for_url_query(&self, part: &str) {
        let started = Instant::now();
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.query().is_some_and(|q| q.contains(part)) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the address never got {part}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn value_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn log_in(&mut self, email: &str, password: &str) -> String {
        self.visit("/", "login-form").await;
        assert_eq!(self.path().await, "/login");
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("main button[type=submit]", "logged-in").await
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

async fn api(base: &str, tok: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sales_manager_and_an_admin_walk_the_pages_in_a_real_browser() {
    let Some((driver_bin, chromium)) =
        chrome_binaries("a_sales_manager_and_an_admin_walk_the_pages_in_a_real_browser")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init_data(&data, ADMIN, PASSWORD);
    // A run of the 1C exchange for the admin's pages: a small catalog from 1C.
    let catalog = dir.path().join("import.xml");
    std::fs::write(
        &catalog,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.05\">\n\
         <Классификатор><Ид>c</Ид><Наименование>Каталог</Наименование></Классификатор>\n\
         <Каталог><Ид>c</Ид><ИдКлассификатора>c</ИдКлассификатора><Наименование>Каталог</Наименование><Товары>\n\
         <Товар><Ид>p-1</Ид><Артикул>R-1</Артикул><Наименование>Ромашка садовая</Наименование></Товар>\n\
         </Товары></Каталог>\n</КоммерческаяИнформация>\n",
    )
    .unwrap();
    let o = crate::support::kontor()
        .args([
            "exchange",
            "import",
            "--data",
            data.to_str().unwrap(),
            catalog.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let backups = dir.path().join("backups");
    let srv = Server::start_with(&data, &["--backup-to", backups.to_str().unwrap()]);
    let tok = token(&srv.base, ADMIN, PASSWORD).await;
    // A snapshot, verified, for the backup page.
    let job = api(
        &srv.base,
        &tok,
        reqwest::Method::POST,
        "/api/v1/admin/backups",
        json!({}),
    )
    .await;
    let job_path = format!("/api/v1/jobs/{}", job["id"].as_str().unwrap());
    let started = Instant::now();
    loop {
        let j = api(
            &srv.base,
            &tok,
            reqwest::Method::GET,
            &job_path,
            Value::Null,
        )
        .await;
        if j["state"] != "running" {
            assert_eq!(j["state"], "succeeded", "{j}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "snapshot: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for email in ["anna@browser.test", "boris@browser.test"] {
        api(
            &srv.base,
            &tok,
            reqwest::Method::POST,
            "/api/v1/users",
            json!({"email": email, "password": "manager-pass-1", "role": "manager"}),
        )
        .await;
    }
    api(
        &srv.base,
        &tok,
        reqwest::Method::POST,
        "/api/v1/roles",
        json!({"name": "viewer", "permissions": {"contacts": "all", "companies": "all"},
               "hidden_fields": {"contacts": ["phone"]}}),
    )
    .await;
    api(
        &srv.base,
        &tok,
        reqwest::Method::POST,
        "/api/v1/users",
        json!({"email": "vera@browser.test", "password": "viewer-pass-1", "role": "viewer"}),
    )
    .await;
    let driver = start_driver(&driver_bin).await;

    // Anna, a sales manager, in Russian.
    let mut anna = Browser::open(&driver, &chromium, &srv.base, "ru", "manager").await;
    let home = anna.log_in("anna@browser.test", "manager-pass-1").await;
    assert_eq!(anna.path().await, "/");
    assert!(home.contains("Контакты"), "{home}");

    // A company, a contact of it and a deal.
    anna.visit("/companies/new", "company-form").await;
    anna.fill("#f-name", "ООО Ромашка").await;
    anna.fill("#f-inn", "7707083893").await;
    let page = anna
        .click("main form button[type=submit]", "company-created")
        .await;
    assert!(page.contains("ООО Ромашка"), "{page}");
    let company = anna
        .path()
        .await
        .trim_start_matches("/companies/")
        .to_string();

    // Bad input first: the message beside the field, what was typed kept.
    anna.visit("/contacts/new", "contact-form").await;
    anna.fill("#f-last_name", "Смирнова").await;
    anna.fill("#f-email", "smirnova@").await;
    anna.fill("#f-phone", "+7 495 123-45-67").await;
    // The browser's own check of type=email would stop the post; the server's is what counts.
    anna.client
        .execute("document.querySelector('#f-email').type = 'text'", vec![])
        .await
        .unwrap();
    let page = anna
        .click("main form button[type=submit]", "contact-refused")
        .await;
    assert!(page.contains("id=\"e-email\""), "{page}");
    assert!(!anna.text_of("#e-email").await.is_empty());
    assert_eq!(anna.value_of("#f-last_name").await, "Смирнова");
    assert_eq!(anna.value_of("#f-email").await, "smirnova@");
    anna.fill("#f-email", "smirnova@romashka.ru").await;
    // The company by its name: the field suggests it as one types, choosing keeps its id.
    anna.fill("#f-company_id", "Ромаш").await;
    let suggestion = anna.wait_for_value("#dl-company_id option").await;
    assert_eq!(suggestion, "ООО Ромашка — 7707083893");
    anna.shot("company-suggested").await;
    anna.fill("#f-company_id", &suggestion).await;
    assert_eq!(anna.value_of("input[name='ref-company_id']").await, company);
    let page = anna
        .click("main form button[type=submit]", "contact-created")
        .await;
    assert!(page.contains("Смирнова"), "{page}");
    assert!(page.contains("ООО Ромашка"));
    let contact_path = anna.path().await;

    // A list's search shows its results as one types.
    anna.visit("/contacts", "contacts").await;
    anna.fill("main input[name=q]", "Смирн").await;
    anna.wait_for_url_query("q=").await;
    assert!(anna.text_of("#results").await.contains("Смирнова"));
    anna.shot("contacts-live-search").await;

    // A name typed in full, with no suggestion chosen, is found on the server.
    anna.visit("/deals/new", "deal-form").await;
    anna.fill("#f-title", "Поставка ромашек").await;
    anna.fill("#f-company_id", "ООО Ромашка").await;
    let page = anna
        .click("main form button[type=submit]", "deal-created")
        .await;
    assert!(page.contains("Поставка ромашек"));
    let deal_path = anna.path().await;
    // An invoice to the company, with a line, then its printable form.
    anna.visit("/invoices/new", "invoice-form").await;
    anna.fill("#f-company_id", &company).await;
    anna.fill("#f-number", "СЧ-1").await;
    anna.fill("[id='f-lines[0].description']", "Ромашки, коробка")
        .await;
    anna.fill("[id='f-lines[0].quantity']", "10").await;
    anna.fill("[id='f-lines[0].price']", "250.00").await;
    anna.fill("[id='f-lines[0].vat_rate']", "20").await;
    let page = anna
        .click("main form button[type=submit]", "invoice-issued")
        .await;
    assert!(page.contains("Ромашки, коробка"), "{page}");
    let invoice_path = anna.path().await;
    let page = anna
        .visit(&format!("{invoice_path}/print"), "invoice-print")
        .await;
    // (The browser writes the grouping no-break space as an entity.)
    assert!(page.contains("3&nbsp;000,00 RUB"), "{page}");
    assert!(page.contains("ООО Ромашка"));

    // The company shows its contact and its deal.
    let page = anna
        .visit(&format!("/companies/{company}"), "company-related")
        .await;
    assert!(
        page.contains("Смирнова") && page.contains("Поставка ромашек"),
        "{page}"
    );

    // Delete the contact, then bring it back from the recycle bin.
    anna.visit(&contact_path, "contact").await;
    let page = anna
        .click("form[action$='/delete'] button", "contact-deleted")
        .await;
    assert!(page.contains("перемещена в корзину"), "{page}");
    assert!(page.contains("Можно восстановить до"));
    anna.visit("/trash", "bin").await;
    anna.client
        .find(Locator::Css("input[name=pick]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = anna
        .click(
            "form[action='/trash/restore'] button[type=submit]",
            "restored",
        )
        .await;
    assert!(page.contains("Восстановлено: 1"), "{page}");
    let page = anna.visit(&contact_path, "contact-back").await;
    assert!(page.contains("Смирнова"));

    // Change a field, then put it back from the history.
    anna.visit(&format!("{contact_path}/edit"), "contact-edit")
        .await;
    anna.fill("#f-position", "Главный бухгалтер").await;
    let page = anna
        .click("main form button[type=submit]", "contact-edited")
        .await;
    assert!(page.contains("<ins>Главный бухгалтер</ins>"), "{page}");
    // The newest entry is first: the one before the edit is the second.
    let page = anna
        .click(
            "ol.timeline > li:nth-child(2) form[action='/history/restore'] button",
            "field-restored",
        )
        .await;
    assert!(
        page.contains("<del>Главный бухгалтер</del>"),
        "the restore is a new change: {page}"
    );

    // Undo the batch that made the deal: the deal goes.
    anna.visit(&deal_path, "deal").await;
    let page = anna
        .click("form[action='/history/undo'] button", "deal-undone")
        .await;
    assert!(page.contains("Операция отменена"), "{page}");
    let page = anna.visit("/deals", "deals-after-undo").await;
    assert!(!page.contains("Поставка ромашек"), "{page}");

    // Her own account: the pages in German from now on, whatever the browser says.
    anna.visit("/account", "account").await;
    anna.select("#f-language", "de").await;
    let page = anna
        .click(
            "form[action='/account'] button[type=submit]",
            "account-saved",
        )
        .await;
    assert!(page.contains("Gespeichert."), "{page}");
    assert!(page.contains("Mein Konto"), "{page}");
    anna.close().await;

    // Boris, another manager: Anna's contact is not his, not even by its address.
    let mut boris = Browser::open(&driver, &chromium, &srv.base, "en", "other-manager").await;
    boris.log_in("boris@browser.test", "manager-pass-1").await;
    let page = boris.visit(&contact_path, "not-his").await;
    assert!(!page.contains("Смирнова"), "{page}");
    assert!(page.contains("There is no such page"), "{page}");
    let page = boris.visit("/contacts", "his-contacts").await;
    assert!(!page.contains("Смирнова"));
    boris.close().await;

    // Vera's role hides phones: she sees the contact, never the phone.
    let mut vera = Browser::open(&driver, &chromium, &srv.base, "de", "hidden-field").await;
    vera.log_in("vera@browser.test", "viewer-pass-1").await;
    let page = vera.visit(&contact_path, "no-phone").await;
    assert!(
        page.contains("Smirnova") || page.contains("Смирнова"),
        "{page}"
    );
    assert!(!page.contains("123-45-67"), "{page}");
    let page = vera.visit("/contacts?q=123-45-67", "no-phone-search").await;
    assert!(!page.contains("Смирнова"), "{page}");
    // Not an admin: no administration.
    let page = vera.visit("/admin/backups", "no-admin").await;
    assert!(!page.contains("snapshot"), "{page}");
    vera.close().await;

    // The admin sees the backups (the verified snapshot) and the exchange run's report.
    let mut admin = Browser::open(&driver, &chromium, &srv.base, "en", "admin").await;
    admin.log_in(ADMIN, PASSWORD).await;
    let page = admin.visit("/admin/backups", "backups").await;
    assert!(page.contains("Newest verified snapshot:"), "{page}");
    assert!(page.contains("✓"));
    let page = admin.visit("/admin/exchange", "exchange-runs").await;
    assert!(page.contains("exchange."), "{page}");
    let page = admin.click("table.list tbody a", "exchange-run").await;
    assert!(page.contains("import.xml"), "{page}");
    let page = admin.visit("/products", "products-from-1c").await;
    assert!(page.contains("Ромашка садовая"), "{page}");

    // A snapshot from the page: its job reloads itself until the snapshot is verified.
    admin.visit("/admin/backups", "backups-again").await;
    let mut page = admin
        .click(
            "form[action='/admin/backups/create'] button",
            "snapshot-job",
        )
        .await;
    assert!(admin.path().await.starts_with("/admin/jobs/"), "{page}");
    let started = Instant::now();
    while page.contains("<strong>running</strong>") {
        assert!(started.elapsed() < Duration::from_secs(60), "{page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        page = admin.client.source().await.unwrap();
    }
    admin.shot("snapshot-done").await;
    assert!(page.contains("<strong>succeeded</strong>"), "{page}");
    assert!(
        page.contains("verified_seconds") || page.contains("Verified seconds"),
        "{page}"
    );

    // A role from its permission matrix, then a user of it.
    admin.visit("/roles/new", "role-matrix").await;
    admin.fill("#f-name", "deal-readers").await;
    admin
        .select("select[name='perm[deals][read]']", "all")
        .await;
    admin
        .select("select[name='perm[companies][read]']", "team")
        .await;
    let page = admin
        .click("main form button[type=submit]", "role-made")
        .await;
    assert!(page.contains("deal-readers"), "{page}");
    admin.visit("/users/new", "user-form").await;
    admin.fill("#f-email", "dora@browser.test").await;
    admin.select("#f-role", "deal-readers").await;
    admin.fill("#f-password", "dora-pass-12").await;
    let page = admin
        .click("main form button[type=submit]", "user-made")
        .await;
    assert!(page.contains("dora@browser.test"), "{page}");
    admin.close().await;
    let mut dora = Browser::open(&driver, &chromium, &srv.base, "en", "custom-role").await;
    dora.log_in("dora@browser.test", "dora-pass-12").await;
    let page = dora.visit("/deals", "deals-of-all").await;
    assert_eq!(dora.path().await, "/deals", "{page}");
    let page = dora.visit("/contacts", "contacts-refused").await;
    assert!(!page.contains("Смирнова"), "{page}");
    dora.close().await;
}
