//! The records a CommerceML file is made of, as plain data.
//!
//! Every text value is decoded, unescaped and trimmed; an element that is empty after trimming
//! (`<ИНН/>`, `<ИНН> </ИНН>`) is absent (`None`, or left out of a list). Identifiers, dates and
//! enumerations are kept as the strings the file has (see [`crate::values`] for dates and
//! decimals); only numbers that are prices, sums and quantities are normalised with
//! [`crate::normalize_decimal`] (and kept raw when they are not numbers).

/// One item of a file, in document order, as [`crate::Reader::next_item`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The root element `КоммерческаяИнформация`; always the first item.
    Header(Header),
    /// The start of a `Классификатор`.
    Classifier(Section),
    /// The start of a `Каталог` (emitted once its `Ид`/`Наименование`/`ИдКлассификатора` are known,
    /// before its first group or product).
    Catalog(Section),
    /// The start of a `ПакетПредложений` or `ИзмененияПакетаПредложений`.
    OfferPackage(Section),
    /// The start of a root-level `Контрагенты` list (1C-Bitrix module dialect).
    Counterparties(Section),
    /// A `Группы/Группа`, nested groups flattened with their parent's `Ид`.
    Group(Group),
    /// A `Свойства/Свойство` (or `СвойствоНоменклатуры`).
    Property(Property),
    /// A `ТипыЦен/ТипЦены`.
    PriceType(PriceType),
    /// A `Склады/Склад` of a classifier or offer package.
    Warehouse(Warehouse),
    /// A `ЕдиницыИзмерения/ЕдиницаИзмерения` of a classifier.
    Unit(Unit),
    /// A `Каталог/Товары/Товар`.
    Product(Product),
    /// A `Предложения/Предложение`.
    Offer(Offer),
    /// A root-level `Контрагенты/Контрагент`.
    Counterparty(Counterparty),
    /// A `Документ`, at the root or inside a CML 3.1 `Контейнер`.
    Document(Document),
}

/// A value with the line (1-based) where its element starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub line: u64,
    pub item: T,
}

/// The attributes of the root element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// `ВерсияСхемы`, e.g. `2.05`, `3.1`; empty if the root has none.
    pub schema_version: String,
    /// `ДатаФормирования`, raw.
    pub generated_at: Option<String>,
    /// `Ид` (1C-Bitrix module files).
    pub root_id: Option<String>,
}

/// The head of a classifier, catalog, offer package or counterparty list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `СодержитТолькоИзменения`: `Some(false)` = full upload, `Some(true)` = changes only. An
    /// `ИзмененияПакетаПредложений` without the attribute is `Some(true)`.
    pub only_changes: Option<bool>,
    /// `ИдКаталога` (offer packages).
    pub catalog_id: Option<String>,
    /// `ИдКлассификатора` (catalogs and offer packages).
    pub classifier_id: Option<String>,
    /// `Описание`.
    pub description: Option<String>,
}

/// A product group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: Option<String>,
    /// `Ид` of the enclosing group, `None` at the top level.
    pub parent_id: Option<String>,
    pub description: Option<String>,
    /// `ПометкаУдаления` is true.
    pub deleted: bool,
    /// `НомерВерсии`.
    pub version: Option<String>,
}

/// A product property (its definition; products carry [`PropertyValue`]s).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Property {
    pub id: String,
    pub name: Option<String>,
    /// `ТипЗначений` as written: `Строка`, `Число`, `Время`, `Справочник`…
    pub value_type: Option<String>,
    /// `Множественное`.
    pub multiple: bool,
    /// `Обязательное`.
    pub required: bool,
    /// `ДляТоваров`.
    pub for_products: Option<bool>,
    /// `ДляПредложений`.
    pub for_offers: Option<bool>,
    /// `ВариантыЗначений/Справочник`: (`ИдЗначения`, `Значение`). A bare `ВариантыЗначений/Значение`
    /// gives an empty id.
    pub values: Vec<(String, String)>,
    pub deleted: bool,
    pub version: Option<String>,
}

/// A price type (`ТипЦены`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceType {
    pub id: String,
    pub name: Option<String>,
    /// `Валюта`, as written (`руб`, `RUB`, `643`…).
    pub currency: Option<String>,
    /// `Налог/Наименование`.
    pub tax_name: Option<String>,
    /// `Налог/УчтеноВСумме`: the tax is included in the price.
    pub vat_included: Option<bool>,
    /// `Налог/Акциз`.
    pub excise: Option<bool>,
    /// `ПометкаУдаления` (1C-Bitrix module dialect).
    pub deleted: bool,
}

/// A warehouse (`Склад` with child elements).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Warehouse {
    pub id: String,
    pub name: Option<String>,
    pub address: Option<Address>,
    pub contacts: Vec<Contact>,
    pub deleted: bool,
}

