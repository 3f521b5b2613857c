//! The `subscriptions` table: webhook subscriptions, where each one's
//! deliveries stand, and which replica delivers them
//! (`webhook_dispatcher`). A subscription's outbox is the event log after
//! its `delivered` position.

use super::sql::{Row, Sql};
use crate::error::Result;
use crate::params;

/// A subscription as stored (the secret only where the deliverer reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Its id.
    pub id: String,
    /// The product whose events it delivers.
    pub product: String,
    /// Where deliveries go.
    pub url: String,
    /// The event types wanted (empty: all).
    pub types: Vec<String>,
    /// Who created it: issuer, subject and roles of its token.
    pub owner: Owner,
    /// When it was created, ms.
    pub create_time: i64,
    /// The last sequence number delivered or passed over.
    pub delivered: i64,
    /// Whether deliveries were given up.
    pub disabled: bool,
    /// Since when deliveries fail, ms (0: they do not).
    pub failing_since: i64,
    /// When a delivery was last tried, ms (0: never).
    pub last_attempt: i64,
    /// What the last attempt gave.
    pub last_outcome: String,
    /// When it stops delivering unless renewed, ms (0: never).
    pub expire_time: i64,
}

/// Who created a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its token's issuer.
    pub issuer: String,
    /// Its token's subject.
    pub subject: String,
    /// Its token's roles.
    pub roles: Vec<String>,
}

/// A subscription to record.
pub struct NewSubscription<'a> {
    /// Its id.
    pub id: &'a str,
    /// The product.
    pub product: &'a str,
    /// Where deliveries go.
    pub url: &'a str,
    /// The event types wanted.
    pub types: &'a [String],
    /// The signing secret.
    pub secret: &'a str,
    /// Who creates it.
    pub owner: &'a Owner,
}

impl std::fmt::Debug for NewSubscription<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("NewSubscription")
            .field("id", &self.id)
            .field("product", &self.product)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, product, url, types, owner_issuer, owner_subject, owner_roles, create_time, delivered, \
                       state, failing_since, last_attempt, last_outcome, expire_time";

fn from_row(row: &Row) -> Result<StoredSubscription> {
    let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    Ok(StoredSubscription {
        id: row.text(0)?,
        product: row.text(1)?,
        url: row.text(2)?,
        types: list(row.text(3)?),
        owner: Owner { issuer: row.text(4)?, subject: row.text(5)?, roles: list(row.text(6)?) },
        create_time: row.int(7)?,
        delivered: row.int(8)?,
        disabled: row.text(9)? != "active",
        failing_since: row.int(10)?,
        last_attempt: row.int(11)?,
        last_outcome: row.text(12)?,
        expire_time: row.int(13)?,
    })
}

/// Records `new`, delivering the events after `from` (the newest now) for
/// `lifetime_ms`.
pub fn insert(
    db: &mut dyn Sql,
    new: &NewSubscription<'_>,
    from: i64,
    lifetime_ms: i64,
) -> Result<StoredSubscription> {
    let now = db.now_ms()?;
    let json = |list: &[String]| serde_json::Value::from(list.to_vec()).to_string();
    db.execute(
        "INSERT INTO subscriptions (id, product, url, types, secret, owner_issuer, owner_subject, owner_roles,
                                    create_time, delivered, state, expire_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11)",
        params![
            new.id,
            new.product,
            new.url,
            json(new.types),
            new.secret,
            new.owner.issuer.as_str(),
            new.owner.subject.as_str(),
            json(&new.owner.roles),
            now,
            from,
            now.saturating_add(lifetime_ms)
        ],
    )?;
    get(db, new.id)?
        .ok_or_else(|| crate::error::RegistryError::Internal("a new subscription vanished".into()))
}

/// The subscription `id`, if it exists.
pub fn get(db: &mut dyn Sql, id: &str) -> Result<Option<StoredSubscription>> {
    db.query_opt(&format!("SELECT {COLUMNS} FROM subscriptions WHERE id = $1"), params![id])?
        .map(|row| from_row(&row))
        .transpose()
}

