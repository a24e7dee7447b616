//! Archives through the library: a snapshot restored into either engine reads back with the
//! same digest, records, uniques and passwords; SQLite → PostgreSQL → SQLite ends where it
//! started; every kind of damage is named and leaves nothing behind.

use kontor_backup::create::{snapshot, state_of, Source};
use kontor_backup::format::ArchiveReader;
use kontor_backup::progress::Silent;
use kontor_backup::restore::{restore, verify, Target};
use kontor_backup::seal::Keys;
use kontor_backup::BackupError;
use kontor_core::{Kontor, Mutation, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::permission::Actor;
use kontor_domain::Entity;
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::{bulk, DynStore, Store};
use kontor_testkit::Engine;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PASSWORD: &str = "Old-password-42";

/// A place a store lives: a SQLite file or a PostgreSQL URL.
#[derive(Clone)]
enum Place {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Place {
    async fn new(engine: Engine, dir: &Path, name: &str) -> Place {
        match engine {
            Engine::Sqlite => Place::Sqlite(dir.join(format!("{name}.db"))),
            Engine::Postgres => Place::Postgres(
                kontor_testkit::postgres()
                    .expect("postgres")
                    .fresh_database()
                    .await,
            ),
        }
    }
    async fn open(&self) -> DynStore {
        match self {
            Place::Sqlite(p) => Arc::new(SqliteStore::open(p).await.unwrap()),
            Place::Postgres(u) => Arc::new(PgStore::connect(u).await.unwrap()),
        }
    }
    fn source(&self) -> Source {
        match self {
            Place::Sqlite(p) => Source::Sqlite(p.clone()),
            Place::Postgres(u) => Source::Postgres(u.clone()),
        }
    }
    fn target(&self) -> Target {
        match self {
            Place::Sqlite(p) => Target::Sqlite(p.clone()),
            Place::Postgres(u) => Target::Postgres(u.clone()),
        }
    }
}

/// Creates one record as the system.
async fn create(
    k: &Kontor,
    entity: Entity,
    input: Value,
) -> kontor_core::CoreResult<kontor_core::Applied> {
    k.write(
        &Actor::system(),
        Origin::Api,
        vec![Mutation::Create { entity, input }],
    )
    .await
}

/// Companies, contacts (one in the bin), a custom unique field, an invoice with a number from
/// a counter, and a second user with a password.
async fn fill(store: DynStore) {
    let k = Kontor::new(store, Settings::default());
    let system = Actor::system();
    let mut admin = Map::new();
    admin.insert("email".into(), json!("admin@example.com"));
    admin.insert("name".into(), json!("Admin"));
    admin.insert("role".into(), json!("admin"));
    k.add_user(&system, Origin::System, admin, PASSWORD)
        .await
        .unwrap();
    create(
        &k,
        Entity::Fields,
        json!({"entity": "contacts", "name": "badge", "type": "string", "unique": true}),
    )
    .await
    .unwrap();
    let company = create(
        &k,
        Entity::Companies,
        json!({"name": "Ромашка ООО", "inn": "7707083893"}),
    )
    .await
    .unwrap()
    .records[0]
        .clone()
        .unwrap();
    let mut contacts = Vec::new();
    for i in 0..30 {
        let c = create(
            &k,
            Entity::Contacts,
            json!({"first_name": format!("Anna {i}"), "last_name": "Müller",
                        "email": format!("anna{i}@example.com"), "company_id": company.id,
                        "badge": format!("B-{i}"), "external_id": format!("ext-{i}")}),
        )
        .await
        .unwrap();
        contacts.push(c.records[0].clone().unwrap().id);
    }
    k.write(
        &system,
        Origin::Api,
        vec![Mutation::Delete {
            entity: Entity::Contacts,
            id: contacts[3].clone(),
        }],
    )
    .await
    .unwrap();
    create(
        &k,
        Entity::Invoices,
        json!({"company_id": company.id, "lines": [
            {"description": "Консультация", "quantity": "2", "price": "1500.50"}
        ]}),
    )
    .await
    .unwrap();
}

async fn digest_of(place: &Place) -> String {
    let mut snap = match place {
        Place::Sqlite(p) => bulk::sqlite::open_snapshot(p).await.unwrap(),
        Place::Postgres(u) => bulk::postgres::open_snapshot(u).await.unwrap(),
    };
    let (digest, _) = state_of(snap.as_mut()).await.unwrap();
    snap.close().await;
    digest
}

fn engines() -> Vec<Engine> {
    let mut e = vec![Engine::Sqlite];
    if !kontor_testkit::skip_postgres("backup archive tests") {
        e.push(Engine::Postgres);
    }
    e
}

#[tokio::test]
async fn a_round_trip_through_both_engines_keeps_the_digest_records_and_passwords() {
    let engines = engines();
    let dir = tempfile::tempdir().unwrap();
    let first = Place::new(Engine::Sqlite, dir.path(), "live").await;
    let store = first.open().await;
    fill(store.clone()).await;
    store.close().await;
    let original = digest_of(&first).await;

    // SQLite → PostgreSQL → SQLite (or SQLite → SQLite when PostgreSQL is missing).
    let mut place = first.clone();
    let mut hops = engines.clone();
    hops.push(Engine::Sqlite);
    for (i, engine) in hops.iter().enumerate().skip(1) {
        let created = snapshot(
            &place.source(),
            &dir.path().join(format!("archives-{i}")),
            3,
            &Keys::default(),
            Arc::new(Silent),
        )
        .await
        .unwrap();
        let (archive, manifest) = (created.path, created.manifest);
        assert_eq!(manifest.digest, original, "hop {i}: the snapshot digest");
        assert_eq!(manifest.tables["credentials"], 1);
        assert_eq!(manifest.tables["counters"], 1);
        let next = Place::new(*engine, dir.path(), &format!("hop{i}")).await;
        let report = restore(&archive, &next.target(), &Keys::default(), Arc::new(Silent))
            .await
            .unwrap();
        assert_eq!(report.manifest.digest, original);
        assert_eq!(digest_of(&next).await, original, "hop {i} to {engine:?}");
        place = next;
    }

    // The last copy behaves like the original: the old password works, unique values (built
    // in and custom) are held, the next invoice number follows on, the bin still holds the
    // deleted contact.
    let store = place.open().await;
    let k = Kontor::new(store.clone(), Settings::default());
    k.login("admin@example.com", PASSWORD, "127.0.0.1")
        .await
        .expect("the old password logs in");
    let dup = create(
        &k,
        Entity::Contacts,
        json!({"first_name": "X", "external_id": "ext-5"}),
    )
    .await;
    assert!(
        dup.is_err(),
        "the external id of a restored contact is still taken"
    );
    let dup = create(
        &k,
        Entity::Contacts,
        json!({"first_name": "X", "badge": "B-7"}),
    )
    .await;
    assert!(dup.is_err(), "a custom unique value is still taken");
    let free = create(
        &k,
        Entity::Contacts,
        json!({"first_name": "X", "external_id": "ext-3", "badge": "B-3"}),
    )
    .await;
    assert!(free.is_ok(), "a contact in the bin holds no unique value");
    let companies = store.all_records(Entity::Companies).await.unwrap();
    let inv = create(
        &k,
        Entity::Invoices,
        json!({"company_id": companies[0].id, "lines": [
            {"description": "Еще", "quantity": "1", "price": "10"}
        ]}),
    )
    .await
    .unwrap();
    let number = inv.records[0].as_ref().unwrap().data["number"].clone();
    assert!(
        number.as_str().unwrap_or_default().ends_with('2'),
        "the invoice counter continues: {number}"
    );
    let deleted = store
        .all_records(Entity::Contacts)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.is_deleted())
        .count();
    assert_eq!(deleted, 1);
    store.close().await;
}

/// A fresh archive of a filled SQLite database.
async fn archive(dir: &Path) -> PathBuf {
    sealed_archive(dir, &Keys::default()).await
}

/// A fresh archive of a filled SQLite database, encrypted as `keys` say.
async fn sealed_archive(dir: &Path, keys: &Keys) -> PathBuf {
    let live = dir.join("live.db");
    let store: DynStore = Arc::new(SqliteStore::open(&live).await.unwrap());
    fill(store.clone()).await;
    store.close().await;
    snapshot(
        &Source::Sqlite(live),
        &dir.join("archives"),
        3,
        keys,
        Arc::new(Silent),
    )
    .await
    .unwrap()
    .path
}

/// Restores into a new SQLite file and checks that nothing is left after a failure.
async fn refused(archive: &Path, dir: &Path) -> BackupError {
    refused_with(archive, dir, &Keys::default()).await
}

/// [`refused`], reading with `keys`.
async fn refused_with(archive: &Path, dir: &Path, keys: &Keys) -> BackupError {
    let target = dir.join("restored.db");
    let err = restore(
        archive,
        &Target::Sqlite(target.clone()),
        keys,
        Arc::new(Silent),
    )
    .await
    .expect_err("a damaged archive must be refused");
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("restored"))
        .collect();
    assert!(left.is_empty(), "a failed restore left {left:?}");
    assert!(verify(archive, keys, Arc::new(Silent)).await.is_err());
    err
}

