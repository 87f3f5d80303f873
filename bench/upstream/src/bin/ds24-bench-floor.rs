//! `ds24-bench-floor --listen ADDR --upstream HOST:PORT --key KEY`: prints
//! `listening ADDR` once it accepts.
//!
//! The floor of the benchmark: the least a proxy built on the same crates
//! as ds24-proxy (tokio, hyper, hyper-util's pooled client) can do per
//! request. It injects the key and forwards, nothing else: no routing,
//! validation, tokens, limits, metrics, logging, retries or timeouts.
//!
//! It runs the same way ds24-proxy serves: one current-thread runtime per
//! core, each with its own listener (SO_REUSEPORT) and its own pool of
//! upstream connections. Its distance from nginx is what the stack costs;
//! ds24-proxy's distance from it is what ds24-proxy's features cost.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

// The allocator ds24-proxy uses (the upstream keeps the system's).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn die(e: &dyn std::fmt::Display) -> ! {
    eprintln!("ds24-bench-floor: {e}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args);
}

type Pool = Client<HttpConnector, Incoming>;

fn run(args: &[String]) {
    let (mut listen, mut upstream, mut key) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--listen" => listen = Some(value.parse::<SocketAddr>().unwrap_or_else(|e| die(&e))),
            "--upstream" => upstream = Some(value.clone()),
            "--key" => key = Some(HeaderValue::from_str(value).unwrap_or_else(|e| die(&e))),
            _ => die(&format!("unknown flag {flag}")),
        }
    }
    let listen = listen.unwrap_or_else(|| die(&"--listen is required"));
    let upstream: &'static str = upstream
        .unwrap_or_else(|| die(&"--upstream is required"))
        .leak();
    let key = key.unwrap_or_else(|| die(&"--key is required"));

    // The first thread binds (the caller may pass port 0) and reports the
    // address; every other thread binds its own listener to that address.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (bound, addr) = std::sync::mpsc::channel();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let at = if i == 0 {
            listen
        } else {
            addr.recv().unwrap_or_else(|e| die(&e))
        };
        let (key, bound) = (key.clone(), bound.clone());
        handles.push(std::thread::spawn(move || {
            serve(at, i == 0, upstream, key, bound)
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

fn serve(
    at: SocketAddr,
    first: bool,
    upstream: &'static str,
    key: HeaderValue,
    bound: std::sync::mpsc::Sender<SocketAddr>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(&e));
    rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| die(&e));
        socket.set_reuseport(true).unwrap_or_else(|e| die(&e));
        socket.bind(at).unwrap_or_else(|e| die(&e));
        let listener = socket.listen(1024).unwrap_or_else(|e| die(&e));
        let addr = listener.local_addr().unwrap_or_else(|e| die(&e));
        if first {
            println!("listening {addr}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
        // Each thread passes the address on to the next one.
        let _ = bound.send(addr);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pool: Pool = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (pool, key) = (pool.clone(), key.clone());
            tokio::spawn(async move {
                let service =
                    service_fn(move |req| forward(pool.clone(), upstream, key.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn forward(
    pool: Pool,
    upstream: &'static str,
    key: HeaderValue,
    mut req: Request<Incoming>,
) -> Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("http://{upstream}{path}")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"));
    *req.uri_mut() = uri;
    req.headers_mut().remove(HOST);
    req.headers_mut().insert("x-ds-api-key", key);
    pool.request(req).await
}
