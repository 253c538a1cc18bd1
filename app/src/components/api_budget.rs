//! A connected account's API budget on its card: the provider's limit, the share of it Tandem may
//! use (set here, for every sync and instance at once), and the calls Tandem used.

use leptos::form::ActionForm;
use leptos::prelude::*;
use model::apps::ApiUsage;
use model::dashboard::thousands as count;
use model::{timefmt, Permission};

use crate::api::apps::SetApiShare;
use crate::components::feedback::{last_error, ErrorBanner, FieldMessage};

#[component]
pub fn ApiBudget(
    usage: ApiUsage,
    /// The provider's name ("HubSpot").
    provider_name: String,
    can_manage: bool,
    /// The note that says why the form is disabled, for `aria-describedby`.
    described_by: &'static str,
) -> impl IntoView {
    let save = ServerAction::<SetApiShare>::new();
    let error = last_error(save.value());
    let connection_id = usage.connection_id.clone();
    let input_id = format!("api-share-{connection_id}");
    let heading_id = format!("api-budget-{connection_id}");
    let labelled_by = heading_id.clone();
    // What the last save answered, else what the page was loaded with.
    let initial = StoredValue::new(usage);
    let shown = Signal::derive(move || save.value().get().and_then(Result::ok).unwrap_or_else(|| initial.get_value()));
    let name = provider_name.clone();
    let summary = move || {
        let u = shown.get();
        if u.window_max > 0 {
            format!(
                "{name} allows {} calls every {}. Tandem uses up to {} of them ({} %), leaving the rest to the account's other integrations; every sync and instance draws from this budget.",
                count(u.window_max),
                u.window_label(),
                count(u.allowed()),
                u.share
            )
        } else {
            format!(
                "{name} has stated no rate limit in its answers yet. Once it does, Tandem uses up to {} % of it, leaving the rest to the account's other integrations.",
                u.share
            )
        }
    };
    let reason = (!can_manage).then(|| Permission::ManageApps.denied_reason());
    let described = (!can_manage).then_some(described_by);
    let share_value = move || shown.get().share.to_string();
    let label_for = input_id.clone();
    view! {
        <section class="api-budget" aria-labelledby=labelled_by>
            <h3 id=heading_id>"API limit"</h3>
            <p class="hint">{summary}</p>
            {move || {
                let u = shown.get();
                view! {
                    <dl class="facts">
                        {(u.window_max > 0)
                            .then(|| {
                                view! {
                                    <div>
                                        <dt>{format!("Calls in the last {}", u.window_label())}</dt>
                                        <dd>{format!("{} of {}", count(u.window_calls), count(u.allowed()))}</dd>
                                    </div>
                                }
                            })}
                        <div>
                            <dt>"Calls today (UTC)"</dt>
                            <dd>{count(u.day_calls)}</dd>
                        </div>
                    </dl>
                    {u.paused_until
                        .map(|until| {
                            view! {
                                <p class="notice" role="note">
                                    {format!(
                                        "{} refused a call for its limit: every sync waits until {}.",
                                        provider_name,
                                        timefmt::date_time(until),
                                    )}
                                </p>
                            }
                        })}
                }
            }}
            <ActionForm action=save>
                <ErrorBanner error/>
                <input type="hidden" name="connection_id" value=connection_id/>
                <div class="field">
                    <label for=label_for>"Tandem's share of the limit (%)"</label>
                    <div class="inline-input">
                        <input
                            id=input_id
                            name="share"
                            type="number"
                            min=ApiUsage::MIN_SHARE
                            max=ApiUsage::MAX_SHARE
                            step="1"
                            required=true
                            value=share_value
                            disabled=!can_manage
                            aria-describedby=described
                        />
                        <span aria-hidden="true">"%"</span>
                        <button
                            type="submit"
                            class="btn btn-secondary btn-small"
                            disabled=move || !can_manage || save.pending().get()
                            title=reason
                            aria-describedby=described
                        >
                            "Save"
                        </button>
                    </div>
                    <FieldMessage error field="share"/>
                </div>
            </ActionForm>
            {move || {
                save.value()
                    .get()
                    .and_then(Result::ok)
                    .map(|u| view! { <p class="alert alert-success" role="status">{format!("Saved: Tandem uses up to {} % of the limit.", u.share)}</p> })
            }}
        </section>
    }
}
