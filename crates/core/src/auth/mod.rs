//! Authentication: argon2id password hashes (computed behind a bound, see [`password`]), bearer
//! tokens (only their BLAKE3 hash is stored, so a leaked database holds no usable token), login
//! rate limiting counted before the password is checked ([`limiter`]), and turning a token into
//! an [`Actor`] with its role and team. Password hashes live in the store's credentials, apart
//! from user records and the journal.

pub mod limiter;
pub mod password;

use crate::error::{CoreError, CoreResult};
use crate::Kontor;
use kontor_domain::permission::{Actor, Role};
use kontor_domain::record::Record;
use kontor_domain::time::{self, Timestamp};
use kontor_domain::{DomainError, Entity};
use kontor_store::{Condition, ListColumn, ListQuery, ListValue, Session, Store};
use rand::RngCore;
use serde_json::Value;
use std::time::Duration;

/// How long a login token stays valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn check_password_strength(password: &str) -> CoreResult<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("the password must have at least {MIN_PASSWORD_LEN} characters"),
        )
        .into());
    }
    if password.chars().count() > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("the password must have at most {MAX_PASSWORD_LEN} characters"),
        )
        .into());
    }
    Ok(())
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

fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The role whose users may use the 1C exchange (and only the exchange).
pub const EXCHANGE_ROLE: &str = "exchange";

/// How long a 1C exchange session (`mode=checkauth`) stays valid.
pub const EXCHANGE_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Only users of role `exchange` may use the 1C exchange: an API user, even an admin, may not.
pub fn require_exchange_role(actor: &Actor) -> CoreResult<()> {
    if actor.role.name == EXCHANGE_ROLE {
        Ok(())
    } else {
        Err(DomainError::forbidden(format!(
            "the 1C exchange needs a user of role {EXCHANGE_ROLE}; this user's role is {}",
            actor.role.name
        ))
        .into())
    }
}

pub struct LoginOk {
    pub token: String,
    pub user: Record,
    pub expires_at: Timestamp,
}

impl Kontor {
    /// Logs a user in from client address `client`: takes rate-limit slots first, then checks
    /// the password (behind the hashing bound), then issues a token. Roles without API login
    /// (the 1C exchange's) are refused.
    pub async fn login(&self, email: &str, password: &str, client: &str) -> CoreResult<LoginOk> {
        let (user, actor) = self.authenticate(email, password, client).await?;
        if !actor.role.api_login {
            return Err(DomainError::forbidden(format!(
                "role {} cannot log in to the API",
                actor.role.name
            ))
            .into());
        }
        self.open_session(user, "kt_", TOKEN_LIFETIME).await
    }

    /// Logs a 1C exchange user in (`mode=checkauth`): the same checks and rate limit as
    /// [`Kontor::login`], but only users of role [`EXCHANGE_ROLE`] pass, and the session
    /// token (`kx_…`) is good for the exchange only.
    pub async fn exchange_login(
        &self,
        login: &str,
        password: &str,
        client: &str,
    ) -> CoreResult<(Actor, LoginOk)> {
        let actor = self.exchange_actor(login, password, client).await?;
        let user = self
            .store
            .get(Entity::Users, &actor.user_id)
            .await?
            .ok_or_else(|| CoreError::Unauthorized("this account is deleted".into()))?;
        let ok = self
            .open_session(user, "kx_", EXCHANGE_TOKEN_LIFETIME)
            .await?;
        Ok((actor, ok))
    }

    /// The exchange user behind HTTP Basic credentials (rate limited like a login).
    pub async fn exchange_actor(
        &self,
        login: &str,
        password: &str,
        client: &str,
    ) -> CoreResult<Actor> {
        let (_, actor) = self.authenticate(login, password, client).await?;
        require_exchange_role(&actor)?;
        Ok(actor)
    }

    /// Checks an e-mail and password: rate-limit slots first, then the password (behind the
    /// hashing bound); a disabled account is refused.
    pub(crate) async fn authenticate(
        &self,
        email: &str,
        password: &str,
        client: &str,
    ) -> CoreResult<(Record, Actor)> {
        let store = self.store.as_ref();
        let attempt = self.limiter.begin(store, email, client).await?;
        let checked = self.check_credentials(email, password).await;
        let ok = matches!(checked, Ok(Some(_)));
        // An error (database, hashing) is not the caller's failure: give the slots back uncounted.
        let counted_ok = ok || checked.is_err();
        self.limiter.finish(store, attempt, counted_ok).await?;
        let Some(user) = checked? else {
            return Err(CoreError::Unauthorized("wrong e-mail or password".into()));
        };
        if user.data.get("disabled") == Some(&Value::Bool(true)) {
            return Err(DomainError::forbidden("this account is disabled").into());
        }
        let actor = actor_for_user(store, &user).await?;
        Ok((user, actor))
    }

    /// Issues a token (`prefix` + 64 hex digits) for `user`; only its hash is stored.
    pub(crate) async fn open_session(
        &self,
        user: Record,
        prefix: &str,
        lifetime: Duration,
    ) -> CoreResult<LoginOk> {
        let token = new_token(prefix);
        let now = time::now();
        let expires_at = now + chrono::Duration::from_std(lifetime).unwrap_or_default();
        self.store
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

    /// The live user with this e-mail and password, if they match.
    async fn check_credentials(&self, email: &str, password: &str) -> CoreResult<Option<Record>> {
        // No stored address has control characters; such an e-mail never reaches the database.
        let user = if email.chars().any(char::is_control) {
            None
        } else {
            self.store
                .find_unique(Entity::Users, "email", &email.trim().to_lowercase())
                .await?
        };
        let hash = match &user {
            Some(u) => self.store.password_hash(&u.id).await?,
            None => None,
        };
        let matched = if password.chars().count() > MAX_PASSWORD_LEN {
            false
        } else {
            self.hashing.verify(password, hash).await?
        };
        Ok(user.filter(|_| matched))
    }
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
                conditions: vec![Condition {
                    column: ListColumn::Field {
                        name: "team_id".into(),
                        kind: kontor_domain::listing::KeyKind::Text,
                    },
                    op: kontor_domain::listing::FilterOp::Eq,
                    value: Some(ListValue::Text(team.clone())),
                }],
                ..ListQuery::all(Entity::Users, None, 10_000)
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
