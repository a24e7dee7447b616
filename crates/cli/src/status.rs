//! `kontor status`: where this Kontor and its data stand, read without migrating, locking or
//! disturbing a running server — the Kontor version, the schema's version and the migrations
//! this Kontor would apply, the data's size, the journal's head and the backups' state.

use crate::config::FileConfig;
use crate::{CliError, DataArg};
use kontor_backup::target::BackupTarget;
use kontor_core::datadir::{CONFIG_FILE, DB_FILE};
use kontor_store::postgres::{redact_url, PgStore};
use kontor_store::sqlite::SqliteStore;
use kontor_store::Inspection;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    data: DataArg,
    /// The backup target to report on (default: `[backup] target` in kontor.toml).
    #[arg(long)]
    backup_to: Option<std::path::PathBuf>,
    /// Print the status as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: StatusArgs) -> Result<(), CliError> {
    let file = FileConfig::load(&args.data.data.join(CONFIG_FILE)).map_err(CliError::Usage)?;
    let url = args.data.database.clone().or_else(|| file.database.clone());
    let (database, inspection) = match &url {
        Some(url) => (
            format!("PostgreSQL {}", redact_url(url)),
            PgStore::inspect(url).await?,
        ),
        None => {
            let path = args.data.data.join(DB_FILE);
            if !path.exists() {
                return Err(CliError::NotFound(format!(
                    "no Kontor database at {} (start `kontor serve` or run `kontor init`)",
                    path.display()
                )));
            }
            (
                format!("SQLite {}", path.display()),
                SqliteStore::inspect(&path).await?,
            )
        }
    };
    let backups = match args
        .backup_to
        .or_else(|| file.backup.and_then(|b| b.target))
    {
        Some(target) => backup_state(&target),
        None => json!({"configured": false}),
    };
    let report = json!({
        "kontor_version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "schema": inspection.migrations,
        "bytes": inspection.bytes,
        "journal_seq": inspection.journal_seq,
        "backups": backups,
    });
    if args.json {
        println!("{report}");
    } else {
        print_human(&inspection, &report);
    }
    // A database this Kontor must not open is a failed status (the message says why).
    let engine = if url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    match inspection.migrations.refusal(engine) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The backup target's state: who ships to it and how far behind, the newest verified
/// snapshot. A target that cannot be read is reported, not fatal.
fn backup_state(target: &std::path::Path) -> Value {
    let read = || -> Result<Value, kontor_backup::BackupError> {
        let t = BackupTarget::open(target)?;
        let now = chrono::Utc::now().timestamp_millis();
        let writer = t.writer_state()?.map(|w| {
            let behind = (w.source_seq - w.shipped_seq).max(0);
            let lag = if behind == 0 {
                0.0
            } else {
                (w.source_at - w.shipped_at).max(0) as f64 / 1e6
            };
            json!({
                "running": !w.stopped && !w.is_stale(now),
                "shipped_seq": w.shipped_seq,
                "lag_entries": behind,
                "lag_seconds": lag,
                "last_error": w.last_error,
            })
        });
        let snapshots = t.snapshots()?;
        let verified = snapshots.iter().rev().find(|s| s.verified_ok()).map(|s| {
            json!({
                "name": s.name,
                "seq": s.manifest.as_ref().map(|m| m.seq),
                "verified_at": s.verification.as_ref().map(|v| v.at.clone()),
            })
        });
        let failed = snapshots
            .iter()
            .filter(|s| s.verification.as_ref().is_some_and(|v| !v.ok))
            .count();
        Ok(json!({
            "configured": true,
            "target": target.display().to_string(),
            "shipping": writer,
            "snapshots": snapshots.len(),
            "newest_verified": verified,
            "failed_verifications": failed,
        }))
    };
    read().unwrap_or_else(|e| {
        json!({"configured": true, "target": target.display().to_string(), "error": e.to_string()})
    })
}

fn print_human(i: &Inspection, report: &Value) {
    let m = &i.migrations;
    println!("kontor:      {}", env!("CARGO_PKG_VERSION"));
    println!("database:    {}", report["database"].as_str().unwrap_or(""));
    let schema = if !m.unknown.is_empty() {
        format!(
            "version {} — NEWER than this Kontor knows ({}); run the newer Kontor",
            m.schema_version, m.current_version
        )
    } else if !m.edited.is_empty() {
        format!(
            "version {} — migration(s) {:?} recorded differently from this Kontor's",
            m.schema_version, m.edited
        )
    } else if m.pending.is_empty() {
        format!("version {}, up to date", m.schema_version)
    } else {
        format!(
            "version {}; {} pending ({}) — `kontor upgrade --rehearse`, then `kontor upgrade`",
            m.schema_version,
            m.pending.len(),
            m.pending
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    println!("schema:      {schema}");
    println!("data size:   {}", human_bytes(i.bytes));
    println!("journal:     seq {}", i.journal_seq);
    let b = &report["backups"];
    if b["configured"] != true {
        println!("backups:     not configured ([backup] target in kontor.toml)");
    } else if let Some(e) = b["error"].as_str() {
        println!(
            "backups:     {} — cannot be read: {e}",
            b["target"].as_str().unwrap_or("")
        );
    } else {
        println!("backups:     {}", b["target"].as_str().unwrap_or(""));
        match b["shipping"].as_object() {
            Some(s) => println!(
                "  shipping:  {} — {} entries, {:.1} s behind{}",
                if s["running"] == true {
                    "running"
                } else {
                    "not running"
                },
                s["lag_entries"],
                s["lag_seconds"].as_f64().unwrap_or(0.0),
                s["last_error"]
                    .as_str()
                    .map(|e| format!("; last failure: {e}"))
                    .unwrap_or_default()
            ),
            None => println!("  shipping:  nothing shipped yet"),
        }
        match b["newest_verified"].as_object() {
            Some(v) => println!(
                "  verified:  {} (seq {}) at {}",
                v["name"].as_str().unwrap_or(""),
                v["seq"],
                v["verified_at"].as_str().unwrap_or("")
            ),
            None => println!("  verified:  no snapshot verified yet"),
        }
        if b["failed_verifications"].as_u64().unwrap_or(0) > 0 {
            println!("  FAILED verifications: {}", b["failed_verifications"]);
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
