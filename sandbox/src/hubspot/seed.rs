//! The portal a fresh sandbox starts with (HubSpot's default deal pipeline and properties, a second
//! pipeline whose stage names differ, owners) and realistic generated records.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data::{HubData, ObjectType, Owner, Pipeline, PropertyDef, PropertyOption, Stage};

fn stage(id: &str, label: &str, order: i32, probability: &str, is_closed: bool) -> Stage {
    Stage {
        id: id.into(),
        label: label.into(),
        display_order: order,
        probability: probability.into(),
        is_closed,
        created_at: 0,
        updated_at: 0,
        archived: false,
    }
}

fn prop(name: &str, label: &str, kind: &str, field_type: &str, group: &str) -> PropertyDef {
    PropertyDef {
        name: name.into(),
        label: label.into(),
        kind: kind.into(),
        field_type: field_type.into(),
        group_name: group.into(),
        description: String::new(),
        options: Vec::new(),
        hubspot_defined: true,
        read_only: false,
        unique: false,
        created_at: 0,
    }
}

fn read_only(mut p: PropertyDef) -> PropertyDef {
    p.read_only = true;
    p
}

fn options(mut p: PropertyDef, values: &[(&str, &str)]) -> PropertyDef {
    p.options = values
        .iter()
        .enumerate()
        .map(|(i, (value, label))| PropertyOption {
            label: (*label).into(),
            value: (*value).into(),
            display_order: i as i32,
            hidden: false,
        })
        .collect();
    p
}

/// Common read-only properties every object has.
fn system_properties(group: &str) -> Vec<PropertyDef> {
    vec![
        read_only(prop("hs_object_id", "Record ID", "number", "number", group)),
        read_only(prop("createdate", "Create Date", "datetime", "date", group)),
        read_only(prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group)),
    ]
}

pub fn install_defaults(data: &mut HubData) {
    data.pipelines = vec![
        Pipeline {
            id: "default".into(),
            label: "Sales Pipeline".into(),
            display_order: 0,
            stages: vec![
                stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2", false),
                stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4", false),
                stage("presentationscheduled", "Presentation Scheduled", 2, "0.6", false),
                stage("decisionmakerboughtin", "Decision Maker Bought-In", 3, "0.8", false),
                stage("contractsent", "Contract Sent", 4, "0.9", false),
                stage("closedwon", "Closed Won", 5, "1.0", true),
                stage("closedlost", "Closed Lost", 6, "0.0", true),
            ],
            created_at: 0,
            updated_at: 0,
            archived: false,
        },
        Pipeline {
            id: "75e28846-ad0d-4be2-a027-5e1da6590b98".into(),
            label: "Partner Deals".into(),
            display_order: 1,
            stages: vec![
                stage("1294821", "Intro Call", 0, "0.1", false),
                stage("1294822", "Demo Done", 1, "0.3", false),
                stage("1294823", "Proposal Sent", 2, "0.6", false),
                stage("1294824", "In Negotiation", 3, "0.8", false),
                stage("1294825", "Won", 4, "1.0", true),
                stage("1294826", "Lost", 5, "0.0", true),
            ],
            created_at: 0,
            updated_at: 0,
            archived: false,
        },
    ];
    data.owners = vec![
        Owner {
            id: "70110001".into(),
            user_id: 9_100_001,
            email: "alex.morgan@sandbox-portal.example".into(),
            first_name: "Alex".into(),
            last_name: "Morgan".into(),
        },
        Owner {
            id: "70110002".into(),
            user_id: 9_100_002,
            email: "sam.lee@sandbox-portal.example".into(),
            first_name: "Sam".into(),
            last_name: "Lee".into(),
        },
        Owner {
            id: "70110003".into(),
            user_id: 9_100_003,
            email: "jo.garcia@sandbox-portal.example".into(),
            first_name: "Jo".into(),
            last_name: "Garcia".into(),
        },
        // The same sales team works in the Pipedrive sandbox: owners match its users by email.
        Owner {
            id: "70110004".into(),
            user_id: 9_100_004,
            email: "dana@pipedrive-sandbox.example".into(),
            first_name: "Dana".into(),
            last_name: "Whitfield".into(),
        },
        Owner {
            id: "70110005".into(),
            user_id: 9_100_005,
            email: "ray@pipedrive-sandbox.example".into(),
            first_name: "Ray".into(),
            last_name: "Okoro".into(),
        },
    ];
    let owner_options: Vec<(String, String)> =
        data.owners.iter().map(|o| (o.id.clone(), format!("{} {}", o.first_name, o.last_name))).collect();
    let owner_options: Vec<(&str, &str)> = owner_options.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();

    let mut deals = vec![
        prop("dealname", "Deal Name", "string", "text", "dealinformation"),
        prop("amount", "Amount", "number", "number", "dealinformation"),
        prop("closedate", "Close Date", "datetime", "date", "dealinformation"),
        prop("pipeline", "Pipeline", "enumeration", "select", "dealinformation"),
        prop("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation"),
        options(prop("hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation"), &owner_options),
        prop("description", "Deal Description", "string", "textarea", "dealinformation"),
        options(
            prop("dealtype", "Deal Type", "enumeration", "radio", "dealinformation"),
            &[("newbusiness", "New Business"), ("existingbusiness", "Existing Business")],
        ),
        options(
            prop("hs_priority", "Priority", "enumeration", "select", "dealinformation"),
            &[("low", "Low"), ("medium", "Medium"), ("high", "High")],
        ),
    ];
    deals.extend(system_properties("dealinformation"));
    let mut contacts = vec![
        prop("firstname", "First Name", "string", "text", "contactinformation"),
        prop("lastname", "Last Name", "string", "text", "contactinformation"),
        prop("email", "Email", "string", "text", "contactinformation"),
        prop("phone", "Phone Number", "string", "phonenumber", "contactinformation"),
        prop("company", "Company Name", "string", "text", "contactinformation"),
        prop("jobtitle", "Job Title", "string", "text", "contactinformation"),
        options(prop("hubspot_owner_id", "Contact owner", "enumeration", "select", "contactinformation"), &owner_options),
    ];
    contacts.extend(system_properties("contactinformation"));
    let mut companies = vec![
        prop("name", "Company name", "string", "text", "companyinformation"),
        prop("domain", "Company Domain Name", "string", "text", "companyinformation"),
        prop("address", "Street Address", "string", "text", "companyinformation"),
        prop("industry", "Industry", "string", "text", "companyinformation"),
        prop("phone", "Phone Number", "string", "phonenumber", "companyinformation"),
        prop("city", "City", "string", "text", "companyinformation"),
        prop("country", "Country/Region", "string", "text", "companyinformation"),
        prop("numberofemployees", "Number of Employees", "number", "number", "companyinformation"),
        options(prop("hubspot_owner_id", "Company owner", "enumeration", "select", "companyinformation"), &owner_options),
    ];
    companies.extend(system_properties("companyinformation"));
    data.properties = BTreeMap::from([(ObjectType::Deals, deals), (ObjectType::Contacts, contacts), (ObjectType::Companies, companies)]);
}

