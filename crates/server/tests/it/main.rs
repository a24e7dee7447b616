//! HTTP tests: each drives a real Kontor server over HTTP on a fresh SQLite database.

mod support;

mod smoke;
