//! Changes no call makes, found by looking every few seconds: an endpoint
//! whose lease ran out without renewal (stale), and an agreement in force
//! that ends within seven days. Each is reported once: the row remembers
//! what was reported, so replicas sweeping at once report it once between
//! them.

use std::time::Duration;

use mesh_contracts::catalog::AgreementState;
use serde_json::json;

use super::kinds::{self, ACCESS_EXPIRING, AgreementChange, ENDPOINT_STALE};
use crate::error::Result;
use crate::params;
use crate::store::sql::Sql;
use crate::store::{Store, events};

/// How often the registry looks.
const EVERY: Duration = Duration::from_secs(5);
/// How long before an agreement ends its consumer and owners are told.
pub const EXPIRY_NOTICE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Sweeps `store` every few seconds until `stopping` turns true.
pub async fn run(store: Store, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        let swept = async {
            while store.read(due).await? {
                if store.write(sweep).await? == 0 {
                    break;
                }
            }
            Ok::<_, crate::error::RegistryError>(())
        };
        if let Err(error) = swept.await {
            tracing::warn!(%error, "looking for stale endpoints and ending agreements failed; trying again");
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// Rows reported per transaction.
const BATCH: i64 = 500;

const STALE: &str = "lease_expire_time <= $1 AND stale_reported <> lease_expire_time";
const ENDING: &str = "state = $2 AND end_time > $1 AND end_time <= $3 AND expiry_warned <> end_time";

/// Whether anything is left to report.
fn due(db: &mut dyn Sql) -> Result<bool> {
    let now = db.now_ms()?;
    let approved = AgreementState::Approved as i32;
    Ok(!db.query(&format!("SELECT 1 FROM endpoints WHERE {STALE} LIMIT 1"), params![now])?.is_empty()
        || !db
            .query(
                &format!("SELECT 1 FROM agreements WHERE {ENDING} LIMIT 1"),
                params![now, approved, now + EXPIRY_NOTICE_MS],
            )?
            .is_empty())
}

/// Reports up to a batch of what is due, in one transaction; how many
/// events. Each row is marked first, by an update that checks again that
/// it is due (a lease renewed meanwhile is not reported, and of two
/// replicas sweeping at once only one marks it), and the log's lock comes
/// after the rows', as for every other change.
fn sweep(db: &mut dyn Sql) -> Result<usize> {
    let now = db.now_ms()?;
    let stale = db.query(
        &format!(
            "UPDATE endpoints SET stale_reported = lease_expire_time
             WHERE (product_id, uri) IN (SELECT product_id, uri FROM endpoints WHERE {STALE} LIMIT $2)
             AND {STALE}
             RETURNING product_id, uri, lease_expire_time"
        ),
        params![now, BATCH],
    )?;
    let approved = AgreementState::Approved as i32;
    let ending = db.query(
        &format!(
            "UPDATE agreements SET expiry_warned = end_time
             WHERE id IN (SELECT id FROM agreements WHERE {ENDING} LIMIT $4) AND {ENDING}
             RETURNING id, product_id, principal, issuer, end_time"
        ),
        params![now, approved, now + EXPIRY_NOTICE_MS, BATCH],
    )?;
    for row in &stale {
        let (product, uri, expired) = (row.text(0)?, row.text(1)?, row.int(2)?);
        let data = json!({ "endpoint": uri, "lease_expire_time_ms": expired });
        events::append(db, kinds::about(ENDPOINT_STALE, &product, data))?;
    }
    for row in &ending {
        let (id, product, principal, issuer, end) =
            (row.int(0)?, row.text(1)?, row.text(2)?, row.text(3)?, row.int(4)?);
        let name = format!("agreements/{id}");
        let change = AgreementChange {
            name: &name,
            product: &product,
            consumer: (&issuer, &principal),
            state: "APPROVED",
            by: "catalog",
        };
        let mut event = kinds::agreement(ACCESS_EXPIRING, &change);
        event.data["end_time_ms"] = json!(end);
        events::append(db, event)?;
    }
    Ok(stale.len() + ending.len())
}
