//! Pass-through helpers below the HTTP edge: path normalisation, header
//! rules, the checked upstream URI, and request bodies that are counted and
//! kept for a replay. The route itself is `server::routes::passthrough`.

pub mod headers;
pub mod limit;
pub mod path;
pub mod replay;
mod target;

pub use target::{LeavesBase, target_url};
