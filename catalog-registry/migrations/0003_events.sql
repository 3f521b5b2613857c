-- The event log: what changed, in order, each row one CloudEvents event,
-- written in the transaction of the change it reports. `sequence` never
-- goes back, even when retention empties the table (AUTOINCREMENT on
-- SQLite, an identity on PostgreSQL); writers take the log's lock first, so
-- sequence order is commit order. `audience` says who may see an event:
-- `catalog` (whoever may see the product), `data` (its data: for a product
-- read by agreement, its owners and consumers with an agreement in force),
-- `agreement` (the agreement's consumer, named beside it, and the owners).
CREATE TABLE events (
    sequence         {serial},
    id               TEXT NOT NULL,
    type             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    domain           TEXT NOT NULL,
    time             {bigint} NOT NULL,
    data             TEXT NOT NULL,
    audience         TEXT NOT NULL,
    consumer_issuer  TEXT NOT NULL DEFAULT '',
    consumer_subject TEXT NOT NULL DEFAULT ''
){strict};

CREATE INDEX events_by_subject ON events (subject, sequence);
CREATE INDEX events_by_domain ON events (domain, sequence);
