//! HTTP tests: each drives a real Kontor server over HTTP on a fresh database, once on SQLite
//! and once on PostgreSQL (see `kontor_testkit`).

/// Runs each listed `async fn name(engine: Engine)` as two tests, `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if kontor_testkit::skip_postgres(stringify!($name)) {
                        return;
                    }
                    super::$name($crate::support::Engine::Postgres).await
                }
            )*
        }
    };
}

mod support;

mod bad_input;
mod catalog;
mod common;
mod credentials;
mod entities;
mod history;
mod imports;
mod lists;
mod login;
mod money;
mod openapi;
mod operations;
mod permissions;
mod restore;
mod search;
mod smoke;
mod trash;
mod web;
