//! Turning a `QueryRequest` into one SQL statement: projection, filter,
//! order, resume position and limit, with every value bound, under what the
//! caller's [`Grant`] allows: only readable columns are projected, named or
//! compared; pseudonymized columns are neither filtered nor ordered on;
//! the agreement's row scope wraps the caller's filter inside the SQL.

use mesh_contracts::product::QueryRequest;
use sha2::{Digest, Sha256};

use crate::error::{DomainError, Result};
use crate::query::dialect::Dialect;
use crate::query::filter;
use crate::query::grant::Grant;
use crate::query::part::{Part, split};
use crate::query::pseudonym::PseudonymKey;
use crate::query::resume::{ResumePoint, ResumeTokens};
use crate::values::Value;
use crate::values::schema::RowSchema;

/// One sort column: a schema column index (or `None` for rowid) and direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SortColumn {
    /// The schema column, or `None` for SQLite's rowid (the last tiebreak).
    pub column: Option<usize>,
    /// Descending order.
    pub descending: bool,
    /// Sorted by a keyed hash of the column's value (the caller's order
    /// key) rather than by the value: for identifiers delivered as
    /// pseudonyms, whose real order must not show.
    pub keyed: bool,
}

impl SortColumn {
    /// Ascending by `column`.
    fn by(column: usize) -> Self {
        Self { column: Some(column), descending: false, keyed: false }
    }

    /// What the statement sorts by: the column, its keyed order (computed
    /// under this name by [`QueryPlan::sql`]), or rowid.
    fn sql_name(&self, schema: &RowSchema) -> String {
        match self.column {
            None => "rowid".to_owned(),
            Some(c) if self.keyed => format!("mesh_order_{c}"),
            Some(c) => schema.columns[c].name.clone(),
        }
    }
}

/// A compiled query.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// What the statement selects: projected columns first, then the sort key.
    pub columns: String,
    /// What follows `FROM <table>`: ` WHERE ...` (or nothing).
    pub conditions: String,
    /// ` ORDER BY ...` over the selected sort key.
    pub order: String,
    /// Rows still to deliver under the request's limit, if it has one.
    pub remaining: Option<u64>,
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
    /// The load the resumed stream was reading, if this query resumes one.
    pub resumed_load: Option<u64>,
    /// The load a part of a read was planned on, if this query is one.
    pub part_load: Option<u64>,
    /// How the read may come in parts: by rowid (`false`) or by the
    /// caller's keyed order (`true`); `None` when it stays whole.
    pub split: Option<bool>,
    /// Per projected column: delivered as a pseudonym.
    pub pseudonymized: Vec<bool>,
    /// The caller's pseudonym key, when a projected column is pseudonymized.
    pub pseudonyms: Option<PseudonymKey>,
    /// Columns left out because the caller may not read them (when no read
    /// mask was given).
    pub withheld: Vec<String>,
    /// The rows of one page when the caller reads in pages (REST's JSON
    /// pages): the scan reads one more, which tells whether another follows.
    pub page: Option<u64>,
    /// The keyed order expressions computed beside the table's columns
    /// (`expr AS mesh_order_N`), each binding the order key first.
    pub keyed: Vec<String>,
    /// The dialect the statement is written in.
    pub dialect: Dialect,
    /// The caller's filter narrows the rows (so a sorting scan expects few).
    pub filtered: bool,
    /// The store sorts the rows itself as it scans them (a keyed order on
    /// SQLite, which no index holds): the statement reads them unsorted.
    pub sorts_in_scan: bool,
}

