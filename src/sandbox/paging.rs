//! `page_no`/`page_size` on the paged list functions (API-FACTS §5).

use serde_json::{Map, Value, json};

use super::envelope::ApiError;
use super::functions::Call;

/// Largest page the sandbox serves. The spec gives 1000 as maximum for
/// `listTransactions`; the real limit elsewhere is unknown.
const MAX_PAGE_SIZE: usize = 1000;

/// A requested page, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// Page number, from 1.
    pub no: usize,
    /// Items per page, 1 to [`MAX_PAGE_SIZE`].
    pub size: usize,
}

impl Page {
    /// Reads `page_no` (default 1) and `page_size` (default `default_size`).
    ///
    /// # Errors
    /// Code 3 naming the parameter when it is not a whole number in range.
    pub fn from_call(call: &Call<'_>, default_size: usize) -> Result<Self, ApiError> {
        Ok(Self {
            no: number(call, "page_no", 1, usize::MAX)?,
            size: number(call, "page_size", default_size, MAX_PAGE_SIZE)?,
        })
    }

    /// The items on this page (empty past the last page).
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.no - 1).saturating_mul(self.size).min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        &items[start..end]
    }

    /// Adds `page_no`, `page_size`, `page_count` and `item_count` to `data`.
    pub fn describe(&self, data: &mut Map<String, Value>, item_count: usize) {
        data.insert("page_no".into(), json!(self.no));
        data.insert("page_size".into(), json!(self.size));
        data.insert("page_count".into(), json!(item_count.div_ceil(self.size)));
        data.insert("item_count".into(), json!(item_count));
    }
}

fn number(call: &Call<'_>, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(text) = call.optional(name)? else {
        return Ok(default);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ if max == usize::MAX => Err(ApiError::invalid(name, "expected a whole number from 1.")),
        _ => Err(ApiError::invalid(
            name,
            &format!("expected a whole number from 1 to {max}."),
        )),
    }
}
