//! What every part of the sync setup shares: the settings being edited, both providers' schemas,
//! the last save's error (field messages) and whether the user may change anything.

use leptos::prelude::*;
use model::sync::{Schemas, SyncSettings};

use crate::error::AppError;

#[derive(Clone, Copy)]
pub struct SetupState {
    pub settings: RwSignal<SyncSettings>,
    pub schemas: StoredValue<Schemas>,
    /// Bumped when `schemas` changes (a pipeline was created), so lists of options redraw.
    pub schemas_version: RwSignal<u32>,
    /// The app connection being set up.
    pub connection: StoredValue<String>,
    pub error: Signal<Option<AppError>>,
    /// A short status line (e.g. what Auto-map did), announced politely.
    pub note: RwSignal<Option<String>>,
    pub can_manage: bool,
}

impl SetupState {
    pub fn app_name(&self) -> String {
        self.schemas.with_value(|s| s.app_name.clone())
    }
}
