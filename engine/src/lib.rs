//! Tandem's engine: everything that is neither a web page nor an HTTP route.
//!
//! - [`store`]: the one storage seam (SQLite or Postgres); all SQL lives there.
//! - [`accounts`]: users, roles, sessions, invitations and login throttling.
//! - [`connectors`]: one module per provider (HubSpot, Pipedrive): hosts, scopes, account calls.
//! - [`connections`]: installing apps over OAuth, sealed credentials and their refresh, the audit log.
//! - [`crypto`]: encryption at rest for stored credentials.
//! - [`syncs`]: sync setup: live schemas, validated settings saved as versions, on/pause/off.
//! - [`dashboards`]: sync health and history as the dashboards show them, Retry, CSV export, metrics.
//! - [`runner`]: the sync engine: runs, the identity map, field-level merge, limits and retries.
//! - [`worker`]: the background task that runs beside the web server.

pub mod accounts;
pub mod clock;
pub mod connections;
pub mod connectors;
pub mod crypto;
pub mod dashboards;
pub mod runner;
pub mod secret;
pub mod store;
pub mod syncs;
pub mod webhooks;
pub mod worker;

pub use accounts::{AccountError, Accounts};
pub use connections::{ConnectionError, Connections};
pub use store::{Store, StoreError};
