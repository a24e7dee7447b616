//! End-to-end tests of the real `kontor` binary: the CLI as an administrator uses it, and crash
//! safety (kill -9 right after acknowledged writes).

mod support;

mod admin_api;
mod backup;
mod browser;
mod cli;
mod cluster;
mod crash;
mod exchange;
mod exchange_folder;
mod exchange_http;
mod imports;
mod login_load;
mod onec;
mod retention;
mod shipping;
mod shutdown;
mod status;
mod upgrade;
