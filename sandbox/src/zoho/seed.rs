//! A fresh Zoho CRM organisation (users, the fields and Standard layout of Deals, Contacts and
//! Accounts, the "Standard" pipeline with Zoho's default deal stages and a "Renewals" one), and
//! generated accounts, contacts and deals with realistic names.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::data::{field_name, FieldDef, Module, Pipeline, Record, Stage, User, ZohoData};
use super::ids::base;
use crate::oauth::OAuthData;

/// Id offsets in the organisation's id space.
const USERS: u64 = 1_000_000;
const FIELDS: u64 = 3_000_000;
const PIPELINES: u64 = 4_000_000;
pub const LAYOUTS: u64 = 5_000_000;
/// Records start here (after every definition).
const RECORDS: u64 = 10_000_000;

/// Zoho's default deal stages: name, probability, forecast type, forecast category.
pub const STANDARD_STAGES: [(&str, i64, &str, &str); 9] = [
    ("Qualification", 10, "Open", "Pipeline"),
    ("Needs Analysis", 20, "Open", "Pipeline"),
    ("Value Proposition", 40, "Open", "Pipeline"),
    ("Identify Decision Makers", 60, "Open", "Pipeline"),
    ("Proposal/Price Quote", 75, "Open", "Pipeline"),
    ("Negotiation/Review", 90, "Open", "Pipeline"),
    ("Closed Won", 100, "Closed Won", "Closed"),
    ("Closed Lost", 0, "Closed Lost", "Omitted"),
    ("Closed-Lost to Competition", 0, "Closed Lost", "Omitted"),
];

const RENEWAL_STAGES: [(&str, i64, &str, &str); 4] = [
    ("Renewal Due", 30, "Open", "Pipeline"),
    ("Quote Sent", 60, "Open", "Pipeline"),
    ("Closed Won", 100, "Closed Won", "Closed"),
    ("Closed Lost", 0, "Closed Lost", "Omitted"),
];

/// The id of a module's Standard layout.
pub fn layout_id(org_id: u64, module: Module) -> u64 {
    base(org_id) + LAYOUTS + module.id(0)
}

