//! The fault matrix: every way a reply from Digistore24 breaks (cut off
//! after the head or mid-body, stalled, reset before or after the call
//! ran, connect refused, a 503, a timeout) × both routes (pass-through
//! form, action JSON) × with and without `Idempotency-Key` × a read, a
//! write and a money call. Each row calls, then repeats the same call
//! twice (with the same key when it has one), and checks what the upstream
//! received and what each caller got:
//!
//! - a read reaches the upstream 1 to `max_attempts` times per try and is
//!   never `outcome_unknown` nor answered from a record;
//! - a write or money call is sent at most once per try, and at most once
//!   in all with a key; once it may have reached the upstream, its first
//!   answer is `502 outcome_unknown` (a pass-through write passes a real
//!   HTTP answer, the 503, through unchanged) and every repeat with the key
//!   replays that answer without calling;
//! - connect refused sends nothing: `upstream_unavailable`, never replayed.
//!
//! One sandbox and proxy per fault, the faults in parallel (the timeouts
//! cost a second each); the rows of one fault run in turn, reset between
//! them. A failure prints the table of failing rows.

use std::fmt;
use std::time::Duration;

use ds24_proxy::sandbox::{self, Fault};
use serde_json::{Value, json};

use crate::sandbox::SandboxApp;

/// `upstream.max_attempts` the matrix runs with (the default, set
/// explicitly so the bound below cannot drift from it).
const MAX_ATTEMPTS: usize = 3;
/// Tries per row: the call and two repeats.
const TRIES: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// [`Fault::TruncateAfterHead`]: the call ran; head, then no body.
    TruncateAfterHead,
    /// [`Fault::TruncateMidBody`]: the call ran; head and half the body.
    TruncateMidBody,
    /// [`Fault::StallAfterHead`]: the call ran; head, then silence (cut by
    /// `request_timeout_secs = 1`).
    StallAfterHead,
    /// [`Fault::Reset`]: reset after the request was read, not run.
    ResetAfterRead,
    /// [`Fault::ResetAfterRun`]: the call ran, then a reset.
    ResetAfterRun,
    /// A connection whose base URL is a closed loopback port.
    ConnectRefused,
    /// [`Fault::Status`]`(503)`, a front server's plain-text answer.
    Status503,
    /// [`Fault::Delay`] longer than `request_timeout_secs`.
    Timeout,
}

const ALL_FAULTS: [Broken; 8] = [
    Broken::TruncateAfterHead,
    Broken::TruncateMidBody,
    Broken::StallAfterHead,
    Broken::ResetAfterRead,
    Broken::ResetAfterRun,
    Broken::ConnectRefused,
    Broken::Status503,
    Broken::Timeout,
];

impl Broken {
    fn sandbox_fault(self) -> Option<Fault> {
        Some(match self {
            Self::TruncateAfterHead => Fault::TruncateAfterHead,
            Self::TruncateMidBody => Fault::TruncateMidBody,
            Self::StallAfterHead => Fault::StallAfterHead,
            Self::ResetAfterRead => Fault::Reset,
            Self::ResetAfterRun => Fault::ResetAfterRun,
            Self::ConnectRefused => return None,
            Self::Status503 => Fault::Status(503),
            Self::Timeout => Fault::Delay(Duration::from_millis(1500)),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::TruncateAfterHead => "truncate-after-head",
            Self::TruncateMidBody => "truncate-mid-body",
            Self::StallAfterHead => "stall-after-head",
            Self::ResetAfterRead => "reset-after-read",
            Self::ResetAfterRun => "reset-after-run",
            Self::ConnectRefused => "connect-refused",
            Self::Status503 => "status-503",
            Self::Timeout => "timeout",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    PassThrough,
    Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Read,
    Write,
    Money,
}

impl Effect {
    fn function(self) -> &'static str {
        match self {
            Self::Read => "getPurchase",
            Self::Write => "updatePurchase",
            Self::Money => "refundPurchase",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Self::Read => "get-purchase",
            Self::Write => "update-purchase",
            Self::Money => "refund-purchase",
        }
    }
}

/// One row of the matrix; `n` numbers it within its fault.
#[derive(Clone, Copy, Debug)]
struct Row {
    fault: Broken,
    route: Route,
    keyed: bool,
    effect: Effect,
    n: usize,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<19} {:<6} {:<6} {:<5}",
            self.fault.label(),
            match self.route {
                Route::PassThrough => "pass",
                Route::Action => "action",
            },
            if self.keyed { "key" } else { "no-key" },
            match self.effect {
                Effect::Read => "read",
                Effect::Write => "write",
                Effect::Money => "money",
            }
        )
    }
}

