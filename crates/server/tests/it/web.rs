//! The web pages through the real HTTP server, as a browser without scripts uses them: a
//! session cookie, forms with their CSRF tokens, redirects followed by hand. (Journeys in a
//! real browser are in the browser tests.)

use crate::support::{id, Engine, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

/// A browser: keeps cookies, does not follow redirects, speaks `lang`.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    lang: &'static str,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first `<input name=NAME value=…>` of the page.
    fn input(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle).map(|i| i + needle.len());
        start
            .and_then(|s| {
                self.body[s..]
                    .find('"')
                    .map(|e| self.body[s..s + e].to_string())
            })
            .unwrap_or_default()
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

impl Browser {
    fn new(srv: &TestServer, lang: &'static str) -> Browser {
        Browser {
            base: srv.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            lang,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = req.header("accept-language", self.lang);
        if !cookie.is_empty() {
            req = req.header(COOKIE, cookie);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for c in headers.get_all(SET_COOKIE).iter() {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Logs in through the form; the page the login redirected to.
    async fn log_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = form.input("csrf");
        let done = self
            .post(
                "/login",
                &[
                    ("email", email),
                    ("password", password),
                    ("csrf", &csrf),
                    ("next", ""),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        done
    }
}

async fn pages_need_a_login_and_keep_the_session_in_a_safe_cookie(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let mut b = Browser::new(&srv, "de-DE,de;q=0.9,en;q=0.8");

    // Not logged in: to the login form, remembering where to go after.
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/login");
    let list = b.get("/contacts?sort=email").await;
    assert_eq!(list.location(), "/login?next=%2Fcontacts%3Fsort%3Demail");

    // The form, in German, with a CSRF value that is also a cookie.
    let form = b.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<html lang=\"de\">"), "{}", form.body);
    assert!(form.body.contains("Anmelden"));
    let csrf_cookie = form.set_cookie("kontor_login_csrf").unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));
    for h in ["content-security-policy", "x-content-type-options"] {
        assert!(form.headers.contains_key(h), "{h} missing");
    }
    let csrf = form.input("csrf");
    assert_eq!(csrf.len(), 64);

    // A form posted without the value (from another site) is refused, the e-mail kept.
    let forged = b
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.set_cookie("kontor_session").is_none());

    // A wrong password: 401, the message next to the form, the e-mail as typed.
    let form = b.get("/login").await;
    let wrong = b
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", "not-it"),
                ("csrf", &form.input("csrf")),
                ("next", "/contacts"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("E-Mail oder Passwort ist falsch."),
        "{}",
        wrong.body
    );
    assert_eq!(wrong.input("email"), ADMIN_EMAIL);
    assert_eq!(wrong.input("next"), "/contacts");

    // The right one: a session cookie only this site's pages send, and to `next`.
    let form = b.get("/login").await;
    let ok = b
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("csrf", &form.input("csrf")),
                ("next", "/contacts"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), "/contacts");
    let session = ok.set_cookie("kontor_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Secure"), "not over TLS: {session}");
    let token = b.cookies["kontor_session"].clone();

    // A login never sends the browser to another site.
    let mut other = Browser::new(&srv, "en");
    let form = other.get("/login").await;
    let away = other
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("csrf", &form.input("csrf")),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(away.location(), "/");

    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/contacts\""));
    assert!(home.body.contains("Kontakte"));
    assert!(home.body.contains(ADMIN_EMAIL));
    // The stylesheet comes from the binary, cacheable for good.
    let css_path = {
        let start = home.body.find("/assets/kontor-").unwrap();
        let end = home.body[start..].find('"').unwrap();
        home.body[start..start + end].to_string()
    };
    let css = b.get(&css_path).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        b.get("/assets/other.css").await.status,
        StatusCode::NOT_FOUND
    );

    // Logging out needs the page's token; then the session is dead, for the API too.
    let csrf = home.input("csrf");
    let refused = b
        .post("/logout", &[("csrf", "0".repeat(64).as_str())])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert!(!b.cookies.contains_key("kontor_session"));
    b.cookies.insert("kontor_session".into(), token.clone());
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    let api = reqwest::Client::new()
        .get(format!("{}/api/v1/auth/me", srv.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // The API's paths stay the API's: JSON, whoever asks.
    let api404 = b.get("/api/nothing").await;
    assert_eq!(api404.status, StatusCode::NOT_FOUND);
    assert!(api404.body.starts_with('{'), "{}", api404.body);
    srv.stop().await;
}

async fn lists_and_records_show_what_the_api_would(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m1 = srv.user("m1@x.ru", "manager", None).await;
    let _m2 = srv.user("m2@x.ru", "manager", None).await;
    let company = id(&m1
        .create(
            "companies",
            json!({"name": "Альфа Трейд", "inn": "7707083893"}),
        )
        .await);
    let mine = id(&m1
        .create(
            "contacts",
            json!({"last_name": "Достоевский", "first_name": "Фёдор", "email": "fd@alfa.ru",
                   "phone": "+7 812 555-01-02", "company_id": company}),
        )
        .await);
    let (s, _) = m1
        .patch(
            &format!("/api/v1/contacts/{mine}"),
            json!({"position": "Писатель"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for i in 0..55 {
        admin
            .create("companies", json!({"name": format!("Firma {i:02}")}))
            .await;
    }

    // The owner sees the contact in the list, with its company by name.
    let mut b1 = Browser::new(&srv, "ru");
    b1.log_in("m1@x.ru", "user-password-1").await;
    let list = b1.get("/contacts").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Контакты"));
    // Columns are called what Russian calls them; the count is worded for its number.
    assert!(
        list.body.contains("<th scope=\"col\">Фамилия</th>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("1 запись"), "{}", list.body);
    assert!(list.body.contains(&format!("href=\"/contacts/{mine}\"")));
    assert!(list.body.contains("fd@alfa.ru"));
    // A filter the API takes, and a search within the list.
    let filtered = b1.get("/contacts?email=nobody%40alfa.ru").await;
    assert!(!filtered.body.contains(&mine), "{}", filtered.body);
    assert!(filtered.body.contains("Ничего не найдено."));
    let searched = b1.get("/contacts?q=%D0%B4%D0%BE%D1%81%D1%82%D0%BE").await;
    assert!(searched.body.contains(&mine), "{}", searched.body);

    // The record: fields, the company it belongs to, the history with before → after.
    let page = b1.get(&format!("/contacts/{mine}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Достоевский Фёдор"));
    assert!(page
        .body
        .contains(&format!("href=\"/companies/{company}\">Альфа Трейд</a>")));
    assert!(page.body.contains("<ins>Писатель</ins>"), "{}", page.body);
    assert!(page.body.contains("m1@x.ru"));
    // The company lists its contacts.
    let co = b1.get(&format!("/companies/{company}")).await;
    assert!(
        co.body.contains(&format!("href=\"/contacts/{mine}\"")),
        "{}",
        co.body
    );

    // Another manager can neither list it nor open it by its address.
    let mut b2 = Browser::new(&srv, "en");
    b2.log_in("m2@x.ru", "user-password-1").await;
    assert!(!b2.get("/contacts").await.body.contains(&mine));
    let theirs = b2.get(&format!("/contacts/{mine}")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(!theirs.body.contains("Достоевский"));
    assert!(b2.get("/widgets").await.status == StatusCode::NOT_FOUND);

    // A role that hides the phone never shows it, in the list or on the record.
    let (s, r) = admin
        .post(
            "/api/v1/roles",
            json!({"name": "reader", "permissions": {"contacts": "all", "companies": "all"},
                   "hidden_fields": {"contacts": ["phone"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, r) = admin
        .post(
            "/api/v1/users",
            json!({"email": "r@x.ru", "password": "user-password-1", "role": "reader"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let mut br = Browser::new(&srv, "en");
    br.log_in("r@x.ru", "user-password-1").await;
    let shown = br.get(&format!("/contacts/{mine}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains("fd@alfa.ru"));
    assert!(!shown.body.contains("555-01-02"), "{}", shown.body);
    assert!(!br.get("/contacts").await.body.contains("555-01-02"));
    assert!(!br
        .get("/contacts?sort=phone")
        .await
        .body
        .contains("555-01-02"));

    // Keyset pages of 50 (56 companies: "Firma 00" to "54", then the Cyrillic name), the count
    // in the reader's language.
    let mut ba = Browser::new(&srv, "en");
    ba.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = ba.get("/companies?sort=name").await;
    assert!(first.body.contains("56 records"), "{}", first.body);
    assert_eq!(
        first.body.matches("<tr>").count(),
        51,
        "a header and 50 rows"
    );
    assert!(first.body.contains("Firma 00") && !first.body.contains("Firma 50"));
    let next = {
        let start = first
            .body
            .find("href=\"/companies?sort=name&amp;cursor=")
            .unwrap()
            + 6;
        let end = first.body[start..].find('"').unwrap();
        first.body[start..start + end].replace("&amp;", "&")
    };
    let second = ba.get(&next).await;
    assert_eq!(second.body.matches("<tr>").count(), 7, "{}", second.body);
    assert!(second.body.contains("Firma 54") && !second.body.contains("Firma 00"));
    assert!(second.body.contains("Альфа Трейд"));
    // A bad filter is a clear message, not a failure.
    let bad = ba.get("/deals?amount[gt]=lots").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("amount"), "{}", bad.body);
    srv.stop().await;
}

async fn forms_create_edit_and_delete_and_the_bin_brings_records_back(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let mut b = Browser::new(&srv, "en");
    b.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // Bad input: the message beside the field, everything typed still there.
    let form = b.get("/companies/new").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.input("csrf");
    let bad = b
        .post(
            "/companies/new",
            &[
                ("csrf", &csrf),
                ("name", "Бета"),
                ("inn", "123"),
                ("website", "beta.ru"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("id=\"e-inn\""), "{}", bad.body);
    assert!(bad.body.contains("aria-describedby=\"e-inn\""));
    assert_eq!(bad.input("inn"), "123");
    assert_eq!(bad.input("name"), "Бета");
    assert_eq!(bad.input("website"), "beta.ru");
    // Without the form's token nothing is written.
    let forged = b.post("/companies/new", &[("name", "Forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let made = b
        .post(
            "/companies/new",
            &[
                ("csrf", &csrf),
                ("name", "Бета"),
                ("inn", "7707083893"),
                ("website", "beta.ru"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let path = made.location().to_string();
    let company = path.trim_start_matches("/companies/").to_string();
    let page = b.get(&path).await;
    assert!(page.body.contains("<h1>Бета</h1>"), "{}", page.body);

    // Edit: a changed field changes, an emptied one is cleared; the history says so.
    let edit = b.get(&format!("{path}/edit")).await;
    assert_eq!(edit.input("website"), "beta.ru");
    let saved = b
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "Бета Плюс"),
                ("inn", "7707083893"),
                ("website", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = b.get(&path).await;
    assert!(page.body.contains("<h1>Бета Плюс</h1>"));
    assert!(page.body.contains("<del>Бета</del>"), "{}", page.body);
    assert!(page.body.contains("<del>beta.ru</del>"));
    assert!(page.body.contains("It can be restored until"));

    // Delete: to the bin, and the list says until when it can come back.
    let gone = b.post(&format!("{path}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), format!("/companies?deleted={company}"));
    let list = b.get(gone.location()).await;
    assert!(
        list.body.contains("was moved to the recycle bin."),
        "{}",
        list.body
    );
    assert!(list.body.contains("It can be restored until"));
    assert!(!list
        .body
        .contains(&format!("href=\"/companies/{company}\"")));
    assert_eq!(b.get(&path).await.status, StatusCode::NOT_FOUND);

    // The bin shows it; restoring brings it back as it was.
    let bin = b.get("/trash?entity=companies").await;
    let pick = format!("companies/{company}");
    assert!(
        bin.body.contains(&format!("value=\"{pick}\"")),
        "{}",
        bin.body
    );
    assert!(bin.body.contains(ADMIN_EMAIL));
    let none = b.post("/trash/restore", &[("csrf", &csrf)]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    let back = b
        .post("/trash/restore", &[("csrf", &csrf), ("pick", &pick)])
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.location(), "/trash?restored=1");
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Бета Плюс</h1>"));

    // Only admins purge.
    let _m = srv.user("m@x.ru", "manager", None).await;
    let mut m = Browser::new(&srv, "en");
    m.log_in("m@x.ru", "user-password-1").await;
    let home = m.get("/").await;
    let refused = m
        .post(
            "/trash/purge",
            &[("csrf", &home.input("csrf")), ("pick", &pick)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!m.get("/trash").await.body.contains("/trash/purge"));
    assert_eq!(b.get(&path).await.status, StatusCode::OK);
    srv.stop().await;
}

async fn history_puts_a_record_back_as_it_was_and_undoes_a_batch(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let contact = id(&admin
        .create("contacts", json!({"last_name": "Иванов"}))
        .await);
    for name in ["Петров", "Сидоров"] {
        let (s, _) = admin
            .patch(
                &format!("/api/v1/contacts/{contact}"),
                json!({"last_name": name}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, h) = admin
        .get(&format!("/api/v1/contacts/{contact}/history"))
        .await;
    let as_petrov = h["items"][1]["at"].as_str().unwrap().to_string();

    let mut b = Browser::new(&srv, "en");
    b.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = b.get(&format!("/contacts/{contact}")).await;
    assert_eq!(
        page.body
            .matches("Restore the record as it was here")
            .count(),
        3,
        "one per entry: {}",
        page.body
    );
    let csrf = page.input("csrf");
    let back = b
        .post(
            "/history/restore",
            &[
                ("csrf", &csrf),
                ("entity", "contacts"),
                ("id", &contact),
                ("at", &as_petrov),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let page = b.get(back.location()).await;
    assert!(page.body.contains("<h1>Петров</h1>"), "{}", page.body);
    // The restore is a new change; the record's history still has every step.
    assert!(page.body.contains("<del>Сидоров</del>"));

    // One batch of three companies, undone from the history page.
    let (s, done) = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [
                {"op": "create", "entity": "companies", "data": {"name": "Batch One"}},
                {"op": "create", "entity": "companies", "data": {"name": "Batch Two"}},
                {"op": "create", "entity": "companies", "data": {"name": "Batch Three"}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    let batch = done["batch"].as_str().unwrap().to_string();
    let listed = b.get(&format!("/history?batch={batch}")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body.matches("Undo this batch").count(),
        3,
        "{}",
        listed.body
    );
    let filtered = b
        .get("/history?entity=companies&op=create&origin=api")
        .await;
    assert!(filtered.body.contains("Undo this batch"));
    assert!(!filtered.body.contains("/contacts/"), "{}", filtered.body);
    let undone = b
        .post("/history/undo", &[("csrf", &csrf), ("batch", &batch)])
        .await;
    assert_eq!(undone.status, StatusCode::SEE_OTHER, "{}", undone.body);
    let said = b.get(undone.location()).await;
    assert!(said.body.contains("The batch was undone"), "{}", said.body);
    let list = b.get("/companies").await;
    assert!(!list.body.contains("Batch One") && !list.body.contains("Batch Three"));
    let bad = b
        .post("/history/undo", &[("csrf", &csrf), ("batch", "nonsense")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // One user's changes between two times, found by their e-mail and undone together.
    let from = chrono::Utc::now() - chrono::Duration::seconds(1);
    for name in ["Hour One", "Hour Two"] {
        admin.create("companies", json!({"name": name})).await;
    }
    let to = chrono::Utc::now() + chrono::Duration::seconds(1);
    let (from, to) = (from.to_rfc3339(), to.to_rfc3339());
    let query = serde_urlencoded::to_string([
        ("actor", ADMIN_EMAIL),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ])
    .unwrap();
    let range = b.get(&format!("/history?{query}")).await;
    assert_eq!(range.status, StatusCode::OK, "{}", range.body);
    assert!(range.body.contains("Hour") || range.body.contains("companies"));
    assert!(
        range
            .body
            .contains("Undo everything this user changed in this time"),
        "{}",
        range.body
    );
    assert!(
        range.body.contains("Undo this user&#39;s changes")
            || range.body.contains("Undo this user's changes")
    );
    let (_, me) = admin.get("/api/v1/auth/me").await;
    let me = me["id"].as_str().unwrap().to_string();
    let undone = b
        .post(
            "/history/undo",
            &[
                ("csrf", &csrf),
                ("actor", &me),
                ("from", &from),
                ("to", &to),
            ],
        )
        .await;
    assert_eq!(undone.status, StatusCode::SEE_OTHER, "{}", undone.body);
    let list = b.get("/companies").await;
    assert!(
        !list.body.contains("Hour One") && !list.body.contains("Hour Two"),
        "{}",
        list.body
    );
    let nobody = b.get("/history?actor=nobody%40x.ru").await;
    assert_eq!(nobody.status, StatusCode::UNPROCESSABLE_ENTITY);
    srv.stop().await;
}

async fn an_invoice_with_lines_is_issued_edited_and_printed(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin
        .create(
            "companies",
            json!({"name": "Альфа", "legal_name": "ООО «Альфа»", "inn": "7707083893"}),
        )
        .await);
    // Our own company, whose details the printed invoice gives as the seller's.
    admin
        .create(
            "companies",
            json!({"name": "Наша Фирма", "legal_name": "ООО «Наша Фирма»", "inn": "7830002293",
                   "kpp": "783001001",
                   "addresses": [{"kind": "legal", "text": "191186, Санкт-Петербург, Невский пр., 1"}],
                   "bank_accounts": [{"account": "40702810900000000001", "bik": "044525225",
                                      "bank_name": "ПАО Сбербанк", "corr_account": "30101810400000000225"}]}),
        )
        .await;
    let mut b = Browser::new(&srv, "en");
    b.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let form = b.get("/invoices/new").await;
    assert!(
        form.body.contains("name=\"lines[2].price\""),
        "three blank lines"
    );
    let csrf = form.input("csrf");
    let line = |price: &'static str| {
        vec![
            ("company_id", company.clone()),
            ("seller_id", "Наша Фирма".to_string()),
            ("number", "INV-7".to_string()),
            ("issue_date", "2026-12-07".to_string()),
            ("lines[0].description", "Консультация".to_string()),
            ("lines[0].quantity", "2".to_string()),
            ("lines[0].price", price.to_string()),
            ("lines[0].vat_rate", "20".to_string()),
            ("lines[1].description", "".to_string()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let mut f: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
        f.extend(fields);
        f
    };
    // A bad price: the message names the line, the lines stay as typed.
    let bad_fields = post(line("abc"));
    let bad_refs: Vec<(&str, &str)> = bad_fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bad = b.post("/invoices/new", &bad_refs).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("lines[0].price"), "{}", bad.body);
    assert_eq!(bad.input("lines[0].price"), "abc");
    assert_eq!(bad.input("lines[0].description"), "Консультация");

    let ok_fields = post(line("1500.00"));
    let ok_refs: Vec<(&str, &str)> = ok_fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = b.post("/invoices/new", &ok_refs).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let path = made.location().to_string();
    let page = b.get(&path).await;
    assert!(page.body.contains("Консультация"), "{}", page.body);
    assert!(page.body.contains("3,000.00"), "line amount: {}", page.body);
    assert!(page.body.contains("3,600.00"), "total with VAT");

    // Printable: the buyer, the lines, the totals; no navigation.
    let print = b.get(&format!("{path}/print")).await;
    assert_eq!(print.status, StatusCode::OK);
    assert!(print.body.contains("ООО «Альфа»") && print.body.contains("INN 7707083893"));
    for seller in [
        "Seller: </strong>ООО «Наша Фирма», INN 7830002293, KPP 783001001",
        "191186, Санкт-Петербург, Невский пр., 1",
        "Account number 40702810900000000001, Bank ПАО Сбербанк, BIK 044525225",
    ] {
        assert!(print.body.contains(seller), "{seller}: {}", print.body);
    }
    // The next invoice is from the same company of ours, unless changed.
    let next = b.get("/invoices/new").await;
    assert_eq!(next.input("seller_id"), "Наша Фирма");
    assert!(print.body.contains("3,600.00 RUB"), "{}", print.body);
    assert!(!print.body.contains("nav class=\"side\""));
    let not_invoice = b.get(&format!("/companies/{company}/print")).await;
    assert_eq!(not_invoice.status, StatusCode::NOT_FOUND);

    // Edit a line: the totals follow.
    let edit = b.get(&format!("{path}/edit")).await;
    assert_eq!(edit.input("lines[0].description"), "Консультация");
    let mut fields: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
    for (k, v) in ok_fields.iter().skip(1) {
        let v = if *k == "lines[0].quantity" {
            "3".to_string()
        } else {
            v.clone()
        };
        fields.push((k, v));
    }
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = b.post(&format!("{path}/edit"), &refs).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = b.get(&path).await;
    assert!(page.body.contains("5,400.00"), "{}", page.body);
    // Saving the form unchanged changes nothing.
    let before = page
        .body
        .matches("Restore the record as it was here")
        .count();
    let edit = b.get(&format!("{path}/edit")).await;
    let mut same: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
    for name in [
        "company_id",
        "ref-company_id",
        "seller_id",
        "ref-seller_id",
        "number",
        "issue_date",
        "lines[0].description",
        "lines[0].quantity",
        "lines[0].price",
        "lines[0].vat_rate",
        "currency",
    ] {
        same.push((name.into(), edit.input(name)));
    }
    let refs: Vec<(&str, &str)> = same.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post(&format!("{path}/edit"), &refs).await;
    let page = b.get(&path).await;
    assert_eq!(
        page.body
            .matches("Restore the record as it was here")
            .count(),
        before
    );
    srv.stop().await;
}

async fn administration_is_for_admins_only(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let _m = srv.user("m@x.ru", "manager", None).await;
    let mut m = Browser::new(&srv, "en");
    m.log_in("m@x.ru", "user-password-1").await;
    let home = m.get("/").await;
    assert!(!home.body.contains("href=\"/admin\""));
    for path in ["/admin", "/admin/backups", "/admin/exchange"] {
        assert_eq!(m.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let missing = format!(
        "/admin/exchange/{}",
        "0".repeat(8) + "-0000-7000-8000-000000000000"
    );
    assert_eq!(m.get(&missing).await.status, StatusCode::FORBIDDEN);
    let mut a = Browser::new(&srv, "en");
    a.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(a.get("/").await.body.contains("href=\"/admin\""));
    let backups = a.get("/admin/backups").await;
    assert_eq!(backups.status, StatusCode::OK);
    assert!(
        backups.body.contains("This server has no backup settings."),
        "{}",
        backups.body
    );
    let runs = a.get("/admin/exchange").await;
    assert!(runs.body.contains("No exchange with 1C has run yet."));
    assert_eq!(a.get(&missing).await.status, StatusCode::NOT_FOUND);
    srv.stop().await;
}

async fn a_user_changes_their_own_name_language_and_password(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let api = srv.user("m@x.ru", "manager", None).await;
    let mut b = Browser::new(&srv, "en");
    b.log_in("m@x.ru", "user-password-1").await;
    let account = b.get("/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    assert!(account.body.contains("My account") && account.body.contains("m@x.ru"));
    let csrf = account.input("csrf");

    // Name and language: the pages speak German from now on, whatever the browser says.
    let saved = b
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("name", "Maria Muster"),
                ("language", "de"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let home = b.get("/").await;
    assert!(home.body.contains("<html lang=\"de\""), "{}", home.body);
    assert!(home.body.contains("Übersicht"));
    let (_, me) = api.get("/api/v1/auth/me").await;
    assert_eq!(me["name"], "Maria Muster", "{me}");
    assert_eq!(me["language"], "de", "{me}");

    // A wrong current password and two different new ones: said beside the field.
    let wrong = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "not-my-password"),
                ("password", "a-new-password-9"),
                ("repeat", "a-new-password-9"),
            ],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("id=\"e-current_password\"")
            && wrong
                .body
                .contains("this is not the account's current password"),
        "{}",
        wrong.body
    );
    let differ = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "user-password-1"),
                ("password", "a-new-password-9"),
                ("repeat", "a-new-password-8"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(differ
        .body
        .contains("Die beiden neuen Passwörter sind verschieden."));
    let short = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "user-password-1"),
                ("password", "short"),
                ("repeat", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("id=\"e-password\""), "{}", short.body);

    // The change ends every other session (the API token) and keeps this browser logged in.
    let changed = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "user-password-1"),
                ("password", "a-new-password-9"),
                ("repeat", "a-new-password-9"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert!(changed.set_cookie("kontor_session").is_some());
    let after = b.get(changed.location()).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(
        after.body.contains("Das Passwort ist geändert"),
        "{}",
        after.body
    );
    let (s, _) = api.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut fresh = Browser::new(&srv, "en");
    fresh.log_in("m@x.ru", "a-new-password-9").await;
    // The change is journaled as the user's own, without the hash.
    let admin = srv.admin().await;
    let (_, h) = admin
        .get(&format!(
            "/api/v1/users/{}/history",
            me["id"].as_str().unwrap()
        ))
        .await;
    let text = h.to_string();
    assert!(
        text.contains("password_changed_at") && !text.contains("argon2"),
        "{text}"
    );
    srv.stop().await;
}

async fn admins_keep_users_roles_teams_and_custom_fields_on_pages(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let _m = srv.user("m@x.ru", "manager", None).await;
    let mut m = Browser::new(&srv, "en");
    m.log_in("m@x.ru", "user-password-1").await;
    for path in ["/users", "/users/new", "/admin/roles/manager"] {
        assert_eq!(m.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let mut a = Browser::new(&srv, "en");
    a.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let home = a.get("/admin").await;
    for link in [
        "/users",
        "/roles",
        "/teams",
        "/fields",
        "/onec_databases",
        "/admin/roles/manager",
    ] {
        assert!(home.body.contains(&format!("href=\"{link}\"")), "{link}");
    }
    // A built-in role's rules, to read: managers own their CRM records, read the catalog.
    let builtin = a.get("/admin/roles/manager").await;
    assert_eq!(builtin.status, StatusCode::OK, "{}", builtin.body);
    assert!(
        builtin.body.contains("<fieldset class=\"rows\" disabled"),
        "{}",
        builtin.body
    );
    let select = |e: &str, act: &str| {
        let at = builtin
            .body
            .find(&format!("name=\"perm[{e}][{act}]\""))
            .unwrap();
        let end = at + builtin.body[at..].find("</select>").unwrap();
        builtin.body[at..end].to_string()
    };
    assert!(select("deals", "update").contains("value=\"own\" selected"));
    assert_eq!(
        a.get("/admin/roles/nobody").await.status,
        StatusCode::NOT_FOUND
    );

    // A role from its permission matrix.
    let form = a.get("/roles/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("name=\"perm[deals][update]\""));
    assert!(form.body.contains("name=\"hidden[companies][inn]\""));
    let csrf = form.input("csrf");
    let matrix = [
        ("csrf", csrf.as_str()),
        ("name", "sales"),
        ("perm[deals][read]", "all"),
        ("perm[deals][update]", "own"),
        ("perm[companies][read]", "team"),
        ("perm[contacts][delete]", "none"),
        ("hidden[companies][inn]", "on"),
        ("readonly[deals][amount]", "on"),
    ];
    let made = a.post("/roles/new", &matrix).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let role_id = made.location().rsplit('/').next().unwrap().to_string();
    let (_, role) = admin.get(&format!("/api/v1/roles/{role_id}")).await;
    assert_eq!(
        role["permissions"],
        json!({"deals": {"read": "all", "update": "own"}, "companies": {"read": "team"}}),
        "{role}"
    );
    assert_eq!(role["hidden_fields"], json!({"companies": ["inn"]}));
    assert_eq!(role["readonly_fields"], json!({"deals": ["amount"]}));
    let edit = a.get(&format!("/roles/{role_id}/edit")).await;
    assert!(
        edit.body
            .contains("name=\"hidden[companies][inn]\" value=\"on\" checked"),
        "{}",
        edit.body
    );
    // Saved as it is, nothing changes; one scope changed is one change.
    let path = format!("/roles/{role_id}/edit");
    assert_eq!(a.post(&path, &matrix).await.status, StatusCode::SEE_OTHER);
    let (_, h) = admin.get(&format!("/api/v1/roles/{role_id}/history")).await;
    assert_eq!(h["items"].as_array().unwrap().len(), 1, "{h}");
    let mut wider = matrix.to_vec();
    wider.push(("perm[deals][delete]", "team"));
    assert_eq!(a.post(&path, &wider).await.status, StatusCode::SEE_OTHER);
    let (_, role) = admin.get(&format!("/api/v1/roles/{role_id}")).await;
    assert_eq!(role["permissions"]["deals"]["delete"], "team", "{role}");

    // A team, and a user of that role made with a password; a refusal keeps what was typed.
    let team = a
        .post("/teams/new", &[("csrf", &csrf), ("name", "North")])
        .await;
    assert_eq!(team.status, StatusCode::SEE_OTHER, "{}", team.body);
    let team_id = team.location().rsplit('/').next().unwrap().to_string();
    let form = a.get("/users/new").await;
    assert!(
        form.body.contains("<option value=\"sales\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("name=\"password\""));
    let user = |password: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("email", "s@x.ru".to_string()),
            ("name", "Sam Seller".to_string()),
            ("role", "sales".to_string()),
            ("team_id", team_id.clone()),
            ("password", password.to_string()),
        ]
    };
    let short = user("short");
    let refused = a
        .post(
            "/users/new",
            &short
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("id=\"e-password\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"Sam Seller\""));
    let good = user("a-good-password-1");
    let made = a
        .post(
            "/users/new",
            &good
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let user_id = made.location().rsplit('/').next().unwrap().to_string();
    let shown = a.get(made.location()).await;
    assert!(
        shown.body.contains("Sam Seller") && shown.body.contains("North"),
        "{}",
        shown.body
    );
    let mut s = Browser::new(&srv, "en");
    s.log_in("s@x.ru", "a-good-password-1").await;
    assert_eq!(s.get("/deals").await.status, StatusCode::OK);

    // A custom field with options, then in the forms of its entity.
    let field = a
        .post(
            "/fields/new",
            &[
                ("csrf", &csrf),
                ("entity", "deals"),
                ("name", "region"),
                ("label", "Sales region"),
                ("type", "enum"),
                ("options", "North\r\nSouth\r\n"),
            ],
        )
        .await;
    assert_eq!(field.status, StatusCode::SEE_OTHER, "{}", field.body);
    let deal_form = a.get("/deals/new").await;
    assert!(
        deal_form.body.contains("name=\"region\"")
            && deal_form.body.contains("<option value=\"South\"")
            && deal_form
                .body
                .contains("<label for=\"f-region\">Sales region</label>"),
        "{}",
        deal_form.body
    );

    // Disabling the user on their page ends their session.
    let disabled = a
        .post(
            &format!("/users/{user_id}/edit"),
            &[("csrf", &csrf), ("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    let gone = s.get("/deals").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert!(gone.location().starts_with("/login"));
    srv.stop().await;
}

async fn references_are_chosen_by_name_within_what_the_user_may_see(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let m1 = srv.user("m1@x.ru", "manager", None).await;
    let m2 = srv.user("m2@x.ru", "manager", None).await;
    let alfa = id(&m1
        .create("companies", json!({"name": "Альфа", "inn": "7707083893"}))
        .await);
    let alfa_spb = id(&m1
        .create("companies", json!({"name": "Альфа", "inn": "7830002293"}))
        .await);
    let beta = id(&m1.create("companies", json!({"name": "Бета Трейд"})).await);
    // Another manager's company: never suggested to m1, never resolved for them.
    let foreign = id(&m2.create("companies", json!({"name": "Гамма Чужая"})).await);

    let mut b = Browser::new(&srv, "en");
    b.log_in("m1@x.ru", "user-password-1").await;

    // Suggestions as one types: only what m1 may read, with a detail telling namesakes apart.
    let suggested = b.get("/suggest/companies?q=%D0%90%D0%BB%D1%8C%D1%84").await;
    assert_eq!(suggested.status, StatusCode::OK, "{}", suggested.body);
    let choices: serde_json::Value = serde_json::from_str(&suggested.body).unwrap();
    let texts: Vec<&str> = choices
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&"Альфа — 7707083893"), "{texts:?}");
    let other = b
        .get("/suggest/companies?q=%D0%93%D0%B0%D0%BC%D0%BC%D0%B0")
        .await;
    assert_eq!(other.body, "[]");
    assert_eq!(
        b.get("/suggest/nonsense?q=x").await.status,
        StatusCode::NOT_FOUND
    );

    // A unique name becomes the record's id.
    let form = b.get("/contacts/new").await;
    assert!(
        form.body.contains("data-suggest=\"/suggest/companies\""),
        "{}",
        form.body
    );
    let csrf = form.input("csrf");
    let made = b
        .post(
            "/contacts/new",
            &[
                ("csrf", &csrf),
                ("last_name", "Иванов"),
                ("company_id", "бета трейд"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let contact = made.location().trim_start_matches("/contacts/").to_string();
    let (_, stored) = m1.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(stored["company_id"], beta.as_str());

    // No match (another manager's company counts as none): refused beside the field, as typed.
    let none = b
        .post(
            "/contacts/new",
            &[
                ("csrf", &csrf),
                ("last_name", "Петров"),
                ("company_id", "Гамма Чужая"),
            ],
        )
        .await;
    assert_eq!(
        none.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        none.body
    );
    assert!(none.body.contains("id=\"e-company_id\""), "{}", none.body);
    assert!(none.body.contains("No record you can see has this name"));
    assert_eq!(none.input("company_id"), "Гамма Чужая");
    assert_eq!(none.input("last_name"), "Петров");

    // Two namesakes: refused with both to choose from; the chosen one is written.
    let several = b
        .post(
            "/contacts/new",
            &[
                ("csrf", &csrf),
                ("last_name", "Петров"),
                ("company_id", "Альфа"),
            ],
        )
        .await;
    assert_eq!(
        several.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        several.body
    );
    for namesake in [&alfa, &alfa_spb] {
        let radio = "type=\"radio\" id=\"c-company_id-";
        assert!(several.body.contains(radio), "{}", several.body);
        let choice = format!("name=\"ref-company_id\" value=\"{namesake}\"");
        assert!(several.body.contains(&choice), "{}", several.body);
    }
    assert!(several.body.contains("Альфа — 7830002293"));
    let chosen = b
        .post(
            "/contacts/new",
            &[
                ("csrf", &csrf),
                ("last_name", "Петров"),
                ("company_id", "Альфа"),
                ("chose-company_id", "1"),
                ("ref-company_id", &alfa_spb),
            ],
        )
        .await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER, "{}", chosen.body);
    let petrov = chosen
        .location()
        .trim_start_matches("/contacts/")
        .to_string();
    let (_, stored) = m1.get(&format!("/api/v1/contacts/{petrov}")).await;
    assert_eq!(stored["company_id"], alfa_spb.as_str());

    // The edit form shows the company's name with its id kept beside; saving it unchanged
    // keeps the namesake it points to.
    let edit = b.get(&format!("/contacts/{petrov}/edit")).await;
    assert_eq!(edit.input("company_id"), "Альфа");
    assert_eq!(edit.input("ref-company_id"), alfa_spb);
    let saved = b
        .post(
            &format!("/contacts/{petrov}/edit"),
            &[
                ("csrf", &csrf),
                ("last_name", "Петров-Водкин"),
                ("company_id", "Альфа"),
                ("ref-company_id", &alfa_spb),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (_, stored) = m1.get(&format!("/api/v1/contacts/{petrov}")).await;
    assert_eq!(stored["company_id"], alfa_spb.as_str());
    assert_eq!(stored["last_name"], "Петров-Водкин");
    // A kept id is no way around permissions: another manager's company stays unknown.
    let smuggled = b
        .post(
            &format!("/contacts/{petrov}/edit"),
            &[
                ("csrf", &csrf),
                ("company_id", "Гамма Чужая"),
                ("chose-company_id", "1"),
                ("ref-company_id", &foreign),
            ],
        )
        .await;
    assert_eq!(
        smuggled.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        smuggled.body
    );
    let (_, stored) = m1.get(&format!("/api/v1/contacts/{petrov}")).await;
    assert_eq!(stored["company_id"], alfa_spb.as_str());

    // From a company's page, a new contact comes with the company filled in.
    let company_page = b.get(&format!("/companies/{beta}")).await;
    let new_here = format!("/contacts/new?company_id={beta}");
    assert!(
        company_page.body.contains(&new_here),
        "{}",
        company_page.body
    );
    let prefilled = b.get(&new_here).await;
    assert_eq!(prefilled.input("company_id"), "Бета Трейд");
    assert_eq!(prefilled.input("ref-company_id"), beta);

    // The script that suggests is served with the page, from Kontor itself.
    let script = prefilled
        .body
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let js = b.get(&script).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("/suggest/"));
    srv.stop().await;
}

/// Maintenance and the shutdown from the administration page: every page then carries the
/// banner, a form's save is refused with a page that says nothing was saved, a manager may
/// neither see nor post the switches.
async fn pages_announce_a_shutdown_and_maintenance_refuses_saves(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let _m = srv.user("m@x.ru", "manager", None).await;
    let mut m = Browser::new(&srv, "de");
    m.log_in("m@x.ru", "user-password-1").await;
    assert_eq!(
        m.get("/admin/operations").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = m.get("/companies/new").await.input("csrf");
    let refused = m
        .post(
            "/admin/shutdown",
            &[("csrf", &csrf), ("minutes", "1"), ("message", "x")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (_, told) = srv.admin().await.get("/api/v1/admin/shutdown").await;
    assert_eq!(told["scheduled"], false);

    let mut a = Browser::new(&srv, "en");
    a.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let ops = a.get("/admin/operations").await;
    assert_eq!(ops.status, StatusCode::OK, "{}", ops.body);
    let csrf_a = ops.input("csrf");
    let done = a
        .post(
            "/admin/shutdown",
            &[
                ("csrf", &csrf_a),
                ("minutes", "30"),
                ("message", "Update tonight"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = m.get("/companies").await;
    assert!(
        page.body.contains("class=\"banner shutdown\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Kontor wird heruntergefahren um"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Update tonight"));
    let banner = m.get("/banner").await;
    assert_eq!(banner.status, StatusCode::OK);
    assert!(banner.body.contains("Update tonight"));
    let ops = a.get("/admin/operations").await;
    let done = a
        .post("/admin/shutdown/cancel", &[("csrf", &ops.input("csrf"))])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);

    let done = a
        .post(
            "/admin/maintenance",
            &[("csrf", &csrf_a), ("on", "1"), ("message", "Umzug")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let form = m.get("/companies/new").await;
    assert!(
        form.body.contains("class=\"banner read-only\""),
        "{}",
        form.body
    );
    let saved = m
        .post(
            "/companies/new",
            &[("csrf", &form.input("csrf")), ("name", "Beta")],
        )
        .await;
    assert_eq!(
        saved.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        saved.body
    );
    assert!(
        saved.body.contains("Nichts wurde gespeichert"),
        "{}",
        saved.body
    );
    assert!(saved.body.contains("Umzug"));
    let done = a
        .post("/admin/maintenance", &[("csrf", &csrf_a), ("on", "0")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let saved = m
        .post(
            "/companies/new",
            &[("csrf", &form.input("csrf")), ("name", "Beta")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    srv.stop().await;
}

crate::engine_tests!(
    pages_announce_a_shutdown_and_maintenance_refuses_saves,
    administration_is_for_admins_only,
    admins_keep_users_roles_teams_and_custom_fields_on_pages,
    a_user_changes_their_own_name_language_and_password,
    an_invoice_with_lines_is_issued_edited_and_printed,
    history_puts_a_record_back_as_it_was_and_undoes_a_batch,
    pages_need_a_login_and_keep_the_session_in_a_safe_cookie,
    lists_and_records_show_what_the_api_would,
    references_are_chosen_by_name_within_what_the_user_may_see,
    forms_create_edit_and_delete_and_the_bin_brings_records_back,
);
