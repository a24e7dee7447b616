//! `kontor-bench --suite exchange`: a generated 1C catalog — `--offers` offers (variants, four
//! per product) with two price types and stock in three warehouses, as a 1C UT 11 export writes
//! them (`import.xml`, `offers.xml`) — brought into Kontor and measured beside, in the same run:
//!
//! - the limit of reading: the bare streaming parse of the same files;
//! - the limit of writing: plain inserts of the same rows (record, unique 1C id, journal entry)
//!   through SQLite's C API (rusqlite, prepared statements, large transactions);
//! - Kontor: `kontor exchange import` (the real binary), the same files over the HTTP protocol
//!   (`checkauth`, `init`, uploads in `file_limit` parts, `import` until `success`), and the
//!   unchanged files again (time, and journal entries written: none).
//!
//! Peak memory (VmHWM) of each Kontor process is reported.

use crate::backups::{journal_head, mib, run};
use crate::{init, kontor_binary, start_server, Args, Report};
use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const ONEC: &str = "1c@bench.local";
const ONEC_PASSWORD: &str = "bench-exchange-password";
const PRICE_TYPES: [&str; 2] = [
    "7f6e1b52-0000-4000-8000-000000000001",
    "7f6e1b52-0000-4000-8000-000000000002",
];
const WAREHOUSES: [&str; 3] = [
    "9a0c4d11-0000-4000-8000-000000000001",
    "9a0c4d11-0000-4000-8000-000000000002",
    "9a0c4d11-0000-4000-8000-000000000003",
];
const VARIANTS: usize = 4;

fn product_id(p: usize) -> String {
    format!("{:08x}-18f9-11e7-80c2-0cc47ab29cd1", p)
}

fn variant_id(v: usize) -> String {
    format!("{:08x}-720f-11df-b436-0015e92f2802", v)
}

