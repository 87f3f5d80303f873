//! Orders (purchases), transactions, refunds, rebilling, invoices and related records.

use super::prelude::*;

pub(super) const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "add-balance-to-purchase",
        function: "addBalanceToPurchase",
        summary: "Add credit (or, with a negative amount, remove it) on a subscription or instalment order; it is charged with the next payments.",
        tag: "Purchases",
        effect: Money,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "Order id (purchase id), e.g. ABCD1234.",
            ),
            req(
                "amount",
                Number,
                "Amount to add in the order currency; negative reduces the balance (not below 0).",
            ),
        ],
    },
    ActionDef {
        key: "create-addon-change-purchase",
        function: "createAddonChangePurchase",
        summary: "Add or remove subscription add-on products on an existing order (package change).",
        tag: "Purchases",
        effect: Money,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "The order to change (paid with a method that supports rebilling).",
            ),
            req(
                "addons",
                Array(&ADDON_CHANGE),
                "Add-on products to add (subscriptions).",
            ),
            opt(
                "tracking",
                Object(ORDER_TRACKING),
                "Tracking data; fields left out are taken from the original order.",
            ),
            opt(
                "placeholders",
                Map,
                "Values for placeholders in the product title and description.",
            ),
        ],
    },
    ActionDef {
        key: "create-billing-on-demand",
        function: "createBillingOnDemand",
        summary: "Charge a buyer again on demand: create a new order billed to the payment method of an earlier order.",
        tag: "Billing",
        effect: Money,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "Earlier order whose payment method is charged (must support rebilling).",
            ),
            req("product_id", String, "Product sold in the new order."),
            opt(
                "payment_plan",
                Object(CREATE_BILLING_ON_DEMAND_PAYMENT_PLAN),
                "Price and billing rhythm of the new order.",
            ),
            opt(
                "tracking",
                Object(ORDER_TRACKING),
                "Tracking data of the new order.",
            ),
            opt(
                "placeholders",
                Map,
                "Values for placeholders in the product title and description.",
            ),
            opt(
                "settings",
                Object(CREATE_BILLING_ON_DEMAND_SETTINGS),
                "Settings of the new order.",
            ),
            opt(
                "addons",
                Array(&BILLING_ON_DEMAND_ADDON),
                "Add-on products in the new order.",
            ),
        ],
    },
    ActionDef {
        key: "create-rebilling-payment",
        function: "createRebillingPayment",
        summary: "Trigger the next subscription payment of an order now (billing by trigger).",
        tag: "Payments",
        effect: Money,
        paging: None,
        params: &[req(
            "purchase_id",
            String,
            "Order id (purchase id), e.g. ABCD1234.",
        )],
    },
    ActionDef {
        key: "get-purchase",
        function: "getPurchase",
        summary: "Fetch one or more orders (purchases) with buyer, payment and billing details.",
        tag: "Purchases",
        effect: Read,
        paging: None,
        params: &[req(
            "purchase_id",
            List,
            "Order id, or several (comma-separated or an array).",
        )],
    },
    ActionDef {
        key: "get-purchase-downloads",
        function: "getPurchaseDownloads",
        summary: "Show the download links and download counts of some orders.",
        tag: "Purchases",
        effect: Read,
        paging: None,
        params: &[req(
            "purchase_id",
            List,
            "Order id, or several (comma-separated or an array).",
        )],
    },
    ActionDef {
        key: "get-purchase-tracking",
        function: "getPurchaseTracking",
        summary: "Show the tracking data (affiliate, campaign, tracking key) of some orders.",
        tag: "Purchases",
        effect: Read,
        paging: None,
        params: &[req(
            "purchase_id",
            List,
            "Order id, or several (comma-separated or an array).",
        )],
    },
    ActionDef {
        key: "get-service-proof-request",
        function: "getServiceProofRequest",
        summary: "Fetch one request for proof that a service was delivered (raised when a buyer asks for a refund).",
        tag: "Service Proofs",
        effect: Read,
        paging: None,
        params: &[req(
            "service_proof_id",
            Integer,
            "Id of the proof-of-service request.",
        )],
    },
    ActionDef {
        key: "list-account-access",
        function: "listAccountAccess",
        summary: "List the accounts that have access to this account, or that it has access to.",
        tag: "Account Access",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-custom-form-records",
        function: "listCustomFormRecords",
        summary: "List what buyers entered in extra order-form fields.",
        tag: "Custom Forms",
        effect: Read,
        paging: None,
        params: &[opt("purchase_id", String, "Only this order.")],
    },
    ActionDef {
        key: "list-invoices",
        function: "listInvoices",
        summary: "List the invoices of one order.",
        tag: "Invoices",
        effect: Read,
        paging: None,
        params: &[req("purchase_id", String, "Order id (of this account).")],
    },
    ActionDef {
        key: "list-purchases",
        function: "listPurchases",
        summary: "List orders (purchases) you earn on, filtered by date and search fields, page by page.",
        tag: "Purchases",
        effect: Read,
        paging: Some(Paging {
            items_field: "purchase_list",
        }),
        params: &[
            opt(
                "from",
                Date,
                "Start of the time range: a date/time, ISO 8601, 'now', 'start' or relative like -3d.",
            ),
            opt(
                "to",
                Date,
                "End of the time range (same forms as from; default 'now').",
            ),
            opt(
                "search",
                Object(LIST_PURCHASES_SEARCH),
                "Filters, sent as search[field]=value; e.g. role=vendor.",
            ),
            opt("sort_by", String, "Sort by date, earning or amount.")
                .one_of(&["date", "earning", "amount"]),
            opt("sort_order", String, "asc or desc.").one_of(&["asc", "desc"]),
            opt(
                "load_transactions",
                Flag,
                "Y: include the transactions of each order.",
            ),
            opt("page_no", Integer, "Page number, starting at 1."),
            opt("page_size", Integer, "Orders per page."),
        ],
    },
    ActionDef {
        key: "list-purchases-of-email",
        function: "listPurchasesOfEmail",
        summary: "List the orders bought with one e-mail address.",
        tag: "Purchases",
        effect: Read,
        paging: None,
        params: &[
            req("email", String, "Buyer's e-mail address."),
            opt(
                "limit",
                Integer,
                "Maximum number of orders returned (default 100).",
            ),
        ],
    },
    ActionDef {
        key: "list-rebilling-status-changes",
        function: "listRebillingStatusChanges",
        summary: "List changes of subscription (rebilling) status, page by page.",
        tag: "Rebilling",
        effect: Read,
        paging: Some(Paging {
            items_field: "items",
        }),
        params: &[
            opt(
                "from",
                Date,
                "Start of the time range: a date/time, ISO 8601, 'now', 'start' or relative like -3d.",
            ),
            opt(
                "to",
                Date,
                "End of the time range (same forms as from; default 'now').",
            ),
            opt("page_no", Integer, "Page number, starting at 1."),
            opt("page_size", Integer, "Items per page."),
        ],
    },
    ActionDef {
        key: "list-service-proof-requests",
        function: "listServiceProofRequests",
        summary: "List requests for proof of service delivery.",
        tag: "Service Proofs",
        effect: Read,
        paging: None,
        params: &[opt(
            "search",
            Object(LIST_SERVICE_PROOF_REQUESTS_SEARCH),
            "Filters, sent as search[field]=value.",
        )],
    },
    ActionDef {
        key: "list-transactions",
        function: "listTransactions",
        summary: "List transactions (payments, refunds, chargebacks), filtered by date and search fields, page by page.",
        tag: "Transactions",
        effect: Read,
        paging: Some(Paging {
            items_field: "transaction_list",
        }),
        params: &[
            opt(
                "from",
                Date,
                "Start of the time range: a date/time, ISO 8601, 'now', 'start' or relative like -3d.",
            ),
            opt(
                "to",
                Date,
                "End of the time range (same forms as from; default 'now').",
            ),
            opt(
                "search",
                Object(LIST_TRANSACTIONS_SEARCH),
                "Filters, sent as search[field]=value.",
            ),
            opt("sort_by", String, "Sort by date, earning or amount.")
                .one_of(&["date", "earning", "amount"]),
            opt("sort_order", String, "asc or desc.").one_of(&["asc", "desc"]),
            opt("page_no", Integer, "Page number, starting at 1."),
            opt("page_size", Integer, "Items per page."),
        ],
    },
    ActionDef {
        key: "log-member-access",
        function: "logMemberAccess",
        summary: "Record that a buyer logged into the membership area and used the content (matters for German refund rules).",
        tag: "Account Access",
        effect: Write,
        paging: None,
        params: &[
            req("purchase_id", String, "Order the access belongs to."),
            req(
                "platform_name",
                String,
                "Readable name of the membership area.",
            ),
            req(
                "login_name",
                String,
                "Buyer's user name in the membership area.",
            ),
            req("login_url", String, "URL the buyer logged in at."),
            req(
                "number_of_unlocked_lectures",
                Integer,
                "Lectures the buyer can open.",
            ),
            req(
                "total_number_of_lectures",
                Integer,
                "All lectures of the course, locked and unlocked.",
            ),
            opt(
                "login_at",
                Date,
                "When the buyer logged in (default 'now').",
            ),
        ],
    },
    ActionDef {
        key: "refund-partially",
        function: "refundPartially",
        summary: "Refund part of a payment of an order; the order stays active.",
        tag: "Purchases",
        effect: Money,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "Order id (purchase id), e.g. ABCD1234.",
            ),
            req(
                "amount",
                Number,
                "Amount to refund; at most one payment amount.",
            ),
        ],
    },
    ActionDef {
        key: "refund-purchase",
        function: "refundPurchase",
        summary: "Refund every refundable payment of an order.",
        tag: "Purchases",
        effect: Money,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "Order id (purchase id), e.g. ABCD1234.",
            ),
            opt(
                "force",
                Flag,
                "Y: do it even if the refund policy would not allow it.",
            ),
            opt(
                "request_date",
                Date,
                "Judge the refund policy as of this date (when the buyer asked earlier).",
            ),
        ],
    },
    ActionDef {
        key: "refund-transaction",
        function: "refundTransaction",
        summary: "Refund one payment (transaction).",
        tag: "Transactions",
        effect: Money,
        paging: None,
        params: &[
            req("transaction_id", String, "Id of the transaction (payment)."),
            opt(
                "force",
                Flag,
                "Y: do it even if the refund policy would not allow it.",
            ),
            opt(
                "request_date",
                Date,
                "Judge the refund policy as of this date (when the buyer asked earlier).",
            ),
        ],
    },
    ActionDef {
        key: "report-fraud",
        function: "reportFraud",
        summary: "Report the buyer and/or affiliate of a transaction as fraudulent.",
        tag: "Fraud Management",
        effect: Write,
        paging: None,
        params: &[
            req("transaction_id", Integer, "Numeric id of the transaction."),
            req("who", List, "Who is reported: buyer, affiliate, or both.")
                .one_of(&["buyer", "affiliate"]),
            req("comment", String, "Why this is fraud."),
        ],
    },
    ActionDef {
        key: "resend-invoice-mail",
        function: "resendInvoiceMail",
        summary: "Send the invoices of an order to the buyer again.",
        tag: "Purchases",
        effect: Write,
        paging: None,
        params: &[req(
            "purchase_id",
            String,
            "Order id (purchase id), e.g. ABCD1234.",
        )],
    },
    ActionDef {
        key: "resend-purchase-confirmation-mail",
        function: "resendPurchaseConfirmationMail",
        summary: "Send the order confirmation e-mail to the buyer again.",
        tag: "Purchases",
        effect: Write,
        paging: None,
        params: &[req(
            "purchase_id",
            String,
            "Order id (purchase id), e.g. ABCD1234.",
        )],
    },
    ActionDef {
        key: "start-rebilling",
        function: "startRebilling",
        summary: "Resume the stopped subscription or instalment payments of an order.",
        tag: "Billing",
        effect: Write,
        paging: None,
        params: &[req(
            "purchase_id",
            String,
            "Order id (purchase id), e.g. ABCD1234.",
        )],
    },
    ActionDef {
        key: "stop-rebilling",
        function: "stopRebilling",
        summary: "Cancel the subscription or instalment payments of an order.",
        tag: "Purchases",
        effect: Write,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "Order id (purchase id), e.g. ABCD1234.",
            ),
            opt("force", Flag, "Y: stop at once even within a minimum term."),
            opt(
                "ignore_refund_possibility",
                Flag,
                "Y: end at the end of the paid period even when a refund is still possible.",
            ),
        ],
    },
    ActionDef {
        key: "update-purchase",
        function: "updatePurchase",
        summary: "Change tracking data, the custom field or the next payment date of an order.",
        tag: "Purchases",
        effect: Write,
        paging: None,
        params: &[
            req("purchase_id", String, "Order to change."),
            opt(
                "data",
                Object(UPDATE_PURCHASE_DATA),
                "Order fields to change.",
            ),
        ],
    },
    ActionDef {
        key: "update-service-proof-request",
        function: "updateServiceProofRequest",
        summary: "Answer a proof-of-service request with proof, or accept the refund.",
        tag: "Service Proofs",
        effect: Write,
        paging: None,
        params: &[
            req(
                "service_proof_id",
                Integer,
                "Id of the proof-of-service request.",
            ),
            req(
                "data",
                Object(UPDATE_SERVICE_PROOF_REQUEST_DATA),
                "Your answer.",
            ),
            opt(
                "files",
                Array(&PROOF_FILE),
                "Files proving the service, as download URLs.",
            ),
        ],
    },
    ActionDef {
        key: "validate-license-key",
        function: "validateLicenseKey",
        summary: "Check a license key against an order.",
        tag: "Licenses",
        effect: Read,
        paging: None,
        params: &[
            req(
                "purchase_id",
                String,
                "Order id (purchase id), e.g. ABCD1234.",
            ),
            req("license_key", String, "The license key to check."),
        ],
    },
];

