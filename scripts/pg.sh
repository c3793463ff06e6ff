#!/usr/bin/env bash
# pg.sh - a throwaway PostgreSQL cluster for tests and benchmarks.
#
#   scripts/pg.sh start DIR   initdb in DIR/data, start on a free port (55432 up)
#                             listening on 127.0.0.1 and a socket in DIR; prints
#                             the URL alone on the last line (also in DIR/url)
#   scripts/pg.sh stop DIR    stops the server (fast) and removes DIR
#   scripts/pg.sh down DIR [fast|immediate]
#                             stops the server and keeps DIR (for tests that
#                             restart PostgreSQL under load; immediate: as a
#                             crash, the next start runs recovery)
#   scripts/pg.sh up DIR      starts a stopped cluster again on its port
#
# The cluster trades durability for speed (fsync, full_page_writes and
# synchronous_commit off): it holds test data only and dies with the run.
# PostgreSQL refuses to run as root, so as root every server command runs as
# the `postgres` system user and DIR is chowned to it.
set -euo pipefail

PORT_FIRST=55432
PORT_TRIES=100          # ports tried: 55432 .. 55531
READY_TIMEOUT_S=30

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|up DIR, or $0 down DIR [fast|immediate]"; }

# Newest installed server, by version number (Debian: /usr/lib/postgresql/N/bin).
pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] || die "no PostgreSQL server in /usr/lib/postgresql/*/bin"
    echo "$dir"
}

# Runs a server command as the cluster owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# True if something already accepts TCP connections on 127.0.0.1:$1.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Test clusters trade durability for speed; RF_PG_DURABLE=1 (benchmarks)
# keeps PostgreSQL's defaults, so numbers compare with SQLite --sync full.
durability() {
    if [[ "${RF_PG_DURABLE:-0}" != 1 ]]; then
        printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
    fi
}

init_cluster() {
    local dir=$1 bin=$2
    # --locale=C: a fresh container may have no generated locales.
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<EOF

# pg.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
$(durability)
max_connections = 300
shared_buffers = 128MB
EOF
}

# Starts the server on the first free port; prints the port.
start_server() {
    local dir=$1 bin=$2 port
    for ((port = PORT_FIRST; port < PORT_FIRST + PORT_TRIES; port++)); do
        port_busy "$port" && continue
        # Another process may take the port between the check and the start:
        # then the start fails and the next port is tried.
        if as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w \
            -t "$READY_TIMEOUT_S" -o "-p $port" >/dev/null 2>&1; then
            echo "$port"
            return 0
        fi
        as_owner "$bin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
    done
    tail -n 20 "$dir/server.log" >&2 || true
    die "could not start PostgreSQL on ports $PORT_FIRST..$((PORT_FIRST + PORT_TRIES - 1))"
}

wait_ready() {
    local bin=$1 port=$2 i
    for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && return 0
        sleep 0.1
    done
    die "PostgreSQL on port $port not ready after ${READY_TIMEOUT_S}s"
}

cmd_start() {
    local dir bin port url
    mkdir -p "$1"
    dir=$(cd "$1" && pwd)
    bin=$(pg_bindir)
    [[ ! -e "$dir/data" ]] || die "$dir/data exists: stop the old cluster first ($0 stop $dir)"
    # The socket path must fit in sun_path (107 bytes) with ".s.PGSQL.NNNNN".
    ((${#dir} <= 80)) || die "DIR path too long for a Unix socket: $dir"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
        chown postgres: "$dir"
        runuser -u postgres -- test -w "$dir" \
            || die "user postgres cannot write $dir (is a parent directory private?)"
    fi
    cd "$dir" # server commands run as postgres may not read the caller's cwd
    init_cluster "$dir" "$bin"
    port=$(start_server "$dir" "$bin")
    wait_ready "$bin" "$port"
    url="postgresql://postgres@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "$url"
}

cmd_stop() {
    local dir bin
    [[ -d "$1" ]] || return 0
    dir=$(cd "$1" && pwd)
    # Refuse to delete a directory this script did not make.
    [[ -f "$dir/data/PG_VERSION" || -f "$dir/url" || -f "$dir/initdb.log" ]] \
        || die "$dir does not look like a pg.sh cluster; not removing it"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        bin=$(pg_bindir)
        cd "$dir"
        as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t "$READY_TIMEOUT_S" >/dev/null \
            || die "pg_ctl stop failed for $dir"
        cd /
    fi
    rm -rf -- "$dir"
}

# A cluster this script made (start) in DIR, as an absolute path.
cluster_dir() {
    [[ -f "$1/url" && -f "$1/data/PG_VERSION" ]] || die "$1 is not a cluster of pg.sh start"
    (cd "$1" && pwd)
}

cmd_down() {
    local dir bin mode=${2:-fast}
    [[ "$mode" == fast || "$mode" == immediate ]] || usage
    dir=$(cluster_dir "$1")
    bin=$(pg_bindir)
    cd "$dir"
    as_owner "$bin/pg_ctl" stop -D "$dir/data" -m "$mode" -w -t "$READY_TIMEOUT_S" >/dev/null \
        || die "pg_ctl stop -m $mode failed for $dir"
}

# The same port as before (it is in the URL the clients hold); fails when
# another process took it meanwhile.
cmd_up() {
    local dir bin port
    dir=$(cluster_dir "$1")
    bin=$(pg_bindir)
    port=$(sed -n 's|.*:\([0-9]*\)/.*|\1|p' "$dir/url")
    [[ -n "$port" ]] || die "no port in $dir/url"
    cd "$dir"
    as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t "$READY_TIMEOUT_S" \
        -o "-p $port" >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "pg_ctl start failed"; }
    wait_ready "$bin" "$port"
}

[[ $# -eq 2 || ( $# -eq 3 && "$1" == down ) ]] || usage
case "$1" in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    down) cmd_down "$2" "${3:-fast}" ;;
    up) cmd_up "$2" ;;
    *) usage ;;
esac
