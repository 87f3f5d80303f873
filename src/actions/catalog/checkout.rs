//! What shapes a sale: buy links, order forms, vouchers, shipping costs, upgrades, test payments.

use super::prelude::*;

pub(super) const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "create-buy-url",
        function: "createBuyUrl",
        summary: "Make a personalised order-form link with preset buyer data, prices, tracking and expiry.",
        tag: "Buy URLs",
        effect: Write,
        paging: None,
        params: &[
            req("product_id", String, "Product sold by the link."),
            opt(
                "buyer",
                Object(CREATE_BUY_URL_BUYER),
                "Buyer data to prefill.",
            ),
            opt(
                "payment_plan",
                Object(CREATE_BUY_URL_PAYMENT_PLAN),
                "Price and billing rhythm for this link.",
            ),
            opt(
                "tracking",
                Object(CREATE_BUY_URL_TRACKING),
                "Tracking data for orders from this link.",
            ),
            opt(
                "valid_until",
                String,
                "How long the link stays valid, or 'forever'.",
            ),
            opt(
                "urls",
                Object(CREATE_BUY_URL_URLS),
                "Custom URLs for this link.",
            ),
            opt(
                "placeholders",
                Map,
                "Values for placeholders in the product title and description.",
            ),
            opt(
                "settings",
                Object(CREATE_BUY_URL_SETTINGS),
                "Order form settings for this link.",
            ),
            opt(
                "addons",
                Array(&BUY_URL_ADDON),
                "Add-on products offered with the main product.",
            ),
        ],
    },
    ActionDef {
        key: "create-order-form",
        function: "createOrderform",
        summary: "Create a new order form design.",
        tag: "Order Forms",
        effect: Write,
        paging: None,
        params: &[req(
            "data",
            OpenObject(CREATE_ORDER_FORM_DATA),
            "Order form properties. Further fields are passed through.",
        )],
    },
    ActionDef {
        key: "create-shipping-cost-policy",
        function: "createShippingCostPolicy",
        summary: "Create a shipping cost policy (fees by product, country, currency and quantity).",
        tag: "Shipping",
        effect: Write,
        paging: None,
        params: &[opt(
            "data",
            OpenObject(SHIPPING_COST_POLICY_DATA),
            "Policy properties. Order-form labels go in label_<language> fields (e.g. label_en), passed through.",
        )],
    },
    ActionDef {
        key: "create-upgrade",
        function: "createUpgrade",
        summary: "Define an upgrade, downgrade or member offer that sells one product to owners of others.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[
            req("name", String, "Name of the upgrade."),
            req("to_product_id", Integer, "The product sold by the upgrade."),
            opt(
                "upgrade_from",
                List,
                "Products whose owners may buy the target as an upgrade (effective at once).",
            ),
            opt(
                "downgrade_from",
                List,
                "Products whose owners may buy the target as a downgrade (effective next billing period).",
            ),
            opt(
                "special_offer_for",
                List,
                "Products whose owners get the target as a member offer.",
            ),
            opt(
                "fallback_product_id",
                Integer,
                "Product offered when the upgrade is not possible.",
            ),
            opt("is_active", Flag, "Y (default): can be bought."),
            opt(
                "buyer_readonly_keys",
                String,
                "Which buyer data the buyer may not change: none, email, email_and_name or all.",
            )
            .one_of(&["none", "email", "email_and_name", "all"]),
        ],
    },
    ActionDef {
        key: "create-upgrade-purchase",
        function: "createUpgradePurchase",
        summary: "Upgrade an existing order to another product without the buyer having to check out.",
        tag: "Products",
        effect: Money,
        paging: None,
        params: &[
            req(
                "purchase_ids",
                List,
                "Order ids; one that fits is upgraded.",
            ),
            req(
                "upgrade_id",
                String,
                "Upgrade to apply: numeric id or id-authkey.",
            ),
            opt(
                "payment_plan_id",
                String,
                "Id or position (from 1) of the payment plan for the new order.",
            ),
            opt(
                "quantities",
                Map,
                "Quantities keyed by item position (from 1) or product id.",
            ),
        ],
    },
    ActionDef {
        key: "create-voucher",
        function: "createVoucher",
        summary: "Create a discount code (voucher, coupon).",
        tag: "Vouchers",
        effect: Write,
        paging: None,
        params: &[req(
            "data",
            Object(CREATE_VOUCHER_DATA),
            "The discount code and its rules.",
        )],
    },
    ActionDef {
        key: "delete-buy-url",
        function: "deleteBuyUrl",
        summary: "Remove a personalised order-form link.",
        tag: "Buy URLs",
        effect: Write,
        paging: None,
        params: &[req("id", Integer, "Id of the buy URL.")],
    },
    ActionDef {
        key: "delete-order-form",
        function: "deleteOrderform",
        summary: "Remove an order form.",
        tag: "Order Forms",
        effect: Write,
        paging: None,
        params: &[req("orderform_id", Integer, "Id of the order form.")],
    },
    ActionDef {
        key: "delete-shipping-cost-policy",
        function: "deleteShippingCostPolicy",
        summary: "Remove a shipping cost policy so it no longer applies to orders.",
        tag: "Shipping",
        effect: Write,
        paging: None,
        params: &[req("policy_id", Integer, "Id of the shipping cost policy.")],
    },
    ActionDef {
        key: "delete-upgrade",
        function: "deleteUpgrade",
        summary: "Delete an upgrade definition.",
        tag: "Upgrades",
        effect: Write,
        paging: None,
        params: &[req("upgrade_id", Integer, "Id of the upgrade.")],
    },
    ActionDef {
        key: "delete-voucher",
        function: "deleteVoucher",
        summary: "Delete a discount code.",
        tag: "Vouchers",
        effect: Write,
        paging: None,
        params: &[req("code", String, "The code buyers enter.")],
    },
    ActionDef {
        key: "get-order-form",
        function: "getOrderform",
        summary: "Fetch the settings of one order form.",
        tag: "Order Forms",
        effect: Read,
        paging: None,
        params: &[req("orderform_id", Integer, "Id of the order form.")],
    },
    ActionDef {
        key: "get-order-form-metas",
        function: "getOrderformMetas",
        summary: "Show the choices available when editing order forms (styles, positions, images).",
        tag: "Order Forms",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "get-shipping-cost-policy",
        function: "getShippingCostPolicy",
        summary: "Fetch one shipping cost policy.",
        tag: "Shipping",
        effect: Read,
        paging: None,
        params: &[req("policy_id", Integer, "Id of the shipping cost policy.")],
    },
    ActionDef {
        key: "get-smart-upgrade",
        function: "getSmartupgrade",
        summary: "Fetch a smart upgrade, with widget code when order ids are given (slow; cache it).",
        tag: "Smart Upgrades",
        effect: Read,
        paging: None,
        params: &[
            req("smartupgrade_id", String, "Id of the smart upgrade."),
            opt(
                "purchase_id",
                List,
                "Order ids of the buyer; with them the answer includes widget code.",
            ),
        ],
    },
    ActionDef {
        key: "get-testpay-key",
        function: "getTestpayKey",
        summary: "Get (or rotate) the key that enables test payments on order forms.",
        tag: "Payments",
        effect: Write,
        paging: None,
        params: &[opt(
            "do_recreate",
            Flag,
            "Y: make a new key (the old one stops working).",
        )],
    },
    ActionDef {
        key: "get-upgrade",
        function: "getUpgrade",
        summary: "Fetch an upgrade definition and optionally check whether given orders can use it.",
        tag: "Upgrades",
        effect: Read,
        paging: None,
        params: &[
            req("upgrade_id", Integer, "Numeric id of the upgrade."),
            opt(
                "order_ids",
                List,
                "Order ids of the buyer, to check whether the upgrade is possible.",
            ),
        ],
    },
    ActionDef {
        key: "get-voucher",
        function: "getVoucher",
        summary: "Fetch one discount code.",
        tag: "Vouchers",
        effect: Read,
        paging: None,
        params: &[req("code", String, "The discount code (or its id).")],
    },
    ActionDef {
        key: "list-buy-urls",
        function: "listBuyUrls",
        summary: "List the personalised order-form links.",
        tag: "Buy URLs",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-conversion-tools",
        function: "listConversionTools",
        summary: "List the conversion tools (tracking pixels, etc.) of the given types.",
        tag: "Conversion Tools",
        effect: Read,
        paging: None,
        params: &[req(
            "type",
            List,
            "Types of conversion tools, comma-separated.",
        )],
    },
    ActionDef {
        key: "list-order-forms",
        function: "listOrderforms",
        summary: "List the order forms.",
        tag: "Order Forms",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-shipping-cost-policies",
        function: "listShippingCostPolicies",
        summary: "List the shipping cost policies.",
        tag: "Shipping",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-smart-upgrades",
        function: "listSmartUpgrades",
        summary: "List the smart upgrades.",
        tag: "Smart Upgrades",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-upgrades",
        function: "listUpgrades",
        summary: "List the upgrade definitions.",
        tag: "Upgrades",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-vouchers",
        function: "listVouchers",
        summary: "List all discount codes.",
        tag: "Vouchers",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "render-js-tracking-code",
        function: "renderJsTrackingCode",
        summary: "Get JavaScript that copies affiliate, campaign and tracking keys into form fields of a landing page.",
        tag: "Tracking",
        effect: Read,
        paging: None,
        params: &[
            opt(
                "affiliate_input",
                String,
                "Name of the form field that receives the affiliate name.",
            ),
            opt(
                "campaignkey_input",
                String,
                "Name of the form field that receives the campaign key.",
            ),
            opt(
                "trackingkey_input",
                String,
                "Name of the form field that receives the tracking key.",
            ),
            opt(
                "callback",
                String,
                "JavaScript function called with the tracking data.",
            ),
        ],
    },
    ActionDef {
        key: "update-order-form",
        function: "updateOrderform",
        summary: "Change an order form.",
        tag: "Order Forms",
        effect: Write,
        paging: None,
        params: &[
            req("orderform_id", Integer, "Id of the order form."),
            opt(
                "data",
                OpenObject(UPDATE_ORDER_FORM_DATA),
                "Order form properties to change. Further fields are passed through.",
            ),
        ],
    },
    ActionDef {
        key: "update-shipping-cost-policy",
        function: "updateShippingCostPolicy",
        summary: "Change a shipping cost policy.",
        tag: "Shipping",
        effect: Write,
        paging: None,
        params: &[
            req("policy_id", Integer, "Id of the policy to change."),
            opt(
                "data",
                OpenObject(SHIPPING_COST_POLICY_DATA),
                "Policy properties to change. Order-form labels go in label_<language> fields (e.g. label_en), passed through.",
            ),
        ],
    },
    ActionDef {
        key: "update-voucher",
        function: "updateVoucher",
        summary: "Change a discount code.",
        tag: "Vouchers",
        effect: Write,
        paging: None,
        params: &[
            req("code", String, "The discount code (or its id) to change."),
            opt(
                "data",
                Object(UPDATE_VOUCHER_DATA),
                "Discount code properties to change.",
            ),
        ],
    },
    ActionDef {
        key: "validate-coupon-code",
        function: "validateCouponCode",
        summary: "Check whether a discount (coupon) code is valid and what it gives.",
        tag: "Vouchers",
        effect: Read,
        paging: None,
        params: &[req("code", String, "The discount code (or its id).")],
    },
];

