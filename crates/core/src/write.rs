//! The one write path. Every change to business data — API, web, import, exchange, restore,
//! retention — is a list of [`Mutation`]s handed to [`apply`], which in ONE database transaction
//! checks permissions, validates, writes the current rows and appends one journal entry per changed
//! record, all under one batch id. Nothing else writes records; nothing writes the journal later.

use crate::derived::{parent_of, unique_value, unique_values};
use crate::error::{CoreError, CoreResult};
use kontor_domain::error::Conflict;
use kontor_domain::invoice;
use kontor_domain::journal::{diff, Appended, JournalEntry, NewJournalEntry, Op, Origin};
use kontor_domain::permission::{Action, Actor, Role, BUILTIN_ROLES};
use kontor_domain::record::{new_id, Deletion, Record};
use kontor_domain::schema::{
    self, CustomFieldDef, FieldDef, FieldType, Schema, LINKABLE, OWN_ACCOUNT_FIELDS,
    PASSWORD_CHANGED_AT,
};
use kontor_domain::validate::{parse_fields, stored_dec, OwnerChange};
use kontor_domain::{BatchId, DomainError, Entity};
use kontor_store::{Store, WriteTx};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One change asked of the write path.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    Create {
        entity: Entity,
        input: Value,
    },
    /// A create under an id the caller chose (a fresh [`new_id`]), so that later mutations of
    /// the same batch can refer to the new record (bulk imports of nested data).
    CreateAs {
        entity: Entity,
        id: String,
        input: Value,
    },
    /// A partial update: fields present in `input` change, `null` clears.
    Update {
        entity: Entity,
        id: String,
        input: Value,
    },
    /// Moves the record, and every record that cascades from it, to the recycle bin.
    Delete {
        entity: Entity,
        id: String,
    },
    /// Brings a record back from the bin together with everything deleted in the same batch.
    RestoreDeleted {
        entity: Entity,
        id: String,
    },
    /// Removes a record from the bin for good and scrubs its journal images. Admin only.
    Purge {
        entity: Entity,
        id: String,
    },
    /// Puts a record into an earlier state (restore to a time, undo): `Some(image)` makes it live
    /// (or in the bin) exactly as the image says, `None` moves it to the bin. Conflicts are
    /// collected, and the whole batch is refused if there are any.
    SetState {
        entity: Entity,
        id: String,
        target: Option<Value>,
    },
    /// Creates a user together with their password hash (admin only). The hash goes to the
    /// store's credentials; the user record gets `password_changed_at`.
    CreateUser {
        input: Value,
        password_hash: String,
    },
    /// Replaces a user's password hash (admin only), journaled as a change of
    /// `password_changed_at` on the user record, never with the hash.
    SetPassword {
        id: String,
        password_hash: String,
    },
    /// A user's change of their own account (`id` must be the actor's): the fields in
    /// [`OWN_ACCOUNT_FIELDS`], and a new password hash. Any role may; the caller has checked
    /// the current password before hashing a new one.
    UpdateOwnAccount {
        id: String,
        input: Value,
        password_hash: Option<String>,
    },
    /// Undoes what the given journal entries (all about this record) changed, field by field:
    /// a field goes back only if nobody changed it since; otherwise that is a conflict.
    Revert {
        entity: Entity,
        id: String,
        entries: Vec<JournalEntry>,
    },
}

impl Mutation {
    fn target(&self) -> (Entity, Option<&str>) {
        match self {
            Mutation::Create { entity, .. } => (*entity, None),
            Mutation::CreateAs { entity, id, .. } => (*entity, Some(id)),
            Mutation::CreateUser { .. } => (Entity::Users, None),
            Mutation::SetPassword { id, .. } | Mutation::UpdateOwnAccount { id, .. } => {
                (Entity::Users, Some(id))
            }
            Mutation::Update { entity, id, .. }
            | Mutation::Delete { entity, id }
            | Mutation::RestoreDeleted { entity, id }
            | Mutation::Purge { entity, id }
            | Mutation::SetState { entity, id, .. }
            | Mutation::Revert { entity, id, .. } => (*entity, Some(id)),
        }
    }
}

pub struct WriteRequest<'a> {
    pub actor: &'a Actor,
    pub origin: Origin,
    /// Kontor's own callers (user management) may write internal fields such as password hashes.
    pub trusted: bool,
    pub mutations: &'a [Mutation],
    /// Custom field definitions kept between batches, checked against the database's version.
    pub cache: Option<&'a SchemaCache>,
    /// The mutations are a client's numbered list (`/batch`): refusals say which one.
    pub numbered: bool,
    /// The batch id to journal under; a new one when `None`. Long work (an import, an exchange
    /// run) commits in several transactions under one batch, so it is undone as one.
    pub batch: Option<BatchId>,
    /// Roll everything back at the end instead of committing: the answer tells what the batch
    /// would do (an import's dry run), and nothing is done.
    pub dry_run: bool,
    /// Long work's bookkeeping, written in the same transaction (an import's checkpoint and
    /// refused rows), so it lands exactly when the batch does.
    pub progress: Option<&'a kontor_store::JobProgress>,
}

/// Custom field definitions as of a schema version; valid while the database's version matches.
#[derive(Default)]
pub struct SchemaCache(std::sync::Mutex<Option<(i64, std::sync::Arc<Vec<CustomFieldDef>>)>>);

impl SchemaCache {
    fn get(&self, version: i64) -> Option<std::sync::Arc<Vec<CustomFieldDef>>> {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, d)| d.clone())
    }

    fn put(&self, version: i64, defs: std::sync::Arc<Vec<CustomFieldDef>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, defs));
    }
}

/// What a committed batch did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub batch: BatchId,
    /// Where each journal entry of the batch went, in order.
    pub entries: Vec<Appended>,
    /// Each mutation's target after the batch, in mutation order (`None` once purged).
    pub records: Vec<Option<Record>>,
    /// What a restore or undo deliberately left as it is (credentials).
    pub skipped: Vec<Skipped>,
}

/// A field a restore or undo did not put back, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skipped {
    pub entity: String,
    pub record_id: String,
    pub field: String,
    pub reason: String,
}

