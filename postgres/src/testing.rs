//! Throwaway PostgreSQL for tests (feature `test-support`): a server
//! started by `scripts/postgres.sh` in a temporary folder, and a fresh
//! database per test on the server the test script started
//! (`MESH_TEST_DATABASE_URL`) or, without one, on a server of its own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// A server of its own, stopped when dropped.
pub struct TestServer {
    dir: tempfile::TempDir,
    url: String,
}

impl TestServer {
    /// Starts a server (blocking, a second or two): loopback only, password
    /// authentication, user `mesh`.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with extra settings (`-c name=value ...`).
    pub fn start_with(settings: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let output = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("MESH_POSTGRES_OPTIONS", settings)
            .output()
            .expect("bash runs");
        assert!(output.status.success(), "postgres.sh start: {}", String::from_utf8_lossy(&output.stderr));
        let url = String::from_utf8(output.stdout).expect("a URL").trim().to_owned();
        Self { dir, url }
    }

    /// Its URL, to the `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops it at once, as a crash would (`pg_ctl -m immediate`).
    pub fn kill(&self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).status();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database of its own for one test, dropped with it.
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
    _server: Option<Arc<TestServer>>,
}

impl TestDatabase {
    /// Makes a fresh database (blocking; callable from async tests too).
    pub fn create() -> Self {
        let (admin_url, server) = match std::env::var("MESH_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let server = Arc::new(TestServer::start());
                (server.url().to_owned(), Some(server))
            }
        };
        let name = format!("test_{:016x}", rand_u64());
        let statement = format!("CREATE DATABASE {name}");
        admin(&admin_url, statement);
        let url = with_database(&admin_url, &name);
        Self { url, admin_url, name, _server: server }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        admin(&self.admin_url, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Runs one statement on the server's `postgres` database, on a thread of
/// its own (so async tests may call it).
fn admin(url: &str, statement: String) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("the test server answers");
            tokio::spawn(connection);
            client.batch_execute(&statement).await.expect("the statement runs");
        });
    })
    .join()
    .expect("the admin thread finishes");
}

/// `url` naming the database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            super::with_database("postgres://m:p@127.0.0.1:5/postgres", "t"),
            "postgres://m:p@127.0.0.1:5/t"
        );
        assert_eq!(
            super::with_database("postgres://m:p@h/db?sslmode=require", "t"),
            "postgres://m:p@h/t?sslmode=require"
        );
        assert_eq!(super::with_database("postgres://h", "t"), "postgres://h/t");
    }
}

/// Where a test keeps its data: the suites of the registry and of the
/// domains run once on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file of the test's own.
    Sqlite,
    /// A database of its own on the test PostgreSQL server.
    Postgres,
}

tokio::task_local! {
    /// The backend of the test running now (SQLite unless set).
    static BACKEND: Backend;
}

/// Runs `test` with [`backend`] answering `chosen`.
pub async fn with_backend<F: std::future::Future>(chosen: Backend, test: F) -> F::Output {
    BACKEND.scope(chosen, test).await
}

/// The backend of the test running now ([`on_both_backends!`] sets it;
/// SQLite outside).
pub fn backend() -> Backend {
    BACKEND.try_with(|backend| *backend).unwrap_or(Backend::Sqlite)
}

/// Instantiates each named `async fn()` test once per backend, in modules
/// `sqlite` and `postgres`, with [`backend`] answering which: one suite,
/// both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::testing::with_backend($crate::testing::Backend::Sqlite, super::$name()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::testing::with_backend($crate::testing::Backend::Postgres, super::$name()).await
                }
            )*
        }
    };
}
