//! Tandem's webhook check against what the HubSpot sandbox signs.

use engine::connectors::hubspot::{verify_webhook_v3, WebhookRefusal};

#[test]
fn tandem_accepts_what_the_hubspot_sandbox_signs() {
    let uri = "http://127.0.0.1:3000/webhooks/hubspot";
    let body = r#"[{"eventId":1,"subscriptionType":"deal.creation","objectId":1001}]"#;
    let now = 1_764_400_000_000_i64;
    let ts = now.to_string();
    let signature = sandbox::hubspot::webhooks::signature_v3("tandem-sandbox-secret", "POST", uri, body, &ts);
    assert_eq!(verify_webhook_v3("tandem-sandbox-secret", "POST", uri, body.as_bytes(), Some(&ts), Some(&signature), now + 1_000), Ok(()));
    let tampered = body.replace("1001", "1002");
    assert_eq!(
        verify_webhook_v3("tandem-sandbox-secret", "POST", uri, tampered.as_bytes(), Some(&ts), Some(&signature), now),
        Err(WebhookRefusal::BadSignature)
    );
}