/// Writes `import.xml` (offers / 4 products in 100 groups) and `offers.xml` (the offers).
fn generate(dir: &Path, offers: usize) -> BenchResult<(PathBuf, PathBuf)> {
    let products = offers.div_ceil(VARIANTS);
    let import = dir.join("import.xml");
    let mut out = BufWriter::new(std::fs::File::create(&import)?);
    out.write_all(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    out.write_all("<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_2\" ВерсияСхемы=\"2.07\" ДатаФормирования=\"2026-11-24T10:00:00\">\n<Классификатор><Ид>c1</Ид><Наименование>Классификатор</Наименование><Группы>\n".as_bytes())?;
    for g in 0..100 {
        writeln!(
            out,
            "<Группа><Ид>group-{g:04}</Ид><Наименование>Группа {g}</Наименование></Группа>"
        )?;
    }
    out.write_all("</Группы></Классификатор>\n<Каталог СодержитТолькоИзменения=\"false\"><Ид>cat1</Ид><ИдКлассификатора>c1</ИдКлассификатора><Наименование>Каталог</Наименование><Товары>\n".as_bytes())?;
    let mut s = String::new();
    for p in 0..products {
        s.clear();
        write!(
            s,
            "<Товар><Ид>{}</Ид><Артикул>ART-{p:07}</Артикул><Наименование>Коврик портативный модель {p}</Наименование>\
             <БазоваяЕдиница Код=\"796\" НаименованиеПолное=\"Штука\" МеждународноеСокращение=\"PCE\">шт</БазоваяЕдиница>\
             <Группы><Ид>group-{:04}</Ид></Группы><СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>20</Ставка></СтавкаНалога></СтавкиНалогов>\
             <ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>ТипНоменклатуры</Наименование><Значение>Товар</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Товар>",
            product_id(p),
            p % 100
        )?;
        s.push('\n');
        out.write_all(s.as_bytes())?;
    }
    out.write_all("</Товары></Каталог></КоммерческаяИнформация>\n".as_bytes())?;
    out.flush()?;

    let offers_path = dir.join("offers.xml");
    let mut out = BufWriter::new(std::fs::File::create(&offers_path)?);
    out.write_all(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    out.write_all("<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_2\" ВерсияСхемы=\"2.07\" ДатаФормирования=\"2026-11-24T10:00:00\">\n<ПакетПредложений СодержитТолькоИзменения=\"false\"><Ид>cat1#</Ид><Наименование>Пакет предложений</Наименование><ИдКаталога>cat1</ИдКаталога><ИдКлассификатора>c1</ИдКлассификатора><ТипыЦен>".as_bytes())?;
    for (i, t) in PRICE_TYPES.iter().enumerate() {
        write!(
            out,
            "<ТипЦены><Ид>{t}</Ид><Наименование>Цена {i}</Наименование><Валюта>RUB</Валюта></ТипЦены>"
        )?;
    }
    out.write_all("</ТипыЦен><Склады>".as_bytes())?;
    for (i, w) in WAREHOUSES.iter().enumerate() {
        write!(
            out,
            "<Склад><Ид>{w}</Ид><Наименование>Склад {i}</Наименование></Склад>"
        )?;
    }
    out.write_all("</Склады><Предложения>\n".as_bytes())?;
    for o in 0..offers {
        let p = o / VARIANTS;
        s.clear();
        write!(
            s,
            "<Предложение><Ид>{}#{}</Ид><Артикул>ART-{p:07}</Артикул><Наименование>Коврик портативный модель {p} (размер {})</Наименование>\
             <БазоваяЕдиница Код=\"796 \" НаименованиеПолное=\"Штука\" МеждународноеСокращение=\"PCE\">шт</БазоваяЕдиница>\
             <ХарактеристикиТовара><ХарактеристикаТовара><Наименование>Размер</Наименование><Значение>{}</Значение></ХарактеристикаТовара></ХарактеристикиТовара><Цены>",
            product_id(p),
            variant_id(o),
            o % VARIANTS,
            o % VARIANTS
        )?;
        for (i, t) in PRICE_TYPES.iter().enumerate() {
            let price = 100 + (o * 7 + i * 13) % 9000;
            write!(
                s,
                "<Цена><Представление>{price} RUB за шт</Представление><ИдТипаЦены>{t}</ИдТипаЦены><ЦенаЗаЕдиницу>{price}</ЦенаЗаЕдиницу><Валюта>RUB</Валюта><Единица>шт</Единица><Коэффициент>1</Коэффициент></Цена>"
            )?;
        }
        let stock = [(o * 3) % 50, (o * 5) % 20, (o * 11) % 7];
        write!(
            s,
            "</Цены><Количество>{}</Количество>",
            stock.iter().sum::<usize>()
        )?;
        for (w, q) in WAREHOUSES.iter().zip(stock) {
            write!(s, "<Склад ИдСклада=\"{w}\" КоличествоНаСкладе=\"{q}\"/>")?;
        }
        s.push_str("</Предложение>\n");
        out.write_all(s.as_bytes())?;
    }
    out.write_all("</Предложения></ПакетПредложений></КоммерческаяИнформация>\n".as_bytes())?;
    out.flush()?;
    Ok((import, offers_path))
}

/// The bare streaming parse of both files: items read.
fn bare_parse(files: &[&Path]) -> BenchResult<usize> {
    let mut items = 0;
    for f in files {
        let mut reader = kontor_commerceml::Reader::new(BufReader::with_capacity(
            256 * 1024,
            std::fs::File::open(f)?,
        ))?;
        while reader.next_item()?.is_some() {
            items += 1;
        }
    }
    Ok(items)
}

/// The same rows Kontor writes — a record, its unique 1C id, a journal entry with the
/// record's image — inserted through SQLite's C API with prepared statements, 10,000 per
/// transaction, in the same table layout. Returns records written.
fn plain_inserts(db: &Path, files: &[&Path]) -> BenchResult<(usize, f64)> {
    // The rows are made first (from the parse), so only the inserts are timed.
    let mut rows: Vec<(&'static str, String, String, String)> = Vec::new();
    for f in files {
        let mut reader = kontor_commerceml::Reader::new(BufReader::with_capacity(
            256 * 1024,
            std::fs::File::open(f)?,
        ))?;
        while let Some(item) = reader.next_item()? {
            match item.item {
                kontor_commerceml::Item::Product(p) => {
                    let data = serde_json::json!({"name": p.name, "sku": p.sku, "unit": "шт",
                        "unit_code": "796", "kind": "goods", "vat_rate": "20", "active": true,
                        "external_id": p.id, "group_id": "01a2-group"});
                    rows.push(("products", uuid(rows.len()), p.id, data.to_string()));
                }
                kontor_commerceml::Item::Offer(o) => {
                    let prices: Vec<_> = o.prices.iter().map(|p| serde_json::json!({"price_type_id": p.price_type_id, "price": p.per_unit, "currency": "RUB", "unit": "шт"})).collect();
                    let stock: Vec<_> = o.stock.iter().map(|s| serde_json::json!({"warehouse_id": s.warehouse_id, "quantity": s.quantity})).collect();
                    let data = serde_json::json!({"product_id": "01a2-product", "name": o.name,
                        "sku": o.sku, "unit": "шт", "characteristics": [{"name": "Размер", "value": "1"}],
                        "prices": prices, "stock": stock, "quantity": o.quantity, "active": true,
                        "external_id": o.id});
                    rows.push(("offers", uuid(rows.len()), o.id, data.to_string()));
                }
                _ => {}
            }
        }
    }
    let _ = std::fs::remove_file(db);
    let mut conn = rusqlite::Connection::open(db)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE records (entity TEXT NOT NULL, id TEXT NOT NULL, owner_id TEXT, parent_id TEXT,
             created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_batch TEXT, deleted_at INTEGER,
             deleted_by TEXT, search TEXT NOT NULL DEFAULT '', data TEXT NOT NULL, PRIMARY KEY (entity, id));
         CREATE INDEX records_owner ON records (entity, owner_id, id);
         CREATE INDEX records_parent ON records (parent_id) WHERE parent_id IS NOT NULL;
         CREATE TABLE uniques (entity TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
             record_id TEXT NOT NULL, PRIMARY KEY (entity, key, value));
         CREATE INDEX uniques_record ON uniques (record_id);
         CREATE TABLE journal (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,
             origin TEXT NOT NULL, batch TEXT NOT NULL, entity TEXT NOT NULL, record_id TEXT NOT NULL,
             op TEXT NOT NULL, owner_id TEXT, before TEXT, after TEXT, scrubbed INTEGER NOT NULL DEFAULT 0);
         CREATE INDEX journal_record ON journal (entity, record_id, seq);
         CREATE INDEX journal_batch ON journal (batch);
         CREATE INDEX journal_actor ON journal (actor, seq);",
    )?;
    let t = Instant::now();
    for (i, chunk) in rows.chunks(10_000).enumerate() {
        let tx = conn.transaction()?;
        {
            let mut rec = tx.prepare_cached(
                "INSERT INTO records (entity, id, parent_id, created_at, updated_at, search, data) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
            )?;
            let mut uni = tx.prepare_cached(
                "INSERT INTO uniques (entity, key, value, record_id) VALUES (?1, 'external_id', ?2, ?3)",
            )?;
            let mut jrn = tx.prepare_cached(
                "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, after) VALUES (?1, ?2, 'bench', 'exchange', 'batch', ?3, ?4, 'create', ?5)",
            )?;
            for (j, (entity, id, ext, data)) in chunk.iter().enumerate() {
                let seq = (i * 10_000 + j + 1) as i64;
                rec.execute(rusqlite::params![
                    entity,
                    id,
                    None::<String>,
                    seq,
                    ext,
                    data
                ])?;
                uni.execute(rusqlite::params![entity, ext, id])?;
                jrn.execute(rusqlite::params![seq, seq, entity, id, data])?;
            }
        }
        tx.commit()?;
    }
    Ok((rows.len(), t.elapsed().as_secs_f64()))
}

fn uuid(i: usize) -> String {
    format!(
        "01a2{:04x}-{:04x}-7000-8000-{:012x}",
        i >> 16,
        i & 0xffff,
        i
    )
}

fn onec_user(bin: &Path, data: &Path) -> BenchResult<()> {
    let o = Command::new(bin)
        .args(["user", "add", "--data"])
        .arg(data)
        .args([
            "--email",
            ONEC,
            "--role",
            "exchange",
            "--password",
            ONEC_PASSWORD,
        ])
        .env("KONTOR_LOG", "warn")
        .output()?;
    if !o.status.success() {
        return Err(format!("user add: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(())
}

/// A catalog exchange over HTTP as 1C runs it; returns seconds and the server's peak MiB.
async fn over_http(bin: &Path, data: &Path, files: &[&Path]) -> BenchResult<(f64, f64)> {
    let server = start_server(bin, &["--data", data.to_str().ok_or("path")?])?;
    let url = format!("{}/1c_exchange", server.base);
    let http = reqwest::Client::new();
    let t = Instant::now();
    let text = |r: reqwest::Response| async move { r.text().await };
    let auth = text(
        http.get(format!("{url}?type=catalog&mode=checkauth"))
            .basic_auth(ONEC, Some(ONEC_PASSWORD))
            .send()
            .await?,
    )
    .await?;
    let lines: Vec<&str> = auth.lines().collect();
    if lines.first() != Some(&"success") || lines.len() < 3 {
        return Err(format!("checkauth: {auth}").into());
    }
    let cookie = format!("{}={}", lines[1], lines[2]);
    let init = text(
        http.get(format!("{url}?type=catalog&mode=init"))
            .header("Cookie", &cookie)
            .send()
            .await?,
    )
    .await?;
    let limit: usize = init
        .lines()
        .find_map(|l| l.strip_prefix("file_limit="))
        .ok_or("no file_limit")?
        .trim()
        .parse()?;
    for f in files {
        let name = f.file_name().ok_or("name")?.to_string_lossy().to_string();
        let bytes = std::fs::read(f)?;
        for part in bytes.chunks(limit) {
            let a = text(
                http.post(format!("{url}?type=catalog&mode=file&filename={name}"))
                    .header("Cookie", &cookie)
                    .body(part.to_vec())
                    .send()
                    .await?,
            )
            .await?;
            if !a.starts_with("success") {
                return Err(format!("file {name}: {a}").into());
            }
        }
    }
    for f in files {
        let name = f.file_name().ok_or("name")?.to_string_lossy().to_string();
        loop {
            let a = text(
                http.get(format!("{url}?type=catalog&mode=import&filename={name}"))
                    .header("Cookie", &cookie)
                    .send()
                    .await?,
            )
            .await?;
            if a.starts_with("success") {
                break;
            }
            if !a.starts_with("progress") {
                return Err(format!("import {name}: {a}").into());
            }
        }
    }
    let a = text(
        http.get(format!("{url}?type=catalog&mode=complete"))
            .header("Cookie", &cookie)
            .send()
            .await?,
    )
    .await?;
    if !a.starts_with("success") {
        return Err(format!("complete: {a}").into());
    }
    let seconds = t.elapsed().as_secs_f64();
    let peak = crate::peak_rss_mib(server.child.id()).unwrap_or(0.0);
    drop(server);
    Ok((seconds, peak))
}

pub async fn measure(args: &Args, work: &Path, report: &mut Report) -> BenchResult<()> {
    let bin = kontor_binary(args);
    let offers = args.offers;
    println!("generating a catalog of {offers} offers");
    let (import, offers_file) = generate(work, offers)?;
    let files = [import.as_path(), offers_file.as_path()];
    let bytes = std::fs::metadata(&import)?.len() + std::fs::metadata(&offers_file)?.len();
    let products = offers.div_ceil(VARIANTS);
    report.row(
        "catalog: products / offers / file size",
        format!("{products} / {offers} / {:.0} MiB", mib(bytes)),
    );

    let t = Instant::now();
    let items = bare_parse(&files)?;
    let parse = t.elapsed().as_secs_f64();
    report.row(
        "bare streaming parse (limit of reading)",
        format!(
            "{parse:.1} s, {:.0} offers/s, {items} items",
            offers as f64 / parse
        ),
    );
    let (rows, plain) = plain_inserts(&work.join("plain.db"), &files)?;
    report.row(
        "plain inserts via SQLite C API (limit of writing)",
        format!(
            "{plain:.1} s for {rows} records, {:.0} records/s",
            rows as f64 / plain
        ),
    );

    let data = work.join("offline");
    init(&bin, &["--data", data.to_str().ok_or("path")?])?;
    let ran = run(Command::new(&bin)
        .args(["exchange", "import", "--data"])
        .arg(&data)
        .args(files))?;
    report.row(
        "kontor exchange import",
        format!(
            "{:.1} s, {:.0} offers/s ({:.0} records/s), peak {:.0} MiB",
            ran.seconds,
            offers as f64 / ran.seconds,
            rows as f64 / ran.seconds,
            ran.peak_mib
        ),
    );
    report.row(
        "  cost vs plain inserts + bare parse",
        format!("{:.1}x", ran.seconds / (plain + parse)),
    );
    let head = journal_head(&data.join("kontor.db"))?;
    let again = run(Command::new(&bin)
        .args(["exchange", "import", "--data"])
        .arg(&data)
        .args(files))?;
    let head_after = journal_head(&data.join("kontor.db"))?;
    report.row(
        "re-import of the unchanged files",
        format!(
            "{:.1} s, {} journal entries written, peak {:.0} MiB",
            again.seconds,
            head_after - head,
            again.peak_mib
        ),
    );

    let data = work.join("http");
    init(&bin, &["--data", data.to_str().ok_or("path")?])?;
    onec_user(&bin, &data)?;
    let (seconds, peak) = over_http(&bin, &data, &files).await?;
    report.row(
        "HTTP exchange (checkauth, init, 8 MiB parts, import, complete)",
        format!(
            "{seconds:.1} s, {:.0} offers/s, server peak {peak:.0} MiB",
            offers as f64 / seconds
        ),
    );
    Ok(())
}
