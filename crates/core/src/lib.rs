//! Kontor's application core. [`Kontor`] is what the HTTP server, the CLI (and later web pages,
//! imports and the 1C exchange) talk to: every change goes through [`write::apply`], every read is
//! filtered by the actor's permissions here, so no caller can forget to.

pub mod auth;
pub mod datadir;
pub mod derived;
pub mod error;
pub mod list;
pub mod progress;
pub mod read;
pub mod restore;
pub mod retention;
pub mod users;
pub mod write;

pub use error::{CoreError, CoreResult};
pub use write::{apply, Applied, Mutation, SchemaCache, Skipped, WriteRequest};

use kontor_domain::journal::Origin;
use kontor_domain::Actor;
use kontor_store::DynStore;

/// Settings the core needs at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Days a record stays in the recycle bin before it is purged; 0 keeps it forever.
    pub trash_retention_days: u32,
    pub login_limits: auth::limiter::LoginLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            trash_retention_days: 30,
            login_limits: auth::limiter::LoginLimits::default(),
        }
    }
}

/// The core: a store, settings, the login limiter and the bounded password hasher.
pub struct Kontor {
    pub store: DynStore,
    pub settings: Settings,
    pub limiter: auth::limiter::LoginLimiter,
    pub hashing: auth::password::PasswordHashing,
    /// Custom field definitions between writes (see [`SchemaCache`]).
    pub schema_cache: SchemaCache,
    /// The last journal seq this process wrote; derived data (the search index) follows it.
    written: tokio::sync::watch::Sender<i64>,
    /// What serves `q` in lists (the search index), when attached.
    text_index: std::sync::OnceLock<std::sync::Arc<dyn list::TextIndex>>,
}

impl Kontor {
    pub fn new(store: DynStore, settings: Settings) -> Kontor {
        Kontor {
            store,
            limiter: auth::limiter::LoginLimiter::new(settings.login_limits.clone()),
            hashing: auth::password::PasswordHashing::for_this_machine(),
            settings,
            schema_cache: SchemaCache::default(),
            written: tokio::sync::watch::Sender::new(0),
            text_index: std::sync::OnceLock::new(),
        }
    }

    /// Changes whenever this process commits journal entries (to the last seq written). Other
    /// nodes' writes are not seen here: followers also read the journal's head.
    pub fn journal_written(&self) -> tokio::sync::watch::Receiver<i64> {
        self.written.subscribe()
    }

    /// Applies mutations for an actor through the one write path.
    pub async fn write(
        &self,
        actor: &Actor,
        origin: Origin,
        mutations: Vec<Mutation>,
    ) -> CoreResult<Applied> {
        self.apply(actor, origin, &mutations, false, None).await
    }

    /// Applies a client's numbered list of mutations (`/batch`): a refusal names the operation.
    pub async fn write_numbered(
        &self,
        actor: &Actor,
        origin: Origin,
        mutations: Vec<Mutation>,
    ) -> CoreResult<Applied> {
        self.apply(actor, origin, &mutations, true, None).await
    }

    /// Applies mutations as one more transaction of a long batch (an import, an exchange run):
    /// every part is journaled under `batch`, so the whole run is undone as one.
    pub async fn write_in_batch(
        &self,
        actor: &Actor,
        origin: Origin,
        batch: kontor_domain::BatchId,
        mutations: &[Mutation],
    ) -> CoreResult<Applied> {
        self.apply(actor, origin, mutations, false, Some(batch))
            .await
    }

    /// Applies one chunk of long work (an import) under its batch, with the work's
    /// bookkeeping in the same transaction; a dry run rolls the chunk back and answers what it
    /// would have done.
    pub async fn write_chunk(
        &self,
        actor: &Actor,
        origin: Origin,
        batch: kontor_domain::BatchId,
        mutations: &[Mutation],
        chunk: Chunk<'_>,
    ) -> CoreResult<Applied> {
        self.apply_as(actor, origin, mutations, false, Some(batch), false, chunk)
            .await
    }

    /// Applies mutations that may set fields Kontor computes itself (bookkeeping such as how
    /// far invoices were sent to 1C). For Kontor's own callers, never for client input.
    pub async fn write_trusted(
        &self,
        actor: &Actor,
        origin: Origin,
        mutations: Vec<Mutation>,
    ) -> CoreResult<Applied> {
        self.apply_as(
            actor,
            origin,
            &mutations,
            false,
            None,
            true,
            Chunk::default(),
        )
        .await
    }

    async fn apply(
        &self,
        actor: &Actor,
        origin: Origin,
        mutations: &[Mutation],
        numbered: bool,
        batch: Option<kontor_domain::BatchId>,
    ) -> CoreResult<Applied> {
        self.apply_as(
            actor,
            origin,
            mutations,
            numbered,
            batch,
            false,
            Chunk::default(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_as(
        &self,
        actor: &Actor,
        origin: Origin,
        mutations: &[Mutation],
        numbered: bool,
        batch: Option<kontor_domain::BatchId>,
        trusted: bool,
        chunk: Chunk<'_>,
    ) -> CoreResult<Applied> {
        let applied = write::apply(
            self.store.as_ref(),
            WriteRequest {
                actor,
                origin,
                trusted,
                mutations,
                cache: Some(&self.schema_cache),
                numbered,
                batch,
                dry_run: chunk.dry_run,
                progress: chunk.progress,
            },
        )
        .await?;
        if !chunk.dry_run {
            self.tell_written(&applied);
        }
        Ok(applied)
    }

    /// Tells the followers of the journal (the search index) how far this process wrote.
    fn tell_written(&self, applied: &Applied) {
        if let Some(last) = applied.entries.last() {
            self.written.send_if_modified(|seq| {
                let newer = last.seq > *seq;
                if newer {
                    *seq = last.seq;
                }
                newer
            });
        }
    }
}

/// How [`Kontor::write_chunk`] applies a chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chunk<'a> {
    /// Roll back instead of committing.
    pub dry_run: bool,
    /// Written in the chunk's transaction.
    pub progress: Option<&'a kontor_store::JobProgress>,
}
