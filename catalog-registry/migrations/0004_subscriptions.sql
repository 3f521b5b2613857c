-- Webhook subscriptions. Each delivers the events its owner may see about
-- one product, in log order: the event log after `delivered` is its outbox
-- (retention keeps what an active subscription has yet to deliver), and
-- `delivered` moves only once the receiver acknowledged. `owner_roles` are
-- the roles of the token that created it (a JSON array): events are shown
-- to the subscription as they would be to that token. `secret` signs the
-- deliveries; it is never returned after creation. `failing_since` is 0
-- while deliveries succeed; `state` is `active` or `disabled`.
CREATE TABLE subscriptions (
    id            TEXT PRIMARY KEY,
    product       TEXT NOT NULL,
    url           TEXT NOT NULL,
    types         TEXT NOT NULL,
    secret        TEXT NOT NULL,
    owner_issuer  TEXT NOT NULL,
    owner_subject TEXT NOT NULL,
    owner_roles   TEXT NOT NULL,
    create_time   {bigint} NOT NULL,
    delivered     {bigint} NOT NULL,
    state         TEXT NOT NULL,
    failing_since {bigint} NOT NULL DEFAULT 0,
    last_attempt  {bigint} NOT NULL DEFAULT 0,
    last_outcome  TEXT NOT NULL DEFAULT ''
){strict};

CREATE INDEX subscriptions_by_owner ON subscriptions (owner_issuer, owner_subject, create_time);

-- Which registry replica delivers webhooks, until when (one row): replicas
-- take it over only once its holder stopped renewing it.
CREATE TABLE webhook_dispatcher (
    id     {bigint} PRIMARY KEY,
    holder TEXT NOT NULL,
    until  {bigint} NOT NULL
){strict};
