use serde::{Deserialize, Serialize};

/// What a user may do in Tandem, after HubSpot's own permission names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Everything, including users and permissions.
    SuperAdmin,
    /// May install apps and change sync settings.
    AppMarketplaceAccess,
    /// May look at everything and change nothing.
    Viewer,
}

/// Something a user can be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Install and uninstall apps, set up and change syncs.
    ManageApps,
    /// Invite users, change roles, remove users.
    ManageUsers,
    /// Read the audit log.
    ViewAuditLog,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 3] = [Role::SuperAdmin, Role::AppMarketplaceAccess, Role::Viewer];

    /// The stable name stored in the database and sent by forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::AppMarketplaceAccess => "app_marketplace_access",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_string()))
    }

    /// The name shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            Role::SuperAdmin => "Super Admin",
            Role::AppMarketplaceAccess => "App Marketplace Access",
            Role::Viewer => "Viewer",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::SuperAdmin => "Full access, including users and permissions.",
            Role::AppMarketplaceAccess => "Can install apps and change sync settings.",
            Role::Viewer => "Can see everything and change nothing.",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::ManageApps => matches!(self, Role::SuperAdmin | Role::AppMarketplaceAccess),
            Permission::ManageUsers | Permission::ViewAuditLog => self == Role::SuperAdmin,
        }
    }
}

impl Permission {
    /// Why a user without this permission cannot act: shown beside disabled controls and in 403s.
    pub fn denied_reason(self) -> &'static str {
        match self {
            Permission::ManageApps => "You need the Super Admin or App Marketplace Access permission to change apps and syncs.",
            Permission::ManageUsers => "Only a Super Admin can invite users or change permissions.",
            Permission::ViewAuditLog => "Only a Super Admin can see the audit log.",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("admin").is_err());
    }

    #[test]
    fn permissions_follow_hubspot() {
        assert!(Role::SuperAdmin.allows(Permission::ManageUsers));
        assert!(Role::SuperAdmin.allows(Permission::ManageApps));
        assert!(Role::AppMarketplaceAccess.allows(Permission::ManageApps));
        assert!(!Role::AppMarketplaceAccess.allows(Permission::ManageUsers));
        assert!(!Role::Viewer.allows(Permission::ManageApps));
        assert!(!Role::Viewer.allows(Permission::ManageUsers));
    }
}
