//! The element names the reader acts on, looked up once per start tag.
//!
//! Names are compared as the UTF-8 local name (prefix dropped): the input is always
//! UTF-8 by the time it reaches the XML parser (see [`crate::read`]), so no per-tag decoding is
//! needed. Anything not listed is [`Tag::Other`] and skipped with its subtree where it appears.

macro_rules! tags {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A known CommerceML element name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Tag {
            $($variant,)*
            Other,
        }

        impl Tag {
            /// The tag for a local element name.
            pub(crate) fn of(local_name: &str) -> Tag {
                match local_name {
                    $($name => Tag::$variant,)*
                    _ => Tag::Other,
                }
            }
        }
    };
}

tags! {
    // Sections and lists.
    Classifier = "Классификатор",
    Catalog = "Каталог",
    OfferPackage = "ПакетПредложений",
    OfferPackageChanges = "ИзмененияПакетаПредложений",
    Document = "Документ",
    Container = "Контейнер",
    Counterparties = "Контрагенты",
    Counterparty = "Контрагент",
    Groups = "Группы",
    Group = "Группа",
    Properties = "Свойства",
    Property = "Свойство",
    ProductProperty = "СвойствоНоменклатуры",
    PriceTypes = "ТипыЦен",
    PriceType = "ТипЦены",
    Warehouses = "Склады",
    Warehouse = "Склад",
    Units = "ЕдиницыИзмерения",
    UnitOfMeasure = "ЕдиницаИзмерения",
    Products = "Товары",
    Product = "Товар",
    Offers = "Предложения",
    Offer = "Предложение",
    // Common fields.
    Id = "Ид",
    Name = "Наименование",
    CatalogId = "ИдКаталога",
    ClassifierId = "ИдКлассификатора",
    Description = "Описание",
    Deleted = "ПометкаУдаления",
    Version = "НомерВерсии",
    Status = "Статус",
    Comment = "Комментарий",
    // Properties.
    ValueType = "ТипЗначений",
    Multiple = "Множественное",
    Required = "Обязательное",
    ForProducts = "ДляТоваров",
    ForOffers = "ДляПредложений",
    ValueVariants = "ВариантыЗначений",
    Dictionary = "Справочник",
    ValueId = "ИдЗначения",
    Value = "Значение",
    // Price types and taxes.
    Currency = "Валюта",
    Tax = "Налог",
    Taxes = "Налоги",
    IncludedInSum = "УчтеноВСумме",
    Excise = "Акциз",
    // Products.
    Barcode = "Штрихкод",
    Sku = "Артикул",
    BaseUnit = "БазоваяЕдиница",
    Unit = "Единица",
    Image = "Картинка",
    PropertyValues = "ЗначенияСвойств",
    PropertyValue = "ЗначенияСвойства",
    TaxRates = "СтавкиНалогов",
    TaxRate = "СтавкаНалога",
    Rate = "Ставка",
    Characteristics = "ХарактеристикиТовара",
    Characteristic = "ХарактеристикаТовара",
    Requisites = "ЗначенияРеквизитов",
    Requisite = "ЗначениеРеквизита",
    Manufacturer = "Изготовитель",
    // Units.
    Code = "Код",
    ShortName = "НаименованиеКраткое",
    FullName = "НаименованиеПолное",
    IntlAbbr = "МеждународноеСокращение",
    // Offers.
    Prices = "Цены",
    Price = "Цена",
    Presentation = "Представление",
    PriceTypeId = "ИдТипаЦены",
    PricePerUnit = "ЦенаЗаЕдиницу",
    Ratio = "Коэффициент",
    MinQuantity = "МинКоличество",
    Quantity = "Количество",
    Rests = "Остатки",
    Rest = "Остаток",
    // Counterparties.
    PartyFullName = "ПолноеНаименование",
    OfficialName = "ОфициальноеНаименование",
    Role = "Роль",
    Inn = "ИНН",
    Kpp = "КПП",
    Okpo = "ОКПО",
    OkpoCode = "КодПоОКПО",
    LastName = "Фамилия",
    FirstName = "Имя",
    MiddleName = "Отчество",
    Address = "Адрес",
    LegalAddress = "ЮридическийАдрес",
    RegistrationAddress = "АдресРегистрации",
    AddressField = "АдресноеПоле",
    Type = "Тип",
    Contacts = "Контакты",
    Contact = "Контакт",
    BankAccounts = "РасчетныеСчета",
    BankAccount = "РасчетныйСчет",
    AccountNumber = "НомерСчета",
    Bank = "Банк",
    Bik = "БИК",
    CorrAccount = "СчетКорреспондентский",
    Representatives = "Представители",
    Representative = "Представитель",
    Relation = "Отношение",
    // Documents.
    Number = "Номер",
    Date = "Дата",
    Operation = "ХозОперация",
    Sum = "Сумма",
    ExchangeRate = "Курс",
    Time = "Время",
    PaymentDue = "СрокПлатежа",
    Discounts = "Скидки",
    Discount = "Скидка",
    Percent = "Процент",
    Number1c = "Номер1С",
    Date1c = "Дата1С",
}

#[cfg(test)]
mod tests {
    use super::Tag;

    #[test]
    fn lookup() {
        assert_eq!(Tag::of("Товар"), Tag::Product);
        assert_eq!(Tag::of("Номер1С"), Tag::Number1c);
        assert_eq!(Tag::of("Product"), Tag::Other);
    }
}
