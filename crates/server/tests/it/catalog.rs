//! The catalog entities (product groups, properties, price types, warehouses, products, offers
//! with their prices and stock) over HTTP: who may write them, how they refer to each other,
//! and the bin round trip of a product with its offers.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

/// A small catalog: two nested groups, a list property, two price types, two warehouses, a
/// product and two offers (variants) of it. Returns (product id, offer ids, price type ids,
/// warehouse ids).
async fn small_catalog(api: &Api) -> (String, Vec<String>, Vec<String>, Vec<String>) {
    let root = id(&api
        .create(
            "product_groups",
            json!({"name": "Обувь", "external_id": "g-1"}),
        )
        .await);
    let boots = id(&api
        .create(
            "product_groups",
            json!({"name": "Сапоги", "parent_id": root, "external_id": "g-2"}),
        )
        .await);
    let colour = api
        .create(
            "properties",
            json!({"name": "Цвет", "value_type": "list", "external_id": "p-1",
                   "values": [{"external_id": "v-1", "value": "чёрный"}, {"external_id": "v-2", "value": "коричневый"}]}),
        )
        .await;
    assert_eq!(colour["multiple"], json!(false), "{colour}");
    let retail = id(&api
        .create(
            "price_types",
            json!({"name": "Розничная", "currency": "RUB", "external_id": "pt-1"}),
        )
        .await);
    let wholesale = id(&api
        .create(
            "price_types",
            json!({"name": "Оптовая", "currency": "RUB", "vat_included": false, "external_id": "pt-2"}),
        )
        .await);
    let main = id(&api
        .create(
            "warehouses",
            json!({"name": "Основной склад", "address": "Москва", "external_id": "w-1"}),
        )
        .await);
    let shop = id(&api
        .create(
            "warehouses",
            json!({"name": "Магазин", "external_id": "w-2"}),
        )
        .await);
    let product = api
        .create(
            "products",
            json!({"name": "Сапоги зимние", "sku": "SZ-1", "barcode": "4600000000017",
                   "unit": "пара", "unit_code": "715", "group_id": boots,
                   "property_values": [{"property_id": id(&colour), "value": "v-1"}],
                   "requisites": [{"name": "Вес", "value": "1.2"}],
                   "external_id": "prod-1"}),
        )
        .await;
    assert_eq!(product["kind"], json!("goods"), "{product}");
    let pid = id(&product);
    let mut offers = Vec::new();
    for (size, stock) in [("41", ["3", "1.5"]), ("42", ["0", "-1"])] {
        let offer = api
            .create(
                "offers",
                json!({"product_id": pid, "name": format!("Сапоги зимние ({size})"),
                       "external_id": format!("prod-1#size-{size}"),
                       "characteristics": [{"name": "Размер", "value": size}],
                       "prices": [{"price_type_id": retail, "price": "1719.5", "currency": "RUB"},
                                  {"price_type_id": wholesale, "price": "1200"}],
                       "stock": [{"warehouse_id": main, "quantity": stock[0]},
                                 {"warehouse_id": shop, "quantity": stock[1]}],
                       "quantity": "4.5"}),
            )
            .await;
        offers.push(offer);
    }
    assert_eq!(
        offers[0]["prices"],
        json!([{"price_type_id": retail, "price": "1719.5", "currency": "RUB"},
               {"price_type_id": wholesale, "price": "1200", "currency": "RUB"}]),
        "prices per price type, decimals kept exactly: {}",
        offers[0]
    );
    assert_eq!(
        offers[1]["stock"][1]["quantity"],
        json!("-1"),
        "{}",
        offers[1]
    );
    (
        pid,
        offers.iter().map(id).collect(),
        vec![retail, wholesale],
        vec![main, shop],
    )
}

