#!/bin/bash
# c-tests/evs/twonode/run.sh -- libevs on two corosync nodes (network
# namespaces on this machine, c-tests/harness/cluster.sh).
#
# One EVS process per node (evs_node.c) joins key1+key2 and sends; both
# must deliver the same messages in one order. Then node 2's corosync is
# SIGKILLed: node 1's process gets the transitional (left = [2]) and regular
# (members = [1]) configuration changes with a new ring id, node 2's process
# gets CS_ERR_LIBRARY; node 2 restarts and node 1 sees it join again.
#
# usage: c-tests/evs/twonode/run.sh [BUILD_DIR]   (root; skips otherwise)
# Prints PASS/FAIL lines and "N passed, N failed"; exit 1 on failure.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
BUILD_DIR=${1:-$REPO/build/c-tests-evs-twonode}
LIBDIR=${CPG_OURS_LIBDIR:-$REPO/build/lib}
MSGS=${EVS_TWONODE_MSGS:-1500}
NPASS=0 NFAIL=0
pass() { NPASS=$((NPASS + 1)); echo "PASS: evs_twonode/$1"; }
fail() { NFAIL=$((NFAIL + 1)); echo "FAIL: evs_twonode/$1: $2"; }
check() { local name=$1 why=$2; shift 2; if "$@"; then pass "$name"; else fail "$name" "$why"; fi; }
finish() { echo "$NPASS passed, $NFAIL failed"; [ "$NFAIL" = 0 ]; exit $?; }

# shellcheck source=../../harness/cluster.sh
source "$REPO/c-tests/harness/cluster.sh"
if ! cluster_available; then
    echo "SKIP: evs_twonode: $CL_SKIP_REASON"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi

mkdir -p "$BUILD_DIR"
if ! ${CC:-cc} -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -I"$REPO/include" \
        -I"$REPO/c-tests" -o "$BUILD_DIR/evs_node" "$HERE/evs_node.c" -L"$LIBDIR" -levs; then
    fail build "evs_node.c does not build"; finish
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/evs2n.XXXXXX")
cluster_on_exit "rm -rf '$WORK'"
PIDS=()
end_clients() { local p; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; PIDS=(); }
cluster_on_exit end_clients

wait_file() { # wait_file PATH SECS
    local i
    for i in $(seq $(($2 * 10))); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}
# the last ring id seen in a node's output ("C ... | nodeid seq")
last_ring_seq() { awk -F'|' '/^C /{ split($4, r, " "); s = r[2] } END { print s + 0 }' "$1"; }

if ! cluster_start 2; then
    fail cluster_start "two corosync nodes did not form a cluster (see $CL_DIR)"; finish
fi
pass cluster_start

for k in 1 2; do
    role=survivor; [ $k = 2 ] && role=victim
    cluster_exec "$k" env LD_LIBRARY_PATH="$LIBDIR" "$BUILD_DIR/evs_node" 2 "$MSGS" "$WORK/n$k" "$role" \
        >"$WORK/n$k.stderr" 2>&1 &
    PIDS+=($!)
done
if wait_file "$WORK/n1.joined" 60 && wait_file "$WORK/n2.joined" 60; then
    pass both_joined
    touch "$WORK/n1.go" "$WORK/n2.go"
else
    fail both_joined "$(cat "$WORK"/n*.stderr "$WORK/n1" "$WORK/n2" 2>/dev/null | tail -5)"; finish
fi
if wait_file "$WORK/n1.done" 90 && wait_file "$WORK/n2.done" 90; then
    pass all_delivered
else
    fail all_delivered "$(grep -h -v '^[DC] ' "$WORK/n1" "$WORK/n2" | head -5)"; finish
fi

grep '^D ' "$WORK/n1" >"$WORK/d1"
grep '^D ' "$WORK/n2" >"$WORK/d2"
n1=$(wc -l <"$WORK/d1")
check one_order "the two nodes delivered different streams" cmp -s "$WORK/d1" "$WORK/d2"
check every_message "node 1 delivered $n1 messages, expected $((2 * MSGS))" test "$n1" = $((2 * MSGS))
check both_senders "not every sender's messages arrived" \
    test "$(cut -d' ' -f2 "$WORK/d1" | sort -u | tr '\n' ' ')" = "1 2 "
first=$(grep -m1 '^C ' "$WORK/n1")
check startup_confchg "node 1's first confchg: $first" grep -q '^C 1,2 |  | 1,2 | [1-9]' <<<"$first"
seq_before=$(last_ring_seq "$WORK/n1")

# node 2's corosync dies
cluster_kill_node 2
for i in $(seq 150); do grep -q '^C 1 |  |  | ' "$WORK/n1" && break; sleep 0.1; done
check nodedown_transitional "node 1 did not report node 2 leaving: $(grep '^C ' "$WORK/n1" | tail -2 | tr '\n' ';')" \
    grep -q '^C 1 | 2 |  | ' "$WORK/n1"
check nodedown_regular "no regular confchg with members [1]" grep -q '^C 1 |  |  | ' "$WORK/n1"
seq_after=$(last_ring_seq "$WORK/n1")
check ring_id_advances "ring seq $seq_before -> $seq_after" test "$seq_after" -gt "$seq_before"
st=0
for i in $(seq 100); do kill -0 "${PIDS[1]}" 2>/dev/null || break; sleep 0.1; done
wait "${PIDS[1]}"; st=$?
check victim_sees_library "node 2's process: status $st, $(tail -1 "$WORK/n2")" test "$st" = 0 -a "$(tail -1 "$WORK/n2")" = "END 2"

# node 2 comes back
if cluster_start_node 2 && cluster_wait_members 2 60; then
    pass node_restart
else
    fail node_restart "node 2 did not rejoin"
fi
for i in $(seq 300); do kill -0 "${PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
wait "${PIDS[0]}"; st=$?
check nodeup_joined "node 1's process: status $st, last confchgs $(grep '^C ' "$WORK/n1" | tail -2 | tr '\n' ';')" \
    test "$st" = 0
check nodeup_regular "no regular confchg with node 2 joined" grep -q '^C 1,2 |  | 2 | ' "$WORK/n1"
echo "# node 1's configuration changes (members | left | joined | ring):"
grep '^C ' "$WORK/n1" | sed 's/^C /#   /'
PIDS=()
cluster_cleanup
finish
