//! The search as a reader sees it ([`Search::search`]) and keeping the index current from the
//! journal ([`Search::catch_up`], [`Search::follow`], [`Search::rebuild`]).
//!
//! What a reader gets is decided twice: the index filters by entity and owner as the reader's
//! role allows, then every hit is read from the database, checked again (still live, still
//! readable) and, when the role hides some indexed fields, matched again on the visible ones
//! only, so a hidden value never finds a record. Highlights come from the visible fields.

use crate::document::{self, is_searched, SEARCHED};
use crate::index::{Position, SearchIndex};
use crate::matcher::{Highlight, Query};
use crate::{SearchError, SearchResult};
use kontor_core::read::present;
use kontor_core::Kontor;
use kontor_domain::journal::Op;
use kontor_domain::permission::{Action, Actor, OwnerFilter};
use kontor_domain::schema::Schema;
use kontor_domain::{DomainError, Entity};
use kontor_store::JournalQuery;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, RwLock};

/// A query longer than this is refused.
pub const MAX_QUERY: usize = 200;
/// Results per entity when the request does not say.
pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 50;
/// Journal entries read per page while catching up.
const PAGE: u32 = 1000;
/// Documents put between two commits while catching up or rebuilding.
const COMMIT_EVERY: u64 = 50_000;
/// How often a follower looks at the journal's head for other nodes' writes.
const POLL: Duration = Duration::from_secs(2);
/// How long a follower lets writes gather before taking them in.
const GATHER: Duration = Duration::from_millis(200);
/// While writes keep coming, how often the follower commits what it took in. A commit makes a
/// segment durable and visible and starts merges, work that grows with the index: committing
/// after every gathered burst cost a 1M-row import a third of its time. A search commits what
/// was taken in before it runs, so nothing written is missed for want of a commit.
const FOLLOW_COMMIT_EVERY: Duration = Duration::from_secs(5);

/// When following the journal commits what it took in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Commit {
    /// At the end: a search is waiting to see everything.
    Now,
    /// When [`FOLLOW_COMMIT_EVERY`] has passed since the last commit, or the journal had
    /// nothing new (the writes stopped).
    WhenDue,
}

