//! The planner on its own: pages in, plans out, no database and no HTTP.

use std::collections::{BTreeMap, HashMap};

use model::apps::SyncDirection;
use model::merge::{Agreed, Side, CONFLICT_WINDOW_MS};
use model::states::{EventKind, RecordState};
use model::sync::{ConflictRule, Filter, FilterOp, SideSchema, SyncSettings};
use model::translate::OwnerPairs;
use proptest::prelude::*;

use super::{PageInput, PagePlan, Planner};
use crate::connectors::record::{RemoteRecord, STAGE};
use crate::runner::fixtures::{schemas, settings};
use crate::store::{Agreements, RecordRow};

const MINUTE: i64 = 60_000;
/// When the records in these tests last changed, unless a test says otherwise.
const T0: i64 = 1_800_000_000_000;

struct World {
    settings: SyncSettings,
    hub: SideSchema,
    app: SideSchema,
    owners: OwnerPairs,
}

impl World {
    fn new(direction: SyncDirection, rule: ConflictRule) -> World {
        let (hub, app) = schemas();
        World { settings: settings(direction, rule), hub, app, owners: OwnerPairs(vec![]) }
    }

    fn planner(&self) -> Planner<'_> {
        Planner::new("sync-1", "run-1", "Pipedrive", &self.settings, &self.hub, &self.app, &self.owners, &[], &[])
    }
}

fn hub_deal(id: &str, name: &str, amount: &str, stage: &str, at: i64) -> RemoteRecord {
    let values = BTreeMap::from([
        ("dealname".to_string(), Some(name.to_string())),
        ("amount".to_string(), Some(amount.to_string())),
        (STAGE.to_string(), Some(format!("default/{stage}"))),
    ]);
    RemoteRecord { id: id.into(), updated_at: at, name: name.into(), tandem_id: None, match_key: None, values }
}

fn app_deal(id: &str, name: &str, value: &str, stage: &str, at: i64) -> RemoteRecord {
    let values = BTreeMap::from([
        ("title".to_string(), Some(name.to_string())),
        ("value".to_string(), Some(value.to_string())),
        (STAGE.to_string(), Some(format!("1/{stage}"))),
    ]);
    RemoteRecord { id: id.into(), updated_at: at, name: name.into(), tandem_id: None, match_key: None, values }
}

/// The row of a deal linked on both sides, agreeing on `name` and `amount` in the mapped stage,
/// each side last seen at `seen`.
fn linked(name: &str, amount: &str, seen: i64) -> RecordRow {
    let agreed = BTreeMap::from([
        ("dealname>title".to_string(), Agreed { hub: Some(name.into()), app: Some(name.into()) }),
        ("amount>value".to_string(), Agreed { hub: Some(amount.into()), app: Some(amount.into()) }),
        (STAGE.to_string(), Agreed { hub: Some("default/a".into()), app: Some("1/10".into()) }),
    ]);
    RecordRow {
        id: "t1".into(),
        sync_id: "sync-1".into(),
        hubspot_id: Some("h1".into()),
        app_id: Some("p1".into()),
        state: RecordState::Linked,
        origin: "hubspot".into(),
        name: name.into(),
        agreed: Agreements(agreed),
        hub_seen_at: Some(seen),
        app_seen_at: Some(seen),
        created_at: seen,
        updated_at: seen,
        reason: None,
        message: None,
        create_on: None,
        match_key: None,
        pending: None,
    }
}

/// A page of `records` read from `side`, with the identity map holding `rows` and the other
/// side holding `counterparts`.
fn page(side: Side, records: Vec<RemoteRecord>, rows: Vec<RecordRow>, counterparts: Vec<RemoteRecord>) -> PageInput {
    let rows = rows
        .into_iter()
        .filter_map(|r| {
            let id = if side == Side::HubSpot { r.hubspot_id.clone() } else { r.app_id.clone() };
            Some((id?, r))
        })
        .collect();
    PageInput {
        side,
        records,
        rows,
        by_tandem: HashMap::new(),
        matches: HashMap::new(),
        counterparts: counterparts.into_iter().map(|r| (r.id.clone(), r)).collect(),
        hub_times: HashMap::new(),
        app_times: HashMap::new(),
        force: false,
        now: T0 + 60 * MINUTE,
    }
}

