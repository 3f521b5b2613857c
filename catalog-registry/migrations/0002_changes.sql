-- What each write changed, counted: a replica checks these counts before it
-- answers from its cache, so a write committed on another replica is read at
-- once (`*` counts writes that may touch any product). A registry on SQLite,
-- one process, keeps the table empty.
CREATE TABLE catalog_changes (
    product TEXT PRIMARY KEY,
    version {bigint} NOT NULL
){strict};
