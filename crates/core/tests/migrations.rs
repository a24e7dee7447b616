//! Data written by an earlier Kontor is brought up to date when the store opens, on both
//! engines: a database in the first schema (password hashes inside user records, their journal
//! images and search text) is migrated so hashes live only in the credentials, the old users
//! still log in, and replaying the journal still gives the live state. Its status is read
//! without migrating, and a database with an edited or a newer migration is refused.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use kontor_core::{Kontor, Settings};
use kontor_domain::journal::replay;
use kontor_domain::Entity;
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::{DynStore, JournalQuery};
use serde_json::{json, Value};
use std::sync::Arc;

const USER: &str = "0190a000-0000-7000-8000-0000000000a1";
const BATCH1: &str = "0190a000-0000-7000-8000-0000000000b1";
const BATCH2: &str = "0190a000-0000-7000-8000-0000000000b2";
const T1: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const T2: i64 = 1_767_312_000_000_000; // 2026-01-02T00:00:00Z
const INVOICE: &str = "0190a000-0000-7000-8000-0000000000c1";
const PAYMENT: &str = "0190a000-0000-7000-8000-0000000000c2";
const COMPANY: &str = "0190a000-0000-7000-8000-0000000000c3";

fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

/// The statements that put one user, created and then given a new password, into a database
/// of the first schema.
fn legacy_rows(pg: bool) -> Vec<(String, Vec<Option<String>>)> {
    let (h1, h2) = (hash("legacy-password-1"), hash("legacy-password-2"));
    let image = |h: &str, updated: &str| {
        json!({"id": USER, "owner_id": null, "created_at": "2026-01-01T00:00:00.000000Z",
               "updated_at": updated, "deleted_at": null, "deleted_by": null, "deleted_batch": null,
               "email": "old@firm.ru", "role": "admin", "disabled": false, "password_hash": h})
        .to_string()
    };
    let data =
        json!({"email": "old@firm.ru", "role": "admin", "disabled": false, "password_hash": h2})
            .to_string();
    let jsonb = if pg { "::jsonb" } else { "" };
    let s = |v: &str| Some(v.to_string());
    vec![
        (
            format!(
                "INSERT INTO records (entity, id, created_at, updated_at, search, data) \
                 VALUES ('users', $1, {T1}, {T2}, $2, $3{jsonb})"
            ),
            vec![s(USER), Some(format!("old@firm.ru\u{1f}admin\u{1f}{h2}\u{1f}")), Some(data)],
        ),
        (
            format!(
                "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, before, after) \
                 VALUES (1, {T1}, 'system', 'system', $1, 'users', $2, 'create', NULL, $3)"
            ),
            vec![s(BATCH1), s(USER), Some(image(&h1, "2026-01-01T00:00:00.000000Z"))],
        ),
        (
            format!(
                "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, before, after) \
                 VALUES (2, {T2}, 'system', 'system', $1, 'users', $2, 'update', $3, $4)"
            ),
            vec![
                s(BATCH2),
                s(USER),
                Some(image(&h1, "2026-01-01T00:00:00.000000Z")),
                Some(image(&h2, "2026-01-02T00:00:00.000000Z")),
            ],
        ),
        (
            "INSERT INTO uniques (entity, key, value, record_id) VALUES ('users', 'email', 'old@firm.ru', $1)".into(),
            vec![s(USER)],
        ),
        // An invoice and a payment from before money became decimal strings: JSON numbers.
        (
            format!(
                "INSERT INTO records (entity, id, parent_id, created_at, updated_at, data) \
                 VALUES ('invoices', $1, $2, {T2}, {T2}, $3{jsonb})"
            ),
            vec![s(INVOICE), s(COMPANY), Some(legacy_invoice().to_string())],
        ),
        (
            format!(
                "INSERT INTO records (entity, id, parent_id, created_at, updated_at, data) \
                 VALUES ('payments', $1, $2, {T2}, {T2}, $3{jsonb})"
            ),
            vec![s(PAYMENT), s(INVOICE), Some(legacy_payment().to_string())],
        ),
        (
            format!(
                "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, before, after) \
                 VALUES (3, {T2}, 'system', 'system', $1, 'invoices', $2, 'create', NULL, $3)"
            ),
            vec![s(BATCH2), s(INVOICE), Some(image_of(INVOICE, legacy_invoice()).to_string())],
        ),
        (
            format!(
                "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, before, after) \
                 VALUES (4, {T2}, 'system', 'system', $1, 'payments', $2, 'create', NULL, $3)"
            ),
            vec![s(BATCH2), s(PAYMENT), Some(image_of(PAYMENT, legacy_payment()).to_string())],
        ),
    ]
}

