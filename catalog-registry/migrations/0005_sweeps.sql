-- What the registry reports of itself, once each: an endpoint whose lease
-- ran out (`stale_reported` holds the lease expiry last reported, so a
-- renewed lease that runs out again is reported again) and an agreement in
-- force about to end (`expiry_warned` holds the end time last warned of).
ALTER TABLE endpoints ADD COLUMN stale_reported {bigint} NOT NULL DEFAULT 0;
ALTER TABLE agreements ADD COLUMN expiry_warned {bigint} NOT NULL DEFAULT 0;
