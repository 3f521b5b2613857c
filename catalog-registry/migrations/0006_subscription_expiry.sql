-- A subscription delivers until `expire_time` (ms): its creator renews it
-- with a current token, which also takes that token's roles, so a role
-- taken away stops showing what it showed within a lifetime.
ALTER TABLE subscriptions ADD COLUMN expire_time {bigint} NOT NULL DEFAULT 0;
