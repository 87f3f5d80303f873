//! The proxy's own routes (everything else is pass-through).

pub mod actions;
pub mod connections;
pub mod health;
pub mod openapi;
