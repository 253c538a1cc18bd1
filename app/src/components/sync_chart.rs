//! Records synced and errors per hour or day, as a server-rendered SVG bar chart: readable
//! without JavaScript, described for screen readers, with the figures in a table beside it.

use leptos::prelude::*;
use model::dashboard::{thousands, Chart, ChartRange};
use model::timefmt;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

fn bucket_label(range: ChartRange, start: i64) -> String {
    let iso = timefmt::iso_seconds(start);
    match range {
        // 2026-11-29T14:00:00Z → 14:00
        ChartRange::Day => iso.get(11..16).unwrap_or_default().to_string(),
        // → 11-29
        ChartRange::Week | ChartRange::Month => iso.get(5..10).unwrap_or_default().to_string(),
    }
}

#[component]
pub fn SyncChart(chart: Chart) -> impl IntoView {
    let range = chart.range;
    let n = chart.buckets.len().max(1) as f64;
    let max = chart.buckets.iter().map(|b| b.synced.max(b.errors)).max().unwrap_or(0).max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / n;
    let bar = (slot * 0.38).max(1.0);
    let y = move |v: i64| TOP + plot_h - plot_h * (v as f64 / max as f64);
    let total_synced: i64 = chart.buckets.iter().map(|b| b.synced).sum();
    let total_errors: i64 = chart.buckets.iter().map(|b| b.errors).sum();
    let count = |n: i64, one: &str, many: &str| format!("{} {}", thousands(n), if n == 1 { one } else { many });
    let summary = format!(
        "{}: {} synced and {}, per {}.",
        range.label(),
        count(total_synced, "record", "records"),
        count(total_errors, "error", "errors"),
        if range == ChartRange::Day { "hour" } else { "day" }
    );
    let every = if chart.buckets.len() > 12 { chart.buckets.len().div_ceil(8) } else { 1 };
    let bars = chart
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = LEFT + slot * i as f64 + slot * 0.1;
            let label = bucket_label(range, b.start);
            let tip = format!("{label}: {} synced, {} errors", thousands(b.synced), thousands(b.errors));
            view! {
                <g class="chart-bucket">
                    <title>{tip}</title>
                    <rect class="bar-synced" x=format!("{x:.1}") y=format!("{:.1}", y(b.synced)) width=format!("{bar:.1}") height=format!("{:.1}", TOP + plot_h - y(b.synced))/>
                    <rect class="bar-errors" x=format!("{:.1}", x + bar) y=format!("{:.1}", y(b.errors)) width=format!("{bar:.1}") height=format!("{:.1}", TOP + plot_h - y(b.errors))/>
                    {(i % every == 0)
                        .then(|| view! { <text class="chart-axis" x=format!("{:.1}", x + bar) y=format!("{:.1}", HEIGHT - 6.0) text-anchor="middle">{label.clone()}</text> })}
                </g>
            }
        })
        .collect_view();
    let rows = chart
        .buckets
        .iter()
        .map(|b| view! { <tr><th scope="row">{bucket_label(range, b.start)}</th><td>{thousands(b.synced)}</td><td>{thousands(b.errors)}</td></tr> })
        .collect_view();
    view! {
        <figure class="chart" data-range=range.as_str() data-synced=total_synced data-errors=total_errors>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-labelledby="chart-title chart-desc" class="chart-svg">
                <title id="chart-title">{format!("Records synced and errors, {}", range.label().to_lowercase())}</title>
                <desc id="chart-desc">{summary.clone()}</desc>
                <line class="chart-baseline" x1=LEFT y1=TOP + plot_h x2=WIDTH y2=TOP + plot_h/>
                <text class="chart-axis" x=LEFT - 6.0 y=TOP + 8.0 text-anchor="end">{thousands(max)}</text>
                <text class="chart-axis" x=LEFT - 6.0 y=TOP + plot_h text-anchor="end">"0"</text>
                {bars}
            </svg>
            <figcaption>
                <span class="legend legend-synced">"Records synced"</span>
                <span class="legend legend-errors">"Errors"</span>
                <span class="hint">{summary}</span>
            </figcaption>
            <details class="chart-data">
                <summary>"Show the figures"</summary>
                <table class="table">
                    <thead><tr><th scope="col">{if range == ChartRange::Day { "Hour (UTC)" } else { "Day (UTC)" }}</th><th scope="col">"Synced"</th><th scope="col">"Errors"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </figure>
    }
}
