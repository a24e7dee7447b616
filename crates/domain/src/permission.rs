//! Who may do what. A [`Role`] grants each action on each entity a [`Scope`] and may hide fields or
//! make them read-only; an [`Actor`] is a user with a role acting now. The core asks these rules on
//! every read and every write, so the API, web pages, exports and the exchange obey the same ones.

use crate::entity::Entity;
use crate::error::DomainError;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    None,
    Own,
    Team,
    All,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::None => "none",
            Scope::Own => "own",
            Scope::Team => "team",
            Scope::All => "all",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Scope::None),
            "own" => Ok(Scope::Own),
            "team" => Ok(Scope::Team),
            "all" => Ok(Scope::All),
            _ => Err(format!(
                "unknown scope '{s}' (expected all, team, own or none)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Read, Action::Create, Action::Update, Action::Delete];
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Built-in role names; custom roles may not take them.
pub const BUILTIN_ROLES: [&str; 3] = ["admin", "manager", "exchange"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Everything, including system entities, purge and other users' history.
    pub admin: bool,
    /// May log in to the REST API (the `exchange` role may not).
    pub api_login: bool,
    pub scopes: BTreeMap<(Entity, Action), Scope>,
    pub hidden: BTreeMap<Entity, BTreeSet<String>>,
    pub readonly: BTreeMap<Entity, BTreeSet<String>>,
}

impl Role {
    pub fn builtin(name: &str) -> Option<Role> {
        let mut role = Role {
            name: name.to_string(),
            admin: false,
            api_login: true,
            scopes: BTreeMap::new(),
            hidden: BTreeMap::new(),
            readonly: BTreeMap::new(),
        };
        match name {
            "admin" => {
                role.admin = true;
                for e in Entity::ALL {
                    for a in Action::ALL {
                        role.scopes.insert((e, a), Scope::All);
                    }
                }
            }
            "manager" => {
                for e in Entity::CRM {
                    for a in Action::ALL {
                        role.scopes.insert((e, a), Scope::Own);
                    }
                }
                // The catalog comes from 1C: managers read it, they do not edit it.
                for e in Entity::CATALOG {
                    role.scopes.insert((e, Action::Read), Scope::All);
                    for a in [Action::Create, Action::Update, Action::Delete] {
                        role.scopes.insert((e, a), Scope::None);
                    }
                }
            }
            "exchange" => {
                // 1C's side of the exchange: it owns the catalog, sends and updates
                // counterparties, reads invoices and records their payments. It cannot log in
                // to the REST API.
                role.api_login = false;
                for e in Entity::CATALOG {
                    for a in Action::ALL {
                        role.scopes.insert((e, a), Scope::All);
                    }
                }
                for e in [Entity::Companies, Entity::Contacts, Entity::Payments] {
                    for a in [Action::Read, Action::Create, Action::Update] {
                        role.scopes.insert((e, a), Scope::All);
                    }
                }
                for a in [Action::Read, Action::Update] {
                    role.scopes.insert((Entity::Invoices, a), Scope::All);
                }
            }
            _ => return None,
        }
        Some(role)
    }

    /// Builds a custom role from the data of a `roles` record, checking its permission document:
    /// `permissions: {"deals": {"read": "all", "update": "own"} | "team", ...}`,
    /// `hidden_fields` / `readonly_fields: {"companies": ["inn", ...]}`.
    pub fn from_record_data(data: &Map<String, Value>) -> Result<Role, DomainError> {
        let name = data
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut role = Role {
            name,
            admin: false,
            api_login: true,
            scopes: BTreeMap::new(),
            hidden: BTreeMap::new(),
            readonly: BTreeMap::new(),
        };
        if let Some(Value::Object(perms)) = data.get("permissions") {
            for (entity_name, spec) in perms {
                let path = format!("permissions.{entity_name}");
                let entity = crm_entity(entity_name, &path)?;
                match spec {
                    Value::String(s) => {
                        let scope = s
                            .parse::<Scope>()
                            .map_err(|m| DomainError::invalid(&path, m))?;
                        for a in Action::ALL {
                            role.scopes.insert((entity, a), scope);
                        }
                    }
                    Value::Object(actions) => {
                        for (action_name, scope) in actions {
                            let p = format!("{path}.{action_name}");
                            let action = Action::ALL
                                .into_iter()
                                .find(|a| a.as_str() == action_name)
                                .ok_or_else(|| {
                                    DomainError::invalid(
                                        &p,
                                        format!("unknown action '{action_name}' (expected read, create, update or delete)"),
                                    )
                                })?;
                            let scope = scope
                                .as_str()
                                .ok_or_else(|| {
                                    DomainError::invalid(&p, "a scope must be a string")
                                })?
                                .parse::<Scope>()
                                .map_err(|m| DomainError::invalid(&p, m))?;
                            role.scopes.insert((entity, action), scope);
                        }
                    }
                    _ => {
                        return Err(DomainError::invalid(
                            &path,
                            "give a scope for all actions or an object of action: scope",
                        ))
                    }
                }
            }
        }
        role.hidden = field_sets(data.get("hidden_fields"), "hidden_fields")?;
        role.readonly = field_sets(data.get("readonly_fields"), "readonly_fields")?;
        Ok(role)
    }

    pub fn scope(&self, entity: Entity, action: Action) -> Scope {
        self.scopes
            .get(&(entity, action))
            .copied()
            .unwrap_or(Scope::None)
    }
}

fn crm_entity(name: &str, path: &str) -> Result<Entity, DomainError> {
    match name.parse::<Entity>() {
        Ok(e) if e.is_crm() => Ok(e),
        _ => Err(DomainError::invalid(
            path,
            format!("'{name}' is not a CRM entity a role can grant"),
        )),
    }
}

fn field_sets(
    v: Option<&Value>,
    what: &str,
) -> Result<BTreeMap<Entity, BTreeSet<String>>, DomainError> {
    let mut out = BTreeMap::new();
    let Some(Value::Object(m)) = v else {
        return Ok(out);
    };
    for (entity_name, fields) in m {
        let path = format!("{what}.{entity_name}");
        let entity = crm_entity(entity_name, &path)?;
        let list = fields
            .as_array()
            .ok_or_else(|| DomainError::invalid(&path, "must be a list of field names"))?;
        let mut set = BTreeSet::new();
        for f in list {
            let name = f
                .as_str()
                .ok_or_else(|| DomainError::invalid(&path, "must be a list of field names"))?;
            if name == "id" {
                return Err(DomainError::invalid(&path, "the id cannot be hidden"));
            }
            if !crate::validate::is_custom_field_name(name) {
                return Err(DomainError::invalid(
                    &path,
                    format!("'{name}' is not a field name (lowercase letters, digits and _)"),
                ));
            }
            set.insert(name.to_string());
        }
        out.insert(entity, set);
    }
    Ok(out)
}

/// Which owners' records an actor reaches for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerFilter {
    Any,
    OneOf(Vec<String>),
    Nothing,
}

/// A user acting now, with everything permission checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// User id, or `system` for Kontor's own background work.
    pub user_id: String,
    pub role: Role,
    pub team_id: Option<String>,
    /// Ids of the users in the actor's team, the actor included.
    pub team_members: Vec<String>,
}

