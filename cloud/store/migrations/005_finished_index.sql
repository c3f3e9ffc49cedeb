-- Jobs by the time they ended: after Redis lost its data, the final events of the jobs that ended just before are appended again.
ALTER TABLE jobs ADD KEY jobs_finished (finished_at);
