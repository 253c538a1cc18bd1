//! Zoho's paging, the same for every list: `per_page` (1 to 200, 200 by default), `page` (an
//! int32 from 1; `page` reaches the first 2,000 records only), and the `info` block that
//! answers them.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{error, param_invalid};
use crate::query::query_one;

pub const MAX_PER_PAGE: u32 = 200;
/// Records `page` reaches; past them only `page_token` does (Get Records).
pub const PAGE_LIMIT: u32 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub per_page: u32,
    pub page: u32,
}

impl Paging {
    /// `per_page` and `page` of a call; a page past the 2,000th record is refused with
    /// `beyond_code` (`DISCRETE_PAGINATION_LIMIT_EXCEEDED` for lists, `LIMIT_REACHED` for search).
    pub fn parse(pairs: &[(String, String)], beyond_code: &str) -> Result<Paging, Response> {
        let per_page = match query_one(pairs, "per_page").map(str::parse::<u32>) {
            None => MAX_PER_PAGE,
            Some(Ok(n)) if (1..=MAX_PER_PAGE).contains(&n) => n,
            Some(_) => return Err(param_invalid("per_page", "per_page must be from 1 to 200")),
        };
        let page = match query_one(pairs, "page").map(str::parse::<u32>) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => return Err(param_invalid("page", "page must be a number from 1")),
        };
        let paging = Paging { per_page, page };
        if paging.end() > u64::from(PAGE_LIMIT) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                beyond_code,
                "You can fetch only up to 2000 records with the page param; use page_token to fetch further",
                json!({"limit": PAGE_LIMIT}),
            ));
        }
        Ok(paging)
    }

    /// Where the page ends, counted in records from the first.
    fn end(self) -> u64 {
        u64::from(self.page) * u64::from(self.per_page)
    }

    /// Records before the page.
    pub fn skip(self) -> usize {
        usize::try_from(u64::from(self.page.saturating_sub(1)) * u64::from(self.per_page)).unwrap_or(usize::MAX)
    }

    pub fn take(self) -> usize {
        self.per_page as usize
    }

    /// The page of `all`, and whether records follow it.
    pub fn slice<T>(self, all: &[T]) -> (&[T], bool) {
        let from = self.skip().min(all.len());
        let to = from.saturating_add(self.take()).min(all.len());
        (&all[from..to], to < all.len())
    }

    /// The `info` block of the answer.
    pub fn info(self, count: usize, more_records: bool) -> Value {
        json!({"per_page": self.per_page, "count": count, "page": self.page, "more_records": more_records})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        crate::query::query_pairs(Some(q))
    }

    #[test]
    fn pages_are_int32_and_end_at_the_2000th_record() {
        assert_eq!(Paging::parse(&pairs(""), "X").unwrap(), Paging { per_page: 200, page: 1 });
        assert_eq!(Paging::parse(&pairs("page=10&per_page=200"), "X").unwrap(), Paging { per_page: 200, page: 10 });
        assert!(Paging::parse(&pairs("page=11&per_page=200"), "X").is_err());
        assert!(Paging::parse(&pairs("page=2001&per_page=1"), "X").is_err());
        assert!(Paging::parse(&pairs("page=18446744073709551615"), "X").is_err(), "beyond int32");
        assert!(Paging::parse(&pairs("page=4294967295&per_page=200"), "X").is_err());
        assert!(Paging::parse(&pairs("page=0"), "X").is_err());
        let far = Paging { per_page: 200, page: u32::MAX };
        assert_eq!(far.slice(&[1, 2, 3]), (&[][..], false), "no overflow past the end");
        let p = Paging { per_page: 2, page: 2 };
        assert_eq!(p.slice(&[1, 2, 3, 4, 5]), (&[3, 4][..], true));
        assert_eq!(p.slice(&[1, 2, 3, 4]), (&[3, 4][..], false));
    }
}
