//! CommerceML, the XML 1C:Enterprise exchanges catalogs and orders with sites in: a streaming
//! reader for every file of the exchange, and a writer for the order documents a site answers
//! `type=sale&mode=query` with.
//!
//! [`Reader`] pulls one [`Item`] at a time (a product, an offer, a document…) with the line it
//! starts on, holding at most one record in memory. It reads CommerceML 2.03–2.10 and 3.1, with
//! or without namespace, in UTF-8 (with or without BOM), windows-1251 (or any encoding the XML
//! declaration names) and UTF-16; it is lenient about what real 1C and 1C-Bitrix files do
//! (trailing spaces, empty elements, odd date shapes, unknown elements) and strict about what is
//! not XML or is hostile (DTDs, undefined entities, unbounded nesting or values), reporting
//! [`ReadError`]s with line, column and element path.
//!
//! [`write_documents`] writes orders in windows-1251 or UTF-8 with BOM, optionally wrapped in
//! CML 3.1 `Контейнер`s; the reader reads them back to equal documents.
//!
//! Modules: [`read`] (XML events, encodings, limits, errors), [`items`] (the record types),
//! `reader` (the structure walk), `catalog` and `documents` (record parsers), `fields` (shared
//! parts of records), [`write`](mod@write) (the writer), [`values`] (dates, decimals, booleans).

mod catalog;
mod documents;
mod fields;
pub mod items;
pub mod read;
mod reader;
mod tags;
pub mod values;
pub mod write;

pub use items::{
    Address, BankAccount, Contact, Counterparty, Discount, Document, DocumentLine, Group, Header,
    Item, Located, Offer, PartyKind, Price, PriceType, Product, Property, PropertyValue,
    Representative, Section, Stock, Tax, TaxRate, Unit, Warehouse,
};
pub use read::{Limits, ReadError};
pub use reader::Reader;
pub use values::{normalize_decimal, parse_bool, parse_datetime, parse_time, DateTime};
pub use write::{write_documents, OutputEncoding, WriteOptions};
