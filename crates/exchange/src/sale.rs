//! The sale side of the exchange: invoices out to 1C as CommerceML documents, and what 1C
//! sends back — payments, cancellations, shipments and counterparties — applied to Kontor's
//! invoices, payments, companies and contacts.
//!
//! **Out.** Every invoice that is not a draft and changed since the position 1C last confirmed
//! (`mode=success`) is sent, each under one stable `Ид` (its 1C id if it came from 1C, else
//! Kontor's id). Changes 1C itself made (origin `exchange`, by the exchange user) do not count,
//! so a payment 1C reported is not sent straight back. The position is a journal sequence
//! number, kept on the 1C database's record, so an exchange interrupted between `query` and
//! `success` sends the same invoices again: none lost, none doubled.
//!
//! **In.** A document is matched to an invoice by `Ид` (Kontor id, then 1C id), then by its
//! number (or the site number 1C keeps in its comment); an unknown one is a per-record failure.
//! Payments (the payment documents of a CML 3.1 container, or the `Номер/Дата оплаты по 1С`
//! requisites, also in their older spellings) become payment records keyed by 1C ids, so a
//! re-import changes nothing; the invoice's paid state follows from them (partly paid when
//! they do not cover it). Counterparties are matched by 1C id, then INN+KPP, then created —
//! legal entities as companies, persons as contacts — never duplicated.

use crate::catalog::ImportError;
use crate::report::{Failure, RunReport};
use crate::values;
use kontor_commerceml as cml;
use kontor_core::{CoreError, CoreResult, Kontor, Mutation};
use kontor_domain::journal::Origin;
use kontor_domain::record::{new_id, Record};
use kontor_domain::{Actor, BatchId, DomainError, Entity};
use kontor_store::JournalQuery;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::io::BufRead;
use std::sync::Arc;

/// The invoices to send, and the journal position they were read at (what `success` commits).
pub struct Outgoing {
    pub documents: Vec<cml::Document>,
    pub head: i64,
}

fn text<'a>(r: &'a Record, field: &str) -> Option<&'a str> {
    r.data
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn owned(r: &Record, field: &str) -> Option<String> {
    text(r, field).map(str::to_string)
}

/// The `Ид` 1C knows a record by: its 1C id if it came from 1C (without this database's
/// prefix), else Kontor's id.
fn cml_id(r: &Record, prefix: &str) -> String {
    match owned(r, "external_id") {
        Some(ext) => ext.strip_prefix(prefix).map(str::to_string).unwrap_or(ext),
        None => r.id.clone(),
    }
}

/// Invoices changed since journal position `since` by anyone but `onec_user` in an exchange,
/// as documents for 1C.
/// Invoices whose status `statuses` does not name (when given) are left out — and, as the
/// position moves past them, are sent only when they change again.
pub async fn invoices_for_1c(
    kontor: &Kontor,
    database: &Record,
    since: i64,
) -> CoreResult<Outgoing> {
    let onec_user = text(database, "user_id").unwrap_or_default();
    let prefix = text(database, "id_prefix").unwrap_or_default();
    let statuses = crate::settings::invoice_statuses(database);
    let store = kontor.store.as_ref();
    let head = store.journal_head().await?;
    let mut changed = BTreeSet::new();
    for entity in [Entity::Invoices, Entity::Payments] {
        let mut cursor = since;
        loop {
            let page = store
                .journal(&JournalQuery {
                    entity: Some(entity),
                    record_id: None,
                    op: None,
                    actor: None,
                    origin: None,
                    batch: None,
                    from: None,
                    to: None,
                    scopes: None,
                    cursor: Some(cursor),
                    descending: false,
                    limit: 1000,
                })
                .await?;
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            for e in page.iter().filter(|e| e.seq <= head) {
                if e.origin == Origin::Exchange && e.actor == onec_user {
                    continue;
                }
                if entity == Entity::Invoices {
                    changed.insert(e.record_id.clone());
                } else {
                    for image in [&e.before, &e.after].into_iter().flatten() {
                        if let Some(inv) = image.get("invoice_id").and_then(Value::as_str) {
                            changed.insert(inv.to_string());
                        }
                    }
                }
            }
            if cursor >= head || page.len() < 1000 {
                break;
            }
        }
    }
    let mut documents = Vec::new();
    for id in changed {
        let Some(invoice) = store.get(Entity::Invoices, &id).await? else {
            continue;
        };
        // Deleted invoices and drafts are not 1C's business (cancel an invoice to tell 1C).
        let status = text(&invoice, "status").unwrap_or("draft");
        if invoice.is_deleted()
            || status == "draft"
            || statuses
                .as_ref()
                .is_some_and(|list| !list.iter().any(|s| s == status))
        {
            continue;
        }
        documents.push(document_of(kontor, &invoice, prefix).await?);
    }
    Ok(Outgoing { documents, head })
}

