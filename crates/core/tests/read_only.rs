//! A freeze of business data (maintenance, a shutdown) on both engines: it waits for the write
//! transaction in flight and lets none begin after; on the database scope it holds for every
//! store opened on the same database (another node, the server after a restart) until lifted;
//! on the node scope only for the store that froze.

use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::{DynStore, ReadOnly, ReadOnlyReason, Scope, StoreError};
use std::sync::Arc;
use std::time::Duration;

fn frozen(reason: ReadOnlyReason) -> Option<ReadOnly> {
    Some(ReadOnly::new(reason, "back at 15:00", "test", 30))
}

/// `open` gives another store on the same database each time it is called.
async fn a_freeze_waits_for_writes_and_holds_where_it_should<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = DynStore>,
{
    let store = open().await;
    for scope in [Scope::Node, Scope::Database] {
        // A write transaction in flight holds the freeze back until it ends.
        let tx = store.begin().await.expect("begin");
        let freezing = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set_read_only(scope, frozen(ReadOnlyReason::Shutdown))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !freezing.is_finished(),
            "{scope:?}: froze under an open write"
        );
        tx.commit().await.expect("commit");
        freezing.await.unwrap().expect("freeze");
        match store.begin().await {
            Err(StoreError::ReadOnly(r)) => {
                assert_eq!(r.reason, ReadOnlyReason::Shutdown);
                assert!(r.describe().contains("back at 15:00"), "{}", r.describe());
            }
            other => panic!("{scope:?}: a write began while frozen: {:?}", other.is_ok()),
        }
        assert!(store.read_only().await.unwrap().is_some());
        store.set_read_only(scope, None).await.expect("thaw");
        assert!(store.read_only().await.unwrap().is_none());
        store
            .begin()
            .await
            .expect("writes open again")
            .commit()
            .await
            .unwrap();
    }
    // The database's freeze is seen by another store on it; a node's is not.
    store
        .set_read_only(Scope::Node, frozen(ReadOnlyReason::Shutdown))
        .await
        .unwrap();
    store.close().await;
    let other = open().await;
    assert!(
        other.read_only().await.unwrap().is_none(),
        "a node's freeze leaked"
    );
    other
        .set_read_only(Scope::Database, frozen(ReadOnlyReason::Maintenance))
        .await
        .unwrap();
    other.close().await;
    let third = open().await;
    assert_eq!(
        third.read_only().await.unwrap().map(|r| r.reason),
        Some(ReadOnlyReason::Maintenance)
    );
    assert!(matches!(third.begin().await, Err(StoreError::ReadOnly(_))));
    third.set_read_only(Scope::Database, None).await.unwrap();
    third
        .begin()
        .await
        .expect("open again")
        .commit()
        .await
        .unwrap();
    third.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_freezes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kontor.db");
    a_freeze_waits_for_writes_and_holds_where_it_should(|| {
        let path = path.clone();
        async move { Arc::new(SqliteStore::open(&path).await.unwrap()) as DynStore }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_freezes() {
    if kontor_testkit::skip_postgres("postgres_freezes") {
        return;
    }
    let pg = kontor_testkit::postgres().expect("PostgreSQL for tests");
    let url = pg.fresh_database().await;
    a_freeze_waits_for_writes_and_holds_where_it_should(|| {
        let url = url.clone();
        async move { Arc::new(PgStore::connect(&url).await.unwrap()) as DynStore }
    })
    .await;
}