fn kinds(plan: &PagePlan) -> Vec<(String, String)> {
    plan.events.iter().map(|e| (e.kind.as_str().to_string(), e.side.as_str().to_string())).collect()
}

#[test]
fn a_new_deal_in_a_mapped_stage_is_created_on_the_other_side_with_its_values_translated() {
    let world = World::new(SyncDirection::TwoWay, ConflictRule::DefaultToHubSpot);
    let plan = world.planner().plan_page(page(Side::HubSpot, vec![hub_deal("h1", "Acme", "1500.00", "a", T0)], vec![], vec![]));
    assert_eq!(plan.creates.len(), 1, "{plan:?}");
    let (target, row, source, values) = &plan.creates[0];
    assert_eq!(*target, Side::App);
    assert_eq!(source.id, "h1");
    assert_eq!((row.state.as_str(), row.create_on.as_deref(), row.hubspot_id.as_deref()), ("creating", Some("app"), Some("h1")));
    assert_eq!(values.get("title"), Some(&Some("Acme".to_string())));
    assert_eq!(values.get("value"), Some(&Some("1500".to_string())), "numbers travel in canonical form");
    assert_eq!(values.get(STAGE), Some(&Some("1/10".to_string())), "Appointment maps to Meeting");
    assert!(plan.updates.is_empty() && plan.records.is_empty());
    assert_eq!(plan.skipped, 0);
}

#[test]
fn records_left_out_by_the_rules_are_recorded_with_their_reason() {
    // HubSpot's Demo stage is not mapped.
    let world = World::new(SyncDirection::TwoWay, ConflictRule::DefaultToHubSpot);
    let plan = world.planner().plan_page(page(Side::HubSpot, vec![hub_deal("h2", "Demo deal", "10", "b", T0)], vec![], vec![]));
    assert!(plan.creates.is_empty());
    assert_eq!(plan.records[0].reason.map(model::states::RecordReason::as_str), Some("unmapped_stage"));
    assert_eq!(kinds(&plan), vec![("excluded".to_string(), "hubspot".to_string())]);
    assert_eq!((plan.skipped, plan.skipped_from_hub), (1, 1));

    // Only to HubSpot: HubSpot's new deals stay where they are.
    let world = World::new(SyncDirection::ToHubSpot, ConflictRule::DefaultToHubSpot);
    let plan = world.planner().plan_page(page(Side::HubSpot, vec![hub_deal("h3", "Mine", "10", "a", T0)], vec![], vec![]));
    assert!(plan.creates.is_empty());
    assert_eq!(plan.records[0].reason.map(model::states::RecordReason::as_str), Some("direction"));

    // A filter on the app's deals: only values over 1,000 sync.
    let mut world = World::new(SyncDirection::TwoWay, ConflictRule::DefaultToHubSpot);
    world.settings.filters = vec![Filter { field: "value".into(), op: FilterOp::GreaterThan, value: "1000".into() }];
    let records = vec![app_deal("p2", "Small", "999", "10", T0), app_deal("p3", "Large", "1001", "10", T0)];
    let plan = world.planner().plan_page(page(Side::App, records, vec![], vec![]));
    assert_eq!(plan.records.len(), 1);
    assert_eq!(
        (plan.records[0].app_id.as_deref(), plan.records[0].reason.map(model::states::RecordReason::as_str)),
        (Some("p2"), Some("filter"))
    );
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].2.id, "p3");
    assert_eq!((plan.skipped, plan.skipped_from_hub), (1, 0), "read from the app");
}