/// A unit of measure: `БазоваяЕдиница` (text + attributes `Код`, `НаименованиеПолное`,
/// `МеждународноеСокращение`), `Единица` or `ЕдиницаИзмерения` (child elements).
///
/// CML 3.1 files write `<БазоваяЕдиница>796 </БазоваяЕдиница>`, a reference to a classifier unit by
/// its code: a bare text made of digits with no `Код` attribute is taken as the code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unit {
    /// `Код` (OKEI code such as `796`), trimmed.
    pub code: Option<String>,
    /// Short name (`шт`): the element text or `НаименованиеКраткое`.
    pub name: Option<String>,
    /// `НаименованиеПолное`.
    pub full_name: Option<String>,
    /// `МеждународноеСокращение` (`PCE`).
    pub intl: Option<String>,
}

/// The values of one property on a product or offer (`ЗначенияСвойств/ЗначенияСвойства`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyValue {
    /// `Ид` of the [`Property`].
    pub property_id: String,
    /// Each `Значение` (a literal, or the `ИдЗначения` of a `Справочник` value). Empty when the
    /// property has no value.
    pub values: Vec<String>,
}

/// A tax rate of a product (`СтавкиНалогов/СтавкаНалога`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaxRate {
    pub name: Option<String>,
    /// `Ставка` as written: `18`, `18/118`, `Без налога`.
    pub rate: String,
}

/// A catalog product (`Товар` of `Каталог/Товары`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Product {
    pub id: String,
    pub barcode: Option<String>,
    /// `Артикул`.
    pub sku: Option<String>,
    pub name: Option<String>,
    /// `БазоваяЕдиница`.
    pub unit: Option<Unit>,
    /// `Группы/Ид`.
    pub group_ids: Vec<String>,
    pub description: Option<String>,
    /// `Картинка`: paths relative to the exchange folder (`import_files/…`).
    pub images: Vec<String>,
    pub property_values: Vec<PropertyValue>,
    pub tax_rates: Vec<TaxRate>,
    /// `ХарактеристикиТовара/ХарактеристикаТовара`: (`Наименование`, `Значение`).
    pub characteristics: Vec<(String, String)>,
    /// `ЗначенияРеквизитов/ЗначениеРеквизита`: (`Наименование`, `Значение`); one pair per `Значение`.
    pub requisites: Vec<(String, String)>,
    /// `Статус` (attribute or element): `Новый`, `Изменен`, `Удален`.
    pub status: Option<String>,
    /// `ПометкаУдаления` is true or `Статус` is `Удален`.
    pub deleted: bool,
    pub version: Option<String>,
    /// `Изготовитель/Наименование`.
    pub manufacturer: Option<String>,
}

/// A price of an offer (`Цены/Цена`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Price {
    /// `ИдТипаЦены`.
    pub price_type_id: String,
    /// `ЦенаЗаЕдиницу`, normalised (`1 234,50` → `1234.50`), or raw if it is not a number.
    pub per_unit: String,
    pub currency: Option<String>,
    /// `Единица`, as written.
    pub unit: Option<String>,
    /// `Коэффициент`.
    pub ratio: Option<String>,
    /// `Представление` (`4 USD за шт`).
    pub presentation: Option<String>,
    /// `МинКоличество`.
    pub min_quantity: Option<String>,
}

/// Stock of an offer in one warehouse.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stock {
    pub warehouse_id: String,
    /// Normalised decimal, or raw if it is not a number.
    pub quantity: String,
}

/// An offer (`Предложение`): price and stock of a product or of one of its characteristics.
///
/// In packet exchange an offer carries only what its file has: the `has_*` flags tell "this file
/// says nothing about prices/stock" (`false`) from "no prices/stock any more" (`true`, lists
/// empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Offer {
    /// `<product id>` or `<product id>#<characteristic id>`.
    pub id: String,
    pub barcode: Option<String>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub unit: Option<Unit>,
    pub characteristics: Vec<(String, String)>,
    pub property_values: Vec<PropertyValue>,
    pub prices: Vec<Price>,
    /// A `Цены` element was present.
    pub has_prices: bool,
    /// `Количество`, the total (or an `Остатки/Остаток` with a bare `Количество`).
    pub quantity: Option<String>,
    /// `<Склад ИдСклада="…" КоличествоНаСкладе="…"/>` and `Остатки/Остаток/Склад(Ид, Количество)`.
    pub stock: Vec<Stock>,
    /// A `Склад` or `Остатки` element was present: `stock` is the whole per-warehouse stock of
    /// the offer. (A bare `Количество` only sets `quantity`.)
    pub has_stock: bool,
    pub deleted: bool,
    pub status: Option<String>,
    pub version: Option<String>,
}

/// Whether a counterparty is a legal entity or a person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartyKind {
    /// `ОфициальноеНаименование` or `ЮридическийАдрес` present, or a non-empty `КПП`/`ОКПО`.
    Legal,
    /// `ПолноеНаименование` or `АдресРегистрации` present, or a non-empty `Фамилия`/`Имя`/`Отчество`
    /// (and nothing of a legal entity).
    Person,
    #[default]
    Unknown,
}

