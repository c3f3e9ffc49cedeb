-- Links made by the access policy (workspace / open mode) rather than by an admin: the current policy is applied to
-- them on every message, so a stricter policy takes effect for them at once.
ALTER TABLE identities ADD COLUMN automatic TINYINT(1) NOT NULL DEFAULT 0;
