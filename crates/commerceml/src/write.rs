//! The writer of order documents (site → 1C, the answer to `type=sale&mode=query`).
//!
//! Documents are written one by one as they are formatted (a small buffer is encoded and written
//! whenever it fills), in windows-1251 with `encoding="windows-1251"` (1C's classic choice) or
//! UTF-8 with a BOM. Characters windows-1251 cannot hold become numeric character references
//! (`&#128512;`), never `?`. Element order follows the CommerceML 2 schema for `Документ`
//! (`Ид, Номер, Дата, ХозОперация, Роль, Валюта, Курс, Сумма, Контрагенты, Время, СрокПлатежа,
//! Комментарий, Налоги, Скидки, Товары, ЗначенияРеквизитов`), with the 1C-Bitrix module's extras
//! (`НомерВерсии`, `ПометкаУдаления`, `Номер1С`, `Дата1С`) beside the fields they qualify.
//!
//! What the writer writes, [`crate::Reader`] reads back to equal documents (values are expected
//! trimmed and non-empty where optional; an empty optional string is left out).

use std::io::{self, Write};

use crate::items::{
    Address, Counterparty, Discount, Document, DocumentLine, PartyKind, Tax, TaxRate, Unit,
};
use crate::values::now_utc_cml;

/// The character encoding of written files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputEncoding {
    /// `windows-1251`: what 1C:Enterprise 2.x exchange and 1C-Bitrix send.
    #[default]
    Windows1251,
    /// UTF-8 with a byte order mark (1C refuses UTF-8 orders without one).
    Utf8Bom,
}

/// How [`write_documents`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    pub encoding: OutputEncoding,
    /// `ВерсияСхемы`; default `2.05`.
    pub schema_version: String,
    /// `ДатаФормирования` (`YYYY-MM-DDTHH:MM:SS`); when empty, the current UTC time.
    pub generated_at: String,
    /// Wrap documents in `<Контейнер>` as CML 3.1 (1C-Bitrix module ≥ 6.5): consecutive documents
    /// with the same [`Document::container`] share one container; documents without one get a
    /// container each.
    pub container: bool,
    /// A default namespace for the root, e.g. `urn:1C.ru:commerceml_3`.
    pub namespace: Option<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            encoding: OutputEncoding::Windows1251,
            schema_version: "2.05".into(),
            generated_at: String::new(),
            container: false,
            namespace: None,
        }
    }
}

/// Writes a `КоммерческаяИнформация` holding `docs`. An empty slice gives the root element alone
/// (start and end tag, as 1C-Bitrix answers when there are no orders).
pub fn write_documents(
    out: &mut impl Write,
    docs: &[Document],
    opts: &WriteOptions,
) -> io::Result<()> {
    let mut w = Out::new(out, opts.encoding);
    if opts.encoding == OutputEncoding::Utf8Bom {
        w.sink.write_all(b"\xEF\xBB\xBF")?;
        w.buf
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    } else {
        w.buf
            .push_str("<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n");
    }
    let generated_at = if opts.generated_at.trim().is_empty() {
        now_utc_cml()
    } else {
        opts.generated_at.clone()
    };
    w.buf.push_str("<КоммерческаяИнформация");
    if let Some(ns) = opts.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        w.attr("xmlns", ns);
    }
    w.attr("ВерсияСхемы", &opts.schema_version);
    w.attr("ДатаФормирования", &generated_at);
    w.buf.push_str(">\n");
    w.depth = 1;
    let mut i = 0;
    while i < docs.len() {
        if opts.container {
            let group = docs[i].container;
            let mut j = i + 1;
            while group.is_some() && j < docs.len() && docs[j].container == group {
                j += 1;
            }
            w.open("Контейнер");
            for doc in &docs[i..j] {
                document(&mut w, doc);
                w.flush_if_full()?;
            }
            w.close("Контейнер");
            i = j;
        } else {
            document(&mut w, &docs[i]);
            w.flush_if_full()?;
            i += 1;
        }
    }
    w.depth = 0;
    w.buf.push_str("</КоммерческаяИнформация>\n");
    w.finish()
}

fn document<W: Write>(w: &mut Out<'_, W>, d: &Document) {
    w.open("Документ");
    w.opt("Ид", &d.id);
    w.opt("НомерВерсии", &d.version);
    if d.deleted {
        w.leaf("ПометкаУдаления", "true");
    }
    w.opt("Номер", &d.number);
    w.opt("Номер1С", &d.number_1c);
    w.opt("Дата", &d.date);
    w.opt("Дата1С", &d.date_1c);
    w.opt("ХозОперация", &d.operation);
    w.opt("Роль", &d.role);
    w.opt("Валюта", &d.currency);
    w.opt("Курс", &d.rate);
    w.opt("Сумма", &d.sum);
    w.list("Контрагенты", None, &d.counterparties, counterparty);
    w.opt("Время", &d.time);
    w.opt("СрокПлатежа", &d.payment_due);
    w.opt("Комментарий", &d.comment);
    taxes(w, &d.taxes);
    discounts(w, &d.discounts);
    w.list("Товары", None, &d.lines, line);
    name_values(w, "ЗначенияРеквизитов", "ЗначениеРеквизита", &d.requisites);
    w.close("Документ");
}

