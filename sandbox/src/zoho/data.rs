//! What the Zoho CRM sandbox stores: the organisation, its users, the field definitions, layouts
//! and pipelines of Deals, Contacts and Accounts, their records, and what was deleted.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::oauth::OAuthData;
use crate::table::{Row, Table};

/// The modules the sandbox serves, by their API names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Module {
    Deals,
    Contacts,
    Accounts,
}

impl Module {
    pub const ALL: [Module; 3] = [Module::Deals, Module::Contacts, Module::Accounts];

    pub fn api_name(self) -> &'static str {
        match self {
            Module::Deals => "Deals",
            Module::Contacts => "Contacts",
            Module::Accounts => "Accounts",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            Module::Deals => "Deal",
            Module::Contacts => "Contact",
            Module::Accounts => "Account",
        }
    }

    /// Module API names are case-insensitive in Zoho's URLs (`deals` works as `Deals`).
    pub fn parse(name: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.api_name().eq_ignore_ascii_case(name))
    }

    /// The module's id in the organisation.
    pub fn id(self, org_id: u64) -> u64 {
        crate::zoho::ids::base(org_id)
            + match self {
                Module::Deals => 2_181,
                Module::Contacts => 2_179,
                Module::Accounts => 2_177,
            }
    }

    /// The field a record is named by (a deleted record's `display_name`, a lookup's `name`).
    pub fn name_field(self) -> &'static str {
        match self {
            Module::Deals => "Deal_Name",
            Module::Contacts => "Full_Name",
            Module::Accounts => "Account_Name",
        }
    }

    /// The fields upsert checks for an existing record when the body names none (Zoho's
    /// system-defined duplicate check fields).
    pub fn default_duplicate_check(self) -> &'static [&'static str] {
        match self {
            Module::Deals => &["Deal_Name"],
            Module::Contacts => &["Email"],
            Module::Accounts => &["Account_Name"],
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub active: bool,
    pub role: String,
    pub profile: String,
}

impl User {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_string()
    }
}

/// A field definition (`GET /settings/fields`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FieldDef {
    pub id: u64,
    pub api_name: String,
    pub field_label: String,
    /// Zoho's data types: text, textarea, email, phone, website, picklist, currency, double,
    /// integer, bigint, boolean, date, datetime, lookup, ownerlookup.
    pub data_type: String,
    pub custom_field: bool,
    pub system_mandatory: bool,
    pub read_only: bool,
    pub length: u32,
    #[serde(default)]
    pub pick_list_values: Vec<String>,
    #[serde(default)]
    pub lookup: Option<Module>,
    #[serde(default)]
    pub unique: bool,
}

/// A stage of a pipeline (a `maps` entry of `GET /settings/pipeline`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Stage {
    pub id: u64,
    pub name: String,
    pub probability: i64,
    /// `Open`, `Closed Won` or `Closed Lost`.
    pub forecast_type: String,
    /// `Pipeline`, `Closed` or `Omitted`.
    pub forecast_category: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pipeline {
    pub id: u64,
    pub name: String,
    pub default: bool,
    pub stages: Vec<Stage>,
}

/// A record of any module: its system fields apart, every other value by field API name as the
/// API takes it (a lookup as the id of the record it names, as a string).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: u64,
    pub owner: u64,
    pub created_by: u64,
    pub modified_by: u64,
    /// Unix ms, whole seconds (Zoho's times have second precision).
    pub created_time: i64,
    pub modified_time: i64,
    pub fields: Fields,
}

/// A field's API name as records hold it: one shared copy of each name. Every record holds the
/// same few names; as a heap string each (100,000 deals, 15 fields), they were most of the memory
/// a page's answer touched, and comparing them most of its time.
pub type FieldName = Arc<str>;

/// The shared copy of a field name. Only names of defined fields are kept (a write's unknown
/// keys are dropped before), so the set stays as small as the field definitions.
pub fn field_name(name: &str) -> FieldName {
    static NAMES: LazyLock<RwLock<HashSet<FieldName>>> = LazyLock::new(Default::default);
    if let Some(known) = NAMES.read().unwrap_or_else(|p| p.into_inner()).get(name) {
        return known.clone();
    }
    let mut names = NAMES.write().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = names.get(name) {
        return known.clone();
    }
    let new = FieldName::from(name);
    names.insert(new.clone());
    new
}

/// A record's values by field name, sorted by name, in one allocation of just their size: a
/// deal holds a handful of the module's fields, and a tree map's node (room for eleven) per
/// record doubled what 100,000 deals took and scattered what a page's answer reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<(FieldName, Value)>);

impl Fields {
    pub fn with_capacity(n: usize) -> Fields {
        Fields(Vec::with_capacity(n))
    }

    /// Where `name` is, or would go. A linear walk: a record holds a few dozen fields at most,
    /// and the names it compares are shared and hot, where a binary search's jumps cost more.
    fn at(&self, name: &str) -> Result<usize, usize> {
        for (i, (k, _)) in self.0.iter().enumerate() {
            match (**k).cmp(name) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(i),
                std::cmp::Ordering::Greater => return Err(i),
            }
        }
        Err(self.0.len())
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.at(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.at(name).is_ok()
    }

