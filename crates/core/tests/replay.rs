//! Property: replaying the journal from empty gives exactly the current state — after every
//! step of a random sequence of creates, updates, deletes, restores, purges and undos.

use kontor_core::{Kontor, Mutation, Settings};
use kontor_domain::journal::{replay, Origin};
use kontor_domain::permission::Actor;
use kontor_domain::{BatchId, Entity};
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::{DynStore, JournalQuery, Store};
use kontor_testkit::Engine;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Step {
    CreateCompany(u8),
    CreateContact { company: u8, name: u8 },
    CreateInvoiceWithPayment { company: u8, amount: u8 },
    Update { target: u8, value: u8 },
    Delete(u8),
    RestoreFromBin(u8),
    Purge(u8),
    RestoreToStart(u8),
    UndoLastBatch,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => any::<u8>().prop_map(Step::CreateCompany),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(company, name)| Step::CreateContact { company, name }),
        1 => (any::<u8>(), 1..200u8).prop_map(|(company, amount)| Step::CreateInvoiceWithPayment { company, amount }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(target, value)| Step::Update { target, value }),
        2 => any::<u8>().prop_map(Step::Delete),
        2 => any::<u8>().prop_map(Step::RestoreFromBin),
        1 => any::<u8>().prop_map(Step::Purge),
        1 => any::<u8>().prop_map(Step::RestoreToStart),
        1 => Just(Step::UndoLastBatch),
    ]
}

fn pick<T: Clone>(items: &[T], n: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[n as usize % items.len()].clone())
}

async fn current_state(store: &dyn Store) -> BTreeMap<(Entity, String), Value> {
    let mut out = BTreeMap::new();
    for e in Entity::ALL {
        for r in store.all_records(e).await.unwrap() {
            out.insert((e, r.id.clone()), r.to_image());
        }
    }
    out
}

async fn replayed_state(store: &dyn Store) -> BTreeMap<(Entity, String), Value> {
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .journal(&JournalQuery {
                cursor,
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let done = page.len() < 1000;
        cursor = page.last().map(|e| e.seq);
        entries.extend(page);
        if done {
            break;
        }
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "journal has a gap"
    );
    replay(&entries)
}

async fn run(engine: Engine, steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = match engine {
        Engine::Sqlite => Arc::new(
            SqliteStore::open(&dir.path().join("kontor.db"))
                .await
                .unwrap(),
        ),
        Engine::Postgres => {
            let url = kontor_testkit::postgres().unwrap().fresh_database().await;
            Arc::new(PgStore::connect(&url).await.unwrap())
        }
    };
    let kontor = Kontor::new(store, Settings::default());
    let mut fields = Map::new();
    fields.insert("email".into(), json!("admin@replay.test"));
    fields.insert("role".into(), json!("admin"));
    let admin_rec = kontor
        .add_user(&Actor::system(), Origin::System, fields, "replay-password")
        .await
        .unwrap();
    let admin = kontor_core::auth::actor_for_user(kontor.store.as_ref(), &admin_rec)
        .await
        .unwrap();
    let start = kontor_domain::time::now();
    let mut records: Vec<(Entity, String)> = Vec::new();
    let mut batches: Vec<BatchId> = Vec::new();

    for s in steps {
        let mutations = match &s {
            Step::CreateCompany(n) => vec![Mutation::Create {
                entity: Entity::Companies,
                input: json!({"name": format!("Company {n}"), "inn": format!("77070838{:02}", n % 100)}),
            }],
            Step::CreateContact { company, name } => {
                let mut input = json!({"first_name": format!("Name {name}")});
                if let Some((Entity::Companies, id)) =
                    pick(&records, *company).filter(|(e, _)| *e == Entity::Companies)
                {
                    input["company_id"] = json!(id);
                }
                vec![Mutation::Create {
                    entity: Entity::Contacts,
                    input,
                }]
            }
            Step::CreateInvoiceWithPayment { company, amount } => {
                let companies: Vec<_> = records
                    .iter()
                    .filter(|(e, _)| *e == Entity::Companies)
                    .cloned()
                    .collect();
                let Some((_, cid)) = pick(&companies, *company) else {
                    continue;
                };
                let inv = kontor
                    .write(&admin, Origin::Api, vec![Mutation::Create {
                        entity: Entity::Invoices,
                        input: json!({"company_id": cid, "lines": [{"description": "x", "quantity": "1", "price": "100"}]}),
                    }])
                    .await;
                let Ok(inv) = inv else { continue };
                batches.push(inv.batch);
                if let Some(Some(r)) = inv.records.first() {
                    records.push((Entity::Invoices, r.id.clone()));
                    vec![Mutation::Create {
                        entity: Entity::Payments,
                        input: json!({"invoice_id": r.id, "amount": amount, "date": "2026-01-02"}),
                    }]
                } else {
                    continue;
                }
            }
            Step::Update { target, value } => {
                let Some((entity, id)) = pick(&records, *target) else {
                    continue;
                };
                let input = match entity {
                    Entity::Companies => json!({"legal_name": format!("LLC {value}")}),
                    Entity::Contacts => json!({"last_name": format!("Last {value}")}),
                    Entity::Invoices => json!({"notes": format!("note {value}")}),
                    _ => json!({"notes": format!("note {value}")}),
                };
                vec![Mutation::Update { entity, id, input }]
            }
            Step::Delete(n) => {
                let Some((entity, id)) = pick(&records, *n) else {
                    continue;
                };
                vec![Mutation::Delete { entity, id }]
            }
            Step::RestoreFromBin(n) => {
                let Some((entity, id)) = pick(&records, *n) else {
                    continue;
                };
                vec![Mutation::RestoreDeleted { entity, id }]
            }
            Step::Purge(n) => {
                let Some((entity, id)) = pick(&records, *n) else {
                    continue;
                };
                vec![Mutation::Purge { entity, id }]
            }
            Step::RestoreToStart(n) => {
                let Some((entity, id)) = pick(&records, *n) else {
                    continue;
                };
                if let Ok(a) = kontor.restore_record(&admin, entity, &id, start).await {
                    batches.push(a.batch);
                }
                vec![]
            }
            Step::UndoLastBatch => {
                if let Some(b) = batches.last().copied() {
                    if let Ok(a) = kontor.undo_batch(&admin, b).await {
                        batches.push(a.batch);
                    }
                }
                vec![]
            }
        };
        if !mutations.is_empty() {
            // Refusals (a record in the bin, a purge of a live record, ...) are fine: they must
            // simply leave no trace.
            if let Ok(applied) = kontor.write(&admin, Origin::Api, mutations).await {
                batches.push(applied.batch);
                for e in &applied.entries {
                    if !records.contains(&(e.entity, e.record_id.clone()))
                        && e.entity != Entity::Users
                    {
                        records.push((e.entity, e.record_id.clone()));
                    }
                }
            }
        }
        let live = current_state(kontor.store.as_ref()).await;
        let replayed = replayed_state(kontor.store.as_ref()).await;
        assert_eq!(replayed, live, "replay differs from live state after {s:?}");
    }
}

fn check(engine: Engine, steps: Vec<Step>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(engine, steps));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_journal_rebuilds_the_current_state_sqlite(steps in proptest::collection::vec(step(), 1..28)) {
        check(Engine::Sqlite, steps);
    }

    #[test]
    fn replaying_the_journal_rebuilds_the_current_state_postgres(steps in proptest::collection::vec(step(), 1..28)) {
        if !kontor_testkit::skip_postgres("replaying_the_journal_rebuilds_the_current_state_postgres") {
            check(Engine::Postgres, steps);
        }
    }
}
