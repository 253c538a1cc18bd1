use leptos::prelude::*;
use leptos_meta::Title;

use super::auth_card::AuthCard;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <AuthCard heading="Page not found" lede="There is no page at this address.">
            <a class="btn btn-secondary btn-block" href=crate::HOME_PATH>"Back to Tandem"</a>
        </AuthCard>
    }
}
