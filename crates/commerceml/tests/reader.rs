//! The reader on small hand-written fixtures: every record kind, the dialects (namespaces,
//! encodings, packet files, containers), leniency, and hostile or broken input.

use std::io::{BufReader, Read};

use kontor_commerceml::{
    Address, Contact, Counterparty, Group, Item, Limits, Located, PartyKind, Price, Product,
    PropertyValue, ReadError, Reader, Representative, Stock, TaxRate, Unit,
};

fn read_all(bytes: &[u8]) -> Result<Vec<Located<Item>>, ReadError> {
    let mut reader = Reader::new(bytes)?;
    let mut items = Vec::new();
    while let Some(item) = reader.next_item()? {
        items.push(item);
    }
    Ok(items)
}

fn items(bytes: &[u8]) -> Vec<Item> {
    match read_all(bytes) {
        Ok(items) => items.into_iter().map(|l| l.item).collect(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn error(bytes: &[u8]) -> ReadError {
    match read_all(bytes) {
        Ok(items) => panic!("expected an error, got {} items", items.len()),
        Err(e) => e,
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

const CATALOG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.04" ДатаФормирования="2014-06-01T0:36:33">
	<Классификатор СодержитТолькоИзменения="false">
		<Ид>cls-1</Ид>
		<Наименование>Классификатор (Каталог товаров)</Наименование>
		<Владелец>
			<Ид>owner</Ид>
			<Наименование>Не товар</Наименование>
		</Владелец>
		<Группы>
			<Группа>
				<Ид>g1</Ид>
				<Наименование>Мебель</Наименование>
				<Группы>
					<Группа>
						<Ид>g1.1</Ид>
						<Наименование>Столы</Наименование>
						<Группы>
							<Группа>
								<Ид>g1.1.1</Ид>
								<Наименование>Обеденные</Наименование>
								<ПометкаУдаления>true</ПометкаУдаления>
							</Группа>
						</Группы>
					</Группа>
					<Группа>
						<Ид>g1.2</Ид>
						<Наименование>Стулья</Наименование>
						<Описание>Для дома</Описание>
					</Группа>
				</Группы>
			</Группа>
			<Группа>
				<Ид>g2</Ид>
				<НомерВерсии>AAA=</НомерВерсии>
				<Наименование>Свет &amp; звук</Наименование>
			</Группа>
		</Группы>
		<Свойства>
			<Свойство>
				<Ид>p-color</Ид>
				<Наименование>Цвет</Наименование>
				<ТипЗначений>Справочник</ТипЗначений>
				<Множественное>true</Множественное>
				<ВариантыЗначений>
					<Справочник>
						<ИдЗначения>v-white</ИдЗначения>
						<Значение>Белый</Значение>
					</Справочник>
					<Справочник>
						<ИдЗначения/>
						<Значение/>
					</Справочник>
					<Справочник>
						<ИдЗначения>v-red</ИдЗначения>
						<Значение>Красный</Значение>
					</Справочник>
				</ВариантыЗначений>
				<ДляТоваров>true</ДляТоваров>
			</Свойство>
			<СвойствоНоменклатуры>
				<Ид>p-weight</Ид>
				<Наименование>Вес</Наименование>
				<ТипЗначений>Число</ТипЗначений>
				<Обязательное>true</Обязательное>
				<ДляПредложений>false</ДляПредложений>
			</СвойствоНоменклатуры>
		</Свойства>
		<ЕдиницыИзмерения>
			<ЕдиницаИзмерения>
				<Ид>796 </Ид>
				<НаименованиеКраткое>шт</НаименованиеКраткое>
				<Код>796 </Код>
				<НаименованиеПолное>штука     </НаименованиеПолное>
				<МеждународноеСокращение/>
			</ЕдиницаИзмерения>
		</ЕдиницыИзмерения>
	</Классификатор>
	<Каталог СодержитТолькоИзменения="true">
		<Ид>cat-1</Ид>
		<ИдКлассификатора>cls-1</ИдКлассификатора>
		<Наименование>Каталог товаров</Наименование>
		<Товары>
			<Товар>
				<Ид>prod-1</Ид>
				<Штрихкод>4600000000001</Штрихкод>
				<Артикул> СТ-01 </Артикул>
				<Наименование>Стол обеденный</Наименование>
				<БазоваяЕдиница Код="796 " НаименованиеПолное="Штука" МеждународноеСокращение="PCE">шт</БазоваяЕдиница>
				<Группы>
					<Ид>g1.1.1</Ид>
					<Ид>g1</Ид>
				</Группы>
				<Описание>Стол &lt;дуб&gt;, 4 ножки &#8212; &#x263A;</Описание>
				<Картинка>import_files/e2/prod-1.jpeg</Картинка>
				<Картинка/>
				<Картинка>import_files/e2/prod-1_2.jpeg</Картинка>
				<Изготовитель>
					<Ид>m1</Ид>
					<Наименование>Мебельная фабрика</Наименование>
				</Изготовитель>
				<ЗначенияСвойств>
					<ЗначенияСвойства>
						<Ид>p-color</Ид>
						<Значение>v-white</Значение>
						<Значение>v-red</Значение>
					</ЗначенияСвойства>
					<ЗначенияСвойства>
						<Ид>p-weight</Ид>
						<Значение/>
					</ЗначенияСвойства>
				</ЗначенияСвойств>
				<СтавкиНалогов>
					<СтавкаНалога>
						<Наименование>НДС</Наименование>
						<Ставка>18/118</Ставка>
					</СтавкаНалога>
				</СтавкиНалогов>
				<ХарактеристикиТовара>
					<ХарактеристикаТовара>
						<Наименование>Цвет</Наименование>
						<Значение>Белый</Значение>
					</ХарактеристикаТовара>
				</ХарактеристикиТовара>
				<ЗначенияРеквизитов>
					<ЗначениеРеквизита>
						<Наименование>ВидНоменклатуры</Наименование>
						<Значение>Товар</Значение>
					</ЗначениеРеквизита>
					<ЗначениеРеквизита>
						<Наименование>Вес</Наименование>
						<Значение/>
					</ЗначениеРеквизита>
				</ЗначенияРеквизитов>
				<НеизвестныйЭлемент>
					<Товар><Ид>not-a-product</Ид></Товар>
					<Наименование>не то</Наименование>
				</НеизвестныйЭлемент>
			</Товар>
			<Товар Статус="Удален">
				<Ид>prod-2</Ид>
				<Наименование>Старый стул</Наименование>
				<БазоваяЕдиница Код="796 " НаименованиеПолное="Штука" МеждународноеСокращение="PCE">
					<Пересчет>
						<Единица>796</Единица>
						<Коэффициент>1</Коэффициент>
					</Пересчет>
				</БазоваяЕдиница>
			</Товар>
			<Товар>
				<Ид>prod-3</Ид>
				<ПометкаУдаления>true</ПометкаУдаления>
				<Штрихкод/>
				<Артикул/>
				<Наименование>Пакетный товар</Наименование>
				<БазоваяЕдиница>796 </БазоваяЕдиница>
				<Статус>Изменен</Статус>
				<НомерВерсии>AAABVwAAAAA=49842</НомерВерсии>
			</Товар>
		</Товары>
	</Каталог>
</КоммерческаяИнформация>
"#;

fn catalog_items() -> Vec<Item> {
    items(CATALOG.as_bytes())
}

#[test]
fn catalog_items_in_document_order() {
    let items = catalog_items();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| match i {
            Item::Header(_) => "header",
            Item::Classifier(_) => "classifier",
            Item::Catalog(_) => "catalog",
            Item::Group(_) => "group",
            Item::Property(_) => "property",
            Item::Unit(_) => "unit",
            Item::Product(_) => "product",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "header",
            "classifier",
            "group",
            "group",
            "group",
            "group",
            "group",
            "property",
            "property",
            "unit",
            "catalog",
            "product",
            "product",
            "product"
        ]
    );
    let Item::Header(h) = &items[0] else { panic!() };
    assert_eq!(h.schema_version, "2.04");
    assert_eq!(h.generated_at.as_deref(), Some("2014-06-01T0:36:33"));
    let Item::Classifier(c) = &items[1] else {
        panic!()
    };
    assert_eq!(c.id.as_deref(), Some("cls-1"));
    assert_eq!(c.name.as_deref(), Some("Классификатор (Каталог товаров)"));
    assert_eq!(c.only_changes, Some(false));
    let Item::Catalog(c) = &items[10] else {
        panic!()
    };
    assert_eq!(c.id.as_deref(), Some("cat-1"));
    assert_eq!(c.classifier_id.as_deref(), Some("cls-1"));
    assert_eq!(c.only_changes, Some(true));
}

#[test]
fn nested_groups_are_flattened_with_parents() {
    let groups: Vec<Group> = catalog_items()
        .into_iter()
        .filter_map(|i| match i {
            Item::Group(g) => Some(g),
            _ => None,
        })
        .collect();
    let summary: Vec<(&str, Option<&str>, Option<&str>, bool)> = groups
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.parent_id.as_deref(),
                g.name.as_deref(),
                g.deleted,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("g1", None, Some("Мебель"), false),
            ("g1.1", Some("g1"), Some("Столы"), false),
            ("g1.1.1", Some("g1.1"), Some("Обеденные"), true),
            ("g1.2", Some("g1"), Some("Стулья"), false),
            ("g2", None, Some("Свет & звук"), false),
        ]
    );
    assert_eq!(groups[3].description.as_deref(), Some("Для дома"));
    assert_eq!(groups[4].version.as_deref(), Some("AAA="));
}

#[test]
fn properties_and_units() {
    let items = catalog_items();
    let Item::Property(color) = &items[7] else {
        panic!("{:?}", items[7])
    };
    assert_eq!(color.id, "p-color");
    assert_eq!(color.value_type.as_deref(), Some("Справочник"));
    assert!(color.multiple && !color.required);
    assert_eq!(color.for_products, Some(true));
    assert_eq!(
        color.values,
        [
            ("v-white".to_owned(), "Белый".to_owned()),
            ("v-red".to_owned(), "Красный".to_owned())
        ]
    );
    let Item::Property(weight) = &items[8] else {
        panic!()
    };
    assert_eq!(weight.id, "p-weight");
    assert!(weight.required && !weight.multiple);
    assert_eq!(weight.for_offers, Some(false));
    assert_eq!(weight.for_products, None);
    let Item::Unit(unit) = &items[9] else {
        panic!()
    };
    assert_eq!(
        unit,
        &Unit {
            code: s("796"),
            name: s("шт"),
            full_name: s("штука"),
            intl: None
        }
    );
}

#[test]
fn products_with_every_field() {
    let products: Vec<Product> = catalog_items()
        .into_iter()
        .filter_map(|i| match i {
            Item::Product(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(
        products.len(),
        3,
        "the product inside an unknown element is skipped"
    );
    let p = &products[0];
    assert_eq!(p.id, "prod-1");
    assert_eq!(p.barcode.as_deref(), Some("4600000000001"));
    assert_eq!(p.sku.as_deref(), Some("СТ-01"));
    assert_eq!(p.name.as_deref(), Some("Стол обеденный"));
    assert_eq!(
        p.unit,
        Some(Unit {
            code: s("796"),
            name: s("шт"),
            full_name: s("Штука"),
            intl: s("PCE")
        })
    );
    assert_eq!(p.group_ids, ["g1.1.1", "g1"]);
    assert_eq!(p.description.as_deref(), Some("Стол <дуб>, 4 ножки — ☺"));
    assert_eq!(
        p.images,
        [
            "import_files/e2/prod-1.jpeg",
            "import_files/e2/prod-1_2.jpeg"
        ]
    );
    assert_eq!(p.manufacturer.as_deref(), Some("Мебельная фабрика"));
    assert_eq!(
        p.property_values,
        [
            PropertyValue {
                property_id: "p-color".into(),
                values: vec!["v-white".into(), "v-red".into()]
            },
            PropertyValue {
                property_id: "p-weight".into(),
                values: vec![]
            }
        ]
    );
    assert_eq!(
        p.tax_rates,
        [TaxRate {
            name: s("НДС"),
            rate: "18/118".into()
        }]
    );
    assert_eq!(p.characteristics, [("Цвет".to_owned(), "Белый".to_owned())]);
    assert_eq!(
        p.requisites,
        [
            ("ВидНоменклатуры".to_owned(), "Товар".to_owned()),
            ("Вес".to_owned(), String::new())
        ]
    );
    assert!(!p.deleted);

    let old = &products[1];
    assert_eq!(old.status.as_deref(), Some("Удален"));
    assert!(old.deleted, "Статус=Удален marks deletion");
    assert_eq!(
        old.unit,
        Some(Unit {
            code: s("796"),
            name: None,
            full_name: s("Штука"),
            intl: s("PCE")
        }),
        "unit with Пересчет children and a code with a trailing space"
    );

    let packet = &products[2];
    assert!(packet.deleted);
    assert_eq!(packet.barcode, None, "empty elements are absent");
    assert_eq!(packet.sku, None);
    assert_eq!(packet.status.as_deref(), Some("Изменен"));
    assert_eq!(packet.version.as_deref(), Some("AAABVwAAAAA=49842"));
    assert_eq!(
        packet.unit,
        Some(Unit {
            code: s("796"),
            ..Unit::default()
        }),
        "CML 3.1 unit reference by code"
    );
}

#[test]
fn record_lines_point_at_their_start_tags() {
    let located = read_all(CATALOG.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<(u64, &str)> = located
        .iter()
        .filter_map(|l| match &l.item {
            Item::Product(p) => Some((l.line, p.id.as_str())),
            Item::Group(g) => Some((l.line, g.id.as_str())),
            _ => None,
        })
        .collect();
    let expect = |needle: &str| {
        CATALOG
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64)
            .unwrap_or(0)
    };
    // The record's start tag is on the line before its `<Ид>`.
    for (line, id) in lines {
        assert_eq!(line, expect(&format!("<Ид>{id}</Ид>")), "{id}");
    }
    assert_eq!(located[0].line, 2);
}

/// The catalog fixture with a namespace prefix on every element.
fn prefixed(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.starts_with('?') || after.starts_with('!') {
            out.push('<');
        } else if let Some(a) = after.strip_prefix('/') {
            out.push_str("</c:");
            rest = a;
            continue;
        } else {
            out.push_str("<c:");
        }
        rest = after;
    }
    out.push_str(rest);
    out.replacen(
        "<c:КоммерческаяИнформация ",
        "<c:КоммерческаяИнформация xmlns:c=\"urn:1C.ru:commerceml_2\" ",
        1,
    )
}

#[test]
fn namespaces_prefixes_and_bom_do_not_matter() {
    let plain = catalog_items();
    let ns = CATALOG.replacen(
        "<КоммерческаяИнформация ",
        "<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ",
        1,
    );
    assert_eq!(items(ns.as_bytes()), plain);
    let pre = prefixed(CATALOG);
    assert!(pre.contains("<c:Товар>"));
    assert_eq!(items(pre.as_bytes()), plain);
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(CATALOG.as_bytes());
    assert_eq!(items(&bom), plain);
}

#[test]
fn windows_1251_and_utf16_are_decoded() {
    let plain = catalog_items();
    let cp = CATALOG.replacen("encoding=\"UTF-8\"", "encoding=\"windows-1251\"", 1);
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&cp);
    assert!(!unmappable);
    // (The fixture writes `☺` and `—` as character references, which any encoding carries.)
    assert_eq!(items(&bytes), plain);

    let cp = cp.replacen("windows-1251", "WINDOWS-1251", 1);
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&cp);
    assert_eq!(items(&bytes), plain, "labels are case-insensitive");

    for big_endian in [false, true] {
        let utf16 = CATALOG.replacen("encoding=\"UTF-8\"", "encoding=\"UTF-16\"", 1);
        let mut bytes = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in utf16.encode_utf16() {
            let b = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            bytes.extend_from_slice(&b);
        }
        assert_eq!(items(&bytes), plain, "UTF-16 big endian: {big_endian}");
    }
}

/// A reader that hands out a few bytes at a time, to cross every buffer boundary.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn tiny_reads_give_the_same_items_and_lines() {
    let whole = read_all(CATALOG.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let cp = CATALOG.replacen("encoding=\"UTF-8\"", "encoding=\"windows-1251\"", 1);
    let (cp_bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&cp);
    for data in [CATALOG.as_bytes(), &cp_bytes[..]] {
        let input = BufReader::with_capacity(3, Trickle { data, step: 0 });
        let mut reader = Reader::new(input).unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        while let Some(item) = reader.next_item().unwrap_or_else(|e| panic!("{e}")) {
            got.push(item);
        }
        assert_eq!(got, whole);
        // Everything up to the root's end tag (the final newline is not needed).
        let read = reader.bytes_read();
        assert!(
            read <= data.len() as u64 && read + 1 >= data.len() as u64,
            "{read}"
        );
    }
}

#[test]
fn progress_counts_input_bytes() {
    let mut reader = Reader::new(CATALOG.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut last = 0;
    while reader
        .next_item()
        .unwrap_or_else(|e| panic!("{e}"))
        .is_some()
    {
        assert!(reader.bytes_read() >= last);
        last = reader.bytes_read();
    }
    assert!(last > 0 && last <= CATALOG.len() as u64);
    assert_eq!(reader.schema_version(), Some("2.04"));
}

const OFFERS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.07" ДатаФормирования="2020-04-07T12:08:44">
	<ПакетПредложений СодержитТолькоИзменения="false">
		<Ид>cat-1#</Ид>
		<Наименование>Пакет предложений</Наименование>
		<ИдКаталога>cat-1</ИдКаталога>
		<ИдКлассификатора>cls-1</ИдКлассификатора>
		<ТипыЦен>
			<ТипЦены>
				<Ид>pt-1</Ид>
				<Наименование>Розничная</Наименование>
				<Валюта>RUB</Валюта>
				<Налог>
					<Наименование>НДС</Наименование>
					<УчтеноВСумме>true</УчтеноВСумме>
					<Акциз>false</Акциз>
				</Налог>
			</ТипЦены>
		</ТипыЦен>
		<Склады>
			<Склад>
				<Ид>w-1</Ид>
				<Наименование>Москва</Наименование>
				<Адрес>
					<Представление>Москва, Тверская, 1</Представление>
					<АдресноеПоле>
						<Тип>Город</Тип>
						<Значение>Москва</Значение>
					</АдресноеПоле>
				</Адрес>
				<Контакты>
					<Контакт>
						<Тип>Телефон рабочий</Тип>
						<Значение>+7 495 000-00-00</Значение>
					</Контакт>
				</Контакты>
			</Склад>
		</Склады>
		<Предложения>
			<Предложение>
				<Ид>prod-1#char-1</Ид>
				<Артикул>СТ-01</Артикул>
				<Наименование>Стол (белый)</Наименование>
				<БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE">шт</БазоваяЕдиница>
				<ХарактеристикиТовара>
					<ХарактеристикаТовара>
						<Наименование>Цвет</Наименование>
						<Значение>Белый</Значение>
					</ХарактеристикаТовара>
				</ХарактеристикиТовара>
				<Цены>
					<Цена>
						<Представление>1 234,50 RUB за шт</Представление>
						<ИдТипаЦены>pt-1</ИдТипаЦены>
						<ЦенаЗаЕдиницу>1 234,50</ЦенаЗаЕдиницу>
						<Валюта>RUB</Валюта>
						<Единица>шт</Единица>
						<Коэффициент>1</Коэффициент>
						<МинКоличество>2</МинКоличество>
					</Цена>
					<Цена>
						<ИдТипаЦены>pt-2</ИдТипаЦены>
						<ЦенаЗаЕдиницу>по запросу</ЦенаЗаЕдиницу>
					</Цена>
				</Цены>
				<Количество>377</Количество>
				<Склад ИдСклада="w-1" КоличествоНаСкладе="1"/>
				<Склад ИдСклада="w-2" КоличествоНаСкладе="376,5"/>
			</Предложение>
			<Предложение>
				<Ид>prod-2</Ид>
				<ПометкаУдаления>true</ПометкаУдаления>
				<Цены/>
			</Предложение>
		</Предложения>
	</ПакетПредложений>
</КоммерческаяИнформация>
"#;

#[test]
fn offers_with_prices_and_attribute_stock() {
    let items = items(OFFERS.as_bytes());
    let Item::OfferPackage(pkg) = &items[1] else {
        panic!("{:?}", items[1])
    };
    assert_eq!(pkg.id.as_deref(), Some("cat-1#"));
    assert_eq!(pkg.catalog_id.as_deref(), Some("cat-1"));
    assert_eq!(pkg.classifier_id.as_deref(), Some("cls-1"));
    assert_eq!(pkg.only_changes, Some(false));
    let Item::PriceType(pt) = &items[2] else {
        panic!()
    };
    assert_eq!(pt.id, "pt-1");
    assert_eq!(pt.currency.as_deref(), Some("RUB"));
    assert_eq!(pt.tax_name.as_deref(), Some("НДС"));
    assert_eq!((pt.vat_included, pt.excise), (Some(true), Some(false)));
    let Item::Warehouse(w) = &items[3] else {
        panic!()
    };
    assert_eq!(w.id, "w-1");
    assert_eq!(
        w.address,
        Some(Address {
            presentation: s("Москва, Тверская, 1"),
            fields: vec![("Город".into(), "Москва".into())]
        })
    );
    assert_eq!(
        w.contacts,
        [Contact {
            kind: s("Телефон рабочий"),
            value: s("+7 495 000-00-00")
        }]
    );
    let Item::Offer(o) = &items[4] else { panic!() };
    assert_eq!(o.id, "prod-1#char-1");
    assert_eq!(o.sku.as_deref(), Some("СТ-01"));
    assert_eq!(o.characteristics, [("Цвет".to_owned(), "Белый".to_owned())]);
    assert!(o.has_prices && o.has_stock);
    assert_eq!(
        o.prices,
        [
            Price {
                price_type_id: "pt-1".into(),
                per_unit: "1234.50".into(),
                currency: s("RUB"),
                unit: s("шт"),
                ratio: s("1"),
                presentation: s("1 234,50 RUB за шт"),
                min_quantity: s("2"),
            },
            Price {
                price_type_id: "pt-2".into(),
                per_unit: "по запросу".into(),
                ..Price::default()
            }
        ]
    );
    assert_eq!(o.quantity.as_deref(), Some("377"));
    assert_eq!(
        o.stock,
        [
            Stock {
                warehouse_id: "w-1".into(),
                quantity: "1".into()
            },
            Stock {
                warehouse_id: "w-2".into(),
                quantity: "376.5".into()
            }
        ]
    );
    let Item::Offer(gone) = &items[5] else {
        panic!()
    };
    assert!(gone.deleted);
    assert!(gone.has_prices && gone.prices.is_empty(), "prices cleared");
    assert!(!gone.has_stock);
}

#[test]
fn packet_files_keep_absent_things_absent() {
    let prices = r#"<КоммерческаяИнформация ВерсияСхемы="3.1">
<ИзмененияПакетаПредложений><Ид>c#</Ид><Предложения>
<Предложение><Ид>a#b</Ид><Цены><Цена><ИдТипаЦены>t</ИдТипаЦены><ЦенаЗаЕдиницу>2042.66</ЦенаЗаЕдиницу><Валюта>руб</Валюта>
<Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме></Налог></Цена></Цены></Предложение>
</Предложения></ИзмененияПакетаПредложений></КоммерческаяИнформация>"#;
    let items = items(prices.as_bytes());
    let Item::OfferPackage(pkg) = &items[1] else {
        panic!()
    };
    assert_eq!(
        pkg.only_changes,
        Some(true),
        "a change package is changes only"
    );
    let Item::Offer(o) = &items[2] else { panic!() };
    assert!(o.has_prices && !o.has_stock);
    assert_eq!(o.prices[0].per_unit, "2042.66");
    assert_eq!(o.quantity, None);

    let rests = r#"<КоммерческаяИнформация ВерсияСхемы="3.1"><ПакетПредложений><Предложения>
<Предложение><Ид>a#b</Ид><Остатки>
<Остаток><Склад><Ид>w1</Ид><Количество>5</Количество></Склад></Остаток>
<Остаток><Склад><Ид>w2</Ид><Количество>0</Количество></Склад></Остаток>
</Остатки></Предложение>
<Предложение><Ид>c</Ид><Остатки><Остаток><Количество>7,5</Количество></Остаток></Остатки></Предложение>
</Предложения></ПакетПредложений></КоммерческаяИнформация>"#;
    let offers: Vec<_> = self::items(rests.as_bytes())
        .into_iter()
        .filter_map(|i| match i {
            Item::Offer(o) => Some(o),
            _ => None,
        })
        .collect();
    assert!(!offers[0].has_prices && offers[0].has_stock);
    assert_eq!(
        offers[0].stock,
        [
            Stock {
                warehouse_id: "w1".into(),
                quantity: "5".into()
            },
            Stock {
                warehouse_id: "w2".into(),
                quantity: "0".into()
            }
        ]
    );
    assert_eq!(offers[0].quantity, None);
    assert!(offers[1].stock.is_empty() && offers[1].has_stock);
    assert_eq!(offers[1].quantity.as_deref(), Some("7.5"));
}

const ORDERS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="3.1" ДатаФормирования="2017-08-24T13:51:03">
	<Контейнер>
		<Документ>
			<Ид>319</Ид>
			<НомерВерсии>AAAEVAAAAAA=</НомерВерсии>
			<ПометкаУдаления>false</ПометкаУдаления>
			<Номер>319</Номер>
			<Номер1С>L319       </Номер1С>
			<Дата>2017-08-01</Дата>
			<Дата1С>2017-08-01</Дата1С>
			<Время>15:46:09</Время>
			<ХозОперация>Заказ товара</ХозОперация>
			<Контрагенты>
				<Контрагент>
					<Ид>902#s.selina#Сёлина</Ид>
					<Наименование>АНТ-Консалт</Наименование>
					<ОфициальноеНаименование>ООО "АНТ-Консалт"</ОфициальноеНаименование>
					<Роль>Покупатель</Роль>
					<ИНН>7806080903</ИНН>
					<КПП>780601001</КПП>
					<КодПоОКПО/>
					<РасчетныеСчета>
						<РасчетныйСчет>
							<НомерСчета>40702810600010006661</НомерСчета>
							<Банк>
								<СчетКорреспондентский>30101810400000000132</СчетКорреспондентский>
								<Наименование>АБ "РОССИЯ"</Наименование>
								<БИК>044599132</БИК>
							</Банк>
							<БанкКорреспондент/>
						</РасчетныйСчет>
					</РасчетныеСчета>
					<АдресРегистрации>
						<Представление>195027, Санкт-Петербург</Представление>
					</АдресРегистрации>
					<Адрес>
						<Представление>400066, Волгоград</Представление>
					</Адрес>
					<Контакты>
						<Контакт>
							<Тип>Электронная почта</Тип>
							<Значение>s@example.ru</Значение>
						</Контакт>
					</Контакты>
					<Представители>
						<Представитель>
							<Отношение>Контактное лицо</Отношение>
							<Ид>c416</Ид>
							<Наименование>Аитова Кадрия</Наименование>
						</Представитель>
					</Представители>
				</Контрагент>
			</Контрагенты>
			<Валюта>руб</Валюта>
			<Курс>1</Курс>
			<Сумма>60 259,56</Сумма>
			<Роль>Продавец</Роль>
			<Комментарий>[Номер документа на сайте: L319] </Комментарий>
			<Налоги>
				<Налог>
					<Наименование>НДС</Наименование>
					<УчтеноВСумме>true</УчтеноВСумме>
					<Сумма>625.42</Сумма>
				</Налог>
			</Налоги>
			<ЗначенияРеквизитов>
				<ЗначениеРеквизита>
					<Наименование>Проведен</Наименование>
					<Значение>true</Значение>
				</ЗначениеРеквизита>
			</ЗначенияРеквизитов>
			<Товары>
				<Товар>
					<Ид>aa80#9b62</Ид>
					<Наименование>Kaspersky Internet Security</Наименование>
					<СтавкиНалогов>
						<СтавкаНалога>
							<Наименование>НДС</Наименование>
							<Ставка>Без налога</Ставка>
						</СтавкаНалога>
					</СтавкиНалогов>
					<Единица>
						<Ид>796 </Ид>
						<НаименованиеКраткое>шт</НаименованиеКраткое>
						<Код>796</Код>
						<НаименованиеПолное>штука       </НаименованиеПолное>
					</Единица>
					<Коэффициент>1</Коэффициент>
					<Количество>2</Количество>
					<Цена>1320</Цена>
					<Сумма>2640</Сумма>
					<Скидки>
						<Скидка>
							<Наименование>Акция</Наименование>
							<Сумма>10</Сумма>
							<Процент>0,5</Процент>
							<УчтеноВСумме>true</УчтеноВСумме>
						</Скидка>
					</Скидки>
					<Налоги>
						<Налог>
							<Наименование>НДС</Наименование>
							<УчтеноВСумме>false</УчтеноВСумме>
							<Сумма>0</Сумма>
							<Ставка>Без налога</Ставка>
						</Налог>
					</Налоги>
				</Товар>
			</Товары>
		</Документ>
		<Документ>
			<Ид>319-pay</Ид>
			<Номер>ПО-1</Номер>
			<ХозОперация>Выплата безналичных денег</ХозОперация>
			<Сумма>60259.56</Сумма>
		</Документ>
	</Контейнер>
	<Контейнер>
		<Документ>
			<Ид>320</Ид>
			<Контрагенты>
				<Контрагент>
					<Ид>1#admin# admin </Ид>
					<Наименование>admin</Наименование>
					<Роль>Покупатель</Роль>
					<ПолноеНаименование>Иванов Иван</ПолноеНаименование>
					<Фамилия>Иванов</Фамилия>
					<Имя>Иван</Имя>
					<Отчество>Иванович</Отчество>
					<ИНН/>
					<Контакты/>
					<Представители>
						<Представитель>
							<Контрагент>
								<Отношение>Контактное лицо</Отношение>
								<Ид>b342</Ид>
								<Наименование>admin</Наименование>
							</Контрагент>
						</Представитель>
					</Представители>
				</Контрагент>
				<Контрагент>
					<Ид>anon</Ид>
					<Наименование>Кто-то</Наименование>
				</Контрагент>
			</Контрагенты>
		</Документ>
	</Контейнер>
	<Документ>
		<Ид>free</Ид>
	</Документ>
</КоммерческаяИнформация>
"#;

#[test]
fn documents_in_containers_with_counterparties() {
    let docs: Vec<_> = items(ORDERS.as_bytes())
        .into_iter()
        .filter_map(|i| match i {
            Item::Document(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(docs.len(), 4);
    let containers: Vec<_> = docs.iter().map(|d| d.container).collect();
    assert_eq!(containers, [Some(0), Some(0), Some(1), None]);

    let d = &docs[0];
    assert_eq!(d.id.as_deref(), Some("319"));
    assert_eq!(d.number.as_deref(), Some("319"));
    assert_eq!(d.number_1c.as_deref(), Some("L319"));
    assert_eq!(d.date.as_deref(), Some("2017-08-01"));
    assert_eq!(d.date_1c.as_deref(), Some("2017-08-01"));
    assert_eq!(d.time.as_deref(), Some("15:46:09"));
    assert_eq!(d.operation.as_deref(), Some("Заказ товара"));
    assert_eq!(d.role.as_deref(), Some("Продавец"));
    assert_eq!(d.currency.as_deref(), Some("руб"));
    assert_eq!(d.rate.as_deref(), Some("1"));
    assert_eq!(d.sum.as_deref(), Some("60259.56"));
    assert_eq!(
        d.comment.as_deref(),
        Some("[Номер документа на сайте: L319]")
    );
    assert_eq!(d.version.as_deref(), Some("AAAEVAAAAAA="));
    assert!(!d.deleted);
    assert_eq!(d.taxes.len(), 1);
    assert_eq!(d.taxes[0].amount.as_deref(), Some("625.42"));
    assert_eq!(d.taxes[0].included, Some(true));
    assert_eq!(d.requisites, [("Проведен".to_owned(), "true".to_owned())]);

    let c = &d.counterparties[0];
    assert_eq!(c.kind, PartyKind::Legal);
    assert_eq!(c.full_name.as_deref(), Some("ООО \"АНТ-Консалт\""));
    assert_eq!(c.inn.as_deref(), Some("7806080903"));
    assert_eq!(c.kpp.as_deref(), Some("780601001"));
    assert_eq!(c.okpo, None);
    assert_eq!(c.role.as_deref(), Some("Покупатель"));
    assert_eq!(
        c.legal_address
            .as_ref()
            .and_then(|a| a.presentation.as_deref()),
        Some("195027, Санкт-Петербург")
    );
    assert_eq!(
        c.address.as_ref().and_then(|a| a.presentation.as_deref()),
        Some("400066, Волгоград")
    );
    assert_eq!(c.bank_accounts.len(), 1);
    assert_eq!(c.bank_accounts[0].bik.as_deref(), Some("044599132"));
    assert_eq!(
        c.bank_accounts[0].corr_account.as_deref(),
        Some("30101810400000000132")
    );
    assert_eq!(
        c.bank_accounts[0].bank_name.as_deref(),
        Some("АБ \"РОССИЯ\"")
    );
    assert_eq!(c.contacts[0].kind.as_deref(), Some("Электронная почта"));
    assert_eq!(
        c.representatives,
        [Representative {
            relation: s("Контактное лицо"),
            id: s("c416"),
            name: s("Аитова Кадрия")
        }]
    );

    let l = &d.lines[0];
    assert_eq!(l.id.as_deref(), Some("aa80#9b62"));
    assert_eq!(
        l.unit,
        Some(Unit {
            code: s("796"),
            name: s("шт"),
            full_name: s("штука"),
            intl: None
        })
    );
    assert_eq!(l.ratio.as_deref(), Some("1"));
    assert_eq!(l.quantity.as_deref(), Some("2"));
    assert_eq!(l.price_per_unit.as_deref(), Some("1320"), "Цена as price");
    assert_eq!(l.sum.as_deref(), Some("2640"));
    assert_eq!(l.tax_rates[0].rate, "Без налога");
    assert_eq!(l.taxes[0].rate.as_deref(), Some("Без налога"));
    assert_eq!(l.discounts[0].percent.as_deref(), Some("0.5"));
    assert_eq!(l.discounts[0].included, Some(true));

    assert_eq!(
        docs[1].operation.as_deref(),
        Some("Выплата безналичных денег")
    );

    let person = &docs[2].counterparties[0];
    assert_eq!(person.kind, PartyKind::Person);
    assert_eq!(person.id.as_deref(), Some("1#admin# admin"));
    assert_eq!(person.full_name.as_deref(), Some("Иванов Иван"));
    assert_eq!(
        (
            person.last_name.as_deref(),
            person.first_name.as_deref(),
            person.middle_name.as_deref()
        ),
        (Some("Иванов"), Some("Иван"), Some("Иванович"))
    );
    assert_eq!(person.inn, None);
    assert!(person.contacts.is_empty());
    assert_eq!(
        person.representatives,
        [Representative {
            relation: s("Контактное лицо"),
            id: s("b342"),
            name: s("admin")
        }],
        "2.03 nesting Представитель/Контрагент"
    );
    assert_eq!(docs[2].counterparties[1].kind, PartyKind::Unknown);
}

#[test]
fn root_level_counterparties() {
    let xml = r#"<КоммерческаяИнформация ВерсияСхемы="2.09">
    <Контрагенты СодержитТолькоИзменения="true">
        <Контрагент>
            <Ид>k1</Ид>
            <ПометкаУдаления>true</ПометкаУдаления>
            <Наименование>Алтай ТОО</Наименование>
            <ОфициальноеНаименование>ТОО "Алтай"</ОфициальноеНаименование>
            <ЮридическийАдрес><Представление>Алматы</Представление>
              <АдресноеПоле><Тип>Почтовый индекс</Тип><Значение>005897</Значение></АдресноеПоле></ЮридическийАдрес>
            <ИНН>181310839110</ИНН>
            <ОКПО>123</ОКПО>
            <Комментарий>ok</Комментарий>
        </Контрагент>
    </Контрагенты>
</КоммерческаяИнформация>"#;
    let items = items(xml.as_bytes());
    let Item::Counterparties(list) = &items[1] else {
        panic!()
    };
    assert_eq!(list.only_changes, Some(true));
    let Item::Counterparty(c) = &items[2] else {
        panic!()
    };
    let legal = Address {
        presentation: s("Алматы"),
        fields: vec![("Почтовый индекс".into(), "005897".into())],
    };
    assert_eq!(
        c,
        &Counterparty {
            id: s("k1"),
            name: s("Алтай ТОО"),
            full_name: s("ТОО \"Алтай\""),
            kind: PartyKind::Legal,
            inn: s("181310839110"),
            okpo: s("123"),
            address: Some(legal.clone()),
            legal_address: Some(legal),
            comment: s("ok"),
            deleted: true,
            ..Counterparty::default()
        }
    );
}

#[test]
fn empty_sections_and_lists() {
    let xml = "<КоммерческаяИнформация ВерсияСхемы='2.05'><Классификатор/><Каталог><Ид>c</Ид><Товары/></Каталог>\
               <ПакетПредложений/><Контейнер/><Документ/><Контрагенты/></КоммерческаяИнформация>";
    let kinds: Vec<String> = items(xml.as_bytes())
        .iter()
        .map(|i| format!("{i:?}").split('(').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "Header",
            "Classifier",
            "Catalog",
            "OfferPackage",
            "Document",
            "Counterparties"
        ]
    );
}

#[test]
fn empty_root_and_trailing_content() {
    let items = items("<КоммерческаяИнформация ВерсияСхемы=\"2.05\"/>".as_bytes());
    assert_eq!(items.len(), 1);
    let after = "<?xml version='1.0'?><!-- c --><КоммерческаяИнформация></КоммерческаяИнформация>\n<!-- tail -->";
    assert_eq!(self::items(after.as_bytes()).len(), 1);
}

#[test]
fn cdata_comments_and_processing_instructions_are_handled() {
    let xml = "<КоммерческаяИнформация><Каталог><Товары><Товар><Ид>a</Ид>\
               <Наименование><![CDATA[Стол <дуб> & ко]]> <!-- x --> №1<?pi x?></Наименование>\
               </Товар></Товары></Каталог></КоммерческаяИнформация>";
    let items = items(xml.as_bytes());
    let Item::Product(p) = &items[2] else {
        panic!()
    };
    assert_eq!(p.name.as_deref(), Some("Стол <дуб> & ко  №1"));
}

// ---- broken and hostile input ----

#[test]
fn dtd_is_refused_billion_laughs_and_external_entities() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<КоммерческаяИнформация><Каталог><Наименование>&lol3;</Наименование></Каталог></КоммерческаяИнформация>"#;
    let e = error(laughs.as_bytes());
    assert!(e.message.contains("DTD"), "{e}");
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<КоммерческаяИнформация><Каталог><Наименование>&xxe;</Наименование></Каталог></КоммерческаяИнформация>"#;
    let e = error(xxe.as_bytes());
    assert!(e.message.contains("DTD"), "{e}");
    assert_eq!(e.line, 2);
}

#[test]
fn undefined_entities_are_refused() {
    let xml = "<КоммерческаяИнформация>\n<Каталог>\n<Наименование>a &nbsp; b</Наименование>\n</Каталог>\n</КоммерческаяИнформация>";
    let e = error(xml.as_bytes());
    assert!(e.message.contains("&nbsp;"), "{e}");
    assert_eq!(e.line, 3);
    assert_eq!(e.path, "КоммерческаяИнформация/Каталог/Наименование");
    // Even in an element the reader skips, and in attributes.
    let skipped = "<КоммерческаяИнформация><Чужое>&xxe;</Чужое></КоммерческаяИнформация>";
    assert!(error(skipped.as_bytes()).message.contains("&xxe;"));
    let attr = "<КоммерческаяИнформация ВерсияСхемы='&xxe;'></КоммерческаяИнформация>";
    assert!(error(attr.as_bytes()).message.contains("xxe"));
    let bad_char =
        "<КоммерческаяИнформация><Каталог><Ид>&#0;</Ид></Каталог></КоммерческаяИнформация>";
    assert!(error(bad_char.as_bytes())
        .message
        .contains("character reference"));
    let lone = "<КоммерческаяИнформация><Каталог><Ид>a & b</Ид></Каталог></КоммерческаяИнформация>";
    error(lone.as_bytes());
}

#[test]
fn truncated_files_are_errors() {
    let full = CATALOG.as_bytes();
    for cut in [
        0,
        10,
        CATALOG.find("<Товары>").unwrap_or(0),
        CATALOG.find("Стол обеденный").unwrap_or(0) + 3,
        full.len() - 30,
        full.len() - 3,
    ] {
        let e = error(&full[..cut]);
        assert!(!e.message.is_empty());
    }
    let e = error(&full[..CATALOG.find("<Штрихкод>").unwrap_or(0)]);
    assert!(e.message.contains("end of the file"), "{e}");
    assert!(e.path.ends_with("Товары/Товар"), "{e}");
}

#[test]
fn mismatched_tags_are_errors_with_position() {
    let xml = "<КоммерческаяИнформация>\n  <Каталог>\n    <Ид>x</Наименование>\n  </Каталог>\n</КоммерческаяИнформация>";
    let e = error(xml.as_bytes());
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("malformed XML"), "{e}");
    assert!(e.to_string().starts_with("line 3, column "), "{e}");
    assert!(
        e.to_string()
            .contains(", in КоммерческаяИнформация/Каталог/Ид: "),
        "{e}"
    );
}

#[test]
fn error_display_names_line_column_and_path() {
    let xml = "<КоммерческаяИнформация>\n<Каталог>\n<Товары>\n<Товар>\n    <Ид>&bad;</Ид>";
    let e = error(xml.as_bytes());
    assert_eq!(
        (e.line, e.path.as_str()),
        (5, "КоммерческаяИнформация/Каталог/Товары/Товар/Ид")
    );
    assert_eq!(e.column, 14, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "line 5, column 14, in КоммерческаяИнформация/Каталог/Товары/Товар/Ид: {}",
            e.message
        )
    );
}

#[test]
fn depth_bomb_is_refused() {
    let depth = 10_000;
    let mut xml = String::from("<КоммерческаяИнформация>");
    for _ in 0..depth {
        xml.push_str("<a>");
    }
    for _ in 0..depth {
        xml.push_str("</a>");
    }
    xml.push_str("</КоммерческаяИнформация>");
    let e = error(xml.as_bytes());
    assert!(e.message.contains("deeper than 64"), "{e}");
    // Also inside a record.
    let mut xml = String::from("<КоммерческаяИнформация><Каталог><Товары><Товар>");
    for _ in 0..100 {
        xml.push_str("<Группы>");
    }
    let e = error(xml.as_bytes());
    assert!(e.message.contains("deeper than"), "{e}");
}

#[test]
fn huge_values_are_refused() {
    let big = "я".repeat(1 << 20);
    let xml = format!(
        "<КоммерческаяИнформация><Каталог><Наименование>{big}</Наименование></Каталог></КоммерческаяИнформация>"
    );
    let e = error(xml.as_bytes());
    assert!(e.message.contains("limit"), "{e}");
    // The same in a skipped element, a comment, and an attribute.
    for xml in [
        format!("<КоммерческаяИнформация><Чужое>{big}</Чужое></КоммерческаяИнформация>"),
        format!("<КоммерческаяИнформация><!--{big}--></КоммерческаяИнформация>"),
        format!("<КоммерческаяИнформация a='{big}'></КоммерческаяИнформация>"),
    ] {
        assert!(error(xml.as_bytes()).message.contains("limit"));
    }
    // Many entity references adding up to a big value.
    let refs = "&amp;".repeat(300_000);
    let xml = format!(
        "<КоммерческаяИнформация><Каталог><Наименование>{refs}{refs}{refs}{refs}</Наименование></Каталог></КоммерческаяИнформация>"
    );
    assert!(error(xml.as_bytes()).message.contains("limit"));
}

/// The error that stops reading `bytes` under `limits`; fails the test if there is none.
fn first_error(bytes: &[u8], limits: Limits) -> kontor_commerceml::ReadError {
    let mut reader = Reader::with_limits(bytes, limits).unwrap_or_else(|e| panic!("{e}"));
    loop {
        match reader.next_item() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("expected the record limit"),
            Err(e) => return e,
        }
    }
}

#[test]
fn records_are_bounded() {
    let mut xml = String::from("<КоммерческаяИнформация><Каталог><Товары><Товар><Группы>");
    for i in 0..2000 {
        xml.push_str(&format!("<Ид>{i}</Ид>"));
    }
    xml.push_str("</Группы></Товар></Товары></Каталог></КоммерческаяИнформация>");
    let limits = Limits {
        max_record_elements: 1000,
        ..Limits::default()
    };
    let e = first_error(xml.as_bytes(), limits);
    assert!(e.message.contains("more than 1000 elements"), "{e}");
    let limits = Limits {
        max_record_bytes: 1000,
        ..Limits::default()
    };
    let e = first_error(xml.as_bytes(), limits);
    assert!(e.message.contains("bytes of text"), "{e}");
    // The default limits read it.
    assert_eq!(items(xml.as_bytes()).len(), 3);
}

#[test]
fn not_commerceml_or_not_xml() {
    assert!(error(b"").message.contains("no root element"));
    assert!(error(b"   \n").message.contains("no root element"));
    assert!(error(b"<html><body/></html>")
        .message
        .contains("not a CommerceML file"));
    error(b"\x00\x01\x02binary");
    error(b"<<<>>>");
    let e = error(b"<?xml version=\"1.0\" encoding=\"x-klingon\"?><a/>");
    assert!(e.message.contains("unsupported encoding"), "{e}");
    // Invalid UTF-8 in a value.
    let mut xml = Vec::new();
    xml.extend_from_slice("<КоммерческаяИнформация><Каталог><Ид>".as_bytes());
    xml.extend_from_slice(b"\xFF\xFE");
    xml.extend_from_slice("</Ид></Каталог></КоммерческаяИнформация>".as_bytes());
    let e = error(&xml);
    assert!(e.message.contains("UTF-8"), "{e}");
}

#[test]
fn any_case_root_name() {
    let xml = "<коммерческаяинформация ВЕРСИЯСХЕМЫ=\"2.05\"></коммерческаяинформация>";
    let items = items(xml.as_bytes());
    let Item::Header(h) = &items[0] else { panic!() };
    assert_eq!(h.schema_version, "2.05");
}

#[test]
fn a_reader_that_fails() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let e = match Reader::new(BufReader::new(Failing)) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    };
    assert!(e.message.contains("disk on fire"), "{e}");
}
