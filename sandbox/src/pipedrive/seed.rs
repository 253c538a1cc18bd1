//! The company a fresh Pipedrive sandbox starts with: users, two pipelines whose stage names differ
//! from HubSpot's, deal, person and organization fields (built-in and custom, with 40-character
//! keys), ten organizations with twelve persons, and generated deals linked to them.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::data::{ContactPoint, Deal, DealField, Organization, PdData, Person, Pipeline, Stage, User};
use crate::oauth::OAuthData;

fn field(id: u64, key: &str, name: &str, field_type: &str, options: Option<Vec<serde_json::Value>>, is_custom: bool) -> DealField {
    DealField { id, key: key.into(), name: name.into(), field_type: field_type.into(), options, is_custom, order_nr: id as i64 }
}

/// The custom "Lead source" deal field's key.
pub const LEAD_SOURCE_KEY: &str = "9dc80c50d78a15643bfc4ca79d76156a73a1ca0e";
/// The custom "Renewal date" deal field's key.
pub const RENEWAL_DATE_KEY: &str = "5b0d2e3ac8a7e1bd8f4c6e29a0f1d3c7b9e2a4f6";
/// The custom "Contact type" person field's key (an enum: 111 Customer, 112 Partner, 113 Prospect,
/// 114 Supplier).
pub const CONTACT_TYPE_KEY: &str = "dfdd6544a7ece4ff9397896b0109b1cea522ef3d";
/// The custom "Industry" organization field's key (text).
pub const INDUSTRY_KEY: &str = "ec881dc64d14d2f5e539e2f56f36625bb4a2be70";

/// When the seeded persons and organizations were added (2025-01-06T09:00:00Z).
const SEEDED_AT: i64 = 1_736_154_000_000;

/// A field definition to seed: key, name, field type, options, whether custom.
type FieldSpec<'a> = (&'a str, &'a str, &'a str, Option<Vec<serde_json::Value>>, bool);

/// Field definitions numbered from `first_id`, in the order given.
fn definitions(first_id: u64, specs: Vec<FieldSpec>) -> Vec<DealField> {
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (key, name, field_type, options, is_custom))| DealField {
            id: first_id + i as u64,
            key: key.into(),
            name: name.into(),
            field_type: field_type.into(),
            options,
            is_custom,
            order_nr: i as i64 + 1,
        })
        .collect()
}

/// The person fields (`getPersonFields`): built-in ones and the custom "Contact type".
pub fn person_fields() -> Vec<DealField> {
    let contact_types =
        ["Customer", "Partner", "Prospect", "Supplier"].iter().enumerate().map(|(i, l)| json!({"id": 111 + i, "label": l})).collect();
    definitions(
        9001,
        vec![
            ("name", "Name", "varchar", None, false),
            ("first_name", "First name", "varchar", None, false),
            ("last_name", "Last name", "varchar", None, false),
            ("email", "Email", "varchar", None, false),
            ("phone", "Phone", "phone", None, false),
            ("org_id", "Organization", "org", None, false),
            ("owner_id", "Owner", "user", None, false),
            ("visible_to", "Visible to", "visible_to", None, false),
            ("add_time", "Person created", "date", None, false),
            ("update_time", "Update time", "date", None, false),
            (CONTACT_TYPE_KEY, "Contact type", "enum", Some(contact_types), true),
        ],
    )
}

/// The organization fields (`getOrganizationFields`): built-in ones and the custom "Industry".
pub fn organization_fields() -> Vec<DealField> {
    definitions(
        4001,
        vec![
            ("name", "Name", "varchar", None, false),
            ("owner_id", "Owner", "user", None, false),
            ("address", "Address", "address", None, false),
            ("website", "Website", "varchar", None, false),
            ("visible_to", "Visible to", "visible_to", None, false),
            ("add_time", "Organization created", "date", None, false),
            ("update_time", "Update time", "date", None, false),
            (INDUSTRY_KEY, "Industry", "varchar", None, true),
        ],
    )
}