#[test]
fn a_linked_deal_unchanged_since_both_agreed_is_skipped_without_reading_the_other_side() {
    let world = World::new(SyncDirection::TwoWay, ConflictRule::DefaultToHubSpot);
    let planner = world.planner();
    let input = page(Side::HubSpot, vec![hub_deal("h1", "Acme", "1500", "a", T0)], vec![linked("Acme", "1500", T0)], vec![]);
    let mut rows = input.rows;
    let mut plan = PagePlan::new(Side::HubSpot);
    let compare = planner.classify(Side::HubSpot, input.records, &mut rows, &HashMap::new(), &mut HashMap::new(), false, T0, &mut plan);
    assert!(compare.is_empty(), "nothing to read on the other side");
    assert_eq!(plan.skipped, 1);
    assert!(plan.events.is_empty() && plan.records.is_empty());
}

#[test]
fn a_change_on_one_side_flows_to_the_other() {
    let world = World::new(SyncDirection::TwoWay, ConflictRule::DefaultToHubSpot);
    let plan = world.planner().plan_page(page(
        Side::HubSpot,
        vec![hub_deal("h1", "Acme", "2000", "a", T0 + MINUTE)],
        vec![linked("Acme", "1500", T0)],
        vec![app_deal("p1", "Acme", "1500", "10", T0)],
    ));
    assert_eq!(plan.updates.len(), 1, "{plan:?}");
    let (target, index, id, values, _) = &plan.updates[0];
    assert_eq!((*target, id.as_str()), (Side::App, "p1"));
    assert_eq!(values, &BTreeMap::from([("value".to_string(), Some("2000".to_string()))]));
    assert_eq!(plan.records[*index].id, "t1");
    assert_eq!(kinds(&plan), vec![("updated".to_string(), "app".to_string())]);
    assert_eq!(plan.conflicts, 0);
}

#[test]
fn a_counterpart_that_is_gone_is_recorded_and_never_propagated() {
    let world = World::new(SyncDirection::TwoWay, ConflictRule::DefaultToHubSpot);
    let plan = world.planner().plan_page(page(
        Side::HubSpot,
        vec![hub_deal("h1", "Acme", "2000", "a", T0 + MINUTE)],
        vec![linked("Acme", "1500", T0)],
        vec![],
    ));
    assert!(plan.creates.is_empty() && plan.updates.is_empty(), "never re-created, never deleted");
    assert_eq!(plan.records[0].reason.map(model::states::RecordReason::as_str), Some("deleted_in_app"));
    assert_eq!(kinds(&plan), vec![("deleted".to_string(), "app".to_string())]);
}

#[test]
fn a_field_edited_on_both_sides_within_five_minutes_follows_the_rule_and_is_recorded() {
    for (rule, winner, value) in [(ConflictRule::DefaultToHubSpot, Side::HubSpot, "2000"), (ConflictRule::DefaultToApp, Side::App, "3000")]
    {
        let world = World::new(SyncDirection::TwoWay, rule);
        // The app's edit is the later one, by a minute: the rule decides, not the time.
        let plan = world.planner().plan_page(page(
            Side::HubSpot,
            vec![hub_deal("h1", "Acme", "2000", "a", T0 + MINUTE)],
            vec![linked("Acme", "1500", T0)],
            vec![app_deal("p1", "Acme", "3000", "10", T0 + 2 * MINUTE)],
        ));
        assert_eq!(plan.conflicts, 1);
        let (target, _, _, values, _) = &plan.updates[0];
        assert_eq!(*target, winner.other());
        assert_eq!(values.get(if winner == Side::HubSpot { "value" } else { "amount" }), Some(&Some(value.to_string())));
        let conflict = plan.events.iter().find(|e| e.kind == EventKind::Conflict).expect("a conflict event");
        assert_eq!(conflict.side, winner);
        assert_eq!(conflict.rule.as_deref(), Some(rule.label("Pipedrive").as_str()));
    }
}

