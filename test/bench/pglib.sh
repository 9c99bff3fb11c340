# test/bench/pglib.sh - what the through-Postgres benchmarks (pg.sh, shared.sh)
# share: a throwaway cluster in a temp dir run by the `postgres` OS user,
# psql, the rows, and pgbench runs of the scripts in pg/.
#
# Sourced (as root) after PORT is set; it makes TMP (data directory, socket,
# filled-in scripts, logs; removed at exit) and defines:
#   step NAME ok|fail DETAIL   a "step" line for test/bench/run (FAILED=1 on fail)
#   sql SQL                    unaligned psql -c; PSQL is the psql command line
#   now_ns, secs_since NS      wall clock
#   pgb_initdb                 initdb + the benchmark settings (synchronous_commit = off)
#   pgb_start "-c a=b ..."     start the server with these settings; pgb_stop
#   VALUE_EXPR                 the 100-byte value of row g
#   key_expr DIST, script TEMPLATE TABLE DIST    pg/TEMPLATE.sql filled in
#   sb_hit TABLE               shared_buffers hit % of TABLE and its indexes since
#                              the last pg_stat_reset(), or "-" (a kvs table)
#   run_pgbench NAME TEMPLATE TABLE DIST [pgbench args]: pgbench -M prepared
#              -c PGB_CLIENTS (default 2), LEN (e.g. (-T 8)), -D nrows=ROWS;
#              sets TPS (0 and status 1 on failure); log in $TMP/pgbench.NAME.log

PGBIN=$(pg_config --bindir)
TMP=$(mktemp -d /tmp/kvs_bench_pg.XXXXXX)
chown postgres: "$TMP"
chmod 755 "$TMP"
FAILED=0
STARTED=0
PGB_CLIENTS=${PGB_CLIENTS:-2}
ZIPF_S=${ZIPF_S:-1.01}

pgb_stop() {
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null
    STARTED=0
}
cleanup() {
    if [ $STARTED = 1 ]; then pgb_stop 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {    # step NAME ok|fail DETAIL
    echo "step $1 $2 ${3:-}"
    [ "$2" = ok ] || FAILED=1
}

PSQL=(psql -X -q -h "$TMP" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
sql() { "${PSQL[@]}" -At -c "$1"; }

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

pgb_initdb() {
    if ! runuser -u postgres -- "$PGBIN/initdb" -D "$TMP/data" -U postgres -A trust --no-sync >"$TMP/initdb.log" 2>&1; then
        sed 's/^/# /' "$TMP/initdb.log"
        return 1
    fi
    cat >>"$TMP/data/postgresql.conf" <<CONF
# kvs_fdw bench: commits do not wait for the WAL flush (kvs has no journal yet),
# no checkpoint during a run
synchronous_commit = off
max_wal_size = 8GB
checkpoint_timeout = 30min
CONF
}
pgb_start() {       # pgb_start "-c name=value ..."
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/log" -w \
        -o "-p $PORT -k $TMP -c listen_addresses='' $1" \
        start >/dev/null || { echo "# server start failed:"; sed 's/^/#   /' "$TMP/log" | tail -20; return 1; }
    STARTED=1
}

VALUE_EXPR="rpad(md5(g::text), 100, md5((g + 1)::text))"

key_expr() {
    case "$1" in
        uniform) echo "random(1, :nrows)" ;;
        zipf) echo "1 + permute(random_zipfian(0, :nrows - 1, $ZIPF_S), :nrows)" ;;
    esac
}
script() {   # script TEMPLATE TABLE DIST -> path of the filled-in script
    local f="$TMP/$1.$2.$3.sql"
    sed -e "s/@T@/$2/g" -e "s/@KEY@/$(key_expr "$3")/g" "$HERE/pg/$1.sql" >"$f"
    echo "$f"
}

run_pgbench() {
    local f log name=$1
    f=$(script "$2" "$3" "$4")
    shift 4
    log="$TMP/pgbench.$name.log"
    TPS=0
    if "$PGBIN/pgbench" -n -M prepared -c "$PGB_CLIENTS" -j "$PGB_CLIENTS" "${LEN[@]}" -D nrows="$ROWS" -f "$f" \
         "$@" -h "$TMP" -p "$PORT" -U postgres postgres >"$log" 2>&1; then
        TPS=$(sed -n 's/^tps = \([0-9.]*\) .*without initial.*/\1/p' "$log")
        [ -n "$TPS" ] || TPS=0
    fi
    if ! awk -v t="$TPS" 'BEGIN { exit !(t > 0) }'; then
        echo "# pgbench $name failed:"; tail -5 "$log" | sed 's/^/#   /'
        TPS=0
        return 1
    fi
    # pgbench reports aborted transactions (e.g. errors) in its summary
    if grep -q "number of failed transactions: [1-9]" "$log"; then
        echo "# pgbench $name: failed transactions"; TPS=0; return 1
    fi
}

sb_hit() {   # shared_buffers hit ratio of table $1 since the last reset, percent or "-"
    case "$1" in
        kv_kvs) echo "-" ;;
        *) sql "SELECT coalesce(round(100.0 * sum(hit) / nullif(sum(hit) + sum(rd), 0), 1)::text, '-')
                FROM (SELECT heap_blks_hit AS hit, heap_blks_read AS rd FROM pg_statio_user_tables WHERE relname = '$1'
                      UNION ALL
                      SELECT idx_blks_hit, idx_blks_read FROM pg_statio_user_indexes WHERE relname = '$1') s" ;;
    esac
}