impl Row {
    /// The purchase the row works on: every money row refunds its own, so
    /// a first refund is a real one.
    fn purchase(&self) -> String {
        match self.effect {
            // Three effects per route and key: SBX00005 to SBX00008.
            Effect::Money => format!("SBX{:05}", 5 + self.n / 3),
            _ => "SBX00001".to_owned(),
        }
    }

    /// Path, content type and body of the call.
    fn request(&self) -> (String, &'static str, String) {
        let id = self.purchase();
        match self.route {
            Route::PassThrough => {
                let form = match self.effect {
                    Effect::Read => format!("purchase_id={id}"),
                    Effect::Write => format!("purchase_id={id}&data[custom]=row-{}", self.n),
                    Effect::Money => format!("purchase_id={id}&force=Y"),
                };
                (
                    format!("/{}", self.effect.function()),
                    "application/x-www-form-urlencoded",
                    form,
                )
            }
            Route::Action => {
                let input = match self.effect {
                    Effect::Read => json!({"purchase_id": id}),
                    Effect::Write => {
                        json!({"purchase_id": id, "data": {"custom": format!("row-{}", self.n)}})
                    }
                    Effect::Money => json!({"purchase_id": id, "force": true}),
                };
                (
                    format!("/actions/{}", self.effect.action()),
                    "application/json",
                    input.to_string(),
                )
            }
        }
    }
}

/// What one caller try got.
#[derive(Debug)]
struct Answer {
    /// 0: no response at all.
    status: u16,
    replayed: bool,
    /// The body, or how reading it failed.
    body: Result<String, String>,
}

impl Answer {
    fn json(&self) -> Option<Value> {
        self.body
            .as_ref()
            .ok()
            .and_then(|b| serde_json::from_str(b).ok())
    }

    fn error_type(&self) -> Option<String> {
        self.json()?["error"]["type"].as_str().map(str::to_owned)
    }

    /// `502 outcome_unknown R`, `200 body-error`, `503 text`, …
    fn short(&self) -> String {
        let what = match (&self.body, self.error_type(), self.json()) {
            (Err(_), _, _) => "body-error".to_owned(),
            (Ok(_), Some(kind), _) => kind,
            (Ok(_), None, Some(json)) if json.get("data").is_some() => "data".to_owned(),
            (Ok(_), None, Some(_)) => "json".to_owned(),
            (Ok(text), None, None) => {
                format!("text {:?}", text.chars().take(24).collect::<String>())
            }
        };
        format!(
            "{} {what}{}",
            self.status,
            if self.replayed { " R" } else { "" }
        )
    }
}

/// The outcome of one row, for the table.
struct Checked {
    row: Row,
    calls: Vec<usize>,
    answers: Vec<Answer>,
    problems: Vec<String>,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answers: Vec<String> = self.answers.iter().map(Answer::short).collect();
        write!(
            f,
            "{} | calls {:?} | {} | {}",
            self.row,
            self.calls,
            answers.join(", "),
            self.problems.join("; ")
        )
    }
}

/// A client for the callers: one try must not hang the matrix.
fn caller() -> reqwest::Client {
    // Installs the TLS provider reqwest needs.
    let _ = crate::helpers::client();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn send(client: &reqwest::Client, app: &SandboxApp, row: &Row, key: &str) -> Answer {
    let (path, content_type, body) = row.request();
    let mut request = client
        .post(app.url(&path))
        .header("content-type", content_type)
        .body(body);
    if row.keyed {
        request = request.header("idempotency-key", key);
    }
    if row.fault == Broken::ConnectRefused {
        request = request.header("x-ds24-connection", format!("refused-{}", row.n));
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: 0,
                replayed: false,
                body: Err(e.to_string()),
            };
        }
    };
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = response.text().await.map_err(|e| e.to_string());
    Answer {
        status,
        replayed,
        body,
    }
}

/// Runs one row: reset, arrange the fault, three tries, then the checks.
async fn run_row(client: &reqwest::Client, app: &SandboxApp, row: Row) -> Checked {
    let mut problems = Vec::new();
    // A success closes the circuit breaker of `main` again.
    let (ping, body) = app.call("ping", "").await;
    if ping != 200 {
        problems.push(format!("the reset ping got {ping}: {body}"));
    }
    app.sandbox.clear_faults();
    app.sandbox.clear_recorded();
    if let Some(fault) = row.fault.sandbox_fault() {
        app.sandbox.fail_next(Some(row.effect.function()), 1, fault);
    }
    let key = format!("fault-matrix-{}-{}", row.fault.label(), row.n);
    let function = row.effect.function();
    let mut calls = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..TRIES {
        let before = app.sandbox.calls(function);
        answers.push(send(client, app, &row, &key).await);
        calls.push(app.sandbox.calls(function) - before);
    }
    check(&row, &calls, &answers, &mut problems);
    Checked {
        row,
        calls,
        answers,
        problems,
    }
}

