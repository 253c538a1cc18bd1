//! The centred card that frames the signed-out pages (login, first run, invitation).

use leptos::prelude::*;

use crate::components::icons::LogoMark;

#[component]
pub fn AuthCard(#[prop(into)] heading: String, #[prop(optional, into)] lede: String, children: Children) -> impl IntoView {
    view! {
        <main id="main" class="auth-page">
            <div class="auth-brand">
                <LogoMark/>
                <span>"Tandem"</span>
            </div>
            <section class="auth-card" aria-labelledby="auth-heading">
                <h1 id="auth-heading">{heading}</h1>
                {(!lede.is_empty()).then(|| view! { <p class="lede">{lede}</p> })}
                {children()}
            </section>
        </main>
    }
}
