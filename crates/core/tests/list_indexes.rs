//! The list indexes on both engines: built for every filterable field (custom ones included)
//! and dropped when a field stops being filterable, and used by the database for the lists
//! that filter and sort by those fields.

use kontor_core::list::ListParams;
use kontor_core::{Kontor, Mutation, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::listing::{FilterOp, KeyKind};
use kontor_domain::permission::Actor;
use kontor_domain::Entity;
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::{After, Condition, DynStore, ListColumn, ListQuery, ListValue};
use kontor_testkit::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

enum Opened {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Opened {
    async fn explain(&self, q: &ListQuery) -> String {
        match self {
            Opened::Sqlite(s) => s.explain_list(q, true).await.unwrap(),
            Opened::Postgres(s) => s.explain_list(q, true).await.unwrap(),
        }
    }
}

async fn open(engine: Engine, dir: &std::path::Path) -> (Opened, Kontor) {
    let (opened, store): (Opened, DynStore) = match engine {
        Engine::Sqlite => {
            let s = Arc::new(SqliteStore::open(&dir.join("kontor.db")).await.unwrap());
            (Opened::Sqlite(s.clone()), s)
        }
        Engine::Postgres => {
            let url = kontor_testkit::postgres().unwrap().fresh_database().await;
            let s = Arc::new(PgStore::connect(&url).await.unwrap());
            (Opened::Postgres(s.clone()), s)
        }
    };
    (opened, Kontor::new(store, Settings::default()))
}

fn field(name: &str, kind: KeyKind) -> ListColumn {
    ListColumn::Field {
        name: name.into(),
        kind,
    }
}

async fn create(k: &Kontor, entity: Entity, input: Value) -> String {
    let applied = k
        .write(
            &Actor::system(),
            Origin::System,
            vec![Mutation::Create { entity, input }],
        )
        .await
        .unwrap();
    applied.records[0].as_ref().unwrap().id.clone()
}

async fn indexes_are_built_used_and_dropped(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let (db, k) = open(engine, dir.path()).await;
    // Enough rows that the planners' statistics tell an index from a scan.
    for entity in [Entity::Companies, Entity::Contacts, Entity::Deals] {
        let mutations = (0..1000)
            .map(|i| Mutation::Create {
                entity,
                input: match entity {
                    Entity::Companies => {
                        json!({"name": format!("Co {i}"), "phone": format!("+7 495 {i:07}")})
                    }
                    Entity::Contacts => {
                        json!({"last_name": format!("N{i}"), "email": format!("c{i}@x.ru")})
                    }
                    _ => {
                        json!({"title": format!("D{i}"), "amount": format!("{}.00", i * 7 % 5000)})
                    }
                },
            })
            .collect();
        k.write(&Actor::system(), Origin::System, mutations)
            .await
            .unwrap();
    }
    let wanted = k.list_indexes_wanted().await.unwrap();
    let (built, dropped) = k.ensure_list_indexes(&wanted).await.unwrap();
    assert!(dropped.is_empty(), "{dropped:?}");
    for name in [
        "lf1_contacts_email",
        "lf1_contacts_phone",
        "lf1_deals_amount",
        "lf1_invoices_issue_date",
    ] {
        assert!(built.iter().any(|b| b == name), "{name} not in {built:?}");
    }
    let again = k.ensure_list_indexes(&wanted).await.unwrap();
    assert_eq!(again, (vec![], vec![]), "a second pass changes nothing");

    // The database uses them: equality in id order, a range, a sort with a cursor, a phone.
    let mut by_email = ListQuery::all(Entity::Contacts, None, 51);
    by_email.conditions.push(Condition {
        column: field("email", KeyKind::Text),
        op: FilterOp::Eq,
        value: Some(ListValue::Text("a@b.ru".into())),
    });
    by_email.descending = true;
    let mut by_range = ListQuery::all(Entity::Deals, None, 51);
    by_range.conditions.push(Condition {
        column: field("amount", KeyKind::Number),
        op: FilterOp::Gte,
        value: Some(ListValue::Number("1000".into())),
    });
    by_range.sort = field("amount", KeyKind::Number);
    let mut sorted = ListQuery::all(Entity::Contacts, None, 51);
    sorted.sort = field("last_name", KeyKind::Text);
    sorted.after = Some(After {
        value: Some(ListValue::Text("Ivanov".into())),
        id: "0192a0b0-0000-7000-8000-000000000000".into(),
    });
    let mut by_phone = ListQuery::all(Entity::Companies, None, 51);
    by_phone.conditions.push(Condition {
        column: field("phone", KeyKind::Phone),
        op: FilterOp::Eq,
        value: Some(ListValue::Text("8 900 123-45-67".into())),
    });
    for (q, index) in [
        (&by_email, "lf1_contacts_email"),
        (&by_range, "lf1_deals_amount"),
        (&sorted, "lf1_contacts_last_name"),
        (&by_phone, "lf1_companies_phone"),
    ] {
        let plan = db.explain(q).await;
        assert!(plan.contains(index), "{index} not used:\n{plan}");
    }

    // A custom field marked filterable gets an index; unmarked, it loses it.
    let def = create(
        &k,
        Entity::Fields,
        json!({"entity": "deals", "name": "region", "type": "string", "filterable": true}),
    )
    .await;
    let wanted = k.list_indexes_wanted().await.unwrap();
    let (built, _) = k.ensure_list_indexes(&wanted).await.unwrap();
    assert_eq!(built, vec!["lf1_deals_region".to_string()]);
    k.write(
        &Actor::system(),
        Origin::System,
        vec![Mutation::Update {
            entity: Entity::Fields,
            id: def,
            input: json!({"filterable": false}),
        }],
    )
    .await
    .unwrap();
    let wanted = k.list_indexes_wanted().await.unwrap();
    let (built, dropped) = k.ensure_list_indexes(&wanted).await.unwrap();
    assert!(built.is_empty());
    assert_eq!(dropped, vec!["lf1_deals_region".to_string()]);

    // Lists give the same answers with the indexes as the rules say.
    for (title, amount) in [
        ("a", Some("5")),
        ("b", None),
        ("c", Some("1500.50")),
        ("d", Some("20")),
    ] {
        let mut input = json!({"title": title});
        if let Some(a) = amount {
            input["amount"] = json!(a);
        }
        create(&k, Entity::Deals, input).await;
    }
    // Only the four above (the seeded titles start with a capital, before "a" in byte order).
    let titles = |mut p: ListParams| {
        let k = &k;
        p.filters.push(("title[gte]".into(), "a".into()));
        async move {
            let page = k.list(&Actor::system(), Entity::Deals, &p).await.unwrap();
            page.items
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let sorted = ListParams {
        sort: Some("amount".into()),
        ..Default::default()
    };
    assert_eq!(
        titles(sorted.clone()).await,
        ["b", "a", "d", "c"],
        "NULLs first, then numbers"
    );
    let desc = ListParams {
        order: Some("desc".into()),
        ..sorted
    };
    assert_eq!(titles(desc).await, ["c", "d", "a", "b"]);
    let range = ListParams {
        filters: vec![
            ("amount[gt]".into(), "5".into()),
            ("amount[lte]".into(), "1500.5".into()),
        ],
        sort: Some("amount".into()),
        ..Default::default()
    };
    assert_eq!(titles(range).await, ["d", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_indexes_are_built_used_and_dropped() {
    indexes_are_built_used_and_dropped(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_indexes_are_built_used_and_dropped() {
    if kontor_testkit::skip_postgres("postgres_indexes_are_built_used_and_dropped") {
        return;
    }
    indexes_are_built_used_and_dropped(Engine::Postgres).await;
}

/// Regression: statistics gathered on a nearly empty database (as at `kontor init`) told
/// SQLite's planner the records were a handful, so after a big import it read whole lists in
/// id order instead of through the e-mail index (14 ms instead of 1 ms per page at 20,000
/// contacts, until the refresh ten minutes later). They now follow the table as it grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_statistics_follow_a_table_that_grew() {
    let dir = tempfile::tempdir().unwrap();
    let (db, k) = open(Engine::Sqlite, dir.path()).await;
    // As at `kontor init`: one record written, then the list indexes built.
    create(&k, Entity::Companies, json!({"name": "One company"})).await;
    let wanted = k.list_indexes_wanted().await.unwrap();
    k.ensure_list_indexes(&wanted).await.unwrap();
    for chunk in 0..20 {
        let mutations: Vec<Mutation> = (0..1000)
            .map(|i| Mutation::Create {
                entity: Entity::Contacts,
                input: json!({"last_name": format!("N{}", i % 40), "email": format!("c{chunk}-{i}@x.ru")}),
            })
            .collect();
        k.write(&Actor::system(), Origin::System, mutations)
            .await
            .unwrap();
    }
    // What the planner is told of the contacts' e-mail index, read beside the store.
    let side = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("kontor.db"))
                .read_only(true),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let stat: Option<String> =
            sqlx::query_scalar("SELECT stat FROM sqlite_stat1 WHERE idx = 'lf1_contacts_email'")
                .fetch_optional(&side)
                .await
                .unwrap();
        let rows: u64 = stat
            .as_deref()
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if rows >= 16_000 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "30 s after 20,000 contacts were written, the planner still counts {rows} ({stat:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // Told so (and told the entities average a few thousand rows, so `entity = 'contacts'`
    // looks narrow), SQLite would still read a range of last names through an index led by
    // the entity and sort it; the list names the index that serves it.
    let mut by_email = ListQuery::all(Entity::Contacts, None, 51);
    by_email.conditions.push(Condition {
        column: field("email", KeyKind::Text),
        op: FilterOp::Eq,
        value: Some(ListValue::Text("c1-5@x.ru".into())),
    });
    by_email.descending = true;
    let mut range = ListQuery::all(Entity::Contacts, None, 51);
    range.conditions.push(Condition {
        column: field("last_name", KeyKind::Text),
        op: FilterOp::Gte,
        value: Some(ListValue::Text("A".into())),
    });
    range.sort = field("last_name", KeyKind::Text);
    for (q, index) in [
        (&by_email, "lf1_contacts_email"),
        (&range, "lf1_contacts_last_name"),
    ] {
        let plan = db.explain(q).await;
        assert!(plan.contains(index), "{index} not used:\n{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "a sort:\n{plan}");
    }
    // Regression: statistics of the whole database gathered at `init` told the planner the
    // journal had one entry, so "the entries after seq N" (what the search index reads after
    // every write) read every entry through the time index and sorted them: the import of
    // 300,000 contacts spent half its time there, and the sort's memory grew with the journal.
    let Opened::Sqlite(store) = &db else {
        unreachable!()
    };
    let after = kontor_store::JournalQuery {
        cursor: Some(19_000),
        limit: 1000,
        ..kontor_store::JournalQuery::default()
    };
    let plan = store.explain_journal(&after).await.unwrap();
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("journal_at"),
        "the journal after a seq is not read in seq order:\n{plan}"
    );
}

/// Regression: right after a million contacts were imported, PostgreSQL's planner still
/// believed `records` small (autovacuum had not woken yet) and sorted the whole table for the
/// first page of contacts by last name: 324 ms instead of a few. Each node now gathers the
/// statistics itself once a table has changed by more rows than it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statistics_follow_a_table_that_grew() {
    let url = kontor_testkit::postgres().unwrap().fresh_database().await;
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    let k = Kontor::new(store.clone(), Settings::default());
    create(&k, Entity::Companies, json!({"name": "One company"})).await;
    let wanted = k.list_indexes_wanted().await.unwrap();
    k.ensure_list_indexes(&wanted).await.unwrap();
    let side = sqlx::PgPool::connect(&url).await.unwrap();
    // Told nothing else, autovacuum would not analyse this database for a minute at least.
    sqlx::query("ALTER TABLE records SET (autovacuum_enabled = false)")
        .execute(&side)
        .await
        .unwrap();
    for chunk in 0..20 {
        let mutations: Vec<Mutation> = (0..1000)
            .map(|i| Mutation::Create {
                entity: Entity::Contacts,
                input: json!({"last_name": format!("N{:05}", chunk * 1000 + i), "email": format!("c{chunk}-{i}@x.ru")}),
            })
            .collect();
        k.write(&Actor::system(), Origin::System, mutations)
            .await
            .unwrap();
    }
    let started = std::time::Instant::now();
    loop {
        let rows: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'records'::regclass")
                .fetch_one(&side)
                .await
                .unwrap();
        if rows >= 16_000.0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "30 s after 20,000 contacts were written, the planner still counts {rows}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The first page by last name reads the sort's index, no sort of the table.
    let mut by_name = ListQuery::all(Entity::Contacts, None, 51);
    by_name.conditions.push(Condition {
        column: field("last_name", KeyKind::Text),
        op: FilterOp::Gte,
        value: Some(ListValue::Text("A".into())),
    });
    by_name.sort = field("last_name", KeyKind::Text);
    let plan = store.explain_list(&by_name, false).await.unwrap();
    assert!(
        plan.contains("lf1_contacts_last_name"),
        "index not used:\n{plan}"
    );
    assert!(!plan.contains("Sort"), "a sort:\n{plan}");
}

/// Regression: the first page of a list sorted ascending starts with the records whose key is
/// NULL. Asked for them in id order, PostgreSQL (no statistics of an expression behind a
/// partial index: it guesses 0.5 % are NULL) walked the primary key filtering every contact —
/// 1.1 s at a million contacts with none NULL. Ordered as the sort's index is, it reads the
/// NULLs from that index and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_a_sorts_nulls_from_its_index() {
    let url = kontor_testkit::postgres().unwrap().fresh_database().await;
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    let k = Kontor::new(store.clone(), Settings::default());
    create(&k, Entity::Companies, json!({"name": "One company"})).await;
    let side = sqlx::PgPool::connect(&url).await.unwrap();
    // Straight into the table: what the plan depends on is the table's size, not the journal.
    sqlx::raw_sql(
        "INSERT INTO records (entity, id, created_at, updated_at, search, data) \
         SELECT 'contacts', gen_random_uuid()::text, 0, 0, '', \
                jsonb_build_object('last_name', 'N' || (g % 5000), 'email', 'u' || g || '@x.ru') \
         FROM generate_series(1, 200000) g",
    )
    .execute(&side)
    .await
    .unwrap();
    let wanted = k.list_indexes_wanted().await.unwrap();
    k.ensure_list_indexes(&wanted).await.unwrap();
    let mut by_name = ListQuery::all(Entity::Contacts, None, 51);
    by_name.sort = field("last_name", KeyKind::Text);
    // The first segment of an ascending sort: the NULLs.
    let plan = store.explain_list(&by_name, false).await.unwrap();
    assert!(plan.contains("IS NULL"), "{plan}");
    assert!(
        plan.contains("lf1_contacts_last_name"),
        "index not used:\n{plan}"
    );
    assert!(
        !plan.contains("records_pkey"),
        "the primary key walked:\n{plan}"
    );
}

/// Beyond the bound a count is PostgreSQL's estimate (marked so); SQLite, which keeps none,
/// counts exactly.
async fn counts_beyond_the_bound(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let (_db, k) = open(engine, dir.path()).await;
    let mutations: Vec<Mutation> = (0..30)
        .map(|i| Mutation::Create {
            entity: Entity::Contacts,
            input: json!({"last_name": format!("N{i}")}),
        })
        .collect();
    k.write(&Actor::system(), Origin::System, mutations)
        .await
        .unwrap();
    let q = ListQuery::all(Entity::Contacts, None, 10);
    let exact = k.store.count(&q, 100).await.unwrap();
    assert_eq!((exact.n, exact.exact), (30, true));
    // A bounded count stops one past the bound, on either engine.
    assert_eq!(k.store.count_at_most(&q, 5).await.unwrap(), 6);
    assert_eq!(k.store.count_at_most(&q, 100).await.unwrap(), 30);
    let bounded = k.store.count(&q, 5).await.unwrap();
    match engine {
        Engine::Sqlite => assert_eq!((bounded.n, bounded.exact), (30, true)),
        Engine::Postgres => {
            assert!(!bounded.exact, "{bounded:?}");
            assert!(bounded.n >= 6, "at least what was counted: {bounded:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_counts_beyond_the_bound() {
    counts_beyond_the_bound(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_counts_beyond_the_bound() {
    if kontor_testkit::skip_postgres("postgres_counts_beyond_the_bound") {
        return;
    }
    counts_beyond_the_bound(Engine::Postgres).await;
}