const BUY_URL_ADDON_FIELDS: &[Param] = &[
    opt("product_id", String, "Id of the product."),
    opt(
        "first_amount",
        Number,
        "Price, or amount of the first payment.",
    ),
    opt("other_amounts", Number, "Amount of each later payment."),
    opt("single_amount", Number, "Price for a single payment."),
    opt("default_quantity", Integer, "Preselected quantity."),
    opt(
        "max_quantity_type",
        String,
        "How the maximum quantity is set.",
    )
    .one_of(&["unlimited", "like_main_item", "number"]),
    opt("max_quantity", Integer, "Maximum quantity."),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt(
        "is_quantity_editable_before_purchase",
        Flag,
        "Y: the buyer may change the quantity on the order form.",
    ),
    opt(
        "is_quantity_editable_after_purchase",
        Flag,
        "Y: the buyer may change the quantity after the purchase.",
    ),
];

const BUY_URL_ADDON: ParamType = Object(BUY_URL_ADDON_FIELDS);

const CREATE_BUY_URL_BUYER: &[Param] = &[
    opt("email", String, "E-mail address."),
    opt("salutation", String, "M or F.").one_of(&["M", "F"]),
    opt("title", String, "Title, e.g. Dr."),
    opt("last_name", String, "Last name."),
    opt("first_name", String, "First name."),
    opt("company", String, "Company name."),
    opt("street", String, "Street and number."),
    opt("city", String, "City."),
    opt("zipcode", String, "Postal code."),
    opt("state", String, "State or province."),
    opt("country", String, "Two-letter ISO country code."),
    opt("phone_no", String, "Phone number."),
    opt("tax_id", String, "VAT id of the buyer."),
    opt(
        "readonly_keys",
        String,
        "Which buyer data the buyer may not change.",
    )
    .one_of(&["all", "email", "email_and_name", "none"]),
    opt("id", String, "Buyer id or order id whose address to use."),
];

