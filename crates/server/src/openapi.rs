//! The OpenAPI 3 document, built from the same entity schemas the core validates with, so field
//! names, types and required fields in the document are the ones the server enforces.

use kontor_domain::schema::{builtin, CustomFieldDef, FieldDef, FieldType, Schema, Writer};
use kontor_domain::Entity;
use serde_json::{json, Map, Value};

/// Every (method, path template) the server routes under `/api/v1`, with a summary. `{entity}`
/// routes are expanded per entity in the document.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/openapi.json", "This document"),
    (
        "post",
        "/auth/login",
        "Log in with e-mail and password; returns a bearer token",
    ),
    ("post", "/auth/logout", "Revoke the bearer token used"),
    ("get", "/auth/me", "The logged-in user"),
    (
        "get",
        "/trash",
        "Records in the recycle bin (filter: entity)",
    ),
    (
        "get",
        "/trash/{entity}/{id}",
        "One record in the recycle bin",
    ),
    (
        "delete",
        "/trash/{entity}/{id}",
        "Purge a record from the bin for good (admin)",
    ),
    (
        "post",
        "/trash/{entity}/{id}/restore",
        "Restore a record with everything deleted in its batch",
    ),
    ("get", "/history", "Journal entries, filtered"),
    (
        "post",
        "/history/undo",
        "Undo a batch, or one actor's changes in a period",
    ),
    (
        "post",
        "/batch",
        "Several creates/updates/deletes in one atomic batch",
    ),
    ("get", "/users", "List users (admin)"),
    ("post", "/users", "Create a user (admin)"),
    ("get", "/users/{id}", "A user (admin)"),
    (
        "patch",
        "/users/{id}",
        "Change a user, password or disable (admin)",
    ),
    ("delete", "/users/{id}", "Delete a user (admin)"),
    (
        "post",
        "/users/{id}/restore",
        "Restore a user's fields to a past time (admin; never the password)",
    ),
    ("get", "/users/{id}/history", "History of one user (admin)"),
    ("get", "/{entity}", "List records"),
    ("post", "/{entity}", "Create a record"),
    ("get", "/{entity}/{id}", "A record"),
    ("patch", "/{entity}/{id}", "Change fields of a record"),
    (
        "delete",
        "/{entity}/{id}",
        "Move a record (and what depends on it) to the recycle bin",
    ),
    (
        "post",
        "/{entity}/{id}/restore",
        "Restore a record to its state at a past time",
    ),
    ("get", "/{entity}/{id}/history", "History of one record"),
];

/// Entities served by the generic `/{entity}` routes.
pub fn routed_entities() -> Vec<Entity> {
    Entity::ALL
        .into_iter()
        .filter(|e| *e != Entity::Users)
        .collect()
}

fn field_schema(ty: &FieldType) -> Value {
    match ty {
        FieldType::Text { max } => json!({"type": "string", "maxLength": max}),
        FieldType::LongText => json!({"type": "string", "maxLength": 100000}),
        FieldType::Email => json!({"type": "string", "format": "email"}),
        FieldType::Phone => json!({"type": "string", "pattern": "^[0-9 +()x.-]{3,32}$"}),
        FieldType::Digits { lens } => {
            let alts: Vec<String> = lens.iter().map(|l| format!("[0-9]{{{l}}}")).collect();
            json!({"type": "string", "pattern": format!("^({})$", alts.join("|"))})
        }
        FieldType::Decimal { .. } | FieldType::Money { .. } => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"})
        }
        FieldType::TaxId(kind) => json!({"type": "string", "pattern": kind.pattern()}),
        FieldType::Integer { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::DateTime => json!({"type": "string", "format": "date-time"}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Enum(opts) => json!({"type": "string", "enum": opts}),
        FieldType::Currency => json!({"type": "string", "pattern": "^[A-Z]{3}$"}),
        FieldType::Ref(e) => {
            json!({"type": "string", "format": "uuid", "description": format!("id of a {}", e.singular())})
        }
        FieldType::LinkedRef { entity_field } => {
            json!({"type": "string", "format": "uuid", "description": format!("id of the record named by {entity_field}")})
        }
        FieldType::List(inner) => json!({"type": "array", "items": field_schema(inner)}),
        FieldType::Rows(defs) => json!({"type": "array", "items": object_schema(defs)}),
        FieldType::Object => json!({"type": "object"}),
    }
}

fn object_schema(defs: &[FieldDef]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for d in defs {
        let mut s = field_schema(&d.ty);
        if d.writer == Writer::Computed {
            s["readOnly"] = json!(true);
        }
        if let Some(def) = &d.default {
            s["default"] = def.clone();
        }
        props.insert(d.name.clone(), s);
        if d.required && d.writer == Writer::Input {
            required.push(d.name.clone());
        }
    }
    json!({"type": "object", "properties": props, "required": required})
}

fn record_schema(schema: &Schema) -> Value {
    let mut s = object_schema(&schema.fields);
    let system = [
        (
            "id",
            json!({"type": "string", "format": "uuid", "readOnly": true}),
        ),
        (
            "owner_id",
            json!({"type": ["string", "null"], "format": "uuid"}),
        ),
        (
            "created_at",
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        ),
        (
            "updated_at",
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        ),
    ];
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for (k, v) in system {
            props.insert(k.into(), v);
        }
    }
    s
}

