//! Replicas starting together on one fresh database: each connects, the
//! schema and its table of applied migrations are made once, and every
//! migration is applied once, whoever comes first.

use std::borrow::Cow;
use std::sync::{Arc, Barrier};

use mesh_postgres::testing::TestServer;
use mesh_postgres::{Database, DatabaseArgs, Migration};

const REPLICAS: usize = 8;

fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            version: 1,
            name: "0001_first.sql",
            sql: Cow::Borrowed("CREATE TABLE first (id INTEGER)"),
        },
        Migration {
            version: 2,
            name: "0002_second.sql",
            sql: Cow::Borrowed("CREATE TABLE second (id INTEGER)"),
        },
    ]
}

#[test]
fn replicas_starting_together_make_the_schema_once_and_apply_each_migration_once() {
    let server = TestServer::start();
    let url = server.url().to_owned();
    for round in 0..5 {
        let schema = format!("together_{round}");
        let start = Arc::new(Barrier::new(REPLICAS));
        let replicas: Vec<_> = (0..REPLICAS)
            .map(|_| {
                let (start, url, schema) = (Arc::clone(&start), url.clone(), schema.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Database::connect(&DatabaseArgs::for_url(&url), &schema, &migrations()).map(|_| ())
                })
            })
            .collect();
        for replica in replicas {
            replica.join().unwrap().unwrap_or_else(|e| panic!("a replica did not start ({schema}): {e}"));
        }
        let db = Database::connect(&DatabaseArgs::for_url(&url), &schema, &migrations()).unwrap();
        let applied: Vec<(i32, String)> = db.run(|pool| async move {
            let client = pool.get().await.unwrap();
            let rows =
                client.query("SELECT version, name FROM mesh_schema_migrations ORDER BY version", &[]).await;
            rows.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
        });
        assert_eq!(applied, vec![(1, "0001_first.sql".to_owned()), (2, "0002_second.sql".to_owned())]);
    }
}
