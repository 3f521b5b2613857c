//! Changes no call makes, found by looking every few seconds: an endpoint
//! whose lease ran out without renewal (stale), and an agreement in force
//! that ends within seven days. Each is reported once (the row remembers
//! what was reported), under the log's lock, so replicas sweeping at once
//! report it once between them.

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
            if store.read(due).await? {
                store.write(sweep).await?;
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

const STALE: &str = "SELECT product_id, uri, lease_expire_time FROM endpoints
                     WHERE lease_expire_time <= $1 AND stale_reported <> lease_expire_time";
const ENDING: &str = "SELECT id, product_id, principal, issuer, end_time FROM agreements
                      WHERE state = $1 AND end_time > $2 AND end_time <= $3 AND expiry_warned <> end_time";

/// Whether anything is left to report.
fn due(db: &mut dyn Sql) -> Result<bool> {
    let now = db.now_ms()?;
    let approved = AgreementState::Approved as i32;
    Ok(!db.query(&format!("{STALE} LIMIT 1"), params![now])?.is_empty()
        || !db
            .query(&format!("{ENDING} LIMIT 1"), params![approved, now, now + EXPIRY_NOTICE_MS])?
            .is_empty())
}

/// Reports what is due, in one transaction; how many events.
fn sweep(db: &mut dyn Sql) -> Result<usize> {
    events::lock(db)?;
    let now = db.now_ms()?;
    let mut reported = 0;
    for row in db.query(STALE, params![now])? {
        let (product, uri, expired) = (row.text(0)?, row.text(1)?, row.int(2)?);
        db.execute(
            "UPDATE endpoints SET stale_reported = $3 WHERE product_id = $1 AND uri = $2",
            params![product.as_str(), uri.as_str(), expired],
        )?;
        let data = json!({ "endpoint": uri, "lease_expire_time_ms": expired });
        events::append(db, kinds::about(ENDPOINT_STALE, &product, data))?;
        reported += 1;
    }
    let approved = AgreementState::Approved as i32;
    for row in db.query(ENDING, params![approved, now, now + EXPIRY_NOTICE_MS])? {
        let (id, product, principal, issuer, end) =
            (row.int(0)?, row.text(1)?, row.text(2)?, row.text(3)?, row.int(4)?);
        db.execute("UPDATE agreements SET expiry_warned = $2 WHERE id = $1", params![id, end])?;
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
        reported += 1;
    }
    Ok(reported)
}
