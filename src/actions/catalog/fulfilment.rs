//! Deliveries (shipping) and e-tickets.

use super::prelude::*;

pub(super) const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "create-eticket",
        function: "createEticket",
        summary: "Issue free e-tickets for an event to a buyer.",
        tag: "E-Tickets",
        effect: Write,
        paging: None,
        params: &[
            req("buyer", Object(CREATE_ETICKET_BUYER), "Ticket holder."),
            req("product_id", String, "Product (event) the tickets are for."),
            req(
                "location_id",
                String,
                "Location id (see list-eticket-locations).",
            ),
            req(
                "template_id",
                String,
                "Template id (see list-eticket-templates).",
            ),
            req("date", Date, "Date of the event."),
            opt("days", Integer, "How many days the event lasts."),
            opt("note", String, "Note printed on the ticket, e.g. the time."),
            opt("count", Integer, "How many tickets to issue."),
        ],
    },
    ActionDef {
        key: "get-delivery",
        function: "getDelivery",
        summary: "Fetch one delivery (shipment) with address and tracking data.",
        tag: "Deliveries",
        effect: Read,
        paging: None,
        params: &[
            req("delivery_id", Integer, "Id of the delivery."),
            opt(
                "set_in_progress",
                Flag,
                "Y: also mark the delivery as in progress.",
            ),
        ],
    },
    ActionDef {
        key: "get-eticket",
        function: "getEticket",
        summary: "Fetch one e-ticket.",
        tag: "E-Tickets",
        effect: Read,
        paging: None,
        params: &[req(
            "eticket_id",
            String,
            "Id or serial number of the e-ticket.",
        )],
    },
    ActionDef {
        key: "get-eticket-settings",
        function: "getEticketSettings",
        summary: "Show the e-ticket templates and event locations of the account.",
        tag: "E-Tickets",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-deliveries",
        function: "listDeliveries",
        summary: "List deliveries (shipments) to process or track.",
        tag: "Deliveries",
        effect: Read,
        paging: None,
        params: &[opt(
            "search",
            Object(LIST_DELIVERIES_SEARCH),
            "Filters, sent as search[field]=value.",
        )],
    },
    ActionDef {
        key: "list-eticket-locations",
        function: "listEticketLocations",
        summary: "List the event locations for e-tickets.",
        tag: "E-Tickets",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-eticket-templates",
        function: "listEticketTemplates",
        summary: "List the e-ticket templates.",
        tag: "E-Tickets",
        effect: Read,
        paging: None,
        params: &[],
    },
    ActionDef {
        key: "list-etickets",
        function: "listEtickets",
        summary: "List e-tickets matching a search.",
        tag: "E-Tickets",
        effect: Read,
        paging: None,
        params: &[opt(
            "search",
            Object(LIST_ETICKETS_SEARCH),
            "Filters, sent as search[field]=value.",
        )],
    },
    ActionDef {
        key: "update-delivery",
        function: "updateDelivery",
        summary: "Mark a delivery as shipped, cancelled or in progress and add tracking numbers.",
        tag: "Deliveries",
        effect: Write,
        paging: None,
        params: &[
            req("delivery_id", Integer, "Id of the delivery."),
            opt("notify_via_email", Flag, "Y: tell the buyer by e-mail."),
            opt(
                "data",
                Object(UPDATE_DELIVERY_DATA),
                "Delivery status changes.",
            ),
            opt(
                "tracking",
                Array(&TRACKING_ENTRY),
                "Tracking entries, one per parcel.",
            ),
        ],
    },
    ActionDef {
        key: "validate-eticket",
        function: "validateEticket",
        summary: "Check an e-ticket at the entrance and mark it as used.",
        tag: "E-Tickets",
        effect: Write,
        paging: None,
        params: &[
            req("eticket_id", String, "Id or serial number of the e-ticket."),
            req(
                "template_id",
                List,
                "Template id(s) the ticket must belong to.",
            ),
            req(
                "location_id",
                List,
                "Location id(s) the ticket must belong to.",
            ),
            opt(
                "date",
                List,
                "Date or dates to check against (default today).",
            ),
            opt(
                "seperator",
                String,
                "Separator used in the answer message (name spelled as the API spells it).",
            ),
        ],
    },
];

const CREATE_ETICKET_BUYER: &[Param] = &[
    opt("email", String, "E-mail address."),
    opt("title", String, "Title, e.g. Dr."),
    opt("salutation", String, "m or f.").one_of(&["m", "f"]),
    opt("last_name", String, "Last name."),
    opt("first_name", String, "First name."),
];

const LIST_DELIVERIES_SEARCH: &[Param] = &[
    opt("purchase_id", String, "Order id."),
    opt("from", Date, "Earliest date."),
    opt("to", Date, "Latest date."),
    opt(
        "type",
        List,
        "Delivery types, e.g. request,partial_delivery.",
    )
    .one_of(&[
        "request",
        "in_progress",
        "delivery",
        "partial_delivery",
        "return",
        "cancel",
    ]),
    opt(
        "same_address_as",
        String,
        "Delivery id: only deliveries to the same address.",
    ),
    opt(
        "is_processed",
        Flag,
        "Y: only processed deliveries; N: only unprocessed ones.",
    ),
    opt(
        "is_test_order",
        Flag,
        "Y: only test orders; N: only real ones.",
    ),
];

const LIST_ETICKETS_SEARCH: &[Param] = &[
    opt("owner_id", List, "Vendor ids whose tickets to find."),
    opt("purchase_id", String, "Order id."),
    opt("first_name", String, "First name."),
    opt("last_name", String, "Last name."),
    opt("email", String, "E-mail address."),
    opt("template_id", List, "Template ids."),
    opt("location_id", List, "Location ids."),
    opt(
        "date",
        Date,
        "Date the ticket is valid on, e.g. 2017-12-31 or 'today'.",
    ),
];

const UPDATE_DELIVERY_DATA: &[Param] = &[
    opt("type", String, "New delivery status.").one_of(&[
        "request",
        "in_progress",
        "delivery",
        "partial_delivery",
        "return",
        "cancel",
    ]),
    opt(
        "is_shipped",
        Flag,
        "Y: shipped (type becomes delivery); N: cancelled.",
    ),
    opt(
        "quantity_delivered",
        Integer,
        "Set the delivered quantity to this number.",
    ),
    opt(
        "add_quantity_delivered",
        Integer,
        "Add this number to the delivered quantity.",
    ),
    opt(
        "is_shipped_by_reseller_from",
        String,
        "Your code, if you ship as fulfilment centre for a reseller.",
    ),
];

const TRACKING_ENTRY_FIELDS: &[Param] = &[
    opt(
        "parcel_service",
        String,
        "Key of the parcel service, e.g. dhl.",
    ),
    opt("tracking_id", String, "Tracking number of the parcel."),
    opt("expect_delivery_at", Date, "Expected delivery date."),
    opt("quantity", Integer, "Items in this parcel (default all)."),
    opt(
        "operation",
        String,
        "create_or_update (default) or delete this tracking entry.",
    )
    .one_of(&["create_or_update", "delete"]),
];

const TRACKING_ENTRY: ParamType = Object(TRACKING_ENTRY_FIELDS);
