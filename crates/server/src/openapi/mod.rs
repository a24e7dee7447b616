//! The OpenAPI 3.1 document, built from the same entity schemas the core validates with (see
//! [`schemas`]), so it is exact: every parameter with its schema and enum, every request body,
//! every status each route can return, and links from each create to what can be done with the
//! record it made (for stateful testing). Schemathesis checks the server against it in CI.

pub mod schemas;

use kontor_domain::journal::{Op, Origin};
use kontor_domain::schema::{builtin, CustomFieldDef, Schema};
use kontor_domain::Entity;
use schemas::{uuid, Mode, UUID_PATTERN};
use serde_json::{json, Map, Value};

/// Every (method, path template) the server routes under `/api/v1`; `{entity}` routes are
/// expanded per entity in the document (the bin's stay generic). A test keeps this list, the
/// router and the document equal.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/openapi.json"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("get", "/auth/me"),
    ("get", "/trash"),
    ("get", "/trash/{entity}/{id}"),
    ("delete", "/trash/{entity}/{id}"),
    ("post", "/trash/{entity}/{id}/restore"),
    ("get", "/history"),
    ("post", "/history/undo"),
    ("post", "/batch"),
    ("get", "/admin/backups"),
    ("post", "/admin/backups"),
    ("get", "/admin/backups/status"),
    ("post", "/admin/backups/{id}/verify"),
    ("get", "/jobs/{id}"),
    ("get", "/search"),
    ("get", "/admin/search"),
    ("post", "/admin/search/rebuild"),
    ("get", "/admin/maintenance"),
    ("put", "/admin/maintenance"),
    ("get", "/admin/shutdown"),
    ("post", "/admin/shutdown"),
    ("delete", "/admin/shutdown"),
    ("get", "/announcements"),
    ("get", "/imports"),
    ("post", "/imports"),
    ("post", "/imports/local"),
    ("get", "/imports/{id}"),
    ("get", "/imports/{id}/errors.csv"),
    ("post", "/imports/{id}/apply"),
    ("get", "/export/{entity}"),
    ("post", "/export/{entity}"),
    ("get", "/exports/{id}/file"),
    ("get", "/exchange/runs"),
    ("get", "/exchange/runs/{id}"),
    ("get", "/users"),
    ("post", "/users"),
    ("get", "/users/{id}"),
    ("patch", "/users/{id}"),
    ("delete", "/users/{id}"),
    ("post", "/users/{id}/restore"),
    ("get", "/users/{id}/history"),
    ("get", "/{entity}"),
    ("post", "/{entity}"),
    ("get", "/{entity}/{id}"),
    ("patch", "/{entity}/{id}"),
    ("delete", "/{entity}/{id}"),
    ("post", "/{entity}/{id}/restore"),
    ("get", "/{entity}/{id}/history"),
];

/// Entities served by the generic `/{entity}` routes.
pub fn routed_entities() -> Vec<Entity> {
    Entity::ALL
        .into_iter()
        .filter(|e| *e != Entity::Users)
        .collect()
}

/// Statuses an operation can answer besides its success.
mod statuses {
    /// Every route behind a token. 400: malformed path or query; 414 and 431: URI or headers
    /// too large (refused before routing, without a body); 500: a fault of ours; 503: the
    /// database is unreachable or the server is busy.
    pub const AUTH: &[u16] = &[400, 401, 414, 431, 500, 503];
    /// Routes with a JSON body.
    pub const BODY: &[u16] = &[413, 415, 422];
    /// Routes that find a record first.
    pub const FIND: &[u16] = &[403, 404];
    /// Writes that may meet stored state they cannot go with.
    pub const CONFLICT: &[u16] = &[409];
    /// Lists and history with query parameters.
    pub const QUERY: &[u16] = &[403, 422];
}

fn error_ref(code: u16) -> Value {
    json!({"$ref": format!("#/components/responses/E{code}")})
}

