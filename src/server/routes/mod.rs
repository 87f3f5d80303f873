//! The proxy's own routes (everything else is pass-through).

pub mod health;
