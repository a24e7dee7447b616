//! What the pages call the built-in fields, in English, German and Russian. A custom field is
//! called by the label its admin gave it, else by its name.

use super::i18n::Lang;
use kontor_domain::schema::FieldDef;

/// `(field, English, German, Russian)` for every built-in field and row column.
const FIELDS: &[(&str, &str, &str, &str)] = &[
    ("account", "Account number", "Kontonummer", "Расчётный счёт"),
    ("active", "Active", "Aktiv", "Активен"),
    ("address", "Address", "Adresse", "Адрес"),
    ("addresses", "Addresses", "Adressen", "Адреса"),
    ("amount", "Amount", "Betrag", "Сумма"),
    (
        "bank_accounts",
        "Bank accounts",
        "Bankkonten",
        "Банковские счета",
    ),
    ("bank_name", "Bank", "Bank", "Банк"),
    ("barcode", "Barcode", "Barcode", "Штрихкод"),
    ("bik", "BIK", "BIK", "БИК"),
    ("birthday", "Birthday", "Geburtstag", "День рождения"),
    (
        "catalog_missing",
        "Missing from the catalog",
        "Fehlt im Katalog",
        "Нет в каталоге",
    ),
    (
        "characteristics",
        "Characteristics",
        "Merkmale",
        "Характеристики",
    ),
    ("city", "City", "Stadt", "Город"),
    (
        "close_date",
        "Close date",
        "Abschlussdatum",
        "Дата закрытия",
    ),
    ("columns", "Columns", "Spalten", "Колонки"),
    ("company_id", "Company", "Firma", "Компания"),
    (
        "company_name",
        "Company name",
        "Firmenname",
        "Название компании",
    ),
    ("contact_id", "Contact", "Kontakt", "Контакт"),
    (
        "corr_account",
        "Correspondent account",
        "Korrespondenzkonto",
        "Корр. счёт",
    ),
    ("country", "Country", "Land", "Страна"),
    (
        "create_records",
        "Create missing records",
        "Fehlende Datensätze anlegen",
        "Создавать недостающие записи",
    ),
    ("created_at", "Created", "Erstellt", "Создано"),
    ("currency", "Currency", "Währung", "Валюта"),
    ("date", "Date", "Datum", "Дата"),
    ("deal_id", "Deal", "Geschäft", "Сделка"),
    ("default", "Default", "Standard", "По умолчанию"),
    ("delimiter", "Delimiter", "Trennzeichen", "Разделитель"),
    ("description", "Description", "Beschreibung", "Описание"),
    ("disabled", "Disabled", "Gesperrt", "Отключён"),
    ("done", "Done", "Erledigt", "Выполнено"),
    ("due_at", "Due", "Fällig", "Срок"),
    ("due_date", "Due date", "Fälligkeitsdatum", "Оплатить до"),
    ("email", "E-mail", "E-Mail", "Эл. почта"),
    ("emails", "E-mails", "E-Mails", "Адреса эл. почты"),
    ("encoding", "Encoding", "Zeichenkodierung", "Кодировка"),
    ("entity", "Entity", "Objekttyp", "Тип записей"),
    ("external_id", "1C id", "1C-Kennung", "Идентификатор 1С"),
    (
        "filterable",
        "Filter and sort by it",
        "Filtern und sortieren",
        "Фильтр и сортировка",
    ),
    ("first_name", "First name", "Vorname", "Имя"),
    ("group", "Group", "Gruppe", "Группа"),
    ("group_id", "Group", "Gruppe", "Группа"),
    (
        "hidden_fields",
        "Hidden fields",
        "Verborgene Felder",
        "Скрытые поля",
    ),
    (
        "id_prefix",
        "Id prefix",
        "Kennungspräfix",
        "Префикс идентификатора",
    ),
    ("industry", "Industry", "Branche", "Отрасль"),
    ("inn", "INN", "INN", "ИНН"),
    (
        "invoice_encoding",
        "Invoice encoding",
        "Kodierung der Rechnungen",
        "Кодировка счетов",
    ),
    ("invoice_id", "Invoice", "Rechnung", "Счёт"),
    (
        "invoice_statuses",
        "Invoice statuses",
        "Rechnungsstatus",
        "Статусы счетов",
    ),
    (
        "invoices_sent_at",
        "Invoices last sent",
        "Rechnungen zuletzt gesendet",
        "Счета отправлены",
    ),
    (
        "invoices_sent_seq",
        "Invoices sent up to",
        "Rechnungen gesendet bis",
        "Счета отправлены до",
    ),
    ("issue_date", "Issue date", "Rechnungsdatum", "Дата счёта"),
    ("kind", "Kind", "Art", "Вид"),
    ("kpp", "KPP", "KPP", "КПП"),
    ("label", "Label", "Bezeichnung", "Подпись"),
    ("language", "Language", "Sprache", "Язык"),
    ("last_name", "Last name", "Nachname", "Фамилия"),
    (
        "legal_name",
        "Legal name",
        "Firmierung",
        "Юридическое название",
    ),
    ("lines", "Lines", "Positionen", "Строки"),
    (
        "linked_entity",
        "Linked to (type)",
        "Verknüpft mit (Art)",
        "Связано с (тип)",
    ),
    ("linked_id", "Linked to", "Verknüpft mit", "Связано с"),
    (
        "lost_reason",
        "Reason lost",
        "Verlustgrund",
        "Причина проигрыша",
    ),
    ("match", "Match by", "Abgleich über", "Сопоставлять по"),
    ("method", "Method", "Zahlungsart", "Способ"),
    ("middle_name", "Middle name", "Vatersname", "Отчество"),
    ("mode", "Mode", "Modus", "Режим"),
    (
        "multiple",
        "Several values",
        "Mehrere Werte",
        "Несколько значений",
    ),
    ("name", "Name", "Name", "Название"),
    ("notes", "Notes", "Notizen", "Заметки"),
    ("number", "Number", "Nummer", "Номер"),
    ("number_1c", "Number in 1C", "Nummer in 1C", "Номер в 1С"),
    ("ogrn", "OGRN", "OGRN", "ОГРН"),
    (
        "on_record_error",
        "On a record's error",
        "Bei Fehler eines Datensatzes",
        "При ошибке записи",
    ),
    ("options", "Options", "Auswahlwerte", "Варианты"),
    ("owner_id", "Owner", "Verantwortlich", "Ответственный"),
    ("paid_amount", "Paid", "Bezahlt", "Оплачено"),
    ("paid_at", "Paid at", "Bezahlt am", "Дата оплаты"),
    (
        "parent_id",
        "Parent group",
        "Übergeordnete Gruppe",
        "Родительская группа",
    ),
    (
        "password_changed_at",
        "Password changed",
        "Passwort geändert",
        "Пароль изменён",
    ),
    ("permissions", "Permissions", "Berechtigungen", "Права"),
    ("phone", "Phone", "Telefon", "Телефон"),
    ("phones", "Phones", "Telefonnummern", "Телефоны"),
    ("pipeline", "Pipeline", "Pipeline", "Воронка"),
    ("position", "Position", "Position", "Должность"),
    ("postal_code", "Postal code", "Postleitzahl", "Индекс"),
    ("price", "Price", "Preis", "Цена"),
    ("price_type", "Price type", "Preisart", "Тип цены"),
    ("price_type_id", "Price type", "Preisart", "Тип цены"),
    ("prices", "Prices", "Preise", "Цены"),
    (
        "probability",
        "Probability, %",
        "Wahrscheinlichkeit, %",
        "Вероятность, %",
    ),
    ("product_id", "Product", "Produkt", "Товар"),
    (
        "property_fields",
        "Property fields",
        "Eigenschaftsfelder",
        "Поля свойств",
    ),
    ("property_id", "Property", "Eigenschaft", "Свойство"),
    (
        "property_values",
        "Property values",
        "Eigenschaftswerte",
        "Значения свойств",
    ),
    ("quantity", "Quantity", "Menge", "Количество"),
    (
        "readonly_fields",
        "Read-only fields",
        "Schreibgeschützte Felder",
        "Поля только для чтения",
    ),
    ("reference", "Reference", "Verweis", "Ссылка"),
    ("remind_at", "Remind at", "Erinnern am", "Напомнить"),
    ("required", "Required", "Pflichtfeld", "Обязательное"),
    ("requisites", "Requisites", "Rechnungsangaben", "Реквизиты"),
    ("role", "Role", "Rolle", "Роль"),
    ("sheet", "Sheet", "Tabellenblatt", "Лист"),
    (
        "seller_id",
        "Seller (our company)",
        "Verkäufer (eigene Firma)",
        "Продавец (наша компания)",
    ),
    (
        "shipment_number",
        "Shipment number",
        "Lieferscheinnummer",
        "Номер отгрузки",
    ),
    ("shipped_at", "Shipped", "Versandt", "Отгружено"),
    ("sku", "SKU", "Artikelnummer", "Артикул"),
    ("source", "Source", "Quelle", "Источник"),
    ("stage", "Stage", "Phase", "Стадия"),
    ("status", "Status", "Status", "Статус"),
    ("stock", "Stock", "Bestand", "Остатки"),
    (
        "stock_warehouses",
        "Stock warehouses",
        "Lager für Bestände",
        "Склады остатков",
    ),
    ("subject", "Subject", "Betreff", "Тема"),
    ("subtotal", "Subtotal", "Zwischensumme", "Сумма без НДС"),
    ("team_id", "Team", "Team", "Команда"),
    ("text", "Text", "Text", "Текст"),
    ("title", "Title", "Titel", "Название"),
    ("total", "Total", "Gesamt", "Итого"),
    ("type", "Type", "Typ", "Тип"),
    ("unique", "Unique", "Eindeutig", "Уникальное"),
    ("unit", "Unit", "Einheit", "Единица"),
    ("unit_code", "Unit code", "Einheitencode", "Код единицы"),
    ("updated_at", "Updated", "Geändert", "Изменено"),
    ("user_id", "User", "Benutzer", "Пользователь"),
    ("value", "Value", "Wert", "Значение"),
    ("value_type", "Value type", "Werttyp", "Тип значения"),
    ("values", "Values", "Werte", "Значения"),
    ("vat_amount", "VAT", "USt.", "НДС"),
    (
        "vat_included",
        "VAT included",
        "USt. enthalten",
        "НДС в сумме",
    ),
    ("vat_rate", "VAT rate, %", "USt.-Satz, %", "Ставка НДС, %"),
    ("vat_total", "VAT total", "USt. gesamt", "Всего НДС"),
    ("warehouse_id", "Warehouse", "Lager", "Склад"),
    ("website", "Website", "Webseite", "Сайт"),
];