/// Offset and size of a tar member.
fn member(archive: &Path, name: &str) -> (u64, u64) {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(file);
    for e in tar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            return (e.raw_file_position(), e.size());
        }
    }
    panic!("no {name} in the archive");
}

fn flip(archive: &Path, at: u64) {
    let mut bytes = std::fs::read(archive).unwrap();
    bytes[at as usize] ^= 0x10;
    std::fs::write(archive, bytes).unwrap();
}

#[tokio::test]
async fn a_good_archive_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    let report = verify(&a, &Keys::default(), Arc::new(Silent))
        .await
        .unwrap();
    assert!(report.manifest.tables["records"] > 30);
}

#[tokio::test]
async fn a_flipped_bit_in_a_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    let name = ArchiveReader::open(&a)
        .unwrap()
        .manifest
        .parts
        .iter()
        .find(|p| p.table == "journal")
        .unwrap()
        .name
        .clone();
    let (at, size) = member(&a, &name);
    flip(&a, at + size / 2);
    match refused(&a, dir.path()).await {
        BackupError::Corrupt { part, reason, .. } => {
            assert_eq!(part, name);
            assert!(reason.contains("BLAKE3"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_flipped_bit_in_the_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    let (at, _) = member(&a, "manifest.json");
    flip(&a, at + 40);
    match refused(&a, dir.path()).await {
        BackupError::Corrupt { part, .. } => assert_eq!(part, "manifest.json"),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_truncated_archive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    let len = std::fs::metadata(&a).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&a).unwrap();
    f.set_len(len * 2 / 3).unwrap();
    let err = refused(&a, dir.path()).await;
    assert!(
        matches!(err, BackupError::Corrupt { .. }),
        "unexpected {err}"
    );
}

/// Rewrites the archive without one member, or with a replaced manifest (sealed again).
fn rewrite(archive: &Path, skip: &str, manifest: Option<&dyn Fn(&mut Value)>) {
    let bytes = std::fs::read(archive).unwrap();
    let mut out = tar::Builder::new(Vec::new());
    let mut tar = tar::Archive::new(bytes.as_slice());
    let mut new_manifest = None;
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == skip {
            continue;
        }
        if name == "manifest.json" {
            if let Some(edit) = manifest {
                let mut v: Value = serde_json::from_slice(&data).unwrap();
                edit(&mut v);
                data = serde_json::to_vec_pretty(&v).unwrap();
                new_manifest = Some(data.clone());
            }
        }
        if name == "manifest.json.b3" {
            if let Some(m) = &new_manifest {
                data = format!("{}\n", blake3::hash(m).to_hex()).into_bytes();
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(&name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append(&h, data.as_slice()).unwrap();
    }
    std::fs::write(archive, out.into_inner().unwrap()).unwrap();
}

#[tokio::test]
async fn a_missing_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    rewrite(&a, "credentials.jsonl.zst", None);
    match refused(&a, dir.path()).await {
        BackupError::Corrupt { part, reason, .. } => {
            assert_eq!(part, "credentials.jsonl.zst");
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_newer_archive_is_refused_saying_which_version_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    rewrite(
        &a,
        "",
        Some(&|m: &mut Value| {
            m["schema_version"] = json!(kontor_store::SCHEMA_VERSION + 1);
            m["kontor_version"] = json!("9.0.0");
        }),
    );
    let err = refused(&a, dir.path()).await;
    assert!(matches!(err, BackupError::Version(_)), "unexpected {err}");
    assert!(err.to_string().contains("Kontor 9.0.0 or newer"), "{err}");
}

#[tokio::test]
async fn rows_that_do_not_match_the_digest_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    // A consistent-looking manifest that promises other data.
    rewrite(
        &a,
        "",
        Some(&|m: &mut Value| {
            m["digest"] = json!(format!("blake3:{}", "0".repeat(64)));
        }),
    );
    match refused(&a, dir.path()).await {
        BackupError::Corrupt { reason, .. } => assert!(reason.contains("digest"), "{reason}"),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_restore_refuses_a_database_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path()).await;
    let live = dir.path().join("live.db");
    let err = restore(
        &a,
        &Target::Sqlite(live),
        &Keys::default(),
        Arc::new(Silent),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    if !kontor_testkit::skip_postgres("restore into a non-empty database") {
        let url = kontor_testkit::postgres().unwrap().fresh_database().await;
        PgStore::connect(&url).await.unwrap().close().await;
        let err = restore(
            &a,
            &Target::Postgres(url),
            &Keys::default(),
            Arc::new(Silent),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}

/// An age identity written to a file, with keys that encrypt to it and keys that read with it.
fn identity(dir: &Path, name: &str) -> (Keys, Keys) {
    let id = age::x25519::Identity::generate();
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "# created: now\n{}\n",
            age::secrecy::ExposeSecret::expose_secret(&id.to_string())
        ),
    )
    .unwrap();
    let mut writer = Keys::default();
    writer
        .add_recipients([id.to_public().to_string().as_str()])
        .unwrap();
    let mut reader = Keys::default();
    reader.add_identity_file(&file).unwrap();
    (writer, reader)
}

#[tokio::test]
async fn an_archive_encrypted_to_a_recipient_restores_only_with_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = identity(dir.path(), "me.key");
    let a = sealed_archive(dir.path(), &writer).await;
    let opened = ArchiveReader::open(&a).unwrap();
    assert_eq!(opened.manifest.encryption.as_deref(), Some("age"));
    let key = opened.manifest.key.clone().unwrap();
    assert_eq!(key.wrapped_for, "recipients");
    // No part is readable as plain zstd: every one is an age file.
    let part = &opened.manifest.parts[0];
    let (at, size) = member(&a, &part.name);
    let bytes = std::fs::read(&a).unwrap();
    let stored = &bytes[at as usize..(at + size) as usize];
    assert!(stored.starts_with(b"age-encryption.org/v1"), "part is age");

    let report = verify(&a, &reader, Arc::new(Silent)).await.unwrap();
    assert!(report.manifest.tables["records"] > 30);

    match refused_with(&a, dir.path(), &Keys::default()).await {
        BackupError::Key(m) => assert!(m.contains("--identity"), "{m}"),
        other => panic!("missing key: {other}"),
    }
    let (_, stranger) = identity(dir.path(), "stranger.key");
    match refused_with(&a, dir.path(), &stranger).await {
        BackupError::Key(m) => assert!(m.contains("no identity given opens"), "{m}"),
        other => panic!("wrong key: {other}"),
    }
    // A flipped bit in an encrypted part is found by its BLAKE3 before decryption.
    let (at, size) = member(&a, &part.name);
    flip(&a, at + size / 2);
    match refused_with(&a, dir.path(), &reader).await {
        BackupError::Corrupt { part: p, .. } => assert_eq!(p, part.name),
        other => panic!("flipped bit: {other}"),
    }
}

#[tokio::test]
async fn an_archive_encrypted_with_a_passphrase_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Keys::default();
    keys.set_passphrase("correct horse battery staple").unwrap();
    let a = sealed_archive(dir.path(), &keys).await;
    let report = verify(&a, &keys, Arc::new(Silent)).await.unwrap();
    assert_eq!(
        ArchiveReader::open(&a)
            .unwrap()
            .manifest
            .key
            .unwrap()
            .wrapped_for,
        "passphrase"
    );
    assert!(report.manifest.tables["records"] > 30);
    let mut wrong = Keys::default();
    wrong.set_passphrase("incorrect horse").unwrap();
    match refused_with(&a, dir.path(), &wrong).await {
        BackupError::Key(m) => assert!(m.contains("passphrase given does not open"), "{m}"),
        other => panic!("wrong passphrase: {other}"),
    }
    match refused_with(&a, dir.path(), &Keys::default()).await {
        BackupError::Key(m) => assert!(m.contains("passphrase"), "{m}"),
        other => panic!("missing passphrase: {other}"),
    }
}
