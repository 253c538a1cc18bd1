//! The engine's words, as types: a synced record's state, a sync's phase, a run's trigger and
//! outcome, and the kind of a record event. The store keeps each as the word `as_str` gives and
//! decodes it once where it reads a row (an unknown word is an error there, never a silent
//! default); everything past the store matches on the type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stored word that names none of a type's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWord {
    pub kind: &'static str,
    pub word: String,
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "“{}” is not a {}", self.word, self.kind)
    }
}

impl std::error::Error for UnknownWord {}

/// An enum of unit variants, each kept as one word: `as_str`, `parse`, `ALL`, serde as that word,
/// `Display`, and `TryFrom<String>` (what the store decodes a column with).
macro_rules! words {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownWord;
            fn try_from(word: String) -> Result<$name, UnknownWord> {
                $name::parse(&word).ok_or(UnknownWord { kind: $kind, word })
            }
        }
    };
}

words! {
    /// Where a record of the identity map stands.
    RecordState, "record state" {
        /// On both sides and kept in step.
        Linked = "linked",
        /// Being created on the other side: an interrupted create is recovered before anything
        /// else reads the record again.
        Creating = "creating",
        /// Left out by the sync's rules (a stage not mapped, a filter, the direction, a duplicate).
        Excluded = "excluded",
        /// Writing it failed; the reason holds the error's category.
        Failed = "failed",
    }
}

words! {
    /// Where a sync's reading stands: the initial sync reads all of one side, then the other, then
    /// only what changed.
    Phase, "sync phase" {
        InitialHubSpot = "initial_hubspot",
        InitialApp = "initial_app",
        Incremental = "incremental",
    }
}

impl Phase {
    pub fn is_initial(self) -> bool {
        self != Phase::Incremental
    }
}

words! {
    /// What started a run.
    RunTrigger, "run trigger" {
        Initial = "initial",
        Scheduled = "scheduled",
        Webhook = "webhook",
        /// An admin asked for a retry.
        Manual = "manual",
    }
}

/// A run nobody asked for: the schedule's.
impl Default for RunTrigger {
    fn default() -> RunTrigger {
        RunTrigger::Scheduled
    }
}

impl RunTrigger {
    pub fn label(self) -> &'static str {
        match self {
            RunTrigger::Initial => "Initial sync",
            RunTrigger::Scheduled => "Scheduled",
            RunTrigger::Webhook => "Webhook",
            RunTrigger::Manual => "Manual retry",
        }
    }
}

words! {
    /// How a run ended (or that it has not yet).
    RunOutcome, "run outcome" {
        Running = "running",
        Succeeded = "succeeded",
        /// Some records failed; the rest synced.
        Partial = "partial",
        Failed = "failed",
        /// The process stopped during the run; the next run resumes from the last commit.
        Interrupted = "interrupted",
    }
}

/// A run is running until it ends.
impl Default for RunOutcome {
    fn default() -> RunOutcome {
        RunOutcome::Running
    }
}

impl RunOutcome {
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Running => "Running",
            RunOutcome::Succeeded => "Succeeded",
            RunOutcome::Partial => "Some records failed",
            RunOutcome::Failed => "Failed",
            RunOutcome::Interrupted => "Interrupted",
        }
    }
}

words! {
    /// What happened to one record in one run.
    EventKind, "event kind" {
        Created = "created",
        Updated = "updated",
        Conflict = "conflict",
        Excluded = "excluded",
        Deleted = "deleted",
        Failed = "failed",
        /// A field's value could not be translated to the other side.
        NotSynced = "not_synced",
        /// Paired with a record that already existed on the other side.
        Matched = "matched",
    }
}

impl EventKind {
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Created => "Created",
            EventKind::Updated => "Updated",
            EventKind::Conflict => "Conflict",
            EventKind::Excluded => "Excluded",
            EventKind::Deleted => "Deleted",
            EventKind::Failed => "Failed",
            EventKind::NotSynced => "Field not synced",
            EventKind::Matched => "Matched",
        }
    }
}

words! {
    /// Why the sync's rules leave a record out.
    Exclusion, "exclusion reason" {
        UnmappedStage = "unmapped_stage",
        Filter = "filter",
        Direction = "direction",
        Duplicate = "duplicate",
        /// Its counterpart was deleted in HubSpot (Tandem never deletes the other side).
        DeletedInHubSpot = "deleted_in_hubspot",
        /// Its counterpart was deleted in the app.
        DeletedInApp = "deleted_in_app",
    }
}

words! {
    /// Why a call to a provider failed, as the Health tab groups failing records.
    Category, "error category" {
        RateLimit = "rate_limit",
        Authentication = "authentication",
        Permission = "permission",
        Validation = "validation",
        NotFound = "not_found",
        Provider = "provider_error",
        Network = "network",
    }
}

