//! Catalog in: CommerceML items (groups, properties, price types, warehouses, products, offers
//! with prices and stock) turned into mutations of the one write path.
//!
//! Records are matched by their 1C id (`external_id`), so a re-import finds what it made
//! before: an unchanged record costs no write and no journal entry (the write path drops
//! updates that change nothing), a deletion mark moves the record to the recycle bin, and a
//! record 1C sends again after deleting it comes back from the bin. Mutations go in chunks, all
//! journaled under the run's one batch (origin `exchange`), so a whole run is undone as one. A
//! chunk that fails is retried record by record, so one bad record fails alone and is reported
//! with its file, line and 1C id.

use crate::known::{self, Known, KnownIndex};
use crate::report::{Failure, RunReport};
use crate::values;
use kontor_commerceml as cml;
use kontor_core::{Kontor, Mutation};
use kontor_domain::journal::Origin;
use kontor_domain::record::new_id;
use kontor_domain::{Actor, BatchId, Entity};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;

/// Starts reading one file of a run: the report lists it, the run's failures will name it.
/// Returns the reader and how its errors become the run's.
pub(crate) fn begin_file<'n, R: BufRead>(
    report: &mut RunReport,
    current: &mut String,
    name: &'n str,
    input: R,
) -> Result<(cml::Reader<R>, impl Fn(cml::ReadError) -> ImportError + 'n), ImportError> {
    *current = name.to_string();
    report.files.push(name.to_string());
    let read_error = move |source| ImportError::Read {
        file: name.to_string(),
        source,
    };
    let reader = cml::Reader::new(input).map_err(&read_error)?;
    Ok((reader, read_error))
}

/// What a full upload (`СодержитТолькоИзменения="false"`) does with records of this 1C database
/// that it no longer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Leave them as they are.
    Keep,
    /// Mark them inactive (`active: false`); they stay in lists and on invoices.
    #[default]
    Deactivate,
    /// Move them to the recycle bin.
    Delete,
}

/// What to do when a record cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Report it and go on with the next record.
    #[default]
    Skip,
    /// Report it and stop the run (what was applied before stays, in the run's batch).
    Stop,
}

/// How a run treats what its 1C database sends (the settings of its `onec_databases` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub missing: Missing,
    pub on_error: OnError,
    /// Records per transaction.
    pub chunk: usize,
    /// Put before every 1C id of this database, so several 1C databases never share a record.
    pub id_prefix: String,
    /// The price type (1C id) whose price becomes the product's price; unset: the price when
    /// an offer has only one.
    pub price_type: Option<String>,
    /// The warehouses (1C ids) whose stock counts in an offer's quantity; unset: the quantity
    /// 1C sends.
    pub warehouses: Option<Vec<String>>,
    /// Property (1C id) → product custom field that gets its value.
    pub property_fields: BTreeMap<String, String>,
    /// May the run create records, or only update those Kontor has?
    pub create: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            missing: Missing::default(),
            on_error: OnError::default(),
            chunk: 1000,
            id_prefix: String::new(),
            price_type: None,
            warehouses: None,
            property_fields: BTreeMap::new(),
            create: true,
        }
    }
}

/// The run could not go on (as opposed to a record that failed, which is in the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: cml::ReadError,
    },
    /// The file could not be had (not uploaded, not unpacked, not readable).
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{0}")]
    Store(#[from] kontor_core::CoreError),
    /// Something that should not happen did (a task writing a chunk panicked).
    #[error("the import stopped on an internal error: {0}")]
    Internal(String),
    #[error("stopped at the first failed record ({file}, line {line}, {record}): {message}")]
    Stopped {
        file: String,
        line: u64,
        record: String,
        message: String,
    },
}

/// How a planned change is counted once applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Create,
    /// Counted as updated if the write path journaled it, else unchanged.
    Update,
    Delete,
    /// A record that comes back from the bin (and may change on the way).
    Revive,
    Deactivate,
    /// A change that goes with another record's (a product's price from its offer): not
    /// counted on its own.
    Side,
}

/// The mutations of one record from the file.
struct Change {
    entity: Entity,
    ext: String,
    id: String,
    line: u64,
    planned: Planned,
    mutations: Vec<Mutation>,
}

/// A chunk of changes a task is writing.
struct InFlight {
    changes: Vec<Change>,
    /// The changes' mutations in order; change `i` owns `mutations[ends[i-1]..ends[i]]`.
    mutations: Arc<Vec<Mutation>>,
    ends: Vec<usize>,
    task: tokio::task::JoinHandle<Result<HashSet<String>, kontor_core::CoreError>>,
}

