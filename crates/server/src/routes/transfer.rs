//! `/api/v1/imports` and `/api/v1/export/{entity}`, `/api/v1/exports`: spreadsheets in and
//! out. An import is a multipart upload (the file and the import's settings) run as a job;
//! its report is the job's result, its refused rows a CSV to download, and a dry run's upload
//! can be imported for real without sending it again. An export streams any list (filters,
//! `q`, sort) as CSV or JSON Lines, or is written by a job (any format) to download later.

use super::{check_id, list_params};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, PathParams, QueryPairs};
use crate::routes::backups::accepted;
use crate::tracked_jobs::{job_json, TrackedJob};
use crate::transfer::{KeptRequest, TransferDesk};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::permission::Actor;
use kontor_domain::{DomainError, Entity};
use kontor_store::JobRow;
use kontor_tabular::export::{ExportFormat, ExportSpec, Exporter};
use kontor_tabular::import::{self, ImportSpec, Mode};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::ReaderStream;

fn desk(state: &AppState) -> ApiResult<&Arc<TransferDesk>> {
    state.http.transfer.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "this server keeps no uploads (it was not started by `kontor serve`)".into(),
        )
    })
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    DomainError::invalid(field, message).into()
}

/// The most characters the mapping parts (`map`, `columns`) take.
pub const MAX_MAPPING: usize = 100_000;

/// The most characters a text part of an import's upload takes.
fn max_chars(part: &str) -> usize {
    match part {
        "map" | "columns" => MAX_MAPPING,
        "match" | "template" | "save_template" => 128,
        "delimiter" => 8,
        "encoding" => 32,
        _ => 255,
    }
}

/// Sets one import setting from a text part of the upload.
fn set_field(spec: &mut ImportSpec, name: &str, value: String) -> ApiResult<()> {
    let max = max_chars(name);
    if value.chars().count() > max {
        return Err(invalid(
            name,
            format!("{name} takes at most {max} characters"),
        ));
    }
    let value = value.trim().to_string();
    let some = || (!value.is_empty()).then(|| value.clone());
    match name {
        "entity" => spec.entity = value,
        "mode" => {
            spec.mode = match value.as_str() {
                "" => None,
                v => Some(Mode::parse(v).ok_or_else(|| {
                    invalid("mode", "mode is one of create, update, upsert, skip")
                })?),
            }
        }
        "match" => spec.match_on = some(),
        "template" => spec.template = some(),
        "save_template" => spec.save_template = some(),
        "delimiter" => spec.delimiter = (!value.is_empty()).then_some(value),
        "encoding" => spec.encoding = some(),
        "sheet" => spec.sheet = some(),
        "dry_run" => {
            spec.dry_run = match value.as_str() {
                "true" | "1" | "on" => true,
                "false" | "0" | "" => false,
                _ => return Err(invalid("dry_run", "dry_run is true or false")),
            }
        }
        "columns" => {
            let obj: serde_json::Map<String, Value> = serde_json::from_str(&value)
                .map_err(|_| invalid("columns", "columns is a JSON object {\"header\": \"field\"}"))?;
            if obj.len() > 4096 {
                return Err(invalid("columns", "columns maps at most 4096 columns"));
            }
            for (h, t) in obj {
                let t = t
                    .as_str()
                    .filter(|t| t.chars().count() <= 200)
                    .ok_or_else(|| {
                        invalid("columns", format!("columns.{h} must be a field name of at most 200 characters"))
                    })?;
                spec.columns.insert(h, t.to_string());
            }
        }
        "map" => {
            for line in value.lines().filter(|l| !l.trim().is_empty()) {
                let (h, t) = line.rsplit_once('=').ok_or_else(|| {
                    invalid("map", format!("map is HEADER=FIELD, one per line, not '{line}'"))
                })?;
                spec.columns.insert(h.trim().to_string(), t.trim().to_string());
            }
        }
        other => {
            return Err(invalid(
                other,
                format!("unknown part '{other}'; an import takes file, entity, mode, match, map, columns, template, save_template, dry_run, delimiter, encoding, sheet"),
            ))
        }
    }
    Ok(())
}

