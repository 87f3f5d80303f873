//! A fast, static stand-in for the Digistore24 API, used by `bench/run.sh`
//! as the upstream of every contender. It is not the sandbox: it keeps no
//! state and answers every call the same way, so that the benchmark measures
//! the proxies and not the upstream.
//!
//! * `GET|POST /api/call/{function}…` with `X-DS-API-KEY` exactly the
//!   configured key: `200` and a ~1 KB success envelope
//!   (`application/json`, with `content-length`).
//! * the same without the key, or with another one: `401` and an error
//!   envelope.
//! * anything else: `404` (another path) or `405` (another method), both
//!   with an error envelope.
//!
//! Request bodies are always read to the end and discarded. A request with
//! `x-bench-probe: 1` also gets `x-bench-head-ms` (Unix milliseconds at which
//! the request head reached the upstream) and `x-bench-body-bytes` (how many
//! body bytes arrived), which the harness uses to check that bodies arrive
//! whole and whether a proxy streams them.
//!
//! Usage:
//!   ds24-bench-upstream serve --listen 127.0.0.1:0 --key KEY [--threads N]
//!     prints `listening 127.0.0.1:PORT` on stdout once it accepts.
//!   ds24-bench-upstream free-port
//!     prints a port that was free on 127.0.0.1 a moment ago.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("free-port") => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die(&e));
            println!("{}", l.local_addr().unwrap_or_else(|e| die(&e)).port());
        }
        Some("serve") => serve(&args[1..]),
        _ => die(
            &"usage: ds24-bench-upstream serve --listen ADDR --key KEY [--threads N] | free-port",
        ),
    }
}

fn die(e: &dyn std::fmt::Display) -> ! {
    eprintln!("ds24-bench-upstream: {e}");
    std::process::exit(2)
}

fn serve(args: &[String]) {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let mut key = None;
    let mut threads = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--listen" => listen = value.parse().unwrap_or_else(|e| die(&e)),
            "--key" => key = Some(value.clone()),
            "--threads" => threads = Some(value.parse::<usize>().unwrap_or_else(|e| die(&e))),
            _ => die(&format!("unknown flag {flag}")),
        }
    }
    let key = key.unwrap_or_else(|| die(&"--key is required"));
    let key = Arc::new(HeaderValue::from_str(&key).unwrap_or_else(|e| die(&e)));

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_io();
    if let Some(n) = threads {
        rt.worker_threads(n);
    }
    let rt = rt.build().unwrap_or_else(|e| die(&e));
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await.unwrap_or_else(|e| die(&e));
        let addr = listener.local_addr().unwrap_or_else(|e| die(&e));
        println!("listening {addr}");
        let _ = std::io::stdout().flush();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let key = key.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, key.clone()));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn handle(
    req: Request<Incoming>,
    key: Arc<HeaderValue>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let head_ms = unix_ms();
    let probe = req.headers().contains_key("x-bench-probe");
    let is_call = req.uri().path().starts_with("/api/call/") && req.uri().path().len() > 10;
    let method_ok = matches!(*req.method(), Method::GET | Method::POST);
    let authorized = req
        .headers()
        .get("x-ds-api-key")
        .is_some_and(|v| v.as_bytes() == key.as_bytes());

    // Read and discard the body, whatever the answer will be.
    let mut body = req.into_body();
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_bytes += data.len() as u64;
                }
            }
            Err(_) => break,
        }
    }

    let (status, payload) = if !is_call {
        (
            StatusCode::NOT_FOUND,
            error_body(4, "Invalid API function called"),
        )
    } else if !method_ok {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            error_body(3, "Method not allowed"),
        )
    } else if !authorized {
        (
            StatusCode::UNAUTHORIZED,
            error_body(2, "Invalid or missing API key"),
        )
    } else {
        (StatusCode::OK, success_body())
    };
    let mut resp = Response::new(Full::new(payload));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if probe {
        h.insert("x-bench-head-ms", HeaderValue::from(head_ms));
        h.insert("x-bench-body-bytes", HeaderValue::from(body_bytes));
    }
    Ok(resp)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Bodies are rebuilt at most once a second per thread (for `current_time`).
#[derive(Default)]
struct Cache {
    second: u64,
    success: Bytes,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn success_body() -> Bytes {
    let now = unix_ms() / 1000;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.second != now || c.success.is_empty() {
            c.second = now;
            c.success = Bytes::from(success_json(&datetime(now)));
        }
        c.success.clone()
    })
}

/// A `listProducts`-like reply of about 1 KB.
fn success_json(now: &str) -> String {
    format!(
        concat!(
            r#"{{"api_version":"1.2","current_time":"{now}","runtime_seconds":0.0131,"#,
            r#""result":"success","data":{{"products":["#,
            r#"{{"id":"10001","name":"Online-Kurs: Erfolgreich verkaufen","name_intern":"Course A","#,
            r#""description":"Zwölf Module mit Videos, Arbeitsblättern und Community-Zugang.","#,
            r#""language":"de","product_type_id":"2","product_type_name":"E-Learning","#,
            r#""currency":"EUR","price":"197.00","first_amount":"197.00","other_amounts":"0.00","#,
            r#""is_active":"Y","approval_status":"approved","created_at":"2024-03-11 09:12:44","#,
            r#""modified_at":"2025-10-02 17:03:19","tag":"course"}},"#,
            r#"{{"id":"10002","name":"Mitgliedschaft Premium","name_intern":"Membership","#,
            r#""description":"Monatlicher Zugang zu allen Inhalten, jederzeit kündbar.","#,
            r#""language":"de","product_type_id":"7","product_type_name":"Membership","#,
            r#""currency":"EUR","price":"29.00","first_amount":"29.00","other_amounts":"29.00","#,
            r#""is_active":"Y","approval_status":"approved","created_at":"2024-05-02 14:40:01","#,
            r#""modified_at":"2025-09-21 08:55:30","tag":"membership"}}],"#,
            r#""page_no":1,"page_size":2,"item_count":2,"page_count":1}},"#,
            r#""timezone":"Europe/Berlin","utc_offset":"+00:00"}}"#
        ),
        now = now
    )
}

fn error_body(code: u32, message: &str) -> Bytes {
    let now = datetime(unix_ms() / 1000);
    Bytes::from(format!(
        r#"{{"api_version":"1.2","current_time":"{now}","result":"error","code":{code},"message":"{message}"}}"#
    ))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for Unix seconds.
fn datetime(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetime_formats() {
        assert_eq!(super::datetime(0), "1970-01-01 00:00:00");
        assert_eq!(super::datetime(1_762_690_176), "2025-11-09 12:09:36");
    }

    #[test]
    fn envelope_is_about_one_kilobyte() {
        let n = super::success_json("2025-11-09 12:09:36").len();
        assert!((900..=1300).contains(&n), "{n} bytes");
    }
}
