//! Each side's records with their calls counted by what they are for (the History tab's calls
//! by purpose): the engine reads and writes through [`Purposed`], which names the purpose of
//! every call a method makes, whatever the provider.

use futures_util::future::BoxFuture;

use super::api::{counted_as, ApiError, Purpose};
use crate::connectors::record::{FieldTimesById, HubRecords, Input, Outcomes, Page, Records, RemoteRecord};

/// One side's records, each method's calls counted as its purpose.
pub struct Purposed<'a, R: ?Sized>(pub &'a R);

impl<R: Records + ?Sized> Records for Purposed<'_, R> {
    fn list<'s>(&'s self, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(counted_as(Purpose::Read, self.0.list(cursor)))
    }

    fn count(&self) -> BoxFuture<'_, Result<i64, ApiError>> {
        Box::pin(counted_as(Purpose::Read, self.0.count()))
    }

    fn changed_since<'s>(&'s self, since: i64, cursor: Option<&'s str>) -> BoxFuture<'s, Result<Page, ApiError>> {
        Box::pin(counted_as(Purpose::Read, self.0.changed_since(since, cursor)))
    }

    fn settles_within_ms(&self) -> i64 {
        self.0.settles_within_ms()
    }

    fn read<'s>(&'s self, ids: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(counted_as(Purpose::Lookup, self.0.read(ids)))
    }

    fn create(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(counted_as(Purpose::Write, self.0.create(inputs)))
    }

    fn update(&self, inputs: Vec<Input>) -> BoxFuture<'_, Outcomes> {
        Box::pin(counted_as(Purpose::Write, self.0.update(inputs)))
    }

    fn field_times<'s>(&'s self, ids: &'s [String], fields: &'s [String]) -> BoxFuture<'s, Result<FieldTimesById, ApiError>> {
        Box::pin(counted_as(Purpose::Lookup, self.0.field_times(ids, fields)))
    }

    fn find_tandem_ids<'s>(&'s self, tandem_ids: &'s [String], since: i64) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(counted_as(Purpose::Lookup, self.0.find_tandem_ids(tandem_ids, since)))
    }

    fn find_by_match_keys<'s>(&'s self, keys: &'s [String]) -> BoxFuture<'s, Result<Vec<RemoteRecord>, ApiError>> {
        Box::pin(counted_as(Purpose::Lookup, self.0.find_by_match_keys(keys)))
    }
}

impl<R: HubRecords + ?Sized> HubRecords for Purposed<'_, R> {
    fn associations<'s>(
        &'s self,
        to: &'s str,
        ids: &'s [String],
    ) -> BoxFuture<'s, Result<std::collections::HashMap<String, Vec<String>>, ApiError>> {
        Box::pin(counted_as(Purpose::Lookup, self.0.associations(to, ids)))
    }

    fn associate<'s>(
        &'s self,
        to: &'s str,
        add: &'s [(String, String)],
        remove: &'s [(String, String)],
    ) -> BoxFuture<'s, Result<(), ApiError>> {
        Box::pin(counted_as(Purpose::Write, self.0.associate(to, add, remove)))
    }
}
