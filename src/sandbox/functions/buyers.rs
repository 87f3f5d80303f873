//! `listBuyers`, `getBuyer`, `updateBuyer`.

use serde_json::{Map, Value, json};

use super::{Call, apply_fields};
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::paging::Page;
use crate::sandbox::store::{Buyer, Store, same_id, text, yes_no};

/// The spec's default page size for `listBuyers`.
const DEFAULT_PAGE_SIZE: usize = 100;

/// Contact fields `updateBuyer` accepts (spec). `phone_number` is stored as
/// `phone_no`, the name the read functions use.
#[rustfmt::skip]
const UPDATABLE: &[&str] = &[
    "email", "first_name", "last_name", "salutation", "title", "company", "street_name",
    "street_number", "phone_number", "city", "zipcode", "state", "country",
];

/// `listBuyers`: `data.page_no/page_size/item_count/page_count/items`.
pub(super) fn list(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let page = Page::from_call(call, DEFAULT_PAGE_SIZE)?;
    let mut data = Map::new();
    page.describe(&mut data, store.buyers.len());
    let items = page.slice(&store.buyers).iter().map(render).collect();
    data.insert("items".into(), Value::Array(items));
    Ok(Value::Object(data))
}

/// `getBuyer`: `data.buyer`, by numeric `buyer_id` or by e-mail address.
pub(super) fn get(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("buyer_id")?;
    let buyer = find(store, id).ok_or_else(|| ApiError::not_found("buyer", id))?;
    Ok(json!({ "buyer": render(buyer) }))
}

/// `updateBuyer`: `buyer_id` plus contact fields, flat or as `data[...]`;
/// answers `data.is_modified`.
pub(super) fn update(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("buyer_id")?;
    let mut edits = call.edits(UPDATABLE)?;
    if let Some(email) = edits.get("email").and_then(Value::as_str)
        && !email.contains('@')
    {
        return Err(ApiError::invalid("email", "not an e-mail address."));
    }
    if let Some(salutation) = edits.get("salutation").and_then(Value::as_str)
        && !matches!(salutation, "" | "M" | "F")
    {
        return Err(ApiError::invalid("salutation", "expected M, F or empty."));
    }
    let position = store
        .buyers
        .iter()
        .position(|b| same_id(b.id, id))
        .ok_or_else(|| ApiError::not_found("buyer", id))?;
    let buyer = &mut store.buyers[position];
    if let Some(phone) = edits.remove("phone_number") {
        edits.insert("phone_no".into(), phone);
    }
    let allowed: Vec<&str> = UPDATABLE.iter().copied().chain(["phone_no"]).collect();
    let modified = apply_fields(&mut buyer.fields, &edits, &allowed, "data")?;
    let street = format!(
        "{} {}",
        text(&buyer.fields, "street_name"),
        text(&buyer.fields, "street_number")
    );
    buyer
        .fields
        .insert("street".into(), street.trim().to_owned().into());
    Ok(json!({ "is_modified": yes_no(modified) }))
}

/// A buyer by id, or by e-mail address (S1 claims the real API takes both).
fn find<'a>(store: &'a Store, id: &str) -> Option<&'a Buyer> {
    store
        .buyers
        .iter()
        .find(|b| same_id(b.id, id) || text(&b.fields, "email").eq_ignore_ascii_case(id))
}

/// The full buyer record.
fn render(buyer: &Buyer) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), buyer.id.to_string().into());
    out.insert("created_at".into(), clock::format(buyer.created_at).into());
    out.extend(buyer.fields.clone());
    Value::Object(out)
}

/// The buyer as embedded in purchases (`full`) or transactions (id, e-mail
/// and name only); `null` fields if the buyer is unknown.
pub(super) fn summary(store: &Store, buyer_id: u64, full: bool) -> Value {
    match store.buyer(buyer_id) {
        Some(buyer) if full => render(buyer),
        Some(buyer) => json!({
            "id": buyer.id.to_string(),
            "email": text(&buyer.fields, "email"),
            "first_name": text(&buyer.fields, "first_name"),
            "last_name": text(&buyer.fields, "last_name"),
        }),
        None => Value::Null,
    }
}