/// Applies a batch of mutations atomically: all of them, journaled, or none.
pub async fn apply(store: &dyn Store, req: WriteRequest<'_>) -> CoreResult<Applied> {
    let tx = store.begin().await?;
    let mut b = Batch {
        now: tx.now(),
        tx,
        actor: req.actor,
        origin: req.origin,
        trusted: req.trusted,
        batch: req.batch.unwrap_or_default(),
        entries: Vec::new(),
        custom: None,
        cache: req.cache,
        fields_changed: false,
        conflicts: Vec::new(),
        skipped: Vec::new(),
        invoices: BTreeSet::new(),
        written: HashMap::new(),
        referenced: HashMap::new(),
        holders: HashMap::new(),
    };
    b.prefetch(req.mutations).await?;
    let mut targets = Vec::with_capacity(req.mutations.len());
    for (i, m) in req.mutations.iter().enumerate() {
        let (entity, id) = m.target();
        let id = id.map(str::to_string);
        let created = match b.mutate(m).await {
            Ok(c) => c,
            Err(e) if req.numbered => return Err(e.in_operation(i)),
            Err(e) => return Err(e),
        };
        targets.push((entity, created.or(id)));
    }
    if !b.conflicts.is_empty() {
        return Err(DomainError::Conflicts(b.conflicts).into());
    }
    b.recompute_invoices().await?;
    // Each target's record as the batch left it: moved out of `written` at its last mention
    // (a bulk batch's records are not copied), copied before.
    let mut last_mention = HashMap::new();
    for (i, (entity, id)) in targets.iter().enumerate() {
        if let Some(id) = id {
            last_mention.insert((*entity, id.clone()), i);
        }
    }
    let mut records = Vec::with_capacity(targets.len());
    for (i, (entity, id)) in targets.into_iter().enumerate() {
        let Some(id) = id else {
            records.push(None);
            continue;
        };
        let key = (entity, id);
        let rec = if last_mention.get(&key) == Some(&i) {
            b.written.remove(&key)
        } else {
            b.written.get(&key).cloned()
        };
        records.push(match rec {
            Some(rec) => rec,
            None => b.as_of_now(entity, &key.1).await?,
        });
    }
    if b.fields_changed {
        b.tx.bump_schema_version().await?;
    }
    let entries = b.tx.append(b.entries).await?;
    if let Some(p) = req.progress {
        b.tx.save_progress(p).await?;
    }
    if req.dry_run {
        // Dropped without a commit: rolled back, the journal's head untouched.
        drop(b.tx);
    } else {
        b.tx.commit().await?;
    }
    Ok(Applied {
        batch: b.batch,
        entries,
        records,
        skipped: b.skipped,
    })
}

struct Batch<'a> {
    tx: Box<dyn WriteTx>,
    actor: &'a Actor,
    origin: Origin,
    trusted: bool,
    batch: BatchId,
    now: kontor_domain::time::Timestamp,
    entries: Vec<NewJournalEntry>,
    custom: Option<std::sync::Arc<Vec<CustomFieldDef>>>,
    cache: Option<&'a SchemaCache>,
    /// A custom field definition changed in this batch.
    fields_changed: bool,
    conflicts: Vec<Conflict>,
    skipped: Vec<Skipped>,
    /// Invoices whose payments changed in this batch; their paid state is recomputed at the end.
    invoices: BTreeSet<String>,
    /// The latest state this batch wrote for each record (`None` once purged).
    written: HashMap<(Entity, String), Option<Record>>,
    /// Records this batch read (and has not written) as they are in the database: read once
    /// per batch, most of them in bulk by [`Batch::prefetch`].
    referenced: HashMap<(Entity, String), Option<Record>>,
    /// Which record holds a unique value `(entity, key, value)`, as this batch sees it: read
    /// from the database once, then kept up to date by every write of the batch.
    holders: HashMap<(Entity, String, String), Option<String>>,
}

/// A record that cannot be written out as JSON text (never expected: its fields are JSON).
fn image_error(e: serde_json::Error) -> CoreError {
    CoreError::Store(kontor_store::StoreError::Other(format!(
        "cannot write a journal image: {e}"
    )))
}

fn conflict(
    rec_entity: Entity,
    id: &str,
    kind: &str,
    field: Option<&str>,
    message: String,
) -> Conflict {
    Conflict {
        entity: rec_entity.as_str().into(),
        record_id: id.into(),
        kind: kind.into(),
        field: field.map(str::to_string),
        message,
    }
}

/// The record is gone for good: nothing to restore.
fn purged(entity: Entity, id: &str) -> Conflict {
    conflict(
        entity,
        id,
        "purged",
        None,
        format!(
            "{} {id} was purged; it cannot be restored",
            entity.singular()
        ),
    )
}

/// Turns the first conflict found by a normal (non-restore) write into the matching error.
fn conflict_to_error(c: Conflict) -> DomainError {
    match c.kind.as_str() {
        "unique_taken" => DomainError::Duplicate {
            field: c.field.unwrap_or_default(),
            message: c.message,
        },
        "parent_missing" | "parent_deleted" | "owner_missing" => DomainError::Reference {
            field: c.field.unwrap_or_default(),
            message: c.message,
        },
        _ => DomainError::invalid(c.field.unwrap_or_default(), c.message),
    }
}

