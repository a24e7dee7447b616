//! A catalog run's index of what Kontor holds from its 1C database: 1C id → Kontor record, per
//! entity. It is kept small enough for catalogs of millions of offers: a 1C id is kept as a
//! 128-bit BLAKE3 hash of its text and a Kontor id as its 128-bit UUID, so an entry is a few
//! dozen bytes whatever the ids look like. It is read from the store a page at a time.

use kontor_domain::Entity;
use kontor_store::{Store, StoreResult};
use std::collections::HashMap;

/// Rows read from the store per page.
pub(crate) const PAGE: u32 = 10_000;

/// A record of the 1C database that Kontor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    /// The UUID's bytes (a byte array rather than `u128`: no 16-byte alignment to pad to).
    id: [u8; 16],
    pub deleted: bool,
    /// A file of this run listed it (or, for a product, one of its offers).
    pub listed: bool,
}

impl Known {
    /// `None` for an id that is not a UUID (Kontor makes no other kind).
    pub fn new(id: &str, deleted: bool, listed: bool) -> Option<Known> {
        let id = *uuid::Uuid::parse_str(id).ok()?.as_bytes();
        Some(Known {
            id,
            deleted,
            listed,
        })
    }

    /// The same record, listed by this run, in the bin or not.
    pub fn listed_as(self, deleted: bool) -> Known {
        Known {
            deleted,
            listed: true,
            ..self
        }
    }

    /// The Kontor id, in its canonical text form.
    pub fn id(&self) -> String {
        uuid::Uuid::from_bytes(self.id).to_string()
    }
}

/// The key a 1C id is kept under: the first 128 bits of its BLAKE3 hash.
pub(crate) fn ext_key(ext: &str) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&blake3::hash(ext.as_bytes()).as_bytes()[..16]);
    bytes
}

/// Each entity's map is split in shards by the key's first byte: a map that grows doubles its
/// table, and for a moment holds the old one too; a shard doing so holds a 64th of the index.
const SHARDS: usize = 64;

type Shards = Vec<HashMap<[u8; 16], Known>>;

fn shard(key: &[u8; 16]) -> usize {
    usize::from(key[0]) % SHARDS
}

#[derive(Debug, Default)]
pub(crate) struct KnownIndex {
    by_entity: HashMap<Entity, Shards>,
}

impl KnownIndex {
    /// Reads what the store holds for these entities. A live record wins over one in the bin
    /// with the same 1C id.
    pub async fn load(store: &dyn Store, entities: &[Entity]) -> StoreResult<KnownIndex> {
        let mut index = KnownIndex::default();
        for &entity in entities {
            let mut after = String::new();
            loop {
                let page = store.external_ids(entity, &after, PAGE).await?;
                let full = page.len() == PAGE as usize;
                for (id, ext, deleted) in &page {
                    if *deleted && index.get(entity, ext).is_some_and(|k| !k.deleted) {
                        continue;
                    }
                    match Known::new(id, *deleted, false) {
                        Some(k) => index.set(entity, ext, k),
                        None => tracing::warn!(
                            entity = entity.as_str(),
                            id,
                            "a record whose id is not a UUID is left out of the 1C index"
                        ),
                    }
                }
                match page.into_iter().last() {
                    Some((id, _, _)) if full => after = id,
                    _ => break,
                }
            }
        }
        Ok(index)
    }

    pub fn get(&self, entity: Entity, ext: &str) -> Option<Known> {
        let key = ext_key(ext);
        self.by_entity
            .get(&entity)?
            .get(shard(&key))?
            .get(&key)
            .copied()
    }

    pub fn get_mut(&mut self, entity: Entity, ext: &str) -> Option<&mut Known> {
        let key = ext_key(ext);
        self.by_entity
            .get_mut(&entity)?
            .get_mut(shard(&key))?
            .get_mut(&key)
    }

    pub fn contains(&self, entity: Entity, ext: &str) -> bool {
        self.get(entity, ext).is_some()
    }

    pub fn set(&mut self, entity: Entity, ext: &str, known: Known) {
        let key = ext_key(ext);
        let shards = self
            .by_entity
            .entry(entity)
            .or_insert_with(|| vec![HashMap::new(); SHARDS]);
        if let Some(m) = shards.get_mut(shard(&key)) {
            m.insert(key, known);
        }
    }

    pub fn remove(&mut self, entity: Entity, ext: &str) {
        let key = ext_key(ext);
        if let Some(m) = self
            .by_entity
            .get_mut(&entity)
            .and_then(|s| s.get_mut(shard(&key)))
        {
            m.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_the_compact_form() {
        let id = kontor_domain::record::new_id();
        let k = Known::new(&id, true, false).expect("a UUID");
        assert_eq!(k.id(), id);
        assert!(k.deleted && !k.listed);
        assert_eq!(Known::new("not-a-uuid", false, false), None);
        let mut index = KnownIndex::default();
        index.set(Entity::Offers, "p#v", k);
        assert_eq!(index.get(Entity::Offers, "p#v"), Some(k));
        assert_eq!(index.get(Entity::Products, "p#v"), None);
        assert_eq!(index.get(Entity::Offers, "p#w"), None);
        index.remove(Entity::Offers, "p#v");
        assert!(!index.contains(Entity::Offers, "p#v"));
    }
}