/// Writes mutations under the run's batch; returns the ids of the records journaled.
async fn write_chunk(
    kontor: &Kontor,
    actor: &Actor,
    batch: BatchId,
    mutations: &[Mutation],
) -> Result<HashSet<String>, kontor_core::CoreError> {
    let applied = kontor
        .write_in_batch(actor, Origin::Exchange, batch, mutations)
        .await?;
    Ok(applied.entries.into_iter().map(|e| e.record_id).collect())
}

/// One catalog import run over any number of files.
pub struct CatalogImport {
    kontor: Arc<Kontor>,
    actor: Actor,
    options: Options,
    batch: BatchId,
    known: KnownIndex,
    /// The value lists of list properties: property 1C id → value 1C id → value.
    property_values: HashMap<String, HashMap<String, String>>,
    pending: Vec<Change>,
    /// The chunk sent before `pending`, while it is written.
    in_flight: Option<InFlight>,
    /// Records this run's files marked deleted.
    marked_deleted: HashSet<(Entity, String)>,
    /// Entities a file of this run sent in full: what the run does not list is missing.
    full: HashSet<Entity>,
    /// Products whose price an offer of this run set.
    priced: HashSet<[u8; 16]>,
    file: String,
    report: RunReport,
}

impl CatalogImport {
    /// Starts a run: learns which catalog records of 1C Kontor already holds.
    pub async fn new(
        kontor: Arc<Kontor>,
        actor: Actor,
        options: Options,
    ) -> Result<CatalogImport, ImportError> {
        // Only ids are loaded (a compact index), except the few properties, whose value
        // lists products refer to.
        let known = KnownIndex::load(kontor.store.as_ref(), &Entity::CATALOG)
            .await
            .map_err(kontor_core::CoreError::from)?;
        let mut property_values = HashMap::new();
        for rec in kontor
            .store
            .all_records(Entity::Properties)
            .await
            .map_err(kontor_core::CoreError::from)?
        {
            let Some(ext) = rec.data.get("external_id").and_then(Value::as_str) else {
                continue;
            };
            if known
                .get(Entity::Properties, ext)
                .is_some_and(|k| k.id() == rec.id)
            {
                property_values.insert(ext.to_string(), value_list(&rec.data));
            }
        }
        let batch = BatchId::new();
        Ok(CatalogImport {
            kontor,
            actor,
            options,
            batch,
            known,
            property_values,
            pending: Vec::new(),
            in_flight: None,
            marked_deleted: HashSet::new(),
            full: HashSet::new(),
            priced: HashSet::new(),
            file: String::new(),
            report: RunReport {
                batch: batch.to_string(),
                ..RunReport::default()
            },
        })
    }

    /// Reads one file and applies what it holds. `progress` gets the bytes read so far.
    pub async fn import_file(
        &mut self,
        name: &str,
        input: impl BufRead,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(), ImportError> {
        let (mut reader, read_error) = begin_file(&mut self.report, &mut self.file, name, input)?;
        loop {
            let next = reader.next_item().map_err(&read_error);
            let located = match next {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    // What came before the damage is applied; the file is reported as failed,
                    // and a full upload that did not arrive whole deactivates nothing.
                    self.flush().await?;
                    self.full.clear();
                    return Err(e);
                }
            };
            if let Err(e) = self.item(located.line, located.item).await {
                // A failure in the chunk being written came first.
                self.settle().await?;
                return Err(e);
            }
            if self.pending.len() >= self.options.chunk {
                self.send().await?;
                progress(reader.bytes_read());
            }
        }
        self.flush().await?;
        progress(reader.bytes_read());
        Ok(())
    }

    /// Ends the run: records of full uploads that no file of the run listed are deactivated
    /// or deleted (as the options say); hands over the report.
    pub async fn finish(mut self) -> Result<RunReport, ImportError> {
        self.flush().await?;
        self.close_full_sections().await?;
        Ok(self.report)
    }

    /// Ends the run as 1C's `mode=deactivate` asks: groups, products and offers that no file
    /// of the run listed are dealt with as missing from a full upload, whether or not the files
    /// said they were full (the packet exchange sends everything as changes and then this).
    pub async fn finish_deactivating(mut self) -> Result<RunReport, ImportError> {
        self.full
            .extend([Entity::ProductGroups, Entity::Products, Entity::Offers]);
        self.finish().await
    }

