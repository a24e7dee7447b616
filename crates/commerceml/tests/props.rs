//! Property tests: arbitrary bytes and random mutations of a valid file never make the reader
//! panic or loop; it either reads to the end or returns an error. Bounded to a few seconds.

use kontor_commerceml::{Limits, Reader};
use proptest::prelude::*;

const VALID: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.07" ДатаФормирования="2020-04-07T13:16:06">
<Классификатор><Ид>c</Ид><Наименование>К</Наименование>
<Группы><Группа><Ид>g</Ид><Наименование>Г</Наименование><Группы><Группа><Ид>g2</Ид></Группа></Группы></Группа></Группы>
<Свойства><Свойство><Ид>p</Ид><ТипЗначений>Справочник</ТипЗначений><ВариантыЗначений><Справочник><ИдЗначения>v</ИдЗначения><Значение>Белый</Значение></Справочник></ВариантыЗначений></Свойство></Свойства>
</Классификатор>
<Каталог СодержитТолькоИзменения="false"><Ид>c</Ид><Товары>
<Товар Статус="Новый"><Ид>a</Ид><Артикул>A-1</Артикул><Наименование>Стол &amp; стул</Наименование>
<БазоваяЕдиница Код="796 " НаименованиеПолное="Штука">шт</БазоваяЕдиница><Группы><Ид>g</Ид></Группы>
<ЗначенияСвойств><ЗначенияСвойства><Ид>p</Ид><Значение>v</Значение></ЗначенияСвойства></ЗначенияСвойств>
<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Вес</Наименование><Значение>1,5</Значение></ЗначениеРеквизита></ЗначенияРеквизитов>
</Товар></Товары></Каталог>
<ПакетПредложений><Ид>c#</Ид><ТипыЦен><ТипЦены><Ид>t</Ид><Валюта>RUB</Валюта></ТипЦены></ТипыЦен>
<Склады><Склад><Ид>w</Ид><Наименование>Склад</Наименование></Склад></Склады>
<Предложения><Предложение><Ид>a</Ид><Цены><Цена><ИдТипаЦены>t</ИдТипаЦены><ЦенаЗаЕдиницу>1 234,50</ЦенаЗаЕдиницу></Цена></Цены>
<Количество>3</Количество><Склад ИдСклада="w" КоличествоНаСкладе="3"/><Остатки><Остаток><Склад><Ид>w</Ид><Количество>1</Количество></Склад></Остаток></Остатки>
</Предложение></Предложения></ПакетПредложений>
<Контейнер><Документ><Ид>1</Ид><Номер>1</Номер><Сумма>10</Сумма><Контрагенты><Контрагент><Ид>k</Ид>
<ОфициальноеНаименование>ООО</ОфициальноеНаименование><ИНН>7700000000</ИНН><Адрес><Представление>М</Представление></Адрес>
<Представители><Представитель><Контрагент><Отношение>Контактное лицо</Отношение></Контрагент></Представитель></Представители></Контрагент></Контрагенты>
<Товары><Товар><Ид>a</Ид><Единица><Код>796</Код></Единица><Цена>10</Цена><Количество>1</Количество>
<Налоги><Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме></Налог></Налоги></Товар></Товары>
</Документ></Контейнер>
<Контрагенты><Контрагент><Ид>k2</Ид><Фамилия>Иванов</Фамилия></Контрагент></Контрагенты>
</КоммерческаяИнформация>
"#;

/// Reads to the end or to the first error; the reader must never panic, and must stop.
fn read_through(bytes: &[u8], limits: Limits) {
    let Ok(mut reader) = Reader::with_limits(bytes, limits) else {
        return;
    };
    // Every item consumes input, so a file of n bytes cannot give more than n items.
    for _ in 0..=bytes.len() + 1 {
        match reader.next_item() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the reader did not stop");
}

fn small_limits() -> Limits {
    Limits {
        max_depth: 6,
        max_value_bytes: 40,
        max_record_elements: 12,
        max_record_bytes: 60,
    }
}

const SNIPPETS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</Товар>",
    "<Товар>",
    "<Группы>",
    "</Группа>",
    "<Документ>",
    "<Контейнер>",
    "&amp;",
    "&xxe;",
    "&#x110000;",
    "&#",
    "<!DOCTYPE a [<!ENTITY x 'y'>]>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?pi",
    "\u{FEFF}",
    "\"",
    "'",
    "=",
    " Код=\"1\"",
    "\u{0}",
    "\r\n",
    "я",
    "<?xml version=\"1.0\" encoding=\"windows-1251\"?>",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Snippet(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 0..SNIPPETS.len()).prop_map(|(i, k)| Mutation::Snippet(i, k)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::Flip(i, b) => {
            if !doc.is_empty() {
                let i = i % doc.len();
                doc[i] ^= b | 1;
            }
        }
        Mutation::Delete(i, n) => {
            let i = at(*i, doc.len());
            let end = (i + n).min(doc.len());
            doc.drain(i..end);
        }
        Mutation::Insert(i, v) => {
            let i = at(*i, doc.len());
            doc.splice(i..i, v.iter().copied());
        }
        Mutation::Snippet(i, k) => {
            let i = at(*i, doc.len());
            doc.splice(i..i, SNIPPETS[*k].bytes());
        }
        Mutation::Duplicate(i, n) => {
            let i = at(*i, doc.len());
            let end = (i + n).min(doc.len());
            let copy = doc[i..end].to_vec();
            doc.splice(end..end, copy);
        }
        Mutation::Truncate(i) => {
            let i = at(*i, doc.len());
            doc.truncate(i);
        }
    }
}

#[test]
fn the_valid_document_reads() {
    let mut reader = Reader::new(VALID.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut n = 0;
    while reader
        .next_item()
        .unwrap_or_else(|e| panic!("{e}"))
        .is_some()
    {
        n += 1;
    }
    assert_eq!(n, 14);
}

proptest! {
    #![proptest_config(ProptestConfig {
        // `PROPTEST_CASES=100000` for a longer soak.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_through(&bytes, Limits::default());
        let mut with_root = "<КоммерческаяИнформация>".as_bytes().to_vec();
        with_root.extend_from_slice(&bytes);
        read_through(&with_root, Limits::default());
    }

    #[test]
    fn mutated_documents_never_panic(mutations in proptest::collection::vec(mutation(), 1..8)) {
        let mut doc = VALID.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut doc, m);
        }
        read_through(&doc, Limits::default());
        read_through(&doc, small_limits());
        // The same bytes declared as windows-1251, and as UTF-16 by a BOM.
        let mut cp = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>".to_vec();
        cp.extend_from_slice(&doc);
        read_through(&cp, Limits::default());
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend_from_slice(&doc);
        read_through(&utf16, Limits::default());
    }
}