/// `POST /imports`: a multipart upload (`file` and the settings), imported as a job.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let mut form = form.map_err(|e| {
        ApiError::UnsupportedMediaType(format!(
            "an import is a multipart/form-data upload (a part named file and the settings): {}",
            e.body_text()
        ))
    })?;
    let desk = desk(&state)?.clone();
    let upload_id = kontor_domain::record::new_id();
    let staging = desk.imports.join(format!("upload-{upload_id}"));
    let result =
        async {
            let mut spec = ImportSpec::default();
            let mut got_file = false;
            while let Some(mut part) = form
                .next_field()
                .await
                .map_err(|e| ApiError::BadRequest(format!("the upload is malformed: {e}")))?
            {
                let name = part.name().unwrap_or("").to_string();
                if name != "file" {
                    let text = part.text().await.map_err(|e| {
                        ApiError::BadRequest(format!("part '{name}' is malformed: {e}"))
                    })?;
                    set_field(&mut spec, &name, text)?;
                    continue;
                }
                if got_file {
                    return Err(invalid("file", "an import takes one file"));
                }
                got_file = true;
                spec.file_name = part
                    .file_name()
                    .unwrap_or("upload")
                    .chars()
                    .take(255)
                    .collect();
                std::fs::create_dir_all(&staging).map_err(io)?;
                let mut out = std::fs::File::create(staging.join("upload")).map_err(io)?;
                let mut hasher = blake3::Hasher::new();
                let mut size: u64 = 0;
                while let Some(bytes) = part.chunk().await.map_err(|e| {
                    ApiError::BadRequest(format!("the file did not arrive whole: {e}"))
                })? {
                    size += bytes.len() as u64;
                    if size > desk.max_upload {
                        return Err(invalid(
                            "file",
                            format!(
                                "the file is larger than this server takes ({} bytes)",
                                desk.max_upload
                            ),
                        ));
                    }
                    hasher.update(&bytes);
                    out.write_all(&bytes).map_err(io)?;
                }
                out.sync_all().map_err(io)?;
                spec.file_digest = hasher.finalize().to_hex().to_string();
            }
            if !got_file {
                return Err(invalid("file", "the upload has no part named file"));
            }
            check_spec(&spec)?;
            Ok(spec)
        }
        .await;
    let spec = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    start(&state, &desk, actor, spec, None, Some(&staging), None).await
}