    pub fn report(&self) -> &RunReport {
        &self.report
    }

    /// The journal batch every change of the run goes into.
    pub fn batch(&self) -> BatchId {
        self.batch
    }

    async fn item(&mut self, line: u64, mut item: cml::Item) -> Result<(), ImportError> {
        if !self.options.id_prefix.is_empty() {
            prefix_ids(&self.options.id_prefix, &mut item);
        }
        match item {
            cml::Item::Catalog(section) => self.section(Entity::Products, section.only_changes),
            cml::Item::OfferPackage(section) => self.section(Entity::Offers, section.only_changes),
            cml::Item::Group(g) => {
                let parent = g
                    .parent_id
                    .as_deref()
                    .and_then(|p| self.live_id(Entity::ProductGroups, p));
                let mut fields = Map::new();
                put_name(&mut fields, &g.name);
                fields.insert("parent_id".into(), json!(parent));
                fields.insert("description".into(), opt(&g.description));
                self.plan(Entity::ProductGroups, &g.id, line, g.deleted, fields)
                    .await?;
            }
            cml::Item::Property(p) => {
                let list: HashMap<String, String> = p.values.iter().cloned().collect();
                self.property_values.insert(p.id.clone(), list);
                let mut fields = Map::new();
                put_name(&mut fields, &p.name);
                fields.insert(
                    "value_type".into(),
                    json!(values::property_type(p.value_type.as_deref())),
                );
                fields.insert("multiple".into(), json!(p.multiple));
                fields.insert(
                    "values".into(),
                    Value::Array(
                        p.values
                            .iter()
                            .filter(|(_, v)| !v.is_empty())
                            .map(|(id, v)| json!({"external_id": id, "value": v}))
                            .collect(),
                    ),
                );
                self.plan(Entity::Properties, &p.id, line, p.deleted, fields)
                    .await?;
            }
            cml::Item::PriceType(t) => {
                let mut fields = Map::new();
                put_name(&mut fields, &t.name);
                if let Some(c) = t.currency.as_deref() {
                    match values::currency(c) {
                        Some(code) => fields.insert("currency".into(), json!(code)),
                        None => {
                            return self.fail(
                                Entity::PriceTypes,
                                &t.id,
                                line,
                                format!(
                                    "unknown currency '{c}' of price type '{}'",
                                    name_of(&t.name)
                                ),
                            )
                        }
                    };
                }
                if let Some(v) = t.vat_included {
                    fields.insert("vat_included".into(), json!(v));
                }
                self.plan(Entity::PriceTypes, &t.id, line, false, fields)
                    .await?;
            }
            cml::Item::Warehouse(w) => {
                let mut fields = Map::new();
                put_name(&mut fields, &w.name);
                let address = w.address.as_ref().and_then(|a| a.presentation.clone());
                fields.insert("address".into(), opt(&address));
                self.plan(Entity::Warehouses, &w.id, line, w.deleted, fields)
                    .await?;
            }
            cml::Item::Product(p) => self.product(line, p).await?,
            cml::Item::Offer(o) => self.offer(line, o).await?,
            _ => {}
        }
        Ok(())
    }

