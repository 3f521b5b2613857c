//! The sixth floor: a product served over gRPC, REST and Arrow Flight, registered in the
//! catalog, under the agreements the registry holds, with every read
//! recorded, and the process that hosts a domain.

pub mod audit;
mod audit_service;
pub mod config;
pub mod flight;
pub mod governance;
pub mod hosting;
mod meters;
pub mod output;
pub mod product;
mod registration;
mod registries;
pub mod replicas;
pub mod rest;
pub mod service;
pub mod source;
