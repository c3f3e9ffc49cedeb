-- A delayed job released while its agent is offline is queued and waits for the agent until this time (delayed_wait
-- after its due time); offline expiry spares it until then, and the sweep expires it then if the agent is still away.
ALTER TABLE jobs
  ADD COLUMN wait_until DATETIME(3) NULL,
  ADD KEY jobs_waiting (status, wait_until);
