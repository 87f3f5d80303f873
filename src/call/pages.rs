//! `all_pages`: walk `page_no` until `page_count` (bounded by `max_pages`),
//! either collecting every item into one list or streaming them as NDJSON as
//! pages arrive, so an export of any size runs in flat memory.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use super::{Answer, CallError, call};
use crate::actions::ActionDef;
use crate::server::state::{AppState, Connection};

/// Pages fetched when the input sets no `max_pages`.
pub const DEFAULT_MAX_PAGES: u64 = 100;

/// The items of one page and whether more pages follow.
struct Page {
    items: Vec<Value>,
    page_no: Option<u64>,
    page_count: Option<u64>,
    rest: Map<String, Value>,
    api_version: Option<String>,
}

/// Where a paged walk stands.
#[derive(Debug, Clone)]
pub struct Walk {
    action: &'static ActionDef,
    input: Map<String, Value>,
    next_page: u64,
    max_pages: u64,
    fetched: u64,
    largest_page: u64,
    done: bool,
}

impl Walk {
    /// Starts at the input's `page_no` (default 1); `all_pages` and
    /// `max_pages` are taken out of the input.
    pub fn new(action: &'static ActionDef, mut input: Map<String, Value>) -> Self {
        input.remove("all_pages");
        let max_pages = input
            .remove("max_pages")
            .as_ref()
            .and_then(crate::actions::page_count)
            .unwrap_or(DEFAULT_MAX_PAGES)
            .max(1);
        let next_page = input
            .get("page_no")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(1)
            .max(1);
        Self {
            action,
            input,
            next_page,
            max_pages,
            fetched: 0,
            largest_page: 0,
            done: false,
        }
    }

    /// Metadata about the walk for the `meta` object.
    pub fn meta(&self) -> Value {
        json!({ "pages_fetched": self.fetched, "max_pages": self.max_pages, "complete": self.done })
    }

    async fn next(
        &mut self,
        state: &AppState,
        conn: &Connection,
    ) -> Result<Option<Page>, CallError> {
        if self.done || self.fetched >= self.max_pages {
            return Ok(None);
        }
        let asked = self.next_page;
        self.input.insert("page_no".into(), asked.into());
        let Answer { data, api_version } = call(state, conn, self.action, &self.input).await?;
        let page = split_page(self.action, data, api_version);
        self.fetched += 1;
        // The next page is the one after the page asked for, never one the
        // reply names: an upstream that ignores page_no must not make the
        // walk repeat or jump.
        self.next_page = asked.saturating_add(1);
        let size = page.items.len() as u64;
        self.largest_page = self.largest_page.max(size);
        self.done = size == 0
            || page.page_no.is_some_and(|n| n != asked)
            || match page.page_count {
                Some(count) => asked >= count,
                // No page_count (listPurchases, API-FACTS §5/§9.9): a page
                // smaller than the largest seen so far is the last; a full
                // one may be followed by more, so the walk goes on until a
                // short or empty page.
                None => size < self.largest_page,
            };
        Ok(Some(page))
    }
}

fn split_page(action: &ActionDef, data: Value, api_version: Option<String>) -> Page {
    let field = action.paging.map_or("items", |p| p.items_field);
    let mut rest = match data {
        Value::Object(map) => map,
        other => Map::from_iter([(field.to_owned(), other)]),
    };
    let number = |rest: &Map<String, Value>, key: &str| {
        rest.get(key)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
    };
    let items = match rest.remove(field) {
        Some(Value::Array(items)) => items,
        // Some lists come as objects keyed by id.
        Some(Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    Page {
        items,
        page_no: number(&rest, "page_no"),
        page_count: number(&rest, "page_count"),
        rest,
        api_version,
    }
}

/// Fetches every page and returns the first page's data with all items in
/// the items field, plus the API version.
///
/// # Errors
/// The first failing page's error.
pub async fn collect(
    state: &AppState,
    conn: &Connection,
    walk: &mut Walk,
) -> Result<(Value, Option<String>), CallError> {
    let field = walk.action.paging.map_or("items", |p| p.items_field);
    let mut all = Vec::new();
    let mut first: Option<(Map<String, Value>, Option<String>)> = None;
    while let Some(page) = walk.next(state, conn).await? {
        all.extend(page.items);
        first.get_or_insert((page.rest, page.api_version));
    }
    let (mut data, api_version) = first.unwrap_or_default();
    data.remove("page_no");
    data.insert("item_count".into(), all.len().into());
    data.insert(field.to_owned(), Value::Array(all));
    Ok((Value::Object(data), api_version))
}

/// Streams every item as one JSON line, page by page, then one last line
/// `{"meta": {…, "paging": {pages_fetched, max_pages, complete}}}` so a
/// consumer can tell a complete export from one cut at `max_pages`. The
/// first page is fetched before anything is sent, so an error there gets
/// its proper status; a later error ends the stream with a line
/// `{"error": {…}}` (written by `render`, the HTTP edge's error body)
/// instead of the meta line.
///
/// # Errors
/// The first page's error.
pub async fn ndjson(
    state: AppState,
    conn: Arc<Connection>,
    mut walk: Walk,
    meta: Value,
    render: impl Fn(&CallError) -> Value + Send + Sync + 'static,
) -> Result<impl Stream<Item = Result<Bytes, std::convert::Infallible>>, CallError> {
    let first = walk
        .next(&state, &conn)
        .await?
        .map(|page| lines(&page.items));
    let render = Arc::new(render);
    let rest = futures_util::stream::unfold(Some((state, walk, meta)), move |slot| {
        let conn = conn.clone();
        let render = render.clone();
        async move {
            let (state, mut walk, mut meta) = slot?;
            let line = match walk.next(&state, &conn).await {
                Ok(Some(page)) => return Some((Ok(lines(&page.items)), Some((state, walk, meta)))),
                Ok(None) => {
                    meta["paging"] = walk.meta();
                    json!({ "meta": meta })
                }
                Err(e) => render(&e),
            };
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            Some((Ok(Bytes::from(bytes)), None))
        }
    });
    Ok(futures_util::stream::iter(first.map(Ok)).chain(rest))
}

fn lines(items: &[Value]) -> Bytes {
    let mut out = Vec::with_capacity(items.len() * 256);
    for item in items {
        let _ = serde_json::to_writer(&mut out, item);
        out.push(b'\n');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::Walk;

    fn walk(input: Value) -> Walk {
        let Value::Object(input) = input else {
            unreachable!("the tests pass objects")
        };
        let action = crate::actions::CATALOG
            .iter()
            .find(|a| a.key == "list-purchases")
            .expect("list-purchases is in the catalog");
        Walk::new(action, input)
    }

    #[test]
    fn max_pages_is_read_as_the_validator_accepts_it() {
        for (given, used) in [
            (json!(3), 3),
            (json!(47.0), 47),
            (json!(0), 1),
            (json!(1e30), u64::MAX),
        ] {
            assert_eq!(
                walk(json!({ "max_pages": given })).meta()["max_pages"],
                used
            );
        }
        let default = walk(Value::Object(Map::new())).meta()["max_pages"].clone();
        assert_eq!(default, super::DEFAULT_MAX_PAGES);
    }
}
