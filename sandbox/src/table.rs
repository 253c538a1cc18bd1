//! The records of one kind (Pipedrive's deals, persons or organizations; HubSpot's deals,
//! contacts or companies), by id, with indexes kept beside them: their order by update time and
//! by creation time, and the values they are looked up by (a HubSpot contact's email). A list sorted by either
//! time reads forward from its cursor, and a search on a modification date or an email reads the
//! records it names, instead of every record.
//!
//! Reads see the map (`Deref`); every change goes through [`Table::insert`], [`Table::get_mut`]
//! or [`Table::update_all`], which keep the indexes in step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a table indexes a record by.
pub trait Row {
    fn id(&self) -> u64;
    fn add_time(&self) -> i64;
    fn update_time(&self) -> i64;
    /// The values the table finds the record by, normalized (a HubSpot contact's email, trimmed
    /// and in lower case, as `email:…`); none by default.
    fn lookup_keys(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Records by id, and their indexes.
#[derive(Clone, Debug)]
pub struct Table<T> {
    rows: BTreeMap<u64, T>,
    index: Index,
}

/// (time, id) pairs in each time order, and ids by lookup key.
#[derive(Clone, Debug, Default)]
struct Index {
    by_update: BTreeSet<(i64, u64)>,
    by_add: BTreeSet<(i64, u64)>,
    by_key: HashMap<String, Vec<u64>>,
}

/// Where a record is filed in the indexes.
struct Filed {
    update: i64,
    add: i64,
    keys: Vec<String>,
}

impl Filed {
    fn of<T: Row>(row: &T) -> Filed {
        Filed { update: row.update_time(), add: row.add_time(), keys: row.lookup_keys() }
    }
}

impl Index {
    fn file(&mut self, id: u64, at: &Filed) {
        self.by_update.insert((at.update, id));
        self.by_add.insert((at.add, id));
        for key in &at.keys {
            self.by_key.entry(key.clone()).or_default().push(id);
        }
    }

    fn unfile(&mut self, id: u64, at: &Filed) {
        self.by_update.remove(&(at.update, id));
        self.by_add.remove(&(at.add, id));
        for key in &at.keys {
            if let Some(ids) = self.by_key.get_mut(key) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// Moves record `id` from where it was filed (`was`) to where `row` files it now.
    fn refile<T: Row>(&mut self, row: &T, was: &Filed) {
        let now = Filed::of(row);
        if now.update != was.update || now.add != was.add || now.keys != was.keys {
            self.unfile(row.id(), was);
            self.file(row.id(), &now);
        }
    }
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { rows: BTreeMap::new(), index: Index::default() }
    }
}

impl<T> Deref for Table<T> {
    type Target = BTreeMap<u64, T>;
    fn deref(&self) -> &BTreeMap<u64, T> {
        &self.rows
    }
}

/// Which time a list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOrder {
    Update,
    Add,
}

impl<T: Row> Table<T> {
    /// Adds or replaces the record with id `id`; answers the one it replaced.
    pub fn insert(&mut self, id: u64, row: T) -> Option<T> {
        debug_assert_eq!(id, row.id(), "a record is stored under its own id");
        let old = self.rows.insert(id, row);
        if let Some(old) = &old {
            self.index.unfile(id, &Filed::of(old));
        }
        self.index.file(id, &Filed::of(&self.rows[&id]));
        old
    }

    /// Takes the record with id `id` out, with its place in the indexes.
    pub fn remove(&mut self, id: &u64) -> Option<T> {
        let row = self.rows.remove(id)?;
        self.index.unfile(*id, &Filed::of(&row));
        Some(row)
    }

    /// The record with id `id`, to change in place; it is re-filed when the handle goes.
    pub fn get_mut(&mut self, id: &u64) -> Option<RowMut<'_, T>> {
        let row = self.rows.get_mut(id)?;
        let was = Filed::of(&*row);
        Some(RowMut { row, was, index: &mut self.index })
    }

    /// Applies `change` to every record, re-filing those it changed.
    pub fn update_all(&mut self, mut change: impl FnMut(&mut T)) {
        for row in self.rows.values_mut() {
            let was = Filed::of(&*row);
            change(row);
            self.index.refile(row, &was);
        }
    }

    /// (time, id) of every record, in `order`.
    pub fn by(&self, order: TimeOrder) -> &BTreeSet<(i64, u64)> {
        match order {
            TimeOrder::Update => &self.index.by_update,
            TimeOrder::Add => &self.index.by_add,
        }
    }

    /// The ids of the records found by `key` (normalized as [`Row::lookup_keys`] are).
    pub fn with_key(&self, key: &str) -> &[u64] {
        self.index.by_key.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    fn from_rows(rows: BTreeMap<u64, T>) -> Table<T> {
        let mut index = Index::default();
        for (id, row) in &rows {
            index.file(*id, &Filed::of(row));
        }
        Table { rows, index }
    }
}

/// A record being changed in place (see [`Table::get_mut`]).
pub struct RowMut<'a, T: Row> {
    row: &'a mut T,
    was: Filed,
    index: &'a mut Index,
}

impl<T: Row> Deref for RowMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.row
    }
}

