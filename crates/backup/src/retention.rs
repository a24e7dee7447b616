//! Retention of snapshots and journal segments: which archives to keep (the newest of each of
//! the last N days, ISO weeks and months that have one; pinned archives; the newest verified
//! archive; the newest archive), and which segments are no longer needed (those that end at or
//! before the oldest kept snapshot: no restore can start earlier).
//!
//! Deciding is a pure function of the listing ([`decide`]); [`plan`] adds the segments and
//! stale temporary files, and [`apply`] removes what the plan says, archives first, so a crash
//! half-way never leaves a kept snapshot without the segments after it.

use crate::error::BackupResult;
use crate::folder::{ArchiveFolder, StoredSnapshot};
use crate::storage::remove_if_there;
use crate::target::{BackupTarget, StoredSegment};
use chrono::{DateTime, Datelike, TimeZone};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

/// How many days, weeks and months keep their newest archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            daily: 7,
            weekly: 4,
            monthly: 12,
        }
    }
}

/// Why an archive is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Newest,
    Daily(String),
    Weekly(String),
    Monthly(String),
    Pinned,
    NewestVerified,
    /// Unreadable archives are never removed by retention: someone should look at them.
    Unreadable,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Newest => write!(f, "newest"),
            Reason::Daily(d) => write!(f, "daily {d}"),
            Reason::Weekly(w) => write!(f, "weekly {w}"),
            Reason::Monthly(m) => write!(f, "monthly {m}"),
            Reason::Pinned => write!(f, "pinned"),
            Reason::NewestVerified => write!(f, "newest verified"),
            Reason::Unreadable => write!(f, "unreadable (kept for inspection)"),
        }
    }
}

/// What retention does with one archive: kept for these reasons, or removed when none.
#[derive(Debug, Clone)]
pub struct Decision {
    pub snapshot: StoredSnapshot,
    pub keep: Vec<Reason>,
}

impl Decision {
    pub fn kept(&self) -> bool {
        !self.keep.is_empty()
    }
}

/// Decides for every archive (given oldest first), calendar periods taken in `tz`.
pub fn decide<Tz: TimeZone>(snapshots: &[StoredSnapshot], policy: Policy, tz: &Tz) -> Vec<Decision>
where
    Tz::Offset: fmt::Display,
{
    let mut decisions: Vec<Decision> = snapshots
        .iter()
        .map(|s| Decision {
            snapshot: s.clone(),
            keep: Vec::new(),
        })
        .collect();
    // Newest first, by creation time (names sort the same way; the time is the manifest's).
    let mut order: Vec<usize> = (0..decisions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(decisions[i].snapshot.created()));
    let (mut days, mut weeks, mut months) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut newest_seen = false;
    let mut verified_seen = false;
    for &i in &order {
        let d = &mut decisions[i];
        let Some(created) = d.snapshot.created() else {
            d.keep.push(Reason::Unreadable);
            continue;
        };
        if !newest_seen {
            newest_seen = true;
            d.keep.push(Reason::Newest);
        }
        let local: DateTime<Tz> = created.with_timezone(tz);
        let day = local.format("%Y-%m-%d").to_string();
        let iso = local.iso_week();
        let week = format!("{}-W{:02}", iso.year(), iso.week());
        let month = local.format("%Y-%m").to_string();
        if !days.contains(&day) && days.len() < policy.daily as usize {
            days.insert(day.clone());
            d.keep.push(Reason::Daily(day));
        }
        if !weeks.contains(&week) && weeks.len() < policy.weekly as usize {
            weeks.insert(week.clone());
            d.keep.push(Reason::Weekly(week));
        }
        if !months.contains(&month) && months.len() < policy.monthly as usize {
            months.insert(month.clone());
            d.keep.push(Reason::Monthly(month));
        }
        if d.snapshot.pin.is_some() {
            d.keep.push(Reason::Pinned);
        }
        if !verified_seen && d.snapshot.verified_ok() {
            verified_seen = true;
            d.keep.push(Reason::NewestVerified);
        }
    }
    decisions
}

/// Everything a prune would remove.
#[derive(Debug, Clone)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    /// Segments that end at or before the oldest kept snapshot.
    pub segments: Vec<StoredSegment>,
    /// The seq of the oldest kept snapshot (restores can start no earlier).
    pub oldest_kept_seq: Option<i64>,
    /// Temporary files of writers that died.
    pub stale: Vec<PathBuf>,
}

impl Plan {
    pub fn removed(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.kept())
    }

    /// Bytes the removed archives take.
    pub fn removed_bytes(&self) -> u64 {
        self.removed().map(|d| d.snapshot.bytes).sum()
    }
}

