# test/lib/deps.sh - install what the build and tests need, from Debian's apt.
#
# Sourced by test/run, test/demo and test/bench/run.  kvs_deps PKG... installs
# the packages that are missing (as root, with apt-get); as another user it
# only reports them.  Debian's postgresql package would create and start a
# "main" cluster; we switch that off first (tests make their own clusters).

KVS_BASE_PKGS="make gcc clang libxxhash-dev postgresql-common postgresql-15
postgresql-server-dev-15 postgresql-client-15 valgrind libsqlite3-dev gdb"

kvs_deps() {
    local missing="" p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
        return 1
    fi
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "install ok installed"; then
        apt-get update -q >&2 || return 1
        apt-get install -y -q postgresql-common >&2 || return 1
    fi
    if [ -f /etc/postgresql-common/createcluster.conf ]; then
        sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' \
            /etc/postgresql-common/createcluster.conf
    fi
    apt-get install -y -q $missing >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q $missing >&2; }
}
