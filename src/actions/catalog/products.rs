//! Products, product groups, payment plans, images and upsell funnels.

use super::prelude::*;

pub(super) const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "copy-product",
        function: "copyProduct",
        summary: "Duplicate an existing product, optionally changing some of its properties.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[
            req("product_id", String, "Id of the product to copy."),
            req(
                "data",
                OpenObject(COPY_PRODUCT_DATA),
                "Properties of the copy that differ from the original.",
            ),
        ],
    },
    ActionDef {
        key: "create-image",
        function: "createImage",
        summary: "Upload an image to the account by giving a URL Digistore24 copies it from.",
        tag: "Images",
        effect: Write,
        paging: None,
        params: &[req(
            "data",
            Object(CREATE_IMAGE_DATA),
            "The image to create.",
        )],
    },
    ActionDef {
        key: "create-payment-plan",
        function: "createPaymentplan",
        summary: "Add a payment plan (price and billing rhythm) to a product.",
        tag: "Payment Plans",
        effect: Write,
        paging: None,
        params: &[
            req("product_id", String, "Product that gets the plan."),
            req("data", Object(PAYMENT_PLAN_DATA), "The payment plan."),
        ],
    },
    ActionDef {
        key: "create-product",
        function: "createProduct",
        summary: "Create a new product in the vendor account.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[req(
            "data",
            OpenObject(CREATE_PRODUCT_DATA),
            "Product properties. Fields beyond the listed ones (used in production) are passed through.",
        )],
    },
    ActionDef {
        key: "create-product-group",
        function: "createProductGroup",
        summary: "Create a product group (a folder for products).",
        tag: "Product Groups",
        effect: Write,
        paging: None,
        params: &[req(
            "data",
            Object(CREATE_PRODUCT_GROUP_DATA),
            "The product group.",
        )],
    },
    ActionDef {
        key: "delete-image",
        function: "deleteImage",
        summary: "Remove an image from the account.",
        tag: "Images",
        effect: Write,
        paging: None,
        params: &[req("image_id", Integer, "Id of the image.")],
    },
    ActionDef {
        key: "delete-payment-plan",
        function: "deletePaymentplan",
        summary: "Remove a payment plan from its product.",
        tag: "Payment Plans",
        effect: Write,
        paging: None,
        params: &[req("paymentplan_id", Integer, "Id of the payment plan.")],
    },
    ActionDef {
        key: "delete-product",
        function: "deleteProduct",
        summary: "Delete a product (only clean for products that never sold; otherwise deactivate it).",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[req("product_id", Integer, "Id of the product.")],
    },
    ActionDef {
        key: "delete-product-group",
        function: "deleteProductGroup",
        summary: "Remove a product group (a folder of products).",
        tag: "Product Groups",
        effect: Write,
        paging: None,
        params: &[req("product_group_id", Integer, "Id of the product group.")],
    },
    ActionDef {
        key: "delete-upsells",
        function: "deleteUpsells",
        summary: "Remove the whole upsell funnel of a product.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[req(
            "product_id",
            Integer,
            "Product whose funnel to remove.",
        )],
    },
    ActionDef {
        key: "get-image",
        function: "getImage",
        summary: "Fetch the properties of one image.",
        tag: "Images",
        effect: Read,
        paging: None,
        params: &[req("image_id", String, "Alphanumeric id of the image.")],
    },
    ActionDef {
        key: "get-product",
        function: "getProduct",
        summary: "Fetch one product with its settings.",
        tag: "Products",
        effect: Read,
        paging: None,
        params: &[req("product_id", Integer, "Id of the product.")],
    },
    ActionDef {
        key: "get-product-group",
        function: "getProductGroup",
        summary: "Fetch one product group.",
        tag: "Product Groups",
        effect: Read,
        paging: None,
        params: &[req("product_group_id", Integer, "Id of the product group.")],
    },
    ActionDef {
        key: "get-upsells",
        function: "getUpsells",
        summary: "Show the upsell funnel (which product is offered after which answer) of a product.",
        tag: "Products",
        effect: Read,
        paging: None,
        params: &[req("product_id", Integer, "Product whose funnel to show.")],
    },
    ActionDef {
        key: "list-images",
        function: "listImages",
        summary: "List the images of one usage type.",
        tag: "Images",
        effect: Read,
        paging: None,
        params: &[req(
            "usage_type",
            String,
            "What the images are for, e.g. product (see get-global-settings).",
        )],
    },
    ActionDef {
        key: "list-payment-plans",
        function: "listPaymentPlans",
        summary: "List the payment plans of one product.",
        tag: "Payment Plans",
        effect: Read,
        paging: None,
        params: &[req("product_id", Integer, "Product whose plans to list.")],
    },
    ActionDef {
        key: "list-product-groups",
        function: "listProductGroups",
        summary: "List the product groups.",
        tag: "Product Groups",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-product-types",
        function: "listProductTypes",
        summary: "List the product types a product can have.",
        tag: "Products",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-products",
        function: "listProducts",
        summary: "List all products of the vendor account.",
        tag: "Products",
        effect: Read,
        paging: None,
        params: &[opt("sort_by", String, "Sort by name or group.").one_of(&["name", "group"])],
    },
    ActionDef {
        key: "update-payment-plan",
        function: "updatePaymentplan",
        summary: "Change a payment plan (price, billing rhythm, minimum term).",
        tag: "Payment Plans",
        effect: Write,
        paging: None,
        params: &[
            req("paymentplan_id", Integer, "Id of the payment plan."),
            opt(
                "data",
                Object(PAYMENT_PLAN_DATA),
                "Payment plan properties to change.",
            ),
        ],
    },
    ActionDef {
        key: "update-product",
        function: "updateProduct",
        summary: "Change the properties of a product.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[
            req("product_id", Integer, "Id of the product."),
            opt(
                "data",
                OpenObject(UPDATE_PRODUCT_DATA),
                "Product properties to change. Fields beyond the listed ones are passed through.",
            ),
        ],
    },
    ActionDef {
        key: "update-product-group",
        function: "updateProductGroup",
        summary: "Rename or reorder a product group.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[
            req("product_group_id", Integer, "Id of the product group."),
            opt(
                "data",
                Object(UPDATE_PRODUCT_GROUP_DATA),
                "Product group properties to change.",
            ),
        ],
    },
    ActionDef {
        key: "update-upsells",
        function: "updateUpsells",
        summary: "Replace the upsell funnel of a product.",
        tag: "Products",
        effect: Write,
        paging: None,
        params: &[
            req("product_id", Integer, "Product whose funnel to replace."),
            opt(
                "data",
                Map,
                "The upsell funnel: product ids keyed by position (y, yy, yn, ...).",
            ),
        ],
    },
];