/// The reusable error responses: the JSON error envelope, except where the HTTP layer itself
/// refuses a request before Kontor sees it.
fn error_responses() -> Value {
    let mut out = Map::new();
    let envelope = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
    let retry = json!({"Retry-After": {"description": "seconds to wait", "schema": {"type": "string", "pattern": "^[0-9]+$"}}});
    for (code, what) in [
        (400, "The request is malformed (path, query string or JSON)"),
        (401, "No, an unknown, an expired or a revoked token; or wrong credentials"),
        (403, "The caller's role may not do this"),
        (404, "No such record (or one the caller may not see)"),
        (409, "The request conflicts with stored state: a unique value taken, a reference to a missing record, a state transition not allowed, a change of a field that cannot change"),
        (413, "The body is larger than 4 MiB"),
        (415, "The body is not declared as JSON"),
        (422, "A field or parameter is invalid; `field` names it"),
        (429, "Too many failed logins; try again after Retry-After seconds"),
        (500, "A fault of the server; the log has the details"),
        (503, "The database is unreachable or the server is busy; try again after Retry-After seconds"),
    ] {
        let mut r = json!({"description": what, "content": envelope});
        if code == 429 || code == 503 {
            r["headers"] = retry.clone();
        }
        if code == 401 {
            r["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
        }
        out.insert(format!("E{code}"), r);
    }
    out.insert(
        "E414".into(),
        json!({"description": "The URI is longer than the HTTP layer takes (about 64 KiB)"}),
    );
    out.insert(
        "E431".into(),
        json!({"description": "The request headers are larger than the HTTP layer takes"}),
    );
    Value::Object(out)
}

/// One operation.
struct Operation {
    value: Value,
    errors: Vec<u16>,
}

impl Operation {
    fn new(summary: &str, id: &str, tag: &str) -> Operation {
        Operation {
            value: json!({"summary": summary, "operationId": id, "tags": [tag], "parameters": []}),
            errors: statuses::AUTH.to_vec(),
        }
    }

    fn public(mut self) -> Operation {
        self.value["security"] = json!([]);
        self.errors.retain(|c| *c != 401);
        self
    }

    fn param(mut self, p: Value) -> Operation {
        if let Some(list) = self.value["parameters"].as_array_mut() {
            list.push(p);
        }
        self
    }

    fn params(self, ps: Vec<Value>) -> Operation {
        ps.into_iter().fold(self, Operation::param)
    }

    fn body(mut self, schema: Value) -> Operation {
        self.value["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
        self.errors.extend(statuses::BODY);
        self
    }

    fn errors(mut self, codes: &[u16]) -> Operation {
        self.errors.extend(codes);
        self
    }

    /// The success answer; `batch_header` when it names the journal batch it wrote.
    fn answer(mut self, status: u16, schema: Value, batch_header: bool) -> Value {
        let mut ok =
            json!({"description": "OK", "content": {"application/json": {"schema": schema}}});
        if batch_header {
            ok["headers"] = json!({"X-Kontor-Batch": {"required": true,
                "description": "the journal batch this write created (for undo)",
                "schema": uuid()}});
        }
        let mut responses = Map::new();
        responses.insert(status.to_string(), ok);
        self.errors.sort_unstable();
        self.errors.dedup();
        for c in &self.errors {
            responses.insert(c.to_string(), error_ref(*c));
        }
        self.value["responses"] = Value::Object(responses);
        self.value
    }
}

fn path_id(what: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": format!("id of the {what}"), "schema": uuid()})
}

fn query(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn limit() -> Value {
    query(
        "limit",
        "page size (default 50)",
        json!({"type": "integer", "minimum": 1, "maximum": kontor_core::read::MAX_PAGE}),
    )
}

fn order() -> Value {
    query(
        "order",
        "newest first (desc, the default) or oldest first (asc)",
        json!({"type": "string", "enum": ["asc", "desc"]}),
    )
}

fn list_params(schema: &Schema) -> Vec<Value> {
    let indexed = kontor_domain::listing::indexed_fields(schema);
    let mut sorts: Vec<&str> = kontor_domain::listing::SYSTEM_SORTS.to_vec();
    sorts.push("owner_id");
    sorts.extend(indexed.iter().map(|(f, _)| f.name.as_str()));
    let mut ps = vec![
        limit(),
        query(
            "cursor",
            "next_cursor of the previous page (of the same sort and order)",
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,4000}$"}),
        ),
        query(
            "q",
            "words the records must contain (served by the search index: a word matches whole, \
             as a prefix or with a typo; phones, e-mails and tax ids in any format)",
            json!({"type": "string", "maxLength": kontor_core::read::MAX_QUERY_TEXT}),
        ),
        query(
            "sort",
            "what to sort by (default id, the order of creation); fields sort as their values \
             compare in filters, NULLs first ascending",
            json!({"type": "string", "enum": sorts}),
        ),
        query(
            "order",
            "desc or asc; by default desc for id, created_at and updated_at (newest first), \
             asc for fields",
            json!({"type": "string", "enum": ["asc", "desc"]}),
        ),
        query(
            "count",
            "also answer total (exact up to 10,000, else the database's estimate, marked by \
             total_is_estimate)",
            json!({"type": "string", "enum": ["true", "false"]}),
        ),
        query(
            "owner_id",
            "only records of this owner",
            json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
        ),
    ];
    let ops = ["gt", "gte", "lt", "lte"];
    for time in ["created_at", "updated_at"] {
        for op in ops {
            ps.push(query(
                &format!("{time}[{op}]"),
                "only records created (changed) after, at or after, before, at or before",
                json!({"type": "string", "format": "date-time"}),
            ));
        }
    }
    for f in &schema.fields {
        let Some(mut s) = schemas::filter(f) else {
            continue;
        };
        let kind = kontor_domain::listing::KeyKind::of(&f.ty);
        // Numbers compare as numbers: any decimal (an amount may be compared with 0 or less).
        if kind == Some(kontor_domain::listing::KeyKind::Number) {
            s = json!({"anyOf": [
                {"type": "string", "pattern": kontor_core::list::FILTER_DECIMAL_PATTERN},
                {"type": "string", "const": "null"}]});
        }
        let is_indexed = indexed.iter().any(|(i, _)| i.name == f.name);
        ps.push(query(
            &f.name,
            if is_indexed {
                "only records whose field equals this value ('null': without a value); indexed"
            } else {
                "only records whose field equals this value ('null': without a value)"
            },
            s.clone(),
        ));
        let ordered = kontor_domain::listing::KeyKind::of(&f.ty).is_some_and(|k| k.ordered());
        if is_indexed && ordered {
            let value = match kind {
                Some(kontor_domain::listing::KeyKind::Integer) => {
                    json!({"type": "string", "pattern": kontor_core::list::FILTER_INTEGER_PATTERN})
                }
                _ => s["anyOf"][0].clone(),
            };
            for op in ops {
                ps.push(query(
                    &format!("{}[{op}]", f.name),
                    "only records whose field is greater than, at least, less than, at most \
                     this value (numbers as numbers, text by character code)",
                    value.clone(),
                ));
            }
        }
    }
    ps
}

fn history_params(global: bool) -> Vec<Value> {
    let mut ps = Vec::new();
    if global {
        let names: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
        ps.push(query(
            "entity",
            "only entries about this entity",
            json!({"type": "string", "enum": names}),
        ));
        ps.push(query("record_id", "only entries about this record", uuid()));
    }
    let ops: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
    let origins: Vec<&str> = Origin::ALL.iter().map(|o| o.as_str()).collect();
    ps.extend([
        query(
            "op",
            "only this kind of change",
            json!({"type": "string", "enum": ops}),
        ),
        query(
            "actor",
            "only changes by this user (or 'system')",
            json!({"anyOf": [uuid(), {"type": "string", "const": "system"}]}),
        ),
        query(
            "origin",
            "only changes through this door",
            json!({"type": "string", "enum": origins}),
        ),
        query("batch", "only this batch", uuid()),
        query(
            "from",
            "only changes at or after this time",
            json!({"type": "string", "format": "date-time"}),
        ),
        query(
            "to",
            "only changes at or before this time",
            json!({"type": "string", "format": "date-time"}),
        ),
        query(
            "cursor",
            "next_cursor of the previous page",
            json!({"type": "string", "pattern": "^[0-9]{1,18}$"}),
        ),
        limit(),
        order(),
    ]);
    ps
}

/// A list page: `total` and `total_is_estimate` come with `count=true`.
fn list_page_of(item: Value) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": item},
        "next_cursor": {"type": ["string", "null"]},
        "total": {"type": ["integer", "null"], "minimum": 0},
        "total_is_estimate": {"type": "boolean"}}})
}

fn page_of(item: Value) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": item},
        "next_cursor": {"type": ["string", "null"]}}})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Links from a created record to what can be done with it next.
fn record_links(prefix: &str) -> Value {
    let id = json!({"id": "$response.body#/id"});
    json!({
        "GetRecord": {"operationId": format!("get_{prefix}"), "parameters": id},
        "UpdateRecord": {"operationId": format!("update_{prefix}"), "parameters": id},
        "DeleteRecord": {"operationId": format!("delete_{prefix}"), "parameters": id},
        "RecordHistory": {"operationId": format!("history_{prefix}"), "parameters": id},
        "RestoreRecord": {"operationId": format!("restore_{prefix}"), "parameters": id},
    })
}