/// One mapped amount on a linked deal, as the property tests vary it.
#[derive(Clone, Debug)]
struct Case {
    direction: SyncDirection,
    rule: ConflictRule,
    agreed: u32,
    hub: u32,
    app: u32,
    hub_at: i64,
    app_at: i64,
    /// The page is read from HubSpot (else from the app).
    from_hub: bool,
    /// HubSpot writes its amount with decimals (`2000.00`), the app without: the same value.
    hub_decimals: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    let direction = prop_oneof![Just(SyncDirection::TwoWay), Just(SyncDirection::ToHubSpot), Just(SyncDirection::ToApp)];
    let rule = prop_oneof![Just(ConflictRule::DefaultToHubSpot), Just(ConflictRule::DefaultToApp)];
    // Amounts from a small set, so that equal values (unchanged, or changed alike) come up often.
    (direction, rule, 0u32..3, 0u32..3, 0u32..3, 0i64..20, 0i64..20, any::<bool>(), any::<bool>()).prop_map(
        |(direction, rule, agreed, hub, app, hub_min, app_min, from_hub, hub_decimals)| Case {
            direction,
            rule,
            agreed,
            hub,
            app,
            hub_at: T0 + hub_min * MINUTE,
            app_at: T0 + app_min * MINUTE,
            from_hub,
            hub_decimals,
        },
    )
}

/// A HubSpot amount as the case writes it.
fn hub_amount(c: &Case, n: u32) -> String {
    if c.hub_decimals {
        format!("{}.00", 1000 * (n + 1))
    } else {
        (1000 * (n + 1)).to_string()
    }
}

/// The plan for a case: the linked deal read from one side, its counterpart from the other.
fn plan_case(world: &World, c: &Case) -> PagePlan {
    let amount = |n: u32| (1000 * (n + 1)).to_string();
    let hub = hub_deal("h1", "Acme", &hub_amount(c, c.hub), "a", c.hub_at);
    let app = app_deal("p1", "Acme", &amount(c.app), "10", c.app_at);
    let row = linked("Acme", &amount(c.agreed), T0 - MINUTE);
    let input =
        if c.from_hub { page(Side::HubSpot, vec![hub], vec![row], vec![app]) } else { page(Side::App, vec![app], vec![row], vec![hub]) };
    world.planner().plan_page(input)
}

