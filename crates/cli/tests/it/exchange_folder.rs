//! The exchange through files: `kontor exchange export` writes the invoices 1C has not had,
//! `kontor exchange import` takes 1C's documents back (a folder may mix catalog and sale
//! files), `serve` polls an exchange folder on its schedule, and every run is listed by
//! `GET /api/v1/exchange/runs`.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const ADMIN: &str = "admin@example.com";
const PASSWORD: &str = "correct horse battery staple";
const ONEC: &str = "1c@example.com";

/// `kontor exchange export` of `user`'s invoices into `out`.
fn export(data: &str, user: &str, out: &Path) -> std::process::Output {
    run(&[
        "exchange",
        "export",
        "--data",
        data,
        "--user",
        user,
        "--to",
        out.to_str().expect("utf-8"),
    ])
}

fn add_exchange_user(data: &Path) {
    let o = run(&[
        "user",
        "add",
        "--data",
        data.to_str().expect("utf-8"),
        "--email",
        ONEC,
        "--role",
        "exchange",
        "--password",
        "exchange password 1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

async fn api(
    method: reqwest::Method,
    base: &str,
    tok: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}/api/v1/{path}"))
        .bearer_auth(tok);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Creates a company and sent invoices with these numbers and prices; returns their ids.
async fn invoices(base: &str, tok: &str, list: &[(&str, &str)]) -> Vec<String> {
    let (s, c) = api(
        reqwest::Method::POST,
        base,
        tok,
        "companies",
        Some(json!({"name": "ООО Ромашка", "inn": "7707083893", "kpp": "773601001"})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let company = created_id(&c);
    let mut ids = Vec::new();
    for (number, price) in list {
        let (s, v) = api(
            reqwest::Method::POST,
            base,
            tok,
            "invoices",
            Some(
                json!({"number": number, "company_id": company, "status": "sent",
                "lines": [{"description": "Товар", "quantity": "1", "price": price}]}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(created_id(&v));
    }
    ids
}

/// The id of the record a create answered (the record itself, or a batch summary).
fn created_id(v: &Value) -> String {
    v["id"]
        .as_str()
        .or_else(|| v["changes"][0]["id"].as_str())
        .expect("an id")
        .to_string()
}

fn document_numbers(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read");
    let mut reader = kontor_commerceml::Reader::new(bytes.as_slice()).expect("CommerceML");
    let mut out = Vec::new();
    while let Some(item) = reader.next_item().expect("readable") {
        if let kontor_commerceml::Item::Document(d) = item.item {
            out.push(d.number.unwrap_or_default());
        }
    }
    out
}

fn xml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "xml"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_through_the_cli_and_every_run_is_listed() {
    let Some(samples) = kontor_testkit::commerceml_samples("exchange export/import CLI") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let d = data.to_str().expect("utf-8");
    init_data(&data, ADMIN, PASSWORD);
    add_exchange_user(&data);
    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    invoices(&server.base, &tok, &[("142", "8186.84"), ("235", "5000")]).await;
    drop(server);

    let out = tmp.path().join("to1c");
    let o = export(d, ONEC, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 invoice(s) written"),
        "{}",
        stdout(&o)
    );
    let files = xml_files(&out);
    assert_eq!(files.len(), 1);
    assert_eq!(document_numbers(&files[0]), vec!["142", "235"]);
    assert!(std::fs::read(&files[0])
        .expect("read")
        .starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    let o = export(d, ONEC, &out);
    assert!(stdout(&o).contains("no invoices to send"), "{}", stdout(&o));
    // Only an exchange user stands for a 1C database.
    let o = export(d, ADMIN, &out);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("role exchange"), "{}", stderr(&o));

    // The 1C database's settings travel as a file.
    let file = tmp.path().join("settings.json");
    let f = file.to_str().expect("utf-8");
    let o = run(&[
        "exchange", "settings", "export", "--data", d, "--user", ONEC, "--to", f,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(settings["format"], json!("kontor-exchange-settings"));
    assert_eq!(settings["invoice_encoding"], json!("windows-1251"));
    settings["catalog_missing"] = json!("keep");
    settings["stock_warehouses"] = json!(["dd306af1-19c9-11e7-80c2-0cc47ab29cd1"]);
    std::fs::write(&file, settings.to_string()).expect("write");
    let o = run(&[
        "exchange", "settings", "import", "--data", d, "--user", ONEC, f,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "exchange", "settings", "export", "--data", d, "--user", ONEC,
    ]);
    let back: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(back["catalog_missing"], json!("keep"));
    assert_eq!(back["stock_warehouses"], settings["stock_warehouses"]);
    settings["invoices_sent_seq"] = json!(0);
    std::fs::write(&file, settings.to_string()).expect("write");
    let o = run(&[
        "exchange", "settings", "import", "--data", d, "--user", ONEC, f,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("'invoices_sent_seq' is not an exchange setting"),
        "{}",
        stderr(&o)
    );

    // 1C's documents come back through the CLI as that user; its changes are not sent back.
    let docs = samples.join("exchange-2.09/documents-example.xml");
    let o = run(&[
        "exchange",
        "import",
        "--data",
        d,
        "--user",
        ONEC,
        docs.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("payments: 2 created"), "{}", stdout(&o));
    let o = export(d, ONEC, &out);
    assert!(stdout(&o).contains("no invoices to send"), "{}", stdout(&o));

    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let (s, runs) = api(
        reqwest::Method::GET,
        &server.base,
        &tok,
        "exchange/runs",
        None,
    )
    .await;
    assert_eq!(s, 200, "{runs}");
    let items = runs["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{runs}");
    assert_eq!(items[0]["kind"], json!("exchange.folder"));
    assert_eq!(items[0]["state"], json!("succeeded"));
    assert_eq!(
        items[0]["result"]["counts"]["payments"]["created"],
        json!(2)
    );
    let id = items[0]["id"].as_str().expect("id");
    let (s, one) = api(
        reqwest::Method::GET,
        &server.base,
        &tok,
        &format!("exchange/runs/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(one["id"], json!(id));
    // Managers do not see exchange runs.
    let (s, _) = api(reqwest::Method::POST, &server.base, &tok, "users", Some(json!({"email": "m@example.com", "name": "M", "role": "manager", "password": "manager password"}))).await;
    assert_eq!(s, 201);
    let mtok = token(&server.base, "m@example.com", "manager password").await;
    let (s, _) = api(
        reqwest::Method::GET,
        &server.base,
        &mtok,
        "exchange/runs",
        None,
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_polls_the_exchange_folder_on_its_schedule() {
    let Some(samples) = kontor_testkit::commerceml_samples("exchange folder polling") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    init_data(&data, ADMIN, PASSWORD);
    add_exchange_user(&data);
    let folder = tmp.path().join("exchange");
    let server = Server::start_with(
        &data,
        &[
            "--exchange-folder",
            folder.to_str().expect("utf-8"),
            "--exchange-folder-user",
            ONEC,
            "--exchange-folder-schedule",
            "* * * * * *",
        ],
    );
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    // As 1C does it: written elsewhere, then moved in whole.
    for f in ["import0_1.xml", "offers0_1.xml"] {
        let staged = tmp.path().join(f);
        std::fs::copy(samples.join("ut11-2.07").join(f), &staged).expect("copy");
        std::fs::rename(&staged, folder.join("in").join(f)).expect("move in");
    }
    invoices(&server.base, &tok, &[("A-1", "100")]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let products = all_items(&server.base, &tok, "products?limit=500")
            .await
            .len();
        let sent = xml_files(&folder.join("out"));
        if products == 43 && !sent.is_empty() && xml_files(&folder.join("in")).is_empty() {
            assert_eq!(document_numbers(&sent[0]), vec!["A-1"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the folder was not polled: {products} products, {sent:?} sent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done: Vec<_> = std::fs::read_dir(folder.join("done"))
        .expect("done")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(done.len(), 1, "one run's files moved to done/");
    assert_eq!(xml_files(&done[0].path()).len(), 2);
    let (_, runs) = api(
        reqwest::Method::GET,
        &server.base,
        &tok,
        "exchange/runs",
        None,
    )
    .await;
    let run = &runs["items"][0];
    assert_eq!(run["kind"], json!("exchange.folder"), "{runs}");
    assert_eq!(
        run["result"]["counts"]["offers"]["created"],
        json!(43),
        "{run}"
    );
}