impl Batch<'_> {
    async fn schema(&mut self, entity: Entity) -> CoreResult<Schema> {
        if !entity.allows_custom_fields() {
            return Ok(schema::builtin(entity).clone());
        }
        if self.custom.is_none() {
            let version = self.tx.schema_version();
            let cached = match (self.cache, self.fields_changed) {
                (Some(c), false) => c.get(version),
                _ => None,
            };
            let defs = match cached {
                Some(d) => d,
                None => {
                    let defs: std::sync::Arc<Vec<CustomFieldDef>> = std::sync::Arc::new(
                        self.tx
                            .live_records(Entity::Fields)
                            .await?
                            .iter()
                            .filter_map(|r| CustomFieldDef::from_record_data(&r.data))
                            .collect(),
                    );
                    if let (Some(c), false) = (self.cache, self.fields_changed) {
                        c.put(version, defs.clone());
                    }
                    defs
                }
            };
            self.custom = Some(defs);
        }
        Ok(Schema::with_custom(
            entity,
            self.custom.as_deref().map(Vec::as_slice).unwrap_or(&[]),
        ))
    }

    /// Loads a record the actor may act on. Records the actor may not even read look absent.
    async fn load(&mut self, entity: Entity, id: &str, action: Action) -> CoreResult<Record> {
        let rec = self
            .as_of_now(entity, id)
            .await?
            .ok_or_else(|| DomainError::not_found(entity.singular(), id))?;
        let owner = rec.owner_id.as_deref();
        if !self.actor.can(entity, action, owner) {
            if self.actor.can(entity, Action::Read, owner) {
                return Err(DomainError::forbidden(format!(
                    "role {} may not {action} this {}",
                    self.actor.role.name,
                    entity.singular()
                ))
                .into());
            }
            return Err(DomainError::not_found(entity.singular(), id).into());
        }
        Ok(rec)
    }

    async fn mutate(&mut self, m: &Mutation) -> CoreResult<Option<String>> {
        match m {
            Mutation::Create { entity, input } => self
                .create(*entity, input, Map::new(), None)
                .await
                .map(Some),
            Mutation::CreateAs { entity, id, input } => {
                if kontor_domain::record::parse_id(id).as_deref() != Some(id.as_str()) {
                    return Err(DomainError::invalid("id", "not a canonical record id").into());
                }
                self.read(*entity, id).await?;
                if self.seen(*entity, id).is_some() {
                    return Err(DomainError::State {
                        field: Some("id".into()),
                        message: format!("{} {id} already exists", entity.singular()),
                    }
                    .into());
                }
                self.create(*entity, input, Map::new(), Some(id.clone()))
                    .await
                    .map(Some)
            }
            Mutation::CreateUser {
                input,
                password_hash,
            } => {
                self.require_admin("create users")?;
                let mut computed = Map::new();
                computed.insert(
                    PASSWORD_CHANGED_AT.into(),
                    Value::from(kontor_domain::time::format(self.now)),
                );
                let id = self.create(Entity::Users, input, computed, None).await?;
                self.tx.set_password_hash(&id, password_hash).await?;
                Ok(Some(id))
            }
            Mutation::SetPassword { id, password_hash } => {
                self.require_admin("set passwords")?;
                self.set_password(id, password_hash).await?;
                Ok(None)
            }
            Mutation::Update { entity, id, input } => {
                self.update(*entity, id, input).await?;
                Ok(None)
            }
            Mutation::UpdateOwnAccount {
                id,
                input,
                password_hash,
            } => {
                self.update_own_account(id, input, password_hash.as_deref())
                    .await?;
                Ok(None)
            }
            Mutation::Delete { entity, id } => {
                let rec = self.load(*entity, id, Action::Delete).await?;
                if rec.is_deleted() {
                    return Err(CoreError::InTrash {
                        entity: entity.singular().into(),
                        id: id.clone(),
                    });
                }
                self.delete_tree(rec).await?;
                Ok(None)
            }
            Mutation::RestoreDeleted { entity, id } => {
                self.restore_deleted(*entity, id).await?;
                Ok(None)
            }
            Mutation::Purge { entity, id } => {
                self.purge(*entity, id).await?;
                Ok(None)
            }
            Mutation::SetState { entity, id, target } => {
                self.set_state(*entity, id, target.as_ref()).await?;
                Ok(None)
            }
            Mutation::Revert {
                entity,
                id,
                entries,
            } => {
                self.revert(*entity, id, entries).await?;
                Ok(None)
            }
        }
    }

    fn require_admin(&self, what: &str) -> CoreResult<()> {
        if self.actor.is_admin() {
            Ok(())
        } else {
            Err(DomainError::forbidden(format!("only an admin may {what}")).into())
        }
    }

    async fn set_password(&mut self, id: &str, hash: &str) -> CoreResult<()> {
        let current = self.load(Entity::Users, id, Action::Update).await?;
        self.set_password_of(current, hash).await
    }

    async fn set_password_of(&mut self, current: Record, hash: &str) -> CoreResult<()> {
        if current.is_deleted() {
            return Err(DomainError::Deleted {
                entity: Entity::Users.singular().into(),
                id: current.id.clone(),
            }
            .into());
        }
        self.tx.set_password_hash(&current.id, hash).await?;
        let schema = self.schema(Entity::Users).await?;
        let mut after = current.clone();
        after.data.insert(
            PASSWORD_CHANGED_AT.into(),
            Value::from(kontor_domain::time::format(self.now)),
        );
        after.updated_at = self.now;
        self.write(&schema, Some(current), after, Op::Update, false)
            .await
    }

    /// Creates a record from client input plus fields Kontor computed itself (`computed`).
    async fn create(
        &mut self,
        entity: Entity,
        input: &Value,
        computed: Map<String, Value>,
        id: Option<String>,
    ) -> CoreResult<String> {
        let schema = self.schema(entity).await?;
        let parsed = parse_fields(&schema, input, None, self.trusted)?;
        self.actor.check_writable(entity, &parsed.touched)?;
        let owner = match parsed.owner {
            OwnerChange::Set(o) => o,
            OwnerChange::Keep if self.actor.user_id == kontor_domain::permission::SYSTEM_ACTOR => {
                None
            }
            OwnerChange::Keep => Some(self.actor.user_id.clone()),
        };
        if !self.actor.can(entity, Action::Create, owner.as_deref()) {
            return Err(DomainError::forbidden(format!(
                "role {} may not create {entity}{}",
                self.actor.role.name,
                if owner.as_deref() == Some(self.actor.user_id.as_str()) {
                    String::new()
                } else {
                    " for another owner".to_string()
                }
            ))
            .into());
        }
        self.check_owner(owner.as_deref()).await?;
        let mut data = parsed.data;
        self.entity_rules(entity, None, &mut data).await?;
        data.extend(computed);
        self.check_refs(&schema, &data, None, true)
            .await?
            .into_iter()
            .next()
            .map_or(Ok(()), |c| Err(conflict_to_error(c)))?;
        let rec = Record {
            entity,
            id: id.unwrap_or_else(new_id),
            owner_id: owner,
            created_at: self.now,
            updated_at: self.now,
            deleted: None,
            data,
        };
        let id = rec.id.clone();
        self.write(&schema, None, rec, Op::Create, false).await?;
        Ok(id)
    }

    async fn update(&mut self, entity: Entity, id: &str, input: &Value) -> CoreResult<()> {
        let current = self.load(entity, id, Action::Update).await?;
        self.update_loaded(entity, current, input).await
    }

    /// The actor's own user record, whatever the role says about users: only the fields of
    /// [`OWN_ACCOUNT_FIELDS`] and the password.
    async fn update_own_account(
        &mut self,
        id: &str,
        input: &Value,
        password_hash: Option<&str>,
    ) -> CoreResult<()> {
        if id != self.actor.user_id {
            return Err(DomainError::forbidden("an account may change only itself").into());
        }
        let fields = input
            .as_object()
            .ok_or_else(|| DomainError::invalid("", "the account's fields must be an object"))?;
        if let Some(other) = fields
            .keys()
            .find(|k| !OWN_ACCOUNT_FIELDS.contains(&k.as_str()))
        {
            return Err(DomainError::Forbidden {
                message: format!(
                    "a user may change only their {} themselves; '{other}' is changed by an admin",
                    OWN_ACCOUNT_FIELDS.join(" and ")
                ),
                field: Some(other.clone()),
            }
            .into());
        }
        let own =
            |this: &Self| DomainError::not_found(Entity::Users.singular(), &this.actor.user_id);
        let current = self
            .as_of_now(Entity::Users, id)
            .await?
            .ok_or_else(|| own(self))?;
        if !fields.is_empty() {
            self.update_loaded(Entity::Users, current, input).await?;
        }
        if let Some(hash) = password_hash {
            let current = self
                .as_of_now(Entity::Users, id)
                .await?
                .ok_or_else(|| own(self))?;
            self.set_password_of(current, hash).await?;
        }
        Ok(())
    }

    async fn update_loaded(
        &mut self,
        entity: Entity,
        current: Record,
        input: &Value,
    ) -> CoreResult<()> {
        let id = current.id.as_str();
        if current.is_deleted() {
            return Err(DomainError::Deleted {
                entity: entity.singular().into(),
                id: id.into(),
            }
            .into());
        }
        let schema = self.schema(entity).await?;
        let parsed = parse_fields(&schema, input, Some(&current.data), self.trusted)?;
        self.actor.check_writable(entity, &parsed.touched)?;
        let owner = match parsed.owner {
            OwnerChange::Keep => current.owner_id.clone(),
            OwnerChange::Set(o) => {
                if o != current.owner_id {
                    if !self.actor.can(entity, Action::Update, o.as_deref()) {
                        return Err(DomainError::Forbidden {
                            message: format!(
                                "role {} may not hand this {} to that owner",
                                self.actor.role.name,
                                entity.singular()
                            ),
                            field: Some("owner_id".into()),
                        }
                        .into());
                    }
                    self.check_owner(o.as_deref()).await?;
                }
                o
            }
        };
        let mut data = parsed.data;
        self.entity_rules(entity, Some(&current), &mut data).await?;
        if data == current.data && owner == current.owner_id {
            return Ok(());
        }
        self.check_refs(&schema, &data, Some(&current.data), true)
            .await?
            .into_iter()
            .next()
            .map_or(Ok(()), |c| Err(conflict_to_error(c)))?;
        let mut after = current.clone();
        after.data = data;
        after.owner_id = owner;
        after.updated_at = self.now;
        self.write(&schema, Some(current), after, Op::Update, false)
            .await
    }

    /// The owner of a record must be a live user.
    async fn check_owner(&mut self, owner: Option<&str>) -> CoreResult<()> {
        // The actor was resolved from a live, enabled user a moment ago.
        if owner == Some(self.actor.user_id.as_str()) {
            return Ok(());
        }
        if let Some(o) = owner {
            self.read(Entity::Users, o).await?;
            match self.seen(Entity::Users, o) {
                Some(u) if !u.is_deleted() => {}
                _ => {
                    return Err(DomainError::Reference {
                        field: "owner_id".into(),
                        message: format!("owner_id {o} is not an existing user"),
                    }
                    .into())
                }
            }
        }
        Ok(())
    }

    /// Rules of one entity that need more than the record itself.
    async fn entity_rules(
        &mut self,
        entity: Entity,
        before: Option<&Record>,
        data: &mut Map<String, Value>,
    ) -> CoreResult<()> {
        match entity {
            Entity::Invoices => {
                if !self.trusted {
                    invoice::check_client_change(before.map(|r| &r.data), data)?;
                }
                if !data.contains_key("number") {
                    let n = self.tx.next_counter("invoice_number").await?;
                    data.insert("number".into(), Value::from(format!("INV-{n:06}")));
                }
                invoice::compute_totals(data)?;
            }
            Entity::Payments => {
                let invoice_id = data
                    .get("invoice_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(inv) = self.as_of_now(Entity::Invoices, &invoice_id).await? {
                    if inv.data.get("status").and_then(Value::as_str) == Some("cancelled") {
                        return Err(DomainError::State {
                            field: Some("invoice_id".into()),
                            message: format!(
                                "invoice {invoice_id} is cancelled; it takes no payments"
                            ),
                        }
                        .into());
                    }
                    // A payment is in its invoice's currency, at that currency's minor units.
                    let currency = kontor_domain::money::currency_of(&inv.data).to_string();
                    let minor = kontor_domain::money::minor_units(&currency);
                    let amount = stored_dec(data.get("amount"));
                    let fixed = amount.with_scale(minor).ok_or_else(|| DomainError::State {
                        field: Some("amount".into()),
                        message: format!(
                            "amount {amount} has more decimals than the invoice's currency {currency} allows ({minor})"
                        ),
                    })?;
                    data.insert("amount".into(), Value::from(fixed.to_string()));
                    data.insert("currency".into(), Value::from(currency));
                }
                self.invoices.insert(invoice_id);
            }
            Entity::Users => {
                let role = data.get("role").and_then(Value::as_str).unwrap_or_default();
                if Role::builtin(role).is_none()
                    && self
                        .holder(Entity::Roles, "name", &role.to_lowercase())
                        .await?
                        .is_none()
                {
                    return Err(DomainError::Reference {
                        field: "role".into(),
                        message: format!("unknown role '{role}' (built-in: admin, manager, exchange; or a custom role)"),
                    }
                    .into());
                }
                if let Some(b) = before {
                    if b.data.get("role").and_then(Value::as_str) == Some("admin")
                        && (data.get("role").and_then(Value::as_str) != Some("admin")
                            || data.get("disabled") == Some(&Value::Bool(true)))
                    {
                        self.ensure_other_admin(&b.id).await?;
                    }
                }
            }
            Entity::Roles => {
                let name = data.get("name").and_then(Value::as_str).unwrap_or_default();
                if BUILTIN_ROLES.contains(&name.to_lowercase().as_str()) {
                    return Err(DomainError::Duplicate {
                        field: "name".into(),
                        message: format!("'{name}' is a built-in role name"),
                    }
                    .into());
                }
                if let Some(b) = before {
                    if b.data.get("name") != data.get("name") {
                        return Err(DomainError::State {
                            field: Some("name".into()),
                            message:
                                "a role cannot be renamed; create a new role and move its users"
                                    .into(),
                        }
                        .into());
                    }
                }
                Role::from_record_data(data)?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn ensure_other_admin(&mut self, leaving: &str) -> CoreResult<()> {
        let admins = self
            .tx
            .live_records(Entity::Users)
            .await?
            .into_iter()
            .filter(|u| {
                u.id != leaving
                    && u.data.get("role").and_then(Value::as_str) == Some("admin")
                    && u.data.get("disabled") != Some(&Value::Bool(true))
            })
            .count();
        if admins == 0 {
            return Err(DomainError::State {
                field: Some("role".into()),
                message: "this is the last active admin; make another user admin first".into(),
            }
            .into());
        }
        Ok(())
    }

    /// Reads in bulk what the mutations will look at — the records they change, the records
    /// their input refers to, the holders of the unique values their input sets — so that a
    /// batch of a thousand records costs a few round trips to the database, not thousands.
    /// Only a cache: whatever it misses is read one by one when needed.
    async fn prefetch(&mut self, mutations: &[Mutation]) -> CoreResult<()> {
        if mutations.len() < 2 {
            return Ok(());
        }
        let mut ids: BTreeMap<Entity, BTreeSet<String>> = BTreeMap::new();
        let mut values: BTreeMap<(Entity, String), BTreeSet<String>> = BTreeMap::new();
        let mut schemas: HashMap<Entity, Schema> = HashMap::new();
        for m in mutations {
            let (entity, id) = m.target();
            if let Some(id) = id {
                ids.entry(entity).or_default().insert(id.to_string());
            }
            let input = match m {
                Mutation::Create { input, .. }
                | Mutation::CreateAs { input, .. }
                | Mutation::Update { input, .. } => input.as_object(),
                _ => None,
            };
            let Some(input) = input else { continue };
            if let std::collections::hash_map::Entry::Vacant(v) = schemas.entry(entity) {
                v.insert(self.schema(entity).await?);
            }
            let Some(schema) = schemas.get(&entity) else {
                continue;
            };
            let mut refs = Vec::new();
            for f in &schema.fields {
                collect_refs(
                    f,
                    input.get(&f.name),
                    input,
                    RefAt::field(&f.name),
                    &mut refs,
                );
            }
            for (_, target, id) in refs {
                ids.entry(target).or_default().insert(id.to_string());
            }
            for key in &schema.unique {
                if let Some(v) = unique_value(input, &key.fields, key.case_insensitive) {
                    values
                        .entry((entity, key.name.clone()))
                        .or_default()
                        .insert(v);
                }
            }
        }
        for (entity, ids) in ids {
            let ids: Vec<String> = ids
                .into_iter()
                .filter(|id| {
                    let key = (entity, id.clone());
                    !self.written.contains_key(&key) && !self.referenced.contains_key(&key)
                })
                .collect();
            let mut found: HashMap<String, Record> = self
                .tx
                .get_many(entity, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
            for id in ids {
                let rec = found.remove(&id);
                self.referenced.insert((entity, id), rec);
            }
        }
        for ((entity, key), values) in values {
            let values: Vec<String> = values.into_iter().collect();
            let mut found: HashMap<String, String> = self
                .tx
                .unique_holders(entity, &key, &values)
                .await?
                .into_iter()
                .collect();
            for value in values {
                let holder = found.remove(&value);
                self.holders
                    .entry((entity, key.clone(), value))
                    .or_insert(holder);
            }
        }
        Ok(())
    }

    /// The record holding a unique value, as this batch sees it.
    async fn holder(
        &mut self,
        entity: Entity,
        key: &str,
        value: &str,
    ) -> CoreResult<Option<String>> {
        let k = (entity, key.to_string(), value.to_string());
        if let Some(h) = self.holders.get(&k) {
            return Ok(h.clone());
        }
        let h = self.tx.unique_holder(entity, key, value).await?;
        self.holders.insert(k, h.clone());
        Ok(h)
    }

    /// A record as this batch sees it: what the batch wrote, else what the database holds
    /// (read once per batch).
    async fn as_of_now(&mut self, entity: Entity, id: &str) -> CoreResult<Option<Record>> {
        self.read(entity, id).await?;
        Ok(self.seen(entity, id).cloned())
    }

    /// Makes sure the batch knows a record as of now (see [`Batch::seen`]).
    async fn read(&mut self, entity: Entity, id: &str) -> CoreResult<()> {
        let key = (entity, id.to_string());
        if !self.written.contains_key(&key) && !self.referenced.contains_key(&key) {
            let r = self.tx.get(entity, id).await?;
            self.referenced.insert(key, r);
        }
        Ok(())
    }

    /// A record [`Batch::read`] made known, without copying it.
    fn seen(&self, entity: Entity, id: &str) -> Option<&Record> {
        let key = (entity, id.to_string());
        match self.written.get(&key) {
            Some(w) => w.as_ref(),
            None => self.referenced.get(&key).and_then(Option::as_ref),
        }
    }

    /// Every reference in `data` that changed from `before` must point at a live record (that
    /// the actor can read, when `readable` is set). Returns the problems as conflicts.
    async fn check_refs(
        &mut self,
        schema: &Schema,
        data: &Map<String, Value>,
        before: Option<&Map<String, Value>>,
        readable: bool,
    ) -> CoreResult<Vec<Conflict>> {
        let mut wanted = Vec::new();
        for f in &schema.fields {
            let value = data.get(&f.name);
            if before.is_some_and(|b| b.get(&f.name) == value) {
                continue;
            }
            collect_refs(f, value, data, RefAt::field(&f.name), &mut wanted);
        }
        let mut out = Vec::new();
        for (at, target, id) in wanted {
            self.read(target, id).await?;
            let problem = match self.seen(target, id) {
                None => Some((
                    "parent_missing",
                    format!("{} {id} does not exist", target.singular()),
                )),
                Some(r) if r.is_deleted() => Some((
                    "parent_deleted",
                    format!("{} {id} is in the recycle bin", target.singular()),
                )),
                Some(r)
                    if readable && !self.actor.can(target, Action::Read, r.owner_id.as_deref()) =>
                {
                    Some((
                        "parent_missing",
                        format!("{} {id} does not exist", target.singular()),
                    ))
                }
                Some(_) => None,
            };
            if let Some((kind, msg)) = problem {
                let field = at.to_string();
                out.push(conflict(
                    schema.entity,
                    "",
                    kind,
                    Some(&field),
                    format!("field '{field}': {msg}"),
                ));
            }
        }
        Ok(out)
    }

    /// Unique values the record would hold, and conflicts with other live records.
    /// `held` are the values the record holds now: they are its own, no need to look.
    async fn uniques(
        &mut self,
        schema: &Schema,
        rec: &Record,
        held: &[(String, String)],
    ) -> CoreResult<(Vec<(String, String)>, Vec<Conflict>)> {
        let mut values = Vec::new();
        let mut conflicts = Vec::new();
        if rec.is_deleted() {
            return Ok((values, conflicts));
        }
        for key in &schema.unique {
            let Some(value) = unique_value(&rec.data, &key.fields, key.case_insensitive) else {
                continue;
            };
            if held.iter().any(|(k, v)| *k == key.name && *v == value) {
                values.push((key.name.clone(), value));
                continue;
            }
            if let Some(holder) = self.holder(schema.entity, &key.name, &value).await? {
                if holder != rec.id {
                    // Name the holder only to an actor who may read it: an id is a fact about
                    // a record, and records the actor may not read must not leak through here.
                    let readable = match self.as_of_now(schema.entity, &holder).await? {
                        Some(h) => {
                            self.actor
                                .can(schema.entity, Action::Read, h.owner_id.as_deref())
                        }
                        None => false,
                    };
                    conflicts.push(conflict(
                        schema.entity,
                        &rec.id,
                        "unique_taken",
                        key.fields.first().map(String::as_str),
                        format!(
                            "{} is already used by another {}{}",
                            describe_key(&key.fields, &rec.data),
                            schema.entity.singular(),
                            if readable {
                                format!(" ({holder})")
                            } else {
                                String::new()
                            }
                        ),
                    ));
                    continue;
                }
            }
            values.push((key.name.clone(), value));
        }
        Ok((values, conflicts))
    }

    /// Writes a record row with its unique values and queues its journal entry.
    async fn write(
        &mut self,
        schema: &Schema,
        before: Option<Record>,
        after: Record,
        op: Op,
        collect_conflicts: bool,
    ) -> CoreResult<()> {
        // A record in the bin holds no unique values.
        let held = match &before {
            Some(b) if !b.is_deleted() => unique_values(schema, &b.data),
            _ => Vec::new(),
        };
        let (values, conflicts) = self.uniques(schema, &after, &held).await?;
        if !conflicts.is_empty() {
            if collect_conflicts {
                self.conflicts.extend(conflicts);
                return Ok(());
            }
            if let Some(c) = conflicts.into_iter().next() {
                return Err(conflict_to_error(c).into());
            }
        }
        let parent = parent_of(schema, &after.data);
        self.tx
            .put(&after, parent.as_deref(), &after.search_text(schema))
            .await?;
        // Only touch the unique values when they change.
        if held != values {
            self.tx
                .set_uniques(after.entity, &after.id, &values)
                .await?;
            for (key, value) in held {
                self.holders.insert((after.entity, key, value), None);
            }
            for (key, value) in &values {
                self.holders.insert(
                    (after.entity, key.clone(), value.clone()),
                    Some(after.id.clone()),
                );
            }
        }
        if after.entity == Entity::Payments {
            if let Some(inv) = after.data.get("invoice_id").and_then(Value::as_str) {
                self.invoices.insert(inv.to_string());
            }
        }
        self.entries.push(NewJournalEntry {
            actor: self.actor.user_id.clone(),
            origin: self.origin,
            batch: self.batch,
            entity: after.entity,
            record_id: after.id.clone(),
            op,
            owner_id: after.owner_id.clone(),
            before: before
                .map(|r| r.image_json())
                .transpose()
                .map_err(image_error)?,
            after: Some(after.image_json().map_err(image_error)?),
        });
        if after.entity == Entity::Fields {
            self.fields_changed = true;
            self.custom = None;
        }
        self.written
            .insert((after.entity, after.id.clone()), Some(after));
        Ok(())
    }

    /// Moves a live record and everything that cascades from it to the bin, in this batch.
    async fn delete_tree(&mut self, root: Record) -> CoreResult<()> {
        if root.entity == Entity::Users {
            if root.id == self.actor.user_id {
                return Err(DomainError::State {
                    field: None,
                    message: "you cannot delete your own user".into(),
                }
                .into());
            }
            if root.data.get("role").and_then(Value::as_str) == Some("admin") {
                self.ensure_other_admin(&root.id).await?;
            }
        }
        if root.entity == Entity::Roles {
            let name = root
                .data
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let in_use = self
                .tx
                .live_records(Entity::Users)
                .await?
                .iter()
                .filter(|u| u.data.get("role").and_then(Value::as_str) == Some(name))
                .count();
            if in_use > 0 {
                return Err(DomainError::State {
                    field: None,
                    message: format!(
                        "role '{name}' is given to {in_use} user(s); change their role first"
                    ),
                }
                .into());
            }
        }
        let mut queue = vec![root];
        let mut all = Vec::new();
        let mut seen = BTreeSet::new();
        while let Some(rec) = queue.pop() {
            if !seen.insert((rec.entity, rec.id.clone())) {
                continue;
            }
            for child in self.tx.children(&rec.id).await? {
                queue.push(child);
            }
            all.push(rec);
        }
        // Neither the number nor the kind of dependents the actor may not delete is told:
        // some of them the actor may not even read.
        let foreign = all.iter().skip(1).any(|r| {
            !self
                .actor
                .can(r.entity, Action::Delete, r.owner_id.as_deref())
        });
        if foreign {
            return Err(DomainError::forbidden(format!(
                "records that depend on this {} would be deleted with it, and role {} may not delete all of them",
                all.first().map_or("record", |r| r.entity.singular()),
                self.actor.role.name
            ))
            .into());
        }
        for rec in all {
            let schema = self.schema(rec.entity).await?;
            let mut after = rec.clone();
            after.deleted = Some(Deletion {
                batch: self.batch,
                at: self.now,
                by: self.actor.user_id.clone(),
            });
            after.updated_at = self.now;
            self.write(&schema, Some(rec), after, Op::Delete, false)
                .await?;
        }
        Ok(())
    }

    async fn restore_deleted(&mut self, entity: Entity, id: &str) -> CoreResult<()> {
        let rec = self.load(entity, id, Action::Delete).await?;
        let Some(del) = rec.deleted.clone() else {
            return Err(DomainError::State {
                field: None,
                message: format!("{} {id} is not in the recycle bin", entity.singular()),
            }
            .into());
        };
        let mut group = self.tx.deleted_in_batch(del.batch).await?;
        group.sort_by_key(|r| dependency_rank(r.entity));
        for r in &group {
            if !self
                .actor
                .can(r.entity, Action::Delete, r.owner_id.as_deref())
            {
                return Err(DomainError::forbidden(format!(
                    "the deletion batch holds records that role {} may not restore",
                    self.actor.role.name
                ))
                .into());
            }
        }
        // Parents come back first, so a child's reference to a parent deleted in the same batch
        // finds it live again by the time the child is checked.
        for r in group {
            let schema = self.schema(r.entity).await?;
            for c in self.check_refs(&schema, &r.data, None, false).await? {
                self.conflicts.push(Conflict {
                    record_id: r.id.clone(),
                    ..c
                });
            }
            if r.entity == Entity::Invoices {
                // Payments purged from the bin meanwhile no longer count.
                self.invoices.insert(r.id.clone());
            }
            let mut after = r.clone();
            after.deleted = None;
            after.updated_at = self.now;
            self.write(&schema, Some(r), after, Op::Restore, true)
                .await?;
        }
        Ok(())
    }

    async fn purge(&mut self, entity: Entity, id: &str) -> CoreResult<()> {
        if !self.actor.is_admin() {
            return Err(DomainError::forbidden("only an admin may purge records for good").into());
        }
        let rec = self
            .as_of_now(entity, id)
            .await?
            .ok_or_else(|| DomainError::not_found(entity.singular(), id))?;
        if !rec.is_deleted() {
            return Err(DomainError::State {
                field: None,
                message: format!(
                    "{} {id} is not in the recycle bin; delete it before purging",
                    entity.singular()
                ),
            }
            .into());
        }
        self.tx.remove(entity, id).await?;
        self.tx.scrub(entity, id).await?;
        if entity == Entity::Users {
            self.tx.remove_password_hash(id).await?;
        }
        if entity == Entity::Fields {
            self.fields_changed = true;
            self.custom = None;
        }
        self.written.insert((entity, id.to_string()), None);
        self.entries.push(NewJournalEntry {
            actor: self.actor.user_id.clone(),
            origin: self.origin,
            batch: self.batch,
            entity,
            record_id: id.to_string(),
            op: Op::Purge,
            owner_id: rec.owner_id.clone(),
            before: None,
            after: None,
        });
        Ok(())
    }

    /// Restore and undo change a record like an update does; as in [`Batch::load`], records the
    /// actor may not even read look absent.
    fn check_restorable(&self, rec: &Record) -> CoreResult<()> {
        let owner = rec.owner_id.as_deref();
        if self.actor.can(rec.entity, Action::Update, owner) {
            return Ok(());
        }
        if self.actor.can(rec.entity, Action::Read, owner) {
            return Err(DomainError::forbidden(format!(
                "role {} may not restore this {}",
                self.actor.role.name,
                rec.entity.singular()
            ))
            .into());
        }
        Err(DomainError::not_found(rec.entity.singular(), rec.id.clone()).into())
    }

    async fn set_state(
        &mut self,
        entity: Entity,
        id: &str,
        target: Option<&Value>,
    ) -> CoreResult<()> {
        let Some(current) = self.as_of_now(entity, id).await? else {
            self.conflicts.push(purged(entity, id));
            return Ok(());
        };
        self.check_restorable(&current)?;
        let wanted = target.and_then(|img| Record::from_image(entity, img));
        let Some(mut wanted) = wanted.filter(|w| w.deleted.is_none()) else {
            // The record should not be live: move it to the bin (with what cascades from it),
            // unless it already is.
            if !current.is_deleted() {
                self.delete_tree(current).await?;
            }
            return Ok(());
        };
        if !self
            .actor
            .can(entity, Action::Update, wanted.owner_id.as_deref())
        {
            return Err(DomainError::forbidden(format!(
                "role {} may not give this {} back to its earlier owner",
                self.actor.role.name,
                entity.singular()
            ))
            .into());
        }
        // Credentials are never put back: their fields keep today's values.
        for f in schema::credential_fields(entity) {
            let now = current.data.get(*f).cloned();
            if wanted.data.get(*f) != now.as_ref() {
                self.skip_credential(entity, id, f);
                match now {
                    Some(v) => wanted.data.insert(f.to_string(), v),
                    None => wanted.data.remove(*f),
                };
            }
        }
        // Fields the role hides or makes read-only may not change this way either.
        let changed: BTreeSet<String> = current
            .data
            .keys()
            .chain(wanted.data.keys())
            .filter(|k| current.data.get(*k) != wanted.data.get(*k))
            .cloned()
            .collect();
        self.actor
            .check_writable(entity, &changed.into_iter().collect::<Vec<_>>())?;
        let schema = self.schema(entity).await?;
        let before_data = if current.is_deleted() {
            None
        } else {
            Some(&current.data)
        };
        for c in self
            .check_refs(&schema, &wanted.data, before_data, false)
            .await?
        {
            self.conflicts.push(Conflict {
                record_id: id.to_string(),
                ..c
            });
        }
        if let Some(o) = &wanted.owner_id {
            if !matches!(self.as_of_now(Entity::Users, o).await?, Some(u) if !u.is_deleted()) {
                self.conflicts.push(conflict(
                    entity,
                    id,
                    "owner_missing",
                    Some("owner_id"),
                    format!("its earlier owner {o} is no longer a user"),
                ));
            }
        }
        if !current.is_deleted()
            && current.data == wanted.data
            && current.owner_id == wanted.owner_id
        {
            return Ok(());
        }
        let op = if current.is_deleted() {
            Op::Restore
        } else {
            Op::Update
        };
        if entity == Entity::Invoices {
            // The paid state follows the payments recorded now, not those of the restored time.
            self.invoices.insert(id.to_string());
        }
        let mut after = current.clone();
        after.data = wanted.data;
        after.owner_id = wanted.owner_id;
        after.deleted = None;
        after.updated_at = self.now;
        self.write(&schema, Some(current), after, op, true).await
    }

    async fn revert(
        &mut self,
        entity: Entity,
        id: &str,
        entries: &[JournalEntry],
    ) -> CoreResult<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        if entries.iter().any(|e| e.scrubbed || e.op == Op::Purge) {
            self.conflicts.push(purged(entity, id));
            return Ok(());
        }
        let Some(current) = self.as_of_now(entity, id).await? else {
            self.conflicts.push(purged(entity, id));
            return Ok(());
        };
        self.check_restorable(&current)?;
        let current_img = current.to_image();
        let target_state = life(first.before.as_ref());
        let expected_state = life(last.after.as_ref());
        let current_state = life(Some(&current_img));
        if current_state != expected_state {
            if current
                .deleted
                .as_ref()
                .is_some_and(|d| d.batch == self.batch)
            {
                if target_state != expected_state {
                    // Already moved to the bin by this batch (a parent's cascade).
                    return Ok(());
                }
                // Binned by a parent's cascade in this batch although these entries kept it
                // live: the field revert below brings it back.
            } else {
                // Moved into or out of the bin since these entries: leave it as it is.
                self.conflicts.push(conflict(
                    entity,
                    id,
                    "changed_since",
                    None,
                    format!(
                        "{} {id} was {} since; it is left as it is",
                        entity.singular(),
                        if current_state == Life::Live {
                            "restored"
                        } else {
                            "deleted"
                        }
                    ),
                ));
                return Ok(());
            }
        }
        // Field by field: the value before the earliest entry that changed the field, if the
        // field still holds what the latest entry that changed it wrote.
        let mut target_fields: BTreeMap<String, (Value, Value)> = BTreeMap::new();
        for e in entries {
            for ch in diff(e.before.as_ref(), e.after.as_ref()) {
                if RESTORE_IGNORED.contains(&ch.field.as_str()) {
                    continue;
                }
                if schema::credential_fields(entity).contains(&ch.field.as_str()) {
                    self.skip_credential(entity, id, &ch.field);
                    continue;
                }
                target_fields
                    .entry(ch.field)
                    .and_modify(|(_, after)| *after = ch.after.clone())
                    .or_insert((ch.before, ch.after));
            }
        }
        let mut image = current_img.clone();
        let mut changed_since = Vec::new();
        if let Value::Object(m) = &mut image {
            for (field, (old, new)) in &target_fields {
                let now = m.get(field).cloned().unwrap_or(Value::Null);
                if &now == new {
                    if old.is_null() {
                        m.remove(field);
                    } else {
                        m.insert(field.clone(), old.clone());
                    }
                } else if &now != old {
                    changed_since.push(field.clone());
                }
            }
        }
        if !changed_since.is_empty() {
            for f in changed_since {
                self.conflicts.push(conflict(
                    entity,
                    id,
                    "changed_since",
                    Some(&f),
                    format!(
                        "field '{f}' of {} {id} was changed by someone else since",
                        entity.singular()
                    ),
                ));
            }
            return Ok(());
        }
        if target_state != Life::Live {
            return self.set_state(entity, id, None).await;
        }
        if let Value::Object(m) = &mut image {
            for k in ["deleted_at", "deleted_by", "deleted_batch"] {
                m.insert(k.into(), Value::Null);
            }
        }
        self.set_state(entity, id, Some(&image)).await
    }

    fn skip_credential(&mut self, entity: Entity, id: &str, field: &str) {
        let s = Skipped {
            entity: entity.as_str().into(),
            record_id: id.into(),
            field: field.into(),
            reason: "restore and undo never bring back a password; set a new one instead".into(),
        };
        if !self.skipped.contains(&s) {
            self.skipped.push(s);
        }
    }

    /// Brings the paid state of invoices whose payments changed up to date, in this batch.
    async fn recompute_invoices(&mut self) -> CoreResult<()> {
        let ids: Vec<String> = std::mem::take(&mut self.invoices).into_iter().collect();
        for id in ids {
            let Some(inv) = self.as_of_now(Entity::Invoices, &id).await? else {
                continue;
            };
            if inv.is_deleted() {
                continue;
            }
            let payments: Vec<_> = self
                .tx
                .children(&id)
                .await?
                .into_iter()
                .filter(|r| r.entity == Entity::Payments)
                .map(|p| {
                    (
                        stored_dec(p.data.get("amount")),
                        p.data
                            .get("date")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    )
                })
                .collect();
            let mut data = inv.data.clone();
            invoice::apply_payments(&mut data, &payments);
            if data != inv.data {
                let schema = self.schema(Entity::Invoices).await?;
                let mut after = inv.clone();
                after.data = data;
                after.updated_at = self.now;
                self.write(&schema, Some(inv), after, Op::Update, false)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Order in which records come back to life so parents exist before their children.
fn dependency_rank(e: Entity) -> u8 {
    match e {
        Entity::Teams => 0,
        Entity::Roles => 1,
        Entity::Users => 2,
        Entity::Fields => 3,
        Entity::Companies => 4,
        Entity::Contacts => 5,
        Entity::Leads => 6,
        Entity::Deals => 7,
        Entity::PriceTypes => 8,
        Entity::Warehouses => 9,
        Entity::Properties => 10,
        Entity::ProductGroups => 11,
        Entity::Products => 12,
        Entity::Offers => 13,
        Entity::Invoices => 14,
        Entity::Payments => 15,
        Entity::Activities => 16,
        Entity::OnecDatabases => 17,
        Entity::ImportTemplates => 18,
    }
}

/// Sorts mutations so that parents come back to life before their children.
pub fn sort_for_restore(items: &mut [Mutation]) {
    items.sort_by_key(|m| dependency_rank(m.target().0));
}

/// Where a reference sits in a record: a field, or a field of one row of a rows field
/// (`lines[2].product_id`). Written out only when a reference is refused.
#[derive(Debug, Clone, Copy)]
struct RefAt<'s> {
    field: &'s str,
    row: Option<(usize, &'s str)>,
}

impl<'s> RefAt<'s> {
    fn field(field: &'s str) -> Self {
        RefAt { field, row: None }
    }
}

impl std::fmt::Display for RefAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.row {
            None => f.write_str(self.field),
            Some((i, sub)) => write!(f, "{}[{i}].{sub}", self.field),
        }
    }
}

/// The references a field's value makes: `(where, target entity, target id)`. Rows are not
/// nested in Kontor's schemas; a reference in a row is named by its row and field.
fn collect_refs<'s>(
    f: &'s FieldDef,
    value: Option<&'s Value>,
    data: &'s Map<String, Value>,
    at: RefAt<'s>,
    out: &mut Vec<(RefAt<'s>, Entity, &'s str)>,
) {
    let Some(value) = value else { return };
    match &f.ty {
        FieldType::Ref(target) => {
            if let Some(id) = value.as_str() {
                out.push((at, *target, id));
            }
        }
        FieldType::LinkedRef { entity_field } => {
            let target = data
                .get(*entity_field)
                .and_then(Value::as_str)
                .filter(|s| LINKABLE.contains(s))
                .and_then(|s| s.parse::<Entity>().ok());
            if let (Some(t), Some(id)) = (target, value.as_str()) {
                out.push((at, t, id));
            }
        }
        FieldType::Rows(defs) => {
            for (i, row) in value.as_array().into_iter().flatten().enumerate() {
                let Some(row) = row.as_object() else { continue };
                for d in defs {
                    let at = RefAt {
                        field: at.field,
                        row: Some((i, &d.name)),
                    };
                    collect_refs(d, row.get(&d.name), row, at, out);
                }
            }
        }
        _ => {}
    }
}

/// Image fields that restore and undo never compare: they follow from the change itself.
const RESTORE_IGNORED: [&str; 6] = [
    "id",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted_by",
    "deleted_batch",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Absent,
    Live,
    Deleted,
}

fn life(image: Option<&Value>) -> Life {
    match image {
        None => Life::Absent,
        Some(v) if v.get("deleted_batch").is_some_and(|b| !b.is_null()) => Life::Deleted,
        Some(_) => Life::Live,
    }
}

fn describe_key(fields: &[String], data: &Map<String, Value>) -> String {
    fields
        .iter()
        .map(|f| {
            let v = data.get(f).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            format!("{f} '{}'", v.unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(" with ")
}