const ADDON_CHANGE_FIELDS: &[Param] = &[
    req("product_id", Integer, "Id of the product."),
    opt(
        "amount",
        Number,
        "Rebilling amount of the add-on subscription.",
    ),
    opt("quantity", Integer, "Quantity of the add-on."),
    opt(
        "is_quantity_editable_after_purchase",
        Flag,
        "Y: the buyer may change the quantity after the purchase.",
    ),
];

const ADDON_CHANGE: ParamType = Object(ADDON_CHANGE_FIELDS);

const BILLING_ON_DEMAND_ADDON_FIELDS: &[Param] = &[
    opt("product_id", String, "Id of the product."),
    opt(
        "first_amount",
        Number,
        "Price, or amount of the first payment.",
    ),
    opt("other_amounts", Number, "Amount of each later payment."),
    opt("single_amount", Number, "Price for a single payment."),
    opt("quantity", Integer, "Quantity of the add-on."),
    opt("currency", String, "Three-letter currency code, e.g. EUR."),
    opt(
        "is_quantity_editable_after_purchase",
        Flag,
        "Y: the buyer may change the quantity after the purchase.",
    ),
    opt(
        "product_country",
        String,
        "Two-letter country code of the product.",
    ),
];

const BILLING_ON_DEMAND_ADDON: ParamType = Object(BILLING_ON_DEMAND_ADDON_FIELDS);

