//! `mesh whoami`: the principal and roles the registry sees for the token
//! calls carry.

use anyhow::Result;

use crate::cli::Cli;
use crate::registry::Registry;
use crate::style::safe;

/// Asks the registry who is calling and prints it.
pub(crate) async fn run(cli: &Cli) -> Result<()> {
    let me = Registry::of(cli)?.who_am_i().await?;
    println!("subject: {}", safe(&me.subject));
    println!("issuer:  {}", safe(if me.issuer.is_empty() { "(none)" } else { &me.issuer }));
    let roles = if me.roles.is_empty() { "(none)".to_owned() } else { me.roles.join(", ") };
    println!("roles:   {}", safe(&roles));
    Ok(())
}
