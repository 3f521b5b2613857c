//! Turning a `QueryRequest` into one SQL statement: projection, filter,
//! order, resume position and limit, with every value bound.

use mesh_contracts::product::QueryRequest;
use rusqlite::types::Value;
use sha2::{Digest, Sha256};

use crate::error::{DomainError, Result};
use crate::filter;
use crate::resume::{ResumePoint, ResumeTokens};
use crate::schema::RowSchema;

/// One sort column: a schema column index (or `None` for rowid) and direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SortColumn {
    /// The schema column, or `None` for SQLite's rowid (the last tiebreak).
    pub column: Option<usize>,
    /// Descending order.
    pub descending: bool,
}

/// A compiled query.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The SELECT statement: projected columns first, then the sort key.
    pub sql: String,
    /// Values bound to its placeholders.
    pub params: Vec<Value>,
    /// Schema indexes of the projected columns, in output order.
    pub projection: Vec<usize>,
    /// The full sort key, ending with rowid; selected after the projection.
    pub sort: Vec<SortColumn>,
    /// Digest of the query, bound into its resume tokens.
    pub digest: Vec<u8>,
    /// Rows delivered before this query's start (from its resume token).
    pub delivered: u64,
}

/// Compiles `request` for `schema`, checking every field.
pub fn plan(request: &QueryRequest, schema: &RowSchema, tokens: &ResumeTokens) -> Result<QueryPlan> {
    if request.limit < 0 {
        return Err(DomainError::invalid(
            "limit",
            format!("{} is negative; use a positive number of rows, or 0 for no limit", request.limit),
        ));
    }
    let projection = projection(request, schema)?;
    let order = order_by(&request.order_by, schema)?;
    let filter = filter::compile(&request.filter, schema)?;

    let mut sort: Vec<SortColumn> = order.clone();
    for &key in &schema.key {
        if !sort.iter().any(|s| s.column == Some(key)) {
            sort.push(SortColumn { column: Some(key), descending: false });
        }
    }
    sort.push(SortColumn { column: None, descending: false });

    let digest = digest(request, &projection);
    let resume = if request.resume_token.is_empty() {
        None
    } else {
        let point = tokens.check(&request.resume_token, &digest)?;
        if point.key.len() != sort.len() {
            return Err(DomainError::invalid(
                "resume_token",
                "the token does not match this query's sort key",
            ));
        }
        Some(point)
    };

    let name = |s: &SortColumn| s.column.map_or("rowid", |c| schema.columns[c].name.as_str()).to_owned();
    let mut selected: Vec<String> = projection.iter().map(|&c| schema.columns[c].name.clone()).collect();
    selected.extend(sort.iter().map(name));

    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if !filter.sql.is_empty() {
        conditions.push(format!("({})", filter.sql));
        params.extend(filter.params);
    }
    if let Some(point) = &resume {
        conditions.push(after_condition(&sort, &point.key, &name, &mut params));
    }
    let mut sql = format!("SELECT {} FROM {}", selected.join(", "), schema.table);
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let order_sql: Vec<String> =
        sort.iter().map(|s| format!("{}{}", name(s), if s.descending { " DESC" } else { "" })).collect();
    sql.push_str(" ORDER BY ");
    sql.push_str(&order_sql.join(", "));
    let delivered = resume.as_ref().map_or(0, |p| p.delivered);
    if request.limit > 0 {
        let remaining = (request.limit as u64).saturating_sub(delivered);
        sql.push_str(&format!(" LIMIT {remaining}"));
    }
    Ok(QueryPlan { sql, params, projection, sort, digest, delivered })
}

/// The condition "sorts after `key`" over `sort`: a row value comparison
/// when every column ascends (so SQLite can seek an index), otherwise the
/// expanded form.
fn after_condition(
    sort: &[SortColumn],
    key: &[Value],
    name: &dyn Fn(&SortColumn) -> String,
    params: &mut Vec<Value>,
) -> String {
    if sort.iter().all(|s| !s.descending) {
        let names: Vec<String> = sort.iter().map(name).collect();
        params.extend(key.iter().cloned());
        return format!("({}) > ({})", names.join(", "), vec!["?"; key.len()].join(", "));
    }
    let mut alternatives = Vec::new();
    for i in 0..sort.len() {
        let mut terms = Vec::new();
        for (s, value) in sort.iter().zip(key).take(i) {
            terms.push(format!("{} = ?", name(s)));
            params.push(value.clone());
        }
        let op = if sort[i].descending { "<" } else { ">" };
        terms.push(format!("{} {op} ?", name(&sort[i])));
        params.push(key[i].clone());
        alternatives.push(format!("({})", terms.join(" AND ")));
    }
    format!("({})", alternatives.join(" OR "))
}

fn projection(request: &QueryRequest, schema: &RowSchema) -> Result<Vec<usize>> {
    let paths = request.read_mask.as_ref().map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() {
        return Ok((0..schema.columns.len()).collect());
    }
    let mut projection = Vec::new();
    for path in paths {
        let Some((index, _)) = schema.column(path.trim()) else {
            return Err(DomainError::invalid(
                "read_mask",
                format!("unknown field `{path}`; valid fields: {}", schema.field_list()),
            ));
        };
        if !projection.contains(&index) {
            projection.push(index);
        }
    }
    Ok(projection)
}

/// Parses `field [asc|desc], ...`.
pub fn order_by(spec: &str, schema: &RowSchema) -> Result<Vec<SortColumn>> {
    let mut order = Vec::new();
    if spec.trim().is_empty() {
        return Ok(order);
    }
    for part in spec.split(',') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let (field, descending) = match words.as_slice() {
            [field] => (*field, false),
            [field, dir] if dir.eq_ignore_ascii_case("asc") => (*field, false),
            [field, dir] if dir.eq_ignore_ascii_case("desc") => (*field, true),
            [field, dir] => {
                return Err(DomainError::invalid(
                    "order_by",
                    format!("`{dir}` after `{field}` is not a direction; use asc or desc"),
                ));
            }
            [] => return Err(DomainError::invalid("order_by", format!("empty item in `{spec}`"))),
            _ => {
                return Err(DomainError::invalid(
                    "order_by",
                    format!("`{}` is not `field [asc|desc]`; separate fields with commas", part.trim()),
                ));
            }
        };
        let Some((index, _)) = schema.column(field) else {
            return Err(DomainError::invalid(
                "order_by",
                format!("unknown field `{field}`; valid fields: {}", schema.field_list()),
            ));
        };
        if order.iter().any(|s: &SortColumn| s.column == Some(index)) {
            return Err(DomainError::invalid("order_by", format!("`{field}` appears twice")));
        }
        order.push(SortColumn { column: Some(index), descending });
    }
    Ok(order)
}

fn digest(request: &QueryRequest, projection: &[usize]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in [request.filter.as_str(), request.order_by.as_str()] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    for column in projection {
        hasher.update((*column as u64).to_le_bytes());
    }
    hasher.update(request.limit.to_le_bytes());
    hasher.finalize()[..16].to_vec()
}

impl QueryPlan {
    /// The resume point after a row whose sort key is `key`, having
    /// delivered `rows` rows in this stream.
    pub fn point(&self, key: Vec<Value>, rows: u64) -> ResumePoint {
        ResumePoint { query: self.digest.clone(), delivered: self.delivered + rows, key }
    }
}