/// Compiles `request` for `schema` under `grant`, checking every field;
/// with `part`, only that part of the rows, in the load's order.
pub(crate) fn plan(
    request: &QueryRequest,
    schema: &RowSchema,
    tokens: &ResumeTokens,
    grant: &Grant,
    dialect: Dialect,
    part: Option<&Part>,
) -> Result<QueryPlan> {
    if request.limit < 0 {
        return Err(DomainError::invalid(
            "limit",
            format!("{} is negative; use a positive number of rows, or 0 for no limit", request.limit),
        ));
    }
    // 1. What the caller asks for, checked against what the grant lets them read.
    let asked = Asked::checked(request, schema, grant, dialect)?;
    let scope = row_scope(schema, grant, dialect)?;
    // 2. The full sort key, and the keyed expressions that order what the
    //    caller sees only as pseudonyms (each binds the order key first).
    let sort = sort_key(asked.order, schema, grant);
    let split = split(request, grant, sort.iter().any(|s| s.keyed));
    let sort = match part {
        // Parts only for callers the part boundaries tell nothing (part.rs).
        Some(part) if split != Some(part.keyed) => {
            return Err(DomainError::Aborted(
                "ticket: the read it is a part of is no longer one the caller may read in parts (the \
                 agreement or the contract changed); ask GetFlightInfo for new tickets"
                    .to_owned(),
            ));
        }
        Some(part) if !part.keyed => vec![SortColumn { column: None, descending: false, keyed: false }],
        _ => sort,
    };
    let (keyed, mut params) = keyed_orders(&sort, schema, grant, dialect);
    // 3. Where a resumed query starts, from a token bound to this query.
    let digest = digest(request, &asked.projection, &grant.binding, part);
    let part_load = part.map(|p| p.load);
    let resume = resume_point(&request.resume_token, tokens, &digest, sort.len())?;
    // 4. The statement: select list, conditions, order. On SQLite a keyed
    //    order is computed in the select list and the store sorts the rows.
    let sorts_in_scan = dialect == Dialect::Sqlite && !keyed.is_empty();
    let columns = select_list(&asked.projection, &sort, &keyed, sorts_in_scan, schema);
    let filtered = !asked.filter.sql.is_empty();
    let part = part.map(|part| part_condition(part, &sort, schema, grant, dialect)).transpose()?;
    let conditions = where_clause(scope, asked.filter, part, resume.as_ref(), &sort, schema, &mut params);
    let order_sql: Vec<String> = sort
        .iter()
        .map(|s| format!("{}{}", s.sql_name(schema), if s.descending { " DESC" } else { "" }))
        .collect();
    // 5. What the scan needs beside the statement.
    let delivered = resume.as_ref().map_or(0, |p| p.delivered);
    let remaining = (request.limit > 0).then(|| (request.limit as u64).saturating_sub(delivered));
    let pseudonymized: Vec<bool> = asked.projection.iter().map(|&c| grant.pseudonymized[c]).collect();
    let pseudonyms = if pseudonymized.iter().any(|p| *p) { grant.pseudonyms.clone() } else { None };
    Ok(QueryPlan {
        columns,
        conditions,
        order: format!(" ORDER BY {}", order_sql.join(", ")),
        remaining,
        params,
        projection: asked.projection,
        sort,
        digest,
        delivered,
        resumed_load: resume.as_ref().map(|p| p.load),
        part_load,
        split,
        pseudonymized,
        pseudonyms,
        withheld: asked.withheld,
        page: None,
        filtered,
        sorts_in_scan,
        keyed,
        dialect,
    })
}

/// What a request asks for, once checked against the caller's grant.
struct Asked {
    /// The columns delivered, in output order.
    projection: Vec<usize>,
    /// Columns left out because the caller may not read them (no read mask).
    withheld: Vec<String>,
    /// The requested order, before the key and rowid complete it.
    order: Vec<SortColumn>,
    /// The caller's filter as SQL.
    filter: filter::SqlFilter,
}

impl Asked {
    /// The read mask, order and filter of `request`, refused when they name
    /// a column the grant does not deliver, or compare or order by one it
    /// delivers only as a pseudonym. Without a read mask, the columns the
    /// caller may not read are left out and named.
    fn checked(request: &QueryRequest, schema: &RowSchema, grant: &Grant, dialect: Dialect) -> Result<Self> {
        let asked = projection(request, schema)?;
        let masked = asked.len() < schema.columns.len()
            || request.read_mask.as_ref().is_some_and(|m| !m.paths.is_empty());
        let order = order_by(&request.order_by, schema)?;
        let filter = filter::compile(&request.filter, schema, dialect)?;
        let ordered: Vec<usize> = order.iter().filter_map(|s| s.column).collect();
        if masked {
            refuse_unreadable(&asked, "read_mask", schema, grant)?;
        }
        refuse_unreadable(&filter.fields, "filter", schema, grant)?;
        refuse_unreadable(&ordered, "order_by", schema, grant)?;
        refuse_pseudonymized(&filter.fields, "filter", schema, grant)?;
        refuse_pseudonymized(&ordered, "order_by", schema, grant)?;
        let projection: Vec<usize> =
            if masked { asked } else { asked.into_iter().filter(|&c| grant.readable[c]).collect() };
        let withheld = if masked { Vec::new() } else { grant.withheld(schema) };
        Ok(Self { projection, withheld, order, filter })
    }
}