const CREATE_BUY_URL_PAYMENT_PLAN: &[Param] = &[
    opt(
        "first_amount",
        Number,
        "Price, or amount of the first payment.",
    ),
    opt("other_amounts", Number, "Amount of each later payment."),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt(
        "number_of_installments",
        Integer,
        "Number of payments: 0 subscription, 1 single payment, 2+ instalments.",
    ),
    opt(
        "first_billing_interval",
        String,
        "Time to the second payment, e.g. 1_month.",
    ),
    opt(
        "other_billing_intervals",
        String,
        "Time between later payments, e.g. 1_month.",
    ),
    opt(
        "test_interval",
        String,
        "Free trial before the first payment, e.g. 14_day.",
    ),
    opt(
        "template",
        String,
        "Id of a payment plan to copy settings from.",
    ),
    opt("upgrade_order_id", String, "Order being upgraded."),
    opt("upgrade_type", String, "upgrade or downgrade.").one_of(&["upgrade", "downgrade"]),
    opt("tax_mode", String, "How the price treats VAT.").one_of(&["as_set", "exclude", "include"]),
];

const CREATE_BUY_URL_SETTINGS: &[Param] = &[
    opt("orderform_id", String, "Order form to use."),
    opt("img", String, "Image id to show on the order form."),
    opt(
        "affiliate_commission_rate",
        Number,
        "Affiliate commission in percent.",
    ),
    opt(
        "affiliate_commission_fix",
        Number,
        "Fixed affiliate commission amount.",
    ),
    opt("voucher_code", String, "Discount code to apply."),
    opt(
        "voucher_1st_rate",
        Number,
        "Discount in percent on the first payment.",
    ),
    opt(
        "voucher_oth_rates",
        Number,
        "Discount in percent on later payments.",
    ),
    opt(
        "voucher_1st_amount",
        Number,
        "Discount amount on the first payment.",
    ),
    opt(
        "voucher_oth_amounts",
        Number,
        "Discount amount on later payments.",
    ),
    opt(
        "force_rebilling",
        Flag,
        "Y: only offer payment methods that support automatic rebilling.",
    ),
    opt("pay_methods", List, "Payment methods offered."),
];

