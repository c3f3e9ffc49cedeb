-- Who pushed a job: the credential (it may not approve the job) and the chat account of the person behind it.
ALTER TABLE jobs
  ADD COLUMN pushed_by VARCHAR(64) CHARACTER SET ascii NULL,
  ADD COLUMN pushed_by_identity BIGINT UNSIGNED NULL;
ALTER TABLE delayed_jobs
  ADD COLUMN pushed_by VARCHAR(64) CHARACTER SET ascii NULL,
  ADD COLUMN pushed_by_identity BIGINT UNSIGNED NULL;

-- The chat account a token was last handed to (NULL: made by an admin's CLI, or never shown).
ALTER TABLE users ADD COLUMN token_issued_to BIGINT UNSIGNED NULL;
-- A request from chat to clear an agent's approval patterns, waiting for a second person.
ALTER TABLE agents
  ADD COLUMN token_issued_to BIGINT UNSIGNED NULL,
  ADD COLUMN approval_clear_by BIGINT UNSIGNED NULL,
  ADD COLUMN approval_clear_until DATETIME(3) NULL;
-- Tokens handed out before this was recorded: 0, their holder is unknown (they can neither approve nor push a job
-- that another person's approval could let through, until they are rotated).
UPDATE users SET token_issued_to = 0;
UPDATE agents SET token_issued_to = 0;

-- Jobs awaiting approval from before: the person who asked in chat is found by the identity key they stored, matched
-- as lookups matched it until now (case-insensitively), before the keys are normalized below.
UPDATE jobs j JOIN identities i ON j.requester = CONCAT(i.channel, ':', i.tenant, ':', i.external_id)
  SET j.pushed_by = CONCAT('identity:', i.id), j.pushed_by_identity = i.id
  WHERE j.status = 'awaiting_approval';
UPDATE delayed_jobs d JOIN identities i ON d.requester = CONCAT(i.channel, ':', i.tenant, ':', i.external_id)
  SET d.pushed_by = CONCAT('identity:', i.id), d.pushed_by_identity = i.id
  WHERE d.released_at IS NULL;

-- Identity keys compare byte for byte. Each channel's ids are put in one case once, here and whenever they enter:
-- e-mail addresses and Teams ids (GUIDs) lower-case, Slack ids upper-case. So "alicé" is not "alice".
UPDATE identities SET tenant = LOWER(tenant), external_id = LOWER(external_id) WHERE channel IN ('email', 'teams');
UPDATE identities SET tenant = UPPER(tenant), external_id = UPPER(external_id) WHERE channel = 'slack';
ALTER TABLE identities
  MODIFY tenant VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  MODIFY external_id VARCHAR(190) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
