//! The index on disk (tantivy, in `<data dir>/search`): one document per live record of the
//! searched entities, kept current from the journal. Its commit payload says up to which journal
//! entry it is current and which batch that entry belonged to, so an index that no longer fits
//! its database (a restore, another database) is noticed and rebuilt.

use crate::document::{self, SEARCHED};
use crate::matcher::{self, Query as Words, ANALYZER};
use crate::{SearchError, SearchResult};
use kontor_domain::permission::OwnerFilter;
use kontor_domain::schema::Schema;
use kontor_domain::Entity;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema as IndexSchema, TextFieldIndexing, TextOptions, FAST, INDEXED,
    STORED, STRING,
};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TantivyDocument, Term,
};

/// Memory the index writer buffers documents in before writing a segment.
const WRITER_MEMORY: usize = 32 * 1024 * 1024;
/// Format of the payload and the documents; a different one is rebuilt.
const FORMAT: u32 = 2;

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    entity: Field,
    entity_code: Field,
    id: Field,
    owner: Field,
    text: Field,
    exact: Field,
}

fn index_schema() -> (IndexSchema, Fields) {
    let mut b = IndexSchema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        entity: b.add_text_field("entity", STRING | STORED),
        entity_code: b.add_u64_field("entity_code", INDEXED | FAST),
        id: b.add_text_field("id", STRING | STORED | FAST),
        owner: b.add_text_field("owner", STRING),
        text: b.add_text_field("text", text),
        exact: b.add_text_field("exact", STRING),
    };
    (b.build(), fields)
}

fn entity_code(e: Entity) -> u64 {
    Entity::ALL.iter().position(|x| *x == e).unwrap_or(0) as u64
}

/// How far the index is current: the journal entry it last took in.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub format: u32,
    pub seq: i64,
    /// The batch of the entry at `seq` ("" at seq 0): tells this database's journal from another's.
    pub batch: String,
    /// The journal's head when the last rebuild had listed every record: a record created up
    /// to here may be in the index from that listing, one created after it cannot be.
    #[serde(default)]
    pub listed: i64,
}

/// A record's hit: its id and score.
#[derive(Debug, Clone)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