fn legacy_invoice() -> Value {
    json!({"company_id": COMPANY, "currency": "RUB", "status": "partly_paid", "vat_included": false,
           "number": "INV-000001",
           "lines": [{"quantity": 3, "price": 100.1, "vat_rate": 20, "amount": 300.3, "vat_amount": 60.06, "total": 360.36},
                     {"quantity": 0.5, "price": 10, "vat_rate": 0, "amount": 5, "vat_amount": 0, "total": 5}],
           "subtotal": 305.3, "vat_total": 60.06, "total": 365.36, "paid_amount": 100})
}

fn legacy_payment() -> Value {
    json!({"invoice_id": INVOICE, "amount": 100, "method": "bank_transfer"})
}

fn image_of(id: &str, data: Value) -> Value {
    let mut img = json!({"id": id, "owner_id": null, "created_at": "2026-01-02T00:00:00.000000Z",
        "updated_at": "2026-01-02T00:00:00.000000Z", "deleted_at": null, "deleted_by": null,
        "deleted_batch": null});
    for (k, v) in data.as_object().unwrap() {
        img[k] = v.clone();
    }
    img
}

const MIGRATIONS_TABLE: &str =
    "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL); \
     INSERT INTO schema_migrations VALUES (1, 0)";

async fn legacy_sqlite(dir: &std::path::Path) -> DynStore {
    let path = legacy_sqlite_file(dir).await;
    Arc::new(SqliteStore::open(&path).await.expect("migrate and open"))
}

