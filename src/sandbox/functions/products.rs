//! `listProducts`, `getProduct`, `createProduct`, `updateProduct`,
//! `deleteProduct`.

use serde_json::{Map, Value, json};

use super::{Call, apply_fields, parse_flag, secure_url};
use crate::sandbox::envelope::ApiError;
use crate::sandbox::store::{Fields, Product, Store, same_id, text, yes_no};
use crate::sandbox::{clock, data};

/// `data[...]` keys the product functions accept: the spec's lists for
/// create and update (including its `affiliate_commision` typo) plus the
/// fields S2/S5 use in production (API-FACTS §9.6).
#[rustfmt::skip]
const FIELDS: &[&str] = &[
    "name", "name_intern", "name_de", "name_en", "name_es", "description", "description_de",
    "description_en", "description_es", "salespage_url", "upsell_salespage_url", "thankyou_url",
    "image_url", "product_type_id", "product_group_id", "currency", "language",
    "approval_status", "affiliate_commission", "affiliate_commision", "buyer_type",
    "is_address_input_mandatory", "add_order_data_to_thankyou_page_url", "default_quantity",
    "max_quantity", "note", "tag", "is_active",
];

#[rustfmt::skip]
const URL_FIELDS: &[&str] = &[
    "salespage_url", "upsell_salespage_url", "thankyou_url", "image_url",
];
const FLAG_FIELDS: &[&str] = &[
    "is_active",
    "is_address_input_mandatory",
    "add_order_data_to_thankyou_page_url",
];

/// Digistore24 keeps 47 characters of a product note (S5, measured).
const NOTE_LIMIT: usize = 47;

/// `listProducts`: `data.products`, sorted by `name` (default) or `group`.
pub(super) fn list(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let by_group = match call.optional("sort_by")?.map(str::trim) {
        None | Some("" | "name") => false,
        Some("group") => true,
        Some(_) => return Err(ApiError::invalid("sort_by", "expected name or group.")),
    };
    let mut products: Vec<&Product> = store.products.iter().collect();
    products.sort_by_key(|p| {
        let group = if by_group {
            group_name(text(&p.fields, "product_group_id"))
        } else {
            ""
        };
        (group, display_name(p).to_lowercase(), p.id)
    });
    Ok(json!({ "products": products.into_iter().map(render).collect::<Vec<_>>() }))
}

/// `getProduct`: `data.product`.
pub(super) fn get(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("product_id")?;
    let product = store
        .product(id)
        .ok_or_else(|| ApiError::not_found("product", id))?;
    Ok(json!({ "product": render(product) }))
}

/// `createProduct`: needs `data[...]` with a name; answers `data.product_id`.
pub(super) fn create(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let edits = checked_edits(
        call.object("data")?
            .ok_or_else(|| ApiError::missing("data"))?,
    )?;
    let named = ["name", "name_de", "name_en", "name_intern"]
        .iter()
        .any(|n| !text(&edits, n).trim().is_empty());
    if !named {
        return Err(ApiError::missing("data[name]"));
    }
    let mut fields = defaults();
    apply_fields(&mut fields, &edits, FIELDS, "data")?;
    let currency = text(&fields, "currency").to_owned();
    fields.insert("affiliate_commission_cur".into(), currency.into());
    let id = store.next_product_id;
    store.next_product_id += 1;
    store.products.push(Product {
        id,
        fields,
        created_at: call.now,
        modified_at: call.now,
    });
    Ok(json!({ "product_id": id.to_string() }))
}

/// `updateProduct`: `product_id` plus `data[...]` (flat fields are taken
/// too, as the spec models them); answers `data.modified` `Y`/`N`. The
/// spec requires no field, so nothing to change is `modified: N`.
pub(super) fn update(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("product_id")?;
    let edits = call.edits(FIELDS)?;
    let edits = checked_edits(&edits)?;
    let product = store
        .products
        .iter_mut()
        .find(|p| same_id(p.id, id))
        .ok_or_else(|| ApiError::not_found("product", id))?;
    let modified = apply_fields(&mut product.fields, &edits, FIELDS, "data")?;
    if modified {
        product.modified_at = call.now;
    }
    Ok(json!({ "modified": yes_no(modified) }))
}

/// `deleteProduct`: only products that never sold, as on Digistore24 (S5:
/// deactivate the others with `data[is_active]=N`). Answers empty `data`.
pub(super) fn delete(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.required("product_id")?;
    let product = store
        .product(id)
        .ok_or_else(|| ApiError::not_found("product", id))?;
    let product_id = product.id;
    if store.purchases.iter().any(|p| p.product_id == product_id) {
        return Err(ApiError::refused(format!(
            "Product {product_id} has orders and cannot be deleted. Deactivate it with data[is_active]=N."
        )));
    }
    store.products.retain(|p| p.id != product_id);
    Ok(json!({}))
}

/// The product as `getProduct`/`listProducts` show it.
fn render(product: &Product) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), product.id.to_string().into());
    out.extend(product.fields.clone());
    out.insert("name".into(), display_name(product).into());
    let group_id = text(&product.fields, "product_group_id");
    out.insert("product_group_name".into(), group_name(group_id).into());
    if group_id.is_empty() {
        // No group is `null`, whatever `data[product_group_id]=` left.
        out.insert("product_group_id".into(), Value::Null);
    }
    out.insert(
        "created_at".into(),
        clock::format(product.created_at).into(),
    );
    out.insert(
        "modified_at".into(),
        clock::format(product.modified_at).into(),
    );
    Value::Object(out)
}

/// The name a product is listed under: `name`, else a language name, else
/// the internal name.
fn display_name(product: &Product) -> &str {
    ["name", "name_en", "name_de", "name_es", "name_intern"]
        .iter()
        .map(|n| text(&product.fields, n))
        .find(|n| !n.is_empty())
        .unwrap_or("")
}

fn group_name(group_id: &str) -> &'static str {
    match group_id {
        "1" => "Books",
        "2" => "Courses",
        _ => "",
    }
}

/// What a new product has before its `data[...]` is applied: the whole
/// record (see `data::new_product_fields`); the fixed commission is in the
/// product's currency.
fn defaults() -> Fields {
    data::new_product_fields()
}

/// Applies Digistore24's value rules: no `amount`, https URLs only, `Y`/`N`
/// flags, notes cut at 47 characters.
fn checked_edits(edits: &Map<String, Value>) -> Result<Fields, ApiError> {
    let mut out = Fields::new();
    for (name, value) in edits {
        if name == "amount" {
            return Err(ApiError::refused(
                "data[amount] is deprecated - create a payment plan instead.",
            ));
        }
        let mut value = value.clone();
        if let Value::String(text) = &mut value {
            if URL_FIELDS.contains(&name.as_str()) && !text.is_empty() && !secure_url(text) {
                return Err(ApiError::refused(
                    "Please only use secure URLs with https://",
                ));
            }
            if FLAG_FIELDS.contains(&name.as_str()) {
                let flag = parse_flag(&format!("data[{name}]"), text)?;
                *text = yes_no(flag).to_owned();
            }
            if name == "note" {
                *text = text.chars().take(NOTE_LIMIT).collect();
            }
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}