impl Category {
    /// Worth trying again later without anyone changing anything.
    pub fn transient(self) -> bool {
        matches!(self, Category::RateLimit | Category::Provider | Category::Network)
    }
}

/// Why a record is excluded or failing: what a record's reason (and an event's category) says.
/// Kept as one word, either an [`Exclusion`]'s or a [`Category`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecordReason {
    Excluded(Exclusion),
    Failed(Category),
}

impl RecordReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordReason::Excluded(e) => e.as_str(),
            RecordReason::Failed(c) => c.as_str(),
        }
    }

    pub fn parse(word: &str) -> Option<RecordReason> {
        Exclusion::parse(word).map(RecordReason::Excluded).or_else(|| Category::parse(word).map(RecordReason::Failed))
    }

    /// What it says to an admin.
    pub fn label(self) -> &'static str {
        match self {
            RecordReason::Excluded(Exclusion::UnmappedStage) => "Unmapped stage",
            RecordReason::Excluded(Exclusion::Filter) => "Doesn't meet filters",
            RecordReason::Excluded(Exclusion::Direction) => "Sync direction",
            RecordReason::Excluded(Exclusion::Duplicate) => "Duplicate",
            RecordReason::Excluded(Exclusion::DeletedInHubSpot) => "Deleted in HubSpot",
            RecordReason::Excluded(Exclusion::DeletedInApp) => "Deleted in the app",
            RecordReason::Failed(Category::RateLimit) => "Rate limit",
            RecordReason::Failed(Category::Authentication) => "Authentication",
            RecordReason::Failed(Category::Permission) => "Missing permission",
            RecordReason::Failed(Category::Validation) => "Validation",
            RecordReason::Failed(Category::NotFound) => "Not found",
            RecordReason::Failed(Category::Provider) => "Provider error",
            RecordReason::Failed(Category::Network) => "Network",
        }
    }
}

impl fmt::Display for RecordReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for RecordReason {
    type Error = UnknownWord;
    fn try_from(word: String) -> Result<RecordReason, UnknownWord> {
        RecordReason::parse(&word).ok_or(UnknownWord { kind: "reason", word })
    }
}

impl From<RecordReason> for String {
    fn from(reason: RecordReason) -> String {
        reason.as_str().to_string()
    }
}

impl From<Exclusion> for RecordReason {
    fn from(e: Exclusion) -> RecordReason {
        RecordReason::Excluded(e)
    }
}

impl From<Category> for RecordReason {
    fn from(c: Category) -> RecordReason {
        RecordReason::Failed(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_value() {
        for s in RecordState::ALL {
            assert_eq!(RecordState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        for p in Phase::ALL {
            assert_eq!(Phase::try_from(p.as_str().to_string()), Ok(*p));
        }
        for t in RunTrigger::ALL {
            assert_eq!(serde_json::from_str::<RunTrigger>(&format!("\"{t}\"")).unwrap(), *t);
        }
        for o in RunOutcome::ALL {
            assert_eq!(RunOutcome::parse(o.as_str()), Some(*o));
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(EventKind::NotSynced.as_str(), "not_synced");
        for r in Exclusion::ALL.iter().map(|&e| RecordReason::from(e)).chain(Category::ALL.iter().map(|&c| RecordReason::from(c))) {
            assert_eq!(RecordReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::from_str::<RecordReason>(&serde_json::to_string(&r).unwrap()).unwrap(), r);
        }
        assert_eq!(serde_json::to_string(&RecordReason::Failed(Category::Provider)).unwrap(), "\"provider_error\"");
        assert_eq!(Phase::InitialHubSpot.as_str(), "initial_hubspot");
    }

    #[test]
    fn an_unknown_word_is_an_error_that_names_it() {
        let e = RecordState::try_from("merged".to_string()).unwrap_err();
        assert_eq!(e.to_string(), "“merged” is not a record state");
        assert!(RunOutcome::parse("Succeeded").is_none(), "words are exact");
        assert!(serde_json::from_str::<EventKind>("\"renamed\"").is_err());
        assert!(RecordReason::parse("deleted_everywhere").is_none());
    }

    #[test]
    fn a_deleted_counterpart_is_named_on_health_not_other() {
        assert_eq!(crate::dashboard::reason_label("deleted_in_app"), "Deleted in the app");
        assert_eq!(crate::dashboard::reason_label("deleted_in_hubspot"), "Deleted in HubSpot");
        assert_eq!(crate::dashboard::reason_label("provider_error"), "Provider error");
        assert_eq!(crate::dashboard::reason_label("something new"), "Other");
    }
}