/// Records that can be made under a new record of `parent`, with the body that ties them to it.
fn child_links(parent: Entity) -> Vec<(&'static str, Value)> {
    let id = "$response.body#/id";
    match parent {
        Entity::Companies => vec![
            ("contacts", json!({"company_id": id})),
            ("deals", json!({"company_id": id})),
            ("invoices", json!({"company_id": id})),
            (
                "activities",
                json!({"linked_entity": "companies", "linked_id": id}),
            ),
        ],
        Entity::Deals => vec![(
            "activities",
            json!({"linked_entity": "deals", "linked_id": id}),
        )],
        Entity::Invoices => vec![("payments", json!({"invoice_id": id}))],
        _ => vec![],
    }
}

/// Links from a deleted record to the bin.
fn bin_links(entity: &str) -> Value {
    let params = json!({"entity": entity, "id": "$request.path.id"});
    json!({
        "GetFromBin": {"operationId": "get_from_bin", "parameters": params},
        "RestoreFromBin": {"operationId": "restore_from_bin", "parameters": params},
        "Purge": {"operationId": "purge", "parameters": params},
    })
}

fn add_link(op: &mut Value, status: &str, links: Value) {
    op["responses"][status]["links"] = links;
}

/// The operations of one entity's generic routes (`/companies`, `/companies/{id}`, ...).
fn entity_paths(e: Entity, schema: &Schema, paths: &mut Map<String, Value>) {
    let name = e.as_str();
    let one = e.singular();
    let rec = reference(name);
    let create = reference(&format!("{name}_create"));
    let update = reference(&format!("{name}_update"));
    let base = format!("/api/v1/{name}");
    let with_id = format!("{base}/{{id}}");

    let list = Operation::new(&format!("List {name}"), &format!("list_{name}"), name)
        .params(list_params(schema))
        .errors(statuses::QUERY)
        .answer(200, list_page_of(rec.clone()), false);
    export_paths(name, schema, paths);
    let mut created = Operation::new(&format!("Create a {one}"), &format!("create_{name}"), name)
        .body(create)
        .errors(&[403])
        .errors(statuses::CONFLICT)
        .answer(201, rec.clone(), true);
    let mut links = record_links(name);
    for (child, body) in child_links(e) {
        links[format!("Create{child}")] =
            json!({"operationId": format!("create_{child}"), "requestBody": body});
    }
    add_link(&mut created, "201", links);
    paths.insert(base.clone(), json!({"get": list, "post": created}));

    let get = Operation::new(&format!("A {one}"), &format!("get_{name}"), name)
        .param(path_id(one))
        .errors(statuses::FIND)
        .answer(200, rec.clone(), false);
    let patch = Operation::new(&format!("Change a {one}"), &format!("update_{name}"), name)
        .param(path_id(one))
        .body(update)
        .errors(statuses::FIND)
        .errors(statuses::CONFLICT)
        .answer(
            200,
            json!({"anyOf": [rec.clone(), reference("BatchSummary")],
                   "description": "the record, or the batch summary when the change handed it to an owner the caller may not read"}),
            true,
        );
    let mut delete = Operation::new(
        &format!("Move a {one} (and what depends on it) to the recycle bin"),
        &format!("delete_{name}"),
        name,
    )
    .param(path_id(one))
    .errors(statuses::FIND)
    .errors(statuses::CONFLICT)
    .answer(200, reference("BatchSummary"), true);
    add_link(&mut delete, "200", bin_links(name));
    paths.insert(
        with_id.clone(),
        json!({"get": get, "patch": patch, "delete": delete}),
    );
    paths.insert(
        format!("{with_id}/restore"),
        json!({"post": Operation::new(&format!("Restore a {one} to its state at a past time"), &format!("restore_{name}"), name)
            .param(path_id(one))
            .body(reference("RestoreRequest"))
            .errors(statuses::FIND)
            .errors(statuses::CONFLICT)
            .answer(200, reference("RestoreResult"), true)}),
    );
    paths.insert(
        format!("{with_id}/history"),
        json!({"get": Operation::new(&format!("History of one {one}"), &format!("history_{name}"), name)
            .param(path_id(one))
            .params(history_params(false))
            .errors(statuses::FIND)
            .errors(statuses::QUERY)
            .answer(200, page_of(reference("HistoryItem")), false)}),
    );
}

fn user_paths(paths: &mut Map<String, Value>) {
    let schema = builtin(Entity::Users);
    let rec = reference("users");
    let tag = "users";
    let mut created = Operation::new("Create a user (admin)", "create_users", tag)
        .body(reference("users_create"))
        .errors(&[403])
        .errors(statuses::CONFLICT)
        .answer(201, rec.clone(), false);
    add_link(&mut created, "201", record_links("users"));
    paths.insert(
        "/api/v1/users".into(),
        json!({
            "get": Operation::new("List users (admin)", "list_users", tag)
                .params(list_params(schema))
                .errors(statuses::QUERY)
                .answer(200, list_page_of(rec.clone()), false),
            "post": created,
        }),
    );
    let mut delete = Operation::new("Delete a user (admin)", "delete_users", tag)
        .param(path_id("user"))
        .errors(statuses::FIND)
        .errors(statuses::CONFLICT)
        .answer(200, reference("BatchSummary"), true);
    add_link(&mut delete, "200", bin_links("users"));
    paths.insert(
        "/api/v1/users/{id}".into(),
        json!({
            "get": Operation::new("A user (admin)", "get_users", tag)
                .param(path_id("user"))
                .errors(statuses::FIND)
                .answer(200, rec.clone(), false),
            "patch": Operation::new("Change a user, their password, or disable them (admin); a new password or disabling revokes their tokens", "update_users", tag)
                .param(path_id("user"))
                .body(reference("users_update"))
                .errors(statuses::FIND)
                .errors(statuses::CONFLICT)
                .answer(200, rec, false),
            "delete": delete,
        }),
    );
    paths.insert(
        "/api/v1/users/{id}/restore".into(),
        json!({"post": Operation::new("Restore a user's fields to a past time (admin; never the password)", "restore_users", tag)
            .param(path_id("user"))
            .body(reference("RestoreRequest"))
            .errors(statuses::FIND)
            .errors(statuses::CONFLICT)
            .answer(200, reference("RestoreResult"), true)}),
    );
    paths.insert(
        "/api/v1/users/{id}/history".into(),
        json!({"get": Operation::new("History of one user (admin)", "history_users", tag)
            .param(path_id("user"))
            .params(history_params(false))
            .errors(statuses::FIND)
            .errors(statuses::QUERY)
            .answer(200, page_of(reference("HistoryItem")), false)}),
    );
}