fn line<W: Write>(w: &mut Out<'_, W>, l: &DocumentLine) {
    w.open("Товар");
    w.opt("Ид", &l.id);
    w.opt("ИдКаталога", &l.catalog_id);
    w.opt("Штрихкод", &l.barcode);
    w.opt("Артикул", &l.sku);
    w.opt("Наименование", &l.name);
    if let Some(u) = &l.unit {
        unit(w, u);
    }
    w.opt("ЦенаЗаЕдиницу", &l.price_per_unit);
    w.opt("Количество", &l.quantity);
    w.opt("Сумма", &l.sum);
    w.opt("Коэффициент", &l.ratio);
    tax_rates(w, &l.tax_rates);
    taxes(w, &l.taxes);
    discounts(w, &l.discounts);
    name_values(
        w,
        "ХарактеристикиТовара",
        "ХарактеристикаТовара",
        &l.characteristics,
    );
    name_values(w, "ЗначенияРеквизитов", "ЗначениеРеквизита", &l.requisites);
    w.close("Товар");
}

fn unit<W: Write>(w: &mut Out<'_, W>, u: &Unit) {
    w.indent();
    w.buf.push_str("<БазоваяЕдиница");
    for (name, value) in [
        ("Код", &u.code),
        ("НаименованиеПолное", &u.full_name),
        ("МеждународноеСокращение", &u.intl),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            w.attr(name, v);
        }
    }
    match u.name.as_deref().filter(|v| !v.is_empty()) {
        Some(name) => {
            w.buf.push('>');
            escape(&mut w.buf, name, false);
            w.buf.push_str("</БазоваяЕдиница>\n");
        }
        None => w.buf.push_str("/>\n"),
    }
}

fn counterparty<W: Write>(w: &mut Out<'_, W>, c: &Counterparty) {
    w.open("Контрагент");
    w.opt("Ид", &c.id);
    w.opt("НомерВерсии", &c.version);
    if c.deleted {
        w.leaf("ПометкаУдаления", "true");
    }
    w.opt("Наименование", &c.name);
    w.opt("Роль", &c.role);
    match c.kind {
        PartyKind::Legal => {
            w.leaf(
                "ОфициальноеНаименование",
                c.full_name.as_deref().unwrap_or(""),
            );
            if let Some(a) = &c.legal_address {
                address(w, "ЮридическийАдрес", a);
            }
            w.opt("ИНН", &c.inn);
            w.opt("КПП", &c.kpp);
            w.opt("ОКПО", &c.okpo);
        }
        PartyKind::Person | PartyKind::Unknown => {
            if c.kind == PartyKind::Person {
                w.leaf("ПолноеНаименование", c.full_name.as_deref().unwrap_or(""));
            } else {
                w.opt("ПолноеНаименование", &c.full_name);
            }
            w.opt("Фамилия", &c.last_name);
            w.opt("Имя", &c.first_name);
            w.opt("Отчество", &c.middle_name);
            w.opt("ИНН", &c.inn);
            w.opt("КПП", &c.kpp);
            w.opt("ОКПО", &c.okpo);
            if let Some(a) = &c.legal_address {
                address(w, "АдресРегистрации", a);
            }
        }
    }
    w.list(
        "РасчетныеСчета",
        Some("РасчетныйСчет"),
        &c.bank_accounts,
        |w, a| {
            w.opt("НомерСчета", &a.account);
            if a.bank_name.is_some() || a.bik.is_some() || a.corr_account.is_some() {
                w.open("Банк");
                w.opt("СчетКорреспондентский", &a.corr_account);
                w.opt("Наименование", &a.bank_name);
                w.opt("БИК", &a.bik);
                w.close("Банк");
            }
        },
    );
    w.opt("Комментарий", &c.comment);
    // The reader falls back to the legal address when `Адрес` is absent: leave out a copy.
    if let Some(a) = c
        .address
        .as_ref()
        .filter(|a| Some(*a) != c.legal_address.as_ref())
    {
        address(w, "Адрес", a);
    }
    w.list(
        "Контакты",
        Some("Контакт"),
        &c.contacts,
        |w, contact| {
            w.opt("Тип", &contact.kind);
            w.opt("Значение", &contact.value);
        },
    );
    w.list(
        "Представители",
        Some("Представитель"),
        &c.representatives,
        |w, r| {
            w.opt("Отношение", &r.relation);
            w.opt("Ид", &r.id);
            w.opt("Наименование", &r.name);
        },
    );
    w.close("Контрагент");
}

