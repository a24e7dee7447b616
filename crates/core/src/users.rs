//! User administration shared by the CLI and the API: creating users with a password, changing
//! passwords, disabling. Users are records like any other, so all of this is journaled; the
//! password hash itself is a credential, stored apart and never journaled (the user record
//! shows `password_changed_at`).

use crate::auth::check_password_strength;
use crate::error::CoreResult;
use crate::write::{Applied, Mutation};
use crate::Kontor;
use kontor_domain::journal::Origin;
use kontor_domain::permission::Actor;
use kontor_domain::record::Record;
use kontor_domain::{DomainError, Entity};
use serde_json::{json, Map, Value};

impl Kontor {
    /// Creates a user. `fields` holds e-mail, name, role, team_id; the password is hashed here.
    pub async fn add_user(
        &self,
        actor: &Actor,
        origin: Origin,
        fields: Map<String, Value>,
        password: &str,
    ) -> CoreResult<Record> {
        refuse_credential_fields(&fields)?;
        check_password_strength(password)?;
        let password_hash = self.hashing.hash(password).await?;
        let applied = self
            .write_users(
                actor,
                origin,
                vec![Mutation::CreateUser {
                    input: Value::Object(fields),
                    password_hash,
                }],
            )
            .await?;
        first_record(applied)
    }

    /// Updates a user's fields and, when given, password, in one batch. A password change or
    /// disabling the account revokes its tokens.
    pub async fn update_user(
        &self,
        actor: &Actor,
        origin: Origin,
        id: &str,
        fields: Map<String, Value>,
        password: Option<&str>,
    ) -> CoreResult<Record> {
        refuse_credential_fields(&fields)?;
        let revoke = password.is_some() || fields.get("disabled") == Some(&Value::Bool(true));
        let mut mutations = Vec::new();
        if !fields.is_empty() || password.is_none() {
            mutations.push(Mutation::Update {
                entity: Entity::Users,
                id: id.to_string(),
                input: Value::Object(fields),
            });
        }
        if let Some(p) = password {
            check_password_strength(p)?;
            mutations.push(Mutation::SetPassword {
                id: id.to_string(),
                password_hash: self.hashing.hash(p).await?,
            });
        }
        let applied = self.write_users(actor, origin, mutations).await?;
        if revoke {
            self.store.revoke_user_sessions(id).await?;
        }
        applied.records.into_iter().last().flatten().ok_or_else(|| {
            crate::CoreError::Store(kontor_store::StoreError::Other(
                "write returned no record".into(),
            ))
        })
    }

    pub async fn set_password(
        &self,
        actor: &Actor,
        origin: Origin,
        id: &str,
        password: &str,
    ) -> CoreResult<Record> {
        self.update_user(actor, origin, id, Map::new(), Some(password))
            .await
    }

    pub async fn disable_user(
        &self,
        actor: &Actor,
        origin: Origin,
        id: &str,
    ) -> CoreResult<Record> {
        let mut m = Map::new();
        m.insert("disabled".into(), json!(true));
        self.update_user(actor, origin, id, m, None).await
    }

    /// A user's change of their own account, whatever their role: name and language, and a new
    /// password when `password` is `(current, new)`. The current password is checked as a login
    /// from `client` is (and rate limited the same way); a wrong one is refused on the field
    /// `current_password`. A new password ends every session of the account and opens a new one
    /// for the caller, returned with the record.
    pub async fn update_own_account(
        &self,
        actor: &Actor,
        origin: Origin,
        client: &str,
        fields: Map<String, Value>,
        password: Option<(&str, &str)>,
    ) -> CoreResult<(Record, Option<crate::auth::LoginOk>)> {
        refuse_credential_fields(&fields)?;
        let id = actor.user_id.clone();
        let password_hash = match password {
            None => None,
            Some((current, new)) => {
                let me = self
                    .store
                    .get(Entity::Users, &id)
                    .await?
                    .ok_or_else(|| DomainError::not_found(Entity::Users.singular(), &id))?;
                let email = me.data.get("email").and_then(Value::as_str).unwrap_or("");
                match self.authenticate(email, current, client).await {
                    Ok(_) => {}
                    Err(crate::CoreError::Unauthorized(_)) => {
                        return Err(DomainError::invalid(
                            "current_password",
                            "this is not the account's current password",
                        )
                        .into())
                    }
                    Err(e) => return Err(e),
                }
                check_password_strength(new)?;
                Some(self.hashing.hash(new).await?)
            }
        };
        let revoke = password_hash.is_some();
        self.write(
            actor,
            origin,
            vec![Mutation::UpdateOwnAccount {
                id: id.clone(),
                input: Value::Object(fields),
                password_hash,
            }],
        )
        .await?;
        let me = self
            .store
            .get(Entity::Users, &id)
            .await?
            .ok_or_else(|| DomainError::not_found(Entity::Users.singular(), &id))?;
        if !revoke {
            return Ok((me, None));
        }
        // Every session of the account ends; the one making the change gets a new token.
        self.store.revoke_user_sessions(&id).await?;
        let session = self
            .open_session(me.clone(), "kt_", crate::auth::TOKEN_LIFETIME)
            .await?;
        Ok((me, Some(session)))
    }

    /// A live user by e-mail address.
    pub async fn user_by_email(&self, email: &str) -> CoreResult<Option<Record>> {
        Ok(self
            .store
            .find_unique(Entity::Users, "email", &email.trim().to_lowercase())
            .await?)
    }

    async fn write_users(
        &self,
        actor: &Actor,
        origin: Origin,
        mutations: Vec<Mutation>,
    ) -> CoreResult<Applied> {
        if !actor.is_admin() {
            return Err(DomainError::forbidden("only an admin manages users").into());
        }
        self.write(actor, origin, mutations).await
    }
}

/// Passwords are set only as `password`, never as a hash or a change time.
fn refuse_credential_fields(fields: &Map<String, Value>) -> CoreResult<()> {
    if fields.contains_key("password_hash") {
        return Err(DomainError::invalid(
            "password_hash",
            "unknown field 'password_hash' for users; send 'password'",
        )
        .into());
    }
    Ok(())
}

fn first_record(applied: Applied) -> CoreResult<Record> {
    applied.records.into_iter().next().flatten().ok_or_else(|| {
        crate::CoreError::Store(kontor_store::StoreError::Other(
            "write returned no record".into(),
        ))
    })
}