fn check(row: &Row, calls: &[usize], answers: &[Answer], problems: &mut Vec<String>) {
    let total: usize = calls.iter().sum();
    let first = &answers[0];
    if row.fault == Broken::ConnectRefused {
        if total != 0 {
            problems.push(format!("the upstream got {total} calls, expected 0"));
        }
        if (first.status, first.error_type().as_deref()) != (502, Some("upstream_unavailable")) {
            problems.push("first answer is not 502 upstream_unavailable".to_owned());
        }
        for (i, repeat) in answers.iter().enumerate().skip(1) {
            // The breaker may have opened by now: 503, still nothing sent.
            if !matches!(repeat.status, 502 | 503)
                || repeat.error_type().as_deref() != Some("upstream_unavailable")
            {
                problems.push(format!("try {} is not upstream_unavailable", i + 1));
            }
        }
        if answers.iter().any(|a| a.replayed) {
            problems.push("replayed although nothing was sent".to_owned());
        }
        return;
    }
    match row.effect {
        Effect::Read => check_read(row, calls, answers, problems),
        Effect::Write | Effect::Money => check_write(row, calls, answers, problems),
    }
}

fn check_read(row: &Row, calls: &[usize], answers: &[Answer], problems: &mut Vec<String>) {
    for (i, (&n, answer)) in calls.iter().zip(answers).enumerate() {
        let try_no = i + 1;
        if !(1..=MAX_ATTEMPTS).contains(&n) {
            problems.push(format!(
                "try {try_no}: {n} upstream calls, expected 1..={MAX_ATTEMPTS}"
            ));
        }
        if answer.replayed {
            problems.push(format!("try {try_no}: a read answered from a record"));
        }
        if answer.error_type().as_deref() == Some("outcome_unknown") {
            problems.push(format!("try {try_no}: a read answered outcome_unknown"));
        }
        if answer.status == 0 {
            problems.push(format!("try {try_no}: no answer at all"));
            continue;
        }
        if !(200..300).contains(&answer.status) {
            continue;
        }
        // A 2xx: the sandbox's own answer, whole, or (pass-through only,
        // whose head was already forwarded) a body that broke off.
        let purchase = match (&answer.body, answer.json()) {
            (Err(_), _) if row.route == Route::PassThrough => continue,
            (Err(e), _) => {
                problems.push(format!("try {try_no}: the action's body broke: {e}"));
                continue;
            }
            (Ok(_), Some(json)) => match row.route {
                Route::PassThrough if json["result"] == "success" => json["data"]["id"].clone(),
                Route::Action => json["data"]["id"].clone(),
                Route::PassThrough => Value::Null,
            },
            (Ok(_), None) => Value::Null,
        };
        if purchase != row.purchase().as_str() {
            problems.push(format!(
                "try {try_no}: a 2xx that is not the purchase's data (recorded or invented)"
            ));
        }
    }
}

fn check_write(row: &Row, calls: &[usize], answers: &[Answer], problems: &mut Vec<String>) {
    let total: usize = calls.iter().sum();
    if row.keyed && total > 1 {
        problems.push(format!(
            "sent {total} times with one Idempotency-Key, at most once allowed"
        ));
    }
    for (i, &n) in calls.iter().enumerate() {
        if n > 1 {
            problems.push(format!("try {}: the proxy sent it {n} times", i + 1));
        }
    }
    let first = &answers[0];
    // Only a pass-through passes a real HTTP answer on as it is.
    let passed_on = row.route == Route::PassThrough && row.fault == Broken::Status503;
    if passed_on {
        if (first.status, first.body.as_deref()) != (503, Ok("503 Service Unavailable\n")) {
            problems.push("the upstream's 503 was not passed through unchanged".to_owned());
        }
    } else if (first.status, first.error_type().as_deref()) != (502, Some("outcome_unknown")) {
        problems.push("first answer is not 502 outcome_unknown".to_owned());
    }
    if first.replayed {
        problems.push("the first answer is marked replayed".to_owned());
    }
    for (i, repeat) in answers.iter().enumerate().skip(1) {
        let try_no = i + 1;
        if !row.keyed {
            if repeat.replayed {
                problems.push(format!("try {try_no}: replayed without a key"));
            }
            continue;
        }
        if !repeat.replayed {
            problems.push(format!("try {try_no}: not replayed"));
        }
        if calls[i] != 0 {
            problems.push(format!("try {try_no}: the repeat called the upstream"));
        }
        let same = if passed_on {
            repeat.body.as_ref().ok() == first.body.as_ref().ok() && first.body.is_ok()
        } else {
            repeat.error_type().is_some() && repeat.error_type() == first.error_type()
        };
        if repeat.status != first.status || !same {
            problems.push(format!("try {try_no}: not the first answer again"));
        }
    }
}

