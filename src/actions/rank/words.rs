//! The vocabulary of ranking: words to ignore, plain words mapped to the catalog's words,
//! and a small plural stemmer.

/// Words that carry no meaning for ranking.
pub(super) const STOPWORDS: &[&str] = &[
    "a", "an", "the", "to", "for", "of", "my", "our", "in", "on", "by", "with", "and", "or", "i",
    "please", "from", "is", "are", "be", "it", "this", "that", "which", "what", "how", "do", "can",
    "want", "some", "one", "into",
];

/// Plain words mapped to the words the catalog uses (after stemming).
pub(super) const SYNONYMS: &[(&str, &[&str])] = &[
    ("customer", &["buyer"]),
    ("client", &["buyer"]),
    ("coupon", &["voucher"]),
    ("discount", &["voucher", "coupon"]),
    ("promo", &["voucher"]),
    ("order", &["purchase"]),
    ("sale", &["purchase", "stats"]),
    ("subscription", &["rebilling"]),
    ("recurring", &["rebilling"]),
    ("rebill", &["rebilling"]),
    ("cancel", &["stop", "delete"]),
    ("resume", &["start"]),
    ("reimburse", &["refund"]),
    ("webhook", &["ipn"]),
    ("notification", &["ipn"]),
    ("ticket", &["eticket"]),
    ("shipment", &["delivery"]),
    ("shipping", &["delivery"]),
    ("parcel", &["delivery"]),
    ("fulfilment", &["delivery"]),
    ("fulfillment", &["delivery"]),
    ("charge", &["billing", "payment"]),
    ("checkout", &["form", "buy"]),
    ("orderform", &["order", "form"]),
    ("link", &["url"]),
    ("apikey", &["api", "key"]),
    ("statistic", &["stats"]),
    ("report", &["stats"]),
    ("revenue", &["stats"]),
    ("item", &["product"]),
    ("earning", &["commission"]),
    ("partner", &["affiliate"]),
    ("mail", &["email"]),
    ("receipt", &["invoice"]),
    ("add", &["create"]),
    ("new", &["create"]),
    ("make", &["create"]),
    ("change", &["update"]),
    ("edit", &["update"]),
    ("modify", &["update"]),
    ("set", &["update"]),
    ("remove", &["delete"]),
    ("all", &["list"]),
    ("show", &["get", "list"]),
    ("fetch", &["get"]),
    ("find", &["get", "list"]),
    ("search", &["list"]),
    ("lookup", &["get"]),
    ("view", &["get"]),
    ("detail", &["get"]),
    ("verify", &["validate"]),
    ("check", &["validate"]),
    ("send", &["resend"]),
    ("price", &["payment", "plan"]),
    ("pricing", &["payment", "plan"]),
    ("folder", &["group"]),
    ("picture", &["image"]),
    ("photo", &["image"]),
    ("me", &["user"]),
    ("account", &["user"]),
    ("whoami", &["user"]),
    ("health", &["ping"]),
];

/// Lower case, and plurals folded to the singular (`purchases` → `purchase`).
pub(super) fn stem(word: &str) -> String {
    let w = word.to_lowercase();
    if let Some(base) = w.strip_suffix("ies").filter(|b| b.len() > 2) {
        return format!("{base}y");
    }
    match w.strip_suffix('s') {
        Some(base) if base.len() > 2 && !base.ends_with('s') => base.to_string(),
        _ => w,
    }
}

/// The stemmed words of a text.
pub(super) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(stem)
}
