//! Every integration test of the payment domain in one binary (one link instead of one per file).
//! Each file beside this one is a module; `common` holds what they share.

mod common;

mod bad_input;
mod binary;
mod flight;
mod hostile;
mod ingest;
mod noninterference;
mod postgres_source;
mod query;
mod query_plan;
mod registration;
mod standard_services;
