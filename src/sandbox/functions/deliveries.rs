//! `listDeliveries` and `updateDelivery` (shipping of physical products).

use serde_json::{Map, Value, json};

use super::{Call, parse_flag, search_field};
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::store::{Delivery, Store, Tracking, same_id, text, yes_no};

/// Delivery types (P12).
#[rustfmt::skip]
const TYPES: &[&str] = &[
    "request", "in_progress", "delivery", "partial_delivery", "return", "cancel",
];

/// `data[...]` keys of `updateDelivery` (spec).
#[rustfmt::skip]
const DATA_FIELDS: &[&str] = &[
    "type", "is_shipped", "quantity_delivered", "add_quantity_delivered",
    "is_shipped_by_reseller_from",
];

/// `listDeliveries`: `data.delivery`. Filters: `search[purchase_id]`,
/// `search[type]` (both comma-separated lists), `search[from]`/`search[to]`
/// on the order date.
pub(super) fn list(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let search = call.object("search")?;
    let in_list = |name: &str, actual: &str| {
        search_field(search, name).is_none_or(|wanted| {
            wanted
                .split(',')
                .any(|w| w.trim().eq_ignore_ascii_case(actual))
        })
    };
    let date = |name: &str, end: bool| match search_field(search, name) {
        None => Ok(None),
        Some(text) => clock::bound(text, call.now, end)
            .map_err(|why| ApiError::invalid(&format!("search[{name}]"), why)),
    };
    let (from, to) = (date("from", false)?, date("to", true)?);
    let items: Vec<Value> = store
        .deliveries
        .iter()
        .filter(|d| in_list("purchase_id", &d.purchase_id) && in_list("type", &d.kind))
        .filter(|d| {
            let ordered = store.purchase(&d.purchase_id).map_or(0, |p| p.created_at);
            from.is_none_or(|f| ordered >= f) && to.is_none_or(|t| ordered <= t)
        })
        .map(|d| render(store, d))
        .collect();
    Ok(json!({ "delivery": items }))
}

/// `updateDelivery`: `delivery_id`, `data[type|is_shipped|
/// quantity_delivered|add_quantity_delivered]` and
/// `tracking[n][parcel_service|tracking_id|expect_delivery_at|quantity|
/// operation]`; answers `data.is_modified`.
pub(super) fn update(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("delivery_id")?;
    // Checked for a valid flag only: the sandbox sends no e-mail.
    call.flag("notify_via_email")?;
    let data = call.object("data")?.cloned().unwrap_or_default();
    let tracking = tracking_entries(call.params.get("tracking"))?;
    let now = call.now;
    let delivery = store
        .deliveries
        .iter_mut()
        .find(|d| same_id(d.id, id))
        .ok_or_else(|| ApiError::not_found("delivery", id))?;
    let mut changed = delivery.clone();
    apply_data(&mut changed, &data)?;
    for entry in &tracking {
        apply_tracking(&mut changed, entry)?;
    }
    let modified = changed != *delivery;
    if modified {
        if changed.kind != "request" && changed.processed_at.is_none() {
            changed.processed_at = Some(now);
        }
        *delivery = changed;
    }
    Ok(json!({ "is_modified": yes_no(modified) }))
}

fn apply_data(delivery: &mut Delivery, data: &Map<String, Value>) -> Result<(), ApiError> {
    let field = |name: &str| -> Result<Option<&str>, ApiError> {
        match data.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.trim())),
            Some(_) => Err(ApiError::invalid(
                &format!("data[{name}]"),
                "expected a single value.",
            )),
        }
    };
    if let Some(unknown) = data.keys().find(|k| !DATA_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::refused(format!(
            "Invalid array key in parameter 'data' (given: {unknown})."
        )));
    }
    if let Some(kind) = field("type")? {
        if !TYPES.contains(&kind) {
            return Err(ApiError::invalid(
                "data[type]",
                &format!("expected one of {}.", TYPES.join(", ")),
            ));
        }
        delivery.kind = kind.to_owned();
    }
    if let Some(n) = field("quantity_delivered")? {
        delivery.quantity_delivered = count("data[quantity_delivered]", n)?;
    }
    if let Some(n) = field("add_quantity_delivered")? {
        let added = count("data[add_quantity_delivered]", n)?;
        delivery.quantity_delivered = delivery.quantity_delivered.saturating_add(added);
    }
    if let Some(flag) = field("is_shipped")?
        && parse_flag("data[is_shipped]", flag)?
    {
        delivery.quantity_delivered = delivery.quantity_delivered.max(delivery.quantity_total);
        if delivery.kind == "request" || delivery.kind == "in_progress" {
            delivery.kind = "delivery".to_owned();
        }
    }
    Ok(())
}