/// What a request can be told at once about its settings (the job checks the rest).
fn check_spec(spec: &ImportSpec) -> ApiResult<()> {
    if spec.entity.is_empty() {
        return Err(invalid(
            "entity",
            "the import needs an entity (e.g. contacts)",
        ));
    }
    let importable = kontor_domain::schema::IMPORTABLE;
    if !importable.contains(&spec.entity.as_str()) {
        return Err(invalid(
            "entity",
            format!(
                "cannot import into '{}'; into one of: {}",
                spec.entity,
                importable.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Starts the import job for a kept upload (`staging`, renamed to the job's folder) or a
/// local file (`path`); with `resume`, takes that interrupted job up again instead.
async fn start(
    state: &AppState,
    desk: &Arc<TransferDesk>,
    actor: Actor,
    spec: ImportSpec,
    path: Option<std::path::PathBuf>,
    staging: Option<&std::path::Path>,
    resume: Option<JobRow>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let job = match resume {
        Some(row) => {
            desk.set_running(&row.id, true);
            TrackedJob::adopt(state.kontor.store.clone(), row, &state.jobs.node_id).await?
        }
        None => {
            let kind = if spec.dry_run {
                "import.dry_run"
            } else {
                "import"
            };
            let subject = format!("{} {}", spec.entity, spec.file_name);
            let job = TrackedJob::start(
                state.kontor.store.clone(),
                kind,
                Some(&subject),
                &actor.user_id,
                &state.jobs.node_id,
            )
            .await?;
            desk.set_running(&job.row().id, true);
            job
        }
    };
    let id = job.row().id;
    let kept = KeptRequest {
        spec,
        user_id: actor.user_id.clone(),
        path,
    };
    let moved = match staging {
        Some(dir) => std::fs::rename(dir, desk.job_dir(&id)),
        None => std::fs::create_dir_all(desk.job_dir(&id)),
    }
    .and_then(|_| desk.keep_request(&id, &kept));
    if let Err(e) = moved {
        let _ = staging.map(std::fs::remove_dir_all);
        desk.set_running(&id, false);
        return Err(io(e));
    }
    desk.run_import(
        state.kontor.clone(),
        actor,
        job.clone(),
        kept,
        state.jobs.node_id.clone(),
    );
    let (status, mut headers, body) = accepted(&job);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/imports/{id}")) {
        headers.insert(header::LOCATION, v);
    }
    Ok((status, headers, body))
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::Core(kontor_core::CoreError::Store(
        kontor_store::StoreError::Other(format!("cannot keep the upload: {e}")),
    ))
}

/// `POST /imports/local` (the local socket only): imports a file on this machine where it is.
pub async fn create_local(
    State(state): State<Arc<AppState>>,
    local: Option<axum::Extension<crate::extract::LocalPeer>>,
    Auth(actor): Auth,
    crate::extract::JsonBody(body): crate::extract::JsonBody,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    if local.is_none() {
        return Err(DomainError::forbidden(
            "a local import is taken only on the server's local socket (kontor import); upload the file to POST /api/v1/imports",
        )
        .into());
    }
    let desk = desk(&state)?.clone();
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .map(std::path::PathBuf::from)
        .ok_or_else(|| invalid("path", "a local import names the file's path"))?;
    let mut spec: ImportSpec =
        serde_json::from_value(body.get("spec").cloned().unwrap_or(json!({})))
            .map_err(|e| invalid("spec", format!("the import's settings are malformed: {e}")))?;
    if spec.file_name.is_empty() {
        spec.file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
            .to_string();
    }
    check_spec(&spec)?;
    // A file still there to be read, named by the request: resumed if the same import of it
    // was interrupted.
    let digest = tokio::task::block_in_place(|| kontor_tabular::import::digest_file(&path))
        .map_err(|e| invalid("path", format!("cannot read {}: {e}", path.display())))?;
    spec.file_digest = digest;
    if let Some(row) =
        kontor_tabular::import::resumable(&state.kontor, &spec, &actor.user_id).await?
    {
        if desk.is_running(&row.id) {
            return Err(DomainError::State {
                field: None,
                message: format!("import {} of this file is running", row.id),
            }
            .into());
        }
        return start(&state, &desk, actor, spec, Some(path), None, Some(row)).await;
    }
    start(&state, &desk, actor, spec, Some(path), None, None).await
}

/// An import job the actor may see.
async fn import_job(state: &AppState, actor: &Actor, id: &str) -> ApiResult<JobRow> {
    let id = check_id(id)?;
    match state.kontor.store.job(&id).await? {
        Some(row)
            if row.kind.starts_with("import")
                && (actor.is_admin() || row.created_by == actor.user_id) =>
        {
            Ok(row)
        }
        _ => Err(ApiError::NotFound(format!("no import {id}"))),
    }
}

/// `GET /imports`: the imports the actor started (all, for admins), newest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let limit = kontor_core::read::page_limit(q.take_u32("limit")?)?;
    let cursor = match q.take("cursor")? {
        Some(c) => Some(
            check_id(&c)
                .map_err(|_| invalid("cursor", "the cursor is not one this server gave out"))?,
        ),
        None => None,
    };
    if let Some((k, _)) = q.0.first() {
        return Err(invalid(
            k,
            format!("unknown query parameter '{k}'; imports take limit and cursor"),
        ));
    }
    let mut items = Vec::new();
    let mut before = cursor;
    let mut next = None;
    'pages: loop {
        let rows = state
            .kontor
            .store
            .jobs("import", before.as_deref(), 200)
            .await?;
        let exhausted = rows.len() < 200;
        for row in rows {
            before = Some(row.id.clone());
            if actor.is_admin() || row.created_by == actor.user_id {
                if items.len() == limit as usize {
                    next = items
                        .last()
                        .and_then(|j: &Value| j["id"].as_str().map(str::to_string));
                    break 'pages;
                }
                items.push(job_json(&row));
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

/// `GET /imports/{id}`: the job, whose result is the report.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let row = import_job(&state, &actor, &id).await?;
    let mut body = job_json(&row);
    body["errors_csv"] = json!(format!("/api/v1/imports/{}/errors.csv", row.id));
    Ok(Json(body))
}

/// `GET /imports/{id}/errors.csv`: the refused rows (row, column, value, reason), streamed.
pub async fn errors_csv(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let row = import_job(&state, &actor, &id).await?;
    let store = state.kontor.store.clone();
    let job_id = row.id.clone();
    let stream = async_stream(move |tx| async move {
        if tx.send(Ok(import::errors_csv(&[], true))).await.is_err() {
            return;
        }
        let mut after = None;
        loop {
            let page = match store.import_errors(&job_id, after.clone(), 1000).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            after = Some((last.row, last.column.clone()));
            let full = page.len() == 1000;
            if tx.send(Ok(import::errors_csv(&page, false))).await.is_err() || !full {
                return;
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"import-{}-errors.csv\"",
        row.id
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `POST /imports/{id}/apply`: imports for real the file a finished dry run previewed.
pub async fn apply(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let desk = desk(&state)?.clone();
    let row = import_job(&state, &actor, &id).await?;
    if row.kind != "import.dry_run" || row.state != "succeeded" {
        return Err(DomainError::State {
            field: None,
            message: format!("import {} is not a finished dry run", row.id),
        }
        .into());
    }
    let kept = desk.kept_request(&row.id).ok_or_else(|| {
        ApiError::Core(
            DomainError::State {
                field: None,
                message: "the dry run's file is no longer kept on this node; upload it again"
                    .into(),
            }
            .into(),
        )
    })?;
    let mut spec = kept.spec.clone();
    spec.dry_run = false;
    let staging = desk
        .imports
        .join(format!("upload-{}", kontor_domain::record::new_id()));
    let copied = match &kept.path {
        Some(_) => std::fs::create_dir_all(&staging),
        None => std::fs::create_dir_all(&staging).and_then(|_| {
            std::fs::copy(desk.upload_path(&row.id), staging.join("upload")).map(|_| ())
        }),
    };
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io(e));
    }
    start(
        &state,
        &desk,
        actor,
        spec,
        kept.path.clone(),
        Some(&staging),
        None,
    )
    .await
}

/// Runs `f` as a task feeding a channel; the channel's end is a body stream.
fn async_stream<F, Fut>(f: F) -> ReceiverStream<Result<Vec<u8>, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(f(tx));
    ReceiverStream::new(rx)
}

/// The export a request asks for: `format` and the list's parameters.
fn export_spec(entity: Entity, mut q: QueryPairs) -> ApiResult<ExportSpec> {
    let format = match q.take("format")?.as_deref() {
        None => ExportFormat::Csv,
        Some(f) => ExportFormat::parse(f)
            .ok_or_else(|| invalid("format", "format is csv, xlsx or jsonl"))?,
    };
    let delimiter = match q.take("delimiter")? {
        None => None,
        Some(d) => Some(kontor_tabular::source::parse_delimiter(&d).ok_or_else(|| {
            invalid("delimiter", "delimiter is one punctuation character or tab")
        })?),
    };
    let mut list = list_params(q)?;
    list.limit = None;
    list.cursor = None;
    Ok(ExportSpec {
        entity,
        format,
        list,
        delimiter,
    })
}

fn attachment(entity: Entity, format: ExportFormat) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.{}\"",
        entity.as_str(),
        format.extension()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h
}

/// `GET /export/{entity}`: the list as a file, streamed (XLSX is assembled first).
pub async fn export_now(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(entity): PathParams<String>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let entity = super::entity_param(&entity)?;
    let spec = export_spec(entity, q)?;
    let format = spec.format;
    let mut exporter = Exporter::new(state.kontor.clone(), actor.clone(), spec.clone())
        .await
        .map_err(export_err)?;
    if format == ExportFormat::Xlsx {
        let mut buf = tempfile::tempfile().map_err(io)?;
        kontor_tabular::export::export(
            state.kontor.clone(),
            actor,
            spec,
            &mut buf,
            &kontor_core::progress::Silent,
        )
        .await
        .map_err(export_err)?;
        use std::io::Seek;
        buf.rewind().map_err(io)?;
        let file = tokio::fs::File::from_std(buf);
        let body = Body::from_stream(ReaderStream::new(file));
        return Ok((attachment(entity, format), body).into_response());
    }
    // The first page is read before answering, so a bad filter is a clean 422.
    let first = exporter.next_bytes().await.map_err(export_err)?;
    let stream = async_stream(move |tx| async move {
        if let Some(b) = first {
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        loop {
            match exporter.next_bytes().await {
                Ok(Some(b)) => {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    Ok((attachment(entity, format), Body::from_stream(stream)).into_response())
}

fn export_err(e: kontor_tabular::export::ExportError) -> ApiError {
    match e {
        kontor_tabular::export::ExportError::Core(c) => ApiError::Core(c),
        other => ApiError::Core(kontor_core::CoreError::Store(
            kontor_store::StoreError::Other(other.to_string()),
        )),
    }
}

/// `POST /export/{entity}`: writes the export (the same parameters as `GET`) as a job, to
/// download from `/exports/{id}/file`.
pub async fn create_export(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(entity): PathParams<String>,
    q: QueryPairs,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let desk = desk(&state)?.clone();
    let entity = super::entity_param(&entity)?;
    let spec = export_spec(entity, q)?;
    // Checked now, so a bad filter is a 422 rather than a failed job.
    Exporter::new(state.kontor.clone(), actor.clone(), spec.clone())
        .await
        .map_err(export_err)?
        .next_page()
        .await
        .map_err(export_err)?;
    let job = TrackedJob::start(
        state.kontor.store.clone(),
        "export",
        Some(entity.as_str()),
        &actor.user_id,
        &state.jobs.node_id,
    )
    .await?;
    let id = job.row().id;
    std::fs::create_dir_all(&desk.exports).map_err(io)?;
    let path = desk
        .exports
        .join(format!("{id}.{}", spec.format.extension()));
    let kontor = state.kontor.clone();
    let progress: Arc<dyn kontor_core::progress::Progress> = job.clone();
    job.clone().run(async move {
        let tmp = path.with_extension("part");
        let written = async {
            let mut file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
            let done =
                kontor_tabular::export::export(kontor, actor, spec, &mut file, progress.as_ref())
                    .await
                    .map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
            Ok::<_, String>(done)
        }
        .await;
        match written {
            Ok(done) => {
                Ok(json!({"rows": done.rows, "file": format!("/api/v1/exports/{id}/file")}))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e.into())
            }
        }
    });
    Ok(accepted(&job))
}

/// `GET /exports/{id}/file`: a finished export job's file.
pub async fn export_file(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let desk = desk(&state)?.clone();
    let id = check_id(&id)?;
    let row = match state.kontor.store.job(&id).await? {
        Some(row)
            if row.kind == "export" && (actor.is_admin() || row.created_by == actor.user_id) =>
        {
            row
        }
        _ => return Err(ApiError::NotFound(format!("no export {id}"))),
    };
    if row.state != "succeeded" {
        return Err(DomainError::State {
            field: None,
            message: format!("export {id} is {}", row.state),
        }
        .into());
    }
    for format in [ExportFormat::Csv, ExportFormat::Xlsx, ExportFormat::Jsonl] {
        let path = desk.exports.join(format!("{id}.{}", format.extension()));
        if let Ok(file) = tokio::fs::File::open(&path).await {
            let entity = row
                .subject
                .as_deref()
                .and_then(|s| s.parse::<Entity>().ok())
                .unwrap_or(Entity::Contacts);
            return Ok((
                attachment(entity, format),
                Body::from_stream(ReaderStream::new(file)),
            )
                .into_response());
        }
    }
    Err(ApiError::NotFound(format!(
        "export {id} was written on node {}; ask that node",
        row.node
    )))
}
