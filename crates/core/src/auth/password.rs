//! Password hashing behind a bound. Each argon2id hash needs its parameter's worth of memory
//! (19 MiB by default); hashing runs on at most `permits` blocking threads at once, each with
//! a memory buffer taken from a small pool and given back after use, so any number of
//! concurrent logins costs at most `permits` buffers. Requests beyond that wait for a permit
//! for a short while, then get [`CoreError::Busy`] (HTTP 503 with `Retry-After`). When no hash
//! has run for [`IDLE_RELEASE`], the buffers are freed, so memory returns after a burst.

use crate::error::{CoreError, CoreResult};
use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Hashes with memory costs above this (in KiB) are refused rather than computed: a stored
/// hash is ours, but a bound keeps one bad row from taking the machine's memory.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// How long the hashing buffers outlive the last hash.
pub const IDLE_RELEASE: Duration = Duration::from_secs(5);

/// The bounded hasher the core uses for every password hash and check.
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Hashes running or waiting for a permit.
    active: Arc<AtomicUsize>,
    /// Counts hashes started, so an idle release can tell that none came since.
    started: Arc<AtomicU64>,
    max_wait: Duration,
    /// A hash of a password nobody has, checked when the e-mail is unknown so the answer
    /// takes as long as for a real account.
    dummy: String,
}

impl PasswordHashing {
    /// `permits` hashes at once (at least one); callers wait at most `max_wait` for a permit.
    pub fn new(permits: usize, max_wait: Duration) -> PasswordHashing {
        let dummy = Argon2::default()
            .hash_password(b"not a real password", &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
            .unwrap_or_default();
        PasswordHashing {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            pool: Arc::new(Mutex::new(Vec::new())),
            active: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(AtomicU64::new(0)),
            max_wait,
            dummy,
        }
    }

    /// As many permits as the machine has cores, at most four.
    pub fn for_this_machine() -> PasswordHashing {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        PasswordHashing::new(cores.min(4), Duration::from_secs(10))
    }

    /// Hashes a new password (argon2id, default parameters, random salt) as a PHC string.
    pub async fn hash(&self, password: &str) -> CoreResult<String> {
        let password = password.as_bytes().to_vec();
        self.run(move |memory| {
            let salt = SaltString::generate(&mut OsRng);
            let argon = Argon2::default();
            let mut salt_bytes = [0u8; 64];
            let salt_raw = salt
                .decode_b64(&mut salt_bytes)
                .map_err(|e| e.to_string())?;
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            hash_into(&argon, &password, salt_raw, &mut out, memory)?;
            let output = Output::new(&out).map_err(|e| e.to_string())?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: argon2::password_hash::ParamsString::try_from(argon.params())
                    .map_err(|e| e.to_string())?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `password` matches the stored PHC string; `None` checks a dummy hash (and
    /// answers false) so unknown accounts take as long as known ones.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> CoreResult<bool> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        let password = password.as_bytes().to_vec();
        let matched = self
            .run(move |memory| Ok(verify_with(&password, &phc, memory)))
            .await?;
        Ok(matched && known)
    }

    /// Runs `work` on a blocking thread with a pooled memory buffer, under a permit.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, String> + Send + 'static,
    ) -> CoreResult<T> {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        let result = self.run_bounded(work).await;
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last hash to end need not be the last to start: idle means no hash started
            // after this moment, whichever ended last.
            self.release_when_idle(self.started.load(Ordering::SeqCst));
        }
        result
    }

    /// Frees the pooled buffers once no hash has started for [`IDLE_RELEASE`].
    fn release_when_idle(&self, last: u64) {
        let (pool, active, started) =
            (self.pool.clone(), self.active.clone(), self.started.clone());
        tokio::spawn(async move {
            tokio::time::sleep(IDLE_RELEASE).await;
            if active.load(Ordering::SeqCst) == 0 && started.load(Ordering::SeqCst) == last {
                pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
                give_freed_memory_back();
            }
        });
    }

    async fn run_bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, String> + Send + 'static,
    ) -> CoreResult<T> {
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| CoreError::Busy {
                retry_after: Duration::from_secs(1),
            })?
            .map_err(|_| CoreError::Busy {
                retry_after: Duration::from_secs(1),
            })?;
        let pool = self.pool.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut memory = pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let result = work(&mut memory);
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(memory);
            drop(permit);
            result
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CoreError::Store(kontor_store::StoreError::Other(format!(
                "password hashing: {e}"
            )))),
            Err(e) => Err(CoreError::Store(kontor_store::StoreError::Other(format!(
                "password hashing thread: {e}"
            )))),
        }
    }
}

/// Asks the allocator to return freed memory to the operating system. glibc keeps freed chunks
/// in its arenas otherwise (which is how a burst of logins used to leave the process at its
/// peak); other allocators return large blocks by themselves.
fn give_freed_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Computes an argon2 hash into `out`, growing the pooled `memory` only when a hash needs more
/// blocks than any before it.
fn hash_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), String> {
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC string in constant time; any malformed hash is a mismatch.
fn verify_with(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.hash,
        hash.salt,
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if hash_into(&argon, password, salt_raw, &mut out, memory).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_reference_verifier() {
        let h = PasswordHashing::new(1, Duration::from_secs(5));
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("correct horse", Some(phc.clone())).await.unwrap());
        assert!(!h.verify("wrong horse", Some(phc.clone())).await.unwrap());
        assert!(!h.verify("correct horse", None).await.unwrap());
        assert!(!h.verify("x", Some("not a hash".into())).await.unwrap());
        // The crate's own verifier agrees, both ways.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let theirs = Argon2::default()
            .hash_password(b"abc12345", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(h.verify("abc12345", Some(theirs)).await.unwrap());
    }

    #[tokio::test]
    async fn a_caller_beyond_the_bound_waits_then_is_told_to_come_back() {
        let h = PasswordHashing::new(1, Duration::from_millis(50));
        let permit = h.permits.clone().acquire_owned().await.unwrap();
        let err = h.hash("some password").await.unwrap_err();
        assert!(matches!(err, CoreError::Busy { .. }), "{err:?}");
        drop(permit);
        assert!(h.hash("some password").await.is_ok());
    }
}
