#!/usr/bin/env bash
# test/meta.sh - packaging checks: the extension version lives in
# kvs_fdw.control; META.json and the install script must agree with it;
# every earlier install script has an upgrade path and is the one released.
set -u
cd "$(dirname "$0")/.."
n=0 fail=0
t() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; return 1; fi; }

ver=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" kvs_fdw.control)
t "control file has a default_version ($ver)" '[ -n "$ver" ]'
t "install script kvs_fdw--$ver.sql exists" '[ -f "kvs_fdw--$ver.sql" ]'
t "META.json is valid JSON" 'python3 -m json.tool META.json >/dev/null'
t "META.json version = control version" \
  '[ "$(python3 -c "import json;print(json.load(open(\"META.json\"))[\"version\"])")" = "$ver" ]'
t "META.json provides kvs_fdw at the same version" \
  '[ "$(python3 -c "import json;print(json.load(open(\"META.json\"))[\"provides\"][\"kvs_fdw\"][\"version\"])")" = "$ver" ]'
t "META.json provides file is the install script" \
  '[ "$(python3 -c "import json;print(json.load(open(\"META.json\"))[\"provides\"][\"kvs_fdw\"][\"file\"])")" = "kvs_fdw--$ver.sql" ]'
# every older install script has an upgrade path to the current version:
# a chain of upgrade scripts, which ALTER EXTENSION ... UPDATE follows
# upgrade_path FROM: the versions reachable from FROM, one a line
upgrade_path() {
    local seen=" $1 " todo=$1 v f next
    while [ -n "$todo" ]; do
        v=${todo%% *}; todo=${todo#"$v"}; todo=${todo# }
        echo "$v"
        for f in kvs_fdw--"$v"--*.sql; do
            [ -f "$f" ] || continue
            next=${f#kvs_fdw--"$v"--}; next=${next%.sql}
            case $seen in *" $next "*) continue ;; esac
            seen="$seen$next "; todo="$todo $next"; todo=${todo# }
        done
    done
}
for f in kvs_fdw--*.sql; do
    case $f in *--*--*) continue ;; esac
    old=${f#kvs_fdw--}; old=${old%.sql}
    [ "$old" = "$ver" ] && continue
    t "upgrade scripts lead from $old to $ver" 'upgrade_path "$old" | grep -qx "$ver"'
done
# each shipped install script of an earlier version is the one released:
# the same bytes as at the commit named here, the last one at which it was
# the control file's default_version (CREATE EXTENSION ... VERSION 'X' in
# sql/14_upgrade.sql installs these).  A new version adds its line here when
# the next one starts.
released() {
    case $1 in
        0.1.0) echo a52d864caf72303766118c5d0bb6f00911011f65 ;;
        0.2.0) echo 96941a10ea4496902ed77d116f20acda3016753c ;;
        0.3.0) echo aca680fe4d055906931317eb8eafd19d5982fba3 ;;
        0.4.0) echo 3f910e905bf85ec1a157a5fb0f4c0395b1fbbdb1 ;;
    esac
}
for f in kvs_fdw--*.sql; do
    case $f in *--*--*) continue ;; esac
    old=${f#kvs_fdw--}; old=${old%.sql}
    [ "$old" = "$ver" ] && continue
    c=$(released "$old")
    t "$old names the commit it was released at" '[ -n "$c" ]' || continue
    if ! git cat-file -e "$c^{commit}" 2>/dev/null; then
        n=$((n + 1)); echo "ok $n - # SKIP kvs_fdw--$old.sql as released at ${c:0:12}: no git history here"
        continue
    fi
    t "$old was the default version at ${c:0:12}" \
      '[ "$(git show "$c:kvs_fdw.control" | sed -n "s/^default_version *= *'"'"'\(.*\)'"'"'/\1/p")" = "$old" ]'
    t "kvs_fdw--$old.sql is the script released at ${c:0:12}" \
      'git show "$c:kvs_fdw--$old.sql" | cmp -s - "$f"'
done
# the engine's one source list (src/engine/sources.mk, used by every Makefile)
# names every engine source file, and only existing ones
listed=$(sed -n 's/^[[:space:]]*\([a-z_0-9]*\.c\).*/\1/p' src/engine/sources.mk | sort)
present=$(cd src/engine && ls *.c | sort)
t "src/engine/sources.mk lists every src/engine/*.c" '[ "$listed" = "$present" ]' ||
    diff <(echo "$listed") <(echo "$present") | sed 's/^/#   /'
echo "1..$n"
exit $fail
