//! Conformance over the real exchange files kept in `shared/data/commerceml/` beside the checkout
//! (or where `KONTOR_SHARED_DATA` points): every file is read whole, its counts match the folder's
//! README table, and known values (read from the files by hand) come out right.
//!
//! Without the folder the test prints a note and passes, except under CI (`CI` set), where it
//! fails: CI always has `shared/` beside the clone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use kontor_commerceml::{Counterparty, Document, Item, Offer, PartyKind, Product, Reader, Unit};

fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KONTOR_SHARED_DATA") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/data/commerceml"))
        .find(|d| d.is_dir())
}

/// The folder, or `None` after printing why the test does nothing (outside CI only).
fn folder() -> Option<PathBuf> {
    match data_dir() {
        Some(dir) => Some(dir),
        None if std::env::var_os("CI").is_some() => panic!(
            "shared/data/commerceml not found above {} and KONTOR_SHARED_DATA not set; CI must have it",
            env!("CARGO_MANIFEST_DIR")
        ),
        None => {
            eprintln!("note: shared/data/commerceml not found; real-file conformance skipped");
            None
        }
    }
}

/// Everything one file gave.
#[derive(Default)]
struct Parsed {
    version: String,
    items: Vec<Item>,
}

fn parse(dir: &Path, file: &str) -> Parsed {
    let path = dir.join(file);
    let input = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader =
        Reader::new(BufReader::new(input)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut parsed = Parsed::default();
    while let Some(item) = reader
        .next_item()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    {
        parsed.items.push(item.item);
    }
    parsed.version = reader.schema_version().unwrap_or_default().to_owned();
    // Progress reaches the end (short of trailing whitespace after the root).
    assert!(
        reader.bytes_read() + 8 >= size,
        "{file}: {} of {size}",
        reader.bytes_read()
    );
    parsed
}

/// Counted the way the README does.
fn counts(p: &Parsed) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    let mut add = |k: &'static str, n: usize| {
        if n > 0 {
            *c.entry(k).or_insert(0) += n;
        }
    };
    for item in &p.items {
        match item {
            Item::Product(_) => add("goods", 1),
            Item::Offer(o) => {
                add("offers", 1);
                add("prices", o.prices.len());
            }
            Item::Document(d) => {
                add("documents", 1);
                add("counterparties", d.counterparties.len());
            }
            Item::Counterparty(_) => add("counterparties", 1),
            Item::Group(_) => add("groups", 1),
            Item::Property(_) => add("properties", 1),
            Item::PriceType(_) => add("price_types", 1),
            _ => {}
        }
    }
    c
}