/// The best hits of one entity and how many matched in all.
#[derive(Debug, Clone)]
pub struct Group {
    pub entity: Entity,
    pub total: usize,
    pub hits: Vec<Hit>,
}

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The writer, when this process holds it (another process may: then it only reads).
    writer: Option<IndexWriter>,
    /// The journal entry last taken in, when documents were put since the last commit.
    taken: Option<Position>,
    /// When the last commit was made (or the index opened).
    committed_at: Instant,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (empty, at seq 0) when missing or of another
    /// format. Takes the writer unless another process holds it.
    pub fn open(dir: &Path) -> SearchResult<SearchIndex> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SearchError::Index(format!("cannot create {}: {e}", dir.display())))?;
        let (schema, fields) = index_schema();
        let opened = MmapDirectory::open(dir)
            .map_err(|e| SearchError::Index(e.to_string()))
            .and_then(|d| Index::open_or_create(d, schema.clone()).map_err(SearchError::from));
        let index = match opened {
            Ok(i) => i,
            Err(e) => {
                // An index of an older layout: it is derived data, start again.
                tracing::warn!(error = %e, dir = %dir.display(), "search index unreadable; recreating it");
                clear_dir(dir)?;
                Index::create_in_dir(dir, schema)?
            }
        };
        index.tokenizers().register(ANALYZER, matcher::analyzer());
        let writer = match index.writer_with_num_threads(1, WRITER_MEMORY) {
            Ok(w) => Some(w),
            Err(tantivy::TantivyError::LockFailure(..)) => None,
            Err(e) => return Err(e.into()),
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            writer,
            taken: None,
            committed_at: Instant::now(),
        })
    }

    /// Whether this process keeps the index (else another process does and this one reads).
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// Where the last commit left the index (seq 0 and no batch when new or of another format).
    pub fn position(&self) -> SearchResult<Position> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Position>(p).ok())
            .filter(|p| p.format == FORMAT)
            .unwrap_or_default())
    }

    /// The journal entry the index has taken in: the last one put, committed or not.
    pub fn taken(&self) -> SearchResult<Position> {
        match &self.taken {
            Some(p) => Ok(p.clone()),
            None => self.position(),
        }
    }

    /// Notes that the documents of the entries up to `at` were put (not yet committed).
    pub fn took(&mut self, at: Position) {
        self.taken = Some(at);
    }

    /// Whether documents were taken in since the last commit, and how long ago that was.
    pub fn uncommitted(&self) -> Option<Duration> {
        self.taken.as_ref().map(|_| self.committed_at.elapsed())
    }

    fn writer(&mut self) -> SearchResult<&mut IndexWriter> {
        self.writer
            .as_mut()
            .ok_or_else(|| SearchError::Busy("another process keeps this search index".into()))
    }

    /// Forgets every document (the next commit makes it so).
    pub fn clear(&mut self) -> SearchResult<()> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// Puts a record's current state in the index: replaced, or removed when it is not live.
    /// A record known not to be in the index yet (`new`) is only added: each delete is looked
    /// up in every segment when the writer flushes, a cost a bulk import would pay per row.
    pub fn put(
        &mut self,
        schema: &Schema,
        entity: Entity,
        id: &str,
        owner: Option<&str>,
        data: Option<&Map<String, Value>>,
        new: bool,
    ) -> SearchResult<()> {
        let f = self.fields;
        let key = format!("{entity}/{id}");
        let w = self.writer()?;
        if !new {
            w.delete_term(Term::from_field_text(f.key, &key));
        }
        let Some(data) = data else { return Ok(()) };
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, &key);
        doc.add_text(f.entity, entity.as_str());
        doc.add_u64(f.entity_code, entity_code(entity));
        doc.add_text(f.id, id);
        if let Some(o) = owner {
            doc.add_text(f.owner, o);
        }
        for (_, text) in document::field_texts(schema, data) {
            doc.add_text(f.text, matcher::fold(&text));
        }
        for k in document::exact_keys(schema, data) {
            doc.add_text(f.exact, &k);
        }
        w.add_document(doc)?;
        Ok(())
    }

    /// Makes what was put so far durable and visible, current up to `at`.
    pub fn commit(&mut self, at: &Position) -> SearchResult<()> {
        let payload = serde_json::to_string(&Position {
            format: FORMAT,
            ..at.clone()
        })
        .map_err(|e| SearchError::Index(e.to_string()))?;
        let w = self.writer()?;
        let mut prepared = w.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        self.taken = None;
        self.committed_at = Instant::now();
        Ok(())
    }

    /// Sees what the writing process committed last (for a process that only reads).
    pub fn refresh(&self) -> SearchResult<()> {
        self.reader.reload()?;
        Ok(())
    }

    /// The best `per_group` hits of each entity in `scope` (with who of it the reader may
    /// see) and how many matched per entity.
    ///
    /// The entity is checked while collecting, not as a query clause: a clause matching every
    /// record of an entity would be walked through for each hit (40 ms at a million records).
    /// Owners are a clause, a small one (a manager's own records): entities readable whole and
    /// entities readable per owner set are searched separately and their groups put together.
    ///
    /// A query that is an identifier (a phone, a tax id, an e-mail written whole) looks for
    /// that first: when a record has it, that is the answer, and the words (which may match
    /// thousands of records: every address at one domain) are not looked at.
    pub fn search(
        &self,
        q: &Words,
        scope: &[(Entity, OwnerFilter)],
        per_group: usize,
    ) -> SearchResult<Vec<Group>> {
        if !q.exact.is_empty() && !q.words.is_empty() {
            let exact = Words {
                words: Vec::new(),
                exact: q.exact.clone(),
            };
            let found = self.search_scoped(&exact, scope, per_group)?;
            if found.iter().any(|g| !g.hits.is_empty()) {
                return Ok(found);
            }
        }
        self.search_scoped(q, scope, per_group)
    }

    fn search_scoped(
        &self,
        q: &Words,
        scope: &[(Entity, OwnerFilter)],
        per_group: usize,
    ) -> SearchResult<Vec<Group>> {
        let mut open: Vec<u64> = Vec::new();
        let mut by_owners: Vec<(&Vec<String>, Vec<u64>)> = Vec::new();
        for (entity, owners) in scope {
            match owners {
                OwnerFilter::Nothing => {}
                OwnerFilter::Any => open.push(entity_code(*entity)),
                OwnerFilter::OneOf(ids) => match by_owners.iter_mut().find(|(o, _)| *o == ids) {
                    Some((_, codes)) => codes.push(entity_code(*entity)),
                    None => by_owners.push((ids, vec![entity_code(*entity)])),
                },
            }
        }
        let mut out = Vec::new();
        if !open.is_empty() {
            out.extend(self.search_part(q, None, open, per_group)?);
        }
        for (owners, codes) in by_owners {
            out.extend(self.search_part(q, Some(owners), codes, per_group)?);
        }
        out.sort_by_key(|g| SEARCHED.iter().position(|e| *e == g.entity));
        Ok(out)
    }

    fn search_part(
        &self,
        q: &Words,
        owners: Option<&[String]>,
        codes: Vec<u64>,
        per_group: usize,
    ) -> SearchResult<Vec<Group>> {
        let f = self.fields;
        let Some(text) = self.text_query(q) else {
            return Ok(Vec::new());
        };
        let query: Box<dyn Query> = match owners {
            None => text,
            Some(ids) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text),
                (
                    Occur::Must,
                    Box::new(TermSetQuery::new(
                        ids.iter().map(|o| Term::from_field_text(f.owner, o)),
                    )),
                ),
            ])),
        };
        let searcher = self.reader.searcher();
        let grouped = searcher.search(&query, &Grouped { per_group, codes })?;
        let mut out = Vec::new();
        for (code, total, mut top) in grouped {
            let Some(entity) = Entity::ALL.get(code as usize).copied() else {
                continue;
            };
            top.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut hits = Vec::with_capacity(top.len());
            for (score, addr) in top {
                let doc: TantivyDocument = searcher.doc(addr)?;
                use tantivy::schema::Value as _;
                if let Some(id) = doc.get_first(f.id).and_then(|v| v.as_str()) {
                    hits.push(Hit {
                        id: id.to_string(),
                        score,
                    });
                }
            }
            out.push(Group {
                entity,
                total,
                hits,
            });
        }
        Ok(out)
    }

    /// Every word must match (as a word, the beginning of one, or with a typo; exact words
    /// score highest), or the query must be one of a record's identifiers.
    fn text_query(&self, q: &Words) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let mut top: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !q.words.is_empty() {
            let mut all: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for w in &q.words {
                let term = Term::from_field_text(f.text, w);
                let len = w.chars().count();
                let mut alts: Vec<(Occur, Box<dyn Query>)> = vec![(
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                        4.0,
                    )),
                )];
                if len >= matcher::MIN_PREFIX {
                    alts.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, false)),
                            2.0,
                        )),
                    ));
                }
                let d = matcher::typo_distance(len);
                if d > 0 {
                    alts.push((Occur::Should, Box::new(FuzzyTermQuery::new(term, d, true))));
                }
                all.push((Occur::Must, Box::new(BooleanQuery::new(alts))));
            }
            top.push((Occur::Should, Box::new(BooleanQuery::new(all))));
        }
        for k in &q.exact {
            top.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.exact, k),
                        IndexRecordOption::Basic,
                    )),
                    8.0,
                )),
            ));
        }
        (!top.is_empty()).then(|| Box::new(BooleanQuery::new(top)) as Box<dyn Query>)
    }

    /// The ids of the records of one entity (within `owners`) that match, the best `cap` of
    /// them, and how many matched in all: what a list's `q` is restricted to.
    pub fn matching_ids(
        &self,
        q: &Words,
        entity: Entity,
        owners: &OwnerFilter,
        cap: usize,
    ) -> SearchResult<(Vec<String>, usize)> {
        let f = self.fields;
        let code = entity_code(entity);
        let Some(text) = self.text_query(q) else {
            return Ok((Vec::new(), 0));
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, text),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.entity_code, code),
                    IndexRecordOption::Basic,
                )),
            ),
        ];
        match owners {
            OwnerFilter::Any => {}
            OwnerFilter::Nothing => return Ok((Vec::new(), 0)),
            OwnerFilter::OneOf(ids) => clauses.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    ids.iter().map(|o| Term::from_field_text(f.owner, o)),
                )),
            )),
        }
        let searcher = self.reader.searcher();
        let mut all = searcher.search(&BooleanQuery::new(clauses), &Everything)?;
        let total = all.len();
        if all.len() > cap {
            all.select_nth_unstable_by(cap, |a, b| b.0.total_cmp(&a.0));
            all.truncate(cap);
        }
        all.sort_by_key(|(_, addr)| (addr.segment_ord, addr.doc_id));
        let mut ids = Vec::with_capacity(all.len());
        let mut current: Option<(u32, tantivy::columnar::StrColumn)> = None;
        let mut buf = String::new();
        for (_, addr) in all {
            if current.as_ref().is_none_or(|(s, _)| *s != addr.segment_ord) {
                let column = searcher
                    .segment_reader(addr.segment_ord)
                    .fast_fields()
                    .str("id")?
                    .ok_or_else(|| SearchError::Index("the index has no id column".into()))?;
                current = Some((addr.segment_ord, column));
            }
            if let Some((_, column)) = &current {
                if let Some(ord) = column.term_ords(addr.doc_id).next() {
                    buf.clear();
                    column
                        .ord_to_str(ord, &mut buf)
                        .map_err(|e| SearchError::Index(e.to_string()))?;
                    ids.push(buf.clone());
                }
            }
        }
        Ok((ids, total))
    }

    /// Documents in the index (live records of the searched entities).
    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