impl<T: Row> DerefMut for RowMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.row
    }
}

impl<T: Row> Drop for RowMut<'_, T> {
    fn drop(&mut self) {
        self.index.refile(self.row, &self.was);
    }
}

impl<T: Serialize> Serialize for Table<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(s)
    }
}

impl<'de, T: Row + Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(Table::from_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipedrive::data::Deal;

    fn table(deals: &[(u64, i64)]) -> Table<Deal> {
        let mut t = Table::default();
        for &(id, at) in deals {
            t.insert(id, Deal::new(id, 1, at));
        }
        t
    }

    fn order(t: &Table<Deal>, by: TimeOrder) -> Vec<(i64, u64)> {
        t.by(by).iter().copied().collect()
    }

    #[test]
    fn every_way_of_changing_a_record_keeps_the_time_orders_in_step() {
        let mut t = table(&[(1, 30), (2, 10), (3, 20)]);
        assert_eq!(order(&t, TimeOrder::Update), [(10, 2), (20, 3), (30, 1)]);
        // Replaced: the old times leave.
        let mut d = t[&2].clone();
        d.update_time = 40;
        t.insert(2, d);
        assert_eq!(order(&t, TimeOrder::Update), [(20, 3), (30, 1), (40, 2)]);
        assert_eq!(order(&t, TimeOrder::Add), [(10, 2), (20, 3), (30, 1)]);
        // Changed in place.
        t.get_mut(&3).unwrap().update_time = 50;
        assert_eq!(order(&t, TimeOrder::Update), [(30, 1), (40, 2), (50, 3)]);
        // Looked at without a change.
        assert!(!t.get_mut(&1).unwrap().is_deleted);
        assert_eq!(order(&t, TimeOrder::Update), [(30, 1), (40, 2), (50, 3)]);
        // Changed all at once, one of them not at all.
        t.update_all(|d| {
            if d.id != 2 {
                d.update_time += 100;
                d.add_time += 1;
            }
        });
        assert_eq!(order(&t, TimeOrder::Update), [(40, 2), (130, 1), (150, 3)]);
        assert_eq!(order(&t, TimeOrder::Add), [(10, 2), (21, 3), (31, 1)]);
        // Read back from a snapshot.
        let saved = serde_json::to_string(&t).unwrap();
        let loaded: Table<Deal> = serde_json::from_str(&saved).unwrap();
        assert_eq!(order(&loaded, TimeOrder::Update), order(&t, TimeOrder::Update));
        assert_eq!(order(&loaded, TimeOrder::Add), order(&t, TimeOrder::Add));
        assert_eq!(loaded.len(), 3);
    }
}
