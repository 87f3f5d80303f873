//! The sandbox: a local stand-in for the Digistore24 vendor API.
//!
//! It answers every function of the action catalog (the spec's 122 plus
//! `getTestpayKey`): the 20 popular functions (API-FACTS §8.1) plus
//! `getUserInfo`, `ping` and `ipnSetup`/`ipnInfo`/`ipnDelete` from a small,
//! deterministic, mutable data set, and every other one by checking its
//! parameters against the catalog and answering the spec's reply shape
//! (`functions::generic`, `shapes`). It sends signed IPN events to
//! registered URLs (`ipn`), runs the API-key connect flow (`requestApiKey`,
//! an approval page, `retrieveApiKey`, `unregister`; API-FACTS §6), speaks the real envelope and error codes,
//! and records every API request it receives so tests can assert on what
//! the proxy actually sent. Users run it offline with `ds24-proxy sandbox`
//! or `serve --sandbox`.
//!
//! Module map:
//! - `ipn`: IPN registrations and signed events (on refund, on a sale made
//!   with `POST /sandbox/purchases`, on demand with `POST /sandbox/ipn`)
//! - `handler`: the one API request handler (body limit, recording, faults,
//!   auth, dispatch)
//! - `route`: which function a path names (three URL shapes)
//! - `params`: query + form (+ JSON) → one nested parameter object
//! - `positional`: the PHP connectors' `arg1 … argN` → parameter names
//! - `shapes`: the spec's reply shape of each function (generated table)
//! - `keys`: the accepted keys (built-in, minted, added), [`Permission`],
//!   and the key control methods for tests
//! - `requests`: connect requests by token and the vendor's decision
//! - `approval`: the HTML approval page at `/sandbox/approve/{token}`
//! - `auth`: the key of a request and what its permission allows
//! - `faults`: [`Fault`]s scripted with [`Sandbox::fail_next`], and call counts
//! - `socket`: the listener behind [`serve`], whose connections a fault can
//!   reset
//! - `envelope`: success/error JSON and the HTTP status of each error code
//! - `clock`: `YYYY-MM-DD HH:MM:SS` times and `from`/`to` filters
//! - `paging`: `page_no`/`page_size` handling
//! - `store`, `data`: the records and their seed
//! - `functions`: the function table, one file per domain, and `generic`
//!   for every catalog function without state
//!
//! Knobs for tests, as methods: [`Sandbox::fail_next`] (errors, bare
//! statuses, resets, delays for the next calls; or replies broken after
//! the call was carried out), [`Sandbox::calls`], [`Sandbox::rejected`],
//! [`Sandbox::add_key`], [`Sandbox::revoke_key`], [`Sandbox::approve`],
//! [`Sandbox::abort`], [`Sandbox::pending_tokens`]. And as request headers
//! (they are recorded like any other):
//! - `X-DS24-Sandbox-Error-Style: 200|4xx` picks the error style for this
//!   request only;
//! - `X-DS24-Sandbox-Fail: <code>` answers with that error code (e.g. `12`,
//!   "Too many requests", HTTP 429) before the key is even checked.
//!
//! The seeded ids tests can rely on are listed in `data.rs`.

mod approval;
mod auth;
mod clock;
mod data;
mod envelope;
mod faults;
mod functions;
mod handler;
mod ipn;
mod keys;
mod paging;
mod params;
mod positional;
mod requests;
mod route;
mod shapes;
mod socket;
mod store;
#[cfg(test)]
mod tests;

pub use faults::Fault;
pub use keys::Permission;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::routing::get;

/// Key with full access (`writable`); its id is `1000`.
pub const WRITABLE_KEY: &str = "1000-SandboxWritableKey00000000000000000000000";

/// Key with read access (`readonly`); its id is `1001`. Write functions
/// answer it with code 5 "Permission denied.".
pub const READONLY_KEY: &str = "1001-SandboxReadonlyKey00000000000000000000000";

/// Developer key (`developer`); its id is `1002`. It may only call
/// `requestApiKey` and `retrieveApiKey`, and those two accept no other key.
pub const DEVELOPER_KEY: &str = "1002-SandboxDeveloperKey0000000000000000000000";

/// How many requests a sandbox remembers. Tests stay far below it; the
/// bound only keeps a long-running `ds24-proxy sandbox` from growing
/// without end.
const RECORDING_LIMIT: usize = 10_000;

/// How the sandbox reports errors over HTTP.
///
/// Digistore24 historically answered every error with HTTP 200 and the error
/// envelope; the 2025 connector shows it now also uses 4xx (API-FACTS §2).
/// The proxy must handle both, so the sandbox can play either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorStyle {
    /// Errors carry a fitting status: 401, 400, 403, 404, 413, 429 (and 500
    /// for code 11).
    #[default]
    Http4xx,
    /// Every error is HTTP 200; only the envelope says `"result":"error"`.
    Http200,
}

impl FromStr for ErrorStyle {
    type Err = String;

    /// Parses `4xx`, `http4xx`, `200` or `http200` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "4xx" | "http4xx" => Ok(Self::Http4xx),
            "200" | "http200" => Ok(Self::Http200),
            other => Err(format!(
                "unknown error style {other:?}; use \"4xx\" or \"200\""
            )),
        }
    }
}

impl fmt::Display for ErrorStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http4xx => "4xx",
            Self::Http200 => "200",
        })
    }
}

/// Settings of a sandbox at start.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    /// How errors are reported until [`Sandbox::set_error_style`] changes it.
    pub error_style: ErrorStyle,
}

