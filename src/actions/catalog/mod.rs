//! The table: one entry per Digistore24 function (the 122 operations of the official
//! spec plus `getTestpayKey`), split by domain.
//!
//! Parameter names, types, required flags and enums are taken from the spec, with the
//! corrections of API-FACTS §9:
//! - flags the spec types as boolean (or as a `Y`/`N` string) are `Flag`s;
//! - the JSON request bodies of `createVoucher`, `createShippingCostPolicy` and the
//!   `update*` functions are nested under `data` (`data[code]=…`), as the reference pages
//!   write them (`createVoucher( data )`, `updateProduct( product_id, data )`, …) and as
//!   production clients send them; `createUpgrade`, `createUpgradePurchase` and `ipnSetup`
//!   take their fields flat, as their reference pages do;
//! - `search` parameters are objects sent in bracket notation (`search[role]=vendor`);
//! - comma-separated id lists (`product_ids`, `purchase_id` of `getPurchase`, …) are `List`s;
//! - the product `data` objects, order-form `data` and shipping-policy `data` are
//!   `OpenObject`s because the spec's field lists are known to be incomplete;
//! - `requestApiKey.permissions` accepts `readonly`, `writable` and the spec's `read-only`;
//! - garbled enums (`reportFraud.who`, `createOrderform.data.flex_elements_order`) are
//!   lists over their distinct values.
//!
//! Effects follow API-FACTS §8: "W money" is `Money`; "W billing" (`startRebilling`,
//! `stopRebilling`) is `Write` since it changes future billing but moves no money now;
//! `getDelivery` stays `Read` (its `set_in_progress` only marks the delivery, repeatably);
//! `retrieveApiKey` stays `Read` as in §8 (a repeat cannot lose more than the lost reply).

mod account;
mod checkout;
mod fulfilment;
mod orders;
mod people;
mod products;

/// What the table files need in scope.
mod prelude {
    pub(super) use super::{opt, req};
    pub(super) use crate::actions::Effect::*;
    pub(super) use crate::actions::ParamType::*;
    pub(super) use crate::actions::{ActionDef, Paging, Param, ParamType};
}

use super::{ActionDef, Effect, Param, ParamType};

/// A required parameter.
const fn req(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
        enum_values: &[],
        description,
    }
}

/// An optional parameter.
const fn opt(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param {
        required: false,
        ..req(name, ty, description)
    }
}

impl Param {
    /// Restricts the parameter to these wire values.
    const fn one_of(self, values: &'static [&'static str]) -> Param {
        Param {
            enum_values: values,
            ..self
        }
    }
}

/// Number of entries: 122 spec operations + `getTestpayKey`.
const LEN: usize = 123;

const PLACEHOLDER: ActionDef = ActionDef {
    key: "",
    function: "",
    summary: "",
    tag: "",
    effect: Effect::Write,
    paging: None,
    params: &[],
};

/// Joins the per-domain slices at compile time; a wrong `LEN` fails the build.
const fn concat(parts: &[&[ActionDef]]) -> [ActionDef; LEN] {
    let mut out = [PLACEHOLDER; LEN];
    let (mut n, mut i) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            assert!(n < LEN, "catalog has more entries than LEN");
            out[n] = parts[i][j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(n == LEN, "catalog has fewer entries than LEN");
    out
}

static ALL: [ActionDef; LEN] = concat(&[
    products::ACTIONS,
    orders::ACTIONS,
    people::ACTIONS,
    checkout::ACTIONS,
    fulfilment::ACTIONS,
    account::ACTIONS,
]);

/// Every action, grouped by domain.
pub static CATALOG: &[ActionDef] = &ALL;
