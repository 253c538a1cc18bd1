//! **Auto-map**: pairs HubSpot deal stages with the app's stages whose names read alike.
//!
//! Names are normalised first (case, punctuation, filler words, and the words sales teams use for
//! the same step: "appointment" and "meeting", "presentation" and "demo", "Closed Won" and "Won"),
//! then compared word by word with Jaro-Winkler similarity. Pairs are taken best first, one app
//! stage per HubSpot stage; a stage whose best candidates tie is left for the admin, and existing
//! (manual or earlier) choices are never changed.

use std::collections::HashSet;

/// A stage as both providers describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageName<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// A pair Auto-map proposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub hubspot_stage: String,
    pub app_stage: String,
    /// How alike the names read, 0 to 1.
    pub score_percent: u8,
}

/// Below this, names are not alike enough to map without the admin.
pub const THRESHOLD: f64 = 0.8;

const FILLER: [&str; 10] = ["to", "the", "a", "an", "stage", "deal", "in", "started", "closed", "phase"];
const SYNONYMS: [(&str, &str); 10] = [
    ("appointment", "meeting"),
    ("appointments", "meeting"),
    ("meetings", "meeting"),
    ("call", "meeting"),
    ("presentation", "demo"),
    ("negotiations", "negotiation"),
    ("negotiating", "negotiation"),
    ("booked", "scheduled"),
    ("lose", "lost"),
    ("win", "won"),
];

/// The words of a stage name that carry its meaning.
pub fn normalise(name: &str) -> Vec<String> {
    let lowered: String = name.to_lowercase().chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    let words: Vec<String> = lowered
        .split_whitespace()
        .map(|w| SYNONYMS.iter().find(|(from, _)| *from == w).map(|(_, to)| to.to_string()).unwrap_or_else(|| w.to_string()))
        .collect();
    let meaningful: Vec<String> = words.iter().filter(|w| !FILLER.contains(&w.as_str())).cloned().collect();
    // A name made only of filler words keeps them.
    if meaningful.is_empty() {
        words
    } else {
        meaningful
    }
}

/// How alike two stage names read, 0 to 1: the mean over both names of how well each word finds
/// a match in the other name.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalise(a), normalise(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let cover = |from: &[String], to: &[String]| -> f64 {
        from.iter().map(|w| to.iter().map(|x| word_similarity(w, x)).fold(0.0, f64::max)).sum::<f64>() / from.len() as f64
    };
    (cover(&a, &b) + cover(&b, &a)) / 2.0
}

fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        1.0
    } else {
        // Different short words ("won", "lost") must not look alike.
        let jw = strsim::jaro_winkler(a, b);
        if a.len().min(b.len()) <= 4 {
            jw * 0.8
        } else {
            jw
        }
    }
}

