//! Which fields each entity has, their types, and the rules that span fields (unique keys,
//! references that cascade on delete). Built-in schemas are constants; custom fields defined by an
//! admin are appended at run time with [`Schema::with_custom`].

use crate::entity::Entity;
use crate::taxid::TaxId;
use serde_json::Value;
use std::sync::LazyLock;

/// The fields every record has, managed by Kontor itself. Input may set only `owner_id`.
pub const SYSTEM_FIELDS: [&str; 7] = [
    "id",
    "owner_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted_by",
    "deleted_batch",
];

/// The user field that records a password change (the only trace of credentials in records).
pub const PASSWORD_CHANGED_AT: &str = "password_changed_at";

/// The fields of their own user record anyone may change themselves (besides the password).
pub const OWN_ACCOUNT_FIELDS: [&str; 2] = ["name", "language"];

/// The languages of the interface a user may choose (unset: the browser's).
pub const LANGUAGES: [&str; 3] = ["en", "de", "ru"];

/// Fields that follow credentials rather than business data: restore and undo leave them as
/// they are, since they never bring back a password.
pub fn credential_fields(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::Users => &[PASSWORD_CHANGED_AT],
        _ => &[],
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// One line of text, at most `max` characters.
    Text {
        max: usize,
    },
    /// Free text up to 100,000 characters.
    LongText,
    Email,
    Phone,
    /// A string of ASCII digits whose length is one of `lens` (BIK, account numbers).
    Digits {
        lens: &'static [usize],
    },
    /// INN, KPP or OGRN, with check digits checked.
    TaxId(crate::taxid::TaxId),
    /// An exact decimal, written as a JSON string: at most `digits` digits before the point and
    /// `scale` after it, between `min` and `max` when set. See [`crate::money`].
    Decimal {
        digits: u32,
        scale: u32,
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A non-negative amount of money in the record's currency (the sibling field `currency`,
    /// or the invoice's for lines and payments), written as a JSON string with exactly the
    /// currency's minor units; below 10^13. `positive` refuses zero.
    Money {
        positive: bool,
    },
    Integer {
        min: i64,
        max: i64,
    },
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339, stored in UTC.
    DateTime,
    Bool,
    Enum(Vec<String>),
    /// ISO 4217 code, three letters.
    Currency,
    /// Id of a record of another entity.
    Ref(Entity),
    /// Id of a record whose entity is named by the sibling field `entity_field`.
    LinkedRef {
        entity_field: &'static str,
    },
    List(Box<FieldType>),
    /// A list of structured rows (addresses, bank accounts, invoice lines).
    Rows(Vec<FieldDef>),
    /// An arbitrary JSON object, checked by a rule of its owner (role permissions).
    Object,
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Text { .. } | FieldType::LongText => "string",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Digits { .. } => "digits",
            FieldType::TaxId(_) => "tax_id",
            FieldType::Decimal { .. } => "decimal",
            FieldType::Money { .. } => "money",
            FieldType::Integer { .. } => "integer",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Bool => "bool",
            FieldType::Enum(_) => "enum",
            FieldType::Currency => "currency",
            FieldType::Ref(_) | FieldType::LinkedRef { .. } => "reference",
            FieldType::List(_) => "list",
            FieldType::Rows(_) => "rows",
            FieldType::Object => "object",
        }
    }

    /// Values of this type take part in `q` text search.
    pub fn searchable(&self) -> bool {
        matches!(
            self,
            FieldType::Text { .. }
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Digits { .. }
                | FieldType::TaxId(_)
                | FieldType::List(_)
        )
    }
}

/// Who sets a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Set by clients.
    Input,
    /// Computed by Kontor (invoice totals, payment status); read-only to clients.
    Computed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    pub default: Option<Value>,
    pub writer: Writer,
    /// For references: deleting the referenced record moves this one to the bin with it.
    pub cascade: bool,
    /// Defined by an admin rather than built in.
    pub custom: bool,
    /// Cannot change after the record is created.
    pub immutable: bool,
    /// Lists filter and sort by it through an index (see [`crate::listing`]).
    pub filterable: bool,
    /// What pages call it (a custom field's label; built-in fields are named by the pages).
    pub label: Option<String>,
}

