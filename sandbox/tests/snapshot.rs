//! Snapshots are written in chunks under short read locks; what they hold must load back as the
//! same state.

use std::time::{Duration, Instant};

use sandbox::hubspot::data::HubData;
use sandbox::persist::Snapshots;
use sandbox::pipedrive::data::PdData;
use sandbox::{HubSpot, HubSpotConfig, Pipedrive, PipedriveConfig, Zoho, ZohoConfig};

#[test]
fn hubspot_snapshot_loads_back_as_the_same_state() {
    let hubspot = HubSpot::new(HubSpotConfig::new(Vec::new()), None);
    sandbox::hubspot::seed::generate(&mut hubspot.write(), 9_000, 5_000, 100, 7, 1_700_000_000_000);
    let mut out = Vec::new();
    hubspot.write_snapshot(&mut out).unwrap();
    let loaded: HubData = serde_json::from_slice(&out).unwrap();
    let mut expected = serde_json::to_value(&*hubspot.read()).unwrap();
    expected["oauth"] = serde_json::to_value(hubspot.oauth.snapshot()).unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), expected);
}

#[test]
fn pipedrive_snapshot_loads_back_as_the_same_state() {
    let pipedrive = Pipedrive::new(PipedriveConfig::new(Vec::new()), None);
    sandbox::pipedrive::seed::generate_contacts(&mut pipedrive.write(), 50, 5_000, 3, 1_700_000_000_000);
    sandbox::pipedrive::seed::generate(&mut pipedrive.write(), 9_000, 3, 1_700_000_000_000);
    let mut out = Vec::new();
    pipedrive.write_snapshot(&mut out).unwrap();
    let loaded: PdData = serde_json::from_slice(&out).unwrap();
    let mut expected = serde_json::to_value(&*pipedrive.read()).unwrap();
    expected["oauth"] = serde_json::to_value(pipedrive.oauth.snapshot()).unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), expected);
}

/// A write that waits for the lock while the snapshot writer reads is written by the next
/// snapshot: the changed flag is set once the write lock is held, so the writer's `take_dirty`
/// in between cannot clear it before the change is made.
macro_rules! a_write_waiting_for_the_lock_is_not_lost {
    ($name:ident, $sandbox:expr) => {
        #[test]
        fn $name() {
            let sandbox = $sandbox;
            sandbox.take_dirty();
            let reading = sandbox.read();
            let writer = {
                let sandbox = sandbox.clone();
                std::thread::spawn(move || drop(sandbox.write()))
            };
            // The snapshot writer's rounds while the write waits (however far it got).
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until && !sandbox.take_dirty() {
                std::thread::yield_now();
            }
            drop(reading);
            writer.join().unwrap();
            assert!(sandbox.take_dirty(), "the write made after the snapshot's read is still to be written");
        }
    };
}

a_write_waiting_for_the_lock_is_not_lost!(
    hubspot_write_waiting_for_the_lock_is_not_lost,
    HubSpot::new(HubSpotConfig::new(Vec::new()), None)
);
a_write_waiting_for_the_lock_is_not_lost!(
    pipedrive_write_waiting_for_the_lock_is_not_lost,
    Pipedrive::new(PipedriveConfig::new(Vec::new()), None)
);
a_write_waiting_for_the_lock_is_not_lost!(zoho_write_waiting_for_the_lock_is_not_lost, Zoho::new(ZohoConfig::new(Vec::new()), None));