/// A database file of the first schema, not yet opened by this Kontor.
async fn legacy_sqlite_file(dir: &std::path::Path) -> std::path::PathBuf {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{Connection, Executor};
    let path = dir.join("kontor.db");
    let mut conn = sqlx::SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    conn.execute(include_str!("../../store/migrations/sqlite/0001_core.sql"))
        .await
        .unwrap();
    conn.execute(MIGRATIONS_TABLE).await.unwrap();
    for (sql, args) in legacy_rows(false) {
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        q.execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    path
}

async fn legacy_postgres() -> DynStore {
    let url = legacy_postgres_database().await;
    Arc::new(PgStore::connect(&url).await.expect("migrate and open"))
}

/// A database of the first schema, not yet opened by this Kontor: its URL.
async fn legacy_postgres_database() -> String {
    use sqlx::{Connection, Executor};
    let pg = kontor_testkit::postgres().expect("PostgreSQL for tests");
    let url = pg.fresh_database().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(include_str!(
        "../../store/migrations/postgres/0001_core.sql"
    ))
    .await
    .unwrap();
    conn.execute(MIGRATIONS_TABLE).await.unwrap();
    conn.execute("UPDATE journal_head SET seq = 4, at = 1767312000000000")
        .await
        .unwrap();
    for (sql, args) in legacy_rows(true) {
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        q.execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    url
}

async fn check_migrated(store: DynStore) {
    let kontor = Kontor::new(store.clone(), Settings::default());
    // The old user logs in with the password set last, not the first one.
    assert!(kontor
        .login("old@firm.ru", "legacy-password-2", "127.0.0.1")
        .await
        .is_ok());
    assert!(kontor
        .login("old@firm.ru", "legacy-password-1", "127.0.0.1")
        .await
        .is_err());
    // No hash is left in the record, its search text or any journal image.
    let user = store.get(Entity::Users, USER).await.unwrap().unwrap();
    assert!(user.data.get("password_hash").is_none(), "{:?}", user.data);
    assert_eq!(
        user.data["password_changed_at"],
        json!("2026-01-02T00:00:00.000000Z")
    );
    let found = store
        .list(&kontor_store::ListQuery {
            text: Some("argon2".into()),
            ..kontor_store::ListQuery::all(Entity::Users, None, 10)
        })
        .await
        .unwrap();
    assert!(found.is_empty(), "search still finds the hash");
    let entries = store
        .journal(&JournalQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 4);
    for e in &entries {
        let text = format!("{:?}{:?}", e.before, e.after);
        assert!(!text.contains("argon2"), "seq {}: {text}", e.seq);
    }
    // The second entry still shows that the password changed, and when.
    let changed = |v: &Option<Value>| v.as_ref().unwrap()["password_changed_at"].clone();
    assert_ne!(changed(&entries[1].before), changed(&entries[1].after));
    // Replay gives the live state.
    let replayed = replay(&entries);
    assert_eq!(
        replayed[&(Entity::Users, USER.to_string())],
        user.to_image()
    );
    store.close().await;
}

#[tokio::test]
async fn data_of_the_first_schema_is_brought_up_to_date_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check_migrated(legacy_sqlite(dir.path()).await).await;
}

#[tokio::test]
async fn data_of_the_first_schema_is_brought_up_to_date_on_postgres() {
    if kontor_testkit::skip_postgres("data_of_the_first_schema_is_brought_up_to_date_on_postgres") {
        return;
    }
    check_migrated(legacy_postgres().await).await;
}

/// What `kontor status` reads of a database, and the two it must not open: one a migration
/// recorded differently (a released migration was edited) and one a newer Kontor migrated.
async fn the_schema_says_where_it_stands_and_what_cannot_be_opened(
    inspect: impl Fn() -> futures_like::Inspecting,
    open: impl Fn() -> futures_like::Opening,
    tamper: impl Fn(&'static str) -> futures_like::Tampering,
) {
    let before = inspect().await.unwrap();
    assert_eq!(before.migrations.schema_version, 1);
    assert_eq!(
        before.migrations.pending,
        (2..=kontor_store::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    assert_eq!(before.migrations.applied[0].checksum, None);
    assert_eq!(before.journal_seq, 4);

    open().await.unwrap().close().await;
    let after = inspect().await.unwrap();
    let m = &after.migrations;
    assert_eq!(m.schema_version, kontor_store::SCHEMA_VERSION);
    assert!(
        m.pending.is_empty() && m.edited.is_empty() && m.unknown.is_empty(),
        "{m:?}"
    );
    // Every step has its checksum now (the first, applied before checksums, too); the steps
    // this Kontor applied say which Kontor and how long.
    assert!(m
        .applied
        .iter()
        .all(|a| a.checksum.as_ref().is_some_and(|c| c.len() == 64)));
    assert_eq!(m.applied[0].kontor_version, None);
    assert_eq!(
        m.applied[1].kontor_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(after.bytes > 0);

    // A step recorded with another checksum: refused, and the status says which.
    tamper("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 3").await;
    let refused = open().await.err().expect("an edited migration is refused");
    assert!(
        matches!(&refused, kontor_store::StoreError::Schema(m) if m.contains("migration 3")),
        "{refused}"
    );
    assert_eq!(inspect().await.unwrap().migrations.edited, vec![3]);
    tamper("UPDATE schema_migrations SET checksum = NULL WHERE version = 3").await;

    // A newer Kontor's migration: refused, naming both versions.
    tamper("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)").await;
    let refused = open().await.err().expect("a newer schema is refused");
    assert!(
        matches!(&refused, kontor_store::StoreError::Schema(m) if m.contains("schema version 99")),
        "{refused}"
    );
    assert_eq!(inspect().await.unwrap().migrations.unknown, vec![99]);
    tamper("DELETE FROM schema_migrations WHERE version = 99").await;
    open().await.unwrap().close().await;
}

/// Boxed futures of the steps above, so one test body serves both engines.
mod futures_like {
    use std::future::Future;
    use std::pin::Pin;
    pub type Inspecting =
        Pin<Box<dyn Future<Output = kontor_store::StoreResult<kontor_store::Inspection>>>>;
    pub type Opening =
        Pin<Box<dyn Future<Output = kontor_store::StoreResult<kontor_store::DynStore>>>>;
    pub type Tampering = Pin<Box<dyn Future<Output = ()>>>;
}

#[tokio::test]
async fn sqlite_schema_status_and_refusals() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().unwrap();
    let path = legacy_sqlite_file(dir.path()).await;
    let (p1, p2, p3) = (path.clone(), path.clone(), path.clone());
    the_schema_says_where_it_stands_and_what_cannot_be_opened(
        move || {
            let p = p1.clone();
            Box::pin(async move { SqliteStore::inspect(&p).await })
        },
        move || {
            let p = p2.clone();
            Box::pin(async move { SqliteStore::open(&p).await.map(|s| Arc::new(s) as DynStore) })
        },
        move |sql| {
            let p = p3.clone();
            Box::pin(async move {
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", p.display()))
                    .await
                    .unwrap();
                c.execute(sql).await.unwrap();
                c.close().await.unwrap();
            })
        },
    )
    .await;
}

#[tokio::test]
async fn postgres_schema_status_and_refusals() {
    use sqlx::{Connection, Executor};
    if kontor_testkit::skip_postgres("postgres_schema_status_and_refusals") {
        return;
    }
    let url = legacy_postgres_database().await;
    let (u1, u2, u3) = (url.clone(), url.clone(), url.clone());
    the_schema_says_where_it_stands_and_what_cannot_be_opened(
        move || {
            let u = u1.clone();
            Box::pin(async move { PgStore::inspect(&u).await })
        },
        move || {
            let u = u2.clone();
            Box::pin(async move { PgStore::connect(&u).await.map(|s| Arc::new(s) as DynStore) })
        },
        move |sql| {
            let u = u3.clone();
            Box::pin(async move {
                let mut c = sqlx::PgConnection::connect(&u).await.unwrap();
                c.execute(sql).await.unwrap();
                c.close().await.unwrap();
            })
        },
    )
    .await;
}
