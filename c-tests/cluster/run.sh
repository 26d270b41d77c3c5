#!/bin/bash
# c-tests/cluster/run.sh -- faults and load on a real corosync cluster (and on
# cpgd): build the cluster tests and run each against the servers and
# libraries it is meant for.
#
# usage: c-tests/cluster/run.sh [options] [BUILD_DIR]
#   BUILD_DIR            binaries and logs (default <repo>/build/c-tests-cluster)
#   --server S[,S...]    corosync (a cluster of --nodes nodes, harness/cluster.sh),
#                        cpgd (one target/release/cpgd, harness/corosync.sh)
#                        (default: both)
#   --lib L[,L...]       ours, system (default: both; see TESTS_TABLE below)
#   --only T[,T...]      run only these tests
#   --nodes N            cluster size (default 3)
#   --timeout SECS       per-test limit (default 240)
#   --all-libs           run each test with every --lib, also where the table
#                        below leaves a library out
#   --list               list the tests
#   -v, --verbose        print every test's output
#
# environment: CC, CPG_OURS_LIBDIR (default <repo>/build/lib), CPGD (default
# <repo>/target/release/cpgd), CL_SCALE (percent; scales message counts),
# CL_KEEP_LOGS=DIR (keep the daemons' logs).
#
# Every test is a coordinator program (cl.h) that forks member processes into
# the nodes' namespaces and asks this driver for faults through the fifos in
# $CPG_TEST_CTL: "kill K", "start K", "pause K", "resume K", "partition K", "heal K",
# "wait COUNT SECS [K...]", "pid K", "fcstats K" (corosync's flow-control
# switch count for node K's CPG connections) (reply "ok ..." / "error ...").  After
# each test: no process may be left in a node's namespace, every daemon must
# have released its /dev/shm connection directories, and the cluster is
# brought back to full membership (a failure otherwise).
#
# Output: one line per test and combination, "FIGURES:" lines in
# BUILD_DIR/figures.txt, then "N passed, N failed[, N skipped]"; exit 1 on
# any failure.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OURS_LIBDIR=${CPG_OURS_LIBDIR:-$REPO/build/lib}
CPGD=${CPGD:-$REPO/target/release/cpgd}
SYSTEM_LIB=/usr/lib/x86_64-linux-gnu/libcpg.so.4

# test           server:libraries ...
# (flood with Debian's library on corosync does not assert TRY_AGAIN: whether
# corosync's totem-queue flow control engages at all is load-dependent there;
# docs/reliability.md)
TESTS_TABLE="
total_order     corosync:ours,system
node_kill       corosync:ours,system
partition       corosync:ours,system
frag_kill       corosync:ours,system  cpgd:ours,system
daemon_restart  corosync:ours,system  cpgd:ours,system
flood           corosync:ours,system  cpgd:ours,system
"

BUILD_DIR=""; SERVERS=""; LIBS=""; ONLY=""; NODES=3; TEST_TIMEOUT=240; LIST=0; VERBOSE=0; ALL_LIBS=0
die() { echo "cluster/run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVERS="$SERVERS ${2//,/ }"; shift 2 ;;
        --lib) LIBS="$LIBS ${2//,/ }"; shift 2 ;;
        --only) ONLY="$ONLY ${2//,/ }"; shift 2 ;;
        --nodes) NODES=$2; shift 2 ;;
        --timeout) TEST_TIMEOUT=$2; shift 2 ;;
        --list) LIST=1; shift ;;
        --all-libs) ALL_LIBS=1; shift ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [ -z "$BUILD_DIR" ] || die "more than one build dir"; BUILD_DIR=$1; shift ;;
    esac
done
BUILD_DIR=${BUILD_DIR:-$REPO/build/c-tests-cluster}
SERVERS=${SERVERS:-corosync cpgd}
LIBS=${LIBS:-ours system}
case "$NODES" in [2-9]) ;; *) die "--nodes must be 2..9" ;; esac

ALL_TESTS=$(echo "$TESTS_TABLE" | awk 'NF {print $1}')
if [ $LIST = 1 ]; then echo "$TESTS_TABLE" | awk 'NF {l = $1; for (i = 2; i <= NF; i++) l = l "  " $i; print l}'; exit 0; fi
for t in $ONLY; do
    case " $(echo $ALL_TESTS) " in *" $t "*) ;; *) die "no such test: $t" ;; esac
