//! Digistore24's HTTP side: one pooled client and the classification of its
//! failures. Every call to Digistore24, pass-through or action, goes here.

mod body;
pub mod envelope;
mod error;

use std::sync::Arc;
use std::time::Duration;

use thread_local::ThreadLocal;

pub use body::UpstreamBody;
pub use envelope::{Ds24Error, Reply, codes};
pub use error::{Delivery, UpstreamError, chain as error_chain};
use http::{HeaderMap, Method};

/// The client of every call to Digistore24: hyper-util's pooled HTTP/1.1
/// client over rustls.
///
/// Chosen over reqwest by measurement (docs/BENCHMARKS.md): on the
/// pass-through hot path reqwest's layers (URL re-parsing, redirect and
/// retry services, its own body and response wrappers) cost about 13% of
/// the proxy's CPU per GET and 18% per 16 KiB POST, and the proxy needs
/// none of them: it follows no redirects, retries by its own policy, and
/// streams hyper bodies both ways.
type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    axum::body::Body,
>;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Upstream HTTP client settings; `config` builds them from the file,
/// the environment and the flags.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `upstream.connect_timeout_ms`; default 5000 ms.
    pub connect_timeout: Duration,
    /// `upstream.request_timeout_secs`; default 120 s.
    pub request_timeout: Duration,
    /// `upstream.pool_idle_timeout_secs`; default 90 s.
    pub pool_idle_timeout: Duration,
    /// `upstream.max_attempts` (default 3) and `upstream.retry_budget_secs`
    /// (default 10): retries of read calls.
    pub retry: crate::resilience::RetryPolicy,
}

/// The pooled upstream HTTP clients.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// For Digistore24 (pass-through, actions, the connect flow): one
    /// client, and so one connection pool, per thread. A pooled
    /// connection's task runs on the runtime that opened it; sharing one
    /// pool across the connection workers made every request wake a task on
    /// another thread (see `server::workers`).
    http: Arc<ThreadLocal<HttpClient>>,
    connector: Connector,
    pool_idle_timeout: Duration,
    /// For everything else that speaks HTTP with rarer calls and more
    /// needs (OAuth2 token endpoints).
    client: reqwest::Client,
    request_timeout: Duration,
}

/// One request to send upstream.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Method, kept from the client.
    pub method: Method,
    /// Full target URI (base URL + function path + query).
    pub uri: http::Uri,
    /// Headers to send, the key already inserted.
    pub headers: HeaderMap,
    /// The body, streamed.
    pub body: axum::body::Body,
}

/// A client builder for any HTTP client of the proxy: TLS with ring (see
/// [`Upstream::new`]) and no proxy from the environment.
pub fn client_builder() -> reqwest::ClientBuilder {
    // reqwest is built without a default crypto provider so that ring
    // (pure Rust + a little C, quick to build) is used rather than
    // aws-lc; installing it twice is harmless, hence the ignored result.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

impl Upstream {
    /// Builds the client.
    ///
    /// # Errors
    /// When TLS cannot be initialised.
    pub fn new(config: &UpstreamConfig) -> anyhow::Result<Self> {
        let client = client_builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .tcp_nodelay(true)
            // Redirects are not followed: a 3xx from the upstream goes back to
            // the client unchanged, and the key is never sent to another host.
            .redirect(reqwest::redirect::Policy::none())
            // Compressed replies pass through untouched; the proxy does not
            // decode them.
            .no_proxy()
            .build()?;
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?;
        let tls = {
            use rustls_platform_verifier::BuilderVerifierExt;
            tls.with_platform_verifier()?.with_no_client_auth()
        };
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(config.connect_timeout));
        // The scheme is checked by the configuration (http only to loopback).
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Self {
            http: Arc::new(ThreadLocal::new()),
            connector,
            pool_idle_timeout: config.pool_idle_timeout,
            client,
            request_timeout: config.request_timeout,
        })
    }

    /// This thread's client for Digistore24.
    fn http(&self) -> &HttpClient {
        self.http.get_or(|| {
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(self.pool_idle_timeout)
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .build(self.connector.clone())
        })
    }

    /// The underlying client (token endpoints reuse its pool and TLS setup).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` and returns the response as soon as its head arrived;
    /// the body streams afterwards.
    ///
    /// # Errors
    /// [`UpstreamError`] classifying what failed.
    pub async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        // Only a failure names the host; cloning a Uri shares its bytes, so
        // nothing is copied on the way through.
        let target = request.uri.clone();
        let host = || target.host().unwrap_or_default().to_owned();
        let mut headers = request.headers;
        frame_length(&request.method, &request.body, &mut headers);
        let mut outgoing = http::Request::new(request.body);
        *outgoing.method_mut() = request.method;
        *outgoing.uri_mut() = request.uri;
        *outgoing.headers_mut() = headers;
        // One deadline for the whole exchange, the reply body included.
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let response = match tokio::time::timeout_at(deadline, self.http().request(outgoing)).await
        {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    host: host(),
                    timeout: self.request_timeout,
                });
            }
            Ok(Err(e)) => return Err(UpstreamError::from_client(&e, &host())),
            Ok(Ok(response)) => response,
        };
        Ok(response.map(|body| UpstreamBody::new(body, deadline, self.request_timeout)))
    }
}

/// Gives a POST, PUT or PATCH of known size an explicit `Content-Length`.
///
/// hyper writes no length for an empty body, and Digistore24's front server
/// answers such a POST with `411 Length Required` (API-FACTS §1). Every
/// request to Digistore24 passes here, so this one rule covers the
/// pass-through, actions, paging, connect and `ipn setup` alike. A body of
/// unknown size goes out chunked, which is framed too.
fn frame_length(method: &Method, body: &axum::body::Body, headers: &mut HeaderMap) {
    use http_body::Body as _;
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        || headers.contains_key(http::header::CONTENT_LENGTH)
        || headers.contains_key(http::header::TRANSFER_ENCODING)
    {
        return;
    }
    if let Some(n) = body.size_hint().exact() {
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(n));
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method, header};

    use super::frame_length;

    #[test]
    fn a_post_of_known_size_gets_a_length_and_others_are_left_alone() {
        let length = |method: Method, body: axum::body::Body| {
            let mut headers = HeaderMap::new();
            frame_length(&method, &body, &mut headers);
            headers
                .get(header::CONTENT_LENGTH)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            length(Method::POST, axum::body::Body::empty()).as_deref(),
            Some("0")
        );
        assert_eq!(
            length(Method::PUT, axum::body::Body::from("a=1")).as_deref(),
            Some("3")
        );
        assert_eq!(length(Method::GET, axum::body::Body::empty()), None);
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("x"))]);
        assert_eq!(
            length(Method::POST, axum::body::Body::from_stream(stream)),
            None
        );
    }
}
