//! Messages shown to the user: error banners and per-field messages.

use leptos::prelude::*;

use crate::error::AppError;

/// The error of the latest submission of an action, if it failed.
pub fn last_error<T, S>(value: S) -> Signal<Option<AppError>>
where
    T: Send + Sync + 'static,
    S: With<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    Signal::derive(move || value.with(|v| v.as_ref().and_then(|result| result.as_ref().err().cloned())))
}

/// A banner with the error's message; `role="alert"` so screen readers announce it. Field errors
/// are left to [`FieldMessage`] beside their controls.
#[component]
pub fn ErrorBanner(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().filter(|e| !matches!(e, AppError::Invalid(_))).map(|e| {
            view! {
                <div class="alert alert-error" role="alert">
                    {e.to_string()}
                </div>
            }
        })
    }
}

/// The message for one field, under its control.
#[component]
pub fn FieldMessage(#[prop(into)] error: Signal<Option<AppError>>, #[prop(into)] field: String) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.field(&field)).map(|message| {
            view! {
                <p class="field-error" id=format!("{field}-error")>
                    {message}
                </p>
            }
        })
    }
}

/// A labelled input with its hint and its error message underneath.
#[component]
pub fn TextField(
    /// The input's `name` (the server function argument) and `id`.
    name: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(optional)] min_length: Option<usize>,
    /// The field may be left empty.
    #[prop(optional)]
    optional: bool,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let hint_id = format!("{name}-hint");
    let described_by = hint.as_ref().map(|_| hint_id.clone());
    view! {
        <div class="field">
            <label for=name>{label}</label>
            <input
                id=name
                name=name
                type=kind
                autocomplete=(!autocomplete.is_empty()).then_some(autocomplete)
                minlength=min_length.map(|n| n.to_string())
                required=!optional
                aria-describedby=described_by
            />
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{hint}</p> })}
            <FieldMessage error field=name/>
        </div>
    }
}