/// The keyed order expressions of `sort` (`expr AS mesh_order_N`) and the
/// caller's order key bound once for each.
fn keyed_orders(
    sort: &[SortColumn],
    schema: &RowSchema,
    grant: &Grant,
    dialect: Dialect,
) -> (Vec<String>, Vec<Value>) {
    let order_key = grant.pseudonyms.as_ref().map(PseudonymKey::order_key).unwrap_or_default();
    sort.iter()
        .filter(|s| s.keyed)
        .map(|s| {
            let column = &schema.columns[s.column.unwrap_or_default()];
            let expression =
                format!("{} AS {}", dialect.keyed_order(&column.name, column.kind), s.sql_name(schema));
            (expression, Value::Blob(order_key.clone()))
        })
        .unzip()
}

/// The point a resume token says the query stopped at (none for a new
/// query), refused unless the token belongs to this very query.
fn resume_point(
    token: &str,
    tokens: &ResumeTokens,
    digest: &[u8],
    sort_len: usize,
) -> Result<Option<ResumePoint>> {
    if token.is_empty() {
        return Ok(None);
    }
    let point = tokens.check(token, digest)?;
    if point.key.len() != sort_len {
        return Err(DomainError::invalid("resume_token", "the token does not match this query's sort key"));
    }
    Ok(Some(point))
}

/// The projected columns, then the sort key (a keyed order computed in
/// place when the scan sorts, otherwise by its alias).
fn select_list(
    projection: &[usize],
    sort: &[SortColumn],
    keyed: &[String],
    sorts_in_scan: bool,
    schema: &RowSchema,
) -> String {
    let mut computed = keyed.iter();
    let mut selected: Vec<String> = projection.iter().map(|&c| schema.columns[c].name.clone()).collect();
    selected.extend(sort.iter().map(
        |s| match (s.keyed && sorts_in_scan).then(|| computed.next()).flatten() {
            Some(expression) => expression.clone(),
            None => s.sql_name(schema),
        },
    ));
    selected.join(", ")
}

/// ` WHERE ...` (or nothing): the agreement's rows first, as a condition of
/// its own, so no filter of the caller's, however written, can widen them;
/// then the caller's filter; then a part's range; then the rows after a
/// resume point.
fn where_clause(
    scope: filter::SqlFilter,
    filter: filter::SqlFilter,
    part: Option<filter::SqlFilter>,
    resume: Option<&ResumePoint>,
    sort: &[SortColumn],
    schema: &RowSchema,
    params: &mut Vec<Value>,
) -> String {
    let mut conditions = Vec::new();
    for part in [Some(scope), Some(filter), part].into_iter().flatten() {
        if !part.sql.is_empty() {
            conditions.push(format!("({})", part.sql));
            params.extend(part.params);
        }
    }
    if let Some(point) = resume {
        conditions.push(after_condition(sort, &point.key, &|s: &SortColumn| s.sql_name(schema), params));
    }
    if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) }
}

/// The rows of `part`: its rowids, or (a keyed part) the rows whose keyed
/// order of the first column `sort` hashes is in its range, computed once
/// per row (`BETWEEN` evaluates its operand once).
fn part_condition(
    part: &Part,
    sort: &[SortColumn],
    schema: &RowSchema,
    grant: &Grant,
    dialect: Dialect,
) -> Result<filter::SqlFilter> {
    if !part.keyed {
        let params = vec![Value::Integer(part.after), Value::Integer(part.up_to)];
        return Ok(filter::SqlFilter {
            sql: "rowid > ? AND rowid <= ?".to_owned(),
            params,
            ..Default::default()
        });
    }
    let hashed = sort.iter().find(|s| s.keyed).and_then(|s| s.column);
    let (Some(column), Some(key)) = (hashed.map(|c| &schema.columns[c]), grant.pseudonyms.as_ref()) else {
        return Err(DomainError::Internal("a keyed part of a read with no keyed order".to_owned()));
    };
    Ok(filter::SqlFilter {
        sql: format!("{} BETWEEN ? AND ?", dialect.keyed_order(&column.name, column.kind)),
        params: vec![
            Value::Blob(key.order_key()),
            Value::Integer(part.after.saturating_add(1)),
            Value::Integer(part.up_to),
        ],
        ..Default::default()
    })
}

