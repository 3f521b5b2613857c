//! The `events` table: the catalog's event log, one CloudEvents event per
//! row, appended in the transaction of the change it reports (so a change
//! committed has its event and one rolled back has none). Appends take the
//! log's lock first: sequence order is commit order, and a reader that has
//! seen an event has seen every event before it. Retention deletes the
//! oldest and remembers the last sequence it deleted, so a reader asking to
//! resume before it learns that events were lost instead of skipping them.

use super::sql::{Backend, Row, Sql};
use crate::error::Result;
use crate::params;

/// Who may see an event (beside admins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Whoever may see the product in the catalog.
    Catalog,
    /// About the product's data: for a product read by agreement, its
    /// owners, its domain and consumers with an agreement in force.
    Data,
    /// About one agreement: its consumer (issuer, subject), the product's
    /// owners and its domain.
    Agreement {
        /// The consumer's token issuer.
        issuer: String,
        /// The consumer's subject.
        subject: String,
    },
}

impl Audience {
    fn name(&self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Data => "data",
            Self::Agreement { .. } => "agreement",
        }
    }
}

/// A change to report, appended in the transaction that makes it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event type, e.g. `mesh.product.deprecated.v1`.
    pub kind: &'static str,
    /// The product it is about.
    pub product: String,
    /// The details, a JSON object.
    pub data: serde_json::Value,
    /// Who may see it.
    pub audience: Audience,
}

/// An event as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its place in the log.
    pub sequence: i64,
    /// Its CloudEvents id.
    pub id: String,
    /// Its type.
    pub kind: String,
    /// The product it is about.
    pub product: String,
    /// The product's domain.
    pub domain: String,
    /// When it was written, ms since the epoch.
    pub time_ms: i64,
    /// The details, JSON text.
    pub data: String,
    /// Who may see it.
    pub audience: Audience,
}

/// Which events a reader wants (empty fields: any).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only about this product.
    pub product: String,
    /// Only about this domain's products.
    pub domain: String,
}

/// The channel PostgreSQL announces appends on, for other replicas.
pub const CHANNEL: &str = "mesh_events";

/// The most bytes of an event's data (JSON): details beyond it are left out
/// (the event says so), so no change can make an event every reader must
/// hold large.
pub const MAX_DATA_BYTES: usize = 16 * 1024;

/// Takes the log's lock until the transaction ends: appends (and trims)
/// happen one transaction at a time, so sequence order is commit order. On
/// PostgreSQL a table lock (readers go on), not an advisory key that a
/// product id could collide with; on SQLite the write transaction is it.
pub fn lock(db: &mut dyn Sql) -> Result<()> {
    if db.backend() == Backend::Postgres {
        db.execute("LOCK TABLE events IN EXCLUSIVE MODE", &[])?;
    }
    Ok(())
}

const COLUMNS: &str =
    "sequence, id, type, subject, domain, time, data, audience, consumer_issuer, consumer_subject";

/// Appends `event` to the log; its sequence number. Call it last in the
/// transaction (it takes the log's lock, held until the commit).
pub fn append(db: &mut dyn Sql, event: NewEvent) -> Result<i64> {
    lock(db)?;
    let now = db.now_ms()?;
    let mut data = event.data.to_string();
    if data.len() > MAX_DATA_BYTES {
        data =
            serde_json::json!({ "omitted": format!("the details were longer than {MAX_DATA_BYTES} bytes") })
                .to_string();
    }
    let id = new_id();
    let domain = mesh_contracts::access::domain_of(&event.product).to_owned();
    let (issuer, subject) = match &event.audience {
        Audience::Agreement { issuer, subject } => (issuer.clone(), subject.clone()),
        _ => (String::new(), String::new()),
    };
    let sequence = db
        .query_one(
            "INSERT INTO events (id, type, subject, domain, time, data, audience, consumer_issuer, consumer_subject)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING sequence",
            params![
                id,
                event.kind,
                event.product,
                domain,
                now,
                data,
                event.audience.name(),
                issuer,
                subject
            ],
        )?
        .int(0)?;
    if db.backend() == Backend::Postgres {
        db.query("SELECT pg_notify($1, '')", params![CHANNEL])?;
    }
    Ok(sequence)
}

/// A random 128-bit id, as 32 hex digits.
fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The events after `after` and up to `through` that `filter` lets
/// through, oldest first, at most `limit`.
pub fn after(
    db: &mut dyn Sql,
    (after, through): (i64, i64),
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    between(db, (after, through), filter, limit, "ASC")
}

/// The events before `before` that `filter` lets through, newest first, at
/// most `limit`.
pub fn newest_before(
    db: &mut dyn Sql,
    before: i64,
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    between(db, (0, before - 1), filter, limit, "DESC")
}

fn between(
    db: &mut dyn Sql,
    (after, through): (i64, i64),
    filter: &EventFilter,
    limit: usize,
    order: &str,
) -> Result<Vec<StoredEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM events
             WHERE sequence > $1 AND sequence <= $5 AND ($2 = '' OR subject = $2) AND ($3 = '' OR domain = $3)
             ORDER BY sequence {order} LIMIT $4"
        ),
        params![after, filter.product.as_str(), filter.domain.as_str(), limit, through],
    )?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &Row) -> Result<StoredEvent> {
    let audience = match row.text(7)?.as_str() {
        "catalog" => Audience::Catalog,
        "data" => Audience::Data,
        // Anything else shows to the fewest.
        _ => Audience::Agreement { issuer: row.text(8)?, subject: row.text(9)? },
    };
    Ok(StoredEvent {
        sequence: row.int(0)?,
        id: row.text(1)?,
        kind: row.text(2)?,
        product: row.text(3)?,
        domain: row.text(4)?,
        time_ms: row.int(5)?,
        data: row.text(6)?,
        audience,
    })
}

