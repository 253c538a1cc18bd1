//! The company a fresh Pipedrive sandbox starts with: users, two pipelines whose stage names differ
//! from HubSpot's, deal fields (built-in and custom, with 40-character keys), and generated deals.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::data::{Deal, DealField, PdData, Pipeline, Stage, User};
use crate::oauth::OAuthData;

fn field(id: u64, key: &str, name: &str, field_type: &str, options: Option<Vec<serde_json::Value>>, is_custom: bool) -> DealField {
    DealField { id, key: key.into(), name: name.into(), field_type: field_type.into(), options, is_custom, order_nr: id as i64 }
}

/// The custom "Lead source" deal field's key.
pub const LEAD_SOURCE_KEY: &str = "9dc80c50d78a15643bfc4ca79d76156a73a1ca0e";
/// The custom "Renewal date" deal field's key.
pub const RENEWAL_DATE_KEY: &str = "5b0d2e3ac8a7e1bd8f4c6e29a0f1d3c7b9e2a4f6";

pub fn fresh(company_id: u64) -> PdData {
    let mut data = PdData {
        company_id,
        company_name: "Sandbox Sales Co".into(),
        company_domain: "sandbox-sales".into(),
        next_id: 0,
        users: vec![
            User { id: 13_540_001, name: "Dana Whitfield".into(), email: "dana@pipedrive-sandbox.example".into() },
            User { id: 13_540_002, name: "Ray Okoro".into(), email: "ray@pipedrive-sandbox.example".into() },
        ],
        pipelines: BTreeMap::new(),
        stages: BTreeMap::new(),
        deal_fields: Vec::new(),
        deals: BTreeMap::new(),
        changelog: BTreeMap::new(),
        oauth: OAuthData::default(),
    };
    let pipelines: [(&str, &[(&str, i64)]); 2] = [
        ("Sales", &[("Qualified", 10), ("Contact Made", 20), ("Meeting Scheduled", 40), ("Proposal Made", 60), ("Negotiations Started", 80)]),
        ("Renewals", &[("Renewal Due", 30), ("Quote Sent", 60), ("Verbal Yes", 90)]),
    ];
    for (order, (name, stages)) in pipelines.iter().enumerate() {
        let pipeline_id = (order + 1) as u64;
        data.pipelines.insert(
            pipeline_id,
            Pipeline { id: pipeline_id, name: (*name).into(), order_nr: order as i64, is_deleted: false, is_deal_probability_enabled: true, add_time: 0, update_time: 0 },
        );
        for (i, (stage, probability)) in stages.iter().enumerate() {
            let id = pipeline_id * 10 + i as u64 + 1;
            data.stages.insert(
                id,
                Stage {
                    id,
                    order_nr: i as i64 + 1,
                    name: (*stage).into(),
                    is_deleted: false,
                    deal_probability: *probability,
                    pipeline_id,
                    is_deal_rot_enabled: false,
                    days_to_rotten: None,
                    add_time: 0,
                    update_time: 0,
                },
            );
        }
    }
    data.deal_fields = vec![
        field(1, "title", "Title", "varchar", None, false),
        field(2, "value", "Value", "monetary", None, false),
        field(3, "currency", "Currency", "varchar_options", None, false),
        field(4, "pipeline_id", "Pipeline", "double", None, false),
        field(5, "stage_id", "Stage", "stage", None, false),
        field(6, "status", "Status", "status", Some(vec![json!({"id": "open", "label": "Open"}), json!({"id": "won", "label": "Won"}), json!({"id": "lost", "label": "Lost"}), json!({"id": "deleted", "label": "Deleted"})]), false),
        field(7, "user_id", "Owner", "user", None, false),
        field(8, "person_id", "Contact person", "people", None, false),
        field(9, "org_id", "Organization", "org", None, false),
        field(10, "expected_close_date", "Expected close date", "date", None, false),
        field(11, "probability", "Probability", "double", None, false),
        field(12, "lost_reason", "Lost reason", "varchar", None, false),
        field(13, "add_time", "Deal created", "date", None, false),
        field(14, "update_time", "Update time", "date", None, false),
        field(
            15,
            LEAD_SOURCE_KEY,
            "Lead source",
            "enum",
            Some(vec![json!({"id": 101, "label": "Website"}), json!({"id": 102, "label": "Referral"}), json!({"id": 103, "label": "Event"})]),
            true,
        ),
        field(16, RENEWAL_DATE_KEY, "Renewal date", "date", None, true),
    ];
    data.next_id = 1000;
    data
}

const NAMES: [&str; 10] = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adventure Works", "Proseware", "Wingtip", "Woodgrove", "Lucerne"];

/// Adds generated deals, the same for the same `seed`.
pub fn generate(data: &mut PdData, deals: usize, seed: u64, at: i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let stages: Vec<(u64, u64)> = data.stages.values().filter(|s| !s.is_deleted).map(|s| (s.id, s.pipeline_id)).collect();
    let owners: Vec<u64> = data.users.iter().map(|u| u.id).collect();
    for i in 0..deals {
        let id = data.next_id();
        let (stage_id, pipeline_id) = stages[rng.gen_range(0..stages.len())];
        let mut custom_fields = BTreeMap::new();
        custom_fields.insert(LEAD_SOURCE_KEY.to_string(), json!([101, 102, 103][rng.gen_range(0..3)]));
        let owner = owners[rng.gen_range(0..owners.len())];
        let mut deal = Deal::new(id, owner, at);
        deal.title = format!("{} deal #{i}", NAMES[rng.gen_range(0..NAMES.len())]);
        deal.pipeline_id = pipeline_id;
        deal.stage_id = stage_id;
        deal.value = f64::from(rng.gen_range(5..500) * 100);
        deal.expected_close_date = Some(crate::time::iso_seconds(at + rng.gen_range(1..120) * 86_400_000)[..10].to_string());
        deal.custom_fields = custom_fields;
        data.deals.insert(id, deal);
    }
}
