-- Each product's usage per day: served reads (reason empty) and refusals by
-- the code callers got, kept as reads are recorded, so a usage summary costs
-- no scan of the log and a flood of reads cannot push older days out of it.
-- Filled once from the log's indexed columns: the bytes and refusal codes
-- of earlier records are in their encoded records only, so those days show
-- no bytes and their refusals as UNRECORDED.
CREATE TABLE mesh_usage_by_day (
    product TEXT NOT NULL,
    day     BIGINT NOT NULL,
    reason  TEXT NOT NULL,
    reads   BIGINT NOT NULL,
    rows    BIGINT NOT NULL,
    bytes   BIGINT NOT NULL,
    PRIMARY KEY (product, day, reason)
);
INSERT INTO mesh_usage_by_day
    SELECT product, start_ms / 86400000, CASE WHEN outcome = 2 THEN 'UNRECORDED' ELSE '' END,
        sum(CASE WHEN outcome = 2 OR outcome = 1 OR rows > 0 THEN 1 ELSE 0 END),
        sum(CASE WHEN outcome = 2 THEN 0 ELSE rows END), 0
    FROM mesh_reads GROUP BY 1, 2, 3;
