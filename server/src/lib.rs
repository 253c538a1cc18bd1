//! Tandem's server: configuration, the router and its middleware, and start-up.

// Leptos views are deeply nested types.
#![recursion_limit = "256"]

mod caching;
pub mod config;
mod deadline;
mod exports;
mod middleware;
mod oauth;
pub mod startup;
pub mod telemetry;
pub mod webhooks;

pub use config::Config;
pub use startup::{Application, StartupError};
