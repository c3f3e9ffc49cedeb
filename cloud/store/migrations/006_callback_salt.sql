-- Per-user callback secrets: HMAC(SKADI_SECRET, user id + this salt), so the database alone cannot sign a callback.
-- NULL for users created before this migration: their callbacks stay signed with the legacy key until a secret is made.
ALTER TABLE users ADD COLUMN callback_salt CHAR(32) CHARACTER SET ascii NULL AFTER token_hash;
