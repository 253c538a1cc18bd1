//! Apps in the Marketplace, and the accounts connected to Tandem, as the console shows them.

use serde::{Deserialize, Serialize};

/// The key of HubSpot's own connection (it is not an app of the Marketplace: every sync needs it).
pub const HUBSPOT: &str = "hubspot";
/// HubSpot's logo under Tandem's site (the hub is in every page, connected or not).
pub const HUBSPOT_LOGO: &str = "/apps/hubspot.svg";

/// A CRM object Tandem syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    Contact,
    Company,
    Deal,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [ObjectKind::Contact, ObjectKind::Company, ObjectKind::Deal];

    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Contact => "Contact",
            ObjectKind::Company => "Company",
            ObjectKind::Deal => "Deal",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Contact => "Contacts",
            ObjectKind::Company => "Companies",
            ObjectKind::Deal => "Deals",
        }
    }

    /// The key stored with a sync and used in URLs: `contact`, `company`, `deal`.
    pub fn key(self) -> &'static str {
        match self {
            ObjectKind::Contact => "contact",
            ObjectKind::Company => "company",
            ObjectKind::Deal => "deal",
        }
    }

    pub fn from_key(key: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|o| o.key() == key)
    }
}

/// Which way records flow between HubSpot and the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncDirection {
    TwoWay,
    ToHubSpot,
    ToApp,
}

impl SyncDirection {
    pub const ALL: [SyncDirection; 3] = [SyncDirection::TwoWay, SyncDirection::ToHubSpot, SyncDirection::ToApp];

    pub fn label(self, app_name: &str) -> String {
        match self {
            SyncDirection::TwoWay => "Two-way".to_string(),
            SyncDirection::ToHubSpot => "Only to HubSpot".to_string(),
            SyncDirection::ToApp => format!("Only to {app_name}"),
        }
    }
}

/// An object the app shares with HubSpot: "Deal ↔ Pipedrive deal".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedObject {
    pub object: ObjectKind,
    /// What the app calls it ("Person", "Organization", "Deal").
    pub app_object: String,
    pub directions: Vec<SyncDirection>,
}

/// A permission the app asks the account for, with what Tandem uses it for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeInfo {
    pub scope: String,
    pub purpose: String,
}

/// One card of the App Marketplace and its app page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppListing {
    /// Stable key used in URLs (`pipedrive`).
    pub key: String,
    pub name: String,
    /// The provider is a local emulator (shown as "Name (Sandbox)").
    pub sandbox: bool,
    pub category: String,
    pub tagline: String,
    pub description: Vec<String>,
    /// Path of the logo under Tandem's site (`/apps/pipedrive.svg`).
    pub logo: String,
    pub publisher: String,
    pub shared_data: Vec<SharedObject>,
    pub scopes: Vec<ScopeInfo>,
    pub requirements: Vec<String>,
    /// Why Install app cannot work on this server (e.g. no OAuth client configured).
    pub unavailable: Option<String>,
}

impl AppListing {
    /// The name shown everywhere: "Pipedrive (Sandbox)" for the emulator.
    pub fn display_name(&self) -> String {
        display_name(&self.name, self.sandbox)
    }

    /// Whether the card matches a search text (name, tagline, category, shared objects) and a
    /// category ("" for all).
    pub fn matches(&self, query: &str, category: &str) -> bool {
        let query = query.trim().to_lowercase();
        let in_category = category.is_empty() || self.category.eq_ignore_ascii_case(category);
        let found = query.is_empty()
            || [self.display_name(), self.tagline.clone(), self.category.clone()]
                .iter()
                .chain(self.shared_data.iter().map(|s| &s.app_object))
                .any(|text| text.to_lowercase().contains(&query));
        in_category && found
    }
}

pub fn display_name(name: &str, sandbox: bool) -> String {
    if sandbox {
        format!("{name} (Sandbox)")
    } else {
        name.to_string()
    }
}

/// The categories present in a catalogue, sorted, each once.
pub fn categories(apps: &[AppListing]) -> Vec<String> {
    let mut all: Vec<String> = apps.iter().map(|a| a.category.clone()).collect();
    all.sort();
    all.dedup();
    all
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionStatus {
    Connected,
    /// The provider refused Tandem's credentials: syncs are paused until an admin reconnects.
    NeedsReconnection,
    /// Credentials deleted; sync settings and history kept.
    Uninstalled,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::NeedsReconnection => "needs_reconnection",
            ConnectionStatus::Uninstalled => "uninstalled",
        }
    }

    pub fn parse(s: &str) -> Option<ConnectionStatus> {
        [ConnectionStatus::Connected, ConnectionStatus::NeedsReconnection, ConnectionStatus::Uninstalled]
            .into_iter()
            .find(|c| c.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "Connected",
            ConnectionStatus::NeedsReconnection => "Needs reconnection",
            ConnectionStatus::Uninstalled => "Uninstalled",
        }
    }
}

