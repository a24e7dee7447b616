//! The 1C exchange over HTTP, against the real `kontor serve`, driven by the simulated 1C
//! client in [`crate::onec`]: every sample catalog arrives as it does offline (`kontor exchange
//! import`), in parts, zipped or not, through the progress loop; a re-run writes nothing; only
//! exchange users get in, and they get nowhere else; hostile uploads are refused.

use crate::onec::{zip_files, OneC};
use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const ADMIN: &str = "admin@example.com";
const PASSWORD: &str = "correct horse battery staple";
const ONEC: &str = "1c@example.com";
const ONEC_PASSWORD: &str = "exchange password 1";
const CATALOG: [&str; 6] = [
    "product_groups",
    "properties",
    "price_types",
    "warehouses",
    "products",
    "offers",
];

/// A server (small parts, short steps, so chunking and the progress loop are exercised) with
/// an exchange user; returns it and an admin token. `step_ms` 0 makes the first answer to
/// every import `progress`.
async fn exchange_server(data: &Path, step_ms: u32) -> (Server, String) {
    init_data(data, ADMIN, PASSWORD);
    let step = step_ms.to_string();
    let args = [
        "--exchange-file-limit",
        "65536",
        "--exchange-step-ms",
        step.as_str(),
    ];
    let server = Server::start_with(data, &args);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/users", server.base))
        .bearer_auth(&tok)
        .json(&json!({"email": ONEC, "name": "1C", "role": "exchange", "password": ONEC_PASSWORD}))
        .send()
        .await
        .expect("create exchange user");
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    (server, tok)
}

/// The catalog as the API shows it, comparable across databases: per entity, records by 1C
/// id, without Kontor's own ids and times, references replaced by the referenced 1C id.
async fn catalog(base: &str, tok: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut raw = BTreeMap::new();
    let mut ext_of = BTreeMap::new();
    for entity in CATALOG {
        let items = all_items(base, tok, &format!("{entity}?limit=500")).await;
        for r in &items {
            if let (Some(id), Some(ext)) = (r["id"].as_str(), r["external_id"].as_str()) {
                ext_of.insert(id.to_string(), format!("{entity}:{ext}"));
            }
        }
        raw.insert(entity.to_string(), items);
    }
    fn normal(v: &Value, ext_of: &BTreeMap<String, String>) -> Value {
        match v {
            Value::String(s) => ext_of.get(s).map_or(v.clone(), |e| json!(e)),
            Value::Array(a) => Value::Array(a.iter().map(|x| normal(x, ext_of)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "id" | "created_at" | "updated_at" | "version" | "owner_id"
                        )
                    })
                    .map(|(k, x)| (k.clone(), normal(x, ext_of)))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }
    raw.into_iter()
        .map(|(entity, items)| {
            let by_ext = items
                .iter()
                .filter_map(|r| Some((r["external_id"].as_str()?.to_string(), normal(r, &ext_of))))
                .collect();
            (entity, by_ext)
        })
        .collect()
}

