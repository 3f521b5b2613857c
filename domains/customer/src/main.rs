//! `customer`: runs the customer domain as its own process (`customer --help` lists
//! its flags).

fn main() -> Result<(), mesh_runtime::DomainError> {
    customer::domain().main(env!("CARGO_PKG_VERSION"))
}
