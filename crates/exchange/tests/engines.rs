//! The catalog import on both engines: records are matched by their 1C id through the compact
//! index the store gives (`external_ids`), so a second run writes nothing, a record 1C marks
//! deleted goes to the bin, and one it sends again comes back from it.

use kontor_core::{Kontor, Settings};
use kontor_domain::{Actor, Entity};
use kontor_exchange::{CatalogImport, Options, RunReport};
use kontor_store::postgres::PgStore;
use kontor_store::sqlite::SqliteStore;
use kontor_store::DynStore;
use std::sync::Arc;

fn catalog(deleted: bool) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация ВерсияСхемы=\"2.07\">\
         <Каталог СодержитТолькоИзменения=\"true\"><Ид>c</Ид><Товары>\
         <Товар><Ид>p-1</Ид><Наименование>Коврик</Наименование><Артикул>A-1</Артикул></Товар>\
         <Товар><Ид>p-2</Ид><Наименование>Плед</Наименование>{}</Товар>\
         </Товары></Каталог></КоммерческаяИнформация>",
        if deleted {
            "<ПометкаУдаления>true</ПометкаУдаления>"
        } else {
            ""
        }
    )
}

async fn import(kontor: &Arc<Kontor>, xml: &str) -> RunReport {
    let mut run = CatalogImport::new(kontor.clone(), Actor::system(), Options::default())
        .await
        .expect("start");
    run.import_file("import.xml", xml.as_bytes(), &mut |_| {})
        .await
        .expect("import");
    run.finish().await.expect("finish")
}

/// Every product's `(id, 1C id, deleted)`, read a row per page so that paging is tested.
async fn external_ids(kontor: &Kontor) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = Vec::new();
    loop {
        let after = out.last().map(|(id, _, _)| id.clone()).unwrap_or_default();
        let page = kontor
            .store
            .external_ids(Entity::Products, &after, 1)
            .await
            .expect("index");
        if page.is_empty() {
            return out;
        }
        assert_eq!(page.len(), 1);
        out.extend(page);
    }
}

async fn check(store: DynStore) {
    let kontor = Arc::new(Kontor::new(store, Settings::default()));
    let first = import(&kontor, &catalog(false)).await;
    assert_eq!(first.counts["products"].created, 2, "{first:?}");
    let head = kontor.store.journal_head().await.expect("head");
    let again = import(&kontor, &catalog(false)).await;
    assert_eq!(again.counts["products"].unchanged, 2, "{again:?}");
    assert_eq!(kontor.store.journal_head().await.expect("head"), head);
    let ids = external_ids(&kontor).await;
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|(_, _, deleted)| !deleted));

    let deleted = import(&kontor, &catalog(true)).await;
    assert_eq!(deleted.counts["products"].deleted, 1, "{deleted:?}");
    let ids = external_ids(&kontor).await;
    assert!(ids.iter().any(|(_, ext, d)| ext == "p-2" && *d), "{ids:?}");

    let back = import(&kontor, &catalog(false)).await;
    assert_eq!(back.counts["products"].updated, 1, "{back:?}");
    let ids = external_ids(&kontor).await;
    assert!(ids.iter().all(|(_, _, deleted)| !deleted), "{ids:?}");
    kontor.store.close().await;
}

#[tokio::test]
async fn matching_by_1c_id_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("kontor.db"))
        .await
        .expect("open");
    check(Arc::new(store)).await;
}

#[tokio::test]
async fn matching_by_1c_id_on_postgres() {
    if kontor_testkit::skip_postgres("matching_by_1c_id_on_postgres") {
        return;
    }
    let Some(pg) = kontor_testkit::postgres() else {
        return;
    };
    let url = pg.fresh_database().await;
    let store = PgStore::connect(&url).await.expect("connect");
    check(Arc::new(store)).await;
}