struct Def(&'static str, &'static str, &'static str, u32);

fn defs(org_id: u64, module: Module, first: u64, list: &[Def], pipelines: &[Pipeline]) -> Vec<FieldDef> {
    let mut out = Vec::new();
    let system = [
        Def("Owner", "Deal Owner", "ownerlookup", 0),
        Def("Created_By", "Created By", "ownerlookup", 0),
        Def("Modified_By", "Modified By", "ownerlookup", 0),
        Def("Created_Time", "Created Time", "datetime", 0),
        Def("Modified_Time", "Modified Time", "datetime", 0),
    ];
    for (i, Def(api_name, label, data_type, length)) in list.iter().chain(system.iter()).enumerate() {
        let label = if *api_name == "Owner" { format!("{} Owner", module.singular()) } else { (*label).to_string() };
        let mandatory = matches!(
            (module, *api_name),
            (Module::Deals, "Deal_Name" | "Stage") | (Module::Contacts, "Last_Name") | (Module::Accounts, "Account_Name")
        );
        let read_only = matches!(*api_name, "Created_By" | "Modified_By" | "Created_Time" | "Modified_Time" | "Full_Name");
        let pick_list_values: Vec<String> = match *api_name {
            // Every pipeline's stages, each once: the records API takes any of them.
            "Stage" => pipelines.iter().flat_map(|p| p.stages.iter().map(|s| s.name.clone())).fold(Vec::new(), |mut all, name| {
                if !all.contains(&name) {
                    all.push(name);
                }
                all
            }),
            "Pipeline" => pipelines.iter().map(|p| p.name.clone()).collect(),
            "Type" => vec!["-None-".into(), "Existing Business".into(), "New Business".into()],
            "Lead_Source" => {
                ["-None-", "Advertisement", "Cold Call", "Employee Referral", "External Referral", "Partner", "Web Download", "Trade Show"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }
            "Industry" => ["-None-", "Consulting", "Financial services", "Manufacturing", "Retail", "Software", "Wholesale"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            _ => Vec::new(),
        };
        let lookup = match *api_name {
            "Account_Name" if module != Module::Accounts => Some(Module::Accounts),
            "Contact_Name" => Some(Module::Contacts),
            _ => None,
        };
        out.push(FieldDef {
            id: base(org_id) + FIELDS + first + i as u64,
            api_name: (*api_name).into(),
            field_label: label,
            data_type: if lookup.is_some() { "lookup".into() } else { (*data_type).into() },
            custom_field: false,
            system_mandatory: mandatory,
            read_only,
            length: if *length == 0 { 255 } else { *length },
            pick_list_values,
            lookup,
            unique: module == Module::Contacts && *api_name == "Email",
        });
    }
    out
}

fn pipeline(org_id: u64, n: u64, name: &str, default: bool, stages: &[(&str, i64, &str, &str)]) -> Pipeline {
    Pipeline {
        id: base(org_id) + PIPELINES + n * 100,
        name: name.into(),
        default,
        stages: stages
            .iter()
            .enumerate()
            .map(|(i, (stage, probability, forecast_type, category))| Stage {
                id: base(org_id) + PIPELINES + n * 100 + i as u64 + 1,
                name: (*stage).into(),
                probability: *probability,
                forecast_type: (*forecast_type).into(),
                forecast_category: (*category).into(),
            })
            .collect(),
    }
}

pub fn fresh(org_id: u64) -> ZohoData {
    let b = base(org_id);
    let user = |n: u64, first: &str, last: &str, email: &str, active: bool, role: &str, profile: &str| User {
        id: b + USERS + n,
        first_name: first.into(),
        last_name: last.into(),
        email: email.into(),
        active,
        role: role.into(),
        profile: profile.into(),
    };
    let users = vec![
        user(1, "Priya", "Raman", "priya@zoho-sandbox.example", true, "CEO", "Administrator"),
        user(2, "Tomas", "Novak", "tomas@zoho-sandbox.example", true, "Manager", "Standard"),
        // The same sales team works in the HubSpot sandbox: users match its owners by email.
        user(3, "Alex", "Morgan", "alex.morgan@sandbox-portal.example", true, "Manager", "Standard"),
        user(4, "Sam", "Lee", "sam.lee@sandbox-portal.example", true, "Manager", "Standard"),
        user(5, "Jordan", "Ellis", "jordan@zoho-sandbox.example", false, "Manager", "Standard"),
    ];
    let pipelines = vec![pipeline(org_id, 1, "Standard", true, &STANDARD_STAGES), pipeline(org_id, 2, "Renewals", false, &RENEWAL_STAGES)];
    let mut fields = BTreeMap::new();
    fields.insert(
        Module::Deals,
        defs(
            org_id,
            Module::Deals,
            0,
            &[
                Def("Deal_Name", "Deal Name", "text", 120),
                Def("Amount", "Amount", "currency", 16),
                Def("Closing_Date", "Closing Date", "date", 0),
                Def("Pipeline", "Pipeline", "picklist", 120),
                Def("Stage", "Stage", "picklist", 120),
                Def("Probability", "Probability (%)", "integer", 3),
                Def("Type", "Type", "picklist", 120),
                Def("Lead_Source", "Lead Source", "picklist", 120),
                Def("Next_Step", "Next Step", "text", 100),
                Def("Account_Name", "Account Name", "lookup", 0),
                Def("Contact_Name", "Contact Name", "lookup", 0),
                Def("Description", "Description", "textarea", 32_000),
            ],
            &pipelines,
        ),
    );
    fields.insert(
        Module::Contacts,
        defs(
            org_id,
            Module::Contacts,
            100,
            &[
                Def("First_Name", "First Name", "text", 40),
                Def("Last_Name", "Last Name", "text", 80),
                Def("Full_Name", "Full Name", "text", 120),
                Def("Email", "Email", "email", 100),
                Def("Phone", "Phone", "phone", 30),
                Def("Mobile", "Mobile", "phone", 30),
                Def("Title", "Title", "text", 100),
                Def("Account_Name", "Account Name", "lookup", 0),
                Def("Lead_Source", "Lead Source", "picklist", 120),
                Def("Mailing_City", "Mailing City", "text", 30),
                Def("Description", "Description", "textarea", 32_000),
            ],
            &pipelines,
        ),
    );
    fields.insert(
        Module::Accounts,
        defs(
            org_id,
            Module::Accounts,
            200,
            &[
                Def("Account_Name", "Account Name", "text", 200),
                Def("Website", "Website", "website", 255),
                Def("Phone", "Phone", "phone", 30),
                Def("Industry", "Industry", "picklist", 120),
                Def("Annual_Revenue", "Annual Revenue", "currency", 16),
                Def("Employees", "Employees", "integer", 9),
                Def("Billing_City", "Billing City", "text", 30),
                Def("Description", "Description", "textarea", 32_000),
            ],
            &pipelines,
        ),
    );
    ZohoData {
        org_id,
        company_name: "Sandbox Sales Co".into(),
        next_id: RECORDS,
        users,
        fields,
        pipelines,
        deals: Default::default(),
        contacts: Default::default(),
        accounts: Default::default(),
        deleted: BTreeMap::new(),
        modules_modified: BTreeMap::new(),
        oauth: OAuthData::default(),
        watches: Vec::new(),
        outbox: Default::default(),
        outbox_dropped: 0,
        settings_version: super::data::new_settings_version(),
    }
}

const COMPANIES: [(&str, &str, &str, &str); 12] = [
    ("Northwind Traders", "northwind.example", "Berlin", "Wholesale"),
    ("Contoso Ltd", "contoso.example", "Redmond", "Software"),
    ("Fabrikam Inc", "fabrikam.example", "New York", "Manufacturing"),
    ("Tailspin Toys", "tailspintoys.example", "Manchester", "Retail"),
    ("Litware Inc", "litware.example", "Amsterdam", "Software"),
    ("Adventure Works Cycles", "adventure-works.example", "Milano", "Retail"),
    ("Proseware Inc", "proseware.example", "Paris", "Consulting"),
    ("Wingtip Toys", "wingtiptoys.example", "Stockholm", "Retail"),
    ("Woodgrove Bank", "woodgrovebank.example", "Zürich", "Financial services"),
    ("Lucerne Publishing", "lucernepublishing.example", "Madrid", "Consulting"),
    ("Globex Corporation", "globex.example", "Chicago", "Manufacturing"),
    ("Initech", "initech.example", "Austin", "Software"),
];
const FIRST_NAMES: [&str; 16] = [
    "Emma", "Liam", "Mia", "Noah", "Hannah", "Felix", "Chloe", "Mateo", "Ines", "Oskar", "Aisha", "Tomas", "Yuki", "Ravi", "Elena",
    "Samuel",
];
const LAST_NAMES: [&str; 16] = [
    "Schmidt", "Novak", "Jensen", "Costa", "Dubois", "Kowalski", "Nakamura", "Patel", "Murphy", "Silva", "Horvat", "Berg", "Rossi",
    "Okafor", "Smith", "Fischer",
];
const TITLES: [&str; 6] = ["Head of Sales", "CFO", "Procurement Manager", "IT Director", "Operations Lead", "CEO"];
const DEAL_KINDS: [&str; 6] = ["Annual licence", "Expansion", "Pilot", "Support renewal", "Onboarding package", "Enterprise upgrade"];

fn record(data: &mut ZohoData, owner: u64, at: i64, fields: Vec<(&str, Value)>) -> Record {
    let id = data.next_id();
    Record {
        id,
        owner,
        created_by: owner,
        modified_by: owner,
        created_time: at,
        modified_time: at,
        fields: fields.into_iter().map(|(k, v)| (field_name(k), v)).collect(),
    }
}

/// Adds `accounts` accounts, then `contacts` contacts on them (unique emails on the account's
/// domain), then `deals` deals linked to an account and one of its contacts, in stages of either
/// pipeline; the same for the same `seed`. Times are `at`, to the second.
pub fn generate(data: &mut ZohoData, deals: usize, contacts: usize, accounts: usize, seed: u64, at: i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let at = at / 1000 * 1000;
    let owners: Vec<u64> = data.users.iter().filter(|u| u.active).map(|u| u.id).collect();
    for i in 0..accounts {
        let (name, domain, city, industry) = COMPANIES[i % COMPANIES.len()];
        let round = i / COMPANIES.len();
        let name = if round == 0 { name.to_string() } else { format!("{name} {}", round + 1) };
        let owner = owners[rng.gen_range(0..owners.len())];
        let r = record(
            data,
            owner,
            at,
            vec![
                ("Account_Name", json!(name)),
                ("Website", json!(format!("https://www.{domain}"))),
                ("Phone", json!(format!("+1 555 01{:02}", rng.gen_range(0..100)))),
                ("Industry", json!(industry)),
                ("Employees", json!(rng.gen_range(10..5000))),
                ("Billing_City", json!(city)),
            ],
        );
        data.accounts.insert(r.id, r);
    }
    let account_ids: Vec<u64> = data.accounts.keys().copied().collect();
    for _ in 0..contacts {
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let account = (!account_ids.is_empty()).then(|| account_ids[rng.gen_range(0..account_ids.len())]);
        let domain = account
            .and_then(|a| data.accounts.get(&a))
            .and_then(|a| a.text("Website").and_then(|w| w.strip_prefix("https://www.")).map(str::to_string))
            .unwrap_or_else(|| "example.com".into());
        let n = data.next_id % 100_000;
        let email = format!("{}.{}{n}@{domain}", first.to_lowercase(), last.to_lowercase());
        let owner = owners[rng.gen_range(0..owners.len())];
        let mut fields = vec![
            ("First_Name", json!(first)),
            ("Last_Name", json!(last)),
            ("Full_Name", json!(format!("{first} {last}"))),
            ("Email", json!(email)),
            ("Phone", json!(format!("+1 555 02{:02}", rng.gen_range(0..100)))),
            ("Title", json!(TITLES[rng.gen_range(0..TITLES.len())])),
        ];
        if let Some(account) = account {
            fields.push(("Account_Name", json!(account.to_string())));
        }
        let r = record(data, owner, at, fields);
        data.contacts.insert(r.id, r);
    }
    let mut contacts_of: std::collections::HashMap<u64, Vec<u64>> = std::collections::HashMap::new();
    for c in data.contacts.values() {
        if let Some(account) = c.lookup("Account_Name") {
            contacts_of.entry(account).or_default().push(c.id);
        }
    }
    let stages: Vec<(String, String, i64)> =
        data.pipelines.iter().flat_map(|p| p.stages.iter().map(|s| (p.name.clone(), s.name.clone(), s.probability))).collect();
    for i in 0..deals {
        let owner = owners[rng.gen_range(0..owners.len())];
        let (pipeline, stage, probability) = stages[rng.gen_range(0..stages.len())].clone();
        let account = (!account_ids.is_empty()).then(|| account_ids[rng.gen_range(0..account_ids.len())]);
        let account_name =
            account.and_then(|a| data.accounts.get(&a)).and_then(|a| a.text("Account_Name")).unwrap_or("Walk-in").to_string();
        let closing = crate::time::iso_seconds(at + rng.gen_range(1..120) * 86_400_000)[..10].to_string();
        let mut fields = vec![
            ("Deal_Name", json!(format!("{account_name} — {} #{i}", DEAL_KINDS[rng.gen_range(0..DEAL_KINDS.len())]))),
            ("Amount", json!(f64::from(rng.gen_range(5..500) * 100))),
            ("Closing_Date", json!(closing)),
            ("Pipeline", json!(pipeline)),
            ("Stage", json!(stage)),
            ("Probability", json!(probability)),
            ("Type", json!(["New Business", "Existing Business"][rng.gen_range(0..2)])),
        ];
        if let Some(account) = account {
            fields.push(("Account_Name", json!(account.to_string())));
            let people = contacts_of.get(&account).map(Vec::as_slice).unwrap_or_default();
            if !people.is_empty() {
                fields.push(("Contact_Name", json!(people[i % people.len()].to_string())));
            }
        }
        let r = record(data, owner, at, fields);
        data.deals.insert(r.id, r);
    }
}