#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub q: String,
    /// Only these entities (by name); all searched ones when empty.
    pub entities: Vec<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResults {
    pub query: String,
    pub groups: Vec<ResultGroup>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResultGroup {
    #[serde(serialize_with = "entity_name")]
    pub entity: Entity,
    /// How many records matched (for a role that hides some of the entity's fields: how many
    /// are shown, see `total_is_estimate`).
    pub total: usize,
    /// The reader's role hides some of this entity's fields, so `total` counts only the records
    /// shown here: more may match on the fields it sees.
    pub total_is_estimate: bool,
    pub items: Vec<ResultItem>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResultItem {
    pub id: String,
    pub title: String,
    pub score: f32,
    pub highlight: Option<Highlight>,
    /// The record as the reader may see it.
    pub record: Value,
}

/// The index of this node and what keeps it current.
pub struct Search {
    index: RwLock<SearchIndex>,
    /// The journal seq the index is current up to (read without the lock).
    seq: AtomicI64,
    /// The index was found to fit this database (or rebuilt for it).
    checked: AtomicBool,
    rebuilding: AtomicBool,
    /// Records put by the rebuild under way.
    rebuilt: AtomicU64,
}

impl Search {
    pub fn open(dir: &Path) -> SearchResult<Search> {
        let index = SearchIndex::open(dir)?;
        let seq = index.position()?.seq;
        Ok(Search {
            index: RwLock::new(index),
            seq: AtomicI64::new(seq),
            checked: AtomicBool::new(false),
            rebuilding: AtomicBool::new(false),
            rebuilt: AtomicU64::new(0),
        })
    }

    /// The journal seq the index is current up to, and the documents it holds.
    pub async fn state(&self) -> (i64, u64) {
        let idx = self.index.read().await;
        (self.seq.load(Ordering::Acquire), idx.documents())
    }

    /// Searches as `actor`: the best `limit` records of each entity the actor may read.
    pub async fn search(
        &self,
        kontor: &Kontor,
        actor: &Actor,
        p: &SearchParams,
    ) -> SearchResult<SearchResults> {
        // An empty query (or one of spaces) finds nothing; it is not an error.
        let text = p.q.trim();
        if text.chars().count() > MAX_QUERY {
            return Err(DomainError::invalid(
                "q",
                format!("q must have at most {MAX_QUERY} characters"),
            )
            .into());
        }
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(
                DomainError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}")).into(),
            );
        }
        let mut entities = Vec::new();
        for name in &p.entities {
            let e = name
                .parse::<Entity>()
                .ok()
                .filter(|e| is_searched(*e))
                .ok_or_else(|| {
                    let names: Vec<&str> = SEARCHED.iter().map(|e| e.as_str()).collect();
                    DomainError::invalid(
                        "entity",
                        format!(
                            "entity '{name}' is not searched; one of {}",
                            names.join(", ")
                        ),
                    )
                })?;
            entities.push(e);
        }
        if entities.is_empty() {
            entities = SEARCHED.to_vec();
        }
        let scope: Vec<(Entity, OwnerFilter)> = entities
            .iter()
            .map(|e| (*e, actor.owner_filter(*e, Action::Read)))
            .filter(|(_, o)| *o != OwnerFilter::Nothing)
            .collect();
        let query = Query::parse(text);
        if scope.is_empty() || query.is_empty() {
            return Ok(SearchResults {
                query: text.to_string(),
                groups: Vec::new(),
            });
        }
        self.catch_up(kontor).await?;
        // A few more than asked, for hits the re-check drops.
        let per_group = limit as usize + limit as usize / 2 + 2;
        let groups = {
            let idx = self.index.read().await;
            tokio::task::block_in_place(|| idx.search(&query, &scope, per_group))?
        };
        let mut out = Vec::new();
        for g in groups {
            let schema = kontor.schema(g.entity).await?;
            let visible = actor.visible_schema(&schema);
            let ids: Vec<String> = g.hits.iter().map(|h| h.id.clone()).collect();
            let mut records: HashMap<String, kontor_domain::Record> = kontor
                .store
                .get_many(g.entity, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
            // A role that hides some of this entity's fields gets only what it can confirm on
            // the fields it sees, and a count of that alone: the index's count would tell how
            // many records match through a hidden value.
            let hides = visible.fields.len() < schema.fields.len();
            let mut items = Vec::new();
            for hit in &g.hits {
                let Some(rec) = records.remove(&hit.id) else {
                    continue;
                };
                if rec.is_deleted() || !actor.can(g.entity, Action::Read, rec.owner_id.as_deref()) {
                    continue;
                }
                let texts = document::field_texts(&visible, &rec.data);
                let keys = document::exact_keys(&visible, &rec.data);
                if !query.matches(&texts, &keys) {
                    continue;
                }
                if items.len() == limit as usize {
                    break;
                }
                let keys_by_field: Vec<(&str, Vec<String>)> = texts
                    .iter()
                    .map(|(f, _)| {
                        let keys = visible
                            .field(f)
                            .map(|d| document::field_exact_keys(d, &rec.data))
                            .unwrap_or_default();
                        (*f, keys)
                    })
                    .collect();
                let shown = present(actor, &rec);
                let title = shown
                    .as_object()
                    .map(|m| document::title(g.entity, m))
                    .unwrap_or_default();
                items.push(ResultItem {
                    id: rec.id.clone(),
                    title,
                    score: hit.score,
                    highlight: query.highlight(&texts, &keys_by_field),
                    record: shown,
                });
            }
            if items.is_empty() && (hides || g.total == 0) {
                continue;
            }
            out.push(ResultGroup {
                entity: g.entity,
                total: if hides { items.len() } else { g.total },
                total_is_estimate: hides,
                items,
            });
        }
        Ok(SearchResults {
            query: text.to_string(),
            groups: out,
        })
    }

    /// Brings the index up to the journal's head (rebuilding it first when it does not fit
    /// this database). A process that does not keep the index only reloads what the keeping
    /// process committed.
    pub async fn catch_up(&self, kontor: &Kontor) -> SearchResult<()> {
        self.catch_up_with(kontor, Commit::Now).await
    }

    async fn catch_up_with(&self, kontor: &Kontor, commit: Commit) -> SearchResult<()> {
        if self.rebuilding.load(Ordering::Acquire) {
            return Err(SearchError::Busy(format!(
                "the search index is being rebuilt ({} records so far); try again shortly",
                self.rebuilt.load(Ordering::Relaxed)
            )));
        }
        let head = kontor.store.journal_head().await?;
        if self.checked.load(Ordering::Acquire) && self.seq.load(Ordering::Acquire) >= head {
            return Ok(());
        }
        let mut idx = self.index.write().await;
        if !idx.is_writer() {
            idx.refresh()?;
            self.seq.store(idx.position()?.seq, Ordering::Release);
            return Ok(());
        }
        if !self.checked.load(Ordering::Acquire) {
            let pos = idx.position()?;
            if !fits(kontor, &pos, idx.documents(), head).await? {
                tracing::info!(
                    seq = pos.seq,
                    "the search index does not fit this database; rebuilding it"
                );
                self.rebuild_locked(&mut idx, kontor, &|_| {}).await?;
            }
            self.checked.store(true, Ordering::Release);
        }
        self.follow_journal(&mut idx, kontor, commit).await
    }

    /// Takes in the journal's entries after the last one taken in, committing as `commit` says
    /// (and every [`COMMIT_EVERY`] documents, which bounds what the writer holds).
    async fn follow_journal(
        &self,
        idx: &mut SearchIndex,
        kontor: &Kontor,
        commit: Commit,
    ) -> SearchResult<()> {
        let mut pos = idx.taken()?;
        let start = pos.seq;
        let mut schemas: HashMap<Entity, Schema> = HashMap::new();
        let mut pending = 0u64;
        loop {
            let entries = kontor
                .store
                .journal(&JournalQuery {
                    cursor: Some(pos.seq),
                    limit: PAGE,
                    ..JournalQuery::default()
                })
                .await?;
            let Some(last) = entries.last() else { break };
            if entries.iter().any(|e| e.entity == Entity::Fields) {
                // Custom fields changed: which fields are indexed may have too.
                self.rebuild_locked(idx, kontor, &|_| {}).await?;
                pos = idx.position()?;
                schemas.clear();
                continue;
            }
            let next = Position {
                format: 0,
                seq: last.seq,
                batch: last.batch.to_string(),
                listed: pos.listed,
            };
            for e in entries.iter().filter(|e| is_searched(e.entity)) {
                let schema = match schemas.entry(e.entity) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(kontor.schema(e.entity).await?)
                    }
                };
                let live = e
                    .after
                    .as_ref()
                    .filter(|img| img.get("deleted_batch").is_none_or(Value::is_null))
                    .and_then(Value::as_object);
                let owner = live
                    .and_then(|img| img.get("owner_id"))
                    .and_then(Value::as_str)
                    .or(e.owner_id.as_deref());
                // A record created after the last listing of all records was never put before.
                let new = e.op == Op::Create && e.seq > pos.listed;
                idx.put(schema, e.entity, &e.record_id, owner, live, new)?;
                pending += 1;
            }
            pos = next;
            idx.took(pos.clone());
            if pending >= COMMIT_EVERY {
                tokio::task::block_in_place(|| idx.commit(&pos))?;
                self.seq.store(pos.seq, Ordering::Release);
                pending = 0;
            }
        }
        let due = match (commit, idx.uncommitted()) {
            (_, None) => false,
            (Commit::Now, Some(_)) => true,
            (Commit::WhenDue, Some(since)) => since >= FOLLOW_COMMIT_EVERY || pos.seq == start,
        };
        if due || (commit == Commit::Now && pos.seq != self.seq.load(Ordering::Acquire)) {
            tokio::task::block_in_place(|| idx.commit(&pos))?;
            self.seq.store(pos.seq, Ordering::Release);
        }
        Ok(())
    }

    /// Builds the index again from the records (`progress` is told the records put so far),
    /// then follows the journal from where the build began.
    pub async fn rebuild(
        &self,
        kontor: &Kontor,
        progress: &(dyn Fn(u64) + Sync),
    ) -> SearchResult<u64> {
        let mut idx = self.index.write().await;
        if !idx.is_writer() {
            return Err(SearchError::Busy("another process keeps this search index (a running server rebuilds it through POST /api/v1/admin/search/rebuild)".into()));
        }
        let n = self.rebuild_locked(&mut idx, kontor, progress).await?;
        self.checked.store(true, Ordering::Release);
        self.follow_journal(&mut idx, kontor, Commit::Now).await?;
        Ok(n)
    }

    async fn rebuild_locked(
        &self,
        idx: &mut SearchIndex,
        kontor: &Kontor,
        progress: &(dyn Fn(u64) + Sync),
    ) -> SearchResult<u64> {
        self.rebuilding.store(true, Ordering::Release);
        self.rebuilt.store(0, Ordering::Relaxed);
        let result = self.rebuild_records(idx, kontor, progress).await;
        self.rebuilding.store(false, Ordering::Release);
        result
    }

    async fn rebuild_records(
        &self,
        idx: &mut SearchIndex,
        kontor: &Kontor,
        progress: &(dyn Fn(u64) + Sync),
    ) -> SearchResult<u64> {
        // Entries after the head read here are taken in afterwards; putting a record twice
        // leaves its latest state.
        let seq = kontor.store.journal_head().await?;
        let mut at = Position {
            format: 0,
            seq,
            batch: batch_at(kontor, seq).await?,
            listed: 0,
        };
        idx.clear()?;
        let mut done = 0u64;
        for entity in SEARCHED {
            let schema = kontor.schema(entity).await?;
            let mut after_id = None;
            loop {
                let page = kontor
                    .store
                    .list(&kontor_store::ListQuery::all(entity, after_id.take(), PAGE))
                    .await?;
                for r in &page {
                    let data = Some(&r.data);
                    idx.put(&schema, entity, &r.id, r.owner_id.as_deref(), data, true)?;
                }
                done += page.len() as u64;
                self.rebuilt.store(done, Ordering::Relaxed);
                progress(done);
                if done % COMMIT_EVERY < page.len() as u64 {
                    // Bounds what the writer holds in memory. A half-built index is at no
                    // journal position: should the process stop here, the next start finds
                    // documents at seq 0, which fits nothing, and builds it again.
                    tokio::task::block_in_place(|| idx.commit(&Position::default()))?;
                }
                match page.last() {
                    Some(r) if page.len() == PAGE as usize => after_id = Some(r.id.clone()),
                    _ => break,
                }
            }
        }
        // Records created from here on were not listed; those created since `seq` may have
        // been, and are replaced when their entries are taken in.
        at.listed = kontor.store.journal_head().await?;
        tokio::task::block_in_place(|| idx.commit(&at))?;
        self.seq.store(at.seq, Ordering::Release);
        Ok(done)
    }

    /// Keeps the index current until `stop` turns true: after each write of this process, and
    /// every few seconds for other nodes' writes.
    pub async fn follow(self: Arc<Self>, kontor: Arc<Kontor>, mut stop: watch::Receiver<bool>) {
        let mut written = kontor.journal_written();
        let mut warned = false;
        loop {
            match self.catch_up_with(&kontor, Commit::WhenDue).await {
                Ok(()) => warned = false,
                Err(SearchError::Busy(_)) => {}
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "the search index could not follow the journal; retrying");
                        warned = true;
                    }
                }
            }
            tokio::select! {
                // Writes come in bursts: gather a moment's worth into one commit. A search
                // does not wait for this; it catches up itself.
                _ = written.changed() => tokio::time::sleep(GATHER).await,
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

/// Whether an index at `pos` holding `documents` belongs to this database (whose journal ends
/// at `head`): the entry it last took in is still there, from the same batch. A new, empty
/// index fits only an empty journal: a database with history is indexed from its records,
/// which is quicker than replaying every entry it ever had.
async fn fits(kontor: &Kontor, pos: &Position, documents: u64, head: i64) -> SearchResult<bool> {
    if pos.seq == 0 {
        return Ok(documents == 0 && pos.batch.is_empty() && head == 0);
    }
    Ok(batch_at(kontor, pos.seq).await? == pos.batch && !pos.batch.is_empty())
}

/// The batch of the journal entry at `seq` ("" when there is none).
async fn batch_at(kontor: &Kontor, seq: i64) -> SearchResult<String> {
    if seq <= 0 {
        return Ok(String::new());
    }
    let entries = kontor
        .store
        .journal(&JournalQuery {
            cursor: Some(seq - 1),
            limit: 1,
            ..JournalQuery::default()
        })
        .await?;
    Ok(entries
        .first()
        .filter(|e| e.seq == seq)
        .map(|e| e.batch.to_string())
        .unwrap_or_default())
}

fn entity_name<S: serde::Serializer>(e: &Entity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.as_str())
}

