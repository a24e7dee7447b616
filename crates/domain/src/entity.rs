//! The kinds of record Kontor keeps. CRM entities are what sales teams work with; system entities
//! (users, roles, teams, custom field definitions) are records too, so every change to them goes
//! through the same journaled write path.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Companies,
    Contacts,
    Leads,
    Deals,
    Activities,
    Products,
    Invoices,
    Payments,
    ProductGroups,
    Properties,
    Offers,
    PriceTypes,
    Warehouses,
    Users,
    Roles,
    Teams,
    Fields,
    OnecDatabases,
    ImportTemplates,
}

impl Entity {
    pub const ALL: [Entity; 19] = [
        Entity::Companies,
        Entity::Contacts,
        Entity::Leads,
        Entity::Deals,
        Entity::Activities,
        Entity::Products,
        Entity::Invoices,
        Entity::Payments,
        Entity::ProductGroups,
        Entity::Properties,
        Entity::Offers,
        Entity::PriceTypes,
        Entity::Warehouses,
        Entity::Users,
        Entity::Roles,
        Entity::Teams,
        Entity::Fields,
        Entity::OnecDatabases,
        Entity::ImportTemplates,
    ];

    /// The entities sales people work with, the catalog included; permissions of the built-in
    /// `manager` role and the `/api/v1/{entity}` routes cover these.
    pub const CRM: [Entity; 13] = [
        Entity::Companies,
        Entity::Contacts,
        Entity::Leads,
        Entity::Deals,
        Entity::Activities,
        Entity::Products,
        Entity::Invoices,
        Entity::Payments,
        Entity::ProductGroups,
        Entity::Properties,
        Entity::Offers,
        Entity::PriceTypes,
        Entity::Warehouses,
    ];

    /// The catalog: what 1C sends (products with their groups, properties, offers with prices
    /// and stock, price types, warehouses). Managers read it; the exchange and admins write it.
    pub const CATALOG: [Entity; 6] = [
        Entity::Products,
        Entity::ProductGroups,
        Entity::Properties,
        Entity::Offers,
        Entity::PriceTypes,
        Entity::Warehouses,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Companies => "companies",
            Entity::Contacts => "contacts",
            Entity::Leads => "leads",
            Entity::Deals => "deals",
            Entity::Activities => "activities",
            Entity::Products => "products",
            Entity::Invoices => "invoices",
            Entity::Payments => "payments",
            Entity::ProductGroups => "product_groups",
            Entity::Properties => "properties",
            Entity::Offers => "offers",
            Entity::PriceTypes => "price_types",
            Entity::Warehouses => "warehouses",
            Entity::Users => "users",
            Entity::Roles => "roles",
            Entity::Teams => "teams",
            Entity::Fields => "fields",
            Entity::OnecDatabases => "onec_databases",
            Entity::ImportTemplates => "import_templates",
        }
    }

    /// Singular noun for messages ("company not found").
    pub fn singular(self) -> &'static str {
        match self {
            Entity::Companies => "company",
            Entity::Contacts => "contact",
            Entity::Leads => "lead",
            Entity::Deals => "deal",
            Entity::Activities => "activity",
            Entity::Products => "product",
            Entity::Invoices => "invoice",
            Entity::Payments => "payment",
            Entity::ProductGroups => "product group",
            Entity::Properties => "property",
            Entity::Offers => "offer",
            Entity::PriceTypes => "price type",
            Entity::Warehouses => "warehouse",
            Entity::Users => "user",
            Entity::Roles => "role",
            Entity::Teams => "team",
            Entity::Fields => "custom field",
            Entity::OnecDatabases => "1C database",
            Entity::ImportTemplates => "import template",
        }
    }

    pub fn is_crm(self) -> bool {
        Entity::CRM.contains(&self)
    }

    /// System entities are administered by admins only, whatever a custom role says.
    pub fn is_system(self) -> bool {
        !self.is_crm()
    }

    /// Whether admins may define custom fields on this entity.
    pub fn allows_custom_fields(self) -> bool {
        self.is_crm()
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEntity(pub String);

impl fmt::Display for UnknownEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown entity '{}'", self.0)
    }
}

impl std::error::Error for UnknownEntity {}

impl FromStr for Entity {
    type Err = UnknownEntity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEntity(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Entity::ALL {
            assert_eq!(e.as_str().parse::<Entity>().unwrap(), e);
        }
        assert!("widgets".parse::<Entity>().is_err());
    }
}
