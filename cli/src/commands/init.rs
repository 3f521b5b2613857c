//! `mesh init`: what a mesh without a company PKI or IdP needs before its
//! services start (compose's init service runs it): a CA and one TLS
//! certificate per service (its key, with --keys-dir, in a folder of its
//! own), the local issuer's key (in a folder of its own,
//! for the registry alone) and its JWKS, and the key
//! every domain derives consumers' pseudonyms from, and a password for the
//! PostgreSQL server of compose's `postgres` profile. An
//! existing folder is left as it is unless `--force`.

use anyhow::{Context, Result, bail};
use mesh_grpc::auth::issuer::LocalIssuer;
use mesh_grpc::certs::{self, ServiceCert};

/// Flags of `mesh init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The folder to write to (made with mode 0700; keys get 0600).
    #[arg(long, env = "MESH_INIT_DIR")]
    pub dir: std::path::PathBuf,
    /// A service to make a certificate for: NAME (valid for NAME, localhost
    /// and 127.0.0.1) or NAME=HOST,HOST...; repeat for each.
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// Make a new CA and certificates even if the folder has them.
    #[arg(long)]
    pub force: bool,
    /// Where the local issuer's signing key goes [default: <dir>/issuer]:
    /// somewhere only the registry mounts, so no domain can sign tokens.
    /// Its public JWKS is copied to <dir>/jwks.json for every service.
    #[arg(long, env = "MESH_INIT_ISSUER_DIR")]
    pub issuer_dir: Option<std::path::PathBuf>,
    /// Put each service's TLS key in a folder of its own, <keys-dir>/<name>/key.pem,
    /// so that each container mounts its own key alone [default: beside the
    /// certificates, <dir>/<name>-key.pem].
    #[arg(long, env = "MESH_INIT_KEYS_DIR")]
    pub keys_dir: Option<std::path::PathBuf>,
}

/// Creates the CA, the certificates and the issuer in `args.dir`.
pub(crate) fn run(args: &InitArgs) -> Result<()> {
    if args.services.is_empty() {
        bail!("name at least one service to make a certificate for, e.g. --service registry");
    }
    let services: Vec<ServiceCert> = args.services.iter().map(|s| parse(s)).collect::<Result<_>>()?;
    let present = args.dir.join("ca.pem").exists()
        && services.iter().all(|s| args.dir.join(format!("{}.pem", s.name)).exists());
    if present && !args.force {
        eprintln!(
            "{} already holds a CA and every certificate asked for; kept (--force makes new ones)",
            args.dir.display()
        );
    } else {
        let made = certs::create(&args.dir, &services)?;
        for (service, files) in services.iter().zip(&made) {
            let key = match &args.keys_dir {
                Some(keys) => move_key(&files.key, &keys.join(&service.name).join("key.pem"))?,
                None => files.key.clone(),
            };
            eprintln!(
                "certificate for {} ({}), key {}",
                service.name,
                service.hosts.join(", "),
                key.display()
            );
        }
    }
    let issuer_dir = args.issuer_dir.clone().unwrap_or_else(|| args.dir.join("issuer"));
    let issuer = LocalIssuer::open_or_create(&issuer_dir)?;
    let jwks = args.dir.join("jwks.json");
    std::fs::copy(issuer.jwks_file(), &jwks).with_context(|| format!("cannot write {}", jwks.display()))?;
    let pseudonym_key = args.dir.join("pseudonym.key");
    mesh_grpc::private_files::create_secret(&pseudonym_key)
        .with_context(|| format!("cannot write {}", pseudonym_key.display()))?;
    let database_password = args.dir.join("database-password");
    mesh_grpc::private_files::create_secret(&database_password)
        .with_context(|| format!("cannot write {}", database_password.display()))?;
    eprintln!("CA: {}", args.dir.join("ca.pem").display());
    eprintln!("pseudonym key (every domain): {}", pseudonym_key.display());
    eprintln!("issuer key (the registry alone): {}", issuer_dir.display());
    eprintln!("issuer JWKS (every service): {}", jwks.display());
    eprintln!("database password (the postgres profile): {}", database_password.display());
    Ok(())
}

/// Moves the key at `from` to `to` (mode 0600, its folder 0700); where it went.
fn move_key(from: &std::path::Path, to: &std::path::Path) -> Result<std::path::PathBuf> {
    let key = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    mesh_grpc::private_files::write_private(to, &key)
        .with_context(|| format!("cannot write {}", to.display()))?;
    std::fs::remove_file(from).with_context(|| format!("cannot remove {}", from.display()))?;
    Ok(to.to_owned())
}

/// `NAME` (valid for NAME, localhost and 127.0.0.1) or `NAME=HOST,HOST...`.
fn parse(text: &str) -> Result<ServiceCert> {
    let (name, hosts) = match text.split_once('=') {
        Some((name, hosts)) => (name, hosts.split(',').map(str::trim).map(str::to_owned).collect()),
        None => (text, vec![text.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()]),
    };
    let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !safe || hosts.iter().any(String::is_empty) {
        bail!("`{text}` is not NAME or NAME=HOST[,HOST...] (a name of letters, digits, - and _)");
    }
    Ok(ServiceCert { name: name.to_owned(), hosts })
}
