//! The document writer: round trips through the reader in both encodings, with and without CML
//! 3.1 containers, and the details 1C cares about (declaration, BOM, element order, escaping,
//! characters outside windows-1251).

use kontor_commerceml::{
    parse_datetime, write_documents, Address, BankAccount, Contact, Counterparty, Discount,
    Document, DocumentLine, Item, OutputEncoding, PartyKind, Reader, Representative, Tax, TaxRate,
    Unit, WriteOptions,
};

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn legal() -> Counterparty {
    Counterparty {
        id: s("902#s.selina#Сёлина"),
        name: s("АНТ-Консалт"),
        full_name: s("ООО \"АНТ-Консалт\" & <партнёры>"),
        kind: PartyKind::Legal,
        inn: s("7806080903"),
        kpp: s("780601001"),
        okpo: s("12345678"),
        role: s("Покупатель"),
        address: Some(Address {
            presentation: s("400066, Волгоград"),
            fields: vec![],
        }),
        legal_address: Some(Address {
            presentation: s("195027, Санкт-Петербург, ул. Синявинская, д. 3"),
            fields: pairs(&[("Почтовый индекс", "195027"), ("Город", "Санкт-Петербург")]),
        }),
        contacts: vec![
            Contact {
                kind: s("Электронная почта"),
                value: s("s@example.ru"),
            },
            Contact {
                kind: s("Телефон рабочий"),
                value: s("+7 (812) 000-00-00"),
            },
        ],
        bank_accounts: vec![BankAccount {
            account: s("40702810600010006661"),
            bik: s("044599132"),
            bank_name: s("АБ \"РОССИЯ\""),
            corr_account: s("30101810400000000132"),
        }],
        representatives: vec![Representative {
            relation: s("Контактное лицо"),
            id: s("c416"),
            name: s("Аитова Кадрия"),
        }],
        comment: s("оптовик"),
        deleted: false,
        version: s("AAACFAAAAAA="),
        ..Counterparty::default()
    }
}

fn person() -> Counterparty {
    let home = Address {
        presentation: s("Москва, ул. Тверская, 1"),
        fields: pairs(&[("Улица", "Тверская"), ("Дом", "1")]),
    };
    Counterparty {
        id: s("38#catalog_exchange#"),
        name: s("Иванов Иван"),
        full_name: s("Иванов Иван Иванович"),
        kind: PartyKind::Person,
        inn: s("500100732259"),
        role: s("Покупатель"),
        last_name: s("Иванов"),
        first_name: s("Иван"),
        middle_name: s("Иванович"),
        address: Some(home.clone()),
        legal_address: Some(home),
        contacts: vec![Contact {
            kind: s("Почта"),
            value: s("ivan@example.ru"),
        }],
        deleted: true,
        ..Counterparty::default()
    }
}

