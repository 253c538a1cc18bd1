//! The initial sync's progress bar: records done of total, rate and time left, refreshed every
//! second or so without reloading the page.

use std::time::Duration;

use leptos::prelude::*;
use model::dashboard::{thousands, Progress};

use crate::api::dashboards::sync_progress;

fn figures(p: &Progress) -> String {
    let mut text = match (p.total, p.percent()) {
        (Some(total), Some(pct)) => format!("{} of {} records ({pct} %)", thousands(p.done), thousands(total)),
        _ => format!("{} records so far", thousands(p.done)),
    };
    if p.rate > 0.0 {
        text.push_str(&format!(" · {} records/s", thousands(p.rate.round() as i64)));
    }
    if let Some(eta) = p.eta_secs {
        text.push_str(&match eta {
            0 => " · finishing".to_string(),
            s if s < 60 => format!(" · about {s} s left"),
            s if s < 3_600 => format!(" · about {} min left", (s + 59) / 60),
            s => format!(" · about {} h {} min left", s / 3_600, (s % 3_600) / 60),
        });
    }
    text
}

#[component]
pub fn InitialProgress(sync_id: String, initial: Progress) -> impl IntoView {
    let progress = RwSignal::new(Some(initial));
    let polling = StoredValue::new(None::<IntervalHandle>);
    // Effects run in the browser only: poll until the initial sync is over.
    Effect::new(move |_| {
        let id = sync_id.clone();
        let handle = set_interval_with_handle(
            move || {
                let id = id.clone();
                leptos::task::spawn_local(async move {
                    if let Ok(latest) = sync_progress(id).await {
                        if latest.is_none() {
                            if let Some(h) = polling.get_value() {
                                h.clear();
                            }
                        }
                        progress.set(latest);
                    }
                });
            },
            Duration::from_millis(1_000),
        );
        if let Ok(h) = handle {
            polling.set_value(Some(h));
        }
    });
    on_cleanup(move || {
        if let Some(h) = polling.get_value() {
            h.clear();
        }
    });
    view! {
        <section class="card progress-card" aria-labelledby="progress-title">
            {move || match progress.get() {
                Some(p) => {
                    let (value, max) = (p.done, p.total.unwrap_or(0).max(p.done));
                    view! {
                        <h2 id="progress-title">"Initial sync in progress"</h2>
                        <progress class="progress-bar" max=max.max(1) value=value aria-labelledby="progress-title" aria-describedby="progress-figures"></progress>
                        <p class="progress-figures" id="progress-figures" data-done=p.done aria-live="polite">{figures(&p)}</p>
                    }
                        .into_any()
                }
                None => view! {
                    <h2 id="progress-title">"Initial sync complete"</h2>
                    <p class="progress-figures" role="status">"Every record has been read once. Reload the page for the final counts."</p>
                }
                    .into_any(),
            }}
        </section>
    }
}