impl FieldDef {
    pub fn new(name: &str, ty: FieldType) -> Self {
        FieldDef {
            name: name.to_string(),
            ty,
            required: false,
            default: None,
            writer: Writer::Input,
            cascade: false,
            custom: false,
            immutable: false,
            filterable: false,
            label: None,
        }
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    pub fn computed(mut self) -> Self {
        self.writer = Writer::Computed;
        self
    }
    pub fn cascade(mut self) -> Self {
        self.cascade = true;
        self
    }
    pub fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
}

/// A set of fields whose combined value must be unique among live records of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueKey {
    /// Name used in the store and in messages, e.g. `sku` or `inn+kpp`.
    pub name: String,
    pub fields: Vec<String>,
    /// Compare case-insensitively (e-mail addresses, names).
    pub case_insensitive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub entity: Entity,
    pub fields: Vec<FieldDef>,
    pub unique: Vec<UniqueKey>,
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The built-in schema plus custom fields defined by an admin.
    pub fn with_custom(entity: Entity, custom: &[CustomFieldDef]) -> Schema {
        let mut schema = builtin(entity).clone();
        for c in custom.iter().filter(|c| c.entity == entity) {
            let mut def = FieldDef::new(&c.name, c.ty.clone());
            def.required = c.required;
            def.custom = true;
            def.filterable = c.filterable;
            def.label = c.label.clone();
            schema.fields.push(def);
            if c.unique {
                schema.unique.push(UniqueKey {
                    name: c.name.clone(),
                    fields: vec![c.name.clone()],
                    case_insensitive: false,
                });
            }
        }
        schema
    }

    /// References that cascade: (field, target entity). Linked refs report `None` as target.
    pub fn cascading_refs(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.iter().filter(|f| f.cascade)
    }
}

/// A custom field as an admin defined it (a record of entity `fields`), ready for validation.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomFieldDef {
    pub entity: Entity,
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    pub unique: bool,
    /// Lists filter and sort by it through an index.
    pub filterable: bool,
    /// What pages call it, when the admin said.
    pub label: Option<String>,
}

/// The types an admin may give a custom field.
pub const CUSTOM_FIELD_TYPES: [&str; 5] = ["string", "number", "date", "bool", "enum"];