/// One invoice as a CommerceML order document (`Заказ товара`, as 1C's site exchange expects).
async fn document_of(kontor: &Kontor, invoice: &Record, prefix: &str) -> CoreResult<cml::Document> {
    let store = kontor.store.as_ref();
    let mut counterparties = Vec::new();
    if let Some(company_id) = text(invoice, "company_id") {
        if let Some(company) = store.get(Entity::Companies, company_id).await? {
            counterparties.push(company_party(&company, prefix));
        }
    } else if let Some(contact_id) = text(invoice, "contact_id") {
        if let Some(contact) = store.get(Entity::Contacts, contact_id).await? {
            counterparties.push(person_party(&contact, prefix));
        }
    }
    let vat_included = invoice.data.get("vat_included") == Some(&Value::Bool(true));
    let mut lines = Vec::new();
    for line in invoice
        .data
        .get("lines")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| line.get(k).and_then(Value::as_str).map(str::to_string);
        let product = match line.get("product_id").and_then(Value::as_str) {
            Some(p) => store.get(Entity::Products, p).await?,
            None => None,
        };
        let rate = s("vat_rate").unwrap_or_else(|| "0".into());
        lines.push(cml::DocumentLine {
            id: product.as_ref().map(|p| cml_id(p, prefix)),
            name: s("description").or_else(|| product.as_ref().and_then(|p| owned(p, "name"))),
            sku: product.as_ref().and_then(|p| owned(p, "sku")),
            unit: s("unit")
                .or_else(|| product.as_ref().and_then(|p| owned(p, "unit")))
                .map(|name| cml::Unit {
                    code: product.as_ref().and_then(|p| owned(p, "unit_code")),
                    name: Some(name),
                    ..Default::default()
                }),
            ratio: Some("1".into()),
            price_per_unit: s("price"),
            quantity: s("quantity"),
            sum: s("total"),
            tax_rates: vec![cml::TaxRate {
                name: Some("НДС".into()),
                rate: rate.clone(),
            }],
            taxes: vec![cml::Tax {
                name: Some("НДС".into()),
                included: Some(vat_included),
                amount: s("vat_amount"),
                rate: Some(rate),
            }],
            requisites: vec![(
                "ТипНоменклатуры".into(),
                match product.as_ref().and_then(|p| text(p, "kind")) {
                    Some("service") => "Услуга".into(),
                    _ => "Товар".into(),
                },
            )],
            ..Default::default()
        });
    }
    let created = invoice.created_at.format("%Y-%m-%d").to_string();
    let status = text(invoice, "status").unwrap_or("draft");
    let mut requisites = vec![
        ("Заказ оплачен".to_string(), (status == "paid").to_string()),
        ("Отменен".to_string(), (status == "cancelled").to_string()),
        ("Статус заказа".to_string(), status_name(status).to_string()),
    ];
    if let Some(paid_at) = owned(invoice, "paid_at") {
        requisites.push(("Дата оплаты".into(), paid_at));
    }
    Ok(cml::Document {
        id: Some(cml_id(invoice, prefix)),
        number: Some(owned(invoice, "number").unwrap_or_else(|| invoice.id.clone())),
        date: Some(owned(invoice, "issue_date").unwrap_or(created)),
        time: Some(invoice.created_at.format("%H:%M:%S").to_string()),
        operation: Some("Заказ товара".into()),
        role: Some("Продавец".into()),
        currency: owned(invoice, "currency"),
        rate: Some("1".into()),
        sum: owned(invoice, "total"),
        counterparties,
        payment_due: owned(invoice, "due_date"),
        comment: owned(invoice, "notes"),
        lines,
        taxes: vec![cml::Tax {
            name: Some("НДС".into()),
            included: Some(vat_included),
            amount: owned(invoice, "vat_total"),
            rate: None,
        }],
        requisites,
        ..Default::default()
    })
}