/// A provider account's API budget, as its connection's page shows it: the share of the
/// account's limit Tandem may use, and what Tandem (every instance) used of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiUsage {
    pub connection_id: String,
    /// Percent of the account's limit Tandem may use.
    pub share: i64,
    /// The provider's window as its answers state it: `window_max` calls per `window_ms` (0 when
    /// they state none).
    pub window_max: i64,
    pub window_ms: i64,
    /// Calls Tandem sent in the window now ending.
    pub window_calls: i64,
    /// Calls Tandem sent today (UTC).
    pub day_calls: i64,
    /// Calls wait until then (Unix ms): the provider refused one for its limit.
    pub paused_until: Option<i64>,
}

/// The calls Tandem may send of a provider's `limit` at `share` percent: at least one.
pub fn share_of(limit: i64, share: i64) -> i64 {
    (limit * share / 100).max(1)
}

impl ApiUsage {
    pub const MIN_SHARE: i64 = 1;
    pub const MAX_SHARE: i64 = 100;

    /// The calls Tandem may send per window: its share of the provider's.
    pub fn allowed(&self) -> i64 {
        share_of(self.window_max, self.share)
    }

    /// The window in words ("10 seconds").
    pub fn window_label(&self) -> String {
        let ms = self.window_ms;
        if ms % 1000 == 0 {
            let secs = ms / 1000;
            if secs == 1 {
                "second".to_string()
            } else {
                format!("{secs} seconds")
            }
        } else {
            format!("{ms} ms")
        }
    }

    /// Checks a share an admin typed: a whole percent from 1 to 100.
    pub fn parse_share(input: &str) -> Result<i64, String> {
        match input.trim().trim_end_matches('%').trim().parse::<i64>() {
            Ok(n) if (Self::MIN_SHARE..=Self::MAX_SHARE).contains(&n) => Ok(n),
            _ => Err(format!("Enter a whole percent from {} to {}.", Self::MIN_SHARE, Self::MAX_SHARE)),
        }
    }
}

/// A provider account connected to Tandem, without any credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSummary {
    pub id: String,
    /// `hubspot` or the app's key.
    pub provider: String,
    pub provider_name: String,
    /// Path of the provider's logo under Tandem's site.
    pub logo: String,
    /// What the provider calls one of its accounts (`portal`, `company`, `organization`).
    pub account_kind: String,
    pub account_id: String,
    pub account_name: String,
    pub account_domain: Option<String>,
    pub status: ConnectionStatus,
    /// Why it needs reconnection, in words for the admin.
    pub status_reason: Option<String>,
    pub scopes: Vec<String>,
    pub installed_by: String,
    pub installed_at: i64,
    pub updated_at: i64,
    /// For an app: the HubSpot connection it syncs with (`None` until a HubSpot account is
    /// connected).
    pub hub_connection_id: Option<String>,
}

impl ConnectionSummary {
    /// The HubSpot account this app's connection syncs with, among `all` connections: none when
    /// it has none yet or that account was uninstalled.
    pub fn hub_in<'a>(&self, all: &'a [ConnectionSummary]) -> Option<&'a ConnectionSummary> {
        let id = self.hub_connection_id.as_deref()?;
        all.iter().find(|c| c.id == id && c.provider == HUBSPOT && c.status != ConnectionStatus::Uninstalled)
    }

    /// How the console names the account: its name, or its id when it has none.
    pub fn label(&self) -> String {
        if self.account_name.trim().is_empty() {
            format!("{} {}", self.account_kind, self.account_id)
        } else {
            self.account_name.clone()
        }
    }

    /// Its name and id in the provider's words ("acme.com · portal 24681357").
    pub fn label_with_id(&self) -> String {
        format!("{} · {} {}", self.label(), self.account_kind, self.account_id)
    }

    /// The HubSpot connection this app's connection was linked to, among `all`, even when that
    /// account has since been uninstalled.
    pub fn linked_hub<'a>(&self, all: &'a [ConnectionSummary]) -> Option<&'a ConnectionSummary> {
        let id = self.hub_connection_id.as_deref()?;
        all.iter().find(|c| c.id == id && c.provider == HUBSPOT)
    }
}

/// The HubSpot accounts an app may be installed for (id, name · portal), oldest first.
pub fn hub_choices(all: &[ConnectionSummary]) -> Vec<(String, String)> {
    all.iter()
        .filter(|c| c.provider == HUBSPOT && c.status != ConnectionStatus::Uninstalled)
        .map(|c| (c.id.clone(), c.label_with_id()))
        .collect()
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub summary: String,
}

/// A page of the audit log, newest first; `next` is the cursor of the following page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

/// How an OAuth round trip ended, as the app page is told in its `result` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstallResult {
    Installed,
    Reconnected,
    Denied,
    StateInvalid,
    StateExpired,
    OtherSession,
    ExchangeFailed,
    AccountUnreadable,
    WrongAccount,
    /// The app's account already syncs with another HubSpot account than the one chosen.
    OtherHubSpotAccount,
    /// The HubSpot account chosen for the install was uninstalled before it finished.
    HubSpotGone,
    ProviderError,
}