/// An address: `Представление` and `АдресноеПоле(Тип, Значение)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Address {
    pub presentation: Option<String>,
    /// (`Тип`, `Значение`), e.g. (`Почтовый индекс`, `117452`).
    pub fields: Vec<(String, String)>,
}

/// A contact (`Контакты/Контакт`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    /// `Тип`: `Почта`, `Электронная почта`, `Телефон рабочий`…
    pub kind: Option<String>,
    pub value: Option<String>,
}

/// A bank account (`РасчетныеСчета/РасчетныйСчет`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BankAccount {
    /// `НомерСчета`.
    pub account: Option<String>,
    /// `Банк/БИК`.
    pub bik: Option<String>,
    /// `Банк/Наименование`.
    pub bank_name: Option<String>,
    /// `Банк/СчетКорреспондентский`.
    pub corr_account: Option<String>,
}

/// A representative (`Представители/Представитель`, also in the 2.03 form
/// `Представитель/Контрагент`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Representative {
    /// `Отношение` (`Контактное лицо`).
    pub relation: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// A counterparty (`Контрагент`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counterparty {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `ПолноеНаименование` or `ОфициальноеНаименование`.
    pub full_name: Option<String>,
    pub kind: PartyKind,
    pub inn: Option<String>,
    pub kpp: Option<String>,
    /// `ОКПО` or `КодПоОКПО`.
    pub okpo: Option<String>,
    /// `Роль` (in documents: `Покупатель`, `Продавец`…).
    pub role: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    /// `Адрес`; if absent, the legal/registration address.
    pub address: Option<Address>,
    /// `ЮридическийАдрес` or `АдресРегистрации`.
    pub legal_address: Option<Address>,
    pub contacts: Vec<Contact>,
    pub bank_accounts: Vec<BankAccount>,
    pub representatives: Vec<Representative>,
    pub comment: Option<String>,
    pub deleted: bool,
    pub version: Option<String>,
}

/// A tax of a document or document line (`Налоги/Налог`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tax {
    pub name: Option<String>,
    /// `УчтеноВСумме`.
    pub included: Option<bool>,
    /// `Сумма`.
    pub amount: Option<String>,
    /// `Ставка`, raw.
    pub rate: Option<String>,
}

/// A discount (`Скидки/Скидка`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discount {
    pub name: Option<String>,
    /// `Сумма`.
    pub amount: Option<String>,
    /// `Процент`.
    pub percent: Option<String>,
    /// `УчтеноВСумме`.
    pub included: Option<bool>,
}

/// A line of a document (`Товары/Товар` inside `Документ`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentLine {
    /// Product or offer `Ид` (`ORDER_DELIVERY` for Bitrix delivery lines).
    pub id: Option<String>,
    /// `ИдКаталога`.
    pub catalog_id: Option<String>,
    pub name: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// `БазоваяЕдиница` or `Единица`.
    pub unit: Option<Unit>,
    /// `Коэффициент`.
    pub ratio: Option<String>,
    /// `ЦенаЗаЕдиницу` or `Цена`.
    pub price_per_unit: Option<String>,
    pub quantity: Option<String>,
    pub sum: Option<String>,
    pub taxes: Vec<Tax>,
    pub tax_rates: Vec<TaxRate>,
    pub discounts: Vec<Discount>,
    pub requisites: Vec<(String, String)>,
    pub characteristics: Vec<(String, String)>,
}

/// A business document (`Документ`): an order, payment, shipment…
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub id: Option<String>,
    pub number: Option<String>,
    /// `Дата`, raw (see [`crate::parse_datetime`]).
    pub date: Option<String>,
    /// `Время`, raw.
    pub time: Option<String>,
    /// `ХозОперация`: `Заказ товара`, `Выплата безналичных денег`, `Отпуск товара`…
    pub operation: Option<String>,
    /// `Роль`: `Продавец`…
    pub role: Option<String>,
    pub currency: Option<String>,
    /// `Курс`.
    pub rate: Option<String>,
    /// `Сумма`.
    pub sum: Option<String>,
    pub counterparties: Vec<Counterparty>,
    /// `СрокПлатежа`, raw.
    pub payment_due: Option<String>,
    pub comment: Option<String>,
    pub lines: Vec<DocumentLine>,
    pub taxes: Vec<Tax>,
    pub discounts: Vec<Discount>,
    pub requisites: Vec<(String, String)>,
    pub deleted: bool,
    /// `Номер1С`.
    pub number_1c: Option<String>,
    /// `Дата1С`.
    pub date_1c: Option<String>,
    pub version: Option<String>,
    /// Index (from 0, in file order) of the enclosing CML 3.1 `Контейнер`, if any.
    pub container: Option<u32>,
}