/// The amount a plan writes to `side`, if it writes one.
fn written(plan: &PagePlan, side: Side) -> Option<String> {
    let key = if side == Side::HubSpot { "amount" } else { "value" };
    plan.updates.iter().find(|u| u.0 == side).and_then(|u| u.3.get(key).cloned().flatten())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A one-way sync never writes to the side its data flows from.
    #[test]
    fn one_way_syncs_never_write_back(c in cases()) {
        let world = World::new(c.direction, c.rule);
        let plan = plan_case(&world, &c);
        match c.direction {
            SyncDirection::ToApp => prop_assert!(plan.updates.iter().all(|u| u.0 == Side::App), "{:?}", plan.updates),
            SyncDirection::ToHubSpot => prop_assert!(plan.updates.iter().all(|u| u.0 == Side::HubSpot), "{:?}", plan.updates),
            SyncDirection::TwoWay => {}
        }
    }

    /// A field changed on one side only flows to the other (where the sync's direction lets
    /// it); changed on both sides, the sync's rule decides within five minutes and the later
    /// change wins further apart; changed on neither, nothing is written.
    #[test]
    fn the_merge_rules_hold_for_a_page(c in cases()) {
        let world = World::new(c.direction, c.rule);
        let plan = plan_case(&world, &c);
        let amount = |n: u32| (1000 * (n + 1)).to_string();
        let flows_to = |side: Side| match c.direction {
            SyncDirection::TwoWay => true,
            SyncDirection::ToApp => side == Side::App,
            SyncDirection::ToHubSpot => side == Side::HubSpot,
        };
        let (hub_changed, app_changed) = (c.hub != c.agreed, c.app != c.agreed);
        let read_changed = if c.from_hub { hub_changed } else { app_changed };
        match (hub_changed, app_changed) {
            // The side read holds what both agreed: skipped without reading the other side (a
            // change there is planned when that side's page is read).
            _ if !read_changed => {
                prop_assert!(plan.updates.is_empty(), "{:?}", plan.updates);
                prop_assert_eq!(plan.skipped, 1);
            }
            _ if c.hub == c.app => {
                prop_assert!(plan.updates.is_empty(), "the sides agree: {:?}", plan.updates);
            }
            (true, false) => {
                let expected = flows_to(Side::App).then(|| amount(c.hub));
                prop_assert_eq!(written(&plan, Side::App), expected);
                prop_assert_eq!(written(&plan, Side::HubSpot), None);
            }
            (false, true) => {
                let expected = flows_to(Side::HubSpot).then(|| amount(c.app));
                prop_assert_eq!(written(&plan, Side::HubSpot), expected);
                prop_assert_eq!(written(&plan, Side::App), None);
            }
            (true, true) => {
                let winner = if c.direction != SyncDirection::TwoWay {
                    // One-way: the source's value wins, whenever it changed.
                    if c.direction == SyncDirection::ToApp { Side::HubSpot } else { Side::App }
                } else if (c.hub_at - c.app_at).abs() <= CONFLICT_WINDOW_MS {
                    if c.rule == ConflictRule::DefaultToHubSpot { Side::HubSpot } else { Side::App }
                } else if c.app_at > c.hub_at {
                    Side::App
                } else {
                    Side::HubSpot
                };
                let value = amount(if winner == Side::HubSpot { c.hub } else { c.app });
                prop_assert_eq!(written(&plan, winner.other()), Some(value));
                prop_assert_eq!(written(&plan, winner), None);
                let in_window = c.direction == SyncDirection::TwoWay && (c.hub_at - c.app_at).abs() <= CONFLICT_WINDOW_MS;
                if in_window {
                    prop_assert_eq!(plan.conflicts, 1);
                }
            }
            (false, false) => unreachable!("the sides differ, so one changed"),
        }
    }

    /// Tandem's own writes never echo: once a plan's writes are stored and read back, planning
    /// the page again from either side writes nothing.
    #[test]
    fn tandems_own_writes_never_echo(c in cases()) {
        let world = World::new(c.direction, c.rule);
        let planner = world.planner();
        let plan = plan_case(&world, &c);
        let amount = |n: u32| (1000 * (n + 1)).to_string();
        let mut hub = hub_deal("h1", "Acme", &hub_amount(&c, c.hub), "a", c.hub_at);
        let mut app = app_deal("p1", "Acme", &amount(c.app), "10", c.app_at);
        let Some(mut row) = plan.records.first().cloned() else {
            // Nothing recorded: the deal was skipped as unchanged, so there is nothing to echo.
            prop_assert!(plan.updates.is_empty());
            return Ok(());
        };
        // The providers store what was sent (a minute later); the runner reads it back into the
        // agreed values, as after a real update.
        for (target, _, _, values, _) in &plan.updates {
            let record = if *target == Side::HubSpot { &mut hub } else { &mut app };
            for (key, value) in values {
                record.values.insert(key.clone(), value.clone());
            }
            record.updated_at += MINUTE;
            row.agreed = planner.readback(*target, record, values, &row.agreed);
            match target {
                Side::HubSpot => row.hub_seen_at = Some(record.updated_at),
                Side::App => row.app_seen_at = Some(record.updated_at),
            }
        }
        for side in [Side::HubSpot, Side::App] {
            let input = match side {
                Side::HubSpot => page(side, vec![hub.clone()], vec![row.clone()], vec![app.clone()]),
                Side::App => page(side, vec![app.clone()], vec![row.clone()], vec![hub.clone()]),
            };
            let again = planner.plan_page(input);
            prop_assert!(again.updates.is_empty(), "read from {:?} after the writes: {:?}", side, again.updates);
            prop_assert!(again.creates.is_empty());
        }
    }
}
