//! Buyers, affiliates and commissions.

use super::prelude::*;

pub(super) const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "get-affiliate-commission",
        function: "getAffiliateCommission",
        summary: "Show an affiliate's commission settings for some or all products.",
        tag: "Affiliates",
        effect: Read,
        paging: None,
        params: &[
            req(
                "affiliate_id",
                String,
                "Id, name or e-mail of the affiliate.",
            ),
            opt("product_ids", List, "Products to show, or 'all' (default)."),
        ],
    },
    ActionDef {
        key: "get-affiliate-for-email",
        function: "getAffiliateForEmail",
        summary: "Show the affiliate assigned to an e-mail address.",
        tag: "Affiliates",
        effect: Read,
        paging: None,
        params: &[req(
            "email",
            String,
            "E-mail address of the (future) buyer.",
        )],
    },
    ActionDef {
        key: "get-buyer",
        function: "getBuyer",
        summary: "Fetch one buyer (customer) with contact and address data.",
        tag: "Buyers",
        effect: Read,
        paging: None,
        params: &[req(
            "buyer_id",
            Integer,
            "Id of the buyer (as returned by get-purchase).",
        )],
    },
    ActionDef {
        key: "get-customer-to-affiliate-buyer-details",
        function: "getCustomerToAffiliateBuyerDetails",
        summary: "Show customer-to-affiliate programme details for the buyers of some orders.",
        tag: "Affiliates",
        effect: Read,
        paging: None,
        params: &[req(
            "purchase_id",
            List,
            "Order id, or several (comma-separated or an array).",
        )],
    },
    ActionDef {
        key: "get-referring-affiliate",
        function: "getReferringAffiliate",
        summary: "Show which partner referred an affiliate.",
        tag: "Affiliates",
        effect: Read,
        paging: None,
        params: &[req("affiliate_id", String, "The affiliate to look up.")],
    },
    ActionDef {
        key: "list-buyers",
        function: "listBuyers",
        summary: "List buyers (customers), page by page.",
        tag: "Buyers",
        effect: Read,
        paging: Some(Paging {
            items_field: "items",
        }),
        params: &[
            opt("page_no", Integer, "Page number, starting at 1."),
            opt("page_size", Integer, "Items per page."),
        ],
    },
    ActionDef {
        key: "list-commissions",
        function: "listCommissions",
        summary: "List commission amounts earned, page by page.",
        tag: "Commissions",
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
            opt("page_size", Integer, "Items per page (0: all)."),
            opt("transaction_type", List, "Transaction types to include."),
            opt("commission_type", List, "Commission types to include."),
            opt("purchase_id", String, "Only this order."),
        ],
    },
    ActionDef {
        key: "set-affiliate-for-email",
        function: "setAffiliateForEmail",
        summary: "Assign an affiliate (with campaign and tracking keys) to a future buyer e-mail address.",
        tag: "Affiliates",
        effect: Write,
        paging: None,
        params: &[
            req("email", String, "E-mail address of the future buyer."),
            req(
                "affiliate",
                String,
                "Digistore24 id (name) of the affiliate.",
            ),
            opt("campaignkey", String, "Campaign key of the affiliate."),
            opt("trackingkey", String, "Your tracking key."),
            opt(
                "click_id",
                String,
                "Affiliate's click id for server-to-server postbacks.",
            ),
        ],
    },
    ActionDef {
        key: "set-referring-affiliate",
        function: "setReferringAffiliate",
        summary: "Record which partner referred an affiliate.",
        tag: "Affiliates",
        effect: Write,
        paging: None,
        params: &[
            req(
                "referrer_id",
                String,
                "The partner who brought the affiliate.",
            ),
            req("affiliate_id", String, "The affiliate who was referred."),
            opt(
                "commission",
                Number,
                "Share of the affiliate commission paid to the referring partner, in percent.",
            ),
        ],
    },
    ActionDef {
        key: "update-affiliate-commission",
        function: "updateAffiliateCommission",
        summary: "Change an affiliate's commission or approval for some or all products.",
        tag: "Affiliates",
        effect: Write,
        paging: None,
        params: &[
            req("affiliate_id", String, "Id or name of the affiliate."),
            req("product_ids", List, "Products to change, or 'all'."),
            opt(
                "data",
                Object(UPDATE_AFFILIATE_COMMISSION_DATA),
                "Commission changes.",
            ),
        ],
    },
    ActionDef {
        key: "update-buyer",
        function: "updateBuyer",
        summary: "Change a buyer's contact and address data.",
        tag: "Buyers",
        effect: Write,
        paging: None,
        params: &[
            req(
                "buyer_id",
                Integer,
                "Buyer to change (id as returned by get-purchase).",
            ),
            opt(
                "data",
                Object(UPDATE_BUYER_DATA),
                "Contact fields to change.",
            ),
        ],
    },
    ActionDef {
        key: "validate-affiliate",
        function: "validateAffiliate",
        summary: "Check whether an affiliate is approved to promote some products.",
        tag: "Affiliates",
        effect: Read,
        paging: None,
        params: &[
            req(
                "affiliate_name",
                String,
                "Digistore24 id (name) of the affiliate.",
            ),
            req(
                "product_ids",
                List,
                "One or more product ids of the same vendor.",
            ),
        ],
    },
];

const UPDATE_AFFILIATE_COMMISSION_DATA: &[Param] = &[
    opt("commission_rate", Number, "Commission in percent."),
    opt("commission_fix", Number, "Fixed commission amount."),
    opt("commission_currency", String, "Currency of commission_fix."),
    opt(
        "approval_status",
        String,
        "Approval status of the affiliation.",
    )
    .one_of(&["new", "approved", "rejected", "pending"]),
];

const UPDATE_BUYER_DATA: &[Param] = &[
    opt("email", String, "E-mail address."),
    opt("first_name", String, "First name."),
    opt("last_name", String, "Last name."),
    opt("salutation", String, "Salutation: empty, M or F.").one_of(&["", "M", "F"]),
    opt("title", String, "Title, e.g. Dr."),
    opt("company", String, "Company name."),
    opt("street_name", String, "Street."),
    opt("street_number", String, "House number."),
    opt(
        "phone_number",
        String,
        "Phone number (an empty string clears it).",
    ),
    opt("city", String, "City."),
    opt("zipcode", String, "Postal code."),
    opt("state", String, "State or province."),
    opt("country", String, "Two-letter ISO country code."),
];
