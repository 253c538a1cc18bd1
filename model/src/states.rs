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
        assert_eq!(Phase::InitialHubSpot.as_str(), "initial_hubspot");
    }

    #[test]
    fn an_unknown_word_is_an_error_that_names_it() {
        let e = RecordState::try_from("merged".to_string()).unwrap_err();
        assert_eq!(e.to_string(), "“merged” is not a record state");
        assert!(RunOutcome::parse("Succeeded").is_none(), "words are exact");
        assert!(serde_json::from_str::<EventKind>("\"renamed\"").is_err());
    }
}