/// The README's table: file, ВерсияСхемы, encoding, counts.
const TABLE: &[(&str, &str, &str, &str)] = &[
    (
        "bitrix-module-3.1/documents/1/documents.xml",
        "3.1",
        "utf-8 + BOM",
        "counterparties=20, documents=20",
    ),
    (
        "bitrix-module-3.1/documents/2/documents.xml",
        "3.1",
        "utf-8 + BOM",
        "counterparties=4, documents=4",
    ),
    (
        "bitrix-module-3.1/goods/1/import.xml",
        "3.1",
        "utf-8 + BOM",
        "goods=21",
    ),
    (
        "bitrix-module-3.1/goods/1/offers.xml",
        "3.1",
        "utf-8 + BOM",
        "offers=86",
    ),
    (
        "bitrix-module-3.1/goods/1/prices.xml",
        "3.1",
        "utf-8 + BOM",
        "offers=86, prices=86",
    ),
    (
        "bitrix-module-3.1/goods/1/rests.xml",
        "3.1",
        "utf-8 + BOM",
        "offers=86",
    ),
    (
        "bitrix-module-3.1/import.xml",
        "3.1",
        "utf-8 + BOM",
        "groups=1, price_types=8",
    ),
    (
        "bitrix-module-3.1/properties/1/import.xml",
        "3.1",
        "utf-8 + BOM",
        "properties=25",
    ),
    (
        "bitrix-module-3.1/properties/1/offers.xml",
        "3.1",
        "utf-8 + BOM",
        "properties=12",
    ),
    (
        "bitrix-query-2.05/bitrix-query-response-empty.xml",
        "2.05",
        "windows-1251",
        "",
    ),
    (
        "bitrix-query-2.05/bitrix-query-response-full.xml",
        "2.05",
        "windows-1251",
        "counterparties=2, documents=2",
    ),
    (
        "exchange-2.09/contractors-example.xml",
        "2.09",
        "utf-8",
        "counterparties=4",
    ),
    (
        "exchange-2.09/documents-example.xml",
        "2.09",
        "utf-8",
        "counterparties=2, documents=2",
    ),
    (
        "official-2.04/import.xml",
        "2.04",
        "utf-8",
        "goods=4, groups=1",
    ),
    (
        "official-2.04/offers.xml",
        "2.04",
        "utf-8",
        "offers=2, price_types=4, prices=8",
    ),
    (
        "official-2.04/orders.xml",
        "2.03",
        "utf-8",
        "counterparties=1, documents=1",
    ),
    (
        "ut11-2.07/import0_1.xml",
        "2.07",
        "utf-8 + BOM",
        "goods=36, groups=1, properties=12",
    ),
    (
        "ut11-2.07/offers0_1.xml",
        "2.07",
        "utf-8 + BOM",
        "offers=44, price_types=1, prices=44",
    ),
];