fn system_paths(paths: &mut Map<String, Value>) {
    let entities: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
    let bin_params = vec![
        json!({"name": "entity", "in": "path", "required": true, "schema": {"type": "string", "enum": entities}}),
        path_id("record"),
    ];
    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({"get": Operation::new("This document", "openapi", "api").public()
            .answer(200, json!({"type": "object"}), false)}),
    );
    paths.insert(
        "/api/v1/auth/login".into(),
        json!({"post": Operation::new("Log in with e-mail and password; returns a bearer token", "login", "auth")
            .public()
            .body(reference("LoginRequest"))
            .errors(&[401, 403, 429])
            .answer(200, reference("LoginResult"), false)}),
    );
    paths.insert(
        "/api/v1/auth/logout".into(),
        json!({"post": Operation::new("Revoke the bearer token used", "logout", "auth")
            .answer(200, json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "logged_out"}}}), false)}),
    );
    paths.insert(
        "/api/v1/auth/me".into(),
        json!({"get": Operation::new("The logged-in user", "me", "auth")
            .errors(&[404])
            .answer(200, json!({"allOf": [reference("users"), {"type": "object", "required": ["admin"], "properties": {"admin": {"type": "boolean"}}}]}), false)}),
    );
    // A record of any entity, as its own schema has it, with its entity's name.
    let trash_item = json!({"type": "object",
        "required": ["entity", "id", "deleted_at", "deleted_by", "deleted_batch"],
        "properties": {"entity": {"type": "string", "enum": entities},
                       "id": {"type": "string", "format": "uuid"},
                       "deleted_at": {"type": "string", "format": "date-time"},
                       "deleted_by": {"type": "string"},
                       "deleted_batch": {"type": "string", "format": "uuid"}}});
    paths.insert(
        "/api/v1/trash".into(),
        json!({"get": Operation::new("Records in the recycle bin, newest deletion first", "list_bin", "trash")
            .params(vec![
                query("entity", "only records of this entity", json!({"type": "string", "enum": entities})),
                query("cursor", "next_cursor of the previous page", json!({"type": "string", "pattern": format!("^[0-9]{{1,18}}~{}", &UUID_PATTERN[1..])})),
                limit(),
            ])
            .errors(&[422])
            .answer(200, page_of(trash_item.clone()), false)}),
    );
    paths.insert(
        "/api/v1/trash/{entity}/{id}".into(),
        json!({
            "get": Operation::new("One record in the recycle bin", "get_from_bin", "trash")
                .params(bin_params.clone())
                .errors(statuses::FIND)
                .answer(200, trash_item.clone(), false),
            "delete": Operation::new("Purge a record from the bin for good (admin); its journal images are scrubbed", "purge", "trash")
                .params(bin_params.clone())
                .errors(statuses::FIND)
                .errors(statuses::CONFLICT)
                .answer(200, reference("BatchSummary"), true),
        }),
    );
    paths.insert(
        "/api/v1/trash/{entity}/{id}/restore".into(),
        json!({"post": Operation::new("Restore a record with everything deleted in its batch", "restore_from_bin", "trash")
            .params(bin_params)
            .errors(statuses::FIND)
            .errors(statuses::CONFLICT)
            .answer(200, reference("BatchSummary"), true)}),
    );
    paths.insert(
        "/api/v1/history".into(),
        json!({"get": Operation::new("Journal entries, filtered", "history", "history")
            .params(history_params(true))
            .errors(statuses::QUERY)
            .answer(200, page_of(reference("HistoryItem")), false)}),
    );
    paths.insert(
        "/api/v1/history/undo".into(),
        json!({"post": Operation::new("Undo a batch, or one actor's changes in a period, as a new batch", "undo", "history")
            .body(reference("UndoRequest"))
            .errors(statuses::FIND)
            .errors(statuses::CONFLICT)
            .answer(200, reference("BatchSummary"), true)}),
    );
    paths.insert(
        "/api/v1/batch".into(),
        json!({"post": Operation::new("Several creates, updates and deletes in one atomic batch; a refusal names the operation", "batch", "batch")
            .body(reference("BatchRequest"))
            .errors(statuses::FIND)
            .errors(statuses::CONFLICT)
            .answer(200, reference("BatchResult"), true)}),
    );
    paths.insert(
        "/healthz".into(),
        json!({"get": Operation::new("The process is up", "healthz", "system").public()
            .answer(200, json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}), false)}),
    );
    let mut ready = Operation::new("The database answers; send traffic here", "readyz", "system")
        .public()
        .answer(
            200,
            json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ready"}}}),
            false,
        );
    ready["responses"]["503"] = json!({"description": "Shutting down, or the database is unreachable",
        "content": {"application/json": {"schema": {"type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["shutting_down", "database_unavailable"]}}}}}});
    paths.insert("/readyz".into(), json!({"get": ready}));
}

/// A snapshot archive's name, which is its id in the API.
const ARCHIVE_PATTERN: &str = r"^kontor-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-seq[0-9]{12}\.kontor\.tar$";

/// An operation that starts a job: 202 with the job, where to follow it, and a link to it.
fn job_accepted(op: Operation) -> Value {
    let mut op = op.answer(202, reference("Job"), false);
    op["responses"]["202"]["description"] = json!("Accepted: the job runs; follow it at Location");
    op["responses"]["202"]["headers"] = json!({"Location": {"required": true,
        "description": "/api/v1/jobs/{id} of the job", "schema": {"type": "string"}}});
    op["responses"]["202"]["links"] = json!({"job": {"operationId": "get_job",
        "parameters": {"id": "$response.body#/id"}}});
    op
}

fn backup_paths(paths: &mut Map<String, Value>) {
    let job_started = |summary: &str, id: &str, errors: &[u16], params: Vec<Value>| {
        job_accepted(
            Operation::new(summary, id, "backups")
                .params(params)
                .errors(&[403, 404])
                .errors(errors),
        )
    };
    paths.insert(
        "/api/v1/admin/backups".into(),
        json!({
            "get": Operation::new("Snapshot archives (newest first) with their verification, pins and retention, and the backup log (admin)", "list_backups", "backups")
                .errors(&[403, 404])
                .answer(200, reference("BackupList"), false),
            "post": job_started("Take a snapshot now and verify it by restoring it, as a job (admin)", "create_backup", &[409], vec![]),
        }),
    );
    paths.insert(
        "/api/v1/admin/backups/status".into(),
        json!({"get": Operation::new("Continuous backup: shipping and lag, newest and newest verified snapshot, failed verifications (admin)", "backup_status", "backups")
            .errors(&[403, 404])
            .answer(200, reference("BackupStatus"), false)}),
    );
    paths.insert(
        "/api/v1/admin/backups/{id}/verify".into(),
        json!({"post": job_started(
            "Verify an archive by restoring it into a scratch place, as a job (admin)",
            "verify_backup",
            &[],
            vec![json!({"name": "id", "in": "path", "required": true,
                "description": "the archive's name", "schema": {"type": "string", "pattern": ARCHIVE_PATTERN}})],
        )}),
    );
    paths.insert(
        "/api/v1/jobs/{id}".into(),
        json!({"get": Operation::new("A job's state and progress (its starter or an admin)", "get_job", "jobs")
            .param(path_id("job"))
            .errors(&[404])
            .answer(200, reference("Job"), false)}),
    );
}

/// Maintenance mode, the announced shutdown and the announcements (see `lifecycle`).
fn operations_paths(paths: &mut Map<String, Value>) {
    let message = json!({"type": ["string", "null"], "maxLength": 500});
    paths.insert(
        "/api/v1/admin/maintenance".into(),
        json!({
            "get": Operation::new("Whether the data is read-only, why and since when (admin)", "get_maintenance", "operations")
                .errors(&[403])
                .answer(200, reference("ReadOnlyState"), false),
            "put": Operation::new("Maintenance mode on or off for every node: writes get 503 with Retry-After and the message, reads go on (admin; refusals recorded)", "set_maintenance", "operations")
                .body(json!({"type": "object", "required": ["on"], "additionalProperties": false, "properties": {
                    "on": {"type": "boolean"},
                    "message": message,
                    "retry_after_seconds": {"type": ["integer", "null"], "minimum": 1, "maximum": 86400}}}))
                .errors(&[403, 409])
                .answer(200, reference("ReadOnlyState"), false),
        }),
    );
    paths.insert(
        "/api/v1/admin/shutdown".into(),
        json!({
            "get": Operation::new("The scheduled shutdown, if any, and the stop's step once begun (admin)", "get_shutdown", "operations")
                .errors(&[403])
                .answer(200, reference("ShutdownPlan"), false),
            "post": Operation::new("Schedule (or move) this server's shutdown: announced to every user, then read-only, a verified final snapshot, the database closed, exit 0 (admin; refusals recorded)", "schedule_shutdown", "operations")
                .body(json!({"type": "object", "additionalProperties": false, "properties": {
                    "at": {"type": ["string", "null"], "format": "date-time"},
                    "in_seconds": {"type": ["integer", "null"], "minimum": 0},
                    "message": message}}))
                .errors(&[403, 409])
                .answer(202, reference("ShutdownPlan"), false),
            "delete": Operation::new("Cancel the scheduled shutdown (admin; refusals recorded)", "cancel_shutdown", "operations")
                .errors(&[403, 409])
                .answer(200, reference("ShutdownPlan"), false),
        }),
    );
    paths.insert(
        "/api/v1/announcements".into(),
        json!({"get": Operation::new("What every user is told: a scheduled shutdown with its reminders (15, 5, 1 minutes before), and whether the data is read-only", "announcements", "operations")
            .answer(200, reference("Announcements"), false)}),
    );
}

fn operations_schemas(schemas: &mut Map<String, Value>) {
    let text = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time"});
    let reason = json!({"type": "string", "enum": ["maintenance", "shutdown", "upgrade"]});
    schemas.insert(
        "ReadOnlyState".into(),
        json!({"type": "object", "required": ["read_only"], "properties": {
            "read_only": {"type": "boolean"}, "reason": reason, "message": text, "since": time,
            "retry_after_seconds": {"type": "integer"}, "by": text}}),
    );
    schemas.insert(
        "ShutdownPlan".into(),
        json!({"type": "object", "required": ["scheduled"], "properties": {
            "scheduled": {"type": "boolean"}, "job": uuid(), "at": time, "seconds_left": {"type": "integer"},
            "message": text, "by": text, "reminders": {"type": "array", "items": time},
            "stopping": {"type": ["string", "null"]}, "cancelled": {"oneOf": [uuid(), {"type": "null"}]}}}),
    );
    schemas.insert(
        "Announcements".into(),
        json!({"type": "object", "required": ["announcements"], "properties": {
            "announcements": {"type": "array", "items": {"type": "object", "required": ["kind", "message"], "properties": {
                "kind": {"type": "string", "enum": ["shutdown", "read_only"]},
                "message": text, "at": time, "seconds_left": {"type": "integer"},
                "reminders": {"type": "array", "items": time},
                "reminder_minutes": {"type": "array", "items": {"type": "integer"}},
                "reason": reason, "since": time, "retry_after_seconds": {"type": "integer"}}}}}}),
    );
}

fn exchange_paths(paths: &mut Map<String, Value>) {
    paths.insert(
        "/api/v1/exchange/runs".into(),
        json!({"get": Operation::new(
            "1C exchange runs, newest first: jobs whose result is the run's report (admin)",
            "list_exchange_runs",
            "exchange",
        )
        .params(vec![
            limit(),
            query(
                "cursor",
                "next_cursor of the previous page",
                json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
            ),
        ])
        .errors(&[403])
        .answer(200, page_of(reference("Job")), false)}),
    );
    paths.insert(
        "/api/v1/exchange/runs/{id}".into(),
        json!({"get": Operation::new("One 1C exchange run with its report (admin)", "get_exchange_run", "exchange")
            .param(path_id("exchange run"))
            .errors(&[403, 404])
            .answer(200, reference("Job"), false)}),
    );
}

/// `/api/v1/export/{name}`: the list as a file (GET, streamed) or as a job (POST), with the
/// list's own filters, `q` and sort.
fn export_paths(name: &str, schema: &Schema, paths: &mut Map<String, Value>) {
    let mut params = vec![
        query(
            "format",
            "csv (the default), xlsx or jsonl",
            json!({"type": "string", "enum": ["csv", "xlsx", "jsonl"]}),
        ),
        query(
            "delimiter",
            "CSV delimiter (default ,)",
            json!({"type": "string", "enum": [",", ";", "tab", "|"]}),
        ),
    ];
    params.extend(
        list_params(schema)
            .into_iter()
            .filter(|p| !matches!(p["name"].as_str(), Some("limit" | "cursor" | "count"))),
    );
    let files = [
        "text/csv",
        "application/x-ndjson",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ];
    paths.insert(
        format!("/api/v1/export/{name}"),
        json!({
            "get": file_answer(
                Operation::new(
                    &format!("Export {name} (the list's filters, q and sort) as CSV, XLSX or JSON Lines, streamed; only what the caller may read, hidden fields left out"),
                    &format!("export_{name}"),
                    "exports",
                )
                .params(params.clone())
                .errors(statuses::QUERY)
                .errors(&[403, 404])
                .answer(200, json!({}), false),
                &files,
            ),
            "post": job_accepted(
                Operation::new(
                    &format!("Export {name} to a file as a job (for big exports); download it from /api/v1/exports/{{id}}/file"),
                    &format!("create_export_{name}"),
                    "exports",
                )
                .params(params)
                .errors(statuses::QUERY)
                .errors(&[403, 404]),
            ),
        }),
    );
}

/// An answer that is a file, not JSON.
fn file_answer(op: Value, types: &[&str]) -> Value {
    let mut op = op;
    let content: Map<String, Value> = types
        .iter()
        .map(|t| {
            (
                t.to_string(),
                json!({"schema": {"type": "string", "format": "binary"}}),
            )
        })
        .collect();
    op["responses"]["200"] = json!({"description": "The file", "content": content,
        "headers": {"Content-Disposition": {"required": true, "description": "attachment; its file name",
            "schema": {"type": "string"}}}});
    op
}

fn transfer_paths(paths: &mut Map<String, Value>) {
    let importable: Vec<&str> = kontor_domain::schema::IMPORTABLE.to_vec();
    let text =
        |desc: &str, max: usize| json!({"type": "string", "description": desc, "maxLength": max});
    let upload = json!({"type": "object", "required": ["file", "entity"], "additionalProperties": false, "properties": {
        "file": {"type": "string", "format": "binary", "description": "the CSV (any delimiter; UTF-8, UTF-8 with BOM, UTF-16 or windows-1251) or XLSX file"},
        "entity": {"type": "string", "enum": importable},
        "mode": {"type": "string", "enum": kontor_domain::schema::IMPORT_MODES, "description": "create (default), update, upsert (create or update) or skip (create only what matches nothing)"},
        "match": text("the key rows are matched by: id, a unique key (external_id, inn+kpp, sku, number) or an indexed field (email, phone, inn)", 128),
        "map": {"type": "string", "maxLength": crate::routes::transfer::MAX_MAPPING,
            "pattern": "^([^=\\r\\n]*=[^\\r\\n]*\\n)*[^=\\r\\n]*=[^\\r\\n]*$",
            "description": "HEADER=FIELD lines: where a column goes (FIELD, id, owner_id, REF.KEY such as company_id.inn, or nothing to leave it out)"},
        "columns": {"type": "object", "maxProperties": 4096,
            "additionalProperties": {"type": "string", "maxLength": 200},
            "description": "the same as a JSON object {\"header\": \"field\"}"},
        "template": text("an import template's name: its mapping, key, mode and reading settings", 128),
        "save_template": text("save the mapping and settings as a template of this name (admin)", 128),
        "dry_run": {"type": "string", "enum": ["true", "false"], "description": "report what the import would do, change nothing"},
        "delimiter": text("CSV delimiter (one character or tab); detected by default", 8),
        "encoding": text("CSV encoding (utf-8, windows-1251, ...); detected by default", 32),
        "sheet": text("XLSX sheet; the first by default", 255)}});
    let mut create = job_accepted(
        Operation::new(
            "Import a CSV or XLSX file into an entity, as a job whose result is the report (one journal batch, undone with POST /api/v1/history/undo)",
            "create_import",
            "imports",
        )
        .errors(&[403, 404, 413, 415, 422]),
    );
    create["requestBody"] =
        json!({"required": true, "content": {"multipart/form-data": {"schema": upload}}});
    create["responses"]["400"] = error_ref(400);
    paths.insert(
        "/api/v1/imports".into(),
        json!({
            "get": Operation::new("Imports the caller started (all, for admins), newest first", "list_imports", "imports")
                .params(vec![limit(), query("cursor", "next_cursor of the previous page",
                    json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}))])
                .errors(&[422])
                .answer(200, page_of(reference("Job")), false),
            "post": create,
        }),
    );
    paths.insert(
        "/api/v1/imports/local".into(),
        json!({"post": job_accepted(
            Operation::new(
                "Import a file on the server's machine where it is (only through the local socket `kontor import` uses; elsewhere 404)",
                "create_local_import",
                "imports",
            )
            .body(json!({"type": "object", "required": ["path"], "properties": {
                "path": {"type": "string"}, "spec": {"type": "object"}}}))
            .errors(&[403, 404]),
        )}),
    );
    paths.insert(
        "/api/v1/imports/{id}".into(),
        json!({"get": Operation::new("An import: its job, whose result is the report (counts, the first rows of each outcome, mapping)", "get_import", "imports")
            .param(path_id("import"))
            .errors(&[404])
            .answer(200, reference("Job"), false)}),
    );
    paths.insert(
        "/api/v1/imports/{id}/errors.csv".into(),
        json!({"get": file_answer(
            Operation::new("The rows an import refused or found repeated: row, column, value, reason", "import_errors", "imports")
                .param(path_id("import"))
                .errors(&[404])
                .answer(200, json!({}), false),
            &["text/csv"],
        )}),
    );
    paths.insert(
        "/api/v1/imports/{id}/apply".into(),
        json!({"post": job_accepted(
            Operation::new("Import for real the file a finished dry run previewed, as it was sent", "apply_import", "imports")
                .param(path_id("dry run"))
                .errors(&[404, 409]),
        )}),
    );
    paths.insert(
        "/api/v1/exports/{id}/file".into(),
        json!({"get": file_answer(
            Operation::new("A finished export's file (on the node that wrote it)", "export_file", "exports")
                .param(path_id("export"))
                .errors(&[404, 409])
                .answer(200, json!({}), false),
            &["text/csv", "application/x-ndjson", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
        )}),
    );
}

fn search_paths(paths: &mut Map<String, Value>) {
    let searched: Vec<&str> = kontor_search::document::SEARCHED
        .iter()
        .map(|e| e.as_str())
        .collect();
    let mut q = query(
        "q",
        "what to look for: words match whole, as the beginning of a word, or with a typo (one from five letters, two from nine); phones, tax ids and e-mails match in any format",
        json!({"type": "string", "maxLength": kontor_search::service::MAX_QUERY}),
    );
    q["required"] = json!(true);
    let entity = json!({"name": "entity", "in": "query", "required": false, "style": "form", "explode": true,
        "description": "only these entities (repeat the parameter, or separate by commas); all searched ones by default",
        "schema": {"type": "array", "items": {"type": "string", "enum": searched}}});
    let limit = query(
        "limit",
        "results per entity (default 10)",
        json!({"type": "integer", "minimum": 1, "maximum": kontor_search::service::MAX_LIMIT}),
    );
    paths.insert(
        "/api/v1/search".into(),
        json!({"get": Operation::new(
            "Search companies, contacts, leads, deals, products and invoices the caller may read; results grouped by entity, best first, with where they matched",
            "search",
            "search",
        )
        .params(vec![q, entity, limit])
        .errors(&[422])
        .answer(200, reference("SearchResults"), false)}),
    );
    paths.insert(
        "/api/v1/admin/search".into(),
        json!({"get": Operation::new("The search index: up to which journal entry it is current, and what it holds (admin)", "search_index_state", "search")
            .errors(&[403, 404])
            .answer(200, json!({"type": "object", "required": ["seq", "journal_head", "behind", "documents"], "properties": {
                "seq": {"type": "integer", "minimum": 0}, "journal_head": {"type": "integer", "minimum": 0},
                "behind": {"type": "integer", "minimum": 0}, "documents": {"type": "integer", "minimum": 0}}}), false)}),
    );
    let rebuild = job_accepted(
        Operation::new(
            "Build the search index again from the records, as a job (admin)",
            "rebuild_search_index",
            "search",
        )
        .errors(&[403, 404]),
    );
    paths.insert(
        "/api/v1/admin/search/rebuild".into(),
        json!({"post": rebuild}),
    );
}

fn search_schemas(schemas: &mut Map<String, Value>) {
    let searched: Vec<&str> = kontor_search::document::SEARCHED
        .iter()
        .map(|e| e.as_str())
        .collect();
    let highlight = json!({"oneOf": [{"type": "null"}, {"type": "object",
        "required": ["field", "text", "ranges"], "properties": {
            "field": {"type": "string"}, "text": {"type": "string"},
            "ranges": {"type": "array", "description": "character ranges [from, to) of the text that matched",
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2}}}}]});
    let item = json!({"type": "object",
        "required": ["id", "title", "score", "highlight", "record"],
        "properties": {
            "id": uuid(), "title": {"type": "string"}, "score": {"type": "number"},
            "highlight": highlight, "record": {"type": "object"}}});
    let group = json!({"type": "object",
        "required": ["entity", "total", "total_is_estimate", "items"],
        "properties": {
            "entity": {"type": "string", "enum": searched},
            "total": {"type": "integer", "minimum": 0},
            "total_is_estimate": {"type": "boolean", "description": "the caller's role hides some of this entity's fields, so the total counts only the records shown; more may match"},
            "items": {"type": "array", "items": item}}});
    schemas.insert(
        "SearchResults".into(),
        json!({"type": "object", "required": ["query", "groups"], "properties": {
            "query": {"type": "string"},
            "groups": {"type": "array", "items": group}}}),
    );
}

fn backup_schemas(schemas: &mut Map<String, Value>) {
    let text_or_null = json!({"type": ["string", "null"]});
    let int_or_null = json!({"type": ["integer", "null"]});
    schemas.insert(
        "Job".into(),
        json!({"type": "object",
            "required": ["id", "kind", "subject", "state", "created_by", "node", "created_at", "updated_at", "progress", "result", "error"],
            "properties": {
                "id": uuid(), "kind": {"type": "string"}, "subject": text_or_null,
                "state": {"type": "string", "enum": ["running", "succeeded", "failed"]},
                "created_by": {"type": "string"}, "node": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "progress": {"type": "object", "required": ["phase", "done", "total"], "properties": {
                    "phase": text_or_null, "done": {"type": "integer", "minimum": 0}, "total": int_or_null}},
                "result": {"type": ["object", "null"]}, "error": text_or_null}}),
    );
    let archive = json!({"type": "object",
        "required": ["id", "bytes", "seq", "created_at", "encrypted", "verification", "pinned"],
        "properties": {
            "id": {"type": "string"}, "bytes": {"type": "integer", "minimum": 0},
            "seq": int_or_null, "seq_at": text_or_null, "created_at": text_or_null,
            "kontor_version": text_or_null, "schema_version": int_or_null,
            "rows": {"type": ["object", "null"], "additionalProperties": {"type": "integer"}},
            "encrypted": {"type": "boolean"}, "unreadable": text_or_null,
            "verification": {"type": ["object", "null"], "required": ["ok", "at", "seconds", "error"], "properties": {
                "ok": {"type": "boolean"}, "at": {"type": "string"}, "seconds": {"type": "number"}, "error": text_or_null}},
            "pinned": {"type": ["object", "null"]},
            "retention": {"type": "array", "items": {"type": "string"},
                "description": "why retention keeps it; empty: the next prune removes it"}}});
    schemas.insert("BackupArchive".into(), archive);
    schemas.insert(
        "BackupList".into(),
        json!({"type": "object", "required": ["folder", "archives", "events"], "properties": {
            "folder": {"type": "string"},
            "archives": {"type": "array", "items": reference("BackupArchive")},
            "events": {"type": "array", "description": "the backup log, newest first", "items": {
                "type": "object", "required": ["at", "by", "action", "ok", "detail"], "properties": {
                    "at": {"type": "string"}, "by": {"type": "string"}, "action": {"type": "string"},
                    "archive": {"type": "string"}, "ok": {"type": "boolean"}, "detail": {"type": "string"}}}}}}),
    );
    let archive_or_null = json!({"anyOf": [reference("BackupArchive"), {"type": "null"}]});
    schemas.insert(
        "BackupStatus".into(),
        json!({"type": "object",
            "required": ["target", "folder", "encrypted", "shipping", "archives", "newest", "newest_verified", "failed_verifications"],
            "properties": {
                "target": text_or_null, "folder": {"type": "string"}, "encrypted": {"type": "boolean"},
                "shipping": {"type": ["object", "null"], "properties": {
                    "running": {"type": "boolean"}, "shipped_seq": {"type": "integer"},
                    "database_seq": {"type": "integer"}, "lag_entries": {"type": "integer"},
                    "lag_seconds": {"type": "number"}, "last_error": text_or_null}},
                "archives": {"type": "integer", "minimum": 0},
                "newest": archive_or_null.clone(), "newest_verified": archive_or_null,
                "failed_verifications": {"type": "array", "items": {"type": "string"}}}}),
    );
}

fn batch_request() -> Value {
    let mut variants = Vec::new();
    for e in routed_entities() {
        let name = e.as_str();
        variants.push(json!({"type": "object", "additionalProperties": false,
            "required": ["op", "entity", "data"],
            "properties": {"op": {"const": "create"}, "entity": {"const": name},
                           "data": reference(&format!("{name}_create"))}}));
        variants.push(json!({"type": "object", "additionalProperties": false,
            "required": ["op", "entity", "id", "data"],
            "properties": {"op": {"const": "update"}, "entity": {"const": name}, "id": uuid(),
                           "data": reference(&format!("{name}_update"))}}));
        variants.push(json!({"type": "object", "additionalProperties": false,
            "required": ["op", "entity", "id"],
            "properties": {"op": {"const": "delete"}, "entity": {"const": name}, "id": uuid()}}));
    }
    json!({"type": "object", "additionalProperties": false, "required": ["operations"],
        "properties": {"operations": {"type": "array", "minItems": 1,
            "maxItems": crate::routes::records::MAX_BATCH, "items": {"oneOf": variants}}}})
}

fn shared_schemas(schemas: &mut Map<String, Value>) {
    let ops: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
    let origins: Vec<&str> = Origin::ALL.iter().map(|o| o.as_str()).collect();
    let entities: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
    let batch_summary = json!({"type": "object", "required": ["batch", "changes"], "properties": {
        "batch": {"type": "string", "format": "uuid"},
        "changes": {"type": "array", "items": {"type": "object", "required": ["entity", "id", "op", "seq"], "properties": {
            "entity": {"type": "string", "enum": entities}, "id": {"type": "string", "format": "uuid"},
            "op": {"type": "string", "enum": ops}, "seq": {"type": "integer", "minimum": 1}}}},
        "skipped": {"type": "array", "description": "fields a restore or undo left as they are (credentials)",
            "items": {"type": "object", "required": ["entity", "record_id", "field", "reason"], "properties": {
                "entity": {"type": "string"}, "record_id": {"type": "string"}, "field": {"type": "string"}, "reason": {"type": "string"}}}}}});
    let mut restore_result = batch_summary.clone();
    restore_result["properties"]["record"] = json!({"type": ["object", "null"]});
    let mut batch_result = batch_summary.clone();
    batch_result["properties"]["records"] =
        json!({"type": "array", "items": {"type": ["object", "null"]}});
    schemas.insert("BatchSummary".into(), batch_summary);
    schemas.insert("RestoreResult".into(), restore_result);
    schemas.insert("BatchResult".into(), batch_result);
    schemas.insert("BatchRequest".into(), batch_request());
    schemas.insert(
        "HistoryItem".into(),
        json!({"type": "object",
            "required": ["seq", "at", "actor", "origin", "batch", "entity", "record_id", "op", "before", "after", "changes", "scrubbed"],
            "properties": {
                "seq": {"type": "integer", "minimum": 1}, "at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string"}, "origin": {"type": "string", "enum": origins},
                "batch": {"type": "string", "format": "uuid"}, "entity": {"type": "string", "enum": entities},
                "record_id": {"type": "string"}, "op": {"type": "string", "enum": ops},
                "before": {"type": ["object", "null"]}, "after": {"type": ["object", "null"]},
                "changes": {"type": "array", "items": {"type": "object", "required": ["field", "before", "after"],
                    "properties": {"field": {"type": "string"}, "before": {}, "after": {}}}},
                "scrubbed": {"type": "boolean"}}}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": "string", "description": "the field or parameter at fault"},
                "conflicts": {"type": "array", "items": {"type": "object"}}}}}}),
    );
    schemas.insert(
        "RestoreRequest".into(),
        json!({"type": "object", "additionalProperties": false, "required": ["at"],
            "properties": {"at": {"type": "string", "format": "date-time",
                "description": "the time whose state to restore (a future time is the current state)"}}}),
    );
    schemas.insert(
        "UndoRequest".into(),
        json!({"oneOf": [
            {"type": "object", "additionalProperties": false, "required": ["batch"],
             "properties": {"batch": uuid()}},
            {"type": "object", "additionalProperties": false, "required": ["actor", "from", "to"],
             "properties": {"actor": {"anyOf": [uuid(), {"type": "string", "const": "system"}]},
                            "from": {"type": "string", "format": "date-time"},
                            "to": {"type": "string", "format": "date-time"}}}]}),
    );
    schemas.insert(
        "LoginRequest".into(),
        json!({"type": "object", "additionalProperties": false, "required": ["email", "password"],
            "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}),
    );
    schemas.insert(
        "LoginResult".into(),
        json!({"type": "object", "required": ["token", "expires_at", "user"], "properties": {
            "token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"},
            "user": {"type": "object", "required": ["id", "email", "role"], "properties": {
                "id": {"type": "string", "format": "uuid"}, "email": {"type": "string"}, "role": {"type": "string"}}}}}),
    );
}

