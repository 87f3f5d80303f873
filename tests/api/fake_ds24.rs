//! A scripted fake Digistore24 that records what it received. Tests steer it
//! through request headers that the proxy forwards untouched:
//! `x-fake-status` (HTTP status), `x-fake-delay-ms` (delay before the head),
//! `x-fake-error` (answer with a Digistore24 error envelope of that code).
//! Bodies are read as a stream: only the first MiB is kept, but every byte
//! is counted and hashed, so a 100 MiB upload costs the fake no memory.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use http::HeaderMap;

const KEEP_BYTES: usize = 1024 * 1024;

/// What the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub body_len: u64,
    pub body_hash: u64,
    /// The proxy's side of the TCP connection (tells pooled connections apart).
    pub peer: SocketAddr,
}

/// The running fake.
#[derive(Debug, Clone)]
pub struct FakeDs24 {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeDs24 {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(record).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self { addr, seen }
    }

    /// Base URL to configure the proxy with.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/call", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The only request so far (fails the test otherwise).
    pub fn single(&self) -> Seen {
        let all = self.requests();
        assert_eq!(
            all.len(),
            1,
            "expected exactly one upstream call, got {}: {:?}",
            all.len(),
            all.iter().map(|s| &s.path).collect::<Vec<_>>()
        );
        all.into_iter().next().unwrap()
    }
}

/// FNV-1a, enough to tell two byte streams apart in a test.
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

async fn record(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut kept = Vec::new();
    let (mut len, mut hash) = (0u64, FNV_START);
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        len += chunk.len() as u64;
        hash = fnv1a(hash, &chunk);
        let room = KEEP_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }
    let function = parts
        .uri
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty() && *s != "json" && *s != "format")
        .unwrap_or("")
        .to_owned();
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: kept,
        body_len: len,
        body_hash: hash,
        peer,
    });
    if let Some(ms) = header("x-fake-delay-ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match function.as_str() {
        "listBuyers" => return generated_page(&parts.uri, &body_page(&seen)),
        "listPurchases" => return purchases_without_paging_fields(&seen),
        "downloadLarge" => return large_download(),
        _ => {}
    }
    // `x-fake-fail-first: N`: the first N calls of this path answer
    // `x-fake-fail-status` (default 503), with `Retry-After:
    // x-fake-retry-after` when given.
    if let Some(n) = header("x-fake-fail-first").and_then(|v| v.parse::<usize>().ok()) {
        let so_far = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == parts.uri.path())
            .count();
        if so_far <= n {
            let status = header("x-fake-fail-status")
                .and_then(|v| v.parse().ok())
                .unwrap_or(503u16);
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "text/plain");
            if let Some(after) = header("x-fake-retry-after") {
                response = response.header("retry-after", after);
            }
            return response.body(Body::from("busy")).unwrap();
        }
    }
    // `x-fake-accept: KEY`: any other key is refused the way Digistore24
    // refuses a bad key (HTTP 200 with error code 2, the historic style).
    if let Some(accepted) = header("x-fake-accept")
        && header("x-ds-api-key").as_deref() != Some(accepted.as_str())
    {
        let body = r#"{"api_version":"1.2","result":"error","code":2,"message":"Invalid connection parameters."}"#;
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
    }
    let status = header("x-fake-status")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200u16);
    let body = match header("x-fake-error") {
        Some(code) => format!(
            r#"{{"api_version":"1.2","current_time":"2026-11-28 12:00:00","result":"error","code":{code},"message":"Fake error {code}"}}"#
        ),
        None => format!(
            r#"{{"api_version":"1.2","current_time":"2026-11-28 12:00:00","result":"success","data":{{"function":"{function}","received_bytes":{len}}}}}"#
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-upstream-says", "hello")
        .header("x-request-id", "upstream-internal-id")
        .body(Body::from(body))
        .unwrap()
}

/// Items per generated page and pages in all: 100 000 buyers, about 45 MB
/// of NDJSON, enough to show whether the proxy holds a whole export.
pub const GENERATED_PAGE_SIZE: u64 = 1000;
pub const GENERATED_PAGES: u64 = 100;

fn body_page(seen: &Arc<Mutex<Vec<Seen>>>) -> String {
    let seen = seen.lock().unwrap();
    let last = seen.last().unwrap();
    form_urlencoded::parse(&last.body)
        .find(|(k, _)| k == "page_no")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "1".into())
}

/// A `listBuyers` page generated on the fly, with paging fields.
fn generated_page(_uri: &http::Uri, page_no: &str) -> Response {
    let page: u64 = page_no.parse().unwrap_or(1);
    let mut items = String::with_capacity(GENERATED_PAGE_SIZE as usize * 320);
    for i in 0..GENERATED_PAGE_SIZE {
        let id = (page - 1) * GENERATED_PAGE_SIZE + i + 1;
        if i > 0 {
            items.push(',');
        }
        items.push_str(&format!(
            r#"{{"id":"{id}","email":"buyer{id}@example.com","first_name":"Buyer","last_name":"Number {id}","street":"Hauptstrasse {id}","city":"Berlin","zipcode":"10115","country":"DE","created_at":"2025-01-01 00:00:00","note":"padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding padding"}}"#
        ));
    }
    let body = format!(
        r#"{{"api_version":"1.2","result":"success","data":{{"page_no":{page},"page_size":{GENERATED_PAGE_SIZE},"page_count":{GENERATED_PAGES},"item_count":{},"items":[{items}]}}}}"#,
        GENERATED_PAGE_SIZE * GENERATED_PAGES
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// 25 purchases, paged by the request's `page_no`/`page_size` but, like the
/// real `listPurchases` (API-FACTS §5, §9.9), with no paging fields.
fn purchases_without_paging_fields(seen: &Arc<Mutex<Vec<Seen>>>) -> Response {
    let (page_no, page_size) = {
        let seen = seen.lock().unwrap();
        let body = &seen.last().unwrap().body;
        let get = |k: &str| {
            form_urlencoded::parse(body)
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        (
            get("page_no").unwrap_or(1),
            get("page_size").unwrap_or(1000),
        )
    };
    let items: Vec<String> = (1..=25usize)
        .skip((page_no - 1) * page_size)
        .take(page_size)
        .map(|i| format!(r#"{{"id":"P{i:03}","amount":"10.00"}}"#))
        .collect();
    let body = format!(
        r#"{{"api_version":"1.2","result":"success","data":{{"purchase_list":[{}]}}}}"#,
        items.join(",")
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// Bytes in the generated download, and how it is cut into chunks.
pub const DOWNLOAD_BYTES: u64 = 100 * 1024 * 1024;
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// A 100 MiB reply generated as it is sent (the fake holds none of it).
fn large_download() -> Response {
    let chunk = bytes::Bytes::from(vec![b'x'; DOWNLOAD_CHUNK]);
    let chunks = (DOWNLOAD_BYTES / DOWNLOAD_CHUNK as u64) as usize;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .header("content-length", DOWNLOAD_BYTES.to_string())
        .body(Body::from_stream(stream))
        .unwrap()
}
