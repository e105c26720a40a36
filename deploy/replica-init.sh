#!/bin/sh
# Start the read replica from a base backup of the primary, then follow it (streaming).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -h primary -U replicator; do sleep 1; done
    rm -rf "${PGDATA:?}"/*
    PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h primary -U replicator -D "$PGDATA" \
        -X stream -R -S replica1 -C
    chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on