/// The signing secret of `id` while it delivers (`None`: deleted,
/// disabled or expired).
pub fn secret(db: &mut dyn Sql, id: &str) -> Result<Option<String>> {
    let now = db.now_ms()?;
    db.query_opt(
        &format!("SELECT secret FROM subscriptions WHERE {DELIVERING} AND id = $2"),
        params![now, id],
    )?
    .map(|row| row.text(0))
    .transpose()
}

/// `owner`'s subscriptions (to `product`, unless empty), oldest first.
pub fn of_owner(
    db: &mut dyn Sql,
    issuer: &str,
    subject: &str,
    product: &str,
) -> Result<Vec<StoredSubscription>> {
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE owner_issuer = $1 AND owner_subject = $2
             AND ($3 = '' OR product = $3) ORDER BY create_time, id"
        ),
        params![issuer, subject, product],
    )?;
    rows.iter().map(from_row).collect()
}

/// How many subscriptions there are: of the owner `(issuer, subject)`, and
/// in all.
pub fn counts(db: &mut dyn Sql, issuer: &str, subject: &str) -> Result<(i64, i64)> {
    let row = db.query_one(
        "SELECT count(*) FILTER (WHERE owner_issuer = $1 AND owner_subject = $2), count(*) FROM subscriptions",
        params![issuer, subject],
    )?;
    Ok((row.int(0)?, row.int(1)?))
}

/// Which subscriptions deliver at `$1`: neither disabled nor expired.
const DELIVERING: &str = "state = 'active' AND (expire_time = 0 OR expire_time > $1)";

/// Every subscription still delivering.
pub fn active(db: &mut dyn Sql) -> Result<Vec<StoredSubscription>> {
    let now = db.now_ms()?;
    let rows = db.query(
        &format!("SELECT {COLUMNS} FROM subscriptions WHERE {DELIVERING} ORDER BY id"),
        params![now],
    )?;
    rows.iter().map(from_row).collect()
}

/// Renews `id` for `lifetime_ms` from now with `roles`, taking it up again
/// if it was disabled; the subscription renewed.
pub fn renew(
    db: &mut dyn Sql,
    id: &str,
    roles: &[String],
    lifetime_ms: i64,
) -> Result<Option<StoredSubscription>> {
    let now = db.now_ms()?;
    let roles = serde_json::Value::from(roles.to_vec()).to_string();
    db.execute(
        "UPDATE subscriptions SET owner_roles = $2, expire_time = $3, state = 'active', failing_since = 0
         WHERE id = $1",
        params![id, roles, now.saturating_add(lifetime_ms)],
    )?;
    get(db, id)
}

/// Deletes `id`; whether it existed.
pub fn delete(db: &mut dyn Sql, id: &str) -> Result<bool> {
    Ok(db.execute("DELETE FROM subscriptions WHERE id = $1", params![id])? > 0)
}

/// Records that `id` delivered (or passed over) the events through
/// `sequence`; with `outcome`, that a delivery just succeeded. Never moves
/// back.
pub fn delivered(db: &mut dyn Sql, id: &str, sequence: i64, outcome: Option<&str>) -> Result<()> {
    match outcome {
        None => db.execute(
            "UPDATE subscriptions SET delivered = $2 WHERE id = $1 AND delivered < $2",
            params![id, sequence],
        )?,
        Some(outcome) => {
            let now = db.now_ms()?;
            db.execute(
                "UPDATE subscriptions SET delivered = CASE WHEN delivered < $2 THEN $2 ELSE delivered END,
                     failing_since = 0, last_attempt = $3, last_outcome = $4
                 WHERE id = $1",
                params![id, sequence, now, outcome],
            )?
        }
    };
    Ok(())
}

/// Records a failed delivery of `id`, disabling it once deliveries have
/// failed for `give_up_ms`; whether it is still active (false: disabled
/// now, or deleted meanwhile).
pub fn failed(db: &mut dyn Sql, id: &str, outcome: &str, give_up_ms: i64) -> Result<bool> {
    let now = db.now_ms()?;
    let row = db.query_opt(
        "UPDATE subscriptions SET last_attempt = $2, last_outcome = $3,
             failing_since = CASE WHEN failing_since = 0 THEN $2 ELSE failing_since END,
             state = CASE WHEN failing_since <> 0 AND $2 - failing_since >= $4 THEN 'disabled' ELSE state END
         WHERE id = $1 RETURNING state",
        params![id, now, outcome, give_up_ms],
    )?;
    Ok(match row {
        Some(row) => row.text(0)? == "active",
        None => false,
    })
}