/// The full sort key: the requested order, then the product's key, then
/// rowid. For a caller who receives identifiers as pseudonyms, each such
/// column of the key (and any other, and a key column it may not read at
/// all) sorts by the caller's keyed hash of it, just before rowid's place:
/// the order, the resume points and the page boundaries then tell nothing
/// of the real values (rowid follows the load, which may follow them, and
/// breaks no tie the hash leaves), and differ between callers.
fn sort_key(order: Vec<SortColumn>, schema: &RowSchema, grant: &Grant) -> Vec<SortColumn> {
    let mut sort = order;
    for &key in &schema.key {
        if !sort.iter().any(|s| s.column == Some(key)) {
            // A key column the caller may not read in the clear is no
            // order of its either.
            let hidden = grant.pseudonymized[key] || !grant.readable[key];
            sort.push(SortColumn { keyed: hidden, ..SortColumn::by(key) });
        }
    }
    for (column, _) in grant.pseudonymized.iter().enumerate().filter(|(_, p)| **p) {
        if !sort.iter().any(|s| s.column == Some(column)) {
            sort.push(SortColumn { keyed: true, ..SortColumn::by(column) });
        }
    }
    sort.push(SortColumn { column: None, descending: false, keyed: false });
    sort
}

/// The agreement's row scope compiled, checked again at read time: it may
/// compare only columns the agreement delivers in the clear (an agreement
/// stored with any other scope reads nothing until its owners correct it).
fn row_scope(schema: &RowSchema, grant: &Grant, dialect: Dialect) -> Result<filter::SqlFilter> {
    let agreement = grant.agreement.as_deref().unwrap_or("the agreement");
    let refuse = |why: String| {
        DomainError::PermissionDenied(format!(
            "the row scope of {agreement} {why}, so nothing can be read under it; ask the product's owners \
             to correct it"
        ))
    };
    let parsed = mesh_filter::parse(&grant.row_scope, schema)
        .map_err(|error| refuse(format!("is not a valid filter ({error})")))?;
    if let Some(&column) = parsed.fields.iter().find(|&&c| !grant.readable[c] || grant.pseudonymized[c]) {
        return Err(refuse(format!(
            "compares `{}`, which the agreement does not deliver in the clear",
            schema.columns[column].name
        )));
    }
    Ok(filter::to_sql(&parsed, schema, dialect))
}

/// Refuses a request that names (in `field`) columns the caller may not read.
fn refuse_unreadable(columns: &[usize], field: &str, schema: &RowSchema, grant: &Grant) -> Result<()> {
    let names: Vec<&str> =
        columns.iter().filter(|&&c| !grant.readable[c]).map(|&c| schema.columns[c].name.as_str()).collect();
    if names.is_empty() {
        return Ok(());
    }
    Err(DomainError::PermissionDenied(format!(
        "{field} names {} not in your agreement for {}; ask for {} with `mesh access request {} --purpose \"...\" \
         --columns {}`",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        grant.product,
        if names.len() == 1 { "it" } else { "them" },
        grant.product,
        names.join(",")
    )))
}

/// Refuses filtering or ordering on the real value of a pseudonymized column.
fn refuse_pseudonymized(columns: &[usize], field: &str, schema: &RowSchema, grant: &Grant) -> Result<()> {
    let Some(&column) = columns.iter().find(|&&c| grant.pseudonymized[c]) else { return Ok(()) };
    let name = &schema.columns[column].name;
    Err(DomainError::PermissionDenied(format!(
        "{field} uses `{name}`, which you receive as a pseudonym: its real value needs an agreement granting it \
         raw (`mesh access request {} --purpose \"...\" --columns {name} --raw {name}`)",
        grant.product
    )))
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
pub(crate) fn order_by(spec: &str, schema: &RowSchema) -> Result<Vec<SortColumn>> {
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
        order.push(SortColumn { descending, ..SortColumn::by(index) });
    }
    Ok(order)
}