    async fn product(&mut self, line: u64, p: cml::Product) -> Result<(), ImportError> {
        let mut fields = Map::new();
        put_name(&mut fields, &p.name);
        fields.insert("sku".into(), opt(&p.sku));
        fields.insert("barcode".into(), opt(&p.barcode));
        if let Some(u) = &p.unit {
            if let Some(name) = values::unit_name(u) {
                fields.insert("unit".into(), json!(name));
            }
            fields.insert("unit_code".into(), opt(&u.code));
        }
        fields.insert("kind".into(), json!(values::product_kind(&p.requisites)));
        let group = p
            .group_ids
            .first()
            .and_then(|g| self.live_id(Entity::ProductGroups, g));
        fields.insert("group_id".into(), json!(group));
        if let Some(rate) = p.tax_rates.iter().find_map(|t| values::vat_rate(&t.rate)) {
            fields.insert("vat_rate".into(), json!(rate));
        }
        fields.insert("description".into(), opt(&p.description));
        let mut rows = Vec::new();
        for pv in &p.property_values {
            let Some(property) = self.live_id(Entity::Properties, &pv.property_id) else {
                continue;
            };
            let list = self.property_values.get(&pv.property_id);
            for v in pv.values.iter().filter(|v| !v.is_empty()) {
                let shown = list.and_then(|l| l.get(v)).unwrap_or(v);
                rows.push(json!({"property_id": property, "value": values::clip(shown, 1000)}));
            }
        }
        fields.insert("property_values".into(), Value::Array(rows));
        for (property, field) in &self.options.property_fields {
            let key = format!("{}{property}", self.options.id_prefix);
            let list = self.property_values.get(&key);
            let shown: Vec<&str> = p
                .property_values
                .iter()
                .filter(|pv| pv.property_id == key)
                .flat_map(|pv| pv.values.iter())
                .filter(|v| !v.is_empty())
                .map(|v| list.and_then(|l| l.get(v)).unwrap_or(v).as_str())
                .collect();
            let value = if shown.is_empty() {
                Value::Null
            } else {
                json!(values::clip(&shown.join(", "), 1000))
            };
            fields.insert(field.clone(), value);
        }
        fields.insert(
            "requisites".into(),
            Value::Array(
                p.requisites
                    .iter()
                    .filter(|(n, _)| !n.is_empty())
                    .map(|(n, v)| {
                        json!({"name": values::clip(n, 255), "value": values::clip(v, 1000)})
                    })
                    .collect(),
            ),
        );
        fields.insert("active".into(), json!(true));
        self.plan(Entity::Products, &p.id, line, p.deleted, fields)
            .await
    }

