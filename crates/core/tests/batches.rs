//! Large batches through the one write path, on both engines. A batch reads what it needs in
//! bulk and the store sends record rows and unique values in multi-row statements; these tests
//! pin down that the rules still hold exactly as for one record at a time: unique values are
//! checked against the database and against the rest of the batch, a value may move between
//! records within a batch, a record written several times is stored once as last written, and
//! reads inside the batch (the children a delete cascades to) see what the batch wrote.

use kontor_core::{CoreError, Kontor, Mutation, Settings};
use kontor_domain::journal::{Op, Origin};
use kontor_domain::permission::Actor;
use kontor_domain::record::new_id;
use kontor_domain::{DomainError, Entity};
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::DynStore;
use kontor_testkit::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

async fn open(engine: Engine, dir: &std::path::Path) -> Option<Kontor> {
    let store: DynStore = match engine {
        Engine::Sqlite => Arc::new(
            SqliteStore::open(&dir.join("kontor.db"))
                .await
                .expect("open sqlite"),
        ),
        Engine::Postgres => {
            if kontor_testkit::skip_postgres("batches on postgres") {
                return None;
            }
            let url = kontor_testkit::postgres()?.fresh_database().await;
            Arc::new(PgStore::connect(&url).await.expect("connect"))
        }
    };
    Some(Kontor::new(store, Settings::default()))
}

fn create(entity: Entity, id: &str, input: Value) -> Mutation {
    Mutation::CreateAs {
        entity,
        id: id.to_string(),
        input,
    }
}

async fn write(
    kontor: &Kontor,
    mutations: Vec<Mutation>,
) -> Result<kontor_core::Applied, CoreError> {
    kontor
        .write(&Actor::system(), Origin::Import, mutations)
        .await
}

async fn holder(kontor: &Kontor, entity: Entity, key: &str, value: &str) -> Option<String> {
    kontor
        .store
        .find_unique(entity, key, value)
        .await
        .expect("find")
        .map(|r| r.id)
}

fn is_duplicate(e: &CoreError) -> bool {
    matches!(e, CoreError::Domain(DomainError::Duplicate { .. }))
}