/// The seeded organizations (ids 101–110, in this order): name, domain, address, industry.
pub const ORGANIZATIONS: [(&str, &str, &str, &str); 10] = [
    ("Northwind Traders", "northwind.example", "Friedrichstraße 68, 10117 Berlin, Germany", "Wholesale"),
    ("Contoso Ltd", "contoso.example", "1 Contoso Way, Redmond, WA 98052, USA", "Software"),
    ("Fabrikam Inc", "fabrikam.example", "350 Fifth Avenue, New York, NY 10118, USA", "Manufacturing"),
    ("Tailspin Toys", "tailspintoys.example", "12 Market Street, Manchester M1 1PT, UK", "Retail"),
    ("Litware Inc", "litware.example", "Keizersgracht 123, 1015 CJ Amsterdam, Netherlands", "Software"),
    ("Adventure Works Cycles", "adventure-works.example", "Via Torino 45, 20123 Milano, Italy", "Sporting goods"),
    ("Proseware Inc", "proseware.example", "Rue de Rivoli 100, 75001 Paris, France", "Consulting"),
    ("Wingtip Toys", "wingtiptoys.example", "Kungsgatan 7, 111 43 Stockholm, Sweden", "Retail"),
    ("Woodgrove Bank", "woodgrovebank.example", "Bahnhofstrasse 10, 8001 Zürich, Switzerland", "Financial services"),
    ("Lucerne Publishing", "lucernepublishing.example", "Calle de Alcalá 50, 28014 Madrid, Spain", "Media"),
];

/// The seeded persons (ids 201–212, in this order): name, organization (index into
/// `ORGANIZATIONS`), phone, "Contact type" option.
pub const PERSONS: [(&str, usize, &str, u64); 12] = [
    ("Anna Keller", 0, "+49 30 5550 1201", 111),
    ("Jonas Weber", 0, "+49 30 5550 1202", 111),
    ("Priya Raman", 1, "+1 425 555 0143", 111),
    ("Marcus Lee", 2, "+1 212 555 0178", 113),
    ("Olivia Bennett", 3, "+44 161 555 0192", 112),
    ("Daan de Vries", 4, "+31 20 555 0114", 111),
    ("Giulia Romano", 5, "+39 02 5550 1166", 113),
    ("Camille Laurent", 6, "+33 1 55 50 01 27", 112),
    ("Erik Lindqvist", 7, "+46 8 555 012 34", 113),
    ("Lukas Meier", 8, "+41 44 555 01 88", 111),
    ("Sophie Brunner", 8, "+41 44 555 01 89", 114),
    ("Lucía Fernández", 9, "+34 91 555 0137", 113),
];

/// `anna.keller@northwind.example` for "Anna Keller" at Northwind Traders.
fn email(name: &str, domain: &str) -> String {
    let local: String = name
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(".")
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' => 'a',
            'é' | 'è' => 'e',
            'í' => 'i',
            'ó' | 'ö' => 'o',
            'ú' | 'ü' => 'u',
            c => c,
        })
        .collect();
    format!("{local}@{domain}")
}

fn person(id: u64, name: &str, owner: u64, org_id: Option<u64>, email: String, phone: Option<&str>, at: i64) -> Person {
    let mut person = Person::new(id, owner, at);
    person.set_name(name);
    person.org_id = org_id;
    person.emails = vec![ContactPoint { value: email, primary: true, label: "work".into() }];
    person.phones = phone.map(|p| ContactPoint { value: p.into(), primary: true, label: "work".into() }).into_iter().collect();
    person
}

fn seed_contacts(data: &mut PdData) {
    let owners: Vec<u64> = data.users.iter().map(|u| u.id).collect();
    for (i, (name, domain, address, industry)) in ORGANIZATIONS.iter().enumerate() {
        let id = 101 + i as u64;
        let mut org = Organization::new(id, owners[i % owners.len()], SEEDED_AT + i as i64 * 3_600_000);
        org.name = (*name).into();
        org.address = Some((*address).into());
        org.website = Some(format!("https://www.{domain}"));
        org.custom_fields.insert(INDUSTRY_KEY.into(), json!(industry));
        data.organizations.insert(id, org);
    }
    for (i, (name, org, phone, contact_type)) in PERSONS.iter().enumerate() {
        let id = 201 + i as u64;
        let at = SEEDED_AT + 86_400_000 + i as i64 * 3_600_000;
        let mut p =
            person(id, name, owners[*org % owners.len()], Some(101 + *org as u64), email(name, ORGANIZATIONS[*org].1), Some(phone), at);
        p.custom_fields.insert(CONTACT_TYPE_KEY.into(), json!(contact_type));
        data.persons.insert(id, p);
    }
}

