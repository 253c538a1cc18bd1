//! Tandem's engine: everything that is neither a web page nor an HTTP route.
//!
//! - [`store`]: the one storage seam (SQLite or Postgres); all SQL lives there.
//! - [`accounts`]: users, roles, sessions, invitations and login throttling.
//! - [`worker`]: the background task that runs beside the web server.

pub mod accounts;
pub mod clock;
pub mod secret;
pub mod store;
pub mod worker;

pub use accounts::{AccountError, Accounts};
pub use store::{Store, StoreError};