    async fn offer(&mut self, line: u64, mut o: cml::Offer) -> Result<(), ImportError> {
        // Some catalogs list each variant as a product of its own (`Товар` with the id
        // `product#characteristic`); the offer belongs to that one when it exists.
        let product_ext = if self.known.contains(Entity::Products, &o.id) {
            o.id.clone()
        } else {
            values::product_of_offer(&o.id).to_string()
        };
        let product_ext = product_ext.as_str();
        // The offer of a product 1C deleted goes with its product.
        if self.deleted_by_1c(Entity::Products, product_ext) {
            o.deleted = true;
        }
        let name = name_of(&o.name);
        if !o.deleted && name.is_empty() && self.deleted_by_1c(Entity::Offers, &o.id) {
            // Prices and stock (entries without a name) of an offer 1C deleted, in this run
            // or before, do not bring it back: only the offer itself, sent again, does.
            self.report.counts_mut(Entity::Offers.as_str()).unchanged += 1;
            return Ok(());
        }
        if !o.deleted && !name.is_empty() && !self.is_known_live(Entity::Products, product_ext) {
            // An offer of a product the catalog did not send (1C filters the two files
            // differently): the product is made from what the offer says, and the catalog
            // fills it in when it sends it.
            let mut fields = Map::new();
            fields.insert("name".into(), json!(name));
            fields.insert("sku".into(), opt(&o.sku));
            fields.insert("barcode".into(), opt(&o.barcode));
            if let Some(u) = &o.unit {
                fields.insert("unit".into(), json!(values::unit_name(u)));
                fields.insert("unit_code".into(), opt(&u.code));
            }
            self.plan(Entity::Products, product_ext, line, false, fields)
                .await?;
        }
        let Some(product) = self.live_id(Entity::Products, product_ext) else {
            if o.deleted {
                return self
                    .plan(Entity::Offers, &o.id, line, true, Map::new())
                    .await;
            }
            return self.fail(
                Entity::Offers,
                &o.id,
                line,
                format!("its product {product_ext} is not in Kontor; send the catalog (import) before the offers"),
            );
        };
        self.mark_listed(Entity::Products, product_ext);
        let mut fields = Map::new();
        fields.insert("product_id".into(), json!(product));
        if !name.is_empty() {
            fields.insert("name".into(), json!(name));
        } else if !self.is_known_live(Entity::Offers, &o.id) {
            // Price and stock files carry no names: a new offer takes its product's.
            let name = self.product_name(&product).await?;
            fields.insert("name".into(), json!(name));
        }
        if o.sku.is_some() {
            fields.insert("sku".into(), opt(&o.sku));
        }
        if o.barcode.is_some() {
            fields.insert("barcode".into(), opt(&o.barcode));
        }
        if let Some(name) = o.unit.as_ref().and_then(values::unit_name) {
            fields.insert("unit".into(), json!(name));
        }
        if !o.characteristics.is_empty() {
            fields.insert(
                "characteristics".into(),
                Value::Array(
                    o.characteristics
                        .iter()
                        .map(|(n, v)| json!({"name": values::clip(n, 255), "value": values::clip(v, 1000)}))
                        .collect(),
                ),
            );
        }
        if o.has_prices {
            let mut rows = Vec::new();
            for p in &o.prices {
                let Some(kind) = self.live_id(Entity::PriceTypes, &p.price_type_id) else {
                    return self.fail(
                        Entity::Offers,
                        &o.id,
                        line,
                        format!("price type {} is not in Kontor", p.price_type_id),
                    );
                };
                let Some(price) = values::decimal(&p.per_unit) else {
                    return self.fail(
                        Entity::Offers,
                        &o.id,
                        line,
                        format!("price '{}' is not a number", p.per_unit),
                    );
                };
                let mut row = json!({"price_type_id": kind, "price": price});
                if let Some(c) = p.currency.as_deref() {
                    match values::currency(c) {
                        Some(code) => row["currency"] = json!(code),
                        None => {
                            return self.fail(
                                Entity::Offers,
                                &o.id,
                                line,
                                format!("unknown currency '{c}'"),
                            )
                        }
                    }
                }
                if let Some(u) = p.unit.as_deref().filter(|u| !u.is_empty()) {
                    row["unit"] = json!(values::clip(u, 255));
                }
                rows.push(row);
            }
            fields.insert("prices".into(), Value::Array(rows));
        }
        if o.has_stock {
            let mut rows = Vec::new();
            for s in &o.stock {
                let Some(warehouse) = self.live_id(Entity::Warehouses, &s.warehouse_id) else {
                    return self.fail(
                        Entity::Offers,
                        &o.id,
                        line,
                        format!("warehouse {} is not in Kontor", s.warehouse_id),
                    );
                };
                let Some(quantity) = values::decimal(&s.quantity) else {
                    return self.fail(
                        Entity::Offers,
                        &o.id,
                        line,
                        format!("stock '{}' is not a number", s.quantity),
                    );
                };
                rows.push(json!({"warehouse_id": warehouse, "quantity": quantity}));
            }
            fields.insert("stock".into(), Value::Array(rows));
        }
        if let (Some(counted), true) = (&self.options.warehouses, o.has_stock) {
            // Only the stock of the warehouses this 1C database's settings count.
            let mut total = cml::normalize_decimal("0").unwrap_or_default();
            for s in o.stock.iter().filter(|s| {
                counted
                    .iter()
                    .any(|w| format!("{}{w}", self.options.id_prefix) == s.warehouse_id)
            }) {
                if let Some(sum) = values::decimal_sum(&total, &s.quantity) {
                    total = sum;
                }
            }
            o.quantity = Some(total);
        }
        if let Some(q) = o.quantity.as_deref() {
            match values::decimal(q) {
                Some(q) => fields.insert("quantity".into(), json!(q)),
                None => {
                    return self.fail(
                        Entity::Offers,
                        &o.id,
                        line,
                        format!("quantity '{q}' is not a number"),
                    )
                }
            };
        }
        fields.insert("active".into(), json!(true));
        let product_price = if o.deleted {
            None
        } else {
            self.product_price(&o)
        };
        self.plan(Entity::Offers, &o.id, line, o.deleted, fields)
            .await?;
        // The product's own offer, or else its first offer of the run, prices the product.
        if let Some((price, currency)) = product_price {
            let own = o.id == product_ext;
            if self.priced.insert(known::ext_key(product_ext)) || own {
                let mut fields = Map::new();
                fields.insert("price".into(), json!(price));
                if let Some(c) = currency {
                    fields.insert("currency".into(), json!(c));
                }
                self.pending.push(Change {
                    entity: Entity::Products,
                    ext: product_ext.to_string(),
                    id: product.clone(),
                    line,
                    planned: Planned::Side,
                    mutations: vec![Mutation::Update {
                        entity: Entity::Products,
                        id: product,
                        input: Value::Object(fields),
                    }],
                });
            }
        }
        Ok(())
    }

    /// The price (and its currency) an offer gives its product: of the price type the
    /// settings name, or the only price the offer has.
    fn product_price(&self, o: &cml::Offer) -> Option<(String, Option<String>)> {
        if !o.has_prices {
            return None;
        }
        let chosen = match &self.options.price_type {
            Some(t) => {
                let key = format!("{}{t}", self.options.id_prefix);
                o.prices.iter().find(|p| p.price_type_id == key)?
            }
            None if o.prices.len() == 1 => &o.prices[0],
            None => return None,
        };
        let price = values::decimal(&chosen.per_unit)?;
        let currency = chosen.currency.as_deref().and_then(values::currency);
        Some((price, currency))
    }

