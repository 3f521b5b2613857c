//! `payment`: runs the payment domain as its own process (`payment --help` lists
//! its flags).

fn main() -> Result<(), mesh_runtime::DomainError> {
    payment::domain().main(env!("CARGO_PKG_VERSION"))
}