/// The `tracking[...]` entries, whether they arrived as a list or as an
/// object with non-sequential keys.
fn tracking_entries(value: Option<&Value>) -> Result<Vec<Map<String, Value>>, ApiError> {
    let entries: Vec<&Value> = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(map)) => map.values().collect(),
        Some(_) => {
            return Err(ApiError::invalid(
                "tracking",
                "expected tracking[0][tracking_id]=… entries.",
            ));
        }
    };
    entries
        .into_iter()
        .map(|entry| match entry {
            Value::Object(map) if map.values().all(Value::is_string) => Ok(map.clone()),
            _ => Err(ApiError::invalid(
                "tracking",
                "each entry needs fields like tracking[0][parcel_service].",
            )),
        })
        .collect()
}

fn apply_tracking(delivery: &mut Delivery, entry: &Map<String, Value>) -> Result<(), ApiError> {
    let tracking_id = text(entry, "tracking_id").trim();
    if tracking_id.is_empty() {
        return Err(ApiError::missing("tracking[n][tracking_id]"));
    }
    let existing = delivery
        .tracking
        .iter()
        .position(|t| t.tracking_id == tracking_id);
    match text(entry, "operation").trim() {
        "delete" => {
            if let Some(index) = existing {
                delivery.tracking.remove(index);
            }
            return Ok(());
        }
        "" | "create_or_update" => {}
        _ => {
            return Err(ApiError::invalid(
                "tracking[n][operation]",
                "expected create_or_update or delete.",
            ));
        }
    }
    let quantity = match text(entry, "quantity").trim() {
        "" => 1,
        n => count("tracking[n][quantity]", n)?,
    };
    let parcel_service = text(entry, "parcel_service").trim();
    let record = Tracking {
        parcel_service: parcel_service.to_owned(),
        tracking_id: tracking_id.to_owned(),
        expect_delivery_at: text(entry, "expect_delivery_at").trim().to_owned(),
        quantity,
    };
    match existing {
        Some(index) => delivery.tracking[index] = record,
        None if parcel_service.is_empty() => {
            return Err(ApiError::missing("tracking[n][parcel_service]"));
        }
        None => delivery.tracking.push(record),
    }
    Ok(())
}

fn count(name: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(name, "expected a whole number."))
}

fn render(store: &Store, d: &Delivery) -> Value {
    let purchase = store.purchase(&d.purchase_id);
    let buyer = purchase.and_then(|p| store.buyer(p.buyer_id));
    let address = buyer.map(|b| {
        let f = |name: &str| text(&b.fields, name);
        json!({
            "salutation": f("salutation"), "title": f("title"), "company": f("company"),
            "first_name": f("first_name"), "last_name": f("last_name"),
            "street": f("street_name"), "street_number": f("street_number"), "street2": "",
            "zipcode": f("zipcode"), "city": f("city"), "state": f("state"),
            "country": f("country"), "email": f("email"), "phone_no": f("phone_no"),
        })
    });
    let tracking: Vec<Value> = d
        .tracking
        .iter()
        .map(|t| {
            json!({
                "delivery_id": d.id.to_string(), "parcel_service_type": t.parcel_service,
                "service_label": t.parcel_service.to_uppercase(), "tracking_id": t.tracking_id,
                "tracking_url": format!("https://sandbox.invalid/track/{}", t.tracking_id),
                "quantity": t.quantity.to_string(), "expect_delivery_at": t.expect_delivery_at,
            })
        })
        .collect();
    json!({
        "id": d.id.to_string(), "purchase_id": d.purchase_id,
        "purchase_created_at": purchase.map(|p| clock::format(p.created_at)),
        "type": d.kind, "delivery_type": "shipping",
        "product_id": purchase.map(|p| p.product_id.to_string()),
        "product_name": purchase.map(|p| p.product_name.clone()),
        "product_type_name": "Physical product",
        "quantity_total": d.quantity_total.to_string(),
        "quantity_delivered": d.quantity_delivered.to_string(),
        "processed_at": d.processed_at.map(clock::format),
        "is_test_order": "N",
        "buyer_address_id": buyer.map(|b| text(&b.fields, "address_id").to_owned()),
        "delivery_address": address,
        "tracking": tracking,
    })
}