const CREATE_BILLING_ON_DEMAND_PAYMENT_PLAN: &[Param] = &[
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
    opt("upgrade_type", String, "upgrade or downgrade.").one_of(&["upgrade", "downgrade"]),
];

const CREATE_BILLING_ON_DEMAND_SETTINGS: &[Param] = &[
    opt("voucher_code", String, "Discount code to apply."),
    opt("quantity", Integer, "Quantity of the main product."),
    opt(
        "product_country",
        String,
        "Two-letter country code of the product.",
    ),
];

const ORDER_TRACKING: &[Param] = &[
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
    opt("campaignkey", String, "Campaign key of the affiliate."),
    opt("trackingkey", String, "Your tracking key."),
];

const LIST_PURCHASES_SEARCH: &[Param] = &[
    opt(
        "role",
        List,
        "Your role in the sale: vendor, affiliate, other.",
    ),
    opt("product_id", List, "Product ids."),
    opt("first_name", String, "First name."),
    opt("last_name", String, "Last name."),
    opt("email", String, "E-mail address."),
    opt(
        "has_affiliate",
        Flag,
        "Y: only with an affiliate; N: only without.",
    ),
    opt(
        "affiliate_name",
        String,
        "Digistore24 id (name) of the affiliate.",
    ),
    opt("order_type", String, "live or test orders.").one_of(&["live", "test"]),
    opt(
        "pay_method",
        List,
        "Payment methods, e.g. paypal, creditcard.",
    ),
    opt(
        "billing_type",
        List,
        "Billing types, e.g. single_payment, subscription, installment.",
    ),
    opt(
        "transaction_type",
        List,
        "Transaction types, e.g. payment, refund, chargeback.",
    ),
    opt("currency", String, "Currency code."),
    opt("purchase_id", List, "Order ids."),
];