fn status_name(status: &str) -> &'static str {
    match status {
        "sent" => "Выставлен, ожидается оплата",
        "partly_paid" => "Оплачен частично",
        "paid" => "Оплачен",
        "cancelled" => "Отменен",
        _ => "Черновик",
    }
}

fn company_party(c: &Record, prefix: &str) -> cml::Counterparty {
    let mut contacts = Vec::new();
    if let Some(e) = owned(c, "email") {
        contacts.push(cml::Contact {
            kind: Some("Почта".into()),
            value: Some(e),
        });
    }
    if let Some(p) = owned(c, "phone") {
        contacts.push(cml::Contact {
            kind: Some("Телефон рабочий".into()),
            value: Some(p),
        });
    }
    let address = c
        .data
        .get("addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .map(|a| {
            let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
            cml::Address {
                presentation: s("text"),
                fields: [
                    ("Почтовый индекс", s("postal_code")),
                    ("Страна", s("country")),
                    ("Город", s("city")),
                ]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.filter(|v| !v.is_empty())?)))
                .collect(),
            }
        });
    let bank_accounts = c
        .data
        .get("bank_accounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| {
            let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
            cml::BankAccount {
                account: s("account"),
                bik: s("bik"),
                bank_name: s("bank_name"),
                corr_account: s("corr_account"),
            }
        })
        .collect();
    cml::Counterparty {
        id: Some(cml_id(c, prefix)),
        name: owned(c, "name"),
        full_name: owned(c, "legal_name").or_else(|| owned(c, "name")),
        kind: cml::PartyKind::Legal,
        inn: owned(c, "inn"),
        kpp: owned(c, "kpp"),
        role: Some("Покупатель".into()),
        legal_address: address.clone(),
        address,
        contacts,
        bank_accounts,
        ..Default::default()
    }
}