const COPY_PRODUCT_DATA: &[Param] = &[
    opt("name_intern", String, "Internal name of the copy."),
    opt(
        "product_type_id",
        Integer,
        "Product type id (see list-product-types).",
    ),
    opt("language", List, "Languages of the copy, e.g. de,en."),
    opt("is_active", Flag, "Y: active; N: inactive."),
    opt("product_group_id", Integer, "Id of the product group."),
    opt("name_de", String, "German name."),
    opt("name_en", String, "English name."),
    opt("name_es", String, "Spanish name."),
];

const CREATE_IMAGE_DATA: &[Param] = &[
    req("name", String, "Name of the image."),
    req(
        "image-url",
        String,
        "Public URL Digistore24 copies the image from.",
    ),
    opt("usage_type", String, "What the image is for, e.g. product."),
    opt("alt_tag", String, "Alternative text of the image."),
];

const PAYMENT_PLAN_DATA: &[Param] = &[
    opt(
        "first_amount",
        Number,
        "Price, or amount of the first payment.",
    ),
    opt(
        "first_billing_interval",
        String,
        "Time to the second payment, e.g. 1_month.",
    ),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt("other_amounts", Number, "Amount of each later payment."),
    opt(
        "other_billing_intervals",
        String,
        "Time between later payments, e.g. 1_month.",
    ),
    opt(
        "number_of_installments",
        Integer,
        "Number of payments: 0 subscription, 1 single payment, 2+ instalments.",
    ),
    opt("is_active", Flag, "Y: active; N: inactive."),
    opt("cancel_policy", String, "Minimum term, e.g. 12m_0.").one_of(&[
        "6m_0", "6m_6m", "6m_12m", "12m_0", "12m_3m", "12m_6m", "12m_12m", "24m_0", "24m_6m",
        "24m_12m",
    ]),
];

