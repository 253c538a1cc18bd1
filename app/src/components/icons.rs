//! Inline SVG icons (decorative: the links and buttons around them carry the labels).

use leptos::prelude::*;

#[component]
pub fn LogoMark() -> impl IntoView {
    view! {
        <svg class="logo-mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" focusable="false">
            <circle cx="11" cy="16" r="8" fill="none" stroke="currentColor" stroke-width="3"/>
            <circle cx="21" cy="16" r="8" fill="none" stroke="#ff8f6b" stroke-width="3"/>
        </svg>
    }
}

#[component]
pub fn MarketplaceIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path
                fill="currentColor"
                d="M4 4h16l1.5 5a3 3 0 0 1-5.25 2.6A3 3 0 0 1 12 12.9a3 3 0 0 1-4.25-1.3A3 3 0 0 1 2.5 9L4 4zm1 9.5V20h14v-6.5a4.6 4.6 0 0 1-2.75-.55A4.9 4.9 0 0 1 12 14.4a4.9 4.9 0 0 1-4.25-1.45A4.6 4.6 0 0 1 5 13.5zM9 16h6v4H9v-4z"
            />
        </svg>
    }
}

#[component]
pub fn SettingsIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path
                fill="currentColor"
                d="M19.4 13a7.5 7.5 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7.3 7.3 0 0 0-1.7-1L15 3h-4l-.4 2.9a7.3 7.3 0 0 0-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1c.5.4 1.1.8 1.7 1L11 21h4l.4-2.9c.6-.3 1.2-.6 1.7-1l2.5 1 2-3.5-2.2-1.6zM13 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7z"
                transform="translate(-1 0)"
            />
        </svg>
    }
}

#[component]
pub fn AppsIllustration() -> impl IntoView {
    view! {
        <svg class="illustration" viewBox="0 0 120 80" width="120" height="80" aria-hidden="true" focusable="false">
            <rect x="8" y="14" width="44" height="52" rx="6" fill="#eaf0f6" stroke="#cbd6e2" stroke-width="2"/>
            <rect x="68" y="14" width="44" height="52" rx="6" fill="#fff1ec" stroke="#ffbca7" stroke-width="2"/>
            <path d="M52 34h16M62 28l6 6-6 6" fill="none" stroke="#516f90" stroke-width="3" stroke-linecap="round"/>
            <path d="M68 48H52m6-6-6 6 6 6" fill="none" stroke="#c8441f" stroke-width="3" stroke-linecap="round"/>
        </svg>
    }
}