fn address<W: Write>(w: &mut Out<'_, W>, name: &str, a: &Address) {
    w.open(name);
    w.opt("Представление", &a.presentation);
    for (kind, value) in &a.fields {
        w.open("АдресноеПоле");
        w.leaf("Тип", kind);
        w.leaf("Значение", value);
        w.close("АдресноеПоле");
    }
    w.close(name);
}

fn taxes<W: Write>(w: &mut Out<'_, W>, taxes: &[Tax]) {
    w.list("Налоги", Some("Налог"), taxes, |w, t| {
        w.opt("Наименование", &t.name);
        if let Some(b) = t.included {
            w.leaf("УчтеноВСумме", bool_str(b));
        }
        w.opt("Сумма", &t.amount);
        w.opt("Ставка", &t.rate);
    });
}

fn tax_rates<W: Write>(w: &mut Out<'_, W>, rates: &[TaxRate]) {
    w.list(
        "СтавкиНалогов",
        Some("СтавкаНалога"),
        rates,
        |w, r| {
            w.opt("Наименование", &r.name);
            w.leaf("Ставка", &r.rate);
        },
    );
}

fn discounts<W: Write>(w: &mut Out<'_, W>, discounts: &[Discount]) {
    w.list("Скидки", Some("Скидка"), discounts, |w, d| {
        w.opt("Наименование", &d.name);
        w.opt("Сумма", &d.amount);
        w.opt("Процент", &d.percent);
        if let Some(b) = d.included {
            w.leaf("УчтеноВСумме", bool_str(b));
        }
    });
}

fn name_values<W: Write>(w: &mut Out<'_, W>, list: &str, item: &str, pairs: &[(String, String)]) {
    w.list(list, Some(item), pairs, |w, (name, value)| {
        w.leaf("Наименование", name);
        w.leaf("Значение", value);
    });
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Appends `s` escaped for XML text (`attr`: for a double-quoted attribute value). Characters XML
/// 1.0 cannot carry at all (most C0 controls) are dropped.
fn escape(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

const FLUSH_AT: usize = 32 * 1024;

/// An output: formats into a buffer and encodes it to the sink when it fills.
struct Out<'a, W: Write> {
    sink: &'a mut W,
    buf: String,
    encoder: Option<encoding_rs::Encoder>,
    bytes: Vec<u8>,
    depth: usize,
}

impl<'a, W: Write> Out<'a, W> {
    fn new(sink: &'a mut W, encoding: OutputEncoding) -> Self {
        let encoder = match encoding {
            OutputEncoding::Windows1251 => Some(encoding_rs::WINDOWS_1251.new_encoder()),
            OutputEncoding::Utf8Bom => None,
        };
        Out {
            sink,
            buf: String::with_capacity(FLUSH_AT + 4096),
            encoder,
            bytes: Vec::new(),
            depth: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.buf.push('\t');
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push_str(">\n");
    }

    /// `<outer>` with one element per item (each in `<inner>` when given, else the item writes
    /// its own); nothing at all for no items.
    fn list<T>(
        &mut self,
        outer: &str,
        inner: Option<&str>,
        items: &[T],
        mut each: impl FnMut(&mut Self, &T),
    ) {
        if items.is_empty() {
            return;
        }
        self.open(outer);
        for item in items {
            if let Some(tag) = inner {
                self.open(tag);
            }
            each(self, item);
            if let Some(tag) = inner {
                self.close(tag);
            }
        }
        self.close(outer);
    }

    fn leaf(&mut self, name: &str, value: &str) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        escape(&mut self.buf, value, false);
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push_str(">\n");
    }

    /// A leaf for a present, non-empty value.
    fn opt(&mut self, name: &str, value: &Option<String>) {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            self.leaf(name, v);
        }
    }

    fn attr(&mut self, name: &str, value: &str) {
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push_str("=\"");
        escape(&mut self.buf, value, true);
        self.buf.push('"');
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.write_buf(false)?;
        }
        Ok(())
    }

    fn write_buf(&mut self, last: bool) -> io::Result<()> {
        match self.encoder.as_mut() {
            None => self.sink.write_all(self.buf.as_bytes())?,
            Some(encoder) => {
                self.bytes.resize(FLUSH_AT, 0);
                let mut src = self.buf.as_str();
                loop {
                    let (result, read, written, _) =
                        encoder.encode_from_utf8(src, &mut self.bytes, last);
                    self.sink.write_all(&self.bytes[..written])?;
                    src = &src[read..];
                    if result == encoding_rs::CoderResult::InputEmpty {
                        break;
                    }
                }
            }
        }
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.write_buf(true)?;
        self.sink.flush()
    }
}
