-- Inbound chat messages already handled, by (channel, message id): platforms retry deliveries.
CREATE TABLE processed_messages (
  channel VARCHAR(16) CHARACTER SET ascii NOT NULL,
  message_id VARCHAR(190) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(3) NOT NULL,
  PRIMARY KEY (channel, message_id),
  KEY processed_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Where a user's notifications go (`notify here`): an adapter name and its reply address.
ALTER TABLE users
  ADD COLUMN notify_channel VARCHAR(16) CHARACTER SET ascii NULL,
  ADD COLUMN notify_ref TEXT NULL;

-- When an identity was last used, so notifications can fall back to the latest one.
ALTER TABLE identities
  ADD COLUMN last_seen_at DATETIME(3) NULL,
  ADD KEY identities_user_seen (user_id, last_seen_at);