const CREATE_BUY_URL_TRACKING: &[Param] = &[
    opt(
        "custom",
        String,
        "Your own order reference, passed through to IPN and order data.",
    ),
    opt(
        "affiliate",
        String,
        "Digistore24 id (name) of the affiliate.",
    ),
    opt(
        "affiliate_priority",
        String,
        "Whether an affiliate set for the e-mail wins over this one.",
    )
    .one_of(&["email", "as_set"]),
    opt("campaignkey", String, "Campaign key of the affiliate."),
    opt("trackingkey", String, "Your tracking key."),
    opt("utm_source", String, "UTM source."),
    opt("utm_medium", String, "UTM medium."),
    opt("utm_campaign", String, "UTM campaign."),
    opt("utm_term", String, "UTM term."),
    opt("utm_content", String, "UTM content."),
];

const CREATE_BUY_URL_URLS: &[Param] = &[
    opt("thankyou_url", String, "URL of the thank-you page."),
    opt(
        "fallback_url",
        String,
        "Where to send the buyer when the link is no longer valid.",
    ),
    opt(
        "upgrade_error_url",
        String,
        "Where to send the buyer when an upgrade fails.",
    ),
];

const CREATE_ORDER_FORM_DATA: &[Param] = &[
    req("name", String, "Name of the order form."),
    opt("layout", String, "Layout of the order form.").one_of(&["widget", "legacy"]),
    opt("background_style", String, "Background colour scheme.").one_of(&["white", "blue"]),
    opt("step_count", Integer, "Number of steps of the order form.").one_of(&["1", "2", "3"]),
    opt(
        "shipping_position",
        String,
        "Where the shipping details appear.",
    )
    .one_of(&["after_cart", "before_cart"]),
    opt(
        "summary_positions",
        List,
        "Where order summaries appear, comma-separated.",
    ),
    opt(
        "flex_elements_order",
        List,
        "Order of order bump, summary and refund waiver, comma-separated.",
    )
    .one_of(&["order_bumper", "order_summary", "refund_waiver"]),
    opt("tab_style", String, "Style of the step tabs.").one_of(&["bigtabs", "image", "image_url"]),
    opt("tab_text_1_hl", String, "Headline of tab 1."),
    opt("tab_text_1_sl", String, "Subline of tab 1."),
    opt("tab_text_2_hl", String, "Headline of tab 2."),
    opt("tab_text_2_sl", String, "Subline of tab 2."),
    opt("tab_text_3_hl", String, "Headline of tab 3."),
    opt("tab_text_3_sl", String, "Subline of tab 3."),
    opt("tab_image_1_id", String, "Image id of tab 1."),
    opt("tab_image_2_id", String, "Image id of tab 2."),
    opt("tab_image_3_id", String, "Image id of tab 3."),
    opt("tab_image_1_url", String, "Image URL of tab 1."),
    opt("tab_image_2_url", String, "Image URL of tab 2."),
    opt("tab_image_3_url", String, "Image URL of tab 3."),
    opt("order_bump_style", String, "Look of the order bump.").one_of(&["none", "dashed"]),
    opt(
        "orderbump_product_id",
        String,
        "Product offered as order bump (an add-on of the main product).",
    ),
    opt("orderbump_headline", String, "Headline of the order bump."),
    opt("orderbump_html", String, "Text of the order bump."),
    opt(
        "orderbump_position",
        String,
        "Where the order bump appears.",
    )
    .one_of(&[
        "before_playplan",
        "after_payplan",
        "before_checkout",
        "before_pay_button",
        "after_pay_button",
    ]),
    opt(
        "refund_waiver_position",
        String,
        "Where the refund waiver appears.",
    )
    .one_of(&[
        "before_playplan",
        "after_payplan",
        "before_checkout",
        "before_pay_button",
        "after_pay_button",
    ]),
    opt("custom_css", String, "Extra CSS for the order form."),
];