/// One request as the sandbox received it, kept for tests.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: http::Method,
    /// Raw path as received, e.g. `/api/call/listProducts`.
    pub path: String,
    /// Raw query string (without `?`), byte for byte.
    pub query: Option<String>,
    /// All request headers, including `X-DS-API-KEY`.
    pub headers: http::HeaderMap,
    /// Raw body, byte for byte (cut at the 1 MiB limit if it was longer).
    pub body: bytes::Bytes,
    /// Canonical name of the function called, the name as sent if the
    /// function is unknown, or `""` if the path names none.
    pub function: String,
    /// Query and body parameters merged, PHP brackets expanded into nested
    /// objects/arrays; all leaves are strings. An empty object when the
    /// parameters could not be parsed.
    pub params: serde_json::Value,
    /// `Some(status)` when the front server refused the request before the
    /// API saw it: `411 Length Required` for a POST, PUT or PATCH with
    /// neither `Content-Length` nor `Transfer-Encoding` (only on a socket,
    /// see [`serve`]). Nothing was run; `None` for every request the API
    /// handled.
    pub rejected: Option<http::StatusCode>,
}

/// A running sandbox: its data, keys, recordings, scripted faults and error
/// style.
///
/// Cheap to clone; clones share one state, so a test can keep a handle
/// while the router serves requests.
#[derive(Clone, Debug)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

/// State shared by all clones of a [`Sandbox`].
///
/// Plain `std` mutexes: every lock is taken and released inside synchronous
/// code, never across an `.await`. Request handling takes them one at a
/// time; only `Debug` holds several, in field order, so no two threads can
/// wait on each other.
struct Inner {
    store: Mutex<store::Store>,
    keys: Mutex<keys::Keys>,
    faults: Mutex<faults::Faults>,
    recorded: Mutex<VecDeque<RecordedRequest>>,
    error_style: Mutex<ErrorStyle>,
}

/// Short on purpose: the full data set and every recorded body would bury
/// whatever log line printed the sandbox, and keys are not printed at all.
impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("keys", &*lock(&self.keys))
            .field("faults", &*lock(&self.faults))
            .field("recorded", &lock(&self.recorded).len())
            .field("error_style", &*lock(&self.error_style))
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Creates a sandbox holding a fresh copy of the seed data.
    // By value because that is the public signature, and options may grow
    // fields that are not `Copy`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn new(options: SandboxOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(data::seed()),
                keys: Mutex::new(keys::Keys::builtin()),
                faults: Mutex::new(faults::Faults::default()),
                recorded: Mutex::new(VecDeque::new()),
                error_style: Mutex::new(options.error_style),
            }),
        }
    }

    /// Router serving the API under `/api/call/...`.
    ///
    /// Accepts `/api/call/{function}`, `/api/call/{function}/format/json` and
    /// the legacy `/api/call/{key}/json/{function}`, with any method. Every
    /// other path gets the error envelope (code 9) with HTTP 404, except the
    /// connect flow's approval page, `GET`/`POST /sandbox/approve/{token}`.
    pub fn router(&self) -> Router {
        self.clone().into_router()
    }

    /// The router, owning this handle (shares state with every clone).
    fn into_router(self) -> Router {
        Router::new()
            .route(approval::ROUTE, get(approval::show).post(approval::decide))
            .route("/sandbox/ipn", axum::routing::post(ipn::send_now))
            .route(
                "/sandbox/purchases",
                axum::routing::post(ipn::create_purchase),
            )
            .fallback(handler::handle)
            .with_state(self)
    }

    /// Every API request received so far, oldest first (only the newest
    /// 10 000 are kept). Visits to the approval page are not API calls and
    /// are not recorded.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.recorded).iter().cloned().collect()
    }

    /// The recorded requests the front server refused (see
    /// [`RecordedRequest::rejected`]), oldest first.
    pub fn rejected(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.recorded)
            .iter()
            .filter(|r| r.rejected.is_some())
            .cloned()
            .collect()
    }

    /// Forgets all recorded requests.
    pub fn clear_recorded(&self) {
        lock(&self.inner.recorded).clear();
    }

    /// Changes how errors are reported from the next request on.
    pub fn set_error_style(&self, style: ErrorStyle) {
        *lock(&self.inner.error_style) = style;
    }

    fn error_style(&self) -> ErrorStyle {
        *lock(&self.inner.error_style)
    }

    fn record(&self, request: RecordedRequest) {
        let mut recorded = lock(&self.inner.recorded);
        if recorded.len() == RECORDING_LIMIT {
            recorded.pop_front();
        }
        recorded.push_back(request);
    }

    fn store(&self) -> MutexGuard<'_, store::Store> {
        lock(&self.inner.store)
    }

    fn keys(&self) -> MutexGuard<'_, keys::Keys> {
        lock(&self.inner.keys)
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not turn
/// every later request into a second panic; the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `sandbox.router()` on the listener until `shutdown` resolves.
///
/// Unlike a bare router, this can play [`Fault::Reset`] and
/// [`Fault::ResetAfterRun`]: every connection carries a kill switch (see
/// `socket.rs`). And like Digistore24's front server it answers `411
/// Length Required` to an API request (POST, PUT, PATCH) that declares no
/// body length, neither `Content-Length` nor `Transfer-Encoding`
/// (API-FACTS §1); such a request is recorded with
/// [`RecordedRequest::rejected`] set and counted by [`Sandbox::calls`].
///
/// # Errors
/// Returns the I/O error that stopped the server, if any.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Sandbox,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Debug only: the commands that start the sandbox announce it themselves.
    if let Ok(addr) = listener.local_addr() {
        tracing::debug!(sandbox.addr = %addr, "sandbox serving");
    }
    let app = sandbox
        .into_router()
        .into_make_service_with_connect_info::<socket::KillSwitch>();
    axum::serve(socket::KillableListener(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}
