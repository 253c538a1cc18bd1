//! Server functions: thin adapters from the browser into the engine. Each checks who is calling,
//! calls the engine and maps its error; nothing else.

pub mod apps;
pub mod auth;
pub mod dashboards;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod syncs;
pub mod users;
