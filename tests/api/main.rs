//! One integration-test binary; this file only declares the modules.

mod access;
mod actions;
mod binary;
mod cli;
mod crash;
mod credentials;
mod fake_ds24;
mod fault_matrix;
mod faults;
mod hardening;
mod helpers;
mod ipn;
mod ledger;
mod openapi;
mod operations;
mod passthrough;
mod renewal;
mod sandbox;
mod sandbox_catalog;
mod ssrf;