done
# the libraries TEST runs with on SERVER (empty: not on that server)
test_libs() {
    echo "$TESTS_TABLE" | awk -v t="$1" -v s="$2" '$1 == t {for (i = 2; i <= NF; i++) {split($i, a, ":"); if (a[1] == s) print a[2]}}' | tr , ' '
}
selected() { # selected TEST SERVER LIB
    local t=$1 s=$2 l=$3
    if [ -n "$ONLY" ]; then case " $ONLY " in *" $t "*) ;; *) return 1 ;; esac; fi
    if [ "$ALL_LIBS" = 1 ]; then
        [ -n "$(test_libs "$t" "$s")" ]
        return
    fi
    case " $(test_libs "$t" "$s") " in *" $l "*) ;; *) return 1 ;; esac
    return 0
}

# ------------------------------------------------------------------ build
mkdir -p "$BUILD_DIR/logs" || die "cannot create $BUILD_DIR"
RESULTS=$BUILD_DIR/results.txt
FIGURES=$BUILD_DIR/figures.txt
: >"$RESULTS"; : >"$FIGURES"
CC=${CC:-cc}
[ -e "$OURS_LIBDIR/libcpg.so.4" ] || die "$OURS_LIBDIR/libcpg.so.4 not built (make all)"
CFLAGS_T=(-O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE
          -I"$REPO/include" -I"$REPO/c-tests" -I"$HERE")
declare -A BUILD_ERR=()
for t in $ALL_TESTS; do
    if [ -n "$ONLY" ]; then case " $ONLY " in *" $t "*) ;; *) continue ;; esac; fi
    out=$BUILD_DIR/$t
    if [ -x "$out" ] && [ "$out" -nt "$HERE/$t.c" ] && [ "$out" -nt "$HERE/cl.h" ] && [ "$out" -nt "$HERE/member.h" ] && \
       [ "$out" -nt "$REPO/c-tests/tap.h" ] && [ "$out" -nt "$REPO/include/corosync/cpg.h" ]; then
        continue
    fi
    if ! "$CC" "${CFLAGS_T[@]}" -o "$out" "$HERE/$t.c" -L"$OURS_LIBDIR" -lcpg -lpthread >"$out.buildlog" 2>&1; then
        BUILD_ERR[$t]=1
        echo "# build of $t failed:" >&2
        sed 's/^/#   /' "$out.buildlog" | head -30 >&2
    fi
done

result() { # result STATUS SERVER LIB TEST DETAIL
    printf '%-4s  %-9s %-6s %-15s %s\n' "$1" "$2" "$3" "$4" "${5:-}"
    echo "$1 $2/$3/$4" >>"$RESULTS"
}

lib_env() { # lib_env LIB -> env words for the test
    if [ "$1" = ours ]; then echo "LD_LIBRARY_PATH=$OURS_LIBDIR"; else echo "-u LD_LIBRARY_PATH"; fi
}

# ------------------------------------------------------------------ one test
# run_test SERVER LIB TEST: runs it, serving the fifo requests with the
# drv_* functions of the current phase; sets RUN_RC, RUN_LOG, RUN_SECS
CTL_DIR=""; RUN_TPID=""
run__kill_test() {
    [ -n "$RUN_TPID" ] || return 0
    kill -TERM "$RUN_TPID" 2>/dev/null
    local i
    for i in $(seq 50); do kill -0 "$RUN_TPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RUN_TPID" 2>/dev/null
    wait "$RUN_TPID" 2>/dev/null
    RUN_TPID=""
}
run__cleanup_ctl() { [ -n "$CTL_DIR" ] && rm -rf "$CTL_DIR"; CTL_DIR=""; }

