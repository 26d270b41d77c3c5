#!/bin/bash
# c-tests/security.sh -- who may talk to whom, with cpgd in private network
# namespaces (needs root, unshare, nsenter, setpriv):
#   admission    cpgd (root) refuses a client of another uid (CS_ERR_ACCESS)
#                unless --allow-uid names it, or --allow-gid its primary gid
#   server trust our libcpg refuses a server whose credentials show neither
#                root nor the client's own uid (CS_ERR_SECURITY) -- a cpgd run
#                as nobody that holds the @cpg name -- unless
#                CPG_RS_ALLOW_ANY_SERVER=1; a server of the client's own uid
#                is trusted
# Every server is SIGTERMed by its pid and must leave nothing in /dev/shm.
# Output: PASS/FAIL lines, then "N passed, N failed"; exit 1 on a failure.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CPGD=${CPGD:-$REPO/target/release/cpgd}
LIBDIR=${CPG_OURS_LIBDIR:-$REPO/build/lib}
OUT=$REPO/build/c-tests-security
NPASS=0; NFAIL=0; NSKIP=0
SRV_PID=""

skip_all() { echo "SKIP: security: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "not root"
for c in unshare nsenter setpriv; do command -v $c >/dev/null || skip_all "$c not installed"; done
[ -x "$CPGD" ] || { echo "security.sh: $CPGD not built" >&2; exit 2; }
[ -e "$LIBDIR/libcpg.so.4" ] || { echo "security.sh: $LIBDIR/libcpg.so.4 not built" >&2; exit 2; }
mkdir -p "$OUT"
${CC:-cc} -O2 -Wall -I"$REPO/include" -o "$OUT/sec_probe" "$HERE/harness/sec_probe.c" \
    -L"$LIBDIR" -l:libcpg.so.4 || exit 2

stop_server() {
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null
    local i
    for i in $(seq 50); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    local left
    left=$(compgen -G "/dev/shm/qb-$SRV_PID-*" | wc -l)
    check "$CASE: server left nothing in /dev/shm" "$left" 0
    SRV_PID=""
}
trap stop_server EXIT

check() { # check NAME GOT WANT
    if [ "$2" = "$3" ]; then
        echo "PASS: security/$1"; NPASS=$((NPASS + 1))
    else
        echo "FAIL: security/$1: got $2, want $3"; NFAIL=$((NFAIL + 1))
    fi
}

# start_server UID GID ARGS...: cpgd as UID:GID in a new network namespace
start_server() {
    local uid=$1 gid=$2
    shift 2
    unshare -n setpriv --reuid="$uid" --regid="$gid" --clear-groups -- \
        "$CPGD" "$@" >"$OUT/cpgd.log" 2>&1 </dev/null &
    SRV_PID=$!
    local i
    for i in $(seq 100); do
        grep -q '@cpg' "/proc/$SRV_PID/net/unix" 2>/dev/null && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "FAIL: security/$CASE: cpgd did not start:"; sed 's/^/    /' "$OUT/cpgd.log"
    NFAIL=$((NFAIL + 1)); SRV_PID=""
    return 1
}

# probe UID GID [VAR=VALUE...]: cpg_initialize's result code, as UID:GID,
# in the server's network namespace, with our library
probe() {
    local uid=$1 gid=$2
    shift 2
    nsenter --net="/proc/$SRV_PID/ns/net" setpriv --reuid="$uid" --regid="$gid" --clear-groups -- \
        env LD_LIBRARY_PATH="$LIBDIR" "$@" "$OUT/sec_probe" 2>/dev/null | sed -n 's/^rc=//p'
}

CS_OK=1; CS_ERR_ACCESS=11; CS_ERR_SECURITY=100
NOBODY=65534; OTHER=65533; GROUP=4242

CASE="root cpgd, no options"
if start_server 0 0; then
    check "$CASE: root admitted" "$(probe 0 0)" $CS_OK
    check "$CASE: nobody refused" "$(probe $NOBODY $NOBODY)" $CS_ERR_ACCESS
    stop_server
fi

CASE="root cpgd --allow-uid $NOBODY"
if start_server 0 0 --allow-uid $NOBODY; then
    check "$CASE: nobody admitted" "$(probe $NOBODY $NOBODY)" $CS_OK
    check "$CASE: uid $OTHER still refused" "$(probe $OTHER $OTHER)" $CS_ERR_ACCESS
    stop_server
fi

CASE="root cpgd --allow-gid $GROUP"
if start_server 0 0 --allow-gid $GROUP; then
    check "$CASE: uid $OTHER gid $GROUP admitted" "$(probe $OTHER $GROUP)" $CS_OK
    check "$CASE: uid $OTHER gid $OTHER refused" "$(probe $OTHER $OTHER)" $CS_ERR_ACCESS
    stop_server
fi

CASE="cpgd run as nobody --allow-uid $OTHER"
if start_server $NOBODY $NOBODY --allow-uid $OTHER; then
    check "$CASE: uid $OTHER refuses the server" "$(probe $OTHER $OTHER)" $CS_ERR_SECURITY
    check "$CASE: root refuses the server" "$(probe 0 0)" $CS_ERR_SECURITY
    check "$CASE: uid $OTHER with CPG_RS_ALLOW_ANY_SERVER=1 connects" \
        "$(probe $OTHER $OTHER CPG_RS_ALLOW_ANY_SERVER=1)" $CS_OK
    check "$CASE: nobody trusts its own uid" "$(probe $NOBODY $NOBODY)" $CS_OK
    if [ -e /usr/lib/x86_64-linux-gnu/libcpg.so.4 ]; then
        echo "# for comparison, Debian's libcpg as uid $OTHER: rc=$(nsenter --net="/proc/$SRV_PID/ns/net" \
            setpriv --reuid=$OTHER --regid=$OTHER --clear-groups -- env LD_LIBRARY_PATH= "$OUT/sec_probe" | sed -n 's/^rc=//p')"
    fi
    stop_server
fi

CASE="cpgd run as nobody, no options"
if start_server $NOBODY $NOBODY; then
    # its refusal is not believed either
    check "$CASE: uid $OTHER refuses the server" "$(probe $OTHER $OTHER)" $CS_ERR_SECURITY
    check "$CASE: ... and with CPG_RS_ALLOW_ANY_SERVER=1 sees the refusal" \
        "$(probe $OTHER $OTHER CPG_RS_ALLOW_ANY_SERVER=1)" $CS_ERR_ACCESS
    stop_server
fi

trap - EXIT
echo "$NPASS passed, $NFAIL failed"
[ $NFAIL = 0 ]
