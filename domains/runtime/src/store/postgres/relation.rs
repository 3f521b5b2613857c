//! Reading a table or view of the domain's database as CSV, for a product
//! loaded from it: `COPY (SELECT * FROM "schema"."name") TO STDOUT` in one
//! read-only snapshot without the statement timeout (a large table takes
//! its time), streamed to the reader a few chunks ahead.

use std::io::Read;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use mesh_postgres::tokio_postgres::IsolationLevel;
use mesh_postgres::{Database, DbError};

use crate::error::{DomainError, Result};

/// Chunks of the copy read ahead of the loader.
const CHUNKS_AHEAD: usize = 16;

/// The rows of `relation` (`schema.name`) in `db`, as CSV with a header.
pub(super) fn csv(db: &Database, relation: &str) -> Result<Box<dyn Read + Send>> {
    let quoted = quoted(relation)?;
    let (sender, receiver) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let pool = db.pool().clone();
    db.handle().spawn(async move {
        let copied = async {
            let mut client = pool.get().await?;
            let snapshot = client
                .build_transaction()
                .read_only(true)
                .isolation_level(IsolationLevel::RepeatableRead)
                .start()
                .await?;
            snapshot.batch_execute("SET LOCAL statement_timeout = 0").await?;
            let copy = format!("COPY (SELECT * FROM {quoted}) TO STDOUT WITH (FORMAT csv, HEADER)");
            let stream = snapshot.copy_out(&copy).await?;
            futures_util::pin_mut!(stream);
            while let Some(chunk) = stream.next().await {
                if sender.send(Ok(chunk?)).await.is_err() {
                    break; // the loader stopped; its error says why
                }
            }
            Ok::<_, DbError>(())
        }
        .await;
        if let Err(error) = copied {
            let _ = sender.send(Err(error.to_string())).await;
        }
    });
    Ok(Box::new(Chunks { receiver, chunk: Bytes::new(), relation: relation.to_owned() }))
}

/// `schema.name` with each part quoted, once both are plain identifiers.
fn quoted(relation: &str) -> Result<String> {
    let plain = |part: &str| {
        part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match relation.split_once('.') {
        Some((schema, name)) if plain(schema) && plain(name) => Ok(format!("\"{schema}\".\"{name}\"")),
        _ => Err(DomainError::Config(format!(
            "source.postgres: `{relation}` is not `schema.name` (letters, digits and _ each, e.g. shop.daily_sales)"
        ))),
    }
}

/// The copy's chunks as one stream of bytes.
struct Chunks {
    receiver: tokio::sync::mpsc::Receiver<std::result::Result<Bytes, String>>,
    chunk: Bytes,
    relation: String,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.chunk.has_remaining() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => {
                    return Err(std::io::Error::other(format!("reading {}: {error}", self.relation)));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.remaining());
        self.chunk.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_schema_and_names_are_read() {
        assert_eq!(quoted("shop.daily_sales").unwrap(), "\"shop\".\"daily_sales\"");
        for bad in ["daily_sales", "shop.sales; DROP TABLE x", "a.b.c", "shop.\"x\"", ".x", "1a.b"] {
            assert!(quoted(bad).is_err(), "{bad}");
        }
    }
}