run_test() {
    local srv=$1 lib=$2 t=$3
    mkdir -p "$BUILD_DIR/logs/$srv/$lib"
    RUN_LOG=$BUILD_DIR/logs/$srv/$lib/$t.log
    CTL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cpgcl-ctl-$$.XXXXXX")
    mkfifo "$CTL_DIR/req" "$CTL_DIR/ack"
    local reqfd ackfd
    exec {reqfd}<>"$CTL_DIR/req"
    exec {ackfd}<>"$CTL_DIR/ack"
    local envs=(CPG_TEST_LIB="$lib" CPG_TEST_CTL="$CTL_DIR" CL_SERVER="$srv" CL_NODES="$(drv_nodes)")
    local k
    for k in $(seq "$(drv_nodes)"); do envs+=(CL_NS_$k="$(drv_ns "$k")"); done
    [ -n "${CL_SCALE:-}" ] && envs+=(CL_SCALE="$CL_SCALE")
    # shellcheck disable=SC2046
    local libenv=($(lib_env "$lib"))
    local start=$SECONDS line part="" pending=""
    timeout -k 5 "$TEST_TIMEOUT" env "${libenv[@]}" "${envs[@]}" "$BUILD_DIR/$t" >"$RUN_LOG" 2>&1 </dev/null &
    RUN_TPID=$!
    while kill -0 "$RUN_TPID" 2>/dev/null; do
        # a read that times out mid-line keeps what it consumed in $part:
        # carry it over, or the next request loses its first bytes
        if IFS= read -r -t 0.2 -u "$reqfd" part; then
            line=$pending$part; pending=""
            # not in $(...): the harness must keep the state it changes
            DRV_REPLY="error"
            # shellcheck disable=SC2086
            drv_request $line 2>>"$RUN_LOG.harness" >>"$RUN_LOG.harness"
            echo "# driver: $line -> $DRV_REPLY" >>"$RUN_LOG.harness"
            echo "$DRV_REPLY" >&"$ackfd"
        else
            pending=$pending$part
        fi
    done
    wait "$RUN_TPID"; RUN_RC=$?
    RUN_TPID=""
    RUN_SECS=$((SECONDS - start))
    exec {reqfd}<&- {ackfd}<&-
    run__cleanup_ctl
    if [ -f "$RUN_LOG.harness" ]; then cat "$RUN_LOG.harness" >>"$RUN_LOG"; rm -f "$RUN_LOG.harness"; fi
    { [ $RUN_RC = 124 ] || [ $RUN_RC = 137 ]; } && echo "FAIL: $t: killed by the driver after ${TEST_TIMEOUT}s" >>"$RUN_LOG"
    return 0
}

show_failure() {
    { grep -E '^(FAIL|SKIP)' "$1" | head -30; echo "  --- last lines of $1:"; tail -n 25 "$1"; } | sed 's/^/    /'
}

