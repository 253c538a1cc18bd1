//! Tandem's server: configuration, the router and its middleware, and start-up.

pub mod config;
mod middleware;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::{Application, StartupError};
