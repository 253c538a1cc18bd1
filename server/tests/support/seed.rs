//! Shared by the sync benchmarks: deals generated in the sandboxes, every one in a stage the
//! benchmarks' syncs map.

/// Generated HubSpot deals (appointment scheduled, or closed won).
#[allow(dead_code)] // Not every includer seeds HubSpot.
pub fn seed_hubspot(data: &mut sandbox::hubspot::data::HubData, deals: usize, at: i64) {
    sandbox::hubspot::seed::generate(data, deals, 0, 0, 7, at);
    if let Some(records) = data.records.get_mut(&sandbox::hubspot::data::ObjectType::Deals) {
        let mut i = 0;
        records.update_all(|record| {
            record.properties.insert("pipeline".into(), "default".into());
            record.properties.insert("dealstage".into(), if i % 4 == 3 { "closedwon" } else { "appointmentscheduled" }.into());
            i += 1;
        });
    }
}

/// Generated Pipedrive deals (Meeting Scheduled, or won).
pub fn seed_pipedrive(data: &mut sandbox::pipedrive::data::PdData, deals: usize, at: i64) {
    sandbox::pipedrive::seed::generate(data, deals, 7, at);
    let mut i = 0;
    data.deals.update_all(|deal| {
        (deal.pipeline_id, deal.stage_id) = (1, 13);
        deal.status = if i % 4 == 3 { "won" } else { "open" }.into();
        i += 1;
    });
}

/// Generated Zoho CRM deals (Standard's Qualification, or Closed Won).
#[allow(dead_code)] // Not every includer syncs Zoho CRM.
pub fn seed_zoho(data: &mut sandbox::zoho::data::ZohoData, deals: usize, at: i64) {
    sandbox::zoho::seed::generate(data, deals, 0, 0, 7, at);
    let mut i = 0;
    data.deals.update_all(|deal| {
        let (stage, probability) = if i % 4 == 3 { ("Closed Won", 100) } else { ("Qualification", 10) };
        deal.fields.insert("Pipeline".into(), serde_json::json!("Standard"));
        deal.fields.insert("Stage".into(), serde_json::json!(stage));
        deal.fields.insert("Probability".into(), serde_json::json!(probability));
        i += 1;
    });
}
