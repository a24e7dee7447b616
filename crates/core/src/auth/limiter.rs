//! Login rate limiting that holds under concurrency and across nodes. An attempt takes a slot
//! for its account key and its client-address key *before* the password is checked, with one
//! atomic upsert per key in the database; the slot is given back when the check ends, counted
//! as a failure or not. A key has `limit` slots per window, shared by failed attempts and those
//! still being checked, so 30 parallel guesses for one account get at most `limit` checks and
//! the rest 429. Correct logins give their slot back uncounted, so they never use up a budget.
//!
//! When a key's slots are held only by attempts still in flight (not by failures), a new
//! attempt waits briefly for one to come back rather than being refused: a burst of correct
//! logins from one office waits its turn instead of failing. A slot given back on this node
//! wakes the waiters at once; slots held on other nodes are polled for.

use crate::error::{CoreError, CoreResult};
use kontor_domain::time;
use kontor_store::Store;
use std::time::{Duration, Instant};

/// Limits per window.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failed (or in-flight) attempts per account per window.
    pub per_account: u32,
    /// Failed (or in-flight) attempts per client address per window, over all accounts.
    pub per_address: u32,
    pub window: Duration,
    /// How long an attempt waits for a slot held only by attempts in flight.
    pub max_wait: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(300),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Slots held by one login attempt; give them back with [`LoginLimiter::finish`].
#[must_use]
pub struct Attempt {
    account: String,
    address: String,
}

pub struct LoginLimiter {
    pub limits: LoginLimits,
    /// Signalled whenever this node gives slots back.
    released: tokio::sync::Notify,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter {
            limits,
            released: tokio::sync::Notify::new(),
        }
    }

    /// Takes a slot for the account and one for the client address, or refuses with
    /// [`CoreError::RateLimited`] (or [`CoreError::Busy`] after waiting too long).
    pub async fn begin(&self, store: &dyn Store, email: &str, client: &str) -> CoreResult<Attempt> {
        // Keys are hashed: the table holds no e-mail or IP addresses.
        let attempt = Attempt {
            account: super::token_hash(&format!("email:{}", email.trim().to_lowercase())),
            address: super::token_hash(&format!("client:{client}")),
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            // Registered before asking, so a slot given back in between is not missed.
            let released = self.released.notified();
            match self.reserve_both(store, &attempt).await? {
                Slot::Granted => return Ok(attempt),
                Slot::Exhausted(wait) => return Err(CoreError::RateLimited { retry_after: wait }),
                Slot::InFlight if started.elapsed() >= self.limits.max_wait => {
                    return Err(CoreError::Busy {
                        retry_after: Duration::from_secs(1),
                    })
                }
                Slot::InFlight => {
                    tokio::select! {
                        _ = released => {}
                        _ = tokio::time::sleep(pause) => {
                            pause = (pause * 2).min(Duration::from_millis(200));
                        }
                    }
                }
            }
        }
    }

    /// Gives the slots back. A failed attempt counts against both keys; a successful one clears
    /// the account's failures (the address keeps its count, so one good account does not reset
    /// an attacker's budget for the others).
    pub async fn finish(&self, store: &dyn Store, attempt: Attempt, ok: bool) -> CoreResult<()> {
        let given_back = store
            .finish_login_attempts(&[(attempt.account, !ok, ok), (attempt.address, !ok, false)])
            .await;
        self.released.notify_waiters();
        Ok(given_back?)
    }

    /// Forgets keys idle for more than a window (run by the retention job).
    pub async fn prune(&self, store: &dyn Store) -> CoreResult<u64> {
        let before =
            time::now() - chrono::Duration::from_std(self.limits.window * 2).unwrap_or_default();
        Ok(store.prune_login_limits(before).await?)
    }

    /// Both slots, or neither (the store gives back an account slot when the address is refused).
    async fn reserve_both(&self, store: &dyn Store, attempt: &Attempt) -> CoreResult<Slot> {
        let now = time::now();
        let window = chrono::Duration::from_std(self.limits.window).unwrap_or_default();
        let limits = [self.limits.per_account, self.limits.per_address];
        let slots = store
            .reserve_login_slots(
                &[
                    (attempt.account.clone(), limits[0]),
                    (attempt.address.clone(), limits[1]),
                ],
                now,
                now - window,
            )
            .await?;
        let Some((slot, limit)) = slots.iter().zip(limits).find(|(s, _)| !s.granted) else {
            return Ok(Slot::Granted);
        };
        if slot.failures >= i64::from(limit) {
            let ends = slot.window_start + window;
            let wait = (ends - now).to_std().unwrap_or_default() + Duration::from_secs(1);
            return Ok(Slot::Exhausted(wait));
        }
        Ok(Slot::InFlight)
    }
}

enum Slot {
    Granted,
    /// The key's failures used up the window; it ends after this long.
    Exhausted(Duration),
    /// Every free slot is held by an attempt still being checked.
    InFlight,
}