run_phase_tests() { # run_phase_tests SERVER
    local srv=$1 lib t post postrc npass nfail detail attempt starved retried
    for t in $ALL_TESTS; do
        for lib in $LIBS; do
            selected "$t" "$srv" "$lib" || continue
            if [ "$lib" = system ] && [ ! -e "$SYSTEM_LIB" ]; then result SKIP "$srv" "$lib" "$t" "($SYSTEM_LIB absent)"; continue; fi
            if [ -n "${BUILD_ERR[$t]:-}" ]; then result FAIL "$srv" "$lib" "$t" "(build failed: $BUILD_DIR/$t.buildlog)"; continue; fi
            retried=""
            for attempt in 1 2; do
                drv_ready || { result FAIL "$srv" "$lib" "$t" "(server not ready before the test)"; continue 2; }
                drv_mark_logs
                run_test "$srv" "$lib" "$t"
                # in this shell (not $(...)): it may restart daemons
                drv_post_checks >"$RUN_LOG.post" 2>&1; postrc=$?
                post=$(cat "$RUN_LOG.post"); rm -f "$RUN_LOG.post"
                npass=$(grep -c '^PASS' "$RUN_LOG"); nfail=$(grep -c '^FAIL' "$RUN_LOG")
                if [ $attempt = 1 ] && { [ $RUN_RC != 0 ] || [ "$nfail" != 0 ] || [ $postrc != 0 ]; } &&
                   starved=$(drv_starved) && [ -n "$starved" ]; then
                    # the daemon itself was not scheduled for longer than a
                    # token timeout (other jobs on the machine): not a verdict
                    # on the library; run it once more
                    cp "$RUN_LOG" "${RUN_LOG%.log}.starved.log"
                    echo "# $srv/$lib/$t: retried, the first run failed while $starved"
                    retried=" [retried: $starved]"
                    continue
                fi
                break
            done
            grep '^FIGURES:' "$RUN_LOG" | sed "s|^FIGURES: |$srv $lib |" >>"$FIGURES"
            detail="(${RUN_SECS}s, $npass checks ok"
            [ "$nfail" != 0 ] && detail="$detail, $nfail failed"
            detail="$detail)$retried"
            if [ $RUN_RC = 77 ] && [ $postrc = 0 ]; then
                result SKIP "$srv" "$lib" "$t" "($(grep -m1 '^SKIP' "$RUN_LOG" | sed 's/^SKIP: [^:]*: //'))"
            elif [ $RUN_RC = 0 ] && [ "$nfail" = 0 ] && [ "$npass" -gt 0 ] && [ $postrc = 0 ]; then
                result PASS "$srv" "$lib" "$t" "$detail"
                [ $VERBOSE = 1 ] && sed 's/^/    /' "$RUN_LOG"
            else
                [ $RUN_RC != 0 ] && detail="$detail exit $RUN_RC"
                result FAIL "$srv" "$lib" "$t" "$detail"
                cp "$RUN_LOG" "${RUN_LOG%.log}.failed.log"   # kept across later runs
                if [ $VERBOSE = 1 ]; then sed 's/^/    /' "$RUN_LOG"; else show_failure "$RUN_LOG"; fi
                [ -n "$post" ] && echo "$post" | sed 's/^/    harness: /'
            fi
        done
    done
}

phase_selected() { # any test for this server?
    local t l
    for t in $ALL_TESTS; do for l in $LIBS; do selected "$t" "$1" "$l" && return 0; done; done
    return 1
}

skip_phase() { # skip_phase SERVER REASON
    local t l
    for t in $ALL_TESTS; do for l in $LIBS; do
        selected "$t" "$1" "$l" && result SKIP "$1" "$l" "$t" "($2)"
    done; done
}

# shm entries a live daemon still holds for connections (must be none after a test)
shm_held() { compgen -G "/dev/shm/qb-$1-*" | tr '\n' ' '; }