/// The search index serving `q` in lists.
#[async_trait::async_trait]
impl kontor_core::list::TextIndex for Search {
    async fn matching_ids(
        &self,
        kontor: &Kontor,
        entity: Entity,
        owners: &OwnerFilter,
        q: &str,
        cap: usize,
    ) -> kontor_core::CoreResult<(Vec<String>, usize)> {
        let as_core = |e: SearchError| -> kontor_core::CoreError {
            match e {
                SearchError::Core(c) => c,
                SearchError::Busy(m) => kontor_store::StoreError::Unavailable(m).into(),
                SearchError::Index(m) => {
                    kontor_store::StoreError::Other(format!("search index: {m}")).into()
                }
            }
        };
        let query = Query::parse(q);
        if query.is_empty() {
            return Ok((Vec::new(), 0));
        }
        self.catch_up(kontor).await.map_err(as_core)?;
        let idx = self.index.read().await;
        tokio::task::block_in_place(|| idx.matching_ids(&query, entity, owners, cap))
            .map_err(as_core)
    }

    fn covers(&self, entity: Entity) -> bool {
        is_searched(entity)
    }

    fn matches(&self, visible: &Schema, rec: &kontor_domain::Record, q: &str) -> bool {
        Query::parse(q).matches(
            &document::field_texts(visible, &rec.data),
            &document::exact_keys(visible, &rec.data),
        )
    }
}
