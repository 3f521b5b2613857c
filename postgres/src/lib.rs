//! PostgreSQL for the mesh's services. A [`Database`] is a pool of
//! connections (deadpool over tokio-postgres, binary protocol) to one
//! schema of one server, with its own small runtime so that blocking code
//! (a scan on a blocking thread, a load) can use it from anywhere, a
//! statement timeout on every connection, TLS by rustls, and the service's
//! SQL migrations applied once, in order, under an advisory lock.

mod args;
mod error;
mod migrate;
#[cfg(feature = "test-support")]
pub mod testing;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use args::DatabaseArgs;
pub use deadpool_postgres::{self, Object as Connection, Pool};
pub use error::{DbError, Result};
pub use migrate::Migration;
pub use tokio_postgres;

/// How long a caller waits for a free connection, and for a new one.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// A pool of connections to one schema of a PostgreSQL database; clones
/// share it.
#[derive(Clone)]
pub struct Database(Arc<Inner>);

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    runtime: OwnRuntime,
    schema: String,
    location: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("location", &self.0.location).finish_non_exhaustive()
    }
}

/// The runtime the pool's connections live on, shut down without waiting
/// when the last handle goes (dropping a runtime may not block).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Database {
    /// Connects to the database `args` name (blocking), creates `schema`
    /// if needed and applies `migrations` to it. Every connection reads
    /// and writes `schema` only (its search path) and has `args`'s
    /// statement timeout.
    pub fn connect(args: &DatabaseArgs, schema: &str, migrations: &[Migration]) -> Result<Self> {
        let url =
            args.database_url.as_deref().ok_or_else(|| DbError::Config("no --database-url given".into()))?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| DbError::Config(format!("--database-url is not a PostgreSQL URL: {e}")))?;
        let location = args::describe(&config);
        if let Some(path) = &args.database_password_file {
            config.password(args::read_password(path)?);
        }
        let tls = tls::connector(&config, args)?;
        check_schema_name(schema)?;
        config.options(format!(
            "-c search_path={schema} -c statement_timeout={} -c idle_in_transaction_session_timeout=60000",
            args.database_statement_timeout.as_millis()
        ));
        if config.get_application_name().is_none() {
            config.application_name(format!("mesh {schema}"));
        }
        config.connect_timeout(args.database_connect_timeout);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mesh-postgres")
            .enable_all()
            .build()
            .map_err(|e| DbError::Config(format!("cannot start the database runtime: {e}")))?;
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tls.clone(),
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(args.database_pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(args.database_connect_timeout))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| DbError::Config(format!("cannot make the connection pool: {e}")))?;
        let database = Self(Arc::new(Inner {
            pool,
            config,
            tls,
            runtime: OwnRuntime(Some(runtime)),
            schema: schema.to_owned(),
            location,
        }));
        let owned: Vec<Migration> = migrations.to_vec();
        let schema = database.0.schema.clone();
        database.run(move |pool| async move { migrate::apply(&pool, &schema, &owned).await })?;
        tracing::info!(database = %database.0.location, schema = %database.0.schema, "database ready");
        Ok(database)
    }

    /// Runs `work` with the pool on the database's runtime and waits for it
    /// (blocking: call from a blocking thread or synchronous code, not from
    /// inside an async task of the database's own runtime).
    pub fn run<T, F>(&self, work: impl FnOnce(Pool) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let future = work(self.0.pool.clone());
        self.handle().spawn(async move {
            let _ = sender.send(future.await);
        });
        receiver.recv().expect("database tasks run to completion")
    }

    /// The runtime the connections live on, to spawn streaming work on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.0.runtime.0.as_ref().expect("the runtime lives as long as the database").handle()
    }

    /// Forwards the payload of every notification on `channel` to
    /// `sender`, over a connection of its own; after that connection is
    /// lost, sends `lost` (notifications may have been missed) and
    /// connects again.
    pub fn listen(
        &self,
        channel: &'static str,
        sender: tokio::sync::broadcast::Sender<String>,
        lost: &'static str,
    ) {
        let (config, tls, location) = (self.0.config.clone(), self.0.tls.clone(), self.0.location.clone());
        self.handle().spawn(async move {
            loop {
                match listen_once(&config, &tls, channel, &sender).await {
                    Ok(()) => tracing::warn!(database = %location, channel, "the notification connection closed"),
                    Err(error) => {
                        tracing::warn!(database = %location, channel, %error, "cannot listen for notifications")
                    }
                }
                let _ = sender.send(lost.to_owned());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Asks the server to cancel what the connection of `token` runs.
    pub async fn cancel(&self, token: tokio_postgres::CancelToken) {
        if let Err(error) = token.cancel_query(self.0.tls.clone()).await {
            tracing::debug!(%error, "cancelling a statement failed");
        }
    }

    /// The pool itself.
    pub fn pool(&self) -> &Pool {
        &self.0.pool
    }

    /// The schema every connection uses.
    pub fn schema(&self) -> &str {
        &self.0.schema
    }

    /// Where the database is, without credentials: `host:port/dbname`.
    pub fn location(&self) -> &str {
        &self.0.location
    }
}

/// Listens on `channel` until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    channel: &str,
    sender: &tokio::sync::broadcast::Sender<String>,
) -> Result<()> {
    use futures_util::StreamExt;
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let forwarding = {
        let sender = sender.clone();
        async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(notification)) => {
                        let _ = sender.send(notification.payload().to_owned());
                    }
                    Ok(_) => {}
                    Err(error) => return Err(DbError::from(error)),
                }
            }
            Ok(())
        }
    };
    let forwarding = tokio::spawn(forwarding);
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    // Anything before LISTEN took effect may have been missed.
    let _ = sender.send("*".to_owned());
    let ended = forwarding.await.map_err(|e| DbError::Config(format!("the listener task failed: {e}")))?;
    drop(client);
    ended
}

/// Refuses a schema name that is not a plain lower-case identifier (it is
/// written into SQL and connection options).
fn check_schema_name(schema: &str) -> Result<()> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(DbError::Config(format!(
            "`{schema}` is not a usable schema name (lower-case letters, digits, _)"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_plain_lower_case_schema_name_is_used() {
        for good in ["payment", "registry", "tls_check", "a1"] {
            assert!(super::check_schema_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Payment", "1a", "a-b", "a;drop", "a b"] {
            assert_eq!(
                super::check_schema_name(bad).unwrap_err().to_string(),
                format!(
                    "database configuration: `{bad}` is not a usable schema name (lower-case letters, digits, _)"
                )
            );
        }
    }
}