# ------------------------------------------------------------------ phase: corosync cluster
phase_corosync() {
    # shellcheck source=../harness/cluster.sh
    source "$REPO/c-tests/harness/cluster.sh"
    cluster_on_exit run__kill_test
    cluster_on_exit run__cleanup_ctl
    if ! cluster_available; then skip_phase corosync "$CL_SKIP_REASON"; return 0; fi
    local t0=$SECONDS rc
    cluster_start "$NODES"; rc=$?
    if [ $rc = 2 ]; then skip_phase corosync "$CL_SKIP_REASON"; return 0; fi
    if [ $rc != 0 ]; then
        local t l
        for t in $ALL_TESTS; do for l in $LIBS; do
            selected "$t" corosync "$l" && result FAIL corosync "$l" "$t" "(cluster of $NODES did not start)"
        done; done
        return 0
    fi
    echo "# corosync: cluster of $NODES nodes up in $((SECONDS - t0))s ($CL_TAG)"
    drv_nodes() { echo "$CL_N"; }
    drv_ns() { cluster_ns "$1"; }
    drv_request() {
        local cmd=${1:-} k=${2:-}
        case "$cmd" in
            kill) local old; old=$(cluster_pid "$k") || { DRV_REPLY="error bad node"; return; }
                  cluster_kill_node "$k" && DRV_REPLY="ok $old" || DRV_REPLY="error kill" ;;
            start) cluster_start_node "$k" && DRV_REPLY="ok $(cluster_pid "$k")" || DRV_REPLY="error start" ;;
            partition) cluster_partition "$k" && DRV_REPLY="ok" || DRV_REPLY="error partition" ;;
            heal) cluster_heal "$k" && DRV_REPLY="ok" || DRV_REPLY="error heal" ;;
            pause) cluster_pause_node "$k" && DRV_REPLY="ok" || DRV_REPLY="error pause" ;;
            resume) cluster_resume_node "$k" && DRV_REPLY="ok" || DRV_REPLY="error resume" ;;
            wait) shift; cluster_wait_members "$@" && DRV_REPLY="ok" || DRV_REPLY="error timeout" ;;
            pid) local p; p=$(cluster_pid "$k") && DRV_REPLY="ok ${p:-0}" || DRV_REPLY="error bad node" ;;
            fcstats) # corosync's count of flow-control switches on the node's CPG connections
                local n
                n=$(cluster_exec "$k" timeout 5 corosync-cmapctl -m stats 2>/dev/null |
                    awk '/^stats\.ipcs\.service2\..*\.flow_control_count /{s += $NF} END {print s + 0}')
                DRV_REPLY="ok ${n:-0}" ;;
            *) DRV_REPLY="error unknown request" ;;
        esac
    }
    node_stopped() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ]; }
    drv_ready() {
        local k
        for k in $(seq "$CL_N"); do
            [ "${CL_PARTED[$k]}" = 1 ] && cluster_heal "$k"
            node_stopped "$(cluster_pid "$k")" && cluster_resume_node "$k"
            cluster_alive "$k" || cluster_start_node "$k" || return 1
        done
        cluster_wait_members "$CL_N" 30
    }
    # where each node's log stood before the test, and whether corosync
    # logged "Process pause detected" (it was not scheduled) since then
    declare -A LOG_MARK=()
    drv_mark_logs() {
        local k
        for k in $(seq "$CL_N"); do LOG_MARK[$k]=$(wc -l <"${CL_LOG[$k]}"); done
    }
    drv_starved() {
        local k line
        for k in $(seq "$CL_N"); do
            line=$(tail -n +"$((${LOG_MARK[$k]:-0} + 1))" "${CL_LOG[$k]}" | grep -m1 'Process pause detected')
            if [ -n "$line" ]; then echo "corosync of node $k logged: ${line#*] }"; return 0; fi
        done
    }
    drv_post_checks() {
        local bad=0 k p left pids held i
        for k in $(seq "$CL_N"); do
            pids=$(ip netns pids "$(cluster_ns "$k")" 2>/dev/null); left=""
            for p in $pids; do [ "$p" = "$(cluster_pid "$k")" ] || left="$left $p"; done
            if [ -n "$left" ]; then
                for p in $left; do kill -KILL "$p" 2>/dev/null; done
                echo "node $k: processes left behind:$left (killed)"; bad=1
            fi
        done
        for k in $(seq "$CL_N"); do
            if [ "${CL_PARTED[$k]}" = 1 ]; then echo "node $k left partitioned (healed)"; cluster_heal "$k"; bad=1; fi
            if node_stopped "$(cluster_pid "$k")"; then echo "node $k left paused (resumed)"; cluster_resume_node "$k"; bad=1; fi
            if ! cluster_alive "$k"; then echo "node $k left down (restarted)"; cluster_start_node "$k"; bad=1; fi
        done
        for k in $(seq "$CL_N"); do
            p=$(cluster_pid "$k"); [ -n "$p" ] || continue
            for i in $(seq 30); do held=$(shm_held "$p"); [ -z "$held" ] && break; sleep 0.1; done
            if [ -n "$held" ]; then echo "node $k: corosync $p still holds $held"; bad=1; fi
        done
        cluster_wait_members "$CL_N" 30 || { echo "cluster did not come back to $CL_N members"; bad=1; }
        # the killed daemons' leftovers (the system library leaves empty dirs) are ours to remove
        cluster_shm_clean
        return $bad
    }
    run_phase_tests corosync
    cluster_cleanup
}

