//! HTTP tests: each drives a real Kontor server over HTTP on a fresh SQLite database.

mod support;

mod bad_input;
mod common;
mod entities;
mod history;
mod openapi;
mod permissions;
mod restore;
mod smoke;
mod trash;