fn clear_dir(dir: &Path) -> SearchResult<()> {
    let cannot =
        |e: std::io::Error| SearchError::Index(format!("cannot clear {}: {e}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(cannot)?;
        } else {
            std::fs::remove_file(&path).map_err(cannot)?;
        }
    }
    Ok(())
}

/// Collects every matching document with its score.
struct Everything;

struct EverythingSegment {
    segment: u32,
    hits: Vec<(Score, DocAddress)>,
}

impl Collector for Everything {
    type Fruit = Vec<(Score, DocAddress)>;
    type Child = EverythingSegment;

    fn for_segment(&self, segment: u32, _: &SegmentReader) -> tantivy::Result<EverythingSegment> {
        Ok(EverythingSegment {
            segment,
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<(Score, DocAddress)>>,
    ) -> tantivy::Result<Vec<(Score, DocAddress)>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for EverythingSegment {
    type Fruit = Vec<(Score, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.hits.push((score, DocAddress::new(self.segment, doc)));
    }

    fn harvest(self) -> Vec<(Score, DocAddress)> {
        self.hits
    }
}

/// Collects, per entity, how many documents matched and the best `per_group` of them; only
/// documents of the entities in `codes`.
struct Grouped {
    per_group: usize,
    codes: Vec<u64>,
}

type GroupFruit = Vec<(u64, usize, Vec<(Score, DocAddress)>)>;

struct GroupedSegment {
    per_group: usize,
    allowed: Vec<u64>,
    segment: u32,
    codes: Column<u64>,
    groups: HashMap<u64, (usize, Vec<(Score, DocAddress)>)>,
}

impl Collector for Grouped {
    type Fruit = GroupFruit;
    type Child = GroupedSegment;

    fn for_segment(&self, segment: u32, reader: &SegmentReader) -> tantivy::Result<GroupedSegment> {
        Ok(GroupedSegment {
            per_group: self.per_group,
            allowed: self.codes.clone(),
            segment,
            codes: reader.fast_fields().u64("entity_code")?,
            groups: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<GroupFruit>) -> tantivy::Result<GroupFruit> {
        let mut merged: HashMap<u64, (usize, Vec<(Score, DocAddress)>)> = HashMap::new();
        for (code, total, top) in fruits.into_iter().flatten() {
            let g = merged.entry(code).or_default();
            g.0 += total;
            g.1.extend(top);
        }
        Ok(merged
            .into_iter()
            .map(|(code, (total, mut top))| {
                top.sort_by(|a, b| b.0.total_cmp(&a.0));
                top.truncate(self.per_group);
                (code, total, top)
            })
            .collect())
    }
}

impl SegmentCollector for GroupedSegment {
    type Fruit = GroupFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some(code) = self.codes.first(doc) else {
            return;
        };
        if !self.allowed.contains(&code) {
            return;
        }
        let g = self.groups.entry(code).or_default();
        g.0 += 1;
        let top = &mut g.1;
        if top.len() < self.per_group {
            top.push((score, DocAddress::new(self.segment, doc)));
        } else if let Some((i, worst)) = top
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        {
            if score > worst.0 {
                top[i] = (score, DocAddress::new(self.segment, doc));
            }
        }
    }

    fn harvest(self) -> GroupFruit {
        self.groups
            .into_iter()
            .map(|(code, (total, top))| (code, total, top))
            .collect()
    }
}
