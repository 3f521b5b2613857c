//! The flags that name a service's PostgreSQL database.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use std::time::Duration;

/// Where a service keeps its state on PostgreSQL instead of its SQLite file.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// Keep the data on this PostgreSQL server instead of the SQLite file,
    /// e.g. `postgres://mesh:PASSWORD@db.internal:5432/mesh?sslmode=require`.
    /// Each service uses a schema of its own. A server off this machine
    /// must be reached with TLS (`sslmode=require`).
    #[arg(long, env = "MESH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// File holding the database password (mode 0600), so that it stays out
    /// of the URL, the environment and the process list.
    #[arg(long, env = "MESH_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,

    /// PEM CA bundle the database server's certificate must chain to
    /// [default: the public web roots].
    #[arg(long, env = "MESH_DATABASE_CA")]
    pub database_ca: Option<PathBuf>,

    /// Connections to the database at most.
    #[arg(long, env = "MESH_DATABASE_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=1000).map(|n| n as usize))]
    pub database_pool_size: usize,

    /// Longest a statement may run unless the caller sets its own (a scan
    /// runs under the query budget; a load has none).
    #[arg(long, env = "MESH_DATABASE_STATEMENT_TIMEOUT",
          default_value = "60s", value_parser = humantime_duration)]
    pub database_statement_timeout: Duration,

    /// Longest a new connection may take.
    #[arg(long, env = "MESH_DATABASE_CONNECT_TIMEOUT",
          default_value = "10s", value_parser = humantime_duration)]
    pub database_connect_timeout: Duration,

    /// Talk to a database off this machine without TLS: its password and
    /// every row would cross the network in clear. Only for a network that
    /// is itself encrypted.
    #[arg(long, env = "MESH_DATABASE_INSECURE_PLAINTEXT")]
    pub database_insecure_plaintext: bool,
}

impl Default for DatabaseArgs {
    fn default() -> Self {
        Self {
            database_url: None,
            database_password_file: None,
            database_ca: None,
            database_pool_size: 16,
            database_statement_timeout: Duration::from_secs(60),
            database_connect_timeout: Duration::from_secs(10),
            database_insecure_plaintext: false,
        }
    }
}

impl DatabaseArgs {
    /// The arguments for the database at `url`, the rest by default.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self { database_url: Some(url.into()), ..Self::default() }
    }
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(parsed) if parsed.is_zero() => Err("must be more than zero".into()),
        Ok(parsed) => Ok(parsed),
        Err(e) => Err(format!("`{text}` is not a duration like 30s or 2m: {e}")),
    }
}

/// The password in `path`, refused if others may read the file.
pub(crate) fn read_password(path: &std::path::Path) -> Result<String, crate::DbError> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |e: std::io::Error| {
        crate::DbError::Config(format!("cannot read --database-password-file {}: {e}", path.display()))
    };
    let mode = std::fs::metadata(path).map_err(unreadable)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(crate::DbError::Config(format!(
            "--database-password-file {} may be read by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    let password = std::fs::read_to_string(path).map_err(unreadable)?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(crate::DbError::Config(format!("--database-password-file {} is empty", path.display())));
    }
    Ok(password)
}

/// `host:port/dbname` of `config`, without user or password, for logs and messages.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::read_password;

    #[test]
    fn a_password_file_others_may_read_or_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            read_password(&path).unwrap_err().to_string(),
            format!(
                "database configuration: --database-password-file {} may be read by others (mode 644); chmod \
                 600 it",
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password(&path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            read_password(&path).unwrap_err().to_string(),
            format!("database configuration: --database-password-file {} is empty", path.display())
        );
    }
}
