//! Talking to the server that holds a data directory, through its local socket
//! (`DATA/kontor.sock`, mode 0600): requests there act as the local administrator, or as the
//! user `--as` names.

use crate::CliError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::path::Path;

/// A request to the server on the data directory's local socket: status and body.
pub(crate) async fn local_request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
    as_user: &Option<String>,
) -> Result<(u16, hyper::body::Incoming), CliError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        CliError::Io(format!(
            "the data directory is in use by a server, and its socket {} does not answer: {e}",
            socket.display()
        ))
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(email) = as_user {
        req = req.header(kontor_server::extract::ACT_AS, email.as_str());
    }
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let req = req
        .body(Full::new(bytes))
        .map_err(|e| CliError::Io(format!("cannot build the request: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(&e))?;
    Ok((resp.status().as_u16(), resp.into_body()))
}

pub(crate) async fn body_json(body: hyper::body::Incoming) -> Result<Value, CliError> {
    let bytes = body
        .collect()
        .await
        .map_err(|e| CliError::Io(format!("the server's answer broke off: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Io(format!("the server's answer is not JSON: {e}")))
}

/// A refusal the server answered, as the CLI reports it.
pub(crate) fn refused(status: u16, body: &Value) -> CliError {
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("the server refused the request")
        .to_string();
    match status {
        404 => CliError::NotFound(message),
        401 | 403 | 409 | 422 => CliError::Usage(message),
        _ => CliError::Io(message),
    }
}