/// What `kontor exchange import` makes of the same files, in a data directory of its own.
async fn offline(files: &[PathBuf]) -> BTreeMap<String, BTreeMap<String, Value>> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("offline");
    init_data(&data, ADMIN, PASSWORD);
    let mut args = vec![
        "exchange".to_string(),
        "import".into(),
        "--data".into(),
        data.display().to_string(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let o = kontor().args(&args).output().expect("run kontor");
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    catalog(&server.base, &tok).await
}

async fn exchange_entries(base: &str, tok: &str) -> Vec<Value> {
    all_items(base, tok, "history?origin=exchange&limit=500").await
}

/// The sample sets as 1C sends them: file names (with their folders) in sending order.
fn sample_sets(samples: &Path) -> Vec<(&'static str, Vec<&'static str>)> {
    let sets = vec![
        ("ut11-2.07", vec!["import0_1.xml", "offers0_1.xml"]),
        ("official-2.04", vec!["import.xml", "offers.xml"]),
        (
            "bitrix-module-3.1",
            vec![
                "import.xml",
                "properties/1/import.xml",
                "properties/1/offers.xml",
                "goods/1/import.xml",
                "goods/1/offers.xml",
                "goods/1/prices.xml",
                "goods/1/rests.xml",
            ],
        ),
    ];
    for (set, files) in &sets {
        for f in files {
            assert!(samples.join(set).join(f).is_file(), "{set}/{f} missing");
        }
    }
    sets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_catalog_arrives_over_http_as_it_does_offline_and_a_rerun_writes_nothing() {
    let Some(samples) = kontor_testkit::commerceml_samples("catalog exchange over HTTP") else {
        return;
    };
    let mut progress_answers = 0;
    for (i, (set, names)) in sample_sets(&samples).into_iter().enumerate() {
        let paths: Vec<PathBuf> = names.iter().map(|n| samples.join(set).join(n)).collect();
        let files: Vec<(String, &Path)> = names
            .iter()
            .zip(&paths)
            .map(|(n, p)| (n.to_string(), p.as_path()))
            .collect();
        let tmp = tempfile::tempdir().expect("tempdir");
        let (server, tok) = exchange_server(&tmp.path().join("data"), 0).await;
        // Both addresses 1C may be given; the second set goes zipped.
        let path = if i % 2 == 0 {
            "/1c_exchange"
        } else {
            "/bitrix/admin/1c_exchange.php"
        };
        let mut onec = OneC::new(&server.base, path, ONEC, ONEC_PASSWORD);
        onec.use_zip = i == 1;
        let answers = onec.catalog_exchange(&files).await;
        for ((name, _), a) in files.iter().zip(&answers) {
            assert!(a.ok(), "{set}/{name}: {a:?}");
            assert!(!a.text.contains("record(s) failed"), "{set}/{name}: {a:?}");
        }
        let end = onec.call("catalog", "complete").await;
        assert!(end.ok(), "{set}: complete: {end:?}");
        assert!(onec.zip_offered);

        let got = catalog(&server.base, &tok).await;
        let want = offline(&paths).await;
        for entity in CATALOG {
            assert_eq!(
                got[entity].len(),
                want[entity].len(),
                "{set}: {entity} count over HTTP vs offline"
            );
            for (ext, record) in &want[entity] {
                assert_eq!(
                    got[entity].get(ext),
                    Some(record),
                    "{set}: {entity} {ext} over HTTP vs offline"
                );
            }
        }
        assert!(!got["offers"].is_empty(), "{set}: no offers");

        // One run, one journal batch (undone as one through the history undo).
        let entries = exchange_entries(&server.base, &tok).await;
        let batches: std::collections::BTreeSet<&str> =
            entries.iter().filter_map(|e| e["batch"].as_str()).collect();
        assert_eq!(batches.len(), 1, "{set}: {batches:?}");

        // 1C runs the same exchange again (with Basic on every call this time): nothing is
        // written, nothing journaled.
        onec.basic_always = true;
        let again = onec.catalog_exchange(&files).await;
        for ((name, _), a) in files.iter().zip(&again) {
            assert!(a.ok(), "{set}/{name} again: {a:?}");
        }
        assert!(onec.call("catalog", "complete").await.ok());
        assert_eq!(
            exchange_entries(&server.base, &tok).await.len(),
            entries.len(),
            "{set}: a re-run journals nothing"
        );
        assert_eq!(catalog(&server.base, &tok).await, got, "{set}: re-run");
        progress_answers += onec.progress_answers;
    }
    assert!(
        progress_answers > 0,
        "the progress loop was never exercised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_ends_the_run_and_deactivates_what_it_did_not_list() {
    let Some(samples) = kontor_testkit::commerceml_samples("exchange deactivate") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, tok) = exchange_server(&tmp.path().join("data"), 30).await;
    let set = samples.join("ut11-2.07");
    let files = [
        ("import0_1.xml".to_string(), set.join("import0_1.xml")),
        ("offers0_1.xml".to_string(), set.join("offers0_1.xml")),
    ];
    let files: Vec<(String, &Path)> = files
        .iter()
        .map(|(n, p)| (n.clone(), p.as_path()))
        .collect();
    let mut onec = OneC::new(&server.base, "/1c_exchange", ONEC, ONEC_PASSWORD);
    for a in onec.catalog_exchange(&files).await {
        assert!(a.ok(), "{a:?}");
    }
    assert!(onec.call("catalog", "complete").await.ok());
    let products = all_items(&server.base, &tok, "products?limit=500").await;
    let keep = products[0]["external_id"]
        .as_str()
        .expect("1C id")
        .to_string();
    assert!(products.iter().all(|p| p["active"] == json!(true)));

    // The next exchange sends one product as a change, then asks to deactivate the rest.
    let one = tmp.path().join("one.xml");
    std::fs::write(
        &one,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.07\">\n\
             <Каталог СодержитТолькоИзменения=\"true\"><Ид>c</Ид><Товары><Товар><Ид>{keep}</Ид>\
             <Наименование>Kept</Наименование></Товар></Товары></Каталог></КоммерческаяИнформация>\n"
        ),
    )
    .expect("write");
    let a = onec
        .catalog_exchange(&[("import.xml".to_string(), one.as_path())])
        .await;
    assert!(a[0].ok(), "{a:?}");
    let done = onec.call("catalog", "deactivate").await;
    assert!(done.ok(), "{done:?}");
    assert!(done.text.contains("deactivated"), "{done:?}");
    let products = all_items(&server.base, &tok, "products?limit=500").await;
    for p in &products {
        let listed = p["external_id"] == json!(keep);
        assert_eq!(p["active"], json!(listed), "{p}");
    }
    let offers = all_items(&server.base, &tok, "offers?limit=500").await;
    assert!(
        offers.iter().all(|o| o["active"] == json!(false)),
        "no offer was listed"
    );
}

/// A raw HTTP/1.1 request on a fresh connection; the status line and body of the answer.
fn raw_request(base: &str, head: &str, body: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(head.as_bytes()).expect("send head");
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_exchange_users_get_in_and_they_get_nowhere_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, tok) = exchange_server(&tmp.path().join("data"), 30).await;

    let mut wrong = OneC::new(&server.base, "/1c_exchange", ONEC, "not the password");
    let a = wrong.checkauth("catalog").await;
    assert_eq!(a.status, "failure", "{a:?}");
    assert!(a.text.contains("wrong e-mail or password"), "{a:?}");

    // An API user (even the admin) is no exchange user.
    let mut admin = OneC::new(&server.base, "/1c_exchange", ADMIN, PASSWORD);
    let a = admin.checkauth("catalog").await;
    assert_eq!(a.status, "failure", "{a:?}");
    assert!(a.text.contains("role exchange"), "{a:?}");
    let mut admin_basic = OneC::new(&server.base, "/1c_exchange", ADMIN, PASSWORD);
    admin_basic.basic_always = true;
    let a = admin_basic.call("catalog", "init").await;
    assert_eq!(a.status, "failure", "{a:?}");
    let body = raw_request(
        &server.base,
        &format!(
            "GET /1c_exchange?type=catalog&mode=init HTTP/1.1\r\nHost: x\r\nCookie: kontor_exchange={tok}\r\nConnection: close\r\n\r\n"
        ),
        b"",
    );
    assert!(
        body.contains("\r\n\r\nfailure\n"),
        "an API token is no exchange session: {body}"
    );

    // The exchange user: checkauth answers the exact lines, and the cookie works.
    let mut onec = OneC::new(&server.base, "/1c_exchange", ONEC, ONEC_PASSWORD);
    let a = onec.checkauth("catalog").await;
    assert!(a.ok(), "{a:?}");
    let lines: Vec<&str> = a.text.lines().collect();
    assert_eq!(lines[0], "kontor_exchange");
    assert!(lines[1].starts_with("kx_"), "{lines:?}");
    assert!(
        lines[2].starts_with("sessid=") && lines[2].len() == 39,
        "{lines:?}"
    );
    assert!(lines[3].starts_with("timestamp="), "{lines:?}");
    let init = onec.init("catalog", None).await;
    assert_eq!(
        init,
        vec![
            ("zip".to_string(), "yes".to_string()),
            ("file_limit".to_string(), "65536".to_string())
        ]
    );
    // Sale init echoes the version 1C asked for, with the session's sessid.
    let sale = onec.init("sale", Some("3.1")).await;
    assert_eq!(sale[2].0, "sessid");
    assert_eq!(sale[3], ("version".to_string(), "3.1".to_string()));

    // The exchange user cannot log in to the REST API, nor use its session there.
    let (status, body) = login(&server.base, ONEC, ONEC_PASSWORD).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/products", server.base))
        .bearer_auth(lines[1])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);

    // Unknown type and mode, and no credentials at all: a failure line, never HTML.
    let a = onec.call("orders", "init").await;
    assert_eq!(a.status, "failure", "{a:?}");
    let a = onec.call("catalog", "launch").await;
    assert_eq!(a.status, "failure", "{a:?}");
    assert!(a.text.contains("Unknown command"), "{a:?}");
    let mut nobody = OneC::new(&server.base, "/1c_exchange", "", "");
    let body = raw_request(
        &server.base,
        "GET /1c_exchange?type=catalog&mode=checkauth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert!(body.contains("\r\n\r\nfailure\nno credentials"), "{body}");
    let a = nobody.call("catalog", "import").await;
    assert_eq!(a.status, "failure", "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_refused_cleanly_and_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (server, tok) = exchange_server(&data, 30).await;
    let mut onec = OneC::new(&server.base, "/1c_exchange", ONEC, ONEC_PASSWORD);
    assert!(onec.checkauth("catalog").await.ok());
    onec.init("catalog", None).await;

    // Names that lead out of the upload folder.
    for name in [
        "../../escape.xml",
        "..\\..\\escape.xml",
        "a/../../../escape.xml",
    ] {
        let a = onec.upload("catalog", name, b"<x/>").await;
        assert_eq!(a.status, "failure", "{name}: {a:?}");
        assert!(a.text.contains("out of the upload folder"), "{a:?}");
    }
    assert!(!data.join("escape.xml").exists() && !tmp.path().join("escape.xml").exists());

    // A body declared at 2 GB is refused before it is read.
    let cookie = raw_cookie(&mut onec).await;
    let started = std::time::Instant::now();
    let body = raw_request(
        &server.base,
        &format!(
            "POST /1c_exchange?type=catalog&mode=file&filename=big.xml HTTP/1.1\r\nHost: x\r\n{cookie}Content-Length: 2147483648\r\nConnection: close\r\n\r\n"
        ),
        b"<?xml",
    );
    assert!(body.contains("\r\n\r\nfailure\n"), "{body}");
    assert!(body.contains("file_limit=65536"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // Billion laughs and an external entity: refused by the reader, naming the file.
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n<КоммерческаяИнформация ВерсияСхемы=\"2.07\"><Каталог><Товары><Товар><Ид>&lol2;</Ид></Товар></Товары></Каталог></КоммерческаяИнформация>";
    let xxe = "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<КоммерческаяИнформация ВерсияСхемы=\"2.07\"><Каталог><Товары><Товар><Ид>&e;</Ид></Товар></Товары></Каталог></КоммерческаяИнформация>";
    for (name, xml) in [("laughs.xml", laughs), ("xxe.xml", xxe)] {
        assert!(onec.upload("catalog", name, xml.as_bytes()).await.ok());
        let a = onec.import("catalog", name).await;
        assert_eq!(a.status, "failure", "{name}: {a:?}");
        assert!(a.text.contains(name), "names the file: {a:?}");
        assert!(a.text.to_lowercase().contains("dtd"), "{a:?}");
    }

    // A zip whose entry leads out, and a file that was never uploaded.
    let evil = tmp.path().join("evil.xml");
    std::fs::write(&evil, "<x/>").expect("write");
    let zip = zip_files(&[("../../evil-out.xml".to_string(), evil.as_path())]);
    assert!(onec.upload("catalog", "exchange.zip", &zip).await.ok());
    let a = onec.import("catalog", "import.xml").await;
    assert_eq!(a.status, "failure", "{a:?}");
    assert!(a.text.contains("out of the upload folder"), "{a:?}");
    assert!(!data.join("evil-out.xml").exists());
    let a = onec.import("catalog", "never-sent.xml").await;
    assert_eq!(a.status, "failure", "{a:?}");
    assert!(a.text.contains("was not uploaded"), "{a:?}");

    // Nothing reached the catalog, and the server still serves.
    assert!(all_items(&server.base, &tok, "products").await.is_empty());
    assert!(onec.call("catalog", "complete").await.ok());
}

/// The `Cookie:` header line of 1C's session.
async fn raw_cookie(onec: &mut OneC) -> String {
    let a = onec.checkauth("catalog").await;
    let lines: Vec<&str> = a.text.lines().collect();
    onec.init("catalog", None).await;
    format!("Cookie: {}={}\r\n", lines[0], lines[1])
}

/// The documents of a `query` answer, read back with Kontor's own CommerceML reader.
fn documents_of(xml: &[u8]) -> Vec<kontor_commerceml::Document> {
    let mut reader = kontor_commerceml::Reader::new(xml).expect("a CommerceML document");
    let mut docs = Vec::new();
    while let Some(item) = reader.next_item().expect("readable") {
        if let kontor_commerceml::Item::Document(d) = item.item {
            docs.push(d);
        }
    }
    docs
}

/// Sends a JSON body to the API and checks the answer is a success.
async fn send(method: reqwest::Method, base: &str, tok: &str, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .request(method, format!("{base}/api/v1/{path}"))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let v: Value = resp.json().await.expect("json");
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

async fn post(base: &str, tok: &str, path: &str, body: Value) -> Value {
    send(reqwest::Method::POST, base, tok, path, body).await
}

async fn patch(base: &str, tok: &str, path: &str, body: Value) -> Value {
    send(reqwest::Method::PATCH, base, tok, path, body).await
}

async fn get(base: &str, tok: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/{path}"))
        .bearer_auth(tok)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// The id of the record a create answered.
fn created_id(v: &Value) -> String {
    v["changes"][0]["id"]
        .as_str()
        .or_else(|| v["id"].as_str())
        .expect("an id")
        .to_string()
}

/// `exchange run <job id>` in an answer.
fn run_id(text: &str) -> String {
    let rest = text.split("exchange run ").nth(1).expect("a run id");
    rest.split([')', ' ', '\n']).next().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_exchange_sends_invoices_until_confirmed_and_takes_back_payments_and_shipments() {
    let Some(samples) = kontor_testkit::commerceml_samples("sale exchange over HTTP") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, tok) = exchange_server(&tmp.path().join("data"), 30).await;
    let base = server.base.clone();
    let company = created_id(
        &post(&base, &tok, "companies", json!({"name": "ООО Ромашка", "legal_name": "Общество с ограниченной ответственностью «Ромашка»", "inn": "7707083893", "kpp": "773601001", "email": "buh@romashka.example"})).await,
    );
    let invoice = |number: &str, price: &str, status: &str| {
        json!({"number": number, "company_id": company, "status": status, "currency": "RUB",
               "lines": [{"description": "Вентилятор напольный", "quantity": "1", "price": price, "vat_rate": "0"}]})
    };
    let mut ids = BTreeMap::new();
    for (number, price, status) in [
        ("142", "8186.84", "sent"),
        ("235", "5000", "sent"),
        ("479", "1122", "sent"),
        ("D-1", "10", "draft"),
    ] {
        let v = post(&base, &tok, "invoices", invoice(number, price, status)).await;
        ids.insert(number.to_string(), created_id(&v));
    }

    let mut onec = OneC::new(&base, "/bitrix/admin/1c_exchange.php", ONEC, ONEC_PASSWORD);
    assert!(onec.checkauth("sale").await.ok());
    let init = onec.init("sale", Some("2.09")).await;
    assert_eq!(
        init.last(),
        Some(&("version".to_string(), "2.09".to_string()))
    );
    let (ctype, xml) = onec.query().await;
    assert!(ctype.contains("windows-1251"), "{ctype}");
    assert!(xml.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    let docs = documents_of(&xml);
    let sent: BTreeMap<String, String> = docs
        .iter()
        .map(|d| {
            (
                d.number.clone().unwrap_or_default(),
                d.id.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(sent.len(), 3, "drafts are not sent: {sent:?}");
    for number in ["142", "235", "479"] {
        assert_eq!(sent[number], ids[number], "the Ид is the invoice's id");
    }
    let d = docs
        .iter()
        .find(|d| d.number.as_deref() == Some("142"))
        .expect("142");
    assert_eq!(d.sum.as_deref(), Some("8186.84"));
    assert_eq!(d.operation.as_deref(), Some("Заказ товара"));
    let buyer = &d.counterparties[0];
    assert_eq!(buyer.inn.as_deref(), Some("7707083893"));
    assert_eq!(buyer.kpp.as_deref(), Some("773601001"));
    assert_eq!(buyer.role.as_deref(), Some("Покупатель"));
    assert_eq!(d.lines.len(), 1);

    // 1C fails before mode=success: the next exchange sends the same invoices, same Ид.
    let mut again = OneC::new(&base, "/1c_exchange", ONEC, ONEC_PASSWORD);
    assert!(again.checkauth("sale").await.ok());
    again.init("sale", Some("2.09")).await;
    let (_, xml2) = again.query().await;
    let resent: BTreeMap<String, String> = documents_of(&xml2)
        .iter()
        .map(|d| {
            (
                d.number.clone().unwrap_or_default(),
                d.id.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(resent, sent);
    let a = again.call("sale", "success").await;
    assert!(a.ok(), "{a:?}");
    let (_, xml3) = again.query().await;
    assert!(
        documents_of(&xml3).is_empty(),
        "confirmed invoices are not sent again"
    );

    // 1C sends back its orders: payments, shipments; three documents name no invoice here.
    let history_before = exchange_entries(&base, &tok).await.len();
    let files = [
        (
            "documents-example.xml",
            samples.join("exchange-2.09/documents-example.xml"),
        ),
        (
            "documents/2/documents.xml",
            samples.join("bitrix-module-3.1/documents/2/documents.xml"),
        ),
        (
            "documents/1/documents.xml",
            samples.join("bitrix-module-3.1/documents/1/documents.xml"),
        ),
        ("orders.xml", samples.join("official-2.04/orders.xml")),
    ];
    let mut reports = Vec::new();
    for (name, path) in &files {
        let bytes = std::fs::read(path).expect("sample");
        assert!(again.upload("sale", name, &bytes).await.ok());
        let a = again.import("sale", name).await;
        assert!(a.ok(), "{name}: {a:?}");
        reports.push(a.text.clone());
    }
    let done = again.call("sale", "complete").await;
    assert!(done.ok(), "{done:?}");
    assert!(
        reports[1].contains("3 record(s) failed"),
        "{}\n{done:?}",
        reports[1]
    );
    let job = get(&base, &tok, &format!("jobs/{}", run_id(&reports[0]))).await;
    assert_eq!(job["state"], json!("succeeded"), "{job}");
    let failures = job["result"]["failures"].as_array().expect("failures");
    let failed: Vec<&str> = failures
        .iter()
        .filter(|f| f["file"] == json!("documents/2/documents.xml"))
        .filter_map(|f| f["record"].as_str())
        .collect();
    assert_eq!(failed, vec!["319", "480", "481"], "{job}");
    assert!(
        failures[0]["line"].as_u64() > Some(1),
        "failures name their line: {job}"
    );
    // The other files' orders are not Kontor's either; nothing else failed.
    for f in failures {
        assert!(
            f["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no invoice in Kontor")),
            "{f}"
        );
    }
    assert_eq!(failures.len(), 3 + 20 + 1, "{job}");

    let inv = |n: &str| {
        let path = format!("invoices/{}", ids[n]);
        let (base, tok) = (base.clone(), tok.clone());
        async move { get(&base, &tok, &path).await }
    };
    let paid = inv("142").await;
    assert_eq!(paid["status"], json!("paid"), "{paid}");
    assert_eq!(paid["paid_amount"], json!("8186.84"));
    assert_eq!(paid["number_1c"], json!("ТДЦУ-000001"));
    assert_eq!(paid["shipment_number"], json!("ТДЦУ-000003"));
    assert_eq!(paid["shipped_at"], json!("2015-06-29"));
    let partly = inv("235").await;
    assert_eq!(partly["status"], json!("partly_paid"), "{partly}");
    assert_eq!(partly["paid_amount"], json!("4100.00"));
    let shipped = inv("479").await;
    assert_eq!(shipped["status"], json!("sent"), "{shipped}");
    assert_eq!(shipped["shipment_number"], json!("О0000000966"));
    assert_eq!(shipped["shipped_at"], json!("2017-08-02"));
    let payments = all_items(&base, &tok, "payments").await;
    assert_eq!(payments.len(), 2, "{payments:?}");
    let p142 = payments
        .iter()
        .find(|p| p["invoice_id"] == json!(ids["142"]))
        .expect("payment");
    assert_eq!(p142["reference"], json!("ТДЦУ-000001"));
    assert_eq!(p142["date"], json!("2015-06-29"));
    // The buyers 1C named are companies now, under their 1C ids.
    let companies = all_items(&base, &tok, "companies").await;
    assert!(
        companies.iter().any(
            |c| c["external_id"] == json!("4a65ecb6-8b1b-11df-be16-e0cb4ed5f70f")
                && c["name"] == json!("Kikinda (Сербия)")
        ),
        "{companies:?}"
    );
    let entries_after_import = exchange_entries(&base, &tok).await.len();
    assert!(entries_after_import > history_before);

    // What 1C changed is not sent back to it.
    let mut third = OneC::new(&base, "/1c_exchange", ONEC, ONEC_PASSWORD);
    assert!(third.checkauth("sale").await.ok());
    third.init("sale", None).await;
    let (_, xml4) = third.query().await;
    assert!(
        documents_of(&xml4).is_empty(),
        "{}",
        String::from_utf8_lossy(&xml4)
    );

    // The old protocol (no version at init) imports a whole file at upload: the same
    // documents again change nothing and duplicate nothing.
    let bytes = std::fs::read(&files[0].1).expect("sample");
    let a = third.upload("sale", "documents-example.xml", &bytes).await;
    assert!(a.ok() && a.text.contains("imported"), "{a:?}");
    assert!(third.call("sale", "complete").await.ok());
    assert_eq!(
        exchange_entries(&base, &tok).await.len(),
        entries_after_import
    );
    assert_eq!(all_items(&base, &tok, "payments").await.len(), 2);
    assert_eq!(
        all_items(&base, &tok, "companies").await.len(),
        companies.len()
    );

    // A counterparties file (1C's contragents): four companies, under their 1C ids, once.
    let contractors =
        std::fs::read(samples.join("exchange-2.09/contractors-example.xml")).expect("sample");
    for _ in 0..2 {
        let a = third
            .upload("sale", "contractors-example.xml", &contractors)
            .await;
        assert!(a.ok() && a.text.contains("imported"), "{a:?}");
        assert!(!a.text.contains("record(s) failed"), "{a:?}");
    }
    let companies = all_items(&base, &tok, "companies").await;
    for (ext, name) in [
        (
            "d9510b52-e154-11db-80b9-00c09f6bedaa",
            "Удаленный отдел \"Уют\"",
        ),
        ("4141d5ec-e2a6-11db-95d9-505054503030", "Алтай ТОО"),
        ("021e0e3f-e329-11db-95d9-505054503030", "ТД Уют"),
        ("c5b29133-e35a-11db-95d9-505054503030", "Банк ТуранАлем ОАО"),
    ] {
        let found: Vec<&Value> = companies
            .iter()
            .filter(|c| c["external_id"] == json!(ext))
            .collect();
        assert_eq!(found.len(), 1, "{ext}: {companies:?}");
        assert_eq!(found[0]["name"], json!(name));
    }

    // A change in Kontor goes out again, as the same document.
    patch(
        &base,
        &tok,
        &format!("invoices/{}", ids["479"]),
        json!({"notes": "deliver before noon"}),
    )
    .await;
    third.init("sale", Some("3.1")).await;
    let (ctype, xml5) = third.query().await;
    assert!(ctype.contains("utf-8"), "CML 3.1 goes as UTF-8: {ctype}");
    assert!(xml5.starts_with(b"\xEF\xBB\xBF"), "with a BOM");
    let docs = documents_of(&xml5);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].id.as_deref(), Some(ids["479"].as_str()));
    assert_eq!(docs[0].container, Some(0), "wrapped in a Контейнер");
    assert!(third.call("sale", "success").await.ok());

    // The 1C database gets only paid invoices: a change to a sent one is not sent.
    let databases = all_items(&base, &tok, "onec_databases").await;
    assert_eq!(
        databases.len(),
        1,
        "made at the first exchange: {databases:?}"
    );
    patch(
        &base,
        &tok,
        &format!(
            "onec_databases/{}",
            databases[0]["id"].as_str().expect("id")
        ),
        json!({"invoice_statuses": ["paid"]}),
    )
    .await;
    for n in ["142", "479"] {
        patch(
            &base,
            &tok,
            &format!("invoices/{}", ids[n]),
            json!({"notes": "checked"}),
        )
        .await;
    }
    let (_, xml6) = third.query().await;
    let numbers: Vec<String> = documents_of(&xml6)
        .into_iter()
        .filter_map(|d| d.number)
        .collect();
    assert_eq!(numbers, vec!["142"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_of_a_1c_database_shape_what_its_exchange_does() {
    let Some(samples) = kontor_testkit::commerceml_samples("exchange settings") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, tok) = exchange_server(&tmp.path().join("data"), 30).await;
    let base = server.base.clone();
    let users = all_items(&base, &tok, "users").await;
    let onec_id = users
        .iter()
        .find(|u| u["email"] == json!(ONEC))
        .and_then(|u| u["id"].as_str())
        .expect("the exchange user")
        .to_string();
    post(
        &base,
        &tok,
        "fields",
        json!({"entity": "products", "name": "color", "type": "string"}),
    )
    .await;
    // The admin sets the 1C database up before its first exchange.
    let database = created_id(
        &post(
            &base,
            &tok,
            "onec_databases",
            json!({"name": "УТ 11", "user_id": onec_id, "id_prefix": "ut:",
                   "price_type": "279b6812-740b-11e8-80c8-0cc47ab29cd1",
                   "stock_warehouses": ["dd306af1-19c9-11e7-80c2-0cc47ab29cd1"],
                   "property_fields": {"a3e9701f-2483-11e9-80c9-0cc47ab29cd1": "color"}}),
        )
        .await,
    );
    let set = samples.join("ut11-2.07");
    let paths = [set.join("import0_1.xml"), set.join("offers0_1.xml")];
    let files: Vec<(String, &Path)> = ["import0_1.xml", "offers0_1.xml"]
        .iter()
        .zip(&paths)
        .map(|(n, p)| (n.to_string(), p.as_path()))
        .collect();
    let mut onec = OneC::new(&base, "/1c_exchange", ONEC, ONEC_PASSWORD);
    for a in onec.catalog_exchange(&files).await {
        assert!(a.ok() && !a.text.contains("record(s) failed"), "{a:?}");
    }
    assert!(onec.call("catalog", "complete").await.ok());

    let products = all_items(&base, &tok, "products?limit=500").await;
    assert_eq!(products.len(), 43);
    assert!(
        products.iter().all(|p| p["external_id"]
            .as_str()
            .is_some_and(|e| e.starts_with("ut:"))),
        "every 1C id carries the database's prefix"
    );
    let p = products
        .iter()
        .find(|p| p["external_id"] == json!("ut:bd8c4e15-18f9-11e7-80c2-0cc47ab29cd1"))
        .expect("the product");
    assert_eq!(
        p["price"],
        json!("100.00"),
        "priced by the BASE price type: {p}"
    );
    assert_eq!(p["currency"], json!("RUB"));
    assert_eq!(p["color"], json!("Деревянные лошадки"), "{p}");
    let offers = all_items(&base, &tok, "offers?limit=500").await;
    let o = offers
        .iter()
        .find(|o| o["external_id"] == json!("ut:bd8c4e15-18f9-11e7-80c2-0cc47ab29cd1"))
        .expect("the offer");
    assert_eq!(
        o["quantity"],
        json!("376"),
        "only Moscow's stock counts: {o}"
    );
    assert_eq!(
        o["stock"].as_array().map(Vec::len),
        Some(3),
        "the stock rows stay whole"
    );

    // The same 1C database may now only update, and its ids are another prefix: nothing it
    // sends is in Kontor, so nothing is created and every record is reported.
    patch(
        &base,
        &tok,
        &format!("onec_databases/{database}"),
        json!({"create_records": false, "id_prefix": "other:"}),
    )
    .await;
    let answers = onec.catalog_exchange(&files).await;
    assert!(answers[0].ok(), "{:?}", answers[0]);
    assert!(
        answers[0].text.contains("may only update records"),
        "{:?}",
        answers[0]
    );
    assert!(onec.call("catalog", "complete").await.ok());
    assert_eq!(all_items(&base, &tok, "products?limit=500").await.len(), 43);
    // A settings value the exchange cannot use is refused at the start, not half-way.
    patch(
        &base,
        &tok,
        &format!("onec_databases/{database}"),
        json!({"property_fields": {"a3e9701f-2483-11e9-80c9-0cc47ab29cd1": 5}}),
    )
    .await;
    assert!(onec.checkauth("catalog").await.ok());
    onec.init("catalog", None).await;
    assert!(onec
        .upload(
            "catalog",
            "import0_1.xml",
            &std::fs::read(&paths[0]).expect("read")
        )
        .await
        .ok());
    let a = onec.import("catalog", "import0_1.xml").await;
    assert_eq!(a.status, "failure", "{a:?}");
    assert!(a.text.contains("property_fields"), "{a:?}");
}