fn parse_counts(text: &str) -> BTreeMap<String, usize> {
    text.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            Some((k.trim().to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_one_tested() {
    let Some(dir) = folder() else { return };
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains(".xml"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), TABLE.len(), "README rows");
    for (row, (file, version, encoding, counts)) in rows.iter().zip(TABLE) {
        assert_eq!(row.len(), 4, "{row:?}");
        assert_eq!(
            (row[0].as_str(), row[1].as_str(), row[2].as_str()),
            (*file, *version, *encoding)
        );
        assert_eq!(parse_counts(&row[3]), parse_counts(counts), "{file}");
    }
}

#[test]
fn every_file_reads_with_the_readme_counts() {
    let Some(dir) = folder() else { return };
    for (file, version, encoding, expected) in TABLE {
        let head = std::fs::read(dir.join(file)).unwrap_or_default();
        assert_eq!(
            head.starts_with(b"\xEF\xBB\xBF"),
            encoding.ends_with("BOM"),
            "{file}: BOM"
        );
        let parsed = parse(&dir, file);
        assert_eq!(parsed.version, *version, "{file}");
        let got: BTreeMap<String, usize> = counts(&parsed)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(got, parse_counts(expected), "{file}");
        assert!(
            matches!(parsed.items.first(), Some(Item::Header(_))),
            "{file}"
        );
    }
}

fn products(p: &Parsed) -> Vec<&Product> {
    p.items
        .iter()
        .filter_map(|i| match i {
            Item::Product(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn offers(p: &Parsed) -> Vec<&Offer> {
    p.items
        .iter()
        .filter_map(|i| match i {
            Item::Offer(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn documents(p: &Parsed) -> Vec<&Document> {
    p.items
        .iter()
        .filter_map(|i| match i {
            Item::Document(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn ut11_catalog_values() {
    let Some(dir) = folder() else { return };
    let p = parse(&dir, "ut11-2.07/import0_1.xml");
    let first = products(&p)[0];
    assert_eq!(first.id, "bd8c4e15-18f9-11e7-80c2-0cc47ab29cd1");
    assert_eq!(first.barcode.as_deref(), Some("8809288404089"));
    assert_eq!(first.sku.as_deref(), Some("PM-421-WP"));
    assert_eq!(
        first.name.as_deref(),
        Some("Портативный коврик Portable 140x200x1 см, Деревянные лошадки")
    );
    // `Код="796 "` with a trailing space; the short name is absent (only a Пересчет child).
    assert_eq!(
        first.unit,
        Some(Unit {
            code: s("796"),
            name: None,
            full_name: s("Штука"),
            intl: s("PCE")
        })
    );
    assert_eq!(first.group_ids, ["82cfb8dc-18f9-11e7-80c2-0cc47ab29cd1"]);
    assert_eq!(first.manufacturer.as_deref(), Some("Crazy Boom"));
    assert_eq!(first.tax_rates[0].rate, "20");
    assert_eq!(first.property_values.len(), 12);
    let weight = first
        .property_values
        .iter()
        .find(|v| v.property_id == "38409b0c-29da-11e9-80c9-0cc47ab29cd1");
    assert_eq!(
        weight.map(|v| v.values.clone()),
        Some(vec!["1,4".to_owned()])
    );
    let country = p.items.iter().find_map(|i| match i {
        Item::Property(x) if x.name.as_deref() == Some("Страна производства") => {
            Some(x)
        }
        _ => None,
    });
    let country = country.unwrap_or_else(|| panic!("no property"));
    assert_eq!(country.value_type.as_deref(), Some("Справочник"));
    assert_eq!(
        country.values,
        [(
            "af848a7e-18fa-11e7-80c2-0cc47ab29cd1".to_owned(),
            "КОРЕЯ, РЕСПУБЛИКА".to_owned()
        )]
    );
    let Some(Item::Catalog(cat)) = p.items.iter().find(|i| matches!(i, Item::Catalog(_))) else {
        panic!("no catalog")
    };
    assert_eq!(cat.only_changes, Some(false));
    assert_eq!(
        cat.id.as_deref(),
        Some("b21db898-7f82-46d8-a5ca-7c4f1d200a13")
    );
}

#[test]
fn ut11_offer_values() {
    let Some(dir) = folder() else { return };
    let p = parse(&dir, "ut11-2.07/offers0_1.xml");
    let o = offers(&p)[0];
    assert_eq!(o.id, "bd8c4e15-18f9-11e7-80c2-0cc47ab29cd1");
    assert_eq!(o.prices.len(), 1);
    assert_eq!(o.prices[0].per_unit, "100");
    assert_eq!(o.prices[0].currency.as_deref(), Some("RUB"));
    assert_eq!(
        o.prices[0].price_type_id,
        "279b6812-740b-11e8-80c8-0cc47ab29cd1"
    );
    assert_eq!(o.quantity.as_deref(), Some("377"));
    let stock: Vec<(&str, &str)> = o
        .stock
        .iter()
        .map(|s| (s.warehouse_id.as_str(), s.quantity.as_str()))
        .collect();
    assert_eq!(
        stock,
        [
            ("6abdb0b5-18fd-11e7-80c2-0cc47ab29cd1", "1"),
            ("d2a52d49-19c9-11e7-80c2-0cc47ab29cd1", "0"),
            ("dd306af1-19c9-11e7-80c2-0cc47ab29cd1", "376")
        ]
    );
    let warehouses: Vec<&str> = p
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Warehouse(w) => w.name.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(warehouses, ["Владивосток", "Новосибирск", "Москва"]);
    let Some(Item::PriceType(pt)) = p.items.iter().find(|i| matches!(i, Item::PriceType(_))) else {
        panic!()
    };
    assert_eq!(
        (
            pt.name.as_deref(),
            pt.currency.as_deref(),
            pt.vat_included,
            pt.excise
        ),
        (Some("BASE"), Some("RUB"), Some(true), Some(false))
    );
}

#[test]
fn official_samples() {
    let Some(dir) = folder() else { return };
    let p = parse(&dir, "official-2.04/offers.xml");
    let o = offers(&p)[0];
    let retail = o
        .prices
        .iter()
        .find(|p| p.price_type_id == "cbcf493b-55bc-11d9-848a-00112f43529a");
    let retail = retail.unwrap_or_else(|| panic!("no retail price"));
    assert_eq!(retail.per_unit, "7");
    assert_eq!(retail.currency.as_deref(), Some("руб"));
    assert_eq!(retail.presentation.as_deref(), Some("7 руб. за шт"));
    assert_eq!(o.quantity.as_deref(), Some("0"));
    assert!(
        o.has_prices && !o.has_stock,
        "a bare Количество says nothing per warehouse"
    );

    let p = parse(&dir, "official-2.04/import.xml");
    assert_eq!(
        products(&p)[0].characteristics,
        [("Цвет".to_owned(), "Белый".to_owned())]
    );

    let p = parse(&dir, "official-2.04/orders.xml");
    let d = documents(&p)[0];
    assert_eq!(d.number.as_deref(), Some("36"));
    assert_eq!(d.sum.as_deref(), Some("6734.47"));
    assert_eq!(d.time.as_deref(), Some("15:19:27"));
    let buyer = &d.counterparties[0];
    assert_eq!(buyer.kind, PartyKind::Person);
    assert_eq!(buyer.last_name.as_deref(), Some("Иванов"));
    assert_eq!(
        buyer.representatives[0].id.as_deref(),
        Some("b342955a9185c40132d4c1df6b30af2f")
    );
    assert_eq!(d.lines.len(), 2);
    assert_eq!(
        d.lines[1].name.as_deref(),
        Some("Телевизор &quot;JVC&quot;"),
        "double escaping kept"
    );
    assert_eq!(d.lines[1].quantity.as_deref(), Some("1.00"));
}

#[test]
fn bitrix_query_windows_1251() {
    let Some(dir) = folder() else { return };
    let p = parse(&dir, "bitrix-query-2.05/bitrix-query-response-full.xml");
    let docs = documents(&p);
    assert_eq!(docs[0].number.as_deref(), Some("132"));
    assert_eq!(docs[0].sum.as_deref(), Some("231.7400"));
    assert_eq!(docs[0].operation.as_deref(), Some("Заказ товара"));
    assert!(docs[0].requisites.contains(&(
        "Комментарии покупателя".to_owned(),
        "Я повелитель порошочков".to_owned()
    )));
    assert!(docs[0].requisites.contains(&(
        "Статус заказа".to_owned(),
        "[N] Принят, ожидается оплата".to_owned()
    )));
    assert_eq!(
        docs[1].counterparties[0].id.as_deref(),
        Some("5#content-manager# Контент менджер")
    );
    assert_eq!((docs[0].lines.len(), docs[1].lines.len()), (1, 7));
    assert_eq!(
        docs[1].lines[1].name.as_deref(),
        Some("Kaneyon 5Kg / Dishwashing liquid detergent")
    );
    assert_eq!(docs[1].sum.as_deref(), Some("14380.5800"));
    let p = parse(&dir, "bitrix-query-2.05/bitrix-query-response-empty.xml");
    assert_eq!(p.items.len(), 1);
}

#[test]
fn exchange_209_documents_and_contractors() {
    let Some(dir) = folder() else { return };
    let p = parse(&dir, "exchange-2.09/documents-example.xml");
    let d = documents(&p)[0];
    assert_eq!(d.number_1c.as_deref(), Some("ТДЦУ-000001"));
    assert_eq!(d.sum.as_deref(), Some("8186.84"));
    assert_eq!(d.rate.as_deref(), Some("1.0000"));
    assert_eq!(d.taxes[0].amount.as_deref(), Some("1248.84"));
    let k = &d.counterparties[0];
    assert_eq!(
        (k.name.as_deref(), k.kind),
        (Some("Kikinda (Сербия)"), PartyKind::Legal)
    );
    assert_eq!(k.bank_accounts.len(), 2);
    assert_eq!(
        d.lines[0].unit.as_ref().and_then(|u| u.name.as_deref()),
        Some("шт")
    );
    assert_eq!(d.lines[0].taxes[0].amount.as_deref(), Some("600.84"));

    let p = parse(&dir, "exchange-2.09/contractors-example.xml");
    let parties: Vec<&Counterparty> = p
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Counterparty(c) => Some(c),
            _ => None,
        })
        .collect();
    let uyut = parties[2];
    assert_eq!(uyut.inn.as_deref(), Some("181620360057"));
    assert_eq!(uyut.full_name.as_deref(), Some("ТОО \"ТД Уют\""));
    assert_eq!(uyut.bank_accounts[0].bik.as_deref(), Some("190701310"));
    assert_eq!(uyut.contacts[0].value.as_deref(), Some("Uyt@komp.kz"));
    assert_eq!(uyut.legal_address.as_ref().map(|a| a.fields.len()), Some(5));
}

#[test]
fn bitrix_module_31_packets() {
    let Some(dir) = folder() else { return };
    let p = parse(&dir, "bitrix-module-3.1/documents/1/documents.xml");
    let docs = documents(&p);
    let containers: Vec<Option<u32>> = docs.iter().map(|d| d.container).collect();
    assert_eq!(containers, (0..20).map(Some).collect::<Vec<_>>());
    let ant = docs
        .iter()
        .find(|d| d.counterparties[0].inn.as_deref() == Some("7806080903"))
        .unwrap_or_else(|| panic!("no АНТ-Консалт order"));
    assert_eq!(ant.number.as_deref(), Some("321"));
    assert_eq!(ant.sum.as_deref(), Some("60259.56"));
    assert_eq!(ant.number_1c.as_deref(), Some("L321"));
    let party = &ant.counterparties[0];
    assert_eq!(party.kind, PartyKind::Legal);
    assert_eq!(party.kpp.as_deref(), Some("780601001"));
    assert_eq!(party.representatives.len(), 2);

    let p = parse(&dir, "bitrix-module-3.1/goods/1/import.xml");
    let first = products(&p)[0];
    assert_eq!(
        first.name.as_deref(),
        Some("Parallels Desktop for Mac Pro Lic")
    );
    assert_eq!(
        first.unit.as_ref().and_then(|u| u.code.as_deref()),
        Some("796")
    );
    assert_eq!(first.tax_rates[0].rate, "Без налога");
    assert!(first.property_values.iter().all(|v| v.values.is_empty()));

    let p = parse(&dir, "bitrix-module-3.1/goods/1/offers.xml");
    assert!(offers(&p).iter().all(|o| !o.has_prices && !o.has_stock));
    let p = parse(&dir, "bitrix-module-3.1/goods/1/prices.xml");
    let o = offers(&p)[0];
    assert!(o.has_prices && !o.has_stock);
    assert_eq!(o.prices[0].per_unit, "2042.66");
    assert_eq!(o.prices[0].currency.as_deref(), Some("руб"));
    let p = parse(&dir, "bitrix-module-3.1/goods/1/rests.xml");
    assert!(offers(&p)
        .iter()
        .all(|o| o.has_stock && !o.has_prices && o.stock.len() == 12));

    let p = parse(&dir, "bitrix-module-3.1/import.xml");
    let units: Vec<&Unit> = p
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Unit(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(
        units,
        [&Unit {
            code: s("796"),
            name: s("шт"),
            full_name: s("штука"),
            intl: None
        }]
    );
    let euro = p.items.iter().find_map(|i| match i {
        Item::PriceType(t) if t.currency.as_deref() == Some("EUR") => t.name.as_deref(),
        _ => None,
    });
    assert_eq!(euro, Some("Отпускная, евро"));
    assert_eq!(
        p.items
            .iter()
            .filter(|i| matches!(i, Item::Warehouse(_)))
            .count(),
        12
    );
}
