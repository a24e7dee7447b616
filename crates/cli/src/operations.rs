//! `kontor maintenance on|off|status` and `kontor shutdown`: the running server's
//! maintenance mode and announced shutdown, asked through its local socket as the local
//! administrator (or as the user `--as` names; only admins may). Maintenance also works with
//! no server running: the freeze is then written to the database, where every node that
//! starts on it finds it.

use crate::local::{body_json, local_request, refused};
use crate::{CliError, DataArg};
use kontor_core::datadir::{DataDirError, SOCKET_FILE};
use kontor_store::{ReadOnly, ReadOnlyReason, Scope};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub(crate) struct MaintenanceArgs {
    /// `on`, `off` or `status`.
    #[arg(value_parser = ["on", "off", "status"])]
    switch: String,
    #[command(flatten)]
    data: DataArg,
    /// What users are told while writes are refused.
    #[arg(long)]
    message: Option<String>,
    /// Seconds refused writers are told to wait (`Retry-After`; default 60).
    #[arg(long)]
    retry_after: Option<u32>,
    /// Act as this user of the running server (default: the local administrator).
    #[arg(long = "as")]
    as_user: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("when").args(["at", "in_", "cancel", "status"])))]
pub(crate) struct ShutdownArgs {
    #[command(flatten)]
    data: DataArg,
    /// When: an RFC 3339 time (2026-12-07T18:00:00+03:00).
    #[arg(long)]
    at: Option<String>,
    /// When: after this long (90s, 15m, 1h30m). Without --at or --in: now.
    #[arg(long = "in", id = "in_")]
    in_: Option<String>,
    /// What users are told, on every page and in the API's announcements.
    #[arg(long)]
    message: Option<String>,
    /// Cancel the scheduled shutdown.
    #[arg(long)]
    cancel: bool,
    /// Show the scheduled shutdown.
    #[arg(long)]
    status: bool,
    /// Act as this user of the running server (default: the local administrator).
    #[arg(long = "as")]
    as_user: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

/// A duration as people write it: `90`, `90s`, `15m`, `1h30m`, `2h`.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("'{text}' is not a duration (e.g. 90s, 15m, 1h30m)");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(secs);
    }
    let (mut total, mut number) = (0u64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Whether a server holds the data directory (so the request goes through its socket).
async fn server_holds(data: &DataArg) -> Result<Option<crate::Target>, CliError> {
    match crate::Target::open(data, false).await {
        Ok(target) => Ok(Some(target)),
        Err(CliError::DataDir(DataDirError::Locked { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One request to the running server; its JSON answer, or its refusal as an error.
async fn ask(
    data: &DataArg,
    method: &str,
    path: &str,
    body: Option<Value>,
    as_user: &Option<String>,
) -> Result<Value, CliError> {
    let socket = data.data.join(SOCKET_FILE);
    let (status, answer) = local_request(&socket, method, path, body, as_user).await?;
    let answer = body_json(answer).await?;
    if status >= 400 {
        return Err(refused(status, &answer));
    }
    Ok(answer)
}

fn print_state(state: &Value, json: bool) {
    if json {
        println!("{state}");
        return;
    }
    if state["read_only"].as_bool() == Some(true) {
        let message = state["message"].as_str().unwrap_or_default();
        println!(
            "read-only ({}) since {}{}",
            state["reason"].as_str().unwrap_or("?"),
            state["since"].as_str().unwrap_or("?"),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        );
    } else {
        println!("writes are open (no maintenance)");
    }
}

pub(crate) async fn maintenance(args: MaintenanceArgs) -> Result<(), CliError> {
    let on = match args.switch.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    };
    let state = match server_holds(&args.data).await? {
        None => match on {
            None => {
                ask(
                    &args.data,
                    "GET",
                    "/api/v1/admin/maintenance",
                    None,
                    &args.as_user,
                )
                .await?
            }
            Some(on) => {
                let mut body = json!({"on": on, "message": args.message});
                if let Some(r) = args.retry_after {
                    body["retry_after_seconds"] = json!(r);
                }
                ask(
                    &args.data,
                    "PUT",
                    "/api/v1/admin/maintenance",
                    Some(body),
                    &args.as_user,
                )
                .await?
            }
        },
        // No server: the freeze goes into the database itself.
        Some(target) => {
            let store = target.kontor.store.clone();
            let result = async {
                if let Some(on) = on {
                    let current = store.read_only().await?;
                    if let Some(c) = current.filter(|c| c.reason == ReadOnlyReason::Upgrade) {
                        return Err(CliError::Usage(format!("the data is frozen by an upgrade: {}", c.describe())));
                    }
                    let wanted = on.then(|| {
                        ReadOnly::new(
                            ReadOnlyReason::Maintenance,
                            args.message.as_deref().unwrap_or_default(),
                            "local administrator",
                            args.retry_after.unwrap_or(kontor_server::lifecycle::MAINTENANCE_RETRY_SECS),
                        )
                    });
                    store.set_read_only(Scope::Database, wanted).await?;
                }
                let now = store.read_only().await?;
                Ok(match now {
                    None => json!({"read_only": false}),
                    Some(r) => json!({"read_only": true, "reason": r.reason.as_str(), "message": r.message,
                        "since": kontor_domain::time::format(r.since), "retry_after_seconds": r.retry_after_secs, "by": r.by}),
                })
            }
            .await;
            target.close().await;
            result?
        }
    };
    print_state(&state, args.json);
    Ok(())
}

pub(crate) async fn shutdown(args: ShutdownArgs) -> Result<(), CliError> {
    if let Some(target) = server_holds(&args.data).await? {
        target.close().await;
        return Err(CliError::Usage(format!(
            "no server is running on {}: nothing to shut down",
            args.data.data.display()
        )));
    }
    let answer = if args.status {
        ask(
            &args.data,
            "GET",
            "/api/v1/admin/shutdown",
            None,
            &args.as_user,
        )
        .await?
    } else if args.cancel {
        ask(
            &args.data,
            "DELETE",
            "/api/v1/admin/shutdown",
            None,
            &args.as_user,
        )
        .await?
    } else {
        let mut body = json!({"message": args.message});
        match (&args.at, &args.in_) {
            (Some(at), _) => body["at"] = json!(at),
            (None, Some(d)) => {
                body["in_seconds"] = json!(parse_duration(d).map_err(CliError::Usage)?)
            }
            (None, None) => body["in_seconds"] = json!(0),
        }
        ask(
            &args.data,
            "POST",
            "/api/v1/admin/shutdown",
            Some(body),
            &args.as_user,
        )
        .await?
    };
    if args.json {
        println!("{answer}");
    } else if args.cancel {
        match answer["cancelled"].as_str() {
            Some(job) => println!("shutdown cancelled (job {job})"),
            None => println!("no shutdown was scheduled"),
        }
    } else if answer["scheduled"].as_bool() == Some(true) {
        println!(
            "shutdown at {} (in {} s){}",
            answer["at"].as_str().unwrap_or("?"),
            answer["seconds_left"],
            answer["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    } else {
        println!("no shutdown is scheduled");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_as_people_write_them() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("15m3").is_err());
    }
}