const SHIPPING_COST_POLICY_DATA: &[Param] = &[
    opt("name", String, "Name of the policy."),
    opt("position", Integer, "Sort position."),
    opt("is_active", Flag, "Y: active; N: inactive."),
    opt(
        "for_product_ids",
        List,
        "Product ids the policy applies to (default all).",
    ),
    opt(
        "for_countries",
        List,
        "Two-letter country codes the policy applies to (default all).",
    ),
    opt(
        "for_currencies",
        List,
        "Currency codes the policy applies to (default all).",
    ),
    opt(
        "fee_type",
        String,
        "total_fee (once per order) or fee_per_unit.",
    )
    .one_of(&["total_fee", "fee_per_unit"]),
    opt("billing_cycle", String, "Charge the fee once or monthly.").one_of(&["once", "monthly"]),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt(
        "scale_level_count",
        Integer,
        "Number of quantity levels, 1 to 5.",
    ),
    opt("scale_1_amount", Number, "Shipping fee of the first level."),
    opt("scale_2_from", Integer, "Item count where level 2 starts."),
    opt(
        "scale_2_amount",
        Number,
        "Shipping fee from scale_2_from items on.",
    ),
    opt("scale_3_from", Integer, "Item count where level 3 starts."),
    opt(
        "scale_3_amount",
        Number,
        "Shipping fee from scale_3_from items on.",
    ),
    opt("scale_4_from", Integer, "Item count where level 4 starts."),
    opt(
        "scale_4_amount",
        Number,
        "Shipping fee from scale_4_from items on.",
    ),
    opt("scale_5_from", Integer, "Item count where level 5 starts."),
    opt(
        "scale_5_amount",
        Number,
        "Shipping fee from scale_5_from items on.",
    ),
];