/// Disables `id` at once, saying why.
pub fn disable(db: &mut dyn Sql, id: &str, why: &str) -> Result<()> {
    let now = db.now_ms()?;
    db.execute(
        "UPDATE subscriptions SET state = 'disabled', last_attempt = $2, last_outcome = $3,
             failing_since = CASE WHEN failing_since = 0 THEN $2 ELSE failing_since END
         WHERE id = $1",
        params![id, now, why],
    )?;
    Ok(())
}

/// The oldest position an active subscription has yet to deliver after:
/// retention keeps the events after it (`i64::MAX`: none holds any).
pub fn held_after(db: &mut dyn Sql) -> Result<i64> {
    let now = db.now_ms()?;
    let oldest = db
        .query_one(&format!("SELECT min(delivered) FROM subscriptions WHERE {DELIVERING}"), params![now])?
        .opt_int(0)?;
    Ok(oldest.unwrap_or(i64::MAX))
}

/// Takes (or keeps) the right to deliver webhooks for `holder` for the
/// next `lease_ms`: granted unless another holder's right has not yet run
/// out. Whether `holder` has it.
pub fn claim_dispatch(db: &mut dyn Sql, holder: &str, lease_ms: i64) -> Result<bool> {
    let now = db.now_ms()?;
    let until = now.saturating_add(lease_ms);
    let claimed = db.execute(
        "INSERT INTO webhook_dispatcher (id, holder, until) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until = excluded.until
         WHERE webhook_dispatcher.holder = excluded.holder OR webhook_dispatcher.until < $3",
        params![holder, until, now],
    )?;
    Ok(claimed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::Store;

    #[tokio::test]
    async fn deliveries_move_forward_and_fail_until_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.sqlite"), Clock::system()).unwrap();
        let owner = Owner { issuer: "idp".into(), subject: "ana".into(), roles: vec!["analyst".into()] };
        let created = store
            .write(move |db| {
                let new = NewSubscription {
                    id: "sub_1",
                    product: "shop.orders",
                    url: "https://hooks.example.com/x",
                    types: &["mesh.data.*".to_owned()],
                    secret: "whsec_x",
                    owner: &owner,
                };
                insert(db, &new, 7, 60_000)
            })
            .await
            .unwrap();
        assert_eq!(
            (created.delivered, created.types.as_slice(), created.disabled),
            (7, &["mesh.data.*".to_owned()][..], false)
        );
        assert_eq!(store.read(held_after).await.unwrap(), 7);
        store.write(|db| delivered(db, "sub_1", 9, Some("HTTP 204"))).await.unwrap();
        store.write(|db| delivered(db, "sub_1", 8, None)).await.unwrap();
        assert_eq!(store.read(|db| get(db, "sub_1")).await.unwrap().unwrap().delivered, 9);
        assert!(store.write(|db| failed(db, "sub_1", "HTTP 500", 60_000)).await.unwrap());
        // Failing for longer than allowed: given up, and retention no longer holds for it.
        assert!(!store.write(|db| failed(db, "sub_1", "HTTP 500", -1)).await.unwrap());
        let gone = store.read(|db| get(db, "sub_1")).await.unwrap().unwrap();
        assert!(gone.disabled && gone.failing_since > 0 && gone.last_outcome == "HTTP 500");
        assert_eq!(store.read(held_after).await.unwrap(), i64::MAX);
        assert!(!store.write(|db| failed(db, "nobody", "HTTP 500", 1)).await.unwrap());

        let minute = 60_000;
        assert!(store.write(move |db| claim_dispatch(db, "a", minute)).await.unwrap());
        assert!(!store.write(move |db| claim_dispatch(db, "b", minute)).await.unwrap());
        assert!(store.write(move |db| claim_dispatch(db, "a", minute)).await.unwrap());
        // Its holder let it run out: another takes it.
        assert!(store.write(|db| claim_dispatch(db, "a", -1)).await.unwrap());
        assert!(store.write(move |db| claim_dispatch(db, "b", minute)).await.unwrap());
    }
}
