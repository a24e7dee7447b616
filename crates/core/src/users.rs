//! User administration shared by the CLI and the API: creating users with a hashed password,
//! changing passwords, disabling. Users are records like any other, so all of this is journaled.

use crate::auth::hash_password;
use crate::error::CoreResult;
use crate::write::{apply, Applied, Mutation, WriteRequest};
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
        mut fields: Map<String, Value>,
        password: &str,
    ) -> CoreResult<Record> {
        refuse_hash_field(&fields)?;
        let hash = hash_in_background(password.to_string()).await?;
        fields.insert("password_hash".into(), Value::from(hash));
        let applied = self
            .write_users(
                actor,
                origin,
                vec![Mutation::Create {
                    entity: Entity::Users,
                    input: Value::Object(fields),
                }],
            )
            .await?;
        first_record(applied)
    }

    /// Updates a user's fields and, when given, password. A password change or disabling the
    /// account revokes its tokens.
    pub async fn update_user(
        &self,
        actor: &Actor,
        origin: Origin,
        id: &str,
        mut fields: Map<String, Value>,
        password: Option<&str>,
    ) -> CoreResult<Record> {
        refuse_hash_field(&fields)?;
        if let Some(p) = password {
            fields.insert(
                "password_hash".into(),
                Value::from(hash_in_background(p.to_string()).await?),
            );
        }
        let revoke = password.is_some() || fields.get("disabled") == Some(&Value::Bool(true));
        let applied = self
            .write_users(
                actor,
                origin,
                vec![Mutation::Update {
                    entity: Entity::Users,
                    id: id.to_string(),
                    input: Value::Object(fields),
                }],
            )
            .await?;
        if revoke {
            self.store.revoke_user_sessions(id).await?;
        }
        first_record(applied)
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
        apply(
            self.store.as_ref(),
            WriteRequest {
                actor,
                origin,
                trusted: true,
                mutations,
                cache: Some(&self.schema_cache),
            },
        )
        .await
    }
}

/// Password hashes are set only from a password, never written directly.
fn refuse_hash_field(fields: &Map<String, Value>) -> CoreResult<()> {
    if fields.contains_key("password_hash") {
        return Err(DomainError::invalid(
            "password_hash",
            "unknown field 'password_hash' for users; send 'password'",
        )
        .into());
    }
    Ok(())
}

async fn hash_in_background(password: String) -> CoreResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| crate::CoreError::Store(kontor_store::StoreError::Other(e.to_string())))?
}

fn first_record(applied: Applied) -> CoreResult<Record> {
    applied.records.into_iter().next().flatten().ok_or_else(|| {
        crate::CoreError::Store(kontor_store::StoreError::Other(
            "write returned no record".into(),
        ))
    })
}