const CREATE_PRODUCT_DATA: &[Param] = &[
    opt("name_intern", String, "Internal name (shown only to you)."),
    opt("name_de", String, "German name."),
    opt("name_en", String, "English name."),
    opt("name_es", String, "Spanish name."),
    opt(
        "description_de",
        String,
        "German description (HTML is filtered).",
    ),
    opt(
        "description_en",
        String,
        "English description (HTML is filtered).",
    ),
    opt(
        "description_es",
        String,
        "Spanish description (HTML is filtered).",
    ),
    opt("salespage_url", String, "URL of the sales page."),
    opt(
        "upsell_salespage_url",
        String,
        "URL of the upsell sales page.",
    ),
    opt("thankyou_url", String, "URL of the thank-you page."),
    opt("image_url", String, "URL of the product image."),
    opt(
        "product_type_id",
        Integer,
        "Product type id (see list-product-types).",
    ),
    opt("approval_status", String, "Approval status for resellers.").one_of(&["new", "pending"]),
    opt(
        "affiliate_commission",
        Number,
        "Affiliate commission in percent.",
    ),
    opt(
        "buyer_type",
        String,
        "consumer: prices include VAT; business: prices exclude VAT.",
    )
    .one_of(&["consumer", "business"]),
    opt(
        "is_address_input_mandatory",
        Flag,
        "Y: the buyer must always enter an address; N: only when needed for delivery.",
    ),
    opt(
        "add_order_data_to_thankyou_page_url",
        Flag,
        "Y: append order data to the thank-you URL.",
    ),
    opt("name", String, "Product name (all languages)."),
    opt("description", String, "Description (HTML is filtered)."),
    opt("language", List, "Languages of the product, e.g. de,en."),
    opt("currency", String, "Currency of the product, e.g. EUR."),
    opt("product_group_id", Integer, "Id of the product group."),
    opt("default_quantity", Integer, "Preselected quantity."),
    opt("max_quantity", Integer, "Maximum quantity per order."),
    opt("note", String, "Internal note (kept to 47 characters)."),
    opt("is_active", Flag, "Y: active; N: inactive."),
];

const CREATE_PRODUCT_GROUP_DATA: &[Param] = &[
    req("name", String, "Name of the group."),
    opt("position", Integer, "Sort position."),
    opt(
        "is_shown_as_tab",
        Flag,
        "Y: show the group as a tab in the product list.",
    ),
];

const UPDATE_PRODUCT_DATA: &[Param] = &[
    opt("name_de", String, "German name."),
    opt("name_en", String, "English name."),
    opt("name_es", String, "Spanish name."),
    opt("name_intern", String, "Internal name (shown only to you)."),
    opt(
        "description_de",
        String,
        "German description (HTML is filtered).",
    ),
    opt(
        "description_en",
        String,
        "English description (HTML is filtered).",
    ),
    opt(
        "description_es",
        String,
        "Spanish description (HTML is filtered).",
    ),
    opt("salespage_url", String, "URL of the sales page."),
    opt(
        "upsell_salespage_url",
        String,
        "URL of the upsell sales page.",
    ),
    opt("thankyou_url", String, "URL of the thank-you page."),
    opt("image_url", String, "URL of the product image."),
    opt(
        "product_type_id",
        Integer,
        "Product type id (see list-product-types).",
    ),
    opt(
        "currency",
        List,
        "Currencies the product can be paid in, e.g. USD,EUR.",
    ),
    // No enum here: besides `new`/`pending` the API takes `RESELLER_ID:STATUS` for one reseller.
    opt(
        "approval_status",
        String,
        "Approval for resellers: new or pending, or RESELLER_ID:STATUS for one (e.g. 1:new).",
    ),
    opt(
        "affiliate_commision",
        Number,
        "Affiliate commission in percent (spelled as the API spells it here).",
    ),
    opt(
        "buyer_type",
        String,
        "consumer: prices include VAT; business: prices exclude VAT.",
    )
    .one_of(&["consumer", "business"]),
    opt(
        "is_address_input_mandatory",
        Flag,
        "Y: the buyer must always enter an address; N: only when needed for delivery.",
    ),
    opt(
        "add_order_data_to_thankyou_page_url",
        Flag,
        "Y: append order data to the thank-you URL.",
    ),
    opt("name", String, "Product name (all languages)."),
    opt("description", String, "Description (HTML is filtered)."),
    opt("language", List, "Languages of the product, e.g. de,en."),
    opt("product_group_id", Integer, "Id of the product group."),
    opt(
        "affiliate_commission",
        Number,
        "Affiliate commission in percent.",
    ),
    opt("note", String, "Internal note (kept to 47 characters)."),
    opt("is_active", Flag, "Y: active; N: inactive."),
];

const UPDATE_PRODUCT_GROUP_DATA: &[Param] = &[
    opt("name", String, "Name of the group (up to 31 characters)."),
    opt("position", Integer, "Sort position."),
    opt(
        "is_shown_as_tab",
        Flag,
        "Y: show the group as a tab in the product list.",
    ),
];