async fn catalog_entities_refer_to_each_other(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (pid, offers, price_types, warehouses) = small_catalog(&admin).await;

    // Offers of one product, by filter.
    let listed = items(&admin, &format!("/api/v1/offers?product_id={pid}")).await;
    assert_eq!(set(ids(&listed)), set(offers.clone()));

    // References are checked: an unknown price type or warehouse is refused naming the field.
    let (s, body) = admin
        .post(
            "/api/v1/offers",
            json!({"product_id": pid, "name": "x",
                   "prices": [{"price_type_id": warehouses[0], "price": "1"}]}),
        )
        .await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::CONFLICT,
        "{s} {body}"
    );
    assert!(
        body.to_string().contains("prices"),
        "the error names the field: {body}"
    );
    let (s, body) = admin
        .post(
            "/api/v1/offers",
            json!({"product_id": pid, "name": "x", "prices": [{"price_type_id": price_types[0], "price": "-1"}]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "negative price: {body}"
    );
    // A 1C id is unique within its entity.
    let (s, body) = admin
        .post(
            "/api/v1/offers",
            json!({"product_id": pid, "name": "dup", "external_id": "prod-1#size-41"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "duplicate 1C id: {body}");

    // Deleting the product moves its offers to the bin with it; restoring brings them back.
    let del = remove(&admin, "products", &pid).await;
    let moved = changes(&del);
    for o in &offers {
        assert!(
            moved.contains(&("offers".to_string(), o.clone(), "delete".to_string())),
            "{del}"
        );
        assert_in_trash(&admin, "offers", o).await;
    }
    let (s, restored) = admin
        .post(&format!("/api/v1/trash/products/{pid}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
    for o in &offers {
        let back = fetch(&admin, "offers", o).await;
        assert_eq!(back["prices"].as_array().map(Vec::len), Some(2), "{back}");
    }

    // Deleting a group takes its subgroups along, not its products.
    let groups = items(&admin, "/api/v1/product_groups").await;
    let root = groups
        .iter()
        .find(|g| g["parent_id"].is_null())
        .map(id)
        .expect("root group");
    let del = remove(&admin, "product_groups", &root).await;
    assert_eq!(changes(&del).len(), 2, "group and subgroup: {del}");
    let product = fetch(&admin, "products", &pid).await;
    assert!(product.get("deleted_at").is_none(), "{product}");
    srv.stop().await;
}

async fn managers_read_the_catalog_but_do_not_write_it(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (pid, offers, _, _) = small_catalog(&admin).await;
    let manager = srv.user("m@example.com", "manager", None).await;
    for entity in [
        "product_groups",
        "properties",
        "price_types",
        "warehouses",
        "products",
        "offers",
    ] {
        let (s, body) = manager.get(&format!("/api/v1/{entity}")).await;
        assert_eq!(s, StatusCode::OK, "manager reads {entity}: {body}");
        assert!(
            !body["items"].as_array().is_some_and(Vec::is_empty),
            "{entity}: {body}"
        );
        let (s, body) = manager
            .post(
                &format!("/api/v1/{entity}"),
                if entity == "offers" {
                    json!({"name": "x", "product_id": pid})
                } else {
                    json!({"name": "x"})
                },
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "manager creates {entity}: {body}");
    }
    let (s, body) = manager
        .patch(
            &format!("/api/v1/offers/{}", offers[0]),
            json!({"name": "y"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = manager.delete(&format!("/api/v1/products/{pid}")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    srv.stop().await;
}

/// The fields of a catalog record as the OpenAPI document states them.
async fn catalog_entities_are_in_the_api_document(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (s, doc) = srv.anon().get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for entity in [
        "product_groups",
        "properties",
        "price_types",
        "warehouses",
        "offers",
    ] {
        assert!(
            doc["paths"]
                .as_object()
                .is_some_and(|p| p.keys().any(|k| k.contains(entity))
                    || p.keys().any(|k| k.contains("{entity}"))),
            "{entity} routes"
        );
    }
    let text = doc.to_string();
    for field in [
        "price_type_id",
        "warehouse_id",
        "characteristics",
        "property_values",
    ] {
        assert!(text.contains(field), "{field} documented");
    }
    srv.stop().await;
}

crate::engine_tests!(
    catalog_entities_refer_to_each_other,
    managers_read_the_catalog_but_do_not_write_it,
    catalog_entities_are_in_the_api_document,
);
