//! A scripted fake Digistore24 that records what it received. Tests steer it
//! through request headers that the proxy forwards untouched:
//! `x-fake-status` (HTTP status), `x-fake-delay-ms` (delay before the head),
//! `x-fake-error` (answer with a Digistore24 error envelope of that code),
//! `x-fake-fault` (break the reply after the request was recorded, see
//! [`FakeFault`]).
//! Bodies are read as a stream: only the first MiB is kept, but every byte
//! is counted and hashed, so a 100 MiB upload costs the fake no memory.
//!
//! Like Digistore24's front server (API-FACTS §1), it answers a POST, PUT
//! or PATCH that has neither `Content-Length` nor `Transfer-Encoding` with
//! `411 Length Required` in plain text; the request is recorded with
//! [`Seen::rejected`] set.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use futures_util::StreamExt;
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

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
    /// `Some(411)` when the fake refused the request like Digistore24's
    /// front server (no body length declared); `None` otherwise.
    pub rejected: Option<u16>,
}

/// `x-fake-fault: NAME`: what happens to the reply once the request has
/// been recorded (every other header still shapes the reply it breaks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeFault {
    /// `truncate-after-head`: the reply's head (its status, headers, no
    /// `Content-Length`, so chunked) is sent, then the connection closes
    /// without a byte of body.
    TruncateAfterHead,
    /// `truncate-mid-body`: the head and the first half of the reply's
    /// body are sent, then the connection closes.
    TruncateMidBody,
    /// `stall-after-head`: the head is sent, then nothing, until the
    /// client closes the connection.
    StallAfterHead,
    /// `reset-after-read`: the connection is dropped with a TCP reset
    /// before any byte of the reply.
    ResetAfterRead,
}

impl FakeFault {
    fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "truncate-after-head" => Some(Self::TruncateAfterHead),
            "truncate-mid-body" => Some(Self::TruncateMidBody),
            "stall-after-head" => Some(Self::StallAfterHead),
            "reset-after-read" => Some(Self::ResetAfterRead),
            _ => None,
        }
    }
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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                FakeListener(listener),
                app.into_make_service_with_connect_info::<Peer>(),
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

    /// The requests refused with `411` (see [`Seen::rejected`]).
    pub fn rejected(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.rejected.is_some())
            .collect()
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
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
) -> Response {
    if lacks_length(&req) {
        return length_required(&seen, peer.addr, &req);
    }
    let fault = req
        .headers()
        .get("x-fake-fault")
        .and_then(|v| v.to_str().ok())
        .and_then(FakeFault::parse);
    let reply = answer(&seen, peer.addr, req).await;
    match fault {
        None => reply,
        Some(FakeFault::ResetAfterRead) => {
            peer.reset.store(true, Ordering::Release);
            // Never written: the stream refuses every byte from now on.
            Response::new(Body::empty())
        }
        Some(fault) => break_reply(fault, reply).await,
    }
}

/// A POST, PUT or PATCH with neither `Content-Length` nor `Transfer-Encoding`.
fn lacks_length(req: &Request) -> bool {
    matches!(
        *req.method(),
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    ) && !req.headers().contains_key(http::header::CONTENT_LENGTH)
        && !req.headers().contains_key(http::header::TRANSFER_ENCODING)
}

/// The front server's `411`, recorded as a rejected request.
fn length_required(seen: &Arc<Mutex<Vec<Seen>>>, peer: SocketAddr, req: &Request) -> Response {
    seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers: req.headers().clone(),
        body: Vec::new(),
        body_len: 0,
        body_hash: FNV_START,
        peer,
        rejected: Some(411),
    });
    Response::builder()
        .status(411)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from("411 Length Required\n"))
        .unwrap()
}

/// `reply` with its body cut off or stalled as `fault` says: no length,
/// so chunked; a short pause before the end lets hyper flush the head and
/// what was sent (it drops its buffer when a body fails at once).
async fn break_reply(fault: FakeFault, reply: Response) -> Response {
    let (mut parts, body) = reply.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let sent = match fault {
        FakeFault::TruncateMidBody => bytes.slice(..bytes.len() / 2),
        _ => bytes::Bytes::new(),
    };
    let first = (!sent.is_empty()).then_some(Ok::<_, io::Error>(sent));
    let last = async move {
        if fault == FakeFault::StallAfterHead {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fake fault: reply cut off",
        ))
    };
    let stream = futures_util::stream::iter(first).chain(futures_util::stream::once(last));
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The normal reply, after recording the request.
async fn answer(seen: &Arc<Mutex<Vec<Seen>>>, peer: SocketAddr, req: Request) -> Response {
    let seen = seen.clone();
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
        rejected: None,
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

// === the listener: connections a fault can reset ===

/// What a request knows of its connection: the peer, and the switch that
/// resets the connection.
#[derive(Debug, Clone)]
struct Peer {
    addr: SocketAddr,
    reset: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, FakeListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, FakeListener>) -> Self {
        Self {
            addr: *stream.remote_addr(),
            reset: stream.io().reset.clone(),
        }
    }
}

