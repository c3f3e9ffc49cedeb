-- The batch of reports that last changed a job: marks the rows one batched UPDATE changed, so each report learns whether it did.
ALTER TABLE jobs ADD COLUMN report_id CHAR(16) CHARACTER SET ascii NULL;
