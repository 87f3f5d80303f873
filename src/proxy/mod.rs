//! The pass-through route: any path that is not one of the proxy's own goes
//! to `{base_url}/{function}[/…]` on the chosen connection, with the stored
//! key injected and bodies streamed both ways.

pub mod exchange;
mod forward;
pub mod headers;
pub mod path;
pub mod replay;

pub use forward::{pass_through, target_url};
