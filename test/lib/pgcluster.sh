# test/lib/pgcluster.sh - start and stop a throwaway PostgreSQL cluster.
#
# Sourced by test scripts.  Postgres refuses to run as root, so when we are
# root the cluster runs as an unprivileged OS user (KVS_PG_OSUSER, default
# "postgres", created if missing); otherwise it runs as ourselves.  The
# cluster listens only on a unix socket in its own directory, on its own port.
#
#   pgc_start DIR PORT [postgres -c settings...]   initdb + start; exports PG*
#   pgc_stop                                         fast stop (also on EXIT,
#                                                    unless the caller has its own
#                                                    EXIT trap: that must call it)
#   pgc_start_again                                  start after pgc_stop, same settings
#   pgc_as CMD...                                    run CMD as the cluster's OS user
#   pgc_psql [psql args]                             psql -X -q -v ON_ERROR_STOP=1
#
# After pgc_start: PGHOST, PGPORT, PGUSER=postgres, PGDATABASE=postgres are
# exported, and PGC_DATA is the data directory.

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PGC_DIR=
PGC_DATA=
PGC_OPTS=

pgc_osuser() {
    if [ "$(id -u)" = 0 ]; then
        local u=${KVS_PG_OSUSER:-postgres}
        id "$u" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$u"
        echo "$u"
    else
        id -un
    fi
}

pgc_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$(pgc_osuser)" -- "$@"
    else
        "$@"
    fi
}

pgc_start() {
    local dir=$1 port=$2
    shift 2
    local opts="-p $port -k $dir -c listen_addresses='' -c fsync=off"
    local s
    for s in "$@"; do opts="$opts -c $s"; done
    PGC_DIR=$dir
    PGC_DATA=$dir/data
    PGC_OPTS=$opts
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$(pgc_osuser)" "$dir"
    pgc_as "$PG_BINDIR/initdb" -D "$PGC_DATA" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -l "$dir/server.log" -w -o "$opts" start >/dev/null ||
        { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
    [ -n "$(trap -p EXIT)" ] || trap pgc_stop EXIT
}

pgc_start_again() {
    pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -l "$PGC_DIR/server.log" -w -o "$PGC_OPTS" start >/dev/null
}

pgc_restart() {
    pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -l "$PGC_DIR/server.log" -w -m fast restart >/dev/null
}

pgc_stop() {
    if [ -n "$PGC_DATA" ] && [ -f "$PGC_DATA/postmaster.pid" ]; then
        pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -w -m fast stop >/dev/null 2>&1 ||
            pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -w -m immediate stop >/dev/null 2>&1
    fi
    return 0
}

pgc_psql() {
    "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}
