-- The runtime's bookkeeping in a domain's schema. A product's rows live in
-- a table of their own per load (<table>_<load id>); mesh_tables says which
-- one is current, so a load swaps it in by committing one row.
CREATE TABLE mesh_meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE mesh_tables (
    product    TEXT PRIMARY KEY,
    data_table TEXT NOT NULL,
    load_id    BIGINT NOT NULL
);
CREATE TABLE mesh_loads (
    product   TEXT PRIMARY KEY,
    loaded_at BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    source    TEXT NOT NULL
);
CREATE TABLE mesh_quality (
    product      TEXT NOT NULL,
    rule         TEXT NOT NULL,
    description  TEXT NOT NULL,
    failed_rows  BIGINT NOT NULL,
    checked_rows BIGINT NOT NULL,
    position     INTEGER NOT NULL,
    PRIMARY KEY (product, rule)
);
