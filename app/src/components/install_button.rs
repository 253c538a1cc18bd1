//! **Install app** (and **Reconnect**, **Connect HubSpot**): asks the server to start the OAuth
//! flow, then sends the browser to the provider's sign-in page.

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::api::apps::StartInstall;
use crate::components::feedback::{last_error, ErrorBanner, FieldMessage};

#[component]
pub fn InstallButton(
    /// The app's key (`pipedrive`, `hubspot`).
    #[prop(into)]
    app: String,
    /// The connection to reconnect, when reconnecting.
    #[prop(optional, into)]
    reconnect: Option<String>,
    label: &'static str,
    #[prop(default = "btn btn-primary")] class: &'static str,
    /// Why the button is disabled (no permission, app not configured), shown as its title; the
    /// page shows the same text in the element `described_by` names.
    #[prop(default = None)]
    disabled_reason: Option<String>,
    #[prop(optional)] described_by: Option<&'static str>,
    /// The HubSpot accounts an app's new install may sync with (id, name): with several, the
    /// admin chooses one beside the button.
    #[prop(optional)]
    hubs: Vec<(String, String)>,
) -> impl IntoView {
    let start = ServerAction::<StartInstall>::new();
    let leaving = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(url)) = start.value().get() {
            leaving.set(true);
            let _ = window().location().set_href(&url);
        }
    });
    let error = last_error(start.value());
    let disabled = disabled_reason.is_some();
    let hub_field = format!("hub-for-{app}");
    view! {
        <div class="install">
            <ActionForm action=start>
                <input type="hidden" name="app" value=app/>
                {reconnect.map(|id| view! { <input type="hidden" name="reconnect" value=id/> })}
                {(hubs.len() > 1)
                    .then(|| {
                        let id = hub_field.clone();
                        view! {
                            <label class="install-hub" for=id.clone()>"HubSpot account"</label>
                            <select class="install-hub" id=id name="hub" aria-describedby="hub-error">
                                {hubs
                                    .into_iter()
                                    .map(|(id, name)| view! { <option value=id>{name}</option> })
                                    .collect_view()}
                            </select>
                        }
                    })}
                <button
                    type="submit"
                    class=class
                    disabled=move || disabled || start.pending().get() || leaving.get()
                    title=disabled_reason
                    aria-describedby=described_by
                >
                    {move || if start.pending().get() || leaving.get() { "Opening sign-in…" } else { label }}
                </button>
            </ActionForm>
            <ErrorBanner error/>
            // "Choose the HubSpot account…": the page's list was out of date (an account connected
            // or uninstalled elsewhere meanwhile); reloading it offers the current ones.
            <FieldMessage error field="hub"/>
        </div>
    }
}
