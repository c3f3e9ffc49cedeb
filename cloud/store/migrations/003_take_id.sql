-- The take that handed a job out: marks the rows one take claimed, so it reads back exactly those (one UPDATE, one SELECT).
ALTER TABLE jobs ADD COLUMN take_id CHAR(16) CHARACTER SET ascii NULL;
