//! Calling a function with an explicit key, outside any connection: the
//! connect flow (developer key, then the new key to verify it) and
//! `connections remove --unregister`.

use http::{HeaderMap, HeaderValue, Method, header};
use url::Url;

use super::Answer;
use crate::credentials::ApiKey;
use crate::proxy::target_url;
use crate::server::error::ApiError;
use crate::upstream::{Reply, Upstream, UpstreamRequest, envelope};

/// POSTs `form` to `{base_url}/{function}` with `key` and unwraps the reply.
///
/// # Errors
/// `upstream_error` for a Digistore24 error, `upstream_unavailable` when it
/// cannot be reached.
pub async fn call_with_key(
    upstream: &Upstream,
    base_url: &Url,
    function: &str,
    form: &[(&str, &str)],
    key: &ApiKey,
) -> Result<Answer, ApiError> {
    let url = target_url(base_url, function, "", None)?;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(crate::proxy::headers::API_KEY, key.header_value());
    let request = UpstreamRequest {
        method: Method::POST,
        uri: url,
        headers,
        body: axum::body::Body::from(body),
    };
    let response = upstream.send(request).await?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .read_up_to(super::MAX_REPLY_BYTES)
        .await?
        .ok_or_else(super::too_large_reply)?;
    match envelope::parse(status, &bytes) {
        Reply::Success { data, api_version } => Ok(Answer { data, api_version }),
        Reply::Error(e) => Err(e.into()),
    }
}