const FIRST: [&str; 12] = ["Ava", "Noah", "Mia", "Liam", "Zoe", "Omar", "Ines", "Kenji", "Lea", "Ravi", "Sofia", "Tom"];
const LAST: [&str; 12] =
    ["Fischer", "Okafor", "Nakamura", "Silva", "Novak", "Haddad", "Larsen", "Rossi", "Kowalski", "Dubois", "Patel", "Meyer"];
const ORGS: [&str; 10] = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Soylent", "Cyberdyne"];
const KINDS: [&str; 5] = ["Logistics", "Analytics", "Foods", "Robotics", "Health"];

/// Adds generated records, the same for the same `seed`.
pub fn generate(data: &mut HubData, deals: usize, contacts: usize, companies: usize, seed: u64, at: i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..companies {
        let org = format!("{} {}", ORGS[i % ORGS.len()], KINDS[(i / ORGS.len()) % KINDS.len()]);
        let domain =
            format!("{}-{}{}.example", ORGS[i % ORGS.len()].to_lowercase(), KINDS[(i / ORGS.len()) % KINDS.len()].to_lowercase(), i);
        let props = BTreeMap::from([
            ("name".to_string(), format!("{org} {i}")),
            ("domain".to_string(), domain),
            ("city".to_string(), ["Berlin", "Austin", "Lagos", "Osaka", "Lyon"][rng.gen_range(0..5)].to_string()),
            ("numberofemployees".to_string(), rng.gen_range(5..5000).to_string()),
        ]);
        data.insert_record(ObjectType::Companies, props, at, "INTEGRATION");
    }
    for i in 0..contacts {
        let (first, last) = (FIRST[rng.gen_range(0..FIRST.len())], LAST[rng.gen_range(0..LAST.len())]);
        let props = BTreeMap::from([
            ("firstname".to_string(), first.to_string()),
            ("lastname".to_string(), last.to_string()),
            ("email".to_string(), format!("{}.{}{}@customer{}.example", first.to_lowercase(), last.to_lowercase(), i, i % 97)),
            ("jobtitle".to_string(), ["Buyer", "CTO", "Head of Ops", "Founder"][rng.gen_range(0..4)].to_string()),
        ]);
        data.insert_record(ObjectType::Contacts, props, at, "INTEGRATION");
    }
    let owners: Vec<String> = data.owners.iter().map(|o| o.id.clone()).collect();
    let pipelines: Vec<(String, Vec<String>)> =
        data.pipelines.iter().map(|p| (p.id.clone(), p.stages.iter().map(|s| s.id.clone()).collect())).collect();
    for i in 0..deals {
        let (pipeline, stages) = &pipelines[if rng.gen_bool(0.7) { 0 } else { 1 % pipelines.len() }];
        let props = BTreeMap::from([
            (
                "dealname".to_string(),
                format!("{} {} renewal #{i}", ORGS[rng.gen_range(0..ORGS.len())], KINDS[rng.gen_range(0..KINDS.len())]),
            ),
            ("amount".to_string(), (rng.gen_range(5..500) * 100).to_string()),
            ("closedate".to_string(), crate::time::iso_ms(at + rng.gen_range(1..120) * 86_400_000)),
            ("pipeline".to_string(), pipeline.clone()),
            ("dealstage".to_string(), stages[rng.gen_range(0..stages.len())].clone()),
            ("hubspot_owner_id".to_string(), owners[rng.gen_range(0..owners.len())].clone()),
        ]);
        data.insert_record(ObjectType::Deals, props, at, "INTEGRATION");
    }
}