    /// Sets `name` to `value`; the value it replaces.
    pub fn insert(&mut self, name: FieldName, value: Value) -> Option<Value> {
        match self.at(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.at(name).ok().map(|i| self.0.remove(i).1)
    }

    /// The values in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&FieldName, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Gives back room a record's writes left over.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl Extend<(FieldName, Value)> for Fields {
    fn extend<I: IntoIterator<Item = (FieldName, Value)>>(&mut self, items: I) {
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(FieldName, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (FieldName, Value)>>(items: I) -> Fields {
        let mut fields = Fields::default();
        fields.extend(items);
        fields.shrink_to_fit();
        fields
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or_else(|| panic!("no field {name}"))
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (&**k, v)))
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        let read = BTreeMap::<String, Value>::deserialize(d)?;
        Ok(read.into_iter().map(|(k, v)| (field_name(&k), v)).collect())
    }
}

impl Record {
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// The lookup's record id.
    pub fn lookup(&self, field: &str) -> Option<u64> {
        self.text(field).and_then(|s| s.parse().ok())
    }
}

impl Row for Record {
    fn id(&self) -> u64 {
        self.id
    }
    fn add_time(&self) -> i64 {
        self.created_time
    }
    fn update_time(&self) -> i64 {
        self.modified_time
    }
    fn lookup_keys(&self) -> Vec<String> {
        self.text("Email").map(|e| format!("email:{}", e.trim().to_lowercase())).into_iter().collect()
    }
}

/// A record in the recycle bin (`GET /{module}/deleted`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Deleted {
    pub record: Record,
    pub display_name: String,
    pub deleted_by: u64,
    pub deleted_time: i64,
}

/// When the sandbox organisation was set up: 2024-01-01T09:00:00Z.
pub const ORG_CREATED: i64 = 1_704_099_600_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZohoData {
    pub org_id: u64,
    pub company_name: String,
    pub next_id: u64,
    pub users: Vec<User>,
    pub fields: BTreeMap<Module, Vec<FieldDef>>,
    pub pipelines: Vec<Pipeline>,
    pub deals: Table<Record>,
    pub contacts: Table<Record>,
    pub accounts: Table<Record>,
    pub deleted: BTreeMap<Module, BTreeMap<u64, Deleted>>,
    /// When a module's fields last changed (a custom field created); the organisation's creation
    /// time when never.
    #[serde(default)]
    pub modules_modified: BTreeMap<Module, i64>,
    pub oauth: OAuthData,
    #[serde(default)]
    pub watches: Vec<super::watch::Watch>,
    /// Changes waiting for notification delivery (recorded only while channels exist; at most
    /// `watch::OUTBOX_CAP`).
    #[serde(skip)]
    pub outbox: std::collections::VecDeque<super::watch::Event>,
    /// Changes dropped from a full outbox.
    #[serde(skip)]
    pub outbox_dropped: u64,
    /// Which version of the organisation's settings (users, fields, pipelines) this is: a number
    /// no other version of any data has had, so a create made ready under one version knows
    /// whether it still holds when it is stored.
    #[serde(skip, default = "new_settings_version")]
    pub settings_version: u64,
}

/// A settings version no data has had before.
pub fn new_settings_version() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl ZohoData {
    /// A new id, Zoho-like: the organisation's 19-digit base plus a counter.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        crate::zoho::ids::base(self.org_id) + self.next_id
    }

    /// Marks the users, fields or pipelines changed.
    pub fn settings_changed(&mut self) {
        self.settings_version = new_settings_version();
    }

    pub fn table(&self, module: Module) -> &Table<Record> {
        match module {
            Module::Deals => &self.deals,
            Module::Contacts => &self.contacts,
            Module::Accounts => &self.accounts,
        }
    }

    pub fn table_mut(&mut self, module: Module) -> &mut Table<Record> {
        match module {
            Module::Deals => &mut self.deals,
            Module::Contacts => &mut self.contacts,
            Module::Accounts => &mut self.accounts,
        }
    }

    pub fn fields_of(&self, module: Module) -> &[FieldDef] {
        self.fields.get(&module).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn field(&self, module: Module, api_name: &str) -> Option<&FieldDef> {
        self.fields_of(module).iter().find(|f| f.api_name.eq_ignore_ascii_case(api_name))
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// When `module`'s fields last changed (Unix ms).
    pub fn module_modified(&self, module: Module) -> i64 {
        self.modules_modified.get(&module).copied().unwrap_or(ORG_CREATED)
    }

    pub fn default_pipeline(&self) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.default).or(self.pipelines.first())
    }

    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// The name a record shows in lookups and the recycle bin.
    pub fn display_name(&self, module: Module, record: &Record) -> String {
        match module {
            Module::Contacts => {
                let first = record.text("First_Name").unwrap_or_default();
                let last = record.text("Last_Name").unwrap_or_default();
                format!("{first} {last}").trim().to_string()
            }
            _ => record.text(module.name_field()).unwrap_or_default().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_keep_name_order_share_their_names_and_round_trip() {
        let mut f: Fields =
            [("Stage", json!("Qualification")), ("Amount", json!(5.0))].into_iter().map(|(k, v)| (field_name(k), v)).collect();
        assert_eq!(f.insert(field_name("Deal_Name"), json!("A")), None);
        assert_eq!(f.insert(field_name("Amount"), json!(7.0)), Some(json!(5.0)), "a value replaced");
        assert_eq!(f.iter().map(|(k, _)| &**k).collect::<Vec<_>>(), ["Amount", "Deal_Name", "Stage"]);
        assert_eq!(f["Amount"], json!(7.0));
        assert!(f.get("amount").is_none(), "names are exact");
        assert_eq!(f.remove("Deal_Name"), Some(json!("A")));
        assert_eq!(f.remove("Deal_Name"), None);
        assert!(!f.contains_key("Deal_Name") && f.len() == 2);

        // Stored as a JSON object; read back, the names are the shared copies.
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, r#"{"Amount":7.0,"Stage":"Qualification"}"#);
        let back: Fields = serde_json::from_str(&text).unwrap();
        assert_eq!(back, f);
        let (a, b) = (back.iter().next().unwrap().0, f.iter().next().unwrap().0);
        assert!(Arc::ptr_eq(a, b), "one copy of each name");
    }
}