/// The proxy and sandbox for one fault: request timeout 1 s, and for
/// connect refused one connection per row to a closed port (a breaker
/// that one row opened must not decide the next).
async fn app_for(fault: Broken, rows: usize) -> SandboxApp {
    let mut toml = format!("[upstream]\nrequest_timeout_secs = 1\nmax_attempts = {MAX_ATTEMPTS}\n");
    if fault == Broken::ConnectRefused {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        for n in 0..rows {
            toml.push_str(&format!(
                "[connections.refused-{n}]\nbase_url = \"http://127.0.0.1:{port}/api/call\"\ncredential = {{ source = \"env\", var = \"REFUSED_KEY\" }}\n"
            ));
        }
    }
    SandboxApp::start_with(
        &toml,
        &[
            ("DS24_API_KEY", sandbox::WRITABLE_KEY),
            ("REFUSED_KEY", sandbox::WRITABLE_KEY),
        ],
    )
    .await
}

fn rows_of(fault: Broken) -> Vec<Row> {
    let mut rows = Vec::new();
    for route in [Route::PassThrough, Route::Action] {
        for keyed in [true, false] {
            for effect in [Effect::Read, Effect::Write, Effect::Money] {
                rows.push(Row {
                    fault,
                    route,
                    keyed,
                    effect,
                    n: 0,
                });
            }
        }
    }
    for (n, row) in rows.iter_mut().enumerate() {
        row.n = n;
    }
    rows
}

#[tokio::test]
async fn every_fault_on_every_route_keeps_writes_at_most_once_and_says_so() {
    let started = std::time::Instant::now();
    let groups = ALL_FAULTS.map(|fault| async move {
        let rows = rows_of(fault);
        let app = app_for(fault, rows.len()).await;
        let client = caller();
        let mut checked = Vec::new();
        for row in rows {
            checked.push(run_row(&client, &app, row).await);
        }
        checked
    });
    let results: Vec<Checked> = futures_util::future::join_all(groups)
        .await
        .into_iter()
        .flatten()
        .collect();
    if std::env::var_os("FAULT_MATRIX_TABLE").is_some() {
        for row in &results {
            println!("{row}");
        }
    }
    let failing: Vec<String> = results
        .iter()
        .filter(|c| !c.problems.is_empty())
        .map(ToString::to_string)
        .collect();
    assert!(
        failing.is_empty(),
        "{} of {} rows fail (after {:.1?}):\nfault               route  key    effect | upstream calls per try | answers (R: Idempotent-Replayed) | problems\n{}",
        failing.len(),
        results.len(),
        started.elapsed(),
        failing.join("\n")
    );
}

/// Sends the head and part of a body that declares `length` bytes, then
/// drops the connection: a client that gives up half-way through its
/// upload.
async fn abort_upload(app: &SandboxApp, function: &str, sent: &str, length: usize) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(app.proxy).await.unwrap();
    let request = format!(
        "POST /{function} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n{sent}",
        app.proxy
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Long enough for the proxy to start forwarding the upload.
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(stream);
}

#[tokio::test]
async fn clients_that_abort_their_upload_do_not_open_the_circuit_breaker() {
    let app = SandboxApp::start(sandbox::WRITABLE_KEY).await;
    // The write first: its body is read whole before anything is sent, so
    // it should pass today; the read streams its upload to the upstream.
    for (function, sent) in [
        ("updatePurchase", "purchase_id=SBX00001&"),
        ("listProducts", "page_size=10&"),
    ] {
        for _ in 0..5 {
            abort_upload(&app, function, sent, 4096).await;
        }
        // Give the proxy the time to see each upload fail.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, body) = app.call("listProducts", "").await;
        assert_eq!(
            (status, body["result"].as_str()),
            (200, Some("success")),
            "after five aborted uploads to {function}, a normal call failed: {body}"
        );
        if function == "updatePurchase" {
            assert_eq!(
                app.sandbox.calls(function),
                0,
                "an aborted write is never sent"
            );
        }
    }
}
