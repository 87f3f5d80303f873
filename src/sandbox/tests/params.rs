use serde_json::{Value, json};

use crate::sandbox::params::{BodyKind, ParamsError, parse};

fn form(body: &str) -> Value {
    Value::Object(parse(None, body.as_bytes(), BodyKind::Form).expect("parses"))
}

#[test]
fn bracketed_names_become_nested_objects() {
    let params = form("data[name_intern]=x&data[meta][lang]=de&search[role]=vendor");

    assert_eq!(
        params,
        json!({"data": {"name_intern": "x", "meta": {"lang": "de"}}, "search": {"role": "vendor"}})
    );
}

#[test]
fn empty_brackets_append_to_a_list() {
    assert_eq!(form("a[]=1&a[]=2&a[]=3"), json!({"a": ["1", "2", "3"]}));
}

#[test]
fn numbered_entries_become_a_list_of_objects() {
    let params = form(
        "tracking[0][parcel_service]=dhl&tracking[0][tracking_id]=T1&tracking[1][parcel_service]=ups",
    );

    assert_eq!(
        params,
        json!({"tracking": [{"parcel_service": "dhl", "tracking_id": "T1"}, {"parcel_service": "ups"}]})
    );
}

#[test]
fn keys_that_are_not_0_to_n_stay_an_object_as_in_php() {
    assert_eq!(form("a[5]=x"), json!({"a": {"5": "x"}}));
    assert_eq!(form("a[]=x&a[k]=y"), json!({"a": {"0": "x", "k": "y"}}));
    assert_eq!(form("a[01]=x"), json!({"a": {"01": "x"}}));
}

#[test]
fn appending_continues_after_the_highest_numbered_key() {
    assert_eq!(form("a[3]=x&a[]=y"), json!({"a": {"3": "x", "4": "y"}}));
}

#[test]
fn a_plus_is_a_space_and_an_encoded_plus_is_a_plus() {
    assert_eq!(form("a=1+2&b=1%2B2"), json!({"a": "1 2", "b": "1+2"}));
}

#[test]
fn utf8_text_survives_encoded_and_raw() {
    let params = form("name=J%C3%BCrgen&city=Krak%C3%B3w&raw=Zoë");

    assert_eq!(
        params,
        json!({"name": "Jürgen", "city": "Kraków", "raw": "Zoë"})
    );
}

#[test]
fn encoded_brackets_are_brackets() {
    assert_eq!(form("data%5Bname%5D=x"), json!({"data": {"name": "x"}}));
}

#[test]
fn the_body_overrides_the_query_and_nested_fields_merge() {
    let params = parse(
        Some("a=1&data[x]=q&only=query"),
        b"a=2&data[y]=b",
        BodyKind::Form,
    )
    .expect("parses");

    assert_eq!(
        Value::Object(params),
        json!({"a": "2", "data": {"x": "q", "y": "b"}, "only": "query"})
    );
}

#[test]
fn odd_names_follow_php() {
    assert_eq!(form("a[b=1"), json!({"a_b": "1"}), "unclosed bracket");
    assert_eq!(form("[x]=1&=2"), json!({}), "empty base name is dropped");
    assert_eq!(
        form("a[b]c=1"),
        json!({"a": {"b": "1"}}),
        "trailing text ignored"
    );
    assert_eq!(form("flag"), json!({"flag": ""}), "name without value");
}

#[test]
fn a_later_pair_replaces_what_is_in_its_way() {
    assert_eq!(form("a=1&a[b]=2"), json!({"a": {"b": "2"}}));
    assert_eq!(form("a[b]=2&a=1"), json!({"a": "1"}));
}

#[test]
fn nesting_deeper_than_php_allows_is_refused() {
    let ok = format!("a{}=1", "[x]".repeat(64));
    let too_deep = format!("a{}=1", "[x]".repeat(65));

    assert!(parse(None, ok.as_bytes(), BodyKind::Form).is_ok());
    assert_eq!(
        parse(None, too_deep.as_bytes(), BodyKind::Form),
        Err(ParamsError::TooDeep)
    );
}

#[test]
fn a_json_body_becomes_string_parameters() {
    let body = br#"{"product_id": 12, "force": true, "data": {"note": null, "ids": [1, "b"]}}"#;

    let params = parse(Some("q=1"), body, BodyKind::Json).expect("parses");

    assert_eq!(
        Value::Object(params),
        json!({"q": "1", "product_id": "12", "force": "Y", "data": {"note": "", "ids": ["1", "b"]}})
    );
}

#[test]
fn a_json_body_that_is_not_an_object_is_refused() {
    assert_eq!(
        parse(None, b"[1]", BodyKind::Json),
        Err(ParamsError::BadJson)
    );
    assert_eq!(parse(None, b"{", BodyKind::Json), Err(ParamsError::BadJson));
    assert!(
        parse(None, b"  ", BodyKind::Json).is_ok(),
        "an empty body is no body"
    );
}

#[test]
fn other_bodies_are_not_read_for_parameters() {
    let params = parse(Some("a=1"), b"b=2", BodyKind::Other).expect("parses");

    assert_eq!(Value::Object(params), json!({"a": "1"}));
}

#[test]
fn the_content_type_decides_how_the_body_is_read() {
    let kind = BodyKind::from_content_type;

    assert_eq!(
        kind(Some("application/x-www-form-urlencoded")),
        BodyKind::Form
    );
    assert_eq!(
        kind(Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8")),
        BodyKind::Form
    );
    assert_eq!(kind(Some("application/json")), BodyKind::Json);
    assert_eq!(kind(Some("text/plain")), BodyKind::Other);
    assert_eq!(kind(None), BodyKind::Other);
}

#[test]
fn invalid_utf8_never_panics() {
    let params = parse(Some("a=%FF%FE"), b"b=\xff\xfe&c[\xff]=1", BodyKind::Form);

    assert!(params.is_ok());
}
