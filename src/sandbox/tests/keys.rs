//! Key control for tests: `add_key`, `revoke_key`, `approve`, `abort`,
//! `pending_tokens`, and how minted keys are numbered.

use http::StatusCode;

use super::connect::{minted_key, request_key, retrieve};
use super::{call_as, sandbox};
use crate::sandbox::{DEVELOPER_KEY, Permission, READONLY_KEY, WRITABLE_KEY};

#[tokio::test]
async fn an_added_key_works_with_the_permission_it_was_given() {
    let sandbox = sandbox();
    sandbox.add_key("4242-AddedByATest", Permission::Readonly);

    let info = call_as(&sandbox, "4242-AddedByATest", "getUserInfo", "").await;
    let write = call_as(
        &sandbox,
        "4242-AddedByATest",
        "createProduct",
        "data[name]=x",
    )
    .await;

    assert_eq!(info.data()["api_key_id"], "4242");
    assert_eq!(info.data()["permissions"], "readonly");
    assert_eq!(write.code(), 5);
}

#[tokio::test]
async fn an_added_developer_key_may_run_the_connect_flow_only() {
    let sandbox = sandbox();
    sandbox.add_key("77-MyOwnDeveloperKey", Permission::Developer);

    let requested = call_as(
        &sandbox,
        "77-MyOwnDeveloperKey",
        "requestApiKey",
        "permissions=writable&return_url=https%3A%2F%2Fa.example%2F",
    )
    .await;
    let ping = call_as(&sandbox, "77-MyOwnDeveloperKey", "ping", "").await;

    assert!(!requested.data()["request_token"].is_null());
    assert_eq!(ping.code(), 5);
}

#[tokio::test]
async fn add_key_changes_the_permission_of_a_known_key() {
    let sandbox = sandbox();
    sandbox.add_key(READONLY_KEY, Permission::Writable);

    let info = call_as(&sandbox, READONLY_KEY, "getUserInfo", "").await;

    assert_eq!(info.data()["permissions"], "writable");
    assert_eq!(info.data()["api_key_id"], "1001");
}

#[tokio::test]
async fn a_revoked_built_in_key_gets_code_2_from_then_on() {
    let sandbox = sandbox();
    let other = super::sandbox();
    call_as(&sandbox, WRITABLE_KEY, "ping", "").await.data();

    sandbox.revoke_key(WRITABLE_KEY);

    let reply = call_as(&sandbox, WRITABLE_KEY, "ping", "").await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, 2));
    call_as(&sandbox, READONLY_KEY, "ping", "").await.data();
    call_as(&other, WRITABLE_KEY, "ping", "").await.data();
}

#[tokio::test]
async fn a_revoked_developer_key_can_no_longer_retrieve() {
    let sandbox = sandbox();
    let (_, token) = request_key(&sandbox, "writable").await;
    sandbox.approve(&token);
    sandbox.revoke_key(DEVELOPER_KEY);

    let reply = call_as(
        &sandbox,
        DEVELOPER_KEY,
        "retrieveApiKey",
        &format!("token={token}"),
    )
    .await;

    assert_eq!(reply.code(), 2);
}

#[tokio::test]
async fn add_key_brings_a_revoked_key_back() {
    let sandbox = sandbox();
    sandbox.revoke_key(WRITABLE_KEY);

    sandbox.add_key(WRITABLE_KEY, Permission::Writable);

    call_as(&sandbox, WRITABLE_KEY, "ping", "").await.data();
}

#[tokio::test]
async fn an_added_key_counts_as_interactive_and_may_unregister() {
    let sandbox = sandbox();
    sandbox.add_key("4242-AddedByATest", Permission::Writable);

    let reply = call_as(&sandbox, "4242-AddedByATest", "unregister", "").await;

    assert_eq!(reply.data()["modified"], "Y");
    assert_eq!(
        call_as(&sandbox, "4242-AddedByATest", "ping", "")
            .await
            .code(),
        2
    );
}

#[tokio::test]
async fn a_built_in_key_added_back_still_refuses_unregister() {
    let sandbox = sandbox();
    sandbox.revoke_key(WRITABLE_KEY);
    sandbox.add_key(WRITABLE_KEY, Permission::Writable);

    let reply = call_as(&sandbox, WRITABLE_KEY, "unregister", "").await;

    assert_eq!(reply.code(), 5);
}

#[tokio::test]
async fn a_revoked_minted_key_gets_code_2() {
    let sandbox = sandbox();
    let key = minted_key(&sandbox, "writable").await;

    sandbox.revoke_key(&key);

    assert_eq!(call_as(&sandbox, &key, "ping", "").await.code(), 2);
}

#[tokio::test]
async fn minted_keys_count_up_from_2000_past_ids_in_use() {
    let sandbox = sandbox();
    let first = minted_key(&sandbox, "writable").await;
    sandbox.add_key("2001-TakenByATest", Permission::Writable);

    let second = minted_key(&sandbox, "writable").await;

    assert!(first.starts_with("2000-"), "{first}");
    assert!(second.starts_with("2002-"), "{second}");
}

#[tokio::test]
async fn approve_and_abort_tell_whether_they_decided_a_pending_request() {
    let sandbox = sandbox();
    let (_, approved) = request_key(&sandbox, "writable").await;
    let (_, aborted) = request_key(&sandbox, "writable").await;

    assert!(sandbox.approve(&approved));
    assert!(sandbox.abort(&aborted));
    assert!(!sandbox.approve(&aborted), "a decision is final");
    assert!(!sandbox.abort(&approved), "a decision is final");
    assert!(!sandbox.approve("NoSuchToken"));
    assert!(!sandbox.abort("NoSuchToken"));
    assert_eq!(
        retrieve(&sandbox, &aborted).await["request_status"],
        "aborted"
    );
}

#[tokio::test]
async fn pending_tokens_lists_undecided_requests_oldest_first() {
    let sandbox = sandbox();
    let (_, first) = request_key(&sandbox, "writable").await;
    let (_, second) = request_key(&sandbox, "readonly").await;
    let (_, third) = request_key(&sandbox, "writable").await;

    sandbox.approve(&second);

    assert_eq!(sandbox.pending_tokens(), [first, third]);
}

#[test]
fn permissions_are_spelled_as_digistore24_spells_them() {
    assert_eq!(Permission::Readonly.as_str(), "readonly");
    assert_eq!(Permission::Writable.as_str(), "writable");
    assert_eq!(Permission::Developer.as_str(), "developer");
}
