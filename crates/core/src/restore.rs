//! Restore and undo, built on the journal: a record back to its state at any past time; a batch
//! undone; everything one actor changed in a period undone. Each is a new batch through the write
//! path (origin `restore`), so it is journaled and can itself be undone. Conflicts refuse the
//! whole restore and list every problem.

use crate::error::CoreResult;
use crate::write::{sort_for_restore, Applied, Mutation};
use crate::Kontor;
use kontor_domain::journal::{JournalEntry, Origin};
use kontor_domain::permission::Actor;
use kontor_domain::time::Timestamp;
use kontor_domain::{BatchId, DomainError, Entity};
use kontor_store::JournalQuery;
use std::collections::BTreeMap;

/// The most journal entries one undo takes on.
pub const MAX_UNDO_ENTRIES: u32 = 100_000;

impl Kontor {
    /// Puts one record back as it was at `at` (moving it to the bin if it did not exist then).
    pub async fn restore_record(
        &self,
        actor: &Actor,
        entity: Entity,
        id: &str,
        at: Timestamp,
    ) -> CoreResult<Applied> {
        let last = self
            .store
            .journal(&JournalQuery {
                entity: Some(entity),
                record_id: Some(id.to_string()),
                to: Some(at),
                descending: true,
                limit: 1,
                ..Default::default()
            })
            .await?;
        let ever = self
            .store
            .journal(&JournalQuery {
                entity: Some(entity),
                record_id: Some(id.to_string()),
                limit: 1,
                ..Default::default()
            })
            .await?;
        if ever.is_empty() {
            return Err(DomainError::not_found(entity.singular(), id).into());
        }
        let target = match last.first() {
            Some(e) if e.scrubbed => {
                return Err(DomainError::Conflicts(vec![kontor_domain::Conflict {
                    entity: entity.as_str().into(),
                    record_id: id.into(),
                    kind: "purged".into(),
                    field: None,
                    message: format!(
                        "{} {id} was purged; it cannot be restored",
                        entity.singular()
                    ),
                }])
                .into())
            }
            Some(e) => e.after.clone(),
            None => None,
        };
        self.write(
            actor,
            Origin::Restore,
            vec![Mutation::SetState {
                entity,
                id: id.to_string(),
                target,
            }],
        )
        .await
    }

    /// Undoes everything one batch changed.
    pub async fn undo_batch(&self, actor: &Actor, batch: BatchId) -> CoreResult<Applied> {
        let entries = self
            .store
            .journal(&JournalQuery {
                batch: Some(batch),
                limit: MAX_UNDO_ENTRIES + 1,
                ..Default::default()
            })
            .await?;
        if entries.is_empty() {
            return Err(DomainError::not_found("batch", batch.to_string()).into());
        }
        self.undo_entries(actor, entries).await
    }

    /// Undoes everything `who` changed between `from` and `to`. Undoing another user's work is
    /// for admins.
    pub async fn undo_actor(
        &self,
        actor: &Actor,
        who: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> CoreResult<Applied> {
        if who != actor.user_id && !actor.is_admin() {
            return Err(
                DomainError::forbidden("only an admin may undo another user's changes").into(),
            );
        }
        let entries = self
            .store
            .journal(&JournalQuery {
                actor: Some(who.to_string()),
                from: Some(from),
                to: Some(to),
                limit: MAX_UNDO_ENTRIES + 1,
                ..Default::default()
            })
            .await?;
        if entries.is_empty() {
            return Err(
                DomainError::not_found("changes by", format!("{who} in that period")).into(),
            );
        }
        self.undo_entries(actor, entries).await
    }

    async fn undo_entries(&self, actor: &Actor, entries: Vec<JournalEntry>) -> CoreResult<Applied> {
        if entries.len() > MAX_UNDO_ENTRIES as usize {
            return Err(DomainError::invalid(
                "",
                format!("more than {MAX_UNDO_ENTRIES} changes; undo a shorter period"),
            )
            .into());
        }
        let mut per_record: BTreeMap<(Entity, String), Vec<JournalEntry>> = BTreeMap::new();
        for e in entries {
            per_record
                .entry((e.entity, e.record_id.clone()))
                .or_default()
                .push(e);
        }
        let mut mutations: Vec<Mutation> = per_record
            .into_iter()
            .map(|((entity, id), mut entries)| {
                entries.sort_by_key(|e| e.seq);
                Mutation::Revert {
                    entity,
                    id,
                    entries,
                }
            })
            .collect();
        sort_for_restore(&mut mutations);
        self.write(actor, Origin::Restore, mutations).await
    }
}