/// The newest sequence number written (0: none yet).
pub fn latest(db: &mut dyn Sql) -> Result<i64> {
    let newest = db.query_one("SELECT max(sequence) FROM events", &[])?.opt_int(0)?;
    Ok(newest.unwrap_or(0).max(trimmed_through(db)?))
}

/// The last sequence number retention deleted (0: none).
pub fn trimmed_through(db: &mut dyn Sql) -> Result<i64> {
    let Some(row) = db.query_opt("SELECT value FROM meta WHERE key = 'events_trimmed_through'", &[])? else {
        return Ok(0);
    };
    String::from_utf8_lossy(&row.blob(0)?).parse().map_err(|_| {
        crate::error::RegistryError::Internal("the event log's retention mark is unreadable".into())
    })
}

/// How long and how many events the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this many ms go.
    pub max_age_ms: i64,
    /// The most events kept.
    pub max_events: i64,
}

/// Deletes the events `retention` no longer keeps (oldest first, at most
/// `batch` at a time, none after `through`: the last event this replica
/// has handed to its readers, nor any an active webhook subscription has
/// yet to deliver); how many went. Under the log's lock, so two replicas
/// trimming at once leave the mark at the later cut.
pub fn trim(db: &mut dyn Sql, retention: Retention, batch: i64, through: i64) -> Result<u64> {
    lock(db)?;
    let through = through.min(super::subscriptions::held_after(db)?);
    let now = db.now_ms()?;
    let newest = db.query_one("SELECT max(sequence) FROM events", &[])?.opt_int(0)?.unwrap_or(0);
    let by_count = newest - retention.max_events;
    let last = db
        .query_one(
            "SELECT max(sequence) FROM (SELECT sequence FROM events
                 WHERE (time < $1 OR sequence <= $2) AND sequence <= $4 ORDER BY sequence LIMIT $3) AS old",
            params![now - retention.max_age_ms, by_count, batch, through],
        )?
        .opt_int(0)?;
    let marked = trimmed_through(db)?;
    let Some(last) = last.filter(|&last| last > marked) else { return Ok(0) };
    let deleted = db.execute("DELETE FROM events WHERE sequence <= $1", params![last])?;
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('events_trimmed_through', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![last.to_string().into_bytes()],
    )?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::Clock;
    use crate::store::Store;

    fn deprecated(product: &str) -> NewEvent {
        NewEvent {
            kind: "mesh.product.deprecated.v1",
            product: product.to_owned(),
            data: json!({ "message": "use v2" }),
            audience: Audience::Catalog,
        }
    }

    #[tokio::test]
    async fn a_rolled_back_change_leaves_no_event_and_retention_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.sqlite"), Clock::system()).unwrap();
        for product in ["shop.orders", "shop.items", "bank.loans"] {
            store.write(move |db| append(db, deprecated(product))).await.unwrap();
        }
        let failed = store
            .write(|db| {
                append(db, deprecated("shop.orders"))?;
                Err::<(), _>(crate::error::RegistryError::Conflict("the change failed".into()))
            })
            .await;
        assert!(failed.is_err());
        let all = store.read(|db| after(db, (0, i64::MAX), &EventFilter::default(), 100)).await.unwrap();
        assert_eq!(all.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!((all[2].domain.as_str(), all[2].data.as_str()), ("bank", r#"{"message":"use v2"}"#));
        let shop = EventFilter { domain: "shop".into(), ..Default::default() };
        assert_eq!(store.read(move |db| after(db, (0, 3), &shop, 100)).await.unwrap().len(), 2);
        let one = EventFilter { product: "shop.items".into(), ..Default::default() };
        assert_eq!(store.read(move |db| after(db, (1, 2), &one, 100)).await.unwrap()[0].sequence, 2);

        // Retention by count keeps the newest; the sequence never goes back.
        let keep_one = Retention { max_age_ms: i64::MAX / 2, max_events: 1 };
        assert_eq!(store.write(move |db| trim(db, keep_one, 100, 1)).await.unwrap(), 1);
        assert_eq!(store.write(move |db| trim(db, keep_one, 100, 3)).await.unwrap(), 1);
        assert_eq!(store.read(trimmed_through).await.unwrap(), 2);
        let keep_none = Retention { max_age_ms: -1, max_events: 10 };
        assert_eq!(store.write(move |db| trim(db, keep_none, 100, 3)).await.unwrap(), 1);
        assert_eq!(store.read(latest).await.unwrap(), 3);
        let next = store.write(|db| append(db, deprecated("shop.orders"))).await.unwrap();
        assert_eq!(next, 4);

        // Details too long for an event are left out, and it says so.
        let huge =
            NewEvent { data: json!({ "message": "x".repeat(MAX_DATA_BYTES) }), ..deprecated("shop.orders") };
        store.write(move |db| append(db, huge)).await.unwrap();
        let last = store.read(|db| after(db, (4, i64::MAX), &EventFilter::default(), 1)).await.unwrap();
        assert_eq!(last[0].data, r#"{"omitted":"the details were longer than 16384 bytes"}"#);
    }
}