async fn check(engine: Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(kontor) = open(engine, dir.path()).await else {
        return;
    };

    // A thousand companies with their 1C ids in one batch: all stored, all held.
    let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
    let mutations = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            create(
                Entity::Companies,
                id,
                json!({"name": format!("Company {i}"), "external_id": format!("ext-{i}")}),
            )
        })
        .collect();
    let applied = write(&kontor, mutations).await.expect("bulk create");
    assert_eq!(applied.entries.len(), 1000);
    assert_eq!(applied.records.len(), 1000);
    assert!(applied.records.iter().all(Option::is_some));
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "ext-999").await,
        Some(ids[999].clone())
    );

    // A value the database holds is refused to another record of a batch, and nothing of
    // the batch is kept.
    let head = kontor.store.journal_head().await.expect("head");
    let fresh = new_id();
    let err = write(
        &kontor,
        vec![
            create(
                Entity::Companies,
                &fresh,
                json!({"name": "New", "external_id": "ext-new"}),
            ),
            create(
                Entity::Companies,
                &new_id(),
                json!({"name": "Copy", "external_id": "ext-5"}),
            ),
        ],
    )
    .await
    .expect_err("taken in the database");
    assert!(is_duplicate(&err), "{err:?}");
    assert_eq!(kontor.store.journal_head().await.expect("head"), head);
    assert!(kontor
        .store
        .get(Entity::Companies, &fresh)
        .await
        .expect("get")
        .is_none());
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "ext-new").await,
        None
    );

    // Two records of one batch cannot take the same value.
    let err = write(
        &kontor,
        vec![
            create(
                Entity::Companies,
                &new_id(),
                json!({"name": "A", "external_id": "twin"}),
            ),
            create(
                Entity::Companies,
                &new_id(),
                json!({"name": "B", "external_id": "twin"}),
            ),
        ],
    )
    .await
    .expect_err("twins");
    assert!(is_duplicate(&err), "{err:?}");
    assert_eq!(kontor.store.journal_head().await.expect("head"), head);

    // A value moves between records within a batch: the first lets it go, the second takes it.
    write(
        &kontor,
        vec![
            Mutation::Update {
                entity: Entity::Companies,
                id: ids[1].clone(),
                input: json!({"external_id": "ext-1-old"}),
            },
            Mutation::Update {
                entity: Entity::Companies,
                id: ids[2].clone(),
                input: json!({"external_id": "ext-1"}),
            },
        ],
    )
    .await
    .expect("move a value");
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "ext-1").await,
        Some(ids[2].clone())
    );
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "ext-1-old").await,
        Some(ids[1].clone())
    );
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "ext-2").await,
        None
    );

    // One record created, changed twice and given a contact in one batch: stored once, as
    // last written, with one journal entry per change; the batch's answer is the last state.
    let company = new_id();
    let contact = new_id();
    let applied = write(
        &kontor,
        vec![
            create(
                Entity::Companies,
                &company,
                json!({"name": "v1", "external_id": "multi"}),
            ),
            Mutation::Update {
                entity: Entity::Companies,
                id: company.clone(),
                input: json!({"name": "v2"}),
            },
            create(
                Entity::Contacts,
                &contact,
                json!({"first_name": "Anna", "company_id": company}),
            ),
            Mutation::Update {
                entity: Entity::Companies,
                id: company.clone(),
                input: json!({"name": "v3", "external_id": "multi-3"}),
            },
        ],
    )
    .await
    .expect("several changes of one record");
    let ops: Vec<Op> = applied.entries.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::Create, Op::Update, Op::Create, Op::Update]);
    for i in [0, 1, 3] {
        let rec = applied.records[i].as_ref().expect("company");
        assert_eq!(rec.data["name"], json!("v3"), "answer {i}");
    }
    let stored = kontor
        .store
        .get(Entity::Companies, &company)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.data["name"], json!("v3"));
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "multi").await,
        None
    );
    assert_eq!(
        holder(&kontor, Entity::Companies, "external_id", "multi-3").await,
        Some(company.clone())
    );

    // A delete in the same batch that created the children: the cascade reads the children
    // from the database, so it must see the rows the batch has not sent yet.
    let parent = new_id();
    let children: Vec<String> = (0..50).map(|_| new_id()).collect();
    let mut mutations = vec![create(
        Entity::Companies,
        &parent,
        json!({"name": "Parent", "external_id": "parent"}),
    )];
    for (i, c) in children.iter().enumerate() {
        mutations.push(create(
            Entity::Contacts,
            c,
            json!({"first_name": format!("Child {i}"), "company_id": parent, "external_id": format!("child-{i}")}),
        ));
    }
    mutations.push(Mutation::Delete {
        entity: Entity::Companies,
        id: parent.clone(),
    });
    let applied = write(&kontor, mutations).await.expect("create and delete");
    assert_eq!(
        applied
            .entries
            .iter()
            .filter(|e| e.op == Op::Delete)
            .count(),
        51
    );
    for c in &children {
        let rec = kontor
            .store
            .get(Entity::Contacts, c)
            .await
            .expect("get")
            .expect("child kept in the bin");
        assert!(rec.is_deleted(), "child {c} should be in the bin");
    }
    // Records in the bin hold no unique values: another record may take them.
    assert_eq!(
        holder(&kontor, Entity::Contacts, "external_id", "child-7").await,
        None
    );
    write(
        &kontor,
        vec![
            create(
                Entity::Contacts,
                &new_id(),
                json!({"first_name": "X", "external_id": "child-7"}),
            ),
            create(
                Entity::Contacts,
                &new_id(),
                json!({"first_name": "Y", "external_id": "child-8"}),
            ),
        ],
    )
    .await
    .expect("values of binned records are free");
    kontor.store.close().await;
}

#[tokio::test]
async fn large_batches_keep_the_rules_on_sqlite() {
    check(Engine::Sqlite).await;
}

#[tokio::test]
async fn large_batches_keep_the_rules_on_postgres() {
    check(Engine::Postgres).await;
}
