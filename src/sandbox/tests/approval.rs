//! The approval page a vendor's browser opens: what it shows, what its
//! buttons do, and what it says for unknown or decided requests.

use http::{StatusCode, header};

use super::connect::{decide, get, path_of, request_key, retrieve};
use super::{call_as, sandbox, send_raw};
use crate::sandbox::DEVELOPER_KEY;

#[tokio::test]
async fn the_page_shows_the_request_and_two_buttons_posting_to_itself() {
    let sandbox = sandbox();
    let (url, _) = request_key(&sandbox, "readonly").await;
    let path = path_of(&url);

    let page = send_raw(&sandbox, get(&path)).await;

    let text = page.text();
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(text.starts_with("<!DOCTYPE html>"));
    assert!(text.contains("Read access (readonly)"), "{text}");
    assert!(text.contains("Connect Example App"), "{text}");
    assert!(text.contains("https://app.example.com"), "{text}");
    assert!(text.contains(&format!("<form method=\"post\" action=\"{path}\">")));
    assert!(text.contains("name=\"decision\" value=\"approve\">Approve</button>"));
    assert!(text.contains("name=\"decision\" value=\"abort\">Abort</button>"));
}

#[tokio::test]
async fn the_page_loads_nothing_from_elsewhere() {
    let sandbox = sandbox();
    let (url, _) = request_key(&sandbox, "writable").await;

    let page = send_raw(&sandbox, get(&path_of(&url))).await;

    let text = page.text();
    assert!(!text.contains("<script"), "{text}");
    assert!(!text.contains("<link"), "{text}");
    assert!(!text.contains("src="), "{text}");
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap_or_default();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn the_page_escapes_what_the_developer_sent() {
    let sandbox = sandbox();
    let body = "permissions=writable&return_url=https%3A%2F%2Fa.example%2F\
                &comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E+%26+more";
    let reply = call_as(&sandbox, DEVELOPER_KEY, "requestApiKey", body).await;
    let url = reply.data()["request_url"].as_str().unwrap_or_default();

    let page = send_raw(&sandbox, get(&path_of(url))).await;

    let text = page.text();
    assert!(!text.contains("<script>"), "{text}");
    assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
}

#[tokio::test]
async fn an_unknown_token_gets_a_404_page() {
    let sandbox = sandbox();

    let shown = send_raw(&sandbox, get("/sandbox/approve/NoSuchToken")).await;
    let posted = send_raw(&sandbox, decide("/sandbox/approve/NoSuchToken", "approve")).await;

    for page in [shown, posted] {
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert_eq!(
            page.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(page.text().contains("Request not found"));
    }
}

#[tokio::test]
async fn approving_on_the_page_completes_the_request() {
    let sandbox = sandbox();
    let (url, token) = request_key(&sandbox, "writable").await;

    let page = send_raw(&sandbox, decide(&path_of(&url), "approve")).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Approved"));
    assert!(page.text().contains("You can close this window."));
    assert!(page.text().contains("https://app.example.com/done"));
    assert!(sandbox.pending_tokens().is_empty());
    assert_eq!(
        retrieve(&sandbox, &token).await["request_status"],
        "completed"
    );
}

#[tokio::test]
async fn a_post_without_a_decision_changes_nothing() {
    let sandbox = sandbox();
    let (url, token) = request_key(&sandbox, "writable").await;

    let page = send_raw(&sandbox, decide(&path_of(&url), "maybe")).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.pending_tokens(), [token]);
}

#[tokio::test]
async fn a_decision_is_final() {
    let sandbox = sandbox();
    let (url, token) = request_key(&sandbox, "writable").await;
    let path = path_of(&url);
    send_raw(&sandbox, decide(&path, "abort")).await;

    let second = send_raw(&sandbox, decide(&path, "approve")).await;
    let shown = send_raw(&sandbox, get(&path)).await;

    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(second.text().contains("was aborted"), "{}", second.text());
    assert!(!shown.text().contains("</button>"), "{}", shown.text());
    assert!(shown.text().contains("was aborted"));
    assert_eq!(
        retrieve(&sandbox, &token).await["request_status"],
        "aborted"
    );
}

#[tokio::test]
async fn page_visits_are_not_recorded_as_api_calls() {
    let sandbox = sandbox();
    let (url, _) = request_key(&sandbox, "writable").await;

    send_raw(&sandbox, get(&path_of(&url))).await;
    send_raw(&sandbox, decide(&path_of(&url), "approve")).await;

    let functions: Vec<String> = sandbox.recorded().into_iter().map(|r| r.function).collect();
    assert_eq!(functions, ["requestApiKey"]);
}