struct FakeListener(TcpListener);

impl Listener for FakeListener {
    type Io = FakeStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FakeStream, SocketAddr) {
        let (inner, addr) = Listener::accept(&mut self.0).await;
        let reset = Arc::default();
        (FakeStream { inner, reset }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A TCP stream that refuses every operation once its switch is set, and
/// is then dropped with a reset (`SO_LINGER` 0) rather than a FIN: hyper
/// can put no byte of the reply on the wire.
struct FakeStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl FakeStream {
    fn refused(&self) -> Option<io::Error> {
        if !self.reset.load(Ordering::Acquire) {
            return None;
        }
        let _ = self.inner.set_zero_linger();
        Some(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "fake fault: reset",
        ))
    }
}

impl AsyncRead for FakeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FakeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// === tests of the fake itself ===

/// Sends `request` raw on a fresh connection and reads for up to `wait`:
/// what arrived, and how it ended (`Some(true)` an error, `Some(false)`
/// EOF, `None` still open).
async fn raw(addr: SocketAddr, request: &str, wait: Duration) -> (String, Option<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let ended = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return false,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(_) => return true,
            }
        }
    })
    .await
    .ok();
    (String::from_utf8_lossy(&received).into_owned(), ended)
}

fn post_with_fault(fake: &FakeDs24, fault: &str) -> String {
    format!(
        "POST /api/call/refundPurchase HTTP/1.1\r\nHost: {}\r\nx-fake-fault: {fault}\r\nContent-Length: 14\r\n\r\npurchase_id=P1",
        fake.addr
    )
}

#[tokio::test]
async fn the_fake_answers_411_to_a_post_without_a_length_and_records_it_as_rejected() {
    let fake = FakeDs24::start().await;
    let host = format!("Host: {}\r\nConnection: close\r\n", fake.addr);

    let (refused, _) = raw(
        fake.addr,
        &format!("POST /api/call/ping HTTP/1.1\r\n{host}\r\n"),
        Duration::from_secs(5),
    )
    .await;
    let (zero, _) = raw(
        fake.addr,
        &format!("POST /api/call/ping HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n"),
        Duration::from_secs(5),
    )
    .await;
    let (get, _) = raw(
        fake.addr,
        &format!("GET /api/call/ping HTTP/1.1\r\n{host}\r\n"),
        Duration::from_secs(5),
    )
    .await;

    assert!(refused.starts_with("HTTP/1.1 411"), "{refused}");
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{refused}"
    );
    assert!(
        refused.ends_with("\r\n\r\n411 Length Required\n"),
        "{refused}"
    );
    assert!(zero.starts_with("HTTP/1.1 200"), "{zero}");
    assert!(get.starts_with("HTTP/1.1 200"), "{get}");
    assert_eq!(fake.requests().len(), 3, "refused requests are recorded");
    let rejected = fake.rejected();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].method.as_str(), rejected[0].path.as_str()),
        ("POST", "/api/call/ping")
    );
    assert_eq!(rejected[0].rejected, Some(411));
}

#[tokio::test]
async fn fake_faults_break_the_reply_after_the_request_was_recorded() {
    let fake = FakeDs24::start().await;
    let wait = Duration::from_secs(5);

    let (after_head, ended) = raw(
        fake.addr,
        &post_with_fault(&fake, "truncate-after-head"),
        wait,
    )
    .await;
    let (head, body) = after_head.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert_eq!((body, ended.is_some()), ("", true));

    let (mid, ended) = raw(
        fake.addr,
        &post_with_fault(&fake, "truncate-mid-body"),
        wait,
    )
    .await;
    let (_, body) = mid.split_once("\r\n\r\n").unwrap();
    let (size, rest) = body.split_once("\r\n").unwrap();
    let size = usize::from_str_radix(size, 16).unwrap();
    assert!(
        size > 0 && rest.len() == size + 2,
        "one chunk, no end: {body:?}"
    );
    assert!(rest.starts_with(r#"{"api_version":"1.2""#), "{rest}");
    assert!(ended.is_some());

    let (stall, ended) = raw(
        fake.addr,
        &post_with_fault(&fake, "stall-after-head"),
        Duration::from_millis(300),
    )
    .await;
    assert!(stall.starts_with("HTTP/1.1 200"), "{stall}");
    assert!(stall.ends_with("\r\n\r\n"), "no body: {stall:?}");
    assert_eq!(ended, None, "still open");

    let (reset, ended) = raw(fake.addr, &post_with_fault(&fake, "reset-after-read"), wait).await;
    assert_eq!((reset.as_str(), ended.is_some()), ("", true));

    let seen = fake.requests();
    assert_eq!(seen.len(), 4, "every request was recorded first");
    assert!(seen.iter().all(|s| s.body == b"purchase_id=P1"));
}
