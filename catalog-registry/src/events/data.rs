//! What a domain's report of its data says changed: a load newer than the
//! last one reported (its rows, load id, time and quality), and each
//! quality rule that began to fail or recovered since that load. Only a
//! load newer than the last one an event reported counts, so replicas that
//! each report their own copy, or a report repeated with every lease
//! renewal, write nothing new. Seen by the product's readers only
//! ([`Audience::Data`]).

use mesh_contracts::catalog::DataStatus;
use serde_json::{Value, json};

use super::kinds::{DATA_LOADED, QUALITY_FAILED, QUALITY_RECOVERED};
use crate::error::Result;
use crate::params;
use crate::store::events::{Audience, NewEvent};
use crate::store::sql::Sql;

/// The events `status`, reported for `product`, calls for.
pub fn reported(db: &mut dyn Sql, product: &str, status: &DataStatus) -> Result<Vec<NewEvent>> {
    let Some(loaded) = status.last_loaded_time.as_ref().map(mesh_contracts::time::ms) else {
        return Ok(Vec::new());
    };
    // Two replicas reporting one load at once: the second reads the first's event.
    crate::store::events::lock(db)?;
    let last = db
        .query_opt(
            "SELECT data FROM events WHERE subject = $1 AND type = $2 ORDER BY sequence DESC LIMIT 1",
            params![product, DATA_LOADED],
        )?
        .map(|row| row.text(0))
        .transpose()?
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let last_time = last.as_ref().and_then(|l| l["loaded_time_ms"].as_i64());
    if last_time.is_some_and(|time| time >= loaded) {
        return Ok(Vec::new());
    }
    let was_failing: Vec<&str> = last
        .as_ref()
        .and_then(|l| l["quality"]["failing"].as_array())
        .map(|rules| rules.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let failing: Vec<&str> =
        status.quality_results.iter().filter(|r| !r.passed).map(|r| r.rule.as_str()).collect();
    let data = |kind: &'static str, data: Value| NewEvent {
        kind,
        product: product.to_owned(),
        data,
        audience: Audience::Data,
    };
    let mut events = vec![data(
        DATA_LOADED,
        json!({
            "rows": status.row_count,
            "load_id": status.load_id,
            "loaded_time_ms": loaded,
            "quality": { "passed": status.quality_results.len() - failing.len(), "failing": failing },
        }),
    )];
    for result in &status.quality_results {
        let kind = match (result.passed, was_failing.contains(&result.rule.as_str())) {
            (false, false) => QUALITY_FAILED,
            (true, true) => QUALITY_RECOVERED,
            _ => continue,
        };
        events.push(data(
            kind,
            json!({
                "rule": result.rule,
                "description": result.description,
                "failed_rows": result.failed_rows,
                "checked_rows": result.checked_rows,
            }),
        ));
    }
    Ok(events)
}