pub const SYSTEM_ACTOR: &str = "system";

impl Actor {
    /// Kontor itself (retention purge, start-up); acts with admin rights.
    pub fn system() -> Actor {
        Actor {
            user_id: SYSTEM_ACTOR.to_string(),
            role: Role::builtin("admin").unwrap_or_else(|| Role {
                name: "admin".into(),
                admin: true,
                api_login: false,
                scopes: BTreeMap::new(),
                hidden: BTreeMap::new(),
                readonly: BTreeMap::new(),
            }),
            team_id: None,
            team_members: vec![],
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role.admin
    }

    pub fn owner_filter(&self, entity: Entity, action: Action) -> OwnerFilter {
        if self.is_admin() {
            return OwnerFilter::Any;
        }
        if entity.is_system() {
            return OwnerFilter::Nothing;
        }
        match self.role.scope(entity, action) {
            Scope::All => OwnerFilter::Any,
            Scope::Team => {
                let mut ids = self.team_members.clone();
                if !ids.contains(&self.user_id) {
                    ids.push(self.user_id.clone());
                }
                OwnerFilter::OneOf(ids)
            }
            Scope::Own => OwnerFilter::OneOf(vec![self.user_id.clone()]),
            Scope::None => OwnerFilter::Nothing,
        }
    }

    /// Whether the actor may do `action` on a record owned by `owner`.
    pub fn can(&self, entity: Entity, action: Action, owner: Option<&str>) -> bool {
        match self.owner_filter(entity, action) {
            OwnerFilter::Any => true,
            OwnerFilter::Nothing => false,
            OwnerFilter::OneOf(ids) => owner.is_some_and(|o| ids.iter().any(|i| i == o)),
        }
    }

    /// Whether the actor may do `action` on some records of the entity at all.
    pub fn can_any(&self, entity: Entity, action: Action) -> bool {
        self.owner_filter(entity, action) != OwnerFilter::Nothing
    }

    pub fn hidden_fields(&self, entity: Entity) -> Option<&BTreeSet<String>> {
        if self.is_admin() {
            return None;
        }
        self.role.hidden.get(&entity)
    }

    /// The schema without the fields the actor's role hides.
    pub fn visible_schema(&self, schema: &crate::schema::Schema) -> crate::schema::Schema {
        let mut visible = schema.clone();
        if let Some(hidden) = self.hidden_fields(schema.entity) {
            visible.fields.retain(|f| !hidden.contains(&f.name));
        }
        visible
    }

    pub fn is_hidden(&self, entity: Entity, field: &str) -> bool {
        self.hidden_fields(entity)
            .is_some_and(|s| s.contains(field))
    }

    pub fn is_readonly(&self, entity: Entity, field: &str) -> bool {
        !self.is_admin()
            && self
                .role
                .readonly
                .get(&entity)
                .is_some_and(|s| s.contains(field))
    }

    /// Removes from a record image what this actor may not see: the fields the role hides.
    /// (Credentials are not in records at all.)
    pub fn redact(&self, entity: Entity, image: &mut Value) {
        let Value::Object(m) = image else { return };
        if let Some(hidden) = self.hidden_fields(entity) {
            for f in hidden {
                m.remove(f);
            }
        }
    }

    /// Refuses writes to fields the role hides or makes read-only.
    pub fn check_writable(&self, entity: Entity, touched: &[String]) -> Result<(), DomainError> {
        for f in touched {
            if self.is_hidden(entity, f) || self.is_readonly(entity, f) {
                return Err(DomainError::Forbidden {
                    message: format!(
                        "field '{f}' of {entity} is read-only for role {}",
                        self.role.name
                    ),
                    field: Some(f.clone()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: "u1".into(),
            role,
            team_id: Some("t".into()),
            team_members: vec!["u1".into(), "u2".into()],
        }
    }

    #[test]
    fn manager_reaches_own_records_only() {
        let a = actor(Role::builtin("manager").unwrap());
        assert!(a.can(Entity::Deals, Action::Update, Some("u1")));
        assert!(!a.can(Entity::Deals, Action::Update, Some("u2")));
        assert!(!a.can(Entity::Deals, Action::Read, None));
        assert!(a.can(Entity::Products, Action::Read, Some("u9")));
        assert!(!a.can(Entity::Products, Action::Create, Some("u1")));
        assert!(!a.can(Entity::Users, Action::Read, Some("u1")));
    }

    #[test]
    fn exchange_writes_the_catalog_and_payments_but_never_deletes_crm_records() {
        let role = Role::builtin("exchange").unwrap();
        assert!(!role.api_login);
        let a = actor(role);
        for e in Entity::CATALOG {
            for act in Action::ALL {
                assert!(a.can(e, act, Some("u9")), "{e} {act}");
            }
        }
        assert!(a.can(Entity::Companies, Action::Create, Some("u9")));
        assert!(a.can(Entity::Invoices, Action::Update, Some("u9")));
        assert!(a.can(Entity::Payments, Action::Create, Some("u9")));
        assert!(!a.can(Entity::Invoices, Action::Create, Some("u9")));
        assert!(!a.can(Entity::Companies, Action::Delete, Some("u9")));
        assert!(!a.can(Entity::Deals, Action::Read, Some("u9")));
        assert!(!a.can(Entity::Users, Action::Read, Some("u9")));
    }

    #[test]
    fn custom_role_with_team_scope_and_hidden_fields() {
        let data = json!({
            "name": "senior",
            "permissions": {"companies": "team", "deals": {"read": "all", "update": "own"}},
            "hidden_fields": {"companies": ["inn"]},
            "readonly_fields": {"deals": ["amount"]}
        });
        let role = Role::from_record_data(data.as_object().unwrap()).unwrap();
        let a = actor(role);
        assert!(a.can(Entity::Companies, Action::Delete, Some("u2")));
        assert!(!a.can(Entity::Companies, Action::Delete, Some("u3")));
        assert!(a.can(Entity::Deals, Action::Read, Some("u3")));
        assert!(!a.can(Entity::Deals, Action::Create, Some("u1")));
        let mut img = json!({"id": "x", "name": "A", "inn": "7707083893"});
        a.redact(Entity::Companies, &mut img);
        assert!(img.get("inn").is_none());
        assert!(a
            .check_writable(Entity::Deals, &["amount".to_string()])
            .is_err());
    }

    #[test]
    fn bad_permission_documents_name_the_path() {
        let data = json!({"name": "x", "permissions": {"deals": {"read": "everything"}}});
        match Role::from_record_data(data.as_object().unwrap()).unwrap_err() {
            DomainError::Invalid(f) => assert_eq!(f.field, "permissions.deals.read"),
            e => panic!("{e:?}"),
        }
    }
}