/// A field's name as the pages show it: the label of a built-in field in `lang`, or the name
/// made readable (`region_code` → "Region code").
pub fn field_name(lang: Lang, name: &str) -> String {
    if let Some((_, en, de, ru)) = FIELDS.iter().find(|(n, ..)| *n == name) {
        return match lang {
            Lang::En => en,
            Lang::De => de,
            Lang::Ru => ru,
        }
        .to_string();
    }
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A field as the pages show it: a custom field by its admin's label, else [`field_name`].
pub fn field(lang: Lang, def: &FieldDef) -> String {
    match &def.label {
        Some(label) if def.custom => label.clone(),
        _ => field_name(lang, &def.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::schema::{builtin, FieldType};
    use kontor_domain::Entity;

    #[test]
    fn every_built_in_field_has_a_label_in_each_language() {
        let mut missing = Vec::new();
        for e in Entity::ALL {
            for f in &builtin(e).fields {
                let mut names = vec![f.name.clone()];
                if let FieldType::Rows(cols) = &f.ty {
                    names.extend(cols.iter().map(|c| c.name.clone()));
                }
                for n in names {
                    if n != "id" && !FIELDS.iter().any(|(name, ..)| *name == n) {
                        missing.push(format!("{e}.{n}"));
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "no label for {missing:?}");
    }

    #[test]
    fn a_custom_field_is_called_what_its_admin_said() {
        let mut def = FieldDef::new("region_code", FieldType::Text { max: 10 });
        assert_eq!(field(Lang::De, &def), "Region code");
        def.custom = true;
        def.label = Some("Region".into());
        assert_eq!(field(Lang::Ru, &def), "Region");
        assert_eq!(field_name(Lang::Ru, "company_id"), "Компания");
        assert_eq!(field_name(Lang::De, "inn"), "INN");
    }
}