impl CustomFieldDef {
    /// Reads a definition from the data of a `fields` record (already validated by its schema).
    pub fn from_record_data(data: &serde_json::Map<String, Value>) -> Option<CustomFieldDef> {
        let entity = data.get("entity")?.as_str()?.parse().ok()?;
        let name = data.get("name")?.as_str()?.to_string();
        let ty = match data.get("type")?.as_str()? {
            "string" => FieldType::Text { max: 1000 },
            "number" => FieldType::Decimal {
                digits: 13,
                scale: 6,
                min: None,
                max: None,
            },
            "date" => FieldType::Date,
            "bool" => FieldType::Bool,
            "enum" => FieldType::Enum(
                data.get("options")?
                    .as_array()?
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => return None,
        };
        Some(CustomFieldDef {
            entity,
            name,
            ty,
            label: data
                .get("label")
                .and_then(Value::as_str)
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
            required: data
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            unique: data.get("unique").and_then(Value::as_bool).unwrap_or(false),
            filterable: data
                .get("filterable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

fn text(name: &str) -> FieldDef {
    FieldDef::new(name, FieldType::Text { max: 255 })
}
fn long_text(name: &str) -> FieldDef {
    FieldDef::new(name, FieldType::LongText)
}
fn money(name: &str) -> FieldDef {
    FieldDef::new(name, FieldType::Money { positive: false })
}
fn vat_rate() -> FieldDef {
    FieldDef::new(
        "vat_rate",
        FieldType::Decimal {
            digits: 3,
            scale: 2,
            min: Some(0),
            max: Some(100),
        },
    )
}
fn enumeration(name: &str, options: &[&str]) -> FieldDef {
    FieldDef::new(
        name,
        FieldType::Enum(options.iter().map(|s| s.to_string()).collect()),
    )
}
/// A stock quantity: may be negative (1C allows selling ahead of receipts), three decimals.
fn quantity(name: &str) -> FieldDef {
    FieldDef::new(
        name,
        FieldType::Decimal {
            digits: 15,
            scale: 3,
            min: None,
            max: None,
        },
    )
}
fn reference(name: &str, target: Entity) -> FieldDef {
    FieldDef::new(name, FieldType::Ref(target))
}
fn unique(name: &str, fields: &[&str], case_insensitive: bool) -> UniqueKey {
    UniqueKey {
        name: name.to_string(),
        fields: fields.iter().map(|s| s.to_string()).collect(),
        case_insensitive,
    }
}
fn currency() -> FieldDef {
    FieldDef::new("currency", FieldType::Currency)
        .default(Value::from(crate::money::DEFAULT_CURRENCY))
}

pub const DEAL_STAGES: [&str; 6] = [
    "new",
    "qualification",
    "proposal",
    "negotiation",
    "won",
    "lost",
];
pub const INVOICE_STATUSES: [&str; 5] = ["draft", "sent", "partly_paid", "paid", "cancelled"];
/// How invoices are written for 1C: windows-1251 (what classic 1C expects) or UTF-8 with a BOM.
pub const INVOICE_ENCODINGS: [&str; 2] = ["windows-1251", "utf-8"];
pub const PRODUCT_KINDS: [&str; 2] = ["goods", "service"];
pub const PROPERTY_TYPES: [&str; 4] = ["string", "number", "date", "list"];
/// What an import does with a row: always create, only update what it matches, update or
/// create, or create only what it does not match.
pub const IMPORT_MODES: [&str; 4] = ["create", "update", "upsert", "skip"];
/// The entities a spreadsheet can be imported into.
pub const IMPORTABLE: [&str; 13] = [
    "companies",
    "contacts",
    "leads",
    "deals",
    "activities",
    "products",
    "invoices",
    "payments",
    "product_groups",
    "properties",
    "offers",
    "price_types",
    "warehouses",
];
pub const ACTIVITY_KINDS: [&str; 4] = ["task", "call", "meeting", "note"];
/// Entities an activity may be linked to.
pub const LINKABLE: [&str; 5] = ["companies", "contacts", "leads", "deals", "invoices"];

fn build(entity: Entity) -> Schema {
    use FieldType as T;
    let (fields, unique_keys) = match entity {
        Entity::Companies => (
            vec![
                text("name").required(),
                text("legal_name"),
                FieldDef::new("inn", T::TaxId(TaxId::Inn)),
                FieldDef::new("kpp", T::TaxId(TaxId::Kpp)),
                FieldDef::new("ogrn", T::TaxId(TaxId::Ogrn)),
                FieldDef::new("email", T::Email),
                FieldDef::new("phone", T::Phone),
                text("website"),
                text("industry"),
                FieldDef::new(
                    "addresses",
                    T::Rows(vec![
                        enumeration("kind", &["legal", "actual", "postal", "delivery", "other"])
                            .default(Value::from("legal")),
                        FieldDef::new("text", T::Text { max: 1000 }).required(),
                        text("postal_code"),
                        text("city"),
                        text("country"),
                    ]),
                ),
                FieldDef::new(
                    "bank_accounts",
                    T::Rows(vec![
                        FieldDef::new("account", T::Digits { lens: &[20] }).required(),
                        FieldDef::new("bik", T::Digits { lens: &[9] }).required(),
                        text("bank_name"),
                        FieldDef::new("corr_account", T::Digits { lens: &[20] }),
                        currency(),
                    ]),
                ),
                long_text("notes"),
                text("external_id"),
            ],
            vec![
                unique("inn+kpp", &["inn", "kpp"], false),
                unique("external_id", &["external_id"], false),
            ],
        ),
        Entity::Contacts => (
            vec![
                text("first_name"),
                text("last_name"),
                text("middle_name"),
                FieldDef::new("email", T::Email),
                FieldDef::new("phone", T::Phone),
                FieldDef::new("emails", T::List(Box::new(T::Email))),
                FieldDef::new("phones", T::List(Box::new(T::Phone))),
                text("position"),
                reference("company_id", Entity::Companies).cascade(),
                FieldDef::new("birthday", T::Date),
                long_text("notes"),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::Leads => (
            vec![
                text("title").required(),
                text("first_name"),
                text("last_name"),
                text("company_name"),
                FieldDef::new("email", T::Email),
                FieldDef::new("phone", T::Phone),
                enumeration(
                    "source",
                    &[
                        "web",
                        "email",
                        "phone",
                        "referral",
                        "exhibition",
                        "partner",
                        "other",
                    ],
                ),
                enumeration(
                    "status",
                    &["new", "in_progress", "qualified", "converted", "junk"],
                )
                .default(Value::from("new")),
                money("amount"),
                currency(),
                reference("company_id", Entity::Companies),
                reference("contact_id", Entity::Contacts),
                long_text("notes"),
            ],
            vec![],
        ),
        Entity::Deals => (
            vec![
                text("title").required(),
                text("pipeline").default(Value::from("default")),
                enumeration("stage", &DEAL_STAGES).default(Value::from("new")),
                money("amount"),
                currency(),
                reference("company_id", Entity::Companies).cascade(),
                reference("contact_id", Entity::Contacts),
                FieldDef::new("close_date", T::Date),
                FieldDef::new("probability", T::Integer { min: 0, max: 100 }),
                text("lost_reason"),
                long_text("notes"),
            ],
            vec![],
        ),
        Entity::Activities => (
            vec![
                enumeration("kind", &ACTIVITY_KINDS).required(),
                text("subject").required(),
                long_text("description"),
                FieldDef::new("due_at", T::DateTime),
                FieldDef::new("remind_at", T::DateTime),
                FieldDef::new("done", T::Bool).default(Value::Bool(false)),
                enumeration("linked_entity", &LINKABLE),
                FieldDef::new(
                    "linked_id",
                    T::LinkedRef {
                        entity_field: "linked_entity",
                    },
                )
                .cascade(),
            ],
            vec![],
        ),
        Entity::Products => (
            vec![
                text("name").required(),
                FieldDef::new("sku", T::Text { max: 100 }),
                FieldDef::new("barcode", T::Text { max: 64 }),
                text("unit").default(Value::from("pcs")),
                // OKEI code of the unit (796 = piece), as 1C sends it.
                FieldDef::new("unit_code", T::Text { max: 16 }),
                enumeration("kind", &PRODUCT_KINDS).default(Value::from("goods")),
                text("group"),
                reference("group_id", Entity::ProductGroups),
                money("price"),
                currency(),
                vat_rate(),
                FieldDef::new("active", T::Bool).default(Value::Bool(true)),
                long_text("description"),
                FieldDef::new(
                    "property_values",
                    T::Rows(vec![
                        reference("property_id", Entity::Properties).required(),
                        FieldDef::new("value", T::Text { max: 1000 }).required(),
                    ]),
                ),
                // Other named values 1C sends (its "requisites": full name, weight, ...).
                FieldDef::new(
                    "requisites",
                    T::Rows(vec![
                        text("name").required(),
                        FieldDef::new("value", T::Text { max: 1000 }),
                    ]),
                ),
                text("external_id"),
            ],
            vec![
                unique("sku", &["sku"], false),
                unique("external_id", &["external_id"], false),
            ],
        ),
        Entity::Invoices => (
            vec![
                FieldDef::new("number", T::Text { max: 64 }),
                reference("company_id", Entity::Companies)
                    .required()
                    .cascade(),
                reference("contact_id", Entity::Contacts),
                reference("deal_id", Entity::Deals),
                // Our own company as a company record (its legal name, INN, KPP, legal address
                // and bank account are the seller's details on the printed invoice).
                reference("seller_id", Entity::Companies),
                FieldDef::new("issue_date", T::Date),
                FieldDef::new("due_date", T::Date),
                currency(),
                enumeration("status", &INVOICE_STATUSES).default(Value::from("draft")),
                FieldDef::new("vat_included", T::Bool).default(Value::Bool(false)),
                FieldDef::new(
                    "lines",
                    T::Rows(vec![
                        reference("product_id", Entity::Products),
                        FieldDef::new("description", T::Text { max: 1000 }),
                        FieldDef::new(
                            "quantity",
                            T::Decimal {
                                digits: crate::money::QUANTITY_INTEGER_DIGITS,
                                scale: crate::money::QUANTITY_SCALE,
                                min: Some(0),
                                max: None,
                            },
                        )
                        .required(),
                        text("unit"),
                        money("price").required(),
                        vat_rate().default(Value::from("0")),
                        money("amount").computed(),
                        money("vat_amount").computed(),
                        money("total").computed(),
                    ]),
                )
                .default(Value::Array(vec![])),
                money("subtotal").computed(),
                money("vat_total").computed(),
                money("total").computed(),
                money("paid_amount").computed(),
                FieldDef::new("paid_at", T::Date).computed(),
                // What 1C reported: its own number for the document, and the shipment.
                FieldDef::new("number_1c", T::Text { max: 64 }),
                FieldDef::new("shipment_number", T::Text { max: 64 }),
                FieldDef::new("shipped_at", T::Date),
                long_text("notes"),
                text("external_id"),
            ],
            vec![
                unique("number", &["number"], true),
                unique("external_id", &["external_id"], false),
            ],
        ),
        Entity::Payments => (
            vec![
                reference("invoice_id", Entity::Invoices)
                    .required()
                    .cascade()
                    .immutable(),
                FieldDef::new("amount", T::Money { positive: true }).required(),
                // The invoice's currency, copied when the payment is recorded.
                FieldDef::new("currency", T::Currency).computed(),
                FieldDef::new("date", T::Date),
                text("reference"),
                enumeration("method", &["bank_transfer", "cash", "card", "other"])
                    .default(Value::from("bank_transfer")),
                long_text("notes"),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::ProductGroups => (
            vec![
                text("name").required(),
                // Nested groups: deleting a group moves its subgroups to the bin with it (the
                // products in it stay, only their link points to a group in the bin).
                reference("parent_id", Entity::ProductGroups).cascade(),
                long_text("description"),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::Properties => (
            vec![
                text("name").required(),
                enumeration("value_type", &PROPERTY_TYPES).default(Value::from("string")),
                FieldDef::new("multiple", T::Bool).default(Value::Bool(false)),
                // The values a `list` property may take, each with its 1C id.
                FieldDef::new(
                    "values",
                    T::Rows(vec![
                        text("external_id"),
                        FieldDef::new("value", T::Text { max: 1000 }).required(),
                    ]),
                ),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::Offers => (
            vec![
                // What is sold: a product, or one variant of it (1C's `product#characteristic`).
                reference("product_id", Entity::Products)
                    .required()
                    .cascade(),
                text("name").required(),
                FieldDef::new("sku", T::Text { max: 100 }),
                FieldDef::new("barcode", T::Text { max: 64 }),
                text("unit"),
                FieldDef::new(
                    "characteristics",
                    T::Rows(vec![
                        text("name").required(),
                        FieldDef::new("value", T::Text { max: 1000 }),
                    ]),
                ),
                // One price per price type.
                FieldDef::new(
                    "prices",
                    T::Rows(vec![
                        reference("price_type_id", Entity::PriceTypes).required(),
                        FieldDef::new(
                            "price",
                            T::Decimal {
                                digits: 13,
                                scale: 4,
                                min: Some(0),
                                max: None,
                            },
                        )
                        .required(),
                        currency(),
                        text("unit"),
                    ]),
                ),
                // Stock per warehouse, and the total 1C reports.
                FieldDef::new(
                    "stock",
                    T::Rows(vec![
                        reference("warehouse_id", Entity::Warehouses).required(),
                        quantity("quantity").required(),
                    ]),
                ),
                quantity("quantity"),
                FieldDef::new("active", T::Bool).default(Value::Bool(true)),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::PriceTypes => (
            vec![
                text("name").required(),
                currency(),
                FieldDef::new("vat_included", T::Bool).default(Value::Bool(true)),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::Warehouses => (
            vec![
                text("name").required(),
                FieldDef::new("address", T::Text { max: 1000 }),
                text("external_id"),
            ],
            vec![unique("external_id", &["external_id"], false)],
        ),
        Entity::Users => (
            vec![
                FieldDef::new("email", T::Email).required(),
                text("name"),
                FieldDef::new("role", T::Text { max: 64 })
                    .required()
                    .default(Value::from("manager")),
                reference("team_id", Entity::Teams),
                FieldDef::new("disabled", T::Bool).default(Value::Bool(false)),
                // The interface language of the web pages (unset: the browser's).
                enumeration("language", &LANGUAGES),
                // When the password last changed. The hash itself is a credential, kept outside
                // records and the journal; restore and undo never touch this field.
                FieldDef::new(PASSWORD_CHANGED_AT, T::DateTime).computed(),
            ],
            vec![unique("email", &["email"], true)],
        ),
        Entity::Roles => (
            vec![
                FieldDef::new("name", T::Text { max: 64 }).required(),
                text("description"),
                FieldDef::new("permissions", T::Object).default(Value::Object(Default::default())),
                FieldDef::new("hidden_fields", T::Object)
                    .default(Value::Object(Default::default())),
                FieldDef::new("readonly_fields", T::Object)
                    .default(Value::Object(Default::default())),
            ],
            vec![unique("name", &["name"], true)],
        ),
        Entity::Teams => (
            vec![
                FieldDef::new("name", T::Text { max: 128 }).required(),
                text("description"),
            ],
            vec![unique("name", &["name"], true)],
        ),
        Entity::Fields => (
            vec![
                enumeration(
                    "entity",
                    &Entity::CRM.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                )
                .required()
                .immutable(),
                FieldDef::new("name", T::Text { max: 63 })
                    .required()
                    .immutable(),
                text("label"),
                enumeration("type", &CUSTOM_FIELD_TYPES)
                    .required()
                    .immutable(),
                FieldDef::new("options", T::List(Box::new(T::Text { max: 255 }))),
                FieldDef::new("required", T::Bool).default(Value::Bool(false)),
                FieldDef::new("unique", T::Bool).default(Value::Bool(false)),
                // Lists filter and sort by it through a database index.
                FieldDef::new("filterable", T::Bool).default(Value::Bool(false)),
            ],
            vec![unique("entity+name", &["entity", "name"], false)],
        ),
        // A saved way to import a kind of spreadsheet: which column goes to which field (or to
        // a related record by its natural key, e.g. `company_id.inn`), how rows match the
        // records they update, and how the file is read. Admins keep them; imports use them.
        Entity::ImportTemplates => (
            vec![
                FieldDef::new("name", T::Text { max: 128 }).required(),
                enumeration("entity", &IMPORTABLE).required(),
                // {"<column header>": "<field>" | "<field>.<key of the related record>" | ""}
                FieldDef::new("columns", T::Object),
                FieldDef::new("match", T::Text { max: 128 }),
                enumeration("mode", &IMPORT_MODES).default(Value::from("create")),
                FieldDef::new("delimiter", T::Text { max: 4 }),
                FieldDef::new("encoding", T::Text { max: 32 }),
                FieldDef::new("sheet", T::Text { max: 255 }),
                long_text("notes"),
            ],
            vec![unique("name", &["name"], true)],
        ),
        // A 1C database Kontor exchanges with, through the exchange user it logs in as; one is
        // made on its first sale exchange. Kontor keeps how far invoices were sent to it.
        Entity::OnecDatabases => (
            vec![
                FieldDef::new("name", T::Text { max: 128 }).required(),
                reference("user_id", Entity::Users).required(),
                enumeration("invoice_encoding", &INVOICE_ENCODINGS)
                    .default(Value::from("windows-1251")),
                // The journal position up to which 1C confirmed (mode=success) the invoices.
                FieldDef::new(
                    "invoices_sent_seq",
                    T::Integer {
                        min: 0,
                        max: i64::MAX,
                    },
                )
                .computed(),
                FieldDef::new("invoices_sent_at", T::DateTime).computed(),
                // Settings of the exchange with this database (see kontor-exchange's settings).
                FieldDef::new("id_prefix", T::Text { max: 32 }),
                enumeration("catalog_missing", &["keep", "deactivate", "delete"])
                    .default(Value::from("deactivate")),
                enumeration("on_record_error", &["skip", "stop"]).default(Value::from("skip")),
                FieldDef::new("create_records", T::Bool).default(Value::Bool(true)),
                FieldDef::new("price_type", T::Text { max: 128 }),
                FieldDef::new("stock_warehouses", T::List(Box::new(T::Text { max: 128 }))),
                FieldDef::new("property_fields", T::Object),
                // Which invoices go to 1C by status (unset: all but drafts).
                FieldDef::new(
                    "invoice_statuses",
                    T::List(Box::new(T::Enum(
                        INVOICE_STATUSES
                            .iter()
                            .filter(|s| **s != "draft")
                            .map(|s| s.to_string())
                            .collect(),
                    ))),
                ),
                long_text("notes"),
            ],
            vec![unique("user_id", &["user_id"], false)],
        ),
    };
    let mut fields = fields;
    let filterable = crate::listing::builtin_filterable(entity);
    for f in &mut fields {
        f.filterable = filterable.contains(&f.name.as_str());
    }
    Schema {
        entity,
        fields,
        unique: unique_keys,
    }
}

static BUILTIN: LazyLock<Vec<Schema>> =
    LazyLock::new(|| Entity::ALL.iter().map(|e| build(*e)).collect());

/// The built-in schema of an entity.
pub fn builtin(entity: Entity) -> &'static Schema {
    // BUILTIN is built from Entity::ALL in order, so the position always exists.
    let idx = Entity::ALL.iter().position(|e| *e == entity).unwrap_or(0);
    &BUILTIN[idx]
}

/// Every (child entity, field) that references `parent` and cascades on its deletion. Linked refs
/// (activities) are included when `parent` is linkable.
pub fn cascade_children(parent: Entity) -> Vec<(Entity, &'static FieldDef)> {
    let mut out = Vec::new();
    for e in Entity::ALL {
        for f in builtin(e).cascading_refs() {
            match &f.ty {
                FieldType::Ref(t) if *t == parent => out.push((e, f)),
                FieldType::LinkedRef { .. } if LINKABLE.contains(&parent.as_str()) => {
                    out.push((e, f))
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_cascades_to_contacts_deals_invoices_and_activities() {
        let children: Vec<_> = cascade_children(Entity::Companies)
            .into_iter()
            .map(|(e, f)| format!("{}.{}", e, f.name))
            .collect();
        assert_eq!(
            children,
            vec![
                "contacts.company_id",
                "deals.company_id",
                "activities.linked_id",
                "invoices.company_id"
            ]
        );
    }

    #[test]
    fn builtin_field_names_never_collide_with_system_fields() {
        for e in Entity::ALL {
            for f in &builtin(e).fields {
                assert!(!SYSTEM_FIELDS.contains(&f.name.as_str()), "{e}.{}", f.name);
            }
        }
    }
}