const LIST_SERVICE_PROOF_REQUESTS_SEARCH: &[Param] = &[
    opt("purchase_id", String, "Order id."),
    opt("product_id", Integer, "Product id."),
    opt("delivery_type", String, "Kind of delivery.")
        .one_of(&["digital", "shipping", "service", "event", "download"]),
    opt("approval_status", String, "Approval status.")
        .one_of(&["new", "pending", "approved", "rejected"]),
    opt("request_status", String, "Request status.").one_of(&[
        "pending",
        "proof_provided",
        "exec_refund",
    ]),
];

const LIST_TRANSACTIONS_SEARCH: &[Param] = &[
    opt(
        "role",
        List,
        "Your role in the sale: vendor, affiliate, other.",
    ),
    opt("product_id", List, "Product ids."),
    opt("first_name", String, "First name."),
    opt("last_name", String, "Last name."),
    opt("email", String, "E-mail address."),
    opt(
        "has_affiliate",
        Flag,
        "Y: only with an affiliate; N: only without.",
    ),
    opt(
        "affiliate_name",
        String,
        "Digistore24 id (name) of the affiliate.",
    ),
    opt(
        "pay_method",
        List,
        "Payment methods, e.g. paypal, creditcard.",
    ),
    opt(
        "billing_type",
        List,
        "Billing types, e.g. single_payment, subscription, installment.",
    ),
    opt(
        "transaction_type",
        List,
        "Transaction types, e.g. payment, refund, chargeback.",
    ),
    opt("currency", String, "Currency code."),
    opt("purchase_id", List, "Order ids."),
];

const UPDATE_PURCHASE_DATA: &[Param] = &[
    opt("tracking_param", String, "Your tracking key."),
    opt("custom", String, "The custom field of the order."),
    opt(
        "unlock_invoices",
        Flag,
        "Y: let the buyer open invoices and order details again.",
    ),
    opt(
        "next_payment_at",
        Date,
        "Postpone the next payment to this date (cannot bring it forward).",
    ),
];

const UPDATE_SERVICE_PROOF_REQUEST_DATA: &[Param] = &[
    req(
        "request_status",
        String,
        "proof_provided (with files) or exec_refund.",
    )
    .one_of(&["proof_provided", "exec_refund"]),
    opt("message", String, "Explanation for Digistore24."),
];

const PROOF_FILE_FIELDS: &[Param] = &[
    req("url", String, "Public download URL of the file."),
    opt("filename", String, "File name to show."),
];

const PROOF_FILE: ParamType = Object(PROOF_FILE_FIELDS);