fn op(
    summary: &str,
    tag: &str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Value,
    status: &str,
) -> Value {
    let mut o = json!({
        "summary": summary,
        "tags": [tag],
        "parameters": params,
        "responses": {
            status: {"description": "OK", "content": {"application/json": {"schema": ok}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
            "422": {"$ref": "#/components/responses/Error"},
        }
    });
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    o
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn query_param(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
}

fn page_of(item: Value) -> Value {
    json!({"type": "object", "properties": {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}}})
}

/// The whole document, including custom fields defined now.
pub fn document(custom: &[CustomFieldDef]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let any = json!({"type": "object"});
    let batch = json!({"$ref": "#/components/schemas/BatchSummary"});
    let list_params = vec![
        query_param("limit", "page size, 1..500, default 50"),
        query_param("cursor", "next_cursor of the previous page"),
        query_param("q", "text that must occur in a text field"),
        query_param("order", "desc (newest first, default) or asc"),
    ];
    let history_params: Vec<Value> = [
        "entity",
        "record_id",
        "op",
        "actor",
        "origin",
        "batch",
        "from",
        "to",
        "cursor",
        "limit",
        "order",
    ]
    .iter()
    .map(|p| query_param(p, "filter"))
    .collect();

    for (method, path, summary) in ROUTES {
        let entity_paths: Vec<(String, Option<Entity>)> =
            if path.contains("{entity}") && !path.starts_with("/trash") {
                routed_entities()
                    .into_iter()
                    .map(|e| (path.replace("{entity}", e.as_str()), Some(e)))
                    .collect()
            } else {
                vec![(path.to_string(), None)]
            };
        for (p, entity) in entity_paths {
            let mut params: Vec<Value> = Vec::new();
            if p.contains("{id}") {
                params.push(path_param("id"));
            }
            if p.contains("{entity}") {
                params.push(path_param("entity"));
            }
            let tag = entity.map(|e| e.as_str().to_string()).unwrap_or_else(|| {
                p.trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or("api")
                    .to_string()
            });
            let rec = entity
                .map(|e| json!({"$ref": format!("#/components/schemas/{}", e.as_str())}))
                .unwrap_or_else(|| any.clone());
            let operation = match (*method, *path) {
                ("get", "/{entity}") | ("get", "/users") | ("get", "/trash") => {
                    let mut ps = params.clone();
                    ps.extend(list_params.clone());
                    if *path == "/trash" {
                        ps.push(query_param("entity", "only this entity"));
                    } else {
                        ps.push(query_param(
                            "{field}",
                            "any field: equal to this value (null for empty)",
                        ));
                    }
                    op(summary, &tag, ps, None, page_of(rec), "200")
                }
                ("post", "/{entity}") => op(summary, &tag, params, Some(rec.clone()), rec, "201"),
                ("post", "/users") => {
                    op(summary, &tag, params, Some(any.clone()), any.clone(), "201")
                }
                ("patch", _) => op(summary, &tag, params, Some(any.clone()), rec, "200"),
                ("get", "/history") | ("get", "/{entity}/{id}/history") => {
                    let mut ps = params.clone();
                    ps.extend(history_params.clone());
                    op(
                        summary,
                        &tag,
                        ps,
                        None,
                        page_of(json!({"$ref": "#/components/schemas/HistoryItem"})),
                        "200",
                    )
                }
                ("post", "/{entity}/{id}/restore") => op(
                    summary,
                    &tag,
                    params,
                    Some(
                        json!({"type": "object", "required": ["at"], "properties": {"at": {"type": "string", "format": "date-time"}}}),
                    ),
                    batch.clone(),
                    "200",
                ),
                ("post", "/history/undo") => op(
                    summary,
                    &tag,
                    params,
                    Some(
                        json!({"type": "object", "properties": {"batch": {"type": "string"}, "actor": {"type": "string"}, "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}}}),
                    ),
                    batch.clone(),
                    "200",
                ),
                ("post", "/auth/login") => op(
                    summary,
                    &tag,
                    params,
                    Some(
                        json!({"type": "object", "required": ["email", "password"], "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}),
                    ),
                    json!({"type": "object", "properties": {"token": {"type": "string"}, "expires_at": {"type": "string"}}}),
                    "200",
                ),
                ("post", "/batch") => op(
                    summary,
                    &tag,
                    params,
                    Some(
                        json!({"type": "object", "required": ["operations"], "properties": {"operations": {"type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["op", "entity"], "properties": {"op": {"enum": ["create", "update", "delete"]}, "entity": {"type": "string"}, "id": {"type": "string"}, "data": {"type": "object"}}}}}}),
                    ),
                    batch.clone(),
                    "200",
                ),
                ("delete", _) | ("post", _) => {
                    op(summary, &tag, params, None, batch.clone(), "200")
                }
                _ => op(summary, &tag, params, None, rec, "200"),
            };
            let full = format!("/api/v1{p}");
            let entry = paths.entry(full).or_insert_with(|| json!({}));
            entry[*method] = operation;
        }
    }
    for e in routed_entities() {
        schemas.insert(
            e.as_str().into(),
            record_schema(&Schema::with_custom(e, custom)),
        );
    }
    schemas.insert("users".into(), record_schema(builtin(Entity::Users)));
    schemas.insert(
        "BatchSummary".into(),
        json!({"type": "object", "properties": {"batch": {"type": "string"}, "changes": {"type": "array", "items": {"type": "object", "properties": {"entity": {"type": "string"}, "id": {"type": "string"}, "op": {"type": "string"}, "seq": {"type": "integer"}}}}}}),
    );
    schemas.insert(
        "HistoryItem".into(),
        json!({"type": "object", "properties": {
            "seq": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "actor": {"type": "string"},
            "origin": {"enum": ["api", "web", "import", "exchange", "restore", "system"]}, "batch": {"type": "string"},
            "entity": {"type": "string"}, "record_id": {"type": "string"},
            "op": {"enum": ["create", "update", "delete", "restore", "purge"]},
            "before": {"type": ["object", "null"]}, "after": {"type": ["object", "null"]},
            "changes": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "before": {}, "after": {}}}},
            "scrubbed": {"type": "boolean"}}}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}, "conflicts": {"type": "array"}}}}}),
    );
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Kontor API", "version": env!("CARGO_PKG_VERSION"), "description": "Kontor CRM REST API. Authenticate with POST /api/v1/auth/login and send the token as 'Authorization: Bearer <token>'."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"bearer": []}]
    });
    // Logging in and reading this document need no token.
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/openapi.json", "get"),
    ] {
        if let Some(op) = doc["paths"][path].get_mut(method) {
            op["security"] = json!([]);
        }
    }
    for p in ["/healthz", "/readyz"] {
        doc["paths"][p] = json!({"get": {"summary": "Health", "security": [], "responses": {"200": {"description": "OK"}, "503": {"description": "Not ready"}}}});
    }
    doc
}