fn order() -> Document {
    Document {
        id: s("132"),
        number: s("132"),
        date: s("2021-02-11"),
        time: s("18:45:21"),
        operation: s("Заказ товара"),
        role: s("Продавец"),
        currency: s("руб"),
        rate: s("1"),
        sum: s("14380.58"),
        counterparties: vec![legal(), person()],
        payment_due: s("2021-02-20"),
        comment: s("Позвонить заранее 😀 № 5, a < b && c > \"d\" 'e'\nвторая строка\tс табом"),
        lines: vec![
            DocumentLine {
                id: s("910e89e5-205e-4d95-872a-0a0255c42f02#1"),
                catalog_id: s("42475bb5-958f-40dc-a99f-9ad996a27af1"),
                name: s("Зубная щётка Hello Kitty, 2 шт."),
                sku: s("HK-2"),
                barcode: s("4600000000001"),
                unit: Some(Unit {
                    code: s("796"),
                    name: s("шт"),
                    full_name: s("Штука"),
                    intl: s("PCE"),
                }),
                ratio: s("1"),
                price_per_unit: s("231.7400"),
                quantity: s("2.0000"),
                sum: s("463.48"),
                taxes: vec![Tax {
                    name: s("НДС"),
                    included: Some(true),
                    amount: s("77.25"),
                    rate: s("20"),
                }],
                tax_rates: vec![TaxRate {
                    name: s("НДС"),
                    rate: "20".into(),
                }],
                discounts: vec![Discount {
                    name: s("Скидка на товар"),
                    amount: s("10"),
                    percent: s("2.5"),
                    included: Some(true),
                }],
                requisites: pairs(&[
                    ("ВидНоменклатуры", "Товар"),
                    ("ТипНоменклатуры", "Товар"),
                    ("СвойствоКорзины#PHOTO", ""),
                ]),
                characteristics: pairs(&[("Цвет", "Розовый")]),
            },
            DocumentLine {
                id: s("ORDER_DELIVERY"),
                name: s("Доставка заказа"),
                unit: Some(Unit {
                    code: s("796"),
                    name: s("шт"),
                    full_name: s("Штука"),
                    intl: s("PCE"),
                }),
                price_per_unit: s("340"),
                quantity: s("1"),
                sum: s("340"),
                requisites: pairs(&[("ВидНоменклатуры", "Услуга")]),
                ..DocumentLine::default()
            },
        ],
        taxes: vec![Tax {
            name: s("НДС"),
            included: Some(false),
            amount: s("1248.84"),
            rate: None,
        }],
        discounts: vec![Discount {
            name: s("Купон"),
            amount: s("100"),
            percent: None,
            included: Some(false),
        }],
        requisites: pairs(&[
            ("Метод оплаты", "Наличный расчет"),
            ("Заказ оплачен", "false"),
            ("Дата изменения статуса", "11.02.2021 18:45:21"),
            ("Комментарии покупателя", ""),
        ]),
        deleted: false,
        number_1c: s("ТДЦУ-000001"),
        date_1c: s("2021-02-12"),
        version: s("AAAEVAAAAAA="),
        container: None,
    }
}

fn docs() -> Vec<Document> {
    let payment = Document {
        id: s("132-pay"),
        number: s("ПО-1"),
        operation: s("Выплата безналичных денег"),
        sum: s("14380.58"),
        ..Document::default()
    };
    let minimal = Document {
        id: s("133"),
        deleted: true,
        ..Document::default()
    };
    vec![order(), payment, minimal]
}

fn read_docs(bytes: &[u8]) -> Vec<Document> {
    let mut reader = Reader::new(bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while let Some(item) = reader.next_item().unwrap_or_else(|e| panic!("{e}")) {
        if let Item::Document(d) = item.item {
            out.push(d);
        }
    }
    out
}

fn write(docs: &[Document], opts: &WriteOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_documents(&mut out, docs, opts).unwrap_or_else(|e| panic!("{e}"));
    out
}

fn opts(encoding: OutputEncoding, container: bool) -> WriteOptions {
    WriteOptions {
        encoding,
        generated_at: "2021-02-12T17:03:19".into(),
        container,
        ..WriteOptions::default()
    }
}

#[test]
fn round_trip_in_both_encodings_without_containers() {
    let docs = docs();
    for encoding in [OutputEncoding::Windows1251, OutputEncoding::Utf8Bom] {
        let bytes = write(&docs, &opts(encoding, false));
        assert_eq!(read_docs(&bytes), docs, "{encoding:?}");
    }
}

#[test]
fn round_trip_with_containers() {
    let mut docs = docs();
    // The order and its payment share a container; the last document gets one of its own.
    docs[0].container = Some(7);
    docs[1].container = Some(7);
    let mut expected = docs.clone();
    expected[0].container = Some(0);
    expected[1].container = Some(0);
    expected[2].container = Some(1);
    for encoding in [OutputEncoding::Windows1251, OutputEncoding::Utf8Bom] {
        let bytes = write(&docs, &opts(encoding, true));
        assert_eq!(read_docs(&bytes), expected, "{encoding:?}");
        let text = decode(&bytes);
        assert_eq!(text.matches("<Контейнер>").count(), 2);
    }
    // Documents without a container index get one each.
    let plain = self::docs();
    let bytes = write(&plain, &opts(OutputEncoding::Utf8Bom, true));
    let containers: Vec<_> = read_docs(&bytes).iter().map(|d| d.container).collect();
    assert_eq!(containers, [Some(0), Some(1), Some(2)]);
}

fn decode(bytes: &[u8]) -> String {
    match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(utf8) => String::from_utf8(utf8.to_vec()).unwrap_or_default(),
        None => encoding_rs::WINDOWS_1251.decode(bytes).0.into_owned(),
    }
}