/// The whole document, including the custom fields defined now.
pub fn document(custom: &[CustomFieldDef]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for e in routed_entities() {
        let schema = Schema::with_custom(e, custom);
        entity_paths(e, &schema, &mut paths);
    }
    user_paths(&mut paths);
    system_paths(&mut paths);
    backup_paths(&mut paths);
    operations_paths(&mut paths);
    exchange_paths(&mut paths);
    search_paths(&mut paths);
    transfer_paths(&mut paths);
    for e in Entity::ALL {
        let schema = Schema::with_custom(e, custom);
        schemas.insert(e.as_str().into(), schemas::record(&schema));
        if e == Entity::Users {
            let password = |required: bool| {
                let s = json!({"type": "string", "minLength": kontor_core::auth::MIN_PASSWORD_LEN,
                               "maxLength": kontor_core::auth::MAX_PASSWORD_LEN});
                if required {
                    s
                } else {
                    json!({"anyOf": [s, {"type": "null"}]})
                }
            };
            for (mode, suffix, required) in [
                (Mode::Create, "create", true),
                (Mode::Update, "update", false),
            ] {
                let mut s = schemas::input(&schema, mode);
                s["properties"]["password"] = password(required);
                if required {
                    if let Some(r) = s["required"].as_array_mut() {
                        r.push(json!("password"));
                    }
                }
                schemas.insert(format!("users_{suffix}"), s);
            }
        } else {
            schemas.insert(
                format!("{}_create", e.as_str()),
                schemas::input(&schema, Mode::Create),
            );
            schemas.insert(
                format!("{}_update", e.as_str()),
                schemas::input(&schema, Mode::Update),
            );
        }
    }
    shared_schemas(&mut schemas);
    backup_schemas(&mut schemas);
    operations_schemas(&mut schemas);
    search_schemas(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Kontor API", "version": env!("CARGO_PKG_VERSION"),
            "description": "Kontor CRM REST API. Log in with POST /api/v1/auth/login and send the token as 'Authorization: Bearer <token>'. Request bodies are JSON (Content-Type: application/json). Money and every other decimal is a JSON string (\"1500.50\"), never a number; money has its currency's minor units. Record ids are UUIDs (either case in requests, lowercase in answers). null clears an optional field; for text a blank string does the same."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"bearer": []}]
    })
}
