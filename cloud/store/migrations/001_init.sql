-- Users own agents and have a token for the user API.
CREATE TABLE users (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) COLLATE utf8mb4_general_ci NOT NULL,
  token_hash CHAR(64) CHARACTER SET ascii NOT NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY users_name (name),
  UNIQUE KEY users_token (token_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Chat and mail accounts linked to a user: (channel, tenant, external_id).
CREATE TABLE identities (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  channel VARCHAR(16) CHARACTER SET ascii NOT NULL,
  tenant VARCHAR(128) NOT NULL,
  external_id VARCHAR(190) NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  display_name VARCHAR(190) NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY identities_key (channel, tenant, external_id),
  KEY identities_user (user_id),
  CONSTRAINT identities_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Agents belong to a user; names and aliases are unique per user, case-insensitively.
CREATE TABLE agents (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  name VARCHAR(64) COLLATE utf8mb4_general_ci NOT NULL,
  alias VARCHAR(64) COLLATE utf8mb4_general_ci NULL,
  token_hash CHAR(64) CHARACTER SET ascii NOT NULL,
  available TINYINT(1) NOT NULL DEFAULT 1,
  online TINYINT(1) NOT NULL DEFAULT 0,
  last_ip VARCHAR(45) NULL,
  last_seen_at DATETIME(3) NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY agents_user_name (user_id, name),
  UNIQUE KEY agents_user_alias (user_id, alias),
  UNIQUE KEY agents_token (token_hash),
  KEY agents_online (online),
  CONSTRAINT agents_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Jobs: the source of truth of every job's status; Redis only speeds up dispatch.
CREATE TABLE jobs (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  agent_id BIGINT UNSIGNED NOT NULL,
  agent_name VARCHAR(64) NOT NULL,
  message TEXT NOT NULL,
  source VARCHAR(64) NOT NULL,
  origin TEXT NULL,
  callback VARCHAR(2048) NULL,
  status ENUM('queuing', 'sent', 'running', 'succeeded', 'failed', 'expired', 'canceled') NOT NULL,
  result MEDIUMTEXT NULL,
  reason VARCHAR(255) NULL,
  lease_until DATETIME(3) NULL,
  created_at DATETIME(3) NOT NULL,
  sent_at DATETIME(3) NULL,
  finished_at DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL,
  KEY jobs_agent_status (agent_id, status),
  KEY jobs_status_lease (status, lease_until),
  KEY jobs_user (user_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Delayed jobs: released as a job with the same id when due.
CREATE TABLE delayed_jobs (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  agent_id BIGINT UNSIGNED NOT NULL,
  message TEXT NOT NULL,
  source VARCHAR(64) NOT NULL,
  origin TEXT NULL,
  callback VARCHAR(2048) NULL,
  due_at DATETIME(3) NOT NULL,
  released_at DATETIME(3) NULL,
  created_at DATETIME(3) NOT NULL,
  KEY delayed_pending (released_at, due_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
