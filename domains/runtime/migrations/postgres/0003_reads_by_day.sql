-- The reads that delivered rows, of each principal per product and day, kept as reads
-- are recorded, so the consumers a lease renewal reports cost no scan of
-- the log; filled from the log once.
CREATE TABLE mesh_reads_by_day (
    product   TEXT NOT NULL,
    day       BIGINT NOT NULL,
    principal TEXT NOT NULL,
    issuer    TEXT NOT NULL,
    reads     BIGINT NOT NULL,
    rows      BIGINT NOT NULL,
    last_ms   BIGINT NOT NULL,
    PRIMARY KEY (product, day, principal, issuer)
);
INSERT INTO mesh_reads_by_day
    SELECT product, start_ms / 86400000, principal, issuer, count(*), sum(rows), max(start_ms)
    FROM mesh_reads WHERE outcome = 1 OR (outcome <> 2 AND rows > 0) GROUP BY 1, 2, 3, 4;
