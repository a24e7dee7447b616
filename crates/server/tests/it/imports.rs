//! Imports and exports through the API: a windows-1251 CSV with duplicates and bad rows does
//! exactly what its dry run said (counts, rows named in the error CSV), the dry run changes
//! nothing, undo takes the whole import back; an export imported again in update mode changes
//! nothing (CSV and XLSX); exports obey owner scope and hidden fields; bad requests are named.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Uploads a file with the import's settings; the answer (202 with the job, or a refusal).
async fn upload(
    api: &Api,
    fields: &[(&str, &str)],
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    let mut req = api
        .client
        .post(format!("{}/api/v1/imports", api.base))
        .multipart(form);
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("upload");
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Follows an import until it ends; its job.
async fn finished(api: &Api, id: &str) -> Value {
    for _ in 0..600 {
        let (s, job) = api.get(&format!("/api/v1/imports/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{job}");
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} did not end");
}

/// Uploads and waits; the report (the job must succeed).
async fn import(api: &Api, fields: &[(&str, &str)], name: &str, bytes: Vec<u8>) -> (String, Value) {
    let (s, job) = upload(api, fields, name, bytes).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("job id").to_string();
    let job = finished(api, &id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    (id, job["result"].clone())
}

async fn text(api: &Api, path: &str) -> (StatusCode, Vec<u8>) {
    let mut req = api.client.get(format!("{}{}", api.base, path));
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    (resp.status(), resp.bytes().await.expect("body").to_vec())
}

fn counts(report: &Value) -> [u64; 6] {
    [
        "created",
        "updated",
        "unchanged",
        "skipped",
        "duplicates",
        "failed",
    ]
    .map(|k| report[k].as_u64().unwrap_or(u64::MAX))
}

/// The rows of an error CSV: (row, column, reason).
fn error_rows(csv_bytes: &[u8]) -> Vec<(u64, String, String)> {
    let text = String::from_utf8(csv_bytes.to_vec()).expect("UTF-8");
    let text = text.trim_start_matches('\u{feff}');
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|rec| {
            let rec = rec.expect("CSV row");
            (
                rec[0].parse().expect("row number"),
                rec[1].to_string(),
                rec[3].to_string(),
            )
        })
        .collect()
}

async fn contacts(api: &Api) -> Vec<Value> {
    let mut all = walk(api, "/api/v1/contacts", 500).await;
    all.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    all
}

async fn a_windows_1251_file_does_what_its_dry_run_said(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let romashka = id(&admin
        .create(
            "companies",
            json!({"name": "Ромашка", "inn": "7707083893", "kpp": "773601001"}),
        )
        .await);
    let existing = admin
        .create(
            "contacts",
            json!({"last_name": "Старый", "email": "old@example.ru", "phone": "+7 900 000-00-01"}),
        )
        .await;
    let same = admin
        .create(
            "contacts",
            json!({"last_name": "Такой", "first_name": "Же", "email": "same@example.ru"}),
        )
        .await;
    let before = contacts(&admin).await;
    let csv = "Фамилия;Имя;E-mail;Телефон;ИНН компании;Дата рождения\r\n\
               Иванов;Иван;ivanov@example.ru;8 900 123-45-67;7707083893;31.12.1980\r\n\
               Петров;Пётр;petrov@example.ru;+7 (900) 765-43-21;;\r\n\
               Иванов-дубль;Иван;IVANOV@example.ru;;;\r\n\
               Сидоров;;sidorov@example.ru;не телефон;;\r\n\
               Кузнецов;;kuz@example.ru;;7700000000;\r\n\
               Обновлённый;;old@example.ru;;;\r\n\
               Такой;Же;same@example.ru;;;\r\n\
               Орлов;;orlov@example.ru;;;32.13.2000\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(csv);
    let bytes = bytes.into_owned();
    let fields = [
        ("entity", "contacts"),
        ("mode", "upsert"),
        ("match", "email"),
        ("dry_run", "true"),
    ];
    let (dry_id, dry) = import(&admin, &fields, "клиенты.csv", bytes.clone()).await;
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(dry["read"]["encoding"], json!("windows-1251"), "{dry}");
    assert_eq!(dry["read"]["delimiter"], json!(";"));
    // 2 new (Иванов, Петров), 1 updated (old@), 1 unchanged (same@), 1 duplicate (IVANOV@ is
    // ivanov@), 3 failed (a phone that is none, an INN no company has, no such date).
    assert_eq!(counts(&dry), [2, 1, 1, 0, 1, 3], "{dry}");
    assert_eq!(dry["rows"], json!(8));
    assert_eq!(contacts(&admin).await, before, "a dry run changes nothing");
    let (s, errs) = text(&admin, &format!("/api/v1/imports/{dry_id}/errors.csv")).await;
    assert_eq!(s, StatusCode::OK);
    let errs = error_rows(&errs);
    let named: Vec<(u64, &str)> = errs.iter().map(|(r, c, _)| (*r, c.as_str())).collect();
    assert_eq!(
        named,
        [
            (4, "E-mail"),
            (5, "Телефон"),
            (6, "ИНН компании"),
            (9, "Дата рождения")
        ],
        "{errs:?}"
    );
    assert!(
        errs[0].2.contains("row 2"),
        "the duplicate names the first row: {errs:?}"
    );
    assert!(errs[2].2.contains("7700000000"), "{errs:?}");

    // The real import of the same upload does exactly that.
    let (s, job) = admin
        .post(&format!("/api/v1/imports/{dry_id}/apply"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let real_id = job["id"].as_str().unwrap().to_string();
    let real = finished(&admin, &real_id).await;
    assert_eq!(real["state"], "succeeded", "{real}");
    let report = &real["result"];
    assert_eq!(counts(report), counts(&dry), "{report}");
    let (_, real_errs) = text(&admin, &format!("/api/v1/imports/{real_id}/errors.csv")).await;
    assert_eq!(
        error_rows(&real_errs),
        errs,
        "the same rows refused for the same reasons"
    );
    let ivanov = items(&admin, "/api/v1/contacts?email=ivanov@example.ru").await;
    assert_eq!(ivanov.len(), 1);
    assert_eq!(ivanov[0]["last_name"], json!("Иванов"));
    assert_eq!(ivanov[0]["company_id"], json!(romashka));
    assert_eq!(ivanov[0]["birthday"], json!("1980-12-31"));
    assert_eq!(ivanov[0]["phone"], json!("8 900 123-45-67"));
    let old = fetch(&admin, "contacts", &id(&existing)).await;
    assert_eq!(old["last_name"], json!("Обновлённый"));
    assert_eq!(
        old["phone"], existing["phone"],
        "an empty cell leaves a field as it is"
    );
    assert_eq!(fetch(&admin, "contacts", &id(&same)).await, same);
    // Everything was one batch, origin import.
    let batch = report["batch"].as_str().unwrap();
    let entries = history(&admin, &format!("batch={batch}")).await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries.iter().all(|e| e["origin"] == "import"));

    // Undo takes the whole import back: the two new contacts go to the bin, the update is
    // reverted, nobody else's work is touched.
    let (s, undo) = admin
        .post("/api/v1/history/undo", json!({"batch": batch}))
        .await;
    assert_eq!(s, StatusCode::OK, "{undo}");
    let after: Vec<Value> = contacts(&admin)
        .await
        .into_iter()
        .map(|mut c| {
            c.as_object_mut().map(|o| o.remove("updated_at"));
            c
        })
        .collect();
    let before: Vec<Value> = before
        .into_iter()
        .map(|mut c| {
            c.as_object_mut().map(|o| o.remove("updated_at"));
            c
        })
        .collect();
    assert_eq!(after, before, "the previous state, exactly");
    srv.stop().await;
}

async fn an_export_imported_again_changes_nothing(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let co = id(&admin
        .create(
            "companies",
            json!({"name": "Рога и копыта", "inn": "7707083893", "kpp": "773601001",
            "addresses": [{"kind": "legal", "text": "Москва, ул. Ленина, 1"}]}),
        )
        .await);
    for i in 0..7 {
        admin
            .create(
                "contacts",
                json!({
                "first_name": format!("Имя {i}"), "last_name": "Фамилия, с запятой",
                "email": format!("c{i}@example.ru"), "phone": format!("+7 900 000-00-0{i}"),
                "emails": [format!("a{i}@example.ru"), format!("b{i}@example.ru")],
                "company_id": co, "birthday": "1990-01-0{}".replace("{}", &(i + 1).to_string()),
                "notes": "две\nстроки; и \"кавычки\""}),
            )
            .await;
    }
    admin
        .create("deals", json!({"title": "Сделка", "amount": "1500.50", "company_id": co, "close_date": "2026-12-31"}))
        .await;
    for (entity, n) in [("contacts", 7), ("companies", 1), ("deals", 1)] {
        for format in ["csv", "xlsx"] {
            let (s, file) = text(&admin, &format!("/api/v1/export/{entity}?format={format}")).await;
            assert_eq!(s, StatusCode::OK, "{entity} {format}");
            let (_, report) = import(
                &admin,
                &[("entity", entity), ("mode", "update"), ("match", "id")],
                &format!("{entity}.{format}"),
                file,
            )
            .await;
            assert_eq!(
                counts(&report),
                [0, 0, n, 0, 0, 0],
                "{entity} {format}: {report}"
            );
            assert!(
                report["ignored_columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c == "created_at" || c == "updated_at"),
                "{report}"
            );
        }
    }
    // JSON Lines: one object per record, as the API shows it.
    let (_, jsonl) = text(&admin, "/api/v1/export/contacts?format=jsonl&sort=email").await;
    let lines: Vec<Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["email"], json!("c0@example.ru"));
    // Filters apply.
    let (_, one) = text(
        &admin,
        "/api/v1/export/contacts?format=jsonl&email=c3@example.ru",
    )
    .await;
    assert_eq!(String::from_utf8(one).unwrap().lines().count(), 1);
    let (s, bad) = admin.get("/api/v1/export/contacts?nonsense=1").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    // A big export as a job.
    let (s, job) = admin
        .post(
            &format!("/api/v1/export/contacts?format=csv&company_id={co}"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let jid = job["id"].as_str().unwrap().to_string();
    let mut done = job;
    for _ in 0..200 {
        let (_, j) = admin.get(&format!("/api/v1/jobs/{jid}")).await;
        done = j;
        if done["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["rows"], json!(7));
    let (s, file) = text(&admin, &format!("/api/v1/exports/{jid}/file")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(csv::Reader::from_reader(&file[3..]).records().count(), 7);
    srv.stop().await;
}

async fn exports_and_imports_obey_permissions(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (s, r) = admin
        .post("/api/v1/roles", json!({"name": "no-phones", "permissions": {"contacts": "all"}, "hidden_fields": {"contacts": ["phone"]}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let anna = srv.user("anna@example.ru", "manager", None).await;
    let boris = srv.user("boris@example.ru", "manager", None).await;
    let reader = srv.user("reader@example.ru", "no-phones", None).await;
    anna.create(
        "contacts",
        json!({"last_name": "Аннин", "phone": "+7 900 111-11-11"}),
    )
    .await;
    boris
        .create(
            "contacts",
            json!({"last_name": "Борисов", "phone": "+7 900 222-22-22"}),
        )
        .await;
    let (_, mine) = text(&anna, "/api/v1/export/contacts?format=jsonl").await;
    let mine = String::from_utf8(mine).unwrap();
    assert_eq!(
        mine.lines().count(),
        1,
        "a manager exports only their own: {mine}"
    );
    assert!(mine.contains("Аннин"));
    let (_, csv_text) = text(&reader, "/api/v1/export/contacts").await;
    let csv_text = String::from_utf8(csv_text).unwrap();
    let header = csv_text.lines().next().unwrap();
    assert!(
        !header
            .split(',')
            .any(|c| c.trim_start_matches('\u{feff}') == "phone"),
        "a hidden field is no column: {header}"
    );
    assert!(!csv_text.contains("111-11"), "nor any of its values");
    // A manager's import creates their records, and matches only theirs.
    let (_, report) = import(
        &anna,
        &[
            ("entity", "contacts"),
            ("mode", "upsert"),
            ("match", "last_name"),
        ],
        "c.csv",
        "last_name,first_name\nБорисов,Новый\nАннин,Обновлена\n"
            .as_bytes()
            .to_vec(),
    )
    .await;
    assert_eq!(counts(&report), [1, 1, 0, 0, 0, 0], "{report}");
    assert_eq!(
        items(&boris, "/api/v1/contacts").await.len(),
        1,
        "Boris's contact untouched"
    );
    // A hidden field cannot be imported into.
    let (s, job) = upload(
        &reader,
        &[("entity", "contacts")],
        "p.csv",
        "last_name,phone\nX,+7 900 333-33-33\n".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = finished(&reader, job["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed");
    assert!(job["error"].as_str().unwrap().contains("phone"), "{job}");
    // Another's import is nobody else's business.
    let (s, _) = boris
        .get(&format!(
            "/api/v1/imports/{}",
            report["job"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    srv.stop().await;
}

async fn bad_import_requests_say_what_is_wrong(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let file = || "last_name\nX\n".as_bytes().to_vec();
    for (fields, field) in [
        (vec![("entity", "nonsense")], "entity"),
        (vec![("entity", "users")], "entity"),
        (vec![("entity", "contacts"), ("mode", "merge")], "mode"),
        (
            vec![("entity", "contacts"), ("dry_run", "perhaps")],
            "dry_run",
        ),
        (vec![("entity", "contacts"), ("colour", "red")], "colour"),
        (vec![("entity", "contacts"), ("columns", "[1]")], "columns"),
    ] {
        let got = upload(&admin, &fields, "f.csv", file()).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
    }
    // No file at all.
    let mut req = admin
        .client
        .post(format!("{}/api/v1/imports", admin.base))
        .multipart(reqwest::multipart::Form::new().text("entity", "contacts"));
    req = req.bearer_auth(admin.token.as_ref().unwrap());
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // What only the run can tell ends its job with the reason.
    for (fields, content, needle) in [
        (
            vec![("entity", "contacts"), ("mode", "update")],
            "last_name\nX\n",
            "needs a key",
        ),
        (
            vec![("entity", "contacts"), ("template", "nope")],
            "last_name\nX\n",
            "no import template 'nope'",
        ),
        (
            vec![("entity", "contacts"), ("match", "email")],
            "last_name\nX\n",
            "no column goes to email",
        ),
        (
            vec![("entity", "contacts")],
            "Колонка\nX\n",
            "no column of the file goes to a field",
        ),
        (
            vec![("entity", "contacts"), ("map", "Nope=last_name")],
            "last_name\nX\n",
            "no column 'Nope'",
        ),
    ] {
        let (s, job) = upload(&admin, &fields, "f.csv", content.as_bytes().to_vec()).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        let job = finished(&admin, job["id"].as_str().unwrap()).await;
        assert_eq!(job["state"], "failed", "{job}");
        assert!(
            job["error"].as_str().unwrap().contains(needle),
            "{needle}: {job}"
        );
    }
    // A damaged workbook is refused as such.
    let (s, job) = upload(
        &admin,
        &[("entity", "contacts")],
        "f.xlsx",
        b"PK\x03\x04garbage".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = finished(&admin, job["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    // Nothing of all that was written.
    assert!(items(&admin, "/api/v1/contacts").await.is_empty());
    srv.stop().await;
}

async fn a_template_remembers_the_mapping(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let file = "Клиент;Почта;Код\nРомашка;info@romashka.ru;R-1\n";
    let (_, first) = import(
        &admin,
        &[
            ("entity", "companies"),
            ("map", "Клиент=name\nКод=external_id"),
            ("match", "external_id"),
            ("mode", "upsert"),
            ("save_template", "Клиенты из 1С"),
        ],
        "a.csv",
        file.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&first), [1, 0, 0, 0, 0, 0], "{first}");
    let templates = items(&admin, "/api/v1/import_templates").await;
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0]["columns"]["Клиент"], json!("name"));
    assert_eq!(templates[0]["match"], json!("external_id"));
    // The same file again through the template: matched, unchanged.
    let (_, again) = import(
        &admin,
        &[("entity", "companies"), ("template", "клиенты из 1с")],
        "b.csv",
        file.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&again), [0, 0, 1, 0, 0, 0], "{again}");
    assert_eq!(again["mapping"]["Почта"], json!("email"));
    srv.stop().await;
}

/// An import that meets maintenance mode waits (its job stays running, marked interrupted,
/// its upload kept) and goes on by itself once writes are open again: nothing refused, nothing
/// lost.
async fn an_import_waits_out_maintenance_and_goes_on(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (s, _) = admin
        .put(
            "/api/v1/admin/maintenance",
            json!({"on": true, "message": "backup"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let file = "Клиент;Код\nРомашка;R-1\nЛютик;R-2\n";
    let (s, job) = upload(
        &admin,
        &[
            ("entity", "companies"),
            ("map", "Клиент=name\nКод=external_id"),
        ],
        "a.csv",
        file.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let mut waiting = Value::Null;
    for _ in 0..100 {
        let (_, j) = admin.get(&format!("/api/v1/imports/{id}")).await;
        if j["progress"]["phase"] == "interrupted" {
            waiting = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting["state"], "running", "{waiting}");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap_or_default()
            .contains("maintenance"),
        "{waiting}"
    );
    let (s, _) = admin
        .put("/api/v1/admin/maintenance", json!({"on": false}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let done = finished(&admin, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(counts(&done["result"]), [2, 0, 0, 0, 0, 0], "{done}");
    srv.stop().await;
}

crate::engine_tests!(
    an_import_waits_out_maintenance_and_goes_on,
    a_windows_1251_file_does_what_its_dry_run_said,
    an_export_imported_again_changes_nothing,
    exports_and_imports_obey_permissions,
    bad_import_requests_say_what_is_wrong,
    a_template_remembers_the_mapping,
);
