//! The read log on PostgreSQL: `mesh_reads`, `mesh_reads_by_day` and
//! `mesh_usage_by_day` in the domain's schema (made by its migrations),
//! where every replica records.

use mesh_postgres::{Database, DbError};

use crate::error::Result;
use crate::store::read_log::{DAY_MS, LoggedRead, ReadLog, ReadLogWriter, ReaderSum, UsageSum, sql};

const TABLES: sql::Tables =
    sql::Tables { reads: "mesh_reads", summary: "mesh_reads_by_day", usage: "mesh_usage_by_day" };

/// The read log in the domain's schema.
#[derive(Debug, Clone)]
pub(crate) struct PostgresReadLog {
    db: Database,
}

impl PostgresReadLog {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl ReadLog for PostgresReadLog {
    fn writer(&self) -> Result<Box<dyn ReadLogWriter>> {
        Ok(Box::new(self.clone()))
    }

    fn readers(&self, product: &str, since_day: i64, limit: i64) -> Result<Vec<ReaderSum>> {
        let product = product.to_owned();
        let rows = self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let statement = sql::on(sql::READERS, &TABLES);
            Ok::<_, DbError>(client.query(&statement, &[&product, &since_day, &limit]).await?)
        })?;
        Ok(rows
            .iter()
            .map(|r| ReaderSum {
                principal: r.get(0),
                issuer: r.get(1),
                last_ms: r.get(2),
                reads: r.get(3),
                rows: r.get(4),
            })
            .collect())
    }

    fn usage(&self, product: &str, since_day: i64) -> Result<Vec<UsageSum>> {
        let product = product.to_owned();
        let rows = self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let statement = sql::on(sql::USAGE, &TABLES);
            Ok::<_, DbError>(client.query(&statement, &[&product, &since_day]).await?)
        })?;
        Ok(rows
            .iter()
            .map(|r| UsageSum {
                day: r.get(0),
                reason: r.get(1),
                reads: r.get(2),
                rows: r.get(3),
                bytes: r.get(4),
            })
            .collect())
    }

    fn records(&self, product: &str, since_ms: i64, principal: &str, limit: i64) -> Result<Vec<Vec<u8>>> {
        let (product, principal) = (product.to_owned(), principal.to_owned());
        let rows = self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let statement = sql::on(sql::RECORDS, &TABLES);
            Ok::<_, DbError>(client.query(&statement, &[&product, &since_ms, &principal, &limit]).await?)
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl ReadLogWriter for PostgresReadLog {
    fn append(&mut self, batch: &[LoggedRead], prune_before_ms: Option<i64>) -> Result<()> {
        let batch = batch.to_vec();
        Ok(self.db.run(move |pool| async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await?;
            let insert = transaction.prepare_cached(&sql::on(sql::INSERT, &TABLES)).await?;
            let summarize = transaction.prepare_cached(&sql::on(sql::SUMMARIZE, &TABLES)).await?;
            let add_usage = transaction.prepare_cached(&sql::on(sql::ADD_USAGE, &TABLES)).await?;
            for r in &batch {
                transaction
                    .execute(
                        &insert,
                        &[&r.product, &r.principal, &r.issuer, &r.start_ms, &r.outcome, &r.rows, &r.record],
                    )
                    .await?;
                let day = r.start_ms.div_euclid(DAY_MS);
                if let Some(u) = &r.usage {
                    transaction
                        .execute(&add_usage, &[&r.product, &day, &u.reason, &u.reads, &u.rows, &u.bytes])
                        .await?;
                }
                if r.delivered {
                    transaction
                        .execute(
                            &summarize,
                            &[&r.product, &day, &r.principal, &r.issuer, &r.rows, &r.start_ms],
                        )
                        .await?;
                }
            }
            if let Some(cutoff) = prune_before_ms {
                transaction.execute(&sql::on(sql::PRUNE_READS, &TABLES), &[&cutoff]).await?;
                let day = cutoff.div_euclid(DAY_MS);
                transaction.execute(&sql::on(sql::PRUNE_SUMMARY, &TABLES), &[&day]).await?;
                transaction.execute(&sql::on(sql::PRUNE_USAGE, &TABLES), &[&day]).await?;
            }
            transaction.commit().await?;
            Ok::<_, DbError>(())
        })?)
    }
}
