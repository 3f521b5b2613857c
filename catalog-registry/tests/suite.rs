//! Every integration test of the registry in one binary (one link instead of one per file).
//! Each file beside this one is a module; `common` holds what they share.

mod common;

mod agreements;
mod authorization;
mod bad_input;
mod crash;
mod events;
mod lifecycle;
mod listing;
mod quotas;
mod register;
mod replicas;
mod tools;
mod web;
mod webhooks;
