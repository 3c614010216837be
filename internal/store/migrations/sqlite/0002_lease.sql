-- The lease of a background run: unix microseconds until which its process
-- is presumed alive (it renews it on a heartbeat); 0 when it has none.
-- A queued or in_progress response whose lease has passed is ended as
-- incomplete by whoever finds it.
ALTER TABLE responses ADD COLUMN lease_expires INTEGER NOT NULL DEFAULT 0;
CREATE INDEX responses_lease ON responses (lease_expires) WHERE status IN ('queued', 'in_progress');
