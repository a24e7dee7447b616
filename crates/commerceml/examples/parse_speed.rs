//! Bare parse speed: writes an offers file with N offers (shaped like a 1C UT 11 export: unit with
//! recalculation, one price, quantity, stock in three warehouses) to a temporary folder, reads it
//! back with the streaming reader and prints offers per second.
//!
//! `cargo run --release -p kontor-commerceml --example parse_speed -- 200000 [windows-1251]`

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use kontor_commerceml::{Item, Reader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let cp1251 = args.next().is_some_and(|a| a == "windows-1251");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("offers.xml");

    let mut xml = String::new();
    let mut out = BufWriter::new(File::create(&path)?);
    let put = |s: &str, out: &mut BufWriter<File>| -> std::io::Result<()> {
        if cp1251 {
            let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(s);
            out.write_all(&bytes)
        } else {
            out.write_all(s.as_bytes())
        }
    };
    let encoding = if cp1251 { "windows-1251" } else { "UTF-8" };
    if !cp1251 {
        out.write_all(b"\xEF\xBB\xBF")?;
    }
    put(
        &format!(
            "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n<КоммерческаяИнформация \
             xmlns=\"urn:1C.ru:commerceml_2\" ВерсияСхемы=\"2.07\" \
             ДатаФормирования=\"2020-04-07T12:08:44\">\n\t<ПакетПредложений \
             СодержитТолькоИзменения=\"false\">\n\t\t<Ид>catalog#</Ид>\n\t\t<Наименование>Пакет \
             предложений</Наименование>\n\t\t<ИдКаталога>catalog</ИдКаталога>\n\t\t<Предложения>\n"
        ),
        &mut out,
    )?;
    for i in 0..n {
        xml.clear();
        use std::fmt::Write as _;
        write!(
            xml,
            "\t\t\t<Предложение>\n\t\t\t\t<Ид>bd8c4e15-18f9-11e7-80c2-{i:012}</Ид>\n\
             \t\t\t\t<Артикул>PM-{i}</Артикул>\n\
             \t\t\t\t<Наименование>Портативный коврик Portable 140x200x1 см, вариант {i}</Наименование>\n\
             \t\t\t\t<БазоваяЕдиница Код=\"796 \" НаименованиеПолное=\"Штука\" МеждународноеСокращение=\"PCE\">\n\
             \t\t\t\t\t<Пересчет>\n\t\t\t\t\t\t<Единица>796</Единица>\n\t\t\t\t\t\t<Коэффициент>1</Коэффициент>\n\t\t\t\t\t</Пересчет>\n\
             \t\t\t\t</БазоваяЕдиница>\n\
             \t\t\t\t<Цены>\n\t\t\t\t\t<Цена>\n\
             \t\t\t\t\t\t<Представление>{p} RUB за PCE</Представление>\n\
             \t\t\t\t\t\t<ИдТипаЦены>279b6812-740b-11e8-80c8-0cc47ab29cd1</ИдТипаЦены>\n\
             \t\t\t\t\t\t<ЦенаЗаЕдиницу>{p}</ЦенаЗаЕдиницу>\n\
             \t\t\t\t\t\t<Валюта>RUB</Валюта>\n\t\t\t\t\t\t<Единица>PCE</Единица>\n\t\t\t\t\t\t<Коэффициент>1</Коэффициент>\n\
             \t\t\t\t\t</Цена>\n\t\t\t\t</Цены>\n\
             \t\t\t\t<Количество>{q}</Количество>\n\
             \t\t\t\t<Склад ИдСклада=\"6abdb0b5-18fd-11e7-80c2-0cc47ab29cd1\" КоличествоНаСкладе=\"1\"/>\n\
             \t\t\t\t<Склад ИдСклада=\"d2a52d49-19c9-11e7-80c2-0cc47ab29cd1\" КоличествоНаСкладе=\"0\"/>\n\
             \t\t\t\t<Склад ИдСклада=\"dd306af1-19c9-11e7-80c2-0cc47ab29cd1\" КоличествоНаСкладе=\"{q1}\"/>\n\
             \t\t\t</Предложение>\n",
            p = 100 + i % 900,
            q = i % 400,
            q1 = (i % 400).saturating_sub(1),
        )?;
        put(&xml, &mut out)?;
    }
    put(
        "\t\t</Предложения>\n\t</ПакетПредложений>\n</КоммерческаяИнформация>\n",
        &mut out,
    )?;
    out.flush()?;
    drop(out);
    let size = std::fs::metadata(&path)?.len();

    let start = Instant::now();
    let mut reader = Reader::new(BufReader::with_capacity(64 * 1024, File::open(&path)?))?;
    let (mut offers, mut prices) = (0usize, 0usize);
    while let Some(item) = reader.next_item()? {
        if let Item::Offer(o) = item.item {
            offers += 1;
            prices += o.prices.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(offers, n);
    assert_eq!(prices, n);
    println!(
        "{offers} offers ({encoding}, {:.1} MB) in {secs:.3} s: {:.0} offers/s, {:.1} MB/s",
        size as f64 / 1e6,
        offers as f64 / secs,
        size as f64 / 1e6 / secs,
    );
    Ok(())
}