fn digest(request: &QueryRequest, projection: &[usize], binding: &[u8], part: Option<&Part>) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update((binding.len() as u64).to_le_bytes());
    hasher.update(binding);
    for part in [request.filter.as_str(), request.order_by.as_str()] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    for column in projection {
        hasher.update((*column as u64).to_le_bytes());
    }
    hasher.update(request.limit.to_le_bytes());
    if let Some(part) = part {
        hasher.update(if part.keyed { b"keyed part" as &[u8] } else { b"part" });
        hasher.update(part.after.to_le_bytes());
        hasher.update(part.up_to.to_le_bytes());
    }
    hasher.finalize()[..16].to_vec()
}

impl QueryPlan {
    /// The statement reading `table`, in the plan's dialect: at most the
    /// rows of [`QueryPlan::row_limit`], in order, unless the store sorts
    /// them itself.
    pub(crate) fn sql(&self, table: &str) -> String {
        let source = if self.keyed.is_empty() || self.sorts_in_scan {
            table.to_owned()
        } else {
            self.dialect.rows_with(table, &self.keyed.join(", "))
        };
        let mut sql = format!("SELECT {} FROM {source}{}", self.columns, self.conditions);
        if !self.sorts_in_scan {
            sql.push_str(&self.order);
            if let Some(n) = self.row_limit() {
                sql.push_str(&format!(" LIMIT {n}"));
            }
        }
        self.dialect.placeholders(&sql, &self.params)
    }

    /// The statement of a plan the store sorts, reading only the rows whose
    /// rowid is in a range, bound after the plan's values: `rowid > ? AND
    /// rowid <= ?` (SQLite only).
    pub(crate) fn sql_in_rowid_range(&self, table: &str) -> String {
        let join = if self.conditions.is_empty() { " WHERE" } else { " AND" };
        format!("SELECT {} FROM {table}{}{join} rowid > ? AND rowid <= ?", self.columns, self.conditions)
    }

    /// Rows the scan reads at most: those the limit leaves, and for a page
    /// one more than it holds (which tells whether another follows).
    pub(crate) fn row_limit(&self) -> Option<u64> {
        let page = self.page.map(|size| size + 1);
        match (self.remaining, page) {
            (Some(remaining), Some(page)) => Some(remaining.min(page)),
            (limit, None) | (None, limit) => limit,
        }
    }

    /// The resume point after a row whose sort key is `key`, having
    /// delivered `rows` rows in this stream of the data of `load`.
    pub(crate) fn point(&self, key: Vec<Value>, rows: u64, load: u64) -> ResumePoint {
        ResumePoint { query: self.digest.clone(), delivered: self.delivered + rows, key, load }
    }
}

#[cfg(test)]
mod tests {
    use crate::values::Value::{Integer, Text};

    use super::*;
    use crate::values::test_schema::schema;

    const FIELDS: &str = "name, amount, score, flag, seq";

    fn tokens() -> ResumeTokens {
        ResumeTokens::new(b"test secret".to_vec(), "test.rows")
    }

    fn request(filter: &str, order_by: &str, limit: i64) -> QueryRequest {
        QueryRequest { filter: filter.into(), order_by: order_by.into(), limit, ..Default::default() }
    }

    fn masked(paths: &[&str]) -> QueryRequest {
        QueryRequest {
            read_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            ..Default::default()
        }
    }