# ------------------------------------------------------------------ phase: cpgd
phase_cpgd() {
    if [ ! -x "$CPGD" ]; then skip_phase cpgd "$CPGD not built (cargo build --release)"; return 0; fi
    # shellcheck source=../harness/corosync.sh
    source "$REPO/c-tests/harness/corosync.sh"
    cs_on_exit run__kill_test
    cs_on_exit run__cleanup_ctl
    CS_SERVER_CMD="$CPGD"
    CS_READY_PROBE="LD_LIBRARY_PATH='$OURS_LIBDIR' '$BUILD_DIR/cpg_ready'"
    local rc
    cs_start cpgd cmd; rc=$?
    if [ $rc = 2 ]; then skip_phase cpgd "$CS_SKIP_REASON"; return 0; fi
    if [ $rc != 0 ]; then skip_phase cpgd "cpgd did not start"; return 0; fi
    echo "# cpgd: $CPGD running as pid $CS_PID in $CS_NS"
    drv_nodes() { echo 1; }
    drv_ns() { echo "$CS_NS"; }
    drv_request() {
        local cmd=${1:-} k=${2:-}
        [ "$k" = 1 ] || { DRV_REPLY="error cpgd has node 1 only"; return; }
        case "$cmd" in
            kill) local old=$CS_PID; cs_kill9; DRV_REPLY="ok $old" ;;
            start) if cs_alive || cs__launch; then DRV_REPLY="ok $CS_PID"; else DRV_REPLY="error start"; fi ;;
            pid) DRV_REPLY="ok ${CS_PID:-0}" ;;
            wait) DRV_REPLY="ok" ;;
            *) DRV_REPLY="error not supported on cpgd" ;;
        esac
    }
    drv_ready() { cs_alive || cs_restart; }
    drv_mark_logs() { :; }
    drv_starved() { :; }
    drv_post_checks() {
        local bad=0 p left="" held i
        for p in $(ip netns pids "$CS_NS" 2>/dev/null); do [ "$p" = "$CS_PID" ] || left="$left $p"; done
        if [ -n "$left" ]; then
            for p in $left; do kill -KILL "$p" 2>/dev/null; done
            echo "processes left behind:$left (killed)"; bad=1
        fi
        if ! cs_alive; then echo "cpgd left down (restarted)"; cs_restart; bad=1; fi
        for i in $(seq 30); do held=$(shm_held "$CS_PID"); [ -z "$held" ] && break; sleep 0.1; done
        if [ -n "$held" ]; then echo "cpgd $CS_PID still holds $held"; bad=1; fi
        cs__clean_shm
        return $bad
    }
    run_phase_tests cpgd
    cs_cleanup
}

# readiness probe for cpgd: one cpg_initialize that returns CS_OK
if [ ! -x "$BUILD_DIR/cpg_ready" ] || [ "$BUILD_DIR/cpg_ready" -ot "$REPO/c-tests/harness/cpg_probe.c" ]; then
    "$CC" -O2 -D_GNU_SOURCE -I"$REPO/include" -o "$BUILD_DIR/cpg_ready" "$REPO/c-tests/harness/cpg_probe.c" \
        -L"$OURS_LIBDIR" -lcpg >"$BUILD_DIR/cpg_ready.buildlog" 2>&1 || echo "# build of cpg_ready failed" >&2
fi

PHASE_PID=""
on_signal() {
    trap - INT TERM
    if [ -n "$PHASE_PID" ]; then kill -TERM "$PHASE_PID" 2>/dev/null; wait "$PHASE_PID" 2>/dev/null; fi
    echo "cluster/run.sh: interrupted" >&2
    exit 130
}
trap on_signal INT TERM
for srv in $SERVERS; do
    case "$srv" in corosync|cpgd) ;; *) die "unknown server $srv" ;; esac
    phase_selected "$srv" || continue
    # each phase in a subshell: its harness's exit trap cleans up when it
    # ends; waited for in the background so that a signal reaches it at once
    ( "phase_$srv" ) &
    PHASE_PID=$!
    wait "$PHASE_PID"
    PHASE_PID=""
done

npass=$(grep -c '^PASS' "$RESULTS"); nfail=$(grep -c '^FAIL' "$RESULTS"); nskip=$(grep -c '^SKIP' "$RESULTS")
if [ "$nfail" != 0 ]; then echo "# failed: $(grep '^FAIL' "$RESULTS" | cut -d' ' -f2 | tr '\n' ' ')"; fi
if [ "$nskip" != 0 ]; then echo "$npass passed, $nfail failed, $nskip skipped"; else echo "$npass passed, $nfail failed"; fi
[ "$nfail" = 0 ]
