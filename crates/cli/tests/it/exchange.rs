//! `kontor exchange import` over the real CommerceML files in `shared/data/commerceml`: what
//! arrives is read back through the REST API and matches the files; a second import of the
//! same files writes nothing; a whole run is undone as one batch.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const ADMIN: &str = "admin@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// Imports `paths` into `data`; returns stdout. Fails the test on a non-zero exit.
fn import(data: &Path, paths: &[&Path]) -> String {
    let mut args = vec![
        "exchange".to_string(),
        "import".into(),
        "--data".into(),
        data.display().to_string(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let o = kontor().args(&args).output().expect("run kontor");
    assert!(
        o.status.success(),
        "exchange import: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `entity: N created, …` lines of a report as a map.
fn summary(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(e, _)| !e.contains(' '))
        .map(|(e, rest)| (e.to_string(), rest.to_string()))
        .collect()
}

fn batch_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("batch "))
        .expect("batch line")
        .to_string()
}

async fn by_ext(base: &str, tok: &str, entity: &str) -> BTreeMap<String, Value> {
    all_items(base, tok, &format!("{entity}?limit=500"))
        .await
        .into_iter()
        .filter_map(|r| Some((r["external_id"].as_str()?.to_string(), r)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ut11_catalog_and_offers_read_back_and_reimport_writes_nothing() {
    let Some(samples) = kontor_testkit::commerceml_samples("ut11 exchange import") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    init_data(&data, ADMIN, PASSWORD);
    let set = samples.join("ut11-2.07");
    let out = import(&data, &[&set]);
    let counts = summary(&out);
    // 36 goods in the catalog, one of them marked deleted (Статус="Удален"); 44 offers, of
    // which one belongs to the deleted product (it goes with it) and 8 name products the
    // catalog did not send: those products are made from the offers.
    assert_eq!(
        counts.get("products").map(String::as_str),
        Some("43 created, 0 updated, 1 unchanged, 0 deleted, 0 failed"),
        "{out}"
    );
    assert_eq!(
        counts.get("offers").map(String::as_str),
        Some("43 created, 0 updated, 1 unchanged, 0 deleted, 0 failed"),
        "{out}"
    );
    assert!(counts.contains_key("properties"), "{out}");

    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let products = by_ext(&server.base, &tok, "products").await;
    let offers = by_ext(&server.base, &tok, "offers").await;
    let price_types = by_ext(&server.base, &tok, "price_types").await;
    let warehouses = by_ext(&server.base, &tok, "warehouses").await;
    assert_eq!((products.len(), offers.len()), (43, 43));
    assert!(!products.contains_key("b631c9c1-49de-11e9-80c9-0cc47ab29cd1"));
    assert_eq!(price_types.len(), 1);
    assert_eq!(warehouses.len(), 3);

    let p = &products["bd8c4e15-18f9-11e7-80c2-0cc47ab29cd1"];
    assert_eq!(p["sku"], json!("PM-421-WP"), "{p}");
    assert_eq!(p["barcode"], json!("8809288404089"), "{p}");
    assert_eq!(
        p["unit_code"],
        json!("796"),
        "unit code without its space: {p}"
    );
    assert_eq!(
        p["name"],
        json!("Портативный коврик Portable 140x200x1 см, Деревянные лошадки")
    );
    assert!(p["group_id"].is_string(), "in its group: {p}");
    assert!(
        p["property_values"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "{p}"
    );

    let o = &offers["bd8c4e15-18f9-11e7-80c2-0cc47ab29cd1"];
    assert_eq!(o["product_id"], p["id"], "{o}");
    let base = &price_types["279b6812-740b-11e8-80c8-0cc47ab29cd1"];
    assert_eq!(base["name"], json!("BASE"));
    assert_eq!(base["vat_included"], json!(true));
    assert_eq!(
        o["prices"],
        json!([{"price_type_id": base["id"], "price": "100", "currency": "RUB", "unit": "PCE"}]),
        "{o}"
    );
    assert_eq!(o["quantity"], json!("377"), "{o}");
    let stock: BTreeMap<String, String> = o["stock"]
        .as_array()
        .expect("stock rows")
        .iter()
        .map(|row| {
            let w = warehouses
                .values()
                .find(|w| w["id"] == row["warehouse_id"])
                .expect("warehouse of a stock row");
            (
                w["name"].as_str().unwrap_or_default().to_string(),
                row["quantity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        stock,
        BTreeMap::from([
            ("Владивосток".to_string(), "1".to_string()),
            ("Новосибирск".to_string(), "0".to_string()),
            ("Москва".to_string(), "376".to_string()),
        ])
    );
    let journaled = all_items(&server.base, &tok, "history?origin=exchange&limit=500")
        .await
        .len();
    assert!(journaled >= 88, "{journaled} exchange entries");
    drop(server);

    // The same files again: nothing changes, nothing is journaled.
    let again = import(&data, &[&set]);
    for (entity, line) in summary(&again) {
        assert!(
            line.starts_with("0 created, 0 updated, "),
            "{entity}: {line}\n{again}"
        );
        assert!(line.contains(" 0 failed"), "{entity}: {line}");
    }
    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let after = all_items(&server.base, &tok, "history?origin=exchange&limit=500")
        .await
        .len();
    assert_eq!(after, journaled, "a re-import journals nothing");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_exchange_files_fill_offers_prices_and_stock_and_a_run_is_undone_as_one() {
    let Some(samples) = kontor_testkit::commerceml_samples("packet exchange import") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    init_data(&data, ADMIN, PASSWORD);
    // The catalog part of the packet (its documents name orders this Kontor does not have).
    let set = samples.join("bitrix-module-3.1");
    let out = import(
        &data,
        &[
            &set.join("import.xml"),
            &set.join("properties"),
            &set.join("goods"),
        ],
    );
    let counts = summary(&out);
    // 86 offers, of which offers.xml marks 6 deleted; prices.xml and rests.xml still list
    // those 6, which does not bring them in (only the offer itself, sent again, would).
    assert!(
        counts
            .get("offers")
            .is_some_and(|l| l.starts_with("80 created") && l.ends_with(" 0 failed")),
        "{out}"
    );
    let batch = batch_of(&out);

    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let offers = by_ext(&server.base, &tok, "offers").await;
    assert_eq!(offers.len(), 80);
    // Offers, prices and stock came in three files; each offer holds all three.
    let priced = offers
        .values()
        .filter(|o| o["prices"].as_array().is_some_and(|p| !p.is_empty()))
        .count();
    assert_eq!(priced, 80, "every offer got its price from prices.xml");
    assert!(
        offers.values().all(|o| o["stock"].is_array()),
        "every offer got its stock from rests.xml"
    );
    let price_types = by_ext(&server.base, &tok, "price_types").await;
    assert_eq!(price_types.len(), 8);

    // The whole run is one batch: undo takes every record of it back to the bin.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/history/undo", server.base))
        .bearer_auth(&tok)
        .json(&json!({"batch": batch}))
        .send()
        .await
        .expect("undo");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert!(all_items(&server.base, &tok, "offers").await.is_empty());
    assert!(all_items(&server.base, &tok, "products").await.is_empty());
    drop(server);
}

/// Imports one file that must be refused as unreadable (exit 13); returns stderr.
fn refused_as_unreadable(data: &Path, file: &Path) -> String {
    let o = run(&[
        "exchange",
        "import",
        "--data",
        data.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    stderr(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_file_fails_naming_file_and_line_and_keeps_what_came_before() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    init_data(&data, ADMIN, PASSWORD);
    let file = tmp.path().join("import.xml");
    std::fs::write(
        &file,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.05\">\n<Классификатор><Ид>c</Ид><Наименование>К</Наименование>\n<Группы><Группа><Ид>g1</Ид><Наименование>Первая</Наименование></Группа></Группы>\n</Классификатор>\n<Каталог><Ид>c</Ид><Наименование>К</Наименование><Товары>\n<Товар><Ид>p1</Ид><Наименование>Ok</Наименование></Товар>\n<Товар><Ид>p2</Ид><Наименование>Broken</Товар>\n",
    )
    .expect("write");
    let err = refused_as_unreadable(&data, &file);
    assert!(
        err.contains("import.xml") && err.contains("line 8"),
        "{err}"
    );

    let doctype = tmp.path().join("evil.xml");
    std::fs::write(
        &doctype,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>\n<КоммерческаяИнформация>&b;</КоммерческаяИнформация>\n",
    )
    .expect("write");
    let err = refused_as_unreadable(&data, &doctype);
    assert!(err.to_lowercase().contains("dtd"), "{err}");

    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let products = all_items(&server.base, &tok, "products").await;
    assert_eq!(
        products.len(),
        1,
        "the good product before the damage is kept"
    );
    assert_eq!(products[0]["name"], json!("Ok"));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_samples_give_variants_of_one_product_with_prices_in_two_currencies() {
    let Some(samples) = kontor_testkit::commerceml_samples("official exchange import") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    init_data(&data, ADMIN, PASSWORD);
    let set = samples.join("official-2.04");
    let out = import(&data, &[&set.join("offers.xml"), &set.join("import.xml")]);
    let counts = summary(&out);
    assert_eq!(
        counts.get("products").map(String::as_str),
        Some("4 created, 0 updated, 0 unchanged, 0 deleted, 0 failed"),
        "the catalog is applied before the offers whatever the order given: {out}"
    );
    assert_eq!(
        counts.get("offers").map(String::as_str),
        Some("2 created, 0 updated, 0 unchanged, 0 deleted, 0 failed"),
        "{out}"
    );

    let server = Server::start(&data);
    let tok = token(&server.base, ADMIN, PASSWORD).await;
    let products = by_ext(&server.base, &tok, "products").await;
    let offers = by_ext(&server.base, &tok, "offers").await;
    let price_types = by_ext(&server.base, &tok, "price_types").await;
    assert_eq!(price_types.len(), 4);
    // This catalog lists each variant as a product of its own; its offer belongs to it.
    let table =
        &products["05e26d70-01e4-11dc-a411-00055d80a2d1#05e26d76-01e4-11dc-a411-00055d80a2d1"];
    assert_eq!(table["name"], json!("Стол обеденный"));
    let variant =
        &offers["05e26d70-01e4-11dc-a411-00055d80a2d1#05e26d76-01e4-11dc-a411-00055d80a2d1"];
    assert_eq!(variant["product_id"], table["id"], "{variant}");
    assert_eq!(variant["unit"], json!("шт"), "{variant}");
    let retail = &price_types["cbcf493b-55bc-11d9-848a-00112f43529a"];
    assert_eq!(retail["currency"], json!("RUB"), "руб is RUB: {retail}");
    let prices = variant["prices"].as_array().expect("prices");
    assert_eq!(prices.len(), 4, "{variant}");
    let price = |kind: &Value| {
        prices
            .iter()
            .find(|p| p["price_type_id"] == kind["id"])
            .map(|p| (p["price"].clone(), p["currency"].clone()))
    };
    assert_eq!(price(retail), Some((json!("7"), json!("RUB"))));
    assert_eq!(
        price(&price_types["bd72d8fc-55bc-11d9-848a-00112f43529a"]),
        Some((json!("4"), json!("USD")))
    );
    drop(server);
}
