//! Records as the engine reads and writes them on any side, and the [`Records`] trait each
//! provider implements for one object on one connection (HubSpot's in `hubspot/records.rs`,
//! Pipedrive's in `pipedrive/records.rs`). Values travel as raw text keyed by field (a deal's
//! place in a pipeline under [`STAGE`]); the planner canonicalises and translates them.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::BoxFuture;
use serde_json::Value;

use model::apps::ObjectKind;
use model::sync::{FieldInfo, FieldKind};

use super::http::{ApiError, Category};

/// The key under which a deal's `pipeline/stage` travels.
pub const STAGE: &str = "__stage";

/// A record as read from one side.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteRecord {
    pub id: String,
    pub updated_at: i64,
    pub name: String,
    pub tandem_id: Option<String>,
    /// Contacts and companies: the normalised email or domain they are matched on.
    pub match_key: Option<String>,
    /// Raw values by field key, plus [`STAGE`] for deals.
    pub values: BTreeMap<String, Option<String>>,
}

/// Field values by key, as sent to one side.
pub type Values = BTreeMap<String, Option<String>>;
/// A record to write: its id (or Tandem id, for a create) and values.
pub type Input = (String, Values);
/// What became of each write, by the same id: the record as it now is, or why not.
pub type Outcomes = HashMap<String, Result<RemoteRecord, ApiError>>;
/// When fields last changed, by record id and field key (Unix ms).
pub type FieldTimesById = HashMap<String, HashMap<String, i64>>;

/// A page of records and where the next one starts.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<RemoteRecord>,
    pub next: Option<String>,
}

/// One side's records of one object, on one connection: what the engine reads and writes.
pub trait Records: Send + Sync {
    /// Every record, a page at a time (the initial sync), from `cursor`.
    fn list<'s>(&'s self, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>>;

    /// How many records the account holds (for the initial sync's progress).
    fn count(&self) -> BoxFuture<'_, Result<i64, ApiError>>;

    /// Records changed at or after `since` (Unix ms), oldest change first, from `cursor`.
    fn changed_since<'s>(&'s self, since: i64, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>>;

    /// How long after a change (ms) [`Records::changed_since`] is sure to include it, by
    /// Tandem's clock: a change stamped just before its commit, HubSpot's search index trailing
    /// its writes, and the provider's clock running behind Tandem's. Changes newer than that,
    /// as of the read, are read again by the next run; older ones never are.
    fn settles_within_ms(&self) -> i64 {
        5_000
    }

    /// The records with these ids that still exist (a missing id was deleted).
    fn read<'s>(&'s self, ids: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>>;

    /// Creates records, each carrying its Tandem id (the input's id); answers per Tandem id the
    /// new record or why not. An outcome that is unknown (the connection dropped) is a Network
    /// error: the record may exist, and recovery looks for its Tandem id before creating again.
    fn create(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes>;

    /// Updates records; answers per id the record as it now is, or why not.
    fn update(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes>;

    /// When each of `fields` last changed on these records, where the provider keeps that
    /// (HubSpot's property history, Pipedrive's deal changelog). Records and fields it does not
    /// time are left out: the engine times them by the record's last change.
    fn field_times<'s>(&'s self, ids: &'s [String], fields: &'s [String]) -> BoxFuture<'s, Result<FieldTimesById, ApiError>>;

    /// Records carrying one of these Tandem ids, changed at or after `since` (recovery after a
    /// create whose outcome is unknown).
    fn find_tandem_ids<'s>(&'s self, tandem_ids: &'s [String], since: i64) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>>;

    /// Records whose match field (a contact's email, a company's domain) holds one of these
    /// keys, where the provider can search for them; an empty answer where it cannot.
    fn find_by_match_keys<'s>(&'s self, keys: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        let _ = keys;
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// HubSpot's side of every sync: its records, and the associations between them (a deal's
/// contacts and companies), which HubSpot keeps apart from the records' properties.
pub trait HubRecords: Records {
    /// The default associations of these records with records of `to` (`contacts`,
    /// `companies`): per record id, the associated ids in HubSpot's numeric order.
    fn associations<'s>(&'s self, to: &'s str, ids: &'s [String]) -> BoxFuture<'s, Result<HashMap<String, Vec<String>>, ApiError>>;

    /// Adds the default association from each record to a record of `to`, and removes the
    /// `remove` ones: (record id, associated id) pairs.
    fn associate<'s>(
        &'s self,
        to: &'s str,
        add: &'s [(String, String)],
        remove: &'s [(String, String)],
    ) -> BoxFuture<'s, Result<(), ApiError>>;
}

/// Pages read one after another from `cursor` until at least `at_least` records are in hand or
/// the list ends: the initial sync decides, writes and commits that many at once (HubSpot lists
/// 100 a page), and answers the cursor after the last page read.
pub async fn list_at_least(records: &dyn Records, cursor: Option<&str>, at_least: usize) -> Result<Page, ApiError> {
    let mut page = records.list(cursor).await?;
    while page.records.len() < at_least {
        let Some(next) = page.next.take() else { break };
        let more = records.list(Some(&next)).await?;
        page.records.extend(more.records);
        page.next = more.next;
    }
    Ok(page)
}

/// How a side's records of one object are written, for the planner: the name a new record must
/// hold, and fields that travel together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordRules {
    /// The field a new record must hold a name in (the source record's name fills it when no
    /// mapping does), unless one of `name_from` is written.
    pub name_field: Option<&'static str>,
    pub name_from: &'static [&'static str],
    /// Pairs of fields the provider keeps as one value: when one changes, both are sent.
    pub written_together: &'static [(&'static str, &'static str)],
}

/// What a sync of `object` and the records it reads need to know of one side: the fields to
/// read, where the Tandem id lives, and the side's field kinds.
#[derive(Clone)]
pub struct RecordSpec<'a> {
    pub object: ObjectKind,
    /// Field keys to read (mapped fields and filter fields).
    pub fields: Vec<String>,
    /// The field holding the Tandem id.
    pub tandem_key: String,
    pub schema: &'a [FieldInfo],
}

impl RecordSpec<'_> {
    pub fn kind(&self, key: &str) -> FieldKind {
        self.schema.iter().find(|f| f.key == key).map(|f| f.kind).unwrap_or(FieldKind::Text)
    }
}

/// Contacts and companies are matched across the apps (by email, by domain); deals never are.
pub fn is_matched(object: ObjectKind) -> bool {
    object != ObjectKind::Deal
}

/// The match key of a value: an email in lower case; a domain without scheme, `www.`, path or
/// port, in lower case. `None` when there is nothing to match on.
pub fn match_key(object: ObjectKind, value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    match object {
        ObjectKind::Deal => None,
        ObjectKind::Contact => value.contains('@').then(|| value.to_lowercase()),
        ObjectKind::Company => {
            let lower = value.to_lowercase();
            let rest = lower.split_once("://").map(|(_, r)| r).unwrap_or(&lower);
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
            let host = host.split(':').next().unwrap_or_default();
            let host = host.strip_prefix("www.").unwrap_or(host).trim_end_matches('.');
            (host.contains('.') && !host.contains(char::is_whitespace)).then(|| host.to_string())
        }
    }
}

/// A JSON value as text: numbers and booleans written out, `{value}` objects unwrapped, lists
/// joined with commas.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("value").and_then(text),
        Value::Array(a) => Some(a.iter().filter_map(text).collect::<Vec<_>>().join(",")),
    }
}

/// A provider's answer that lacks what it should hold.
pub fn unexpected(provider: &str, what: &str) -> ApiError {
    ApiError::new(Category::Provider, None, format!("{provider} answered without {what}"))
}