pub fn fresh(company_id: u64) -> PdData {
    let mut data = PdData {
        company_id,
        company_name: "Sandbox Sales Co".into(),
        company_domain: "sandbox-sales".into(),
        next_id: 0,
        users: vec![
            User { id: 13_540_001, name: "Dana Whitfield".into(), email: "dana@pipedrive-sandbox.example".into() },
            User { id: 13_540_002, name: "Ray Okoro".into(), email: "ray@pipedrive-sandbox.example".into() },
            // The same sales team works in the HubSpot sandbox: users match its owners by email.
            User { id: 13_540_003, name: "Alex Morgan".into(), email: "alex.morgan@sandbox-portal.example".into() },
            User { id: 13_540_004, name: "Sam Lee".into(), email: "sam.lee@sandbox-portal.example".into() },
        ],
        pipelines: BTreeMap::new(),
        stages: BTreeMap::new(),
        deal_fields: Vec::new(),
        deals: Default::default(),
        changelog: BTreeMap::new(),
        person_fields: person_fields(),
        organization_fields: organization_fields(),
        persons: Default::default(),
        organizations: Default::default(),
        oauth: OAuthData::default(),
        webhooks: Vec::new(),
        outbox: Vec::new(),
    };
    let pipelines: [(&str, &[(&str, i64)]); 2] = [
        (
            "Sales",
            &[("Qualified", 10), ("Contact Made", 20), ("Meeting Scheduled", 40), ("Proposal Made", 60), ("Negotiations Started", 80)],
        ),
        ("Renewals", &[("Renewal Due", 30), ("Quote Sent", 60), ("Verbal Yes", 90)]),
    ];
    for (order, (name, stages)) in pipelines.iter().enumerate() {
        let pipeline_id = (order + 1) as u64;
        data.pipelines.insert(
            pipeline_id,
            Pipeline {
                id: pipeline_id,
                name: (*name).into(),
                order_nr: order as i64,
                is_deleted: false,
                is_deal_probability_enabled: true,
                add_time: 0,
                update_time: 0,
            },
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
        field(
            6,
            "status",
            "Status",
            "status",
            Some(vec![
                json!({"id": "open", "label": "Open"}),
                json!({"id": "won", "label": "Won"}),
                json!({"id": "lost", "label": "Lost"}),
                json!({"id": "deleted", "label": "Deleted"}),
            ]),
            false,
        ),
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
            Some(vec![
                json!({"id": 101, "label": "Website"}),
                json!({"id": 102, "label": "Referral"}),
                json!({"id": 103, "label": "Event"}),
            ]),
            true,
        ),
        field(16, RENEWAL_DATE_KEY, "Renewal date", "date", None, true),
    ];
    seed_contacts(&mut data);
    data.next_id = 1000;
    data
}

const NAMES: [&str; 10] =
    ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adventure Works", "Proseware", "Wingtip", "Woodgrove", "Lucerne"];

