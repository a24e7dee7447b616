//! The 1C:Enterprise exchange. CommerceML files — from 1C over the HTTP protocol, or from an
//! exchange folder — are read by `kontor-commerceml` and applied here through the one write
//! path, as one journal batch per run (origin `exchange`) with a report of what happened.
//!
//! - [`catalog`]: groups, properties, price types, warehouses, products and offers in.
//! - [`folder`]: files and exchange folders: order, kind, one run; invoices written out.
//! - [`sale`]: invoices out, payments, statuses and counterparties back.
//! - [`settings`]: the settings of one 1C database (its `onec_databases` record).
//! - [`values`]: 1C's spellings of currencies, VAT rates, units and decimals.
//! - [`report`]: counts and failures of a run.
//! - `known`: a run's compact index of the records Kontor holds from its 1C database.

pub mod catalog;
pub mod folder;
mod known;
pub mod report;
pub mod sale;
pub mod settings;
pub mod values;

pub use catalog::{CatalogImport, ImportError, Missing, OnError, Options};
pub use report::{Counts, Failure, RunReport};
