//! Tandem's domain types. Everything here compiles for the server and for the browser (WASM), so
//! the rules they carry (what a role may do, what a valid email looks like) are the same on both.

pub mod account;
pub mod apps;
pub mod automap;
pub mod dashboard;
pub mod merge;
pub mod role;
pub mod states;
pub mod sync;
pub mod timefmt;
pub mod translate;
pub mod validation;

pub use account::{DisplayName, Email, Password, SessionUser, UserStatus, UserSummary};
pub use role::{Permission, Role};
pub use validation::FieldError;
