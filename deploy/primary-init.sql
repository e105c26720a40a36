-- Run once when the primary's data folder is created: a role the replica streams with, and
-- a read-only role for analytics tools on the replica.
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD 'change-me-replication';
CREATE ROLE analytics WITH LOGIN PASSWORD 'change-me-analytics';
GRANT CONNECT ON DATABASE recoup TO analytics;
GRANT pg_read_all_data TO analytics;
