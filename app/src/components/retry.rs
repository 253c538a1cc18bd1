//! **Retry** (one failing record) and **Retry all** (a category, or every failing record): forms
//! that work before the page hydrates too, and what the retry answered.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::feedback::{last_error, ErrorBanner};
use crate::api::dashboards::RetryRecords;

#[component]
pub fn RetryButton(
    action: ServerAction<RetryRecords>,
    sync_id: String,
    /// One record; without it, every failing record (of `category` when given).
    #[prop(optional)]
    record_id: Option<String>,
    #[prop(optional)] category: Option<String>,
    #[prop(optional)] primary: bool,
) -> impl IntoView {
    let label = if record_id.is_some() { "Retry" } else { "Retry all" };
    let class = if primary { "btn btn-primary btn-small" } else { "btn btn-secondary btn-small" };
    view! {
        <ActionForm action attr:class="inline-form">
            <input type="hidden" name="sync_id" value=sync_id/>
            {record_id.map(|id| view! { <input type="hidden" name="record_id" value=id/> })}
            {category.filter(|c| !c.is_empty()).map(|c| view! { <input type="hidden" name="category" value=c/> })}
            <button type="submit" class=class>{label}</button>
        </ActionForm>
    }
}

/// The retry's answer ("Retrying 3 records now…") or its error.
#[component]
pub fn RetryOutcome(action: ServerAction<RetryRecords>) -> impl IntoView {
    let error = last_error(action.value());
    view! {
        {move || action.value().get().and_then(Result::ok).map(|m| view! { <div class="alert alert-success" role="status">{m}</div> })}
        <ErrorBanner error/>
    }
}