/// The pairs to add for the stages not yet mapped. `taken_hubspot` and `taken_app` are the stages
/// already mapped (by the admin or earlier); they are never proposed again.
pub fn auto_map(
    hubspot: &[StageName<'_>],
    app: &[StageName<'_>],
    taken_hubspot: &HashSet<String>,
    taken_app: &HashSet<String>,
) -> Vec<Proposal> {
    let free_hub: Vec<&StageName> = hubspot.iter().filter(|s| !taken_hubspot.contains(s.id)).collect();
    let free_app: Vec<&StageName> = app.iter().filter(|s| !taken_app.contains(s.id)).collect();
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for (h, hs) in free_hub.iter().enumerate() {
        for (a, aps) in free_app.iter().enumerate() {
            let score = similarity(hs.name, aps.name);
            if score >= THRESHOLD {
                candidates.push((score, h, a));
            }
        }
    }
    // Best first; the stage order breaks no ties (ties are refused below).
    candidates.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut used_hub = vec![false; free_hub.len()];
    let mut used_app = vec![false; free_app.len()];
    let mut out = Vec::new();
    for &(score, h, a) in &candidates {
        if used_hub[h] || used_app[a] {
            continue;
        }
        // A tie for this HubSpot stage (or for this app stage) among free stages: the names do
        // not say which is meant, so the admin decides.
        let tied = candidates.iter().any(|&(other, h2, a2)| {
            (other - score).abs() < 1e-9 && ((h2 == h && a2 != a && !used_app[a2]) || (a2 == a && h2 != h && !used_hub[h2]))
        });
        if tied {
            used_hub[h] = true;
            continue;
        }
        used_hub[h] = true;
        used_app[a] = true;
        out.push(Proposal {
            hubspot_stage: free_hub[h].id.to_string(),
            app_stage: free_app[a].id.to_string(),
            score_percent: (score * 100.0).round() as u8,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages<'a>(names: &[(&'a str, &'a str)]) -> Vec<StageName<'a>> {
        names.iter().map(|(id, name)| StageName { id, name }).collect()
    }

    fn pairs(proposals: &[Proposal]) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = proposals.iter().map(|p| (p.hubspot_stage.as_str(), p.app_stage.as_str())).collect();
        v.sort();
        v
    }

    /// HubSpot's default sales pipeline against Pipedrive's default one (won/lost are deal
    /// statuses in Pipedrive, offered as stages).
    #[test]
    fn hubspot_default_pipeline_against_pipedrive() {
        let hubspot = stages(&[
            ("appointmentscheduled", "Appointment Scheduled"),
            ("qualifiedtobuy", "Qualified To Buy"),
            ("presentationscheduled", "Presentation Scheduled"),
            ("decisionmakerboughtin", "Decision Maker Bought-In"),
            ("contractsent", "Contract Sent"),
            ("closedwon", "Closed Won"),
            ("closedlost", "Closed Lost"),
        ]);
        let pipedrive = stages(&[
            ("11", "Qualified"),
            ("12", "Contact Made"),
            ("13", "Meeting Scheduled"),
            ("14", "Proposal Made"),
            ("15", "Negotiations Started"),
            ("won", "Won"),
            ("lost", "Lost"),
        ]);
        let got = auto_map(&hubspot, &pipedrive, &HashSet::new(), &HashSet::new());
        assert_eq!(
            pairs(&got),
            vec![("appointmentscheduled", "13"), ("closedlost", "lost"), ("closedwon", "won"), ("qualifiedtobuy", "11")]
        );
    }

    #[test]
    fn partner_pipeline_against_custom_names() {
        let hubspot = stages(&[
            ("1", "Intro Call"),
            ("2", "Demo Done"),
            ("3", "Proposal Sent"),
            ("4", "In Negotiation"),
            ("5", "Won"),
            ("6", "Lost"),
        ]);
        let app =
            stages(&[("a", "Intro meeting"), ("b", "Demo done"), ("c", "Proposal sent"), ("d", "Negotiations Started"), ("e", "Deal won")]);
        let got = auto_map(&hubspot, &app, &HashSet::new(), &HashSet::new());
        assert_eq!(pairs(&got), vec![("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("5", "e")]);
    }

    #[test]
    fn nothing_alike_maps_nothing() {
        let hubspot = stages(&[("1", "Renewal Due"), ("2", "Quote Sent")]);
        let app = stages(&[("a", "Discovery"), ("b", "Onboarding")]);
        assert!(auto_map(&hubspot, &app, &HashSet::new(), &HashSet::new()).is_empty());
        assert!(similarity("Won", "Lost") < THRESHOLD);
        assert!(similarity("Contact Made", "Contract Sent") < THRESHOLD);
        assert!(similarity("Presentation Scheduled", "Meeting Scheduled") < THRESHOLD);
    }

    #[test]
    fn ties_are_left_for_the_admin() {
        let hubspot = stages(&[("h1", "Qualified"), ("h2", "Won")]);
        let app = stages(&[("a1", "Qualified"), ("a2", "qualified!"), ("a3", "Won")]);
        let got = auto_map(&hubspot, &app, &HashSet::new(), &HashSet::new());
        assert_eq!(pairs(&got), vec![("h2", "a3")], "two app stages read exactly like 'Qualified'");
    }

    #[test]
    fn manual_choices_are_never_overwritten() {
        let hubspot = stages(&[("closedwon", "Closed Won"), ("qualifiedtobuy", "Qualified To Buy")]);
        let app = stages(&[("won", "Won"), ("11", "Qualified")]);
        // The admin mapped Closed Won to Qualified by hand (odd, but theirs to decide).
        let taken_hub: HashSet<String> = ["closedwon".to_string()].into();
        let taken_app: HashSet<String> = ["11".to_string()].into();
        let got = auto_map(&hubspot, &app, &taken_hub, &taken_app);
        assert!(got.is_empty(), "qualifiedtobuy's only match is taken; closedwon is manual: {got:?}");
    }

    #[test]
    fn normalising_names() {
        assert_eq!(normalise("Closed Won"), vec!["won"]);
        assert_eq!(normalise("Appointment  Scheduled!"), vec!["meeting", "scheduled"]);
        assert_eq!(normalise("Decision Maker Bought-In"), vec!["decision", "maker", "bought"]);
        assert_eq!(normalise("In"), vec!["in"]);
    }
}
