//! Results kept between the pages of one list or search: valid for one version of a sandbox's
//! data (every write bumps it), so paging through a long sorted result sorts it once.

use std::sync::{Arc, Mutex};

/// The last few results by query, each for the data version it was computed on.
pub struct Versioned<T> {
    entries: Mutex<Vec<(String, u64, Arc<T>)>>,
}

impl<T> Default for Versioned<T> {
    fn default() -> Self {
        Versioned { entries: Mutex::new(Vec::new()) }
    }
}

impl<T> Versioned<T> {
    const SIZE: usize = 8;

    /// The result of `key` at `version`, computed by `compute` unless kept.
    pub fn get_or(&self, key: String, version: u64, compute: impl FnOnce() -> T) -> Arc<T> {
        match self.try_get_or(key, version, || Ok::<T, std::convert::Infallible>(compute())) {
            Ok(result) => result,
            Err(never) => match never {},
        }
    }

    /// As [`Versioned::get_or`], for a computation that may fail (nothing is kept then).
    pub fn try_get_or<E>(&self, key: String, version: u64, compute: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let kept = self.lock().iter().find(|(k, v, _)| *k == key && *v == version).map(|(_, _, r)| r.clone());
        if let Some(result) = kept {
            return Ok(result);
        }
        let result = Arc::new(compute()?);
        let mut entries = self.lock();
        // Results of older versions can never be asked for again.
        entries.retain(|(k, v, _)| *k != key && *v == version);
        if entries.len() >= Self::SIZE {
            entries.remove(0);
        }
        entries.push((key, version, result.clone()));
        Ok(result)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, u64, Arc<T>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
