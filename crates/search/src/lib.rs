//! Global search: one index over the searched entities' live records (companies, contacts,
//! leads, deals, products, invoices), matching words by prefix and with typos, identifiers
//! (phones, tax ids, e-mails) in any format, ranked, filtered by what the reader may see.
//!
//! The index is derived data. Each node keeps its own (in `<data dir>/search`), fed from the
//! journal right after each write ([`Search::follow`]) and brought up to the journal's head
//! before every query ([`Search::catch_up`]), so a search sees every write committed before it,
//! on any node. It is never archived; a restore, or a database it does not fit, rebuilds it.
//!
//! - [`document`]: what of a record is indexed.
//! - [`matcher`]: how a query meets a text (shared by the index and the re-check).
//! - [`index`]: the tantivy index and its position in the journal.
//! - [`service`]: the search as a reader sees it, and keeping the index current.

pub mod document;
pub mod index;
pub mod matcher;
pub mod service;

pub use service::{Search, SearchParams, SearchResults};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(String),
    /// Another process keeps the index, or it is being rebuilt.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Core(#[from] kontor_core::CoreError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.to_string())
    }
}

impl From<kontor_store::StoreError> for SearchError {
    fn from(e: kontor_store::StoreError) -> Self {
        SearchError::Core(e.into())
    }
}

impl From<kontor_domain::DomainError> for SearchError {
    fn from(e: kontor_domain::DomainError) -> Self {
        SearchError::Core(e.into())
    }
}

pub type SearchResult<T> = Result<T, SearchError>;
