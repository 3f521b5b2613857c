//! The `agreements` table: who may read which columns and rows of which
//! product, until when, and where each request stands. An approved
//! agreement past its end time reads as EXPIRED.

use mesh_contracts::catalog::{Agreement, AgreementState};

use super::sql::{Row, Sql};
use super::timestamp;
use crate::error::Result;
use crate::params;

/// The columns a query reads, in [`from_row`]'s order.
const COLUMNS: &str = "id, product_id, principal, issuer, purpose, columns, raw_columns, row_scope, end_time, \
                       state, create_time, update_time, decided_by, decision_note";

/// A request to record.
#[derive(Debug)]
pub struct NewAgreement<'a> {
    /// The product.
    pub product_id: &'a str,
    /// The consumer's subject and issuer.
    pub principal: (&'a str, &'a str),
    /// What for.
    pub purpose: &'a str,
    /// The columns asked for.
    pub columns: &'a [String],
    /// Identifier columns asked for raw.
    pub raw_columns: &'a [String],
    /// The row scope.
    pub row_scope: &'a str,
    /// When it ends, ms since the epoch.
    pub end_time: i64,
    /// PENDING, or APPROVED by a rule.
    pub state: AgreementState,
    /// Who decided (for an approval by rule).
    pub decided_by: &'a str,
    /// Why.
    pub decision_note: &'a str,
    /// Now, ms since the epoch.
    pub now: i64,
}

/// Records a request; its id.
pub fn insert(db: &mut dyn Sql, new: &NewAgreement<'_>) -> Result<i64> {
    db.query_one(
        "INSERT INTO agreements (product_id, principal, issuer, purpose, columns, raw_columns, row_scope, end_time,
                                 state, create_time, update_time, decided_by, decision_note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) RETURNING id",
        params![
        new.product_id,
        new.principal.0,
        new.principal.1,
        new.purpose,
        new.columns.join("\n"),
        new.raw_columns.join("\n"),
        new.row_scope,
        new.end_time,
        new.state as i32,
        new.now,
        new.decided_by,
        new.decision_note
        ],
    )?
    .int(0)
}

fn lines(text: String) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn from_row(row: &Row, now: i64) -> Result<Agreement> {
    let end_time = row.int(8)?;
    let mut state = AgreementState::try_from(row.i32(9)?).unwrap_or(AgreementState::Unspecified);
    if state == AgreementState::Approved && end_time <= now {
        state = AgreementState::Expired;
    }
    Ok(Agreement {
        name: format!("agreements/{}", row.int(0)?),
        product: row.text(1)?,
        principal: row.text(2)?,
        issuer: row.text(3)?,
        purpose: row.text(4)?,
        columns: lines(row.text(5)?),
        raw_columns: lines(row.text(6)?),
        row_scope: row.text(7)?,
        end_time: Some(timestamp(end_time)),
        state: state.into(),
        create_time: Some(timestamp(row.int(10)?)),
        update_time: Some(timestamp(row.int(11)?)),
        decided_by: row.text(12)?,
        decision_note: row.text(13)?,
    })
}

/// One agreement by id.
pub fn get(db: &mut dyn Sql, id: i64, now: i64) -> Result<Option<Agreement>> {
    db.query_opt(&format!("SELECT {COLUMNS} FROM agreements WHERE id = $1"), params![id])?
        .map(|row| from_row(&row, now))
        .transpose()
}

/// Whose agreements to list.
#[derive(Debug, Clone, Copy)]
pub enum Listing<'a> {
    /// Every agreement of a product.
    Product(&'a str),
    /// One consumer's (subject, issuer), of one product or of all.
    Consumer {
        /// The consumer's subject and issuer.
        principal: (&'a str, &'a str),
        /// Only this product's, if given.
        product: Option<&'a str>,
    },
}

