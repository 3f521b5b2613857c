//! Every end-to-end test in one binary (one link instead of one per file).
//! Each file beside this one is a module; `common` holds what they share.

mod common;

mod access;
mod adversary;
mod arrow_clients;
mod catalog;
mod clients;
mod commands;
mod compose;
mod events;
mod exchange;
mod governed;
mod hostile;
mod login;
mod merchant;
mod methods;
mod metrics;
mod namespaces;
mod outages;
mod postgres;
mod product_files;
mod replicas;
mod rest;
mod sql;
mod standards;
mod tls;
mod tokens;
mod traces;
mod up;
mod usage;