    fn refused(request: &QueryRequest) -> String {
        plan(request, &schema(), &tokens(), &Grant::full(&schema()), Dialect::Sqlite, None)
            .map(|p| p.sql("t"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn order_by_reads_fields_and_directions() {
        let sort = |column, descending| SortColumn { descending, ..SortColumn::by(column) };
        let cases = [
            ("", vec![]),
            ("amount", vec![sort(1, false)]),
            ("amount desc", vec![sort(1, true)]),
            ("amount DESC, name ASC", vec![sort(1, true), sort(0, false)]),
            ("  score   desc ,flag", vec![sort(2, true), sort(3, false)]),
        ];
        for (spec, expected) in cases {
            assert_eq!(order_by(spec, &schema()).unwrap(), expected, "{spec}");
        }
    }

    #[test]
    fn order_by_errors_name_the_problem() {
        let cases = [
            ("nope", format!("order_by: unknown field `nope`; valid fields: {FIELDS}")),
            ("amount down", "order_by: `down` after `amount` is not a direction; use asc or desc".into()),
            ("amount,", "order_by: empty item in `amount,`".into()),
            (
                "amount desc name",
                "order_by: `amount desc name` is not `field [asc|desc]`; separate fields with commas".into(),
            ),
            ("amount, amount desc", "order_by: `amount` appears twice".into()),
        ];
        for (spec, expected) in cases {
            assert_eq!(order_by(spec, &schema()).unwrap_err().to_string(), expected, "{spec}");
        }
    }

    #[test]
    fn a_part_reads_its_rowids_in_the_load_order_and_only_for_the_owner() {
        let part = Part { after: 100, up_to: 200, load: 9, keyed: false };
        let owner = Grant::full(&schema());
        let compiled =
            plan(&request("", "", 0), &schema(), &tokens(), &owner, Dialect::Sqlite, Some(&part)).unwrap();
        assert_eq!(
            compiled.sql("t"),
            "SELECT name, amount, score, flag, seq, rowid FROM t WHERE (rowid > ? AND rowid <= ?) ORDER BY rowid"
        );
        assert_eq!(compiled.params, vec![Integer(100), Integer(200)]);
        assert_eq!(compiled.part_load, Some(9));
        let whole = plan(&request("", "", 0), &schema(), &tokens(), &owner, Dialect::Sqlite, None).unwrap();
        assert_ne!(compiled.digest, whole.digest, "a part's resume tokens are good for that part only");
        let filtered =
            plan(&request("amount > 5", "", 0), &schema(), &tokens(), &owner, Dialect::Sqlite, Some(&part));
        assert!(filtered.unwrap_err().to_string().contains("ask GetFlightInfo for new tickets"));
        let consumer = Grant { owner: false, ..Grant::full(&schema()) };
        assert!(
            plan(&request("", "", 0), &schema(), &tokens(), &consumer, Dialect::Sqlite, Some(&part)).is_err()
        );
        let mut scoped = Grant::full(&schema());
        scoped.row_scope = "amount > 1".into();
        assert!(
            plan(&request("", "", 0), &schema(), &tokens(), &scoped, Dialect::Sqlite, Some(&part)).is_err()
        );
        let mut pseudonymized = Grant::full(&schema());
        pseudonymized.pseudonymized[4] = true;
        assert!(
            plan(&request("", "", 0), &schema(), &tokens(), &pseudonymized, Dialect::Sqlite, Some(&part))
                .is_err()
        );
    }

    #[test]
    fn a_keyed_part_reads_a_range_of_the_callers_keyed_order_and_only_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        mesh_grpc::private_files::create_secret(&path).unwrap();
        let mut grant = Grant { owner: false, ..Grant::full(&schema()) };
        grant.pseudonymized[4] = true;
        grant.pseudonyms = Some(PseudonymKey::read(&path).unwrap());
        let order_key = grant.pseudonyms.as_ref().unwrap().order_key();
        let part = Part { after: i64::MIN, up_to: 99, load: 9, keyed: true };
        let compiled =
            plan(&request("", "", 0), &schema(), &tokens(), &grant, Dialect::Sqlite, Some(&part)).unwrap();
        assert!(compiled.sorts_in_scan, "each part in the caller's keyed order");
        assert_eq!(
            compiled.sql("t"),
            "SELECT name, amount, score, flag, seq, mesh_order(?, seq) AS mesh_order_4, rowid FROM t \
             WHERE (mesh_order(?, seq) BETWEEN ? AND ?)"
        );
        let key = Value::Blob(order_key);
        assert_eq!(compiled.params, vec![key.clone(), key, Integer(i64::MIN + 1), Integer(99)]);
        assert_eq!(compiled.part_load, Some(9));
        let by_rowid = Part { keyed: false, ..part.clone() };
        let as_rowids =
            plan(&request("", "", 0), &schema(), &tokens(), &grant, Dialect::Sqlite, Some(&by_rowid));
        assert!(as_rowids.unwrap_err().to_string().contains("ask GetFlightInfo for new tickets"));
        let owner = Grant::full(&schema());
        assert!(
            plan(&request("", "", 0), &schema(), &tokens(), &owner, Dialect::Sqlite, Some(&part)).is_err()
        );
        let limited = plan(&request("", "", 5), &schema(), &tokens(), &grant, Dialect::Sqlite, Some(&part));
        assert!(limited.is_err(), "a read with a limit has no parts");
        // Without a key of the caller's own, its order is a hash anyone can
        // compute: no ranges of it.
        let mut unkeyed = Grant { pseudonyms: None, ..grant.clone() };
        unkeyed.pseudonymized[4] = false;
        unkeyed.readable[4] = false;
        let refused =
            plan(&masked(&["amount"]), &schema(), &tokens(), &unkeyed, Dialect::Sqlite, Some(&part));
        assert!(refused.unwrap_err().to_string().contains("ask GetFlightInfo for new tickets"));
    }

    #[test]
    fn a_plan_selects_the_projection_then_the_sort_key() {
        let compiled = plan(
            &request("amount > 5", "amount desc", 10),
            &schema(),
            &tokens(),
            &Grant::full(&schema()),
            Dialect::Sqlite,
            None,
        )
        .unwrap();
        assert_eq!(
            compiled.sql("t"),
            "SELECT name, amount, score, flag, seq, amount, seq, rowid FROM t WHERE (amount > ?) \
             ORDER BY amount DESC, seq, rowid LIMIT 10"
        );
        assert_eq!(compiled.params, vec![Integer(5)]);
        assert_eq!(compiled.projection, vec![0, 1, 2, 3, 4]);

        let compiled = plan(
            &masked(&["seq", " amount ", "seq"]),
            &schema(),
            &tokens(),
            &Grant::full(&schema()),
            Dialect::Sqlite,
            None,
        )
        .unwrap();
        assert_eq!(compiled.sql("t"), "SELECT seq, amount, seq, rowid FROM t ORDER BY seq, rowid");
        assert_eq!(compiled.projection, vec![4, 1]);
    }

    #[test]
    fn a_keyed_order_on_sqlite_reads_rows_unsorted_for_the_store_to_sort() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        mesh_grpc::private_files::create_secret(&path).unwrap();
        let mut grant = Grant::full(&schema());
        grant.pseudonymized[4] = true;
        grant.pseudonyms = Some(PseudonymKey::read(&path).unwrap());
        let request = QueryRequest { limit: 7, ..masked(&["seq", "amount"]) };
        let sqlite = plan(&request, &schema(), &tokens(), &grant, Dialect::Sqlite, None).unwrap();
        assert!(sqlite.sorts_in_scan);
        assert_eq!(sqlite.sql("t"), "SELECT seq, amount, mesh_order(?, seq) AS mesh_order_4, rowid FROM t");
        assert_eq!(sqlite.row_limit(), Some(7), "the store keeps the limit");
        assert_eq!(
            sqlite.sql_in_rowid_range("t"),
            "SELECT seq, amount, mesh_order(?, seq) AS mesh_order_4, rowid FROM t WHERE rowid > ? AND rowid <= ?"
        );
        // PostgreSQL sorts the rows itself.
        let postgres = plan(&request, &schema(), &tokens(), &grant, Dialect::Postgres, None).unwrap();
        assert!(!postgres.sorts_in_scan);
        assert!(postgres.sql("t").ends_with("ORDER BY mesh_order_4, rowid LIMIT 7"), "{}", postgres.sql("t"));
        // Without a keyed order nothing changes.
        let owner =
            plan(&request, &schema(), &tokens(), &Grant::full(&schema()), Dialect::Sqlite, None).unwrap();
        assert!(!owner.sorts_in_scan);
        assert_eq!(owner.sql("t"), "SELECT seq, amount, seq, rowid FROM t ORDER BY seq, rowid LIMIT 7");
    }

    #[test]
    fn bad_masks_and_limits_are_refused() {
        assert_eq!(
            refused(&masked(&["nope"])),
            format!("read_mask: unknown field `nope`; valid fields: {FIELDS}")
        );
        assert_eq!(
            refused(&request("", "", -1)),
            "limit: -1 is negative; use a positive number of rows, or 0 for no limit"
        );
    }

    #[test]
    fn the_resume_condition_seeks_with_a_row_value_when_every_column_ascends() {
        let sort = [SortColumn::by(1), SortColumn { column: None, descending: false, keyed: false }];
        let schema = schema();
        let name = |s: &SortColumn| s.sql_name(&schema);
        let mut params = Vec::new();
        let condition = after_condition(&sort, &[Integer(7), Integer(3)], &name, &mut params);
        assert_eq!(condition, "(amount, rowid) > (?, ?)");
        assert_eq!(params, vec![Integer(7), Integer(3)]);
    }

    #[test]
    fn the_resume_condition_expands_when_a_column_descends() {
        let sort = [
            SortColumn { descending: true, ..SortColumn::by(1) },
            SortColumn::by(4),
            SortColumn { column: None, descending: false, keyed: false },
        ];
        let schema = schema();
        let name = |s: &SortColumn| s.sql_name(&schema);
        let mut params = Vec::new();
        let key = [Integer(7), Text("0001".into()), Integer(3)];
        let condition = after_condition(&sort, &key, &name, &mut params);
        assert_eq!(
            condition,
            "((amount < ?) OR (amount = ? AND seq > ?) OR (amount = ? AND seq = ? AND rowid > ?))"
        );
        assert_eq!(
            params,
            vec![Integer(7), Integer(7), Text("0001".into()), Integer(7), Text("0001".into()), Integer(3)]
        );
    }

    #[test]
    fn a_resumed_plan_continues_after_the_token_and_counts_what_was_delivered() {
        let first_request = request("amount > 5", "", 100);
        let first =
            plan(&first_request, &schema(), &tokens(), &Grant::full(&schema()), Dialect::Sqlite, None)
                .unwrap();
        let token = tokens().issue(&first.point(vec![Text("0042".into()), Integer(42)], 30, 1));
        let resumed = plan(
            &QueryRequest { resume_token: token, ..first_request },
            &schema(),
            &tokens(),
            &Grant::full(&schema()),
            Dialect::Sqlite,
            None,
        )
        .unwrap();
        assert_eq!(
            resumed.sql("t"),
            "SELECT name, amount, score, flag, seq, seq, rowid FROM t WHERE (amount > ?) AND (seq, rowid) > (?, ?) \
             ORDER BY seq, rowid LIMIT 70"
        );
        assert_eq!(resumed.params, vec![Integer(5), Text("0042".into()), Integer(42)]);
        assert_eq!((resumed.delivered, resumed.resumed_load), (30, Some(1)));
        // Its own tokens count from the first start.
        assert_eq!(resumed.point(vec![], 5, 1).delivered, 35);
    }

    #[test]
    fn a_token_is_refused_with_another_query_key_or_secret() {
        let original = request("amount > 5", "", 0);
        let first =
            plan(&original, &schema(), &tokens(), &Grant::full(&schema()), Dialect::Sqlite, None).unwrap();
        let token = tokens().issue(&first.point(vec![Text("0042".into()), Integer(42)], 30, 1));
        let with = |request: QueryRequest| QueryRequest { resume_token: token.clone(), ..request };

        let another_query = "resume_token: the token belongs to a query with another filter, read_mask, \
                             order_by or limit, or to another caller or agreement; resume with the same query it \
                             came from";
        assert_eq!(refused(&with(request("amount > 6", "", 0))), another_query);
        assert_eq!(refused(&with(request("amount > 5", "seq desc", 0))), another_query);
        assert_eq!(refused(&with(request("amount > 5", "", 10))), another_query);
        assert_eq!(
            refused(&with(QueryRequest { filter: "amount > 5".into(), ..masked(&["seq"]) })),
            another_query
        );

        let foreign = "resume_token: the token is not one this domain issued (altered, truncated or from \
                       another product); run the query again without it";
        let other_product = ResumeTokens::new(b"another domain".to_vec(), "test.rows");
        let err = plan(
            &with(original.clone()),
            &schema(),
            &other_product,
            &Grant::full(&schema()),
            Dialect::Sqlite,
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, foreign);
        let truncated =
            QueryRequest { resume_token: token[..token.len() - 3].to_owned(), ..original.clone() };
        assert_eq!(refused(&truncated), foreign);
        let mut altered = token.clone().into_bytes();
        altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
        let altered = QueryRequest { resume_token: String::from_utf8(altered).unwrap(), ..original.clone() };
        assert_eq!(refused(&altered), foreign);

        // A token whose key does not fit the sort key (forged by the domain
        // itself, since clients cannot sign) is refused too.
        let short = tokens().issue(&first.point(vec![Integer(1)], 1, 1));
        assert_eq!(
            refused(&QueryRequest { resume_token: short, ..original }),
            "resume_token: the token does not match this query's sort key"
        );
    }
}
