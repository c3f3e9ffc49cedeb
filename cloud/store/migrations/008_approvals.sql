-- Two-person approval: an agent's patterns of jobs that need a second person, and each job's approval.
ALTER TABLE agents ADD COLUMN approval_patterns TEXT NULL;

ALTER TABLE jobs
  MODIFY status ENUM('awaiting_approval', 'queuing', 'sent', 'running', 'succeeded', 'failed', 'expired', 'canceled') NOT NULL,
  ADD COLUMN requester VARCHAR(400) NULL,
  ADD COLUMN approval_required TINYINT(1) NOT NULL DEFAULT 0,
  ADD COLUMN approval_until DATETIME(3) NULL,
  ADD COLUMN approved_by VARCHAR(400) NULL,
  ADD COLUMN approved_at DATETIME(3) NULL,
  ADD COLUMN denied_by VARCHAR(400) NULL,
  ADD KEY jobs_awaiting (status, approval_until);

ALTER TABLE delayed_jobs ADD COLUMN requester VARCHAR(400) NULL;
