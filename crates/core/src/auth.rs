//! Authentication: argon2id password hashes, bearer tokens (only their BLAKE3 hash is stored, so a
//! leaked database holds no usable token), login rate limiting, and turning a token into an
//! [`Actor`] with its role and team.

use crate::error::{CoreError, CoreResult};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use kontor_domain::permission::{Actor, OwnerFilter, Role};
use kontor_domain::record::Record;
use kontor_domain::time::{self, Timestamp};
use kontor_domain::{DomainError, Entity};
use kontor_store::{FilterValue, ListQuery, Session, Store};
use rand::RngCore;
use serde_json::Value;
use std::time::Duration;

/// How long a login token stays valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed logins allowed per e-mail address (and, times four, per client address) per window.
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);
pub const MIN_PASSWORD_LEN: usize = 8;

pub fn hash_password(password: &str) -> CoreResult<String> {
    check_password_strength(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Store(kontor_store::StoreError::Other(format!("argon2: {e}"))))
}

pub fn check_password_strength(password: &str) -> CoreResult<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("the password must have at least {MIN_PASSWORD_LEN} characters"),
        )
        .into());
    }
    if password.len() > 1024 {
        return Err(DomainError::invalid("password", "the password is too long").into());
    }
    Ok(())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random password for generated admin accounts: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("kt_{}", hex::encode(bytes))
}

/// Counts failed logins per key in a sliding window, in the database, so every node of a
/// cluster counts the same failures and a restart forgets nothing.
#[derive(Default)]
pub struct LoginLimiter;

impl LoginLimiter {
    /// `Some(wait)` if `key` has used up its failures.
    async fn blocked(
        &self,
        store: &dyn Store,
        key: &str,
        limit: u32,
    ) -> CoreResult<Option<Duration>> {
        let now = time::now();
        let since = now - chrono::Duration::from_std(FAILURE_WINDOW).unwrap_or_default();
        let (count, oldest) = store.login_failures(key, since).await?;
        if count < i64::from(limit) {
            return Ok(None);
        }
        let elapsed = oldest
            .map(|o| (now - o).to_std().unwrap_or_default())
            .unwrap_or_default();
        Ok(Some(
            FAILURE_WINDOW.saturating_sub(elapsed) + Duration::from_secs(1),
        ))
    }

    async fn fail(&self, store: &dyn Store, keys: &[String]) -> CoreResult<()> {
        let now = time::now();
        let since = now - chrono::Duration::from_std(FAILURE_WINDOW).unwrap_or_default();
        Ok(store.add_login_failure(keys, now, since).await?)
    }

    async fn clear(&self, store: &dyn Store, key: &str) -> CoreResult<()> {
        Ok(store.clear_login_failures(key).await?)
    }
}

/// A hash to verify against when the user does not exist, so timing does not tell.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"not a real password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

pub struct LoginOk {
    pub token: String,
    pub user: Record,
    pub expires_at: Timestamp,
}

pub async fn login(
    store: &dyn Store,
    limiter: &LoginLimiter,
    email: &str,
    password: &str,
    client: &str,
) -> CoreResult<LoginOk> {
    // Keys are hashed: the table of failures holds no e-mail addresses.
    let email_key = token_hash(&format!("email:{}", email.trim().to_lowercase()));
    let client_key = token_hash(&format!("client:{client}"));
    let wait = match limiter.blocked(store, &email_key, MAX_FAILURES).await? {
        Some(w) => Some(w),
        None => {
            limiter
                .blocked(store, &client_key, MAX_FAILURES * 4)
                .await?
        }
    };
    if let Some(wait) = wait {
        return Err(CoreError::RateLimited { retry_after: wait });
    }
    let user = store
        .find_unique(Entity::Users, "email", &email.trim().to_lowercase())
        .await?;
    let hash = user
        .as_ref()
        .and_then(|u| u.data.get("password_hash"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let password = password.to_string();
    let checked = hash.clone().unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &checked))
        .await
        .unwrap_or(false)
        && hash.is_some();
    let Some(user) = user.filter(|_| ok) else {
        limiter.fail(store, &[email_key, client_key]).await?;
        return Err(CoreError::Unauthorized("wrong e-mail or password".into()));
    };
    limiter.clear(store, &email_key).await?;
    if user.data.get("disabled") == Some(&Value::Bool(true)) {
        return Err(DomainError::forbidden("this account is disabled").into());
    }
    let actor = actor_for_user(store, &user).await?;
    if !actor.role.api_login {
        return Err(DomainError::forbidden(format!(
            "role {} cannot log in to the API",
            actor.role.name
        ))
        .into());
    }
    let token = new_token();
    let now = time::now();
    let expires_at = now + chrono::Duration::from_std(TOKEN_LIFETIME).unwrap_or_default();
    store
        .create_session(&Session {
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(LoginOk {
        token,
        user,
        expires_at,
    })
}

pub async fn resolve_role(store: &dyn Store, name: &str) -> CoreResult<Role> {
    if let Some(r) = Role::builtin(name) {
        return Ok(r);
    }
    match store
        .find_unique(Entity::Roles, "name", &name.to_lowercase())
        .await?
    {
        Some(rec) => Ok(Role::from_record_data(&rec.data)?),
        // A user whose role vanished gets no rights rather than an error on every request.
        None => Ok(Role {
            name: name.to_string(),
            admin: false,
            api_login: true,
            scopes: Default::default(),
            hidden: Default::default(),
            readonly: Default::default(),
        }),
    }
}

/// The actor behind a bearer token, or `Unauthorized`.
pub async fn actor_for_token(store: &dyn Store, token: &str) -> CoreResult<Actor> {
    let session = store
        .session(&token_hash(token), time::now())
        .await?
        .ok_or_else(|| {
            CoreError::Unauthorized("the token is unknown, expired or revoked; log in again".into())
        })?;
    let user = store
        .get(Entity::Users, &session.user_id)
        .await?
        .filter(|u| !u.is_deleted() && u.data.get("disabled") != Some(&Value::Bool(true)))
        .ok_or_else(|| CoreError::Unauthorized("this account is disabled or deleted".into()))?;
    actor_for_user(store, &user).await
}

pub async fn actor_for_user(store: &dyn Store, user: &Record) -> CoreResult<Actor> {
    let role_name = user
        .data
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let role = resolve_role(store, role_name).await?;
    let team_id = user
        .data
        .get("team_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut team_members = vec![user.id.clone()];
    if let Some(team) = &team_id {
        let members = store
            .list(&ListQuery {
                entity: Entity::Users,
                owners: OwnerFilter::Any,
                filters: vec![("team_id".into(), FilterValue::Text(team.clone()))],
                text: None,
                after_id: None,
                descending: false,
                limit: 10_000,
            })
            .await?;
        team_members.extend(
            members
                .into_iter()
                .map(|m| m.id)
                .filter(|id| id != &user.id),
        );
    }
    Ok(Actor {
        user_id: user.id.clone(),
        role,
        team_id,
        team_members,
    })
}