    /// A product's name as the database has it, once the chunk being written has landed.
    async fn product_name(&mut self, id: &str) -> Result<String, ImportError> {
        self.settle().await?;
        Ok(self
            .kontor
            .store
            .get(Entity::Products, id)
            .await
            .map_err(kontor_core::CoreError::from)?
            .and_then(|p| {
                p.data
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default())
    }

    /// Opens a section of the file; a full one (`only_changes == Some(false)`) remembers what
    /// the run lists so the rest can be dealt with at its end.
    fn section(&mut self, entity: Entity, only_changes: Option<bool>) {
        if only_changes == Some(false) {
            self.full.insert(entity);
        }
    }

    /// The end of a run: records of full sections that the run did not list are deactivated or
    /// deleted, as the options say. A product counts as listed when an offer of it is.
    async fn close_full_sections(&mut self) -> Result<(), ImportError> {
        let full = std::mem::take(&mut self.full);
        self.drop_unlisted(full).await
    }

    /// Plans what the options say for a record no file of this run listed.
    fn missing(&mut self, entity: Entity, ext: String, id: String) {
        let (planned, mutation) = match self.options.missing {
            Missing::Keep => return,
            Missing::Deactivate => (
                Planned::Deactivate,
                Mutation::Update {
                    entity,
                    id: id.clone(),
                    input: json!({"active": false}),
                },
            ),
            Missing::Delete => {
                if let Some(k) = self.known.get_mut(entity, &ext) {
                    k.deleted = true;
                }
                (
                    Planned::Delete,
                    Mutation::Delete {
                        entity,
                        id: id.clone(),
                    },
                )
            }
        };
        self.pending.push(Change {
            entity,
            ext,
            id,
            line: 0,
            planned,
            mutations: vec![mutation],
        });
    }

    /// Deactivates or deletes (as the options say) the live records of these entities that no
    /// file of this run listed.
    async fn drop_unlisted(&mut self, entities: HashSet<Entity>) -> Result<(), ImportError> {
        if self.options.missing == Missing::Keep {
            return Ok(());
        }
        for entity in entities {
            // The 1C ids are read back from the store, a page at a time: the index keeps
            // only their hashes.
            let mut after = String::new();
            loop {
                let page = self
                    .kontor
                    .store
                    .external_ids(entity, &after, known::PAGE)
                    .await
                    .map_err(kontor_core::CoreError::from)?;
                let full = page.len() == known::PAGE as usize;
                if let Some((last, _, _)) = page.last() {
                    after = last.clone();
                }
                for (id, ext, _) in page {
                    if !ext.starts_with(&self.options.id_prefix) {
                        continue;
                    }
                    let missing = self
                        .known
                        .get(entity, &ext)
                        .is_some_and(|k| !k.deleted && !k.listed && k.id() == id);
                    if missing {
                        self.missing(entity, ext, id);
                    }
                    if self.pending.len() >= self.options.chunk {
                        self.send().await?;
                    }
                }
                if !full {
                    break;
                }
            }
        }
        self.flush().await
    }

    /// Plans what makes Kontor's record of `ext` match the file: create, update, delete, or
    /// bring back from the bin.
    async fn plan(
        &mut self,
        entity: Entity,
        ext: &str,
        line: u64,
        deleted: bool,
        mut fields: Map<String, Value>,
    ) -> Result<(), ImportError> {
        if ext.is_empty() {
            return self.fail(entity, ext, line, "the record has no 1C id (Ид)".into());
        }
        if deleted {
            self.marked_deleted.insert((entity, ext.to_string()));
        }
        self.mark_listed(entity, ext);
        // An empty list is stored as no value, so that the next import compares equal.
        for v in fields.values_mut() {
            if v.as_array().is_some_and(Vec::is_empty) {
                *v = Value::Null;
            }
        }
        let mut known = self.known.get(entity, ext);
        if let Some(k) = known.as_mut().filter(|k| k.deleted && !deleted) {
            // Bringing back a parent from the bin brings back what was deleted with it, so
            // look at the record as it is now (rare: worth a flush and a read).
            self.flush().await?;
            let now = self
                .kontor
                .store
                .get(entity, &k.id())
                .await
                .map_err(kontor_core::CoreError::from)?;
            match now {
                Some(rec) => k.deleted = rec.is_deleted(),
                // Purged from the bin meanwhile: make it anew.
                None => known = None,
            }
        }
        let (planned, id, mutations) = match (known, deleted) {
            (None, true) => {
                self.report.counts_mut(entity.as_str()).unchanged += 1;
                return Ok(());
            }
            (Some(k), true) if k.deleted => {
                self.report.counts_mut(entity.as_str()).unchanged += 1;
                return Ok(());
            }
            (Some(k), true) => {
                self.known.set(entity, ext, k.listed_as(true));
                let id = k.id();
                (
                    Planned::Delete,
                    id.clone(),
                    vec![Mutation::Delete { entity, id }],
                )
            }
            (Some(k), false) if k.deleted => {
                self.known.set(entity, ext, k.listed_as(false));
                let id = k.id();
                (
                    Planned::Revive,
                    id.clone(),
                    vec![
                        Mutation::RestoreDeleted {
                            entity,
                            id: id.clone(),
                        },
                        Mutation::Update {
                            entity,
                            id,
                            input: Value::Object(fields),
                        },
                    ],
                )
            }
            (Some(k), false) => {
                let id = k.id();
                (
                    Planned::Update,
                    id.clone(),
                    vec![Mutation::Update {
                        entity,
                        id,
                        input: Value::Object(fields),
                    }],
                )
            }
            (None, false) if !self.options.create => {
                return self.fail(
                    entity,
                    ext,
                    line,
                    format!(
                        "{} {ext} is not in Kontor, and this 1C database may only update records",
                        entity.singular()
                    ),
                );
            }
            (None, false) => {
                let id = new_id();
                let Some(k) = Known::new(&id, false, true) else {
                    return Err(ImportError::Internal(format!("new id {id} is not a UUID")));
                };
                fields.insert("external_id".into(), json!(ext));
                // Empty values need not be written on a new record.
                fields.retain(|_, v| !v.is_null());
                self.known.set(entity, ext, k);
                (
                    Planned::Create,
                    id.clone(),
                    vec![Mutation::CreateAs {
                        entity,
                        id,
                        input: Value::Object(fields),
                    }],
                )
            }
        };
        self.pending.push(Change {
            entity,
            ext: ext.to_string(),
            id,
            line,
            planned,
            mutations,
        });
        Ok(())
    }

    /// A file of this run listed the record of `ext`.
    fn mark_listed(&mut self, entity: Entity, ext: &str) {
        if let Some(k) = self.known.get_mut(entity, ext) {
            k.listed = true;
        }
    }

    /// 1C marked this record deleted: in this run, or it is in Kontor's bin.
    fn deleted_by_1c(&self, entity: Entity, ext: &str) -> bool {
        self.marked_deleted.contains(&(entity, ext.to_string()))
            || self.known.get(entity, ext).is_some_and(|k| k.deleted)
    }

    /// The Kontor id of a live record with this 1C id.
    fn live_id(&self, entity: Entity, ext: &str) -> Option<String> {
        self.known
            .get(entity, ext)
            .filter(|k| !k.deleted)
            .map(|k| k.id())
    }

    fn is_known_live(&self, entity: Entity, ext: &str) -> bool {
        self.known.get(entity, ext).is_some_and(|k| !k.deleted)
    }

    fn fail(
        &mut self,
        entity: Entity,
        ext: &str,
        line: u64,
        message: String,
    ) -> Result<(), ImportError> {
        self.report.fail(
            entity.as_str(),
            Failure {
                file: self.file.clone(),
                line,
                record: ext.to_string(),
                message: message.clone(),
            },
        );
        match self.options.on_error {
            OnError::Skip => Ok(()),
            OnError::Stop => Err(ImportError::Stopped {
                file: self.file.clone(),
                line,
                record: ext.to_string(),
                message,
            }),
        }
    }

    /// Applies the pending changes and waits until they are written.
    async fn flush(&mut self) -> Result<(), ImportError> {
        self.send().await?;
        self.settle().await
    }

    /// Hands the pending changes to a task that writes them in one transaction, after the
    /// chunk sent before is settled: the next chunk is read and planned while this one is
    /// written. Planning looks only at the run's own index of 1C ids, never at the database,
    /// so it does not need the chunk before to have landed.
    async fn send(&mut self) -> Result<(), ImportError> {
        self.settle().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut changes = std::mem::take(&mut self.pending);
        // The mutations move into one list; each change keeps where its own end.
        let mut mutations = Vec::with_capacity(changes.len());
        let mut ends = Vec::with_capacity(changes.len());
        for c in &mut changes {
            mutations.append(&mut c.mutations);
            ends.push(mutations.len());
        }
        let mutations = Arc::new(mutations);
        let (kontor, actor, batch, list) = (
            self.kontor.clone(),
            self.actor.clone(),
            self.batch,
            mutations.clone(),
        );
        let task = tokio::spawn(async move { write_chunk(&kontor, &actor, batch, &list).await });
        self.in_flight = Some(InFlight {
            changes,
            mutations,
            ends,
            task,
        });
        Ok(())
    }

    /// Waits for the chunk being written and counts it. A chunk that a record's rules refused
    /// is written again one record at a time, so only the records at fault fail.
    async fn settle(&mut self) -> Result<(), ImportError> {
        let Some(chunk) = self.in_flight.take() else {
            return Ok(());
        };
        let written = chunk
            .task
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?;
        match written {
            Ok(touched) => {
                for c in &chunk.changes {
                    self.count(c, &touched);
                }
                Ok(())
            }
            Err(kontor_core::CoreError::Domain(_)) => {
                let mut start = 0;
                for (c, end) in chunk.changes.into_iter().zip(chunk.ends) {
                    let own = &chunk.mutations[start..end];
                    start = end;
                    match write_chunk(&self.kontor, &self.actor, self.batch, own).await {
                        Ok(touched) => self.count(&c, &touched),
                        Err(kontor_core::CoreError::Domain(e)) => {
                            // What this record would have been is not in Kontor after all.
                            if matches!(c.planned, Planned::Create) {
                                self.known.remove(c.entity, &c.ext);
                            }
                            self.fail(c.entity, &c.ext, c.line, e.to_string())?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn count(&mut self, c: &Change, touched: &HashSet<String>) {
        let counts = self.report.counts_mut(c.entity.as_str());
        match c.planned {
            Planned::Create => counts.created += 1,
            Planned::Delete => counts.deleted += 1,
            Planned::Update | Planned::Revive if touched.contains(&c.id) => counts.updated += 1,
            Planned::Update | Planned::Revive => counts.unchanged += 1,
            Planned::Deactivate if touched.contains(&c.id) => counts.deactivated += 1,
            Planned::Deactivate | Planned::Side => {}
        }
    }
}

/// A property record's value list: value 1C id → value.
fn value_list(data: &Map<String, Value>) -> HashMap<String, String> {
    data.get("values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|row| {
            Some((
                row.get("external_id")?.as_str()?.to_string(),
                row.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// A record's name from 1C, at most 255 characters (`""` when it has none: the write path
/// refuses a record without a name, and the failure is reported with the record).
fn name_of(name: &Option<String>) -> String {
    values::clip(name.as_deref().unwrap_or("").trim(), 255)
}

/// Sets `name` when 1C sent one; without it an update keeps the name and a create is refused
/// by the write path (name is required), which the report names.
fn put_name(fields: &mut Map<String, Value>, name: &Option<String>) {
    let name = name_of(name);
    if !name.is_empty() {
        fields.insert("name".into(), Value::from(name));
    }
}

/// An optional text as a field value (`null` clears it on update).
fn opt(v: &Option<String>) -> Value {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Value::from(s),
        _ => Value::Null,
    }
}

/// Puts `prefix` before every 1C id an item holds or refers to (a 1C database's own ids).
fn prefix_ids(prefix: &str, item: &mut cml::Item) {
    let p = |id: &mut String| {
        if !id.is_empty() {
            id.insert_str(0, prefix);
        }
    };
    match item {
        cml::Item::Group(g) => {
            p(&mut g.id);
            if let Some(parent) = g.parent_id.as_mut() {
                p(parent);
            }
        }
        cml::Item::Property(x) => p(&mut x.id),
        cml::Item::PriceType(x) => p(&mut x.id),
        cml::Item::Warehouse(x) => p(&mut x.id),
        cml::Item::Product(x) => {
            p(&mut x.id);
            x.group_ids.iter_mut().for_each(p);
            x.property_values
                .iter_mut()
                .for_each(|v| p(&mut v.property_id));
        }
        cml::Item::Offer(x) => {
            p(&mut x.id);
            x.prices.iter_mut().for_each(|v| p(&mut v.price_type_id));
            x.stock.iter_mut().for_each(|v| p(&mut v.warehouse_id));
        }
        _ => {}
    }
}