/// The agreements `listing` names, newest first, at most `limit`, older
/// than agreement `before` when given; only those in force (or pending)
/// unless `include_inactive`.
pub fn list(
    db: &mut dyn Sql,
    listing: Listing<'_>,
    include_inactive: bool,
    (before, limit): (Option<i64>, usize),
    now: i64,
) -> Result<Vec<Agreement>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (condition, mut values) = match listing {
        Listing::Product(product) => ("product_id = $1", params![product].to_vec()),
        Listing::Consumer { principal, product: Some(product) } => (
            "product_id = $1 AND principal = $2 AND issuer = $3",
            params![product, principal.0, principal.1].to_vec(),
        ),
        Listing::Consumer { principal, product: None } => {
            ("principal = $1 AND issuer = $2", params![principal.0, principal.1].to_vec())
        }
    };
    let mut more = String::new();
    if let Some(before) = before {
        values.push(before.into());
        more.push_str(&format!(" AND id < ${}", values.len()));
    }
    if !include_inactive {
        values.push(now.into());
        more.push_str(&format!(" AND (state = 1 OR (state = 2 AND end_time > ${}))", values.len()));
    }
    values.push(limit.into());
    let sql = format!(
        "SELECT {COLUMNS} FROM agreements WHERE {condition}{more} ORDER BY id DESC LIMIT ${}",
        values.len()
    );
    db.query(&sql, &values)?.iter().map(|row| from_row(row, now)).collect()
}

/// Marks every other agreement of `principal` for `product` in force as
/// SUPERSEDED by agreement `by`: one agreement is in force per consumer and
/// product. The ids superseded.
pub fn supersede(
    db: &mut dyn Sql,
    product: &str,
    principal: (&str, &str),
    by: i64,
    now: i64,
) -> Result<Vec<i64>> {
    let note = format!("superseded by agreements/{by}");
    db.query(
        "UPDATE agreements SET state = $5, decision_note = $6, update_time = $7
         WHERE product_id = $1 AND principal = $2 AND issuer = $3 AND id != $4 AND state = 2 AND end_time > $7
         RETURNING id",
        params![product, principal.0, principal.1, by, AgreementState::Superseded as i32, note, now],
    )?
    .iter()
    .map(|row| row.int(0))
    .collect()
}

/// Agreements in force granted by a rule to one consumer, for products other
/// than `except`.
pub fn auto_approved_in_force(
    db: &mut dyn Sql,
    principal: (&str, &str),
    except: &str,
    now: i64,
) -> Result<i64> {
    db.query_one(
        "SELECT count(*) FROM agreements WHERE principal = $1 AND issuer = $2 AND product_id != $3
         AND state = 2 AND decided_by = 'policy' AND end_time > $4",
        params![principal.0, principal.1, except, now],
    )?
    .int(0)
}

/// Requests one consumer made since `since` (ms since the epoch).
pub fn requested_since(db: &mut dyn Sql, principal: (&str, &str), since: i64) -> Result<i64> {
    db.query_one(
        "SELECT count(*) FROM agreements WHERE principal = $1 AND issuer = $2 AND create_time >= $3",
        params![principal.0, principal.1, since],
    )?
    .int(0)
}

/// Pending requests of one consumer.
pub fn pending_of(db: &mut dyn Sql, principal: (&str, &str)) -> Result<i64> {
    db.query_one(
        "SELECT count(*) FROM agreements WHERE principal = $1 AND issuer = $2 AND state = 1",
        params![principal.0, principal.1],
    )?
    .int(0)
}

/// Sets the state of agreement `id` from `from` to `to`; false if it was
/// not in state `from`.
pub fn decide(
    db: &mut dyn Sql,
    id: i64,
    (from, to): (AgreementState, AgreementState),
    decided_by: &str,
    note: &str,
    now: i64,
) -> Result<bool> {
    let changed = db.execute(
        "UPDATE agreements SET state = $3, decided_by = $4, decision_note = $5, update_time = $6
         WHERE id = $1 AND state = $2",
        params![id, from as i32, to as i32, decided_by, note, now],
    )?;
    Ok(changed == 1)
}