fn person_party(p: &Record, prefix: &str) -> cml::Counterparty {
    let name = [
        owned(p, "last_name"),
        owned(p, "first_name"),
        owned(p, "middle_name"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let mut contacts = Vec::new();
    if let Some(e) = owned(p, "email") {
        contacts.push(cml::Contact {
            kind: Some("Почта".into()),
            value: Some(e),
        });
    }
    if let Some(ph) = owned(p, "phone") {
        contacts.push(cml::Contact {
            kind: Some("Телефон мобильный".into()),
            value: Some(ph),
        });
    }
    cml::Counterparty {
        id: Some(cml_id(p, prefix)),
        name: Some(name.clone()),
        full_name: Some(name),
        kind: cml::PartyKind::Person,
        last_name: owned(p, "last_name"),
        first_name: owned(p, "first_name"),
        middle_name: owned(p, "middle_name"),
        role: Some("Покупатель".into()),
        contacts,
        ..Default::default()
    }
}

/// The 1C database record of an exchange user, made on first use. Its id and how far
/// invoices were confirmed. (This bookkeeping is journaled with origin `system`, so the
/// exchange's own history shows only what 1C changed.)
pub async fn onec_database(kontor: &Kontor, user: &Record) -> CoreResult<Record> {
    if let Some(r) = kontor
        .store
        .find_unique(Entity::OnecDatabases, "user_id", &user.id)
        .await?
    {
        return Ok(r);
    }
    let name = text(user, "name").unwrap_or("1C").to_string();
    let created = kontor
        .write(
            &Actor::system(),
            Origin::System,
            vec![Mutation::Create {
                entity: Entity::OnecDatabases,
                input: json!({"name": name, "user_id": user.id}),
            }],
        )
        .await;
    match created {
        // Another node made it at the same moment.
        Ok(_) | Err(CoreError::Domain(kontor_domain::DomainError::Duplicate { .. })) => {}
        Err(e) => return Err(e),
    }
    kontor
        .store
        .find_unique(Entity::OnecDatabases, "user_id", &user.id)
        .await?
        .ok_or_else(|| {
            CoreError::Domain(kontor_domain::DomainError::forbidden(
                "the 1C database record of this exchange user cannot be made",
            ))
        })
}

/// Records that 1C confirmed the invoices read at `head` (`mode=success`).
pub async fn confirm_sent(kontor: &Kontor, database_id: &str, head: i64) -> CoreResult<()> {
    kontor
        .write_trusted(
            &Actor::system(),
            Origin::System,
            vec![Mutation::Update {
                entity: Entity::OnecDatabases,
                id: database_id.to_string(),
                input: json!({
                    "invoices_sent_seq": head,
                    "invoices_sent_at": kontor_domain::time::format(kontor_domain::time::now()),
                }),
            }],
        )
        .await
        .map(drop)
}

/// Where invoices were last confirmed, from the 1C database record.
pub fn sent_seq(database: &Record) -> i64 {
    database
        .data
        .get("invoices_sent_seq")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// One run of documents and counterparties from 1C, over any number of files.
pub struct SaleImport {
    kontor: Arc<Kontor>,
    actor: Actor,
    batch: BatchId,
    report: RunReport,
    file: String,
    /// Documents of the CML 3.1 container being read (an order with its payments).
    container: Vec<(u64, cml::Document)>,
    container_index: Option<u32>,
    /// This 1C database's id prefix (see [`crate::settings`]).
    prefix: String,
}

/// Operations of payment documents (`Выплата безналичных денег`, `Оплата…`).
fn is_payment(doc: &cml::Document) -> bool {
    let op = doc.operation.as_deref().unwrap_or("").to_lowercase();
    op.contains("денег") || op.contains("оплат")
}

fn requisite<'a>(doc: &'a cml::Document, names: &[&str]) -> Option<&'a str> {
    doc.requisites
        .iter()
        .find(|(n, _)| names.iter().any(|w| n.trim().eq_ignore_ascii_case(w)))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn flag(doc: &cml::Document, names: &[&str]) -> bool {
    requisite(doc, names).and_then(cml::parse_bool) == Some(true)
}

fn date_of(raw: Option<&str>) -> Option<String> {
    let d = cml::parse_datetime(raw?)?;
    (d.year > 1).then(|| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
}

impl SaleImport {
    pub fn new(kontor: Arc<Kontor>, actor: Actor) -> SaleImport {
        SaleImport::in_batch(kontor, actor, BatchId::new())
    }

    /// A run that journals under `batch` (shared with a catalog run of the same exchange).
    pub fn in_batch(kontor: Arc<Kontor>, actor: Actor, batch: BatchId) -> SaleImport {
        SaleImport {
            kontor,
            actor,
            batch,
            report: RunReport {
                batch: batch.to_string(),
                ..RunReport::default()
            },
            file: String::new(),
            container: Vec::new(),
            container_index: None,
            prefix: String::new(),
        }
    }

    /// Keeps this 1C database's ids apart from other databases' (its settings' prefix).
    pub fn with_prefix(mut self, prefix: &str) -> SaleImport {
        self.prefix = prefix.to_string();
        self
    }

    pub fn report(&self) -> &RunReport {
        &self.report
    }

    pub fn finish(self) -> RunReport {
        self.report
    }

    /// Reads one file of documents and counterparties and applies it.
    pub async fn import_file(
        &mut self,
        name: &str,
        input: impl BufRead,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(), ImportError> {
        let (mut reader, read_error) =
            crate::catalog::begin_file(&mut self.report, &mut self.file, name, input)?;
        loop {
            let located = match reader.next_item() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    self.flush_container().await?;
                    return Err(read_error(e));
                }
            };
            match located.item {
                cml::Item::Counterparty(c) => {
                    self.counterparty(located.line, &c).await?;
                }
                cml::Item::Document(d) => {
                    if d.container.is_none() || d.container != self.container_index {
                        self.flush_container().await?;
                    }
                    self.container_index = d.container;
                    self.container.push((located.line, d));
                    if self.container_index.is_none() {
                        self.flush_container().await?;
                    }
                }
                _ => {}
            }
            progress(reader.bytes_read());
        }
        self.flush_container().await?;
        progress(reader.bytes_read());
        Ok(())
    }

    /// Applies the documents of one container (or one bare document): each order with the
    /// payments beside it.
    async fn flush_container(&mut self) -> Result<(), ImportError> {
        let docs = std::mem::take(&mut self.container);
        self.container_index = None;
        let (payments, orders): (Vec<_>, Vec<_>) =
            docs.into_iter().partition(|(_, d)| is_payment(d));
        if orders.is_empty() {
            for (line, p) in &payments {
                self.fail(
                    Entity::Payments,
                    p.id.as_deref().unwrap_or(""),
                    *line,
                    "a payment document without the order it pays (send it in the order's container)".into(),
                );
            }
        }
        for (line, order) in &orders {
            self.order(*line, order, &payments).await?;
        }
        Ok(())
    }

    fn fail(&mut self, entity: Entity, record: &str, line: u64, message: String) {
        self.report.fail(
            entity.as_str(),
            Failure {
                file: self.file.clone(),
                line,
                record: record.to_string(),
                message,
            },
        );
    }

    /// Writes mutations under the run's batch; which records it journaled.
    async fn write(&self, mutations: Vec<Mutation>) -> CoreResult<BTreeSet<String>> {
        if mutations.is_empty() {
            return Ok(BTreeSet::new());
        }
        let applied = self
            .kontor
            .write_in_batch(&self.actor, Origin::Exchange, self.batch, &mutations)
            .await?;
        Ok(applied
            .entries
            .iter()
            .map(|e| e.record_id.clone())
            .collect())
    }

    /// Counts a record the write path was asked to change.
    fn count(&mut self, entity: Entity, id: &str, created: bool, touched: &BTreeSet<String>) {
        let c = self.report.counts_mut(entity.as_str());
        if created {
            c.created += 1;
        } else if touched.contains(id) {
            c.updated += 1;
        } else {
            c.unchanged += 1;
        }
    }

    async fn find_invoice(&self, doc: &cml::Document) -> CoreResult<Option<Record>> {
        let store = self.kontor.store.as_ref();
        if let Some(id) = doc.id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(kid) = kontor_domain::record::parse_id(id) {
                if let Some(r) = store.get(Entity::Invoices, &kid).await? {
                    if !r.is_deleted() {
                        return Ok(Some(r));
                    }
                }
            }
            if let Some(r) = store
                .find_unique(Entity::Invoices, "external_id", id)
                .await?
            {
                return Ok(Some(r));
            }
        }
        // 1C keeps the site's number as the document number, and in its comment.
        let site_number = doc.comment.as_deref().and_then(|c| {
            let rest = c.split("Номер документа на сайте:").nth(1)?;
            Some(rest.split(']').next()?.trim().to_string())
        });
        for number in [doc.number.clone(), site_number, doc.id.clone()]
            .into_iter()
            .flatten()
        {
            let number = number.trim().to_lowercase();
            if number.is_empty() {
                continue;
            }
            if let Some(r) = store
                .find_unique(Entity::Invoices, "number", &number)
                .await?
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// An order document: its buyer, then the invoice's state and payments.
    async fn order(
        &mut self,
        line: u64,
        doc: &cml::Document,
        payments: &[(u64, cml::Document)],
    ) -> Result<(), ImportError> {
        for c in doc.counterparties.iter().filter(|c| {
            c.role
                .as_deref()
                .is_none_or(|r| matches!(r.trim(), "Покупатель" | "Плательщик" | "Получатель"))
        }) {
            self.counterparty(line, c).await?;
        }
        let doc_id = doc.id.clone().unwrap_or_default();
        let Some(invoice) = self.find_invoice(doc).await? else {
            self.fail(
                Entity::Invoices,
                &doc_id,
                line,
                format!(
                    "no invoice in Kontor has Ид or number {} (document {} of {})",
                    doc.id.as_deref().unwrap_or("?"),
                    doc.number.as_deref().unwrap_or("?"),
                    doc.date.as_deref().unwrap_or("?")
                ),
            );
            return Ok(());
        };
        let mut mutations = Vec::new();
        let mut fields = Map::new();
        if let Some(n) = doc
            .number_1c
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            fields.insert("number_1c".into(), json!(values::clip(n, 64)));
        }
        if let Some(n) = requisite(doc, &["Номер отгрузки по 1С"]) {
            fields.insert("shipment_number".into(), json!(values::clip(n, 64)));
        }
        let shipped = date_of(requisite(doc, &["Дата отгрузки по 1С", "Дата отгрузки"]));
        if shipped.is_some() || flag(doc, &["Отгружен"]) {
            fields.insert(
                "shipped_at".into(),
                json!(shipped
                    .or_else(|| owned(&invoice, "shipped_at"))
                    .unwrap_or_else(|| {
                        kontor_domain::time::now().format("%Y-%m-%d").to_string()
                    })),
            );
        }
        let status = text(&invoice, "status").unwrap_or("draft");
        let cancelled = flag(doc, &["Отменен"]) || doc.deleted;
        if cancelled && status != "cancelled" {
            fields.insert("status".into(), json!("cancelled"));
        } else if !cancelled && status == "draft" && flag(doc, &["Проведен"]) {
            fields.insert("status".into(), json!("sent"));
        }
        if !fields.is_empty() {
            mutations.push(Mutation::Update {
                entity: Entity::Invoices,
                id: invoice.id.clone(),
                input: Value::Object(fields),
            });
        }
        // Payments: the container's payment documents, else the order's payment requisites.
        let mut planned: Vec<(String, Map<String, Value>)> = Vec::new();
        for (_, p) in payments {
            let Some(pid) =
                p.id.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("{}{s}", self.prefix))
            else {
                continue;
            };
            let mut m = Map::new();
            m.insert(
                "amount".into(),
                json!(p.sum.as_deref().and_then(values::decimal)),
            );
            m.insert("date".into(), json!(date_of(p.date.as_deref())));
            m.insert(
                "reference".into(),
                json!(p
                    .number_1c
                    .clone()
                    .or_else(|| p.number.clone())
                    .map(|n| values::clip(n.trim(), 255))),
            );
            let op = p.operation.as_deref().unwrap_or("").to_lowercase();
            m.insert(
                "method".into(),
                json!(if op.contains("наличн") && !op.contains("безналичн") {
                    "cash"
                } else {
                    "bank_transfer"
                }),
            );
            planned.push((pid, m));
        }
        let pay_number = requisite(doc, &["Номер оплаты по 1С", "Номер платежного документа"]);
        let pay_date = requisite(doc, &["Дата оплаты по 1С", "Дата оплаты"]);
        if payments.is_empty() && (pay_number.is_some() || pay_date.is_some()) {
            let mut m = Map::new();
            let amount = doc
                .sum
                .as_deref()
                .and_then(values::decimal)
                .or_else(|| owned(&invoice, "total"));
            m.insert("amount".into(), json!(amount));
            m.insert("date".into(), json!(date_of(pay_date)));
            m.insert(
                "reference".into(),
                json!(pay_number.map(|n| values::clip(n, 255))),
            );
            planned.push((
                format!("{}{}#payment", self.prefix, cml_id(&invoice, &self.prefix)),
                m,
            ));
        }
        let mut creates = Vec::new();
        for (ext, mut m) in planned {
            m.retain(|_, v| !v.is_null());
            let existing = self
                .kontor
                .store
                .find_unique(Entity::Payments, "external_id", &ext)
                .await
                .map_err(CoreError::from)?;
            match existing {
                Some(p) => {
                    m.remove("method");
                    mutations.push(Mutation::Update {
                        entity: Entity::Payments,
                        id: p.id,
                        input: Value::Object(m),
                    });
                }
                None => {
                    let id = new_id();
                    m.insert("invoice_id".into(), json!(invoice.id));
                    m.insert("external_id".into(), json!(ext));
                    creates.push(id.clone());
                    mutations.push(Mutation::CreateAs {
                        entity: Entity::Payments,
                        id,
                        input: Value::Object(m),
                    });
                }
            }
        }
        let targets: Vec<(Entity, String, bool)> = mutations
            .iter()
            .filter_map(|m| match m {
                Mutation::Update { entity, id, .. } => Some((*entity, id.clone(), false)),
                Mutation::CreateAs { entity, id, .. } => Some((*entity, id.clone(), true)),
                _ => None,
            })
            .collect();
        match self.write(mutations).await {
            Ok(touched) => {
                if !targets.iter().any(|(e, _, _)| *e == Entity::Invoices) {
                    self.report.counts_mut(Entity::Invoices.as_str()).unchanged += 1;
                }
                for (entity, id, created) in targets {
                    self.count(entity, &id, created, &touched);
                }
            }
            Err(CoreError::Domain(e)) => {
                self.fail(Entity::Invoices, &doc_id, line, e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// A counterparty: matched by 1C id, then INN+KPP (legal entities), else created; never
    /// duplicated. What Kontor already holds is not overwritten; a match by INN+KPP learns
    /// the 1C id.
    async fn counterparty(&mut self, line: u64, c: &cml::Counterparty) -> Result<(), ImportError> {
        let raw_id = c.id.as_deref().map(str::trim).unwrap_or("");
        let ext = if raw_id.is_empty() {
            String::new()
        } else {
            format!("{}{raw_id}", self.prefix)
        };
        let inn = c.inn.as_deref().map(str::trim).unwrap_or("").to_string();
        let kpp = c.kpp.as_deref().map(str::trim).unwrap_or("").to_string();
        if ext.is_empty() && inn.is_empty() {
            return Ok(());
        }
        let person = c.kind == cml::PartyKind::Person;
        let entity = if person {
            Entity::Contacts
        } else {
            Entity::Companies
        };
        let store = self.kontor.store.as_ref();
        let mut found = if ext.is_empty() {
            None
        } else {
            store
                .find_unique(entity, "external_id", &ext)
                .await
                .map_err(CoreError::from)?
        };
        if found.is_none() && !person && !inn.is_empty() {
            found = store
                .find_unique(Entity::Companies, "inn+kpp", &format!("{inn}|{kpp}"))
                .await
                .map_err(CoreError::from)?;
        }
        // 1C-Bitrix writes a buyer's id as `<user id>#<login>#<name>`, sometimes with the
        // name nowhere else.
        let bitrix_name = raw_id.splitn(3, '#').nth(2).map(str::to_string);
        let name = [&c.name, &c.full_name, &bitrix_name]
            .into_iter()
            .flatten()
            .map(|n| n.trim())
            .find(|n| !n.is_empty())
            .unwrap_or_default()
            .to_string();
        let (mutation, id, created) = match found {
            Some(r) => {
                if text(&r, "external_id").is_some() || ext.is_empty() {
                    self.report.counts_mut(entity.as_str()).unchanged += 1;
                    return Ok(());
                }
                (
                    Mutation::Update {
                        entity,
                        id: r.id.clone(),
                        input: json!({"external_id": ext}),
                    },
                    r.id,
                    false,
                )
            }
            None => {
                let mut m = Map::new();
                let email = c
                    .contacts
                    .iter()
                    .find(|k| k.kind.as_deref().is_some_and(|t| t.contains("очт")))
                    .and_then(|k| k.value.clone());
                let phone = c
                    .contacts
                    .iter()
                    .find(|k| k.kind.as_deref().is_some_and(|t| t.contains("елефон")))
                    .and_then(|k| k.value.clone());
                if person {
                    let last = c.last_name.clone().filter(|s| !s.trim().is_empty());
                    let first = c.first_name.clone().filter(|s| !s.trim().is_empty());
                    let last = match (&last, &first) {
                        (None, None) => Some(values::clip(&name, 255)),
                        _ => last,
                    };
                    m.insert("last_name".into(), json!(last));
                    m.insert("first_name".into(), json!(first));
                    m.insert("middle_name".into(), json!(c.middle_name));
                } else {
                    m.insert("name".into(), json!(values::clip(&name, 255)));
                    m.insert(
                        "legal_name".into(),
                        json!(c.full_name.as_deref().map(|n| values::clip(n.trim(), 255))),
                    );
                    if !inn.is_empty() {
                        m.insert("inn".into(), json!(inn));
                    }
                    if !kpp.is_empty() {
                        m.insert("kpp".into(), json!(kpp));
                    }
                    let address = c.address.as_ref().or(c.legal_address.as_ref());
                    if let Some(text) = address
                        .and_then(|a| a.presentation.as_deref())
                        .map(str::trim)
                        .filter(|t| !t.is_empty() && *t != "Адрес")
                    {
                        m.insert(
                            "addresses".into(),
                            json!([{"kind": "legal", "text": values::clip(text, 1000)}]),
                        );
                    }
                }
                if let Some(e) = email {
                    m.insert("email".into(), json!(e.trim()));
                }
                if let Some(p) = phone {
                    m.insert("phone".into(), json!(p.trim()));
                }
                if !ext.is_empty() {
                    m.insert("external_id".into(), json!(ext));
                }
                m.retain(|_, v| !v.is_null());
                let id = new_id();
                (
                    Mutation::CreateAs {
                        entity,
                        id: id.clone(),
                        input: Value::Object(m),
                    },
                    id,
                    true,
                )
            }
        };
        let mut outcome = self.write(vec![mutation.clone()]).await;
        // A tax id Kontor cannot take (a foreign one, a typo in 1C) does not lose the
        // counterparty: it is kept without it, the number in its notes, still matched by Ид.
        if let (Err(CoreError::Domain(DomainError::Invalid(f))), Mutation::CreateAs { input, .. }) =
            (&outcome, &mutation)
        {
            if matches!(f.field.as_str(), "inn" | "kpp") && !ext.is_empty() {
                let mut input = input.clone();
                if let Some(m) = input.as_object_mut() {
                    m.remove("inn");
                    m.remove("kpp");
                    m.insert(
                        "notes".into(),
                        json!(format!("1C sent INN {inn}, KPP {kpp}: {}", f.message)),
                    );
                }
                outcome = self
                    .write(vec![Mutation::CreateAs {
                        entity,
                        id: id.clone(),
                        input,
                    }])
                    .await;
            }
        }
        match outcome {
            Ok(touched) => self.count(entity, &id, created, &touched),
            Err(CoreError::Domain(e)) => {
                let record = if ext.is_empty() { inn } else { ext };
                self.fail(entity, &record, line, e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
