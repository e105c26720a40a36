#!/bin/sh
# Let the replica connect for streaming replication (docker-entrypoint-initdb.d, on the primary).
set -eu
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