#[test]
fn windows_1251_output() {
    let bytes = write(&[order()], &opts(OutputEncoding::Windows1251, false));
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n"));
    // Cyrillic is single-byte: "Заказ товара" in windows-1251.
    let (expected, _, _) =
        encoding_rs::WINDOWS_1251.encode("<ХозОперация>Заказ товара</ХозОперация>");
    assert!(bytes.windows(expected.len()).any(|w| w == &expected[..]));
    // The emoji is not in windows-1251: a character reference, never `?`.
    let text = decode(&bytes);
    assert!(text.contains("Позвонить заранее &#128512; № 5"), "{text}");
    assert!(!text.contains("заранее ?"));
    // `ё` and `№` are in windows-1251.
    assert!(text.contains("Сёлина"));
}

#[test]
fn utf8_output_has_a_bom_and_says_so() {
    let bytes = write(&[order()], &opts(OutputEncoding::Utf8Bom, false));
    assert!(bytes.starts_with(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let text = decode(&bytes);
    assert!(text.contains("😀"));
    assert!(text.contains(
        "<КоммерческаяИнформация ВерсияСхемы=\"2.05\" ДатаФормирования=\"2021-02-12T17:03:19\">"
    ));
}

#[test]
fn escaping() {
    let text = decode(&write(&[order()], &opts(OutputEncoding::Utf8Bom, false)));
    assert!(text.contains(
        "<Комментарий>Позвонить заранее 😀 № 5, a &lt; b &amp;&amp; c &gt; \"d\" 'e'\nвторая строка\tс табом</Комментарий>"
    ), "{text}");
    assert!(text.contains("ООО \"АНТ-Консалт\" &amp; &lt;партнёры&gt;"));
    let mut d = Document {
        id: s("x"),
        comment: s("a\rb\u{1}c"),
        ..Document::default()
    };
    let text = decode(&write(&[d.clone()], &opts(OutputEncoding::Utf8Bom, false)));
    assert!(
        text.contains("<Комментарий>a&#13;bc</Комментарий>"),
        "{text}"
    );
    d.comment = s("a\rbc");
    assert_eq!(read_docs(text.as_bytes()), [d]);
}

#[test]
fn element_order_follows_the_schema() {
    let text = decode(&write(&[order()], &opts(OutputEncoding::Utf8Bom, false)));
    let doc_start = text.find("<Документ>").unwrap_or(0);
    let order = [
        "<Ид>",
        "<Номер>",
        "<Дата>",
        "<ХозОперация>",
        "<Роль>",
        "<Валюта>",
        "<Курс>",
        "<Сумма>",
        "<Контрагенты>",
        "<Время>",
        "<СрокПлатежа>",
        "<Комментарий>",
        "<Налоги>",
        "<Скидки>",
        "<Товары>",
    ];
    // Each element is found after the previous one (nested ones of the same name come earlier
    // only inside Контрагенты, which the search steps over).
    let mut at = doc_start;
    for tag in order {
        let skip_parties = if tag == "<Время>" {
            text[at..].find("</Контрагенты>").unwrap_or(0)
        } else {
            0
        };
        match text[at + skip_parties..].find(tag) {
            Some(i) => at += skip_parties + i,
            None => panic!("{tag} missing or out of order"),
        }
    }
    let requisites = text.rfind("<ЗначенияРеквизитов>").unwrap_or(0);
    assert!(requisites > text.rfind("</Товары>").unwrap_or(usize::MAX));
    // Counterparty: Ид, Наименование, Роль, then the legal name.
    let party = &text[text.find("<Контрагент>").unwrap_or(0)..];
    let p: Vec<usize> = [
        "<Ид>",
        "<Наименование>",
        "<Роль>",
        "<ОфициальноеНаименование>",
        "<ИНН>",
        "<КПП>",
    ]
    .iter()
    .map(|t| party.find(t).unwrap_or(usize::MAX))
    .collect();
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
    // Line: Ид, Артикул, Наименование, БазоваяЕдиница, ЦенаЗаЕдиницу, Количество, Сумма.
    let line = &text[text.find("<Товар>").unwrap_or(0)..];
    let p: Vec<usize> = [
        "<Ид>",
        "<Артикул>",
        "<Наименование>",
        "<БазоваяЕдиница Код=\"796\" НаименованиеПолное=\"Штука\" МеждународноеСокращение=\"PCE\">шт</БазоваяЕдиница>",
        "<ЦенаЗаЕдиницу>",
        "<Количество>",
        "<Сумма>",
        "<Налоги>",
        "<ЗначенияРеквизитов>",
    ]
    .iter()
    .map(|t| line.find(t).unwrap_or(usize::MAX))
    .collect();
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
    // A person writes ПолноеНаименование and the names, not ОфициальноеНаименование.
    let person = &text[text.find("<Ид>38#catalog_exchange#</Ид>").unwrap_or(0)..];
    let person = &person[..person.find("</Контрагент>").unwrap_or(0)];
    assert!(person.contains("<ПолноеНаименование>Иванов Иван Иванович</ПолноеНаименование>"));
    assert!(person.contains("<Фамилия>Иванов</Фамилия>"));
    assert!(person.contains("<АдресРегистрации>"));
    assert!(!person.contains("<ОфициальноеНаименование>"));
    assert!(
        !person.contains("<Адрес>"),
        "the address equal to the registration one is not repeated"
    );
}

#[test]
fn no_documents_gives_the_root_alone() {
    for encoding in [OutputEncoding::Windows1251, OutputEncoding::Utf8Bom] {
        let bytes = write(&[], &opts(encoding, false));
        let text = decode(&bytes);
        assert!(text.ends_with(
            "?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.05\" ДатаФормирования=\"2021-02-12T17:03:19\">\n</КоммерческаяИнформация>\n"
        ), "{text}");
        let mut reader = Reader::new(&bytes[..]).unwrap_or_else(|e| panic!("{e}"));
        let first = reader.next_item().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(first.map(|l| l.item), Some(Item::Header(_))));
        assert_eq!(reader.next_item().unwrap_or_else(|e| panic!("{e}")), None);
    }
}

#[test]
fn namespace_version_and_default_date() {
    let opts = WriteOptions {
        encoding: OutputEncoding::Utf8Bom,
        schema_version: "3.1".into(),
        generated_at: String::new(),
        container: true,
        namespace: s("urn:1C.ru:commerceml_3"),
    };
    let bytes = write(&[order()], &opts);
    let text = decode(&bytes);
    assert!(text
        .contains("<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_3\" ВерсияСхемы=\"3.1\""));
    let mut reader = Reader::new(&bytes[..]).unwrap_or_else(|e| panic!("{e}"));
    let Some(Item::Header(h)) = reader
        .next_item()
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|l| l.item)
    else {
        panic!("no header")
    };
    assert_eq!(h.schema_version, "3.1");
    assert!(h.generated_at.as_deref().and_then(parse_datetime).is_some());
    let mut expected = order();
    expected.container = Some(0);
    assert_eq!(read_docs(&bytes), [expected]);
}

/// A sink that takes a few bytes at a time and counts the writes: the writer streams.
#[test]
fn writes_as_it_goes() {
    struct Counting {
        writes: usize,
        bytes: Vec<u8>,
    }
    impl std::io::Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            let n = buf.len().min(1000);
            self.bytes.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let many: Vec<Document> = (0..300).map(|_| order()).collect();
    let mut sink = Counting {
        writes: 0,
        bytes: Vec::new(),
    };
    write_documents(&mut sink, &many, &opts(OutputEncoding::Windows1251, false))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sink.writes > 100);
    assert_eq!(read_docs(&sink.bytes), many);
}
