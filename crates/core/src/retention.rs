//! Recycle-bin retention: records deleted longer ago than the configured number of days are
//! purged by Kontor itself (actor `system`, origin `system`), journaled like any purge. The same
//! run forgets sessions that expired or were revoked more than a day ago.

use crate::error::CoreResult;
use crate::write::Mutation;
use crate::Kontor;
use kontor_domain::journal::Origin;
use kontor_domain::permission::{Actor, OwnerFilter};
use kontor_domain::time::{self, Timestamp};
use kontor_store::TrashQuery;

/// Records purged per batch, so one run never holds the writer for long.
const PURGE_BATCH: u32 = 500;

impl Kontor {
    /// Purges what has been in the bin past the retention period as of `now`; returns how many.
    /// Also forgets sessions that expired or were revoked more than a day ago.
    pub async fn purge_expired(&self, now: Timestamp) -> CoreResult<u64> {
        // Sessions are not business data: expired and revoked ones are simply forgotten a day
        // on. Tokens are checked against the wall clock, so pruning uses it too.
        let sessions = self
            .store
            .prune_sessions(time::now() - chrono::Duration::days(1))
            .await?;
        if sessions > 0 {
            tracing::info!(sessions, "pruned expired and revoked sessions");
        }
        self.limiter.prune(self.store.as_ref()).await?;
        let days = self.settings.trash_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let system = Actor::system();
        let mut purged = 0;
        loop {
            let expired = self
                .store
                .trash(&TrashQuery {
                    entity: None,
                    owners: OwnerFilter::Any,
                    batch: None,
                    deleted_before: Some(cutoff),
                    cursor: None,
                    limit: PURGE_BATCH,
                })
                .await?;
            if expired.is_empty() {
                break;
            }
            let n = expired.len() as u64;
            let mutations = expired
                .into_iter()
                .map(|r| Mutation::Purge {
                    entity: r.entity,
                    id: r.id,
                })
                .collect();
            self.write(&system, Origin::System, mutations).await?;
            purged += n;
            if n < u64::from(PURGE_BATCH) {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, cutoff = %time::format(cutoff), "purged expired recycle-bin records");
        }
        Ok(purged)
    }
}