/// Plans the pruning of an archive folder, and of a target's journal when `target` is given.
pub fn plan(
    folder: &ArchiveFolder,
    target: Option<&BackupTarget>,
    policy: Policy,
) -> BackupResult<Plan> {
    let decisions = decide(&folder.archives()?, policy, &chrono::Local);
    let oldest_kept_seq = decisions
        .iter()
        .filter(|d| d.kept())
        .filter_map(|d| d.snapshot.manifest.as_ref().map(|m| m.seq))
        .min();
    let segments = match (target, oldest_kept_seq) {
        (Some(t), Some(oldest)) => t
            .segments()?
            .into_iter()
            .filter(|s| s.last_seq <= oldest)
            .collect(),
        // Without a readable kept snapshot every segment may still be needed.
        _ => Vec::new(),
    };
    let mut stale = folder.stale_partials()?;
    if let Some(t) = target {
        stale.extend(t.storage().stale_partials(crate::segment::JOURNAL_DIR)?);
    }
    Ok(Plan {
        decisions,
        segments,
        oldest_kept_seq,
        stale,
    })
}

/// Removes what `plan` says: archives, then segments, then stale temporary files.
pub fn apply(
    plan: &Plan,
    folder: &ArchiveFolder,
    target: Option<&BackupTarget>,
) -> BackupResult<()> {
    for d in plan.removed() {
        folder.remove(&d.snapshot.name)?;
    }
    if let Some(t) = target {
        for s in &plan.segments {
            t.remove_segment(s)?;
        }
    }
    for p in &plan.stale {
        remove_if_there(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::{Pin, Verification};
    use chrono::Utc;

    fn snap(at: &str, seq: i64) -> StoredSnapshot {
        let manifest: crate::format::Manifest = serde_json::from_value(serde_json::json!({
            "format": "kontor-archive", "format_version": 1, "kind": "snapshot",
            "kontor_version": "0", "schema_version": 1, "created_at": at,
            "source_engine": "sqlite", "seq": seq, "seq_at": null, "tables": {},
            "digest": "", "compression": "zstd", "encryption": null, "parts": []
        }))
        .unwrap();
        StoredSnapshot {
            name: at.to_string(),
            bytes: 10,
            manifest: Some(manifest),
            unreadable: None,
            verification: None,
            pin: None,
        }
    }

    fn kept(ds: &[Decision]) -> Vec<&str> {
        ds.iter()
            .filter(|d| d.kept())
            .map(|d| d.snapshot.name.as_str())
            .collect()
    }

    #[test]
    fn the_newest_of_each_day_week_and_month_is_kept() {
        // Two a day for 60 days, from 2026-09-01.
        let mut snaps = Vec::new();
        for day in 0..60 {
            for hour in [9, 23] {
                let t = Utc.with_ymd_and_hms(2026, 9, 1, hour, 0, 0).unwrap()
                    + chrono::Duration::days(day);
                snaps.push(snap(&t.to_rfc3339(), day * 2 + i64::from(hour > 9)));
            }
        }
        let ds = decide(&snaps, Policy::default(), &Utc);
        let k = kept(&ds);
        assert!(k.contains(&"2026-10-30T23:00:00+00:00"), "{k:?}");
        assert!(k.contains(&"2026-10-24T23:00:00+00:00"), "{k:?}");
        assert!(
            !k.contains(&"2026-10-24T09:00:00+00:00"),
            "only the newest of a day"
        );
        assert!(
            k.contains(&"2026-09-30T23:00:00+00:00"),
            "September's newest: {k:?}"
        );
        let days = ds
            .iter()
            .filter(|d| d.keep.iter().any(|r| matches!(r, Reason::Daily(_))))
            .count();
        let weeks = ds
            .iter()
            .filter(|d| d.keep.iter().any(|r| matches!(r, Reason::Weekly(_))))
            .count();
        let months = ds
            .iter()
            .filter(|d| d.keep.iter().any(|r| matches!(r, Reason::Monthly(_))))
            .count();
        assert_eq!((days, weeks, months), (7, 4, 2));
        // Days Oct 24..30; weeks: Oct 30 and Sunday Oct 25 (both among the days), Oct 18, 11;
        // months: Oct 30 (a day) and Sept 30.
        assert_eq!(k.len(), 7 + 2 + 1, "{k:?}");
    }

    #[test]
    fn pinned_newest_verified_and_unreadable_are_never_removed() {
        let mut snaps: Vec<StoredSnapshot> = (1..=5)
            .map(|d| snap(&format!("2026-11-0{d}T10:00:00+00:00"), d))
            .collect();
        snaps[0].pin = Some(Pin {
            at: String::new(),
            by: "admin".into(),
            note: Some("before the upgrade".into()),
        });
        snaps[1].verification = Some(Verification {
            ok: true,
            at: String::new(),
            seconds: 1.0,
            error: None,
        });
        snaps[4].verification = Some(Verification {
            ok: false,
            at: String::new(),
            seconds: 1.0,
            error: Some("x".into()),
        });
        snaps[2].manifest = None;
        let policy = Policy {
            daily: 1,
            weekly: 0,
            monthly: 0,
        };
        let ds = decide(&snaps, policy, &Utc);
        let reasons: Vec<Vec<Reason>> = ds.iter().map(|d| d.keep.clone()).collect();
        assert_eq!(reasons[0], vec![Reason::Pinned]);
        assert_eq!(reasons[1], vec![Reason::NewestVerified]);
        assert_eq!(reasons[2], vec![Reason::Unreadable]);
        assert!(reasons[3].is_empty(), "removed");
        assert_eq!(
            reasons[4],
            vec![Reason::Newest, Reason::Daily("2026-11-05".into())]
        );
    }
}