/// Adds generated deals, the same for the same `seed`. A deal titled after a company ("Contoso
/// deal #4") is linked to that organization, when it exists, and to one of its persons.
pub fn generate(data: &mut PdData, deals: usize, seed: u64, at: i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let stages: Vec<(u64, u64)> = data.stages.values().filter(|s| !s.is_deleted).map(|s| (s.id, s.pipeline_id)).collect();
    let owners: Vec<u64> = data.users.iter().map(|u| u.id).collect();
    let links: Vec<Option<(u64, Vec<u64>)>> = NAMES
        .iter()
        .map(|name| {
            let org = data.organizations.values().find(|o| !o.is_deleted && o.name.starts_with(name))?;
            let persons = data.persons.values().filter(|p| !p.is_deleted && p.org_id == Some(org.id)).map(|p| p.id).collect();
            Some((org.id, persons))
        })
        .collect();
    for i in 0..deals {
        let id = data.next_id();
        let (stage_id, pipeline_id) = stages[rng.gen_range(0..stages.len())];
        let mut custom_fields = BTreeMap::new();
        custom_fields.insert(LEAD_SOURCE_KEY.to_string(), json!([101, 102, 103][rng.gen_range(0..3)]));
        let owner = owners[rng.gen_range(0..owners.len())];
        let mut deal = Deal::new(id, owner, at);
        let company = rng.gen_range(0..NAMES.len());
        deal.title = format!("{} deal #{i}", NAMES[company]);
        if let Some((org_id, persons)) = &links[company] {
            deal.org_id = Some(*org_id);
            deal.person_id = (!persons.is_empty()).then(|| persons[i % persons.len()]);
        }
        deal.pipeline_id = pipeline_id;
        deal.stage_id = stage_id;
        deal.value = f64::from(rng.gen_range(5..500) * 100);
        deal.expected_close_date = Some(crate::time::iso_seconds(at + rng.gen_range(1..120) * 86_400_000)[..10].to_string());
        deal.custom_fields = custom_fields;
        data.deals.insert(id, deal);
    }
}

const FIRST_NAMES: [&str; 16] = [
    "Emma", "Liam", "Mia", "Noah", "Hannah", "Felix", "Chloe", "Mateo", "Ines", "Oskar", "Aisha", "Tomas", "Yuki", "Ravi", "Elena",
    "Samuel",
];
const LAST_NAMES: [&str; 16] = [
    "Schmidt", "Novak", "Jensen", "Costa", "Dubois", "Kowalski", "Nakamura", "Patel", "Murphy", "Silva", "Horvat", "Berg", "Rossi",
    "Okafor", "Smith", "Fischer",
];
const COMPANIES: [&str; 12] =
    ["Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Cyberdyne", "Stark", "Wonka", "Oscorp", "Acme", "Tyrell"];
const SUFFIXES: [&str; 5] = ["GmbH", "Ltd", "Inc", "AG", "Group"];
const INDUSTRIES: [&str; 6] = ["Software", "Retail", "Manufacturing", "Logistics", "Healthcare", "Financial services"];

/// Adds generated organizations, then persons linked to a random live organization (emails on its
/// domain), the same for the same `seed`.
pub fn generate_contacts(data: &mut PdData, organizations: usize, persons: usize, seed: u64, at: i64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(0x0c0a_7ac7));
    let owners: Vec<u64> = data.users.iter().map(|u| u.id).collect();
    for _ in 0..organizations {
        let id = data.next_id();
        let company = COMPANIES[rng.gen_range(0..COMPANIES.len())];
        let mut org = Organization::new(id, owners[rng.gen_range(0..owners.len())], at);
        org.name = format!("{company} {}", SUFFIXES[rng.gen_range(0..SUFFIXES.len())]);
        org.website = Some(format!("https://www.{}.example", company.to_lowercase()));
        org.custom_fields.insert(INDUSTRY_KEY.into(), json!(INDUSTRIES[rng.gen_range(0..INDUSTRIES.len())]));
        data.organizations.insert(id, org);
    }
    let orgs: Vec<(u64, String)> = data
        .organizations
        .values()
        .filter(|o| !o.is_deleted)
        .map(|o| {
            let domain = o.website.as_deref().and_then(|w| w.strip_prefix("https://www.")).map(str::to_string);
            (o.id, domain.unwrap_or_else(|| format!("{}.example", o.name.split_whitespace().next().unwrap_or("company").to_lowercase())))
        })
        .collect();
    for _ in 0..persons {
        let id = data.next_id();
        let name = format!("{} {}", FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())], LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())]);
        let (org_id, domain) = if orgs.is_empty() {
            (None, "example.com".to_string())
        } else {
            let (id, domain) = &orgs[rng.gen_range(0..orgs.len())];
            (Some(*id), domain.clone())
        };
        let phone = format!("+1 555 01{:02}", rng.gen_range(0..100));
        let mut p = person(id, &name, owners[rng.gen_range(0..owners.len())], org_id, email(&name, &domain), Some(&phone), at);
        p.custom_fields.insert(CONTACT_TYPE_KEY.into(), json!(rng.gen_range(111..=114)));
        data.persons.insert(id, p);
    }
}