impl InstallResult {
    const ALL: [InstallResult; 12] = [
        InstallResult::Installed,
        InstallResult::Reconnected,
        InstallResult::Denied,
        InstallResult::StateInvalid,
        InstallResult::StateExpired,
        InstallResult::OtherSession,
        InstallResult::ExchangeFailed,
        InstallResult::AccountUnreadable,
        InstallResult::WrongAccount,
        InstallResult::OtherHubSpotAccount,
        InstallResult::HubSpotGone,
        InstallResult::ProviderError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstallResult::Installed => "installed",
            InstallResult::Reconnected => "reconnected",
            InstallResult::Denied => "denied",
            InstallResult::StateInvalid => "state_invalid",
            InstallResult::StateExpired => "state_expired",
            InstallResult::OtherSession => "other_session",
            InstallResult::ExchangeFailed => "exchange_failed",
            InstallResult::AccountUnreadable => "account_unreadable",
            InstallResult::WrongAccount => "wrong_account",
            InstallResult::OtherHubSpotAccount => "other_hubspot_account",
            InstallResult::HubSpotGone => "hubspot_gone",
            InstallResult::ProviderError => "provider_error",
        }
    }

    pub fn parse(s: &str) -> Option<InstallResult> {
        InstallResult::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_success(self) -> bool {
        matches!(self, InstallResult::Installed | InstallResult::Reconnected)
    }

    /// What the admin reads on the app's page. `app` is the app's display name.
    pub fn message(self, app: &str) -> String {
        match self {
            InstallResult::Installed => format!("{app} is connected. Next, set up a sync."),
            InstallResult::Reconnected => format!("{app} is reconnected. Paused syncs resume on their next run."),
            InstallResult::Denied => format!(
                "{app} was not connected: access was denied on {app}'s page. Nothing was installed; choose Install app to try again."
            ),
            InstallResult::StateInvalid => "This sign-in link was already used or has been altered, so Tandem ignored it. Nothing was installed; start again with Install app.".to_string(),
            InstallResult::StateExpired => "The sign-in took longer than 10 minutes and expired. Nothing was installed; start again with Install app.".to_string(),
            InstallResult::OtherSession => "This sign-in was started by another Tandem session. Nothing was installed; start again with Install app from this browser.".to_string(),
            InstallResult::ExchangeFailed => format!(
                "{app} did not accept Tandem's authorization request, so nothing was installed. Try again; if it keeps failing, check Tandem's OAuth client settings for {app}."
            ),
            InstallResult::AccountUnreadable => format!(
                "{app} granted access, but Tandem could not read the account's details. Nothing was installed; try again in a moment."
            ),
            InstallResult::WrongAccount => format!(
                "You signed in to a different {app} account than the one being reconnected. Nothing changed; reconnect with the original account, or install the other account separately."
            ),
            InstallResult::OtherHubSpotAccount => format!(
                "This {app} account already syncs with another HubSpot account, where its syncs' records are linked, so nothing changed. Install it for that HubSpot account (connect that account again first if it was uninstalled), or sign in to another {app} account."
            ),
            InstallResult::HubSpotGone => "The HubSpot account chosen for this install was uninstalled meanwhile. Nothing was installed; choose a connected HubSpot account and install again.".to_string(),
            InstallResult::ProviderError => format!(
                "{app} could not be reached to finish the sign-in. Nothing was installed; try again in a moment."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> AppListing {
        AppListing {
            key: "pipedrive".into(),
            name: "Pipedrive".into(),
            sandbox: true,
            category: "Sales".into(),
            tagline: "Sync deals between Pipedrive and HubSpot.".into(),
            description: vec![],
            logo: "/apps/pipedrive.svg".into(),
            publisher: "Tandem".into(),
            shared_data: vec![SharedObject { object: ObjectKind::Deal, app_object: "Deal".into(), directions: vec![] }],
            scopes: vec![],
            requirements: vec![],
            unavailable: None,
        }
    }

    #[test]
    fn search_and_category() {
        let app = listing();
        assert_eq!(app.display_name(), "Pipedrive (Sandbox)");
        assert!(app.matches("", ""));
        assert!(app.matches("pipe", ""));
        assert!(app.matches("SANDBOX", "sales"));
        assert!(app.matches("deal", "Sales"));
        assert!(!app.matches("salesforce", ""));
        assert!(!app.matches("", "Marketing"));
    }

    #[test]
    fn result_codes_round_trip() {
        for r in InstallResult::ALL {
            assert_eq!(InstallResult::parse(r.as_str()), Some(r));
        }
        assert_eq!(InstallResult::parse("bogus"), None);
        assert!(InstallResult::Denied.message("Pipedrive (Sandbox)").contains("Nothing was installed"));
    }
}
