//! Calling a function with an explicit key, outside any connection: the
//! connect flow (developer key, then the new key to verify it) and
//! `connections remove --unregister`.

use http::{HeaderMap, HeaderValue, Method, header};
use url::Url;

use super::{Answer, CallError, Cause};
use crate::credentials::ApiKey;
use crate::proxy::target_url;
use crate::upstream::{Reply, Upstream, UpstreamRequest, envelope};

/// POSTs `form` to `{base_url}/{function}` with `key` and unwraps the reply.
///
/// # Errors
/// [`CallError`]: Digistore24's refusal, or a failure to reach it.
pub async fn call_with_key(
    upstream: &Upstream,
    base_url: &Url,
    function: &str,
    form: &[(&str, &str)],
    key: &ApiKey,
) -> Result<Answer, CallError> {
    let effect = crate::actions::effect_of_function(function);
    let fail = |cause| CallError::new(function, effect, cause);
    let url = target_url(base_url, function, "", None).map_err(|_| fail(Cause::BadTarget))?;
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
    let response = upstream
        .send(request)
        .await
        .map_err(|e| fail(Cause::Upstream(e)))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .read_up_to(super::MAX_REPLY_BYTES)
        .await
        .map_err(|e| fail(Cause::Upstream(e)))?
        .ok_or_else(|| {
            fail(Cause::ReplyTooLarge {
                limit: super::MAX_REPLY_BYTES,
            })
        })?;
    match envelope::parse(status, &bytes) {
        Reply::Success { data, api_version } => Ok(Answer { data, api_version }),
        Reply::Error(e) => Err(super::refused(e, function)),
    }
}
