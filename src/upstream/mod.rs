//! Digistore24's HTTP side: one pooled client and the classification of its
//! failures. Every call to Digistore24, pass-through or action, goes here.

pub mod envelope;
mod error;

use std::time::Duration;

pub use envelope::{Ds24Error, Reply, codes};
pub use error::{UpstreamError, chain as error_chain};
use http::{HeaderMap, Method};
use url::Url;

use crate::config::UpstreamConfig;

/// The pooled upstream HTTP client.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    request_timeout: Duration,
}

/// One request to send upstream.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Method, kept from the client.
    pub method: Method,
    /// Full target URL (base URL + function path + query).
    pub url: Url,
    /// Headers to send, the key already inserted.
    pub headers: HeaderMap,
    /// The body, streamed.
    pub body: reqwest::Body,
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
        Ok(Self {
            client,
            request_timeout: config.request_timeout,
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
    pub async fn send(&self, request: UpstreamRequest) -> Result<reqwest::Response, UpstreamError> {
        let host = request.url.host_str().unwrap_or_default().to_owned();
        self.client
            .request(request.method, request.url)
            .headers(request.headers)
            .body(request.body)
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| UpstreamError::from_reqwest(e, &host, self.request_timeout))
    }
}