const CREATE_VOUCHER_DATA: &[Param] = &[
    req("code", String, "The discount code (or its id)."),
    opt(
        "product_ids",
        List,
        "Products the code applies to (default 'all').",
    ),
    opt("valid_from", Date, "When the code starts working."),
    opt("expires_at", Date, "When the code stops working."),
    opt(
        "first_rate",
        Number,
        "Discount in percent on the first (or only) payment.",
    ),
    opt(
        "other_rates",
        Number,
        "Discount in percent on later payments.",
    ),
    opt(
        "first_amount",
        Number,
        "Price, or amount of the first payment.",
    ),
    opt("other_amounts", Number, "Amount of each later payment."),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt(
        "is_count_limited",
        Flag,
        "Y: the code can be used a limited number of times.",
    ),
    opt(
        "count_left",
        Integer,
        "Uses left when the count is limited (default 1).",
    ),
    opt(
        "upgrade_policy",
        String,
        "How the code applies to upgrades.",
    )
    .one_of(&["valid", "other_only", "not_valid"]),
];

const UPDATE_ORDER_FORM_DATA: &[Param] = &[
    opt("name", String, "Name of the order form."),
    opt("product_id", Integer, "Product the form belongs to."),
    opt("paymentplan_id", Integer, "Payment plan the form uses."),
    opt("is_active", Flag, "Y: active; N: inactive."),
    opt("is_default", Flag, "Y: default order form of the product."),
    opt("theme", String, "Theme of the order form."),
    opt("language", String, "Language code, e.g. de or en."),
    opt("custom_css", String, "Extra CSS for the order form."),
    opt("custom_js", String, "Extra JavaScript for the order form."),
    opt("custom_html", String, "Extra HTML for the order form."),
    opt(
        "custom_fields",
        Array(&Map),
        "Extra input fields of the order form.",
    ),
    opt("upsell_settings", Map, "Upsell settings of the order form."),
];

const UPDATE_VOUCHER_DATA: &[Param] = &[
    opt("code", String, "New code text."),
    opt(
        "product_ids",
        List,
        "Product ids (comma-separated or an array), or 'all'.",
    ),
    opt(
        "valid_from",
        Date,
        "When the code starts working; empty removes the start.",
    ),
    opt(
        "expires_at",
        Date,
        "When the code stops working; empty removes the end.",
    ),
    opt(
        "first_rate",
        Number,
        "Discount in percent on the first (or only) payment.",
    ),
    opt(
        "other_rates",
        Number,
        "Discount in percent on later payments.",
    ),
    opt(
        "first_amount",
        Number,
        "Price, or amount of the first payment.",
    ),
    opt("other_amounts", Number, "Amount of each later payment."),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt(
        "is_count_limited",
        Flag,
        "Y: the code can be used a limited number of times.",
    ),
    opt(
        "count_left",
        Integer,
        "Uses left when the count is limited (default 1).",
    ),
    opt(
        "upgrade_policy",
        String,
        "How the code applies to upgrades.",
    )
    .one_of(&["valid", "other_only", "not_valid"]),
];
