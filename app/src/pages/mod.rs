pub mod accept_invite;
pub mod auth_card;
pub mod connected_apps;
pub mod login;
pub mod not_found;
pub mod setup;
pub mod shell;
pub mod users;
