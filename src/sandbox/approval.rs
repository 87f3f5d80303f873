//! The approval page of the connect flow: where `requestApiKey` sends the
//! vendor's browser. It stands in for Digistore24's login-and-approve
//! screen, so a person running `ds24-proxy connect` against the sandbox can
//! click through it. One self-contained HTML page per state; no scripts,
//! no external resources.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};

use super::Sandbox;
use super::keys::Permission;
use super::requests::Status;

/// Where the pages live: this prefix, then the request token.
pub(crate) const PATH: &str = "/sandbox/approve/";

/// [`PATH`] as a route of the sandbox router.
pub(crate) const ROUTE: &str = "/sandbox/approve/{token}";

/// `GET`: the request with Approve and Abort buttons, or its state once
/// decided; 404 for an unknown token.
pub(crate) async fn show(State(sandbox): State<Sandbox>, Path(token): Path<String>) -> Response {
    let Some(request) = sandbox.keys().requests.get(&token).cloned() else {
        return unknown();
    };
    if request.status != Status::Pending {
        return html(StatusCode::OK, "Already decided", &decided(request.status));
    }
    let body = format!(
        "<h1>Connect an app to your account</h1>\
         <p>An app asks for an API key to your Digistore24 sandbox account.</p>\
         <dl><dt>Permission</dt><dd>{permission}</dd>\
         <dt>Site</dt><dd>{site}</dd>\
         <dt>Comment</dt><dd>{comment}</dd>\
         <dt>Returns to</dt><dd>{return_url}</dd></dl>\
         <form method=\"post\" action=\"{action}\">\
         <button class=\"approve\" name=\"decision\" value=\"approve\">Approve</button>\
         <button class=\"abort\" name=\"decision\" value=\"abort\">Abort</button></form>",
        permission = permission_label(request.permission),
        site = optional(request.site_url.as_deref()),
        comment = optional(request.comment.as_deref()),
        return_url = escape(&request.return_url),
        action = escape(&format!("{PATH}{token}")),
    );
    html(StatusCode::OK, "Approve API key", &body)
}

/// `POST` with `decision=approve|abort`: records the decision (what
/// [`Sandbox::approve`] and [`Sandbox::abort`] do) and confirms it.
pub(crate) async fn decide(
    State(sandbox): State<Sandbox>,
    Path(token): Path<String>,
    form: Bytes,
) -> Response {
    let Some(request) = sandbox.keys().requests.get(&token).cloned() else {
        return unknown();
    };
    let decision = form_urlencoded::parse(&form)
        .find(|(name, _)| name == "decision")
        .map(|(_, value)| value.into_owned());
    let (applied, headline, next) = match decision.as_deref() {
        Some("approve") => (
            sandbox.approve(&token),
            "Approved",
            "The app can now collect its key.",
        ),
        Some("abort") => (sandbox.abort(&token), "Aborted", "The app gets no key."),
        _ => {
            let body = "<h1>Choose Approve or Abort</h1><p>The form sent no decision.</p>";
            return html(StatusCode::BAD_REQUEST, "No decision", body);
        }
    };
    if !applied {
        return html(
            StatusCode::CONFLICT,
            "Already decided",
            &decided(request.status),
        );
    }
    let target = match decision.as_deref() {
        Some("abort") => request.cancel_url.as_deref().unwrap_or(&request.return_url),
        _ => &request.return_url,
    };
    let body = format!(
        "<h1>{headline}</h1><p>{next} You can close this window.</p>\
         <p class=\"small\">A real Digistore24 would now send you on to \
         <a href=\"{url}\">{url}</a>.</p>",
        url = escape(target),
    );
    html(StatusCode::OK, headline, &body)
}

/// The page for a token the sandbox does not know.
fn unknown() -> Response {
    let body = "<h1>Request not found</h1>\
                <p>This approval link is unknown or has expired. \
                Start the connection again from the app.</p>";
    html(StatusCode::NOT_FOUND, "Request not found", body)
}

/// What a decided request's page says.
fn decided(status: Status) -> String {
    let what = match status {
        Status::Pending => "is still waiting for a decision",
        Status::Approved => "was approved; the app can collect its key",
        Status::Aborted => "was aborted",
        Status::Used => "was approved and the app has collected its key",
    };
    format!("<h1>Already decided</h1><p>This request {what}. You can close this window.</p>")
}

fn permission_label(permission: Permission) -> &'static str {
    match permission {
        Permission::Writable => "Full access (writable)",
        Permission::Readonly => "Read access (readonly)",
        Permission::Developer => "Developer",
    }
}

/// The escaped text, or a dash for nothing.
fn optional(text: Option<&str>) -> String {
    text.map_or_else(|| "&mdash;".to_owned(), escape)
}

/// Escapes text for HTML content and quoted attributes: the comment and
/// URLs come from whoever called `requestApiKey`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Page styles, inline so the page needs nothing from anywhere else.
const STYLE: &str = "\
body{margin:0;background:#f4f5f7;color:#1f2430;\
font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif}\
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:12px;\
padding:2rem 2.25rem;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
.badge{display:inline-block;font-size:.75rem;letter-spacing:.05em;\
text-transform:uppercase;background:#fff4d6;color:#7a5a00;\
border-radius:4px;padding:.1rem .5rem}\
h1{font-size:1.4rem;margin:.75rem 0 .5rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem;margin:1.5rem 0}\
dt{color:#5b6272}dd{margin:0;word-break:break-word}\
form{display:flex;gap:.75rem;margin-top:1.5rem}\
button{flex:1;font:inherit;font-weight:600;padding:.7rem 1rem;border-radius:8px;\
cursor:pointer;border:1px solid #c9ced8;background:#fff;color:#1f2430}\
button.approve{background:#1a7f37;border-color:#1a7f37;color:#fff}\
button:hover{filter:brightness(.95)}\
.small{font-size:.85rem;color:#5b6272;word-break:break-word}";

/// A whole page around `body` (already HTML), with headers that keep the
/// token out of caches and referrers and forbid anything external.
fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} &middot; Digistore24 sandbox</title><style>{STYLE}</style></head>\
         <body><main><span class=\"badge\">Digistore24 sandbox</span>{body}</main></body></html>",
        title = escape(title),
    );
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    ];
    let mut response = (status, page).into_response();
    for (name, value) in headers {
        set(&mut response, name, value);
    }
    response
}

fn set(response: &mut Response, name: HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}
