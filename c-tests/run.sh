#!/bin/bash
# c-tests/run.sh -- build the C tests and run them against every requested
# (server, library) combination.
#
# usage: c-tests/run.sh [options] [BUILD_DIR]
#   BUILD_DIR               where binaries and logs go (default <repo>/build/c-tests)
#   --server S[,S...]       corosync-shm, corosync-socket, cpgd   (default: all three;
#                           cpgd is <repo>/target/release/cpgd unless CPGD_CMD says
#                           otherwise, skipped when it is not built)
#   --lib L[,L...]          ours, system                          (default: both)
#   --suite cpg|evs         the libcpg tests (c-tests/*.c, default) or the libevs
#                           tests (c-tests/evs/*.c: linked with -levs, ours only;
#                           default build dir <repo>/build/c-tests-evs)
#   --only T[,T...]         run only these tests (file names without .c)
#   --exclude T[,T...]      do not run these tests
#   --timeout SECS          per-test time limit (default 60)
#   --no-build              use the binaries already in BUILD_DIR
#   --list                  list the tests and exit
#   -v, --verbose           print every test's full output
#
# environment:
#   CC                 compiler (default cc)
#   CPG_INCLUDE        include dir holding corosync/cpg.h
#                      (default <repo>/include if it has corosync/cpg.h, else /usr/include)
#   CPG_BUILD_LIBDIR   directory linked against with -lcpg ("system" = the system library)
#                      (default <repo>/build/lib if it has libcpg.so.4, else the system one)
#   CPG_OURS_LIBDIR    LD_LIBRARY_PATH for library "ours" (default <repo>/build/lib)
#   CPGD_CMD           command that starts our own server in the foreground
#                      (default: <repo>/target/release/cpgd --allow-uid 65534; add
#                      --ipc socket for its socket mode)
#   CPG_TEST_WRAPPER   command prefix for every test program (word-split), e.g.
#                      valgrind with its options (c-tests/valgrind.sh); the test
#                      also gets CPG_TEST_NAME=<test>
#
# Each test is linked with -lcpg; the library is chosen at run time: "ours" runs
# it with LD_LIBRARY_PATH=$CPG_OURS_LIBDIR, "system" with no LD_LIBRARY_PATH.
# Test programs named *_ours.c check behaviour where our library deliberately
# differs from the original (which crashes or hangs): skipped with "system".
#
# A test exits 0 (pass), 77 (skip) or anything else (fail).  The tests get:
#   CPG_TEST_LIB=ours|system, CPG_TEST_SERVER=<server>, CPG_TEST_DAEMON_PID=<pid>,
#   CPG_TEST_CTL=<dir with fifos req/ack> (a test writes "kill9" or "start" to
#   req and reads "ok <pid>" from ack; the harness SIGKILLs / restarts the daemon),
#   CPG_LIB_A / CPG_LIB_B (library dirs for the two processes of interop_mixed;
#   empty = system library).
#
# Output: one line per test and combination, then exactly one line
# "N passed, N failed[, N skipped]".  Exit status 1 if anything failed.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SYSTEM_LIB=/usr/lib/x86_64-linux-gnu/libcpg.so.4
OURS_LIBDIR=${CPG_OURS_LIBDIR:-$REPO/build/lib}

BUILD_DIR=""
SERVERS=""
LIBS=""
ONLY=""
EXCLUDE=""
TEST_TIMEOUT=60
DO_BUILD=1
SUITE=cpg
LIST=0
VERBOSE=0

die() { echo "run.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVERS="$SERVERS ${2//,/ }"; shift 2 ;;
        --server=*) v=${1#*=}; SERVERS="$SERVERS ${v//,/ }"; shift ;;
        --lib) LIBS="$LIBS ${2//,/ }"; shift 2 ;;
        --lib=*) v=${1#*=}; LIBS="$LIBS ${v//,/ }"; shift ;;
        --only) ONLY="$ONLY ${2//,/ }"; shift 2 ;;
        --only=*) v=${1#*=}; ONLY="$ONLY ${v//,/ }"; shift ;;
        --exclude) EXCLUDE="$EXCLUDE ${2//,/ }"; shift 2 ;;
        --exclude=*) v=${1#*=}; EXCLUDE="$EXCLUDE ${v//,/ }"; shift ;;
        --timeout) TEST_TIMEOUT=$2; shift 2 ;;
        --suite) SUITE=$2; shift 2 ;;
        --suite=*) SUITE=${1#*=}; shift ;;
        --no-build) DO_BUILD=0; shift ;;
        --list) LIST=1; shift ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) sed -n '2,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [ -z "$BUILD_DIR" ] || die "more than one build dir"; BUILD_DIR=$1; shift ;;
    esac
done
case "$SUITE" in
    cpg) TEST_DIR=$HERE; BUILD_DIR=${BUILD_DIR:-$REPO/build/c-tests} ;;
    evs) TEST_DIR=$HERE/evs; BUILD_DIR=${BUILD_DIR:-$REPO/build/c-tests-evs}
         # there is no other libevs.so.4 to compare with
         LIBS=ours ;;
    *) die "unknown suite $SUITE" ;;
esac
SERVERS=${SERVERS:-corosync-shm corosync-socket cpgd}
LIBS=${LIBS:-ours system}

for s in $SERVERS; do
    case "$s" in corosync-shm|corosync-socket|cpgd) ;; *) die "unknown server $s" ;; esac
done
for l in $LIBS; do
    case "$l" in ours|system) ;; *) die "unknown library $l" ;; esac
done

# ------------------------------------------------------------------ tests
ALL_TESTS=()
for f in "$TEST_DIR"/*.c; do
    [ -e "$f" ] || continue
    ALL_TESTS+=("$(basename "$f" .c)")
done
TESTS=()
for t in "${ALL_TESTS[@]}"; do
    if [ -n "$ONLY" ]; then
        case " $ONLY " in *" $t "*) ;; *) continue ;; esac
    fi
    case " $EXCLUDE " in *" $t "*) continue ;; esac
    TESTS+=("$t")
done
for t in $ONLY; do
    case " ${ALL_TESTS[*]} " in *" $t "*) ;; *) die "no such test: $t" ;; esac
done
if [ $LIST = 1 ]; then
    for t in "${ALL_TESTS[@]}"; do
        case "$t" in *_ours) echo "$t (ours-only)" ;; *) echo "$t" ;; esac
    done
    exit 0
fi
[ ${#TESTS[@]} -gt 0 ] || die "no tests selected"

# ------------------------------------------------------------------ harness
# shellcheck source=harness/corosync.sh
source "$HERE/harness/corosync.sh"

NPASS=0; NFAIL=0; NSKIP=0
FAILED_LIST=()
CTL_DIR=""
RUN_TPID=""
cs_on_exit 'run__kill_test'
cs_on_exit 'run__cleanup_ctl'
run__cleanup_ctl() { [ -n "$CTL_DIR" ] && rm -rf "$CTL_DIR"; CTL_DIR=""; }
# interrupted while a test runs: end it (timeout forwards the signal to the
# test's process group), bounded, by pid
run__kill_test() {
    [ -n "$RUN_TPID" ] || return 0
    if kill -0 "$RUN_TPID" 2>/dev/null; then
        kill -TERM "$RUN_TPID" 2>/dev/null
        local i
        for i in $(seq 50); do kill -0 "$RUN_TPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$RUN_TPID" 2>/dev/null
    fi
    wait "$RUN_TPID" 2>/dev/null
    RUN_TPID=""
}

result() { # result STATUS SERVER LIB TEST [DETAIL]
    local st=$1 srv=$2 lib=$3 t=$4 detail=${5:-}
    printf '%-4s  %-15s %-6s %-22s %s\n' "$st" "$srv" "$lib" "$t" "$detail"
    case "$st" in
        PASS) NPASS=$((NPASS + 1)) ;;
        FAIL) NFAIL=$((NFAIL + 1)); FAILED_LIST+=("$srv/$lib/$t") ;;
        SKIP) NSKIP=$((NSKIP + 1)) ;;
    esac
}

# ------------------------------------------------------------------ build
CC=${CC:-cc}
if [ -z "${CPG_INCLUDE:-}" ]; then
    if [ -f "$REPO/include/corosync/cpg.h" ]; then CPG_INCLUDE=$REPO/include; else CPG_INCLUDE=/usr/include; fi
fi
if [ -z "${CPG_BUILD_LIBDIR:-}" ]; then
    if [ -e "$OURS_LIBDIR/libcpg.so.4" ]; then CPG_BUILD_LIBDIR=$OURS_LIBDIR; else CPG_BUILD_LIBDIR=""; fi
elif [ "$CPG_BUILD_LIBDIR" = system ]; then
    CPG_BUILD_LIBDIR=""
fi
LINK=()
if [ -n "$CPG_BUILD_LIBDIR" ]; then
    if [ -e "$CPG_BUILD_LIBDIR/libcpg.so" ]; then
        LINK=(-L"$CPG_BUILD_LIBDIR" -lcpg)
    else
        LINK=(-L"$CPG_BUILD_LIBDIR" -l:libcpg.so.4)   # only the SONAME file exists
    fi
else
    LINK=(-lcpg)
fi
if [ "$SUITE" = evs ]; then
    LINK=(-L"$OURS_LIBDIR" -levs)
fi
CFLAGS_T=(-O2 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -I"$CPG_INCLUDE" -I"$HERE")
declare -A BUILD_ERR=()

mkdir -p "$BUILD_DIR" "$BUILD_DIR/logs" "$BUILD_DIR/tools" || die "cannot create $BUILD_DIR"
build_one() { # build_one SRC OUT
    local src=$1 out=$2
    if [ -x "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$HERE/tap.h" ] && \
       [ "$out" -nt "$BUILD_DIR/.buildflags" ] && [ "$out" -nt "$CPG_INCLUDE/corosync/cpg.h" ] && \
       [ "$out" -nt "$CPG_INCLUDE/corosync/corotypes.h" ] && \
       { [ ! -e "$CPG_INCLUDE/corosync/evs.h" ] || [ "$out" -nt "$CPG_INCLUDE/corosync/evs.h" ]; }; then
        return 0
    fi
    "$CC" "${CFLAGS_T[@]}" -o "$out" "$src" "${LINK[@]}" -lpthread >"$out.buildlog" 2>&1
}
if [ $DO_BUILD = 1 ]; then
    flags="$CC ${CFLAGS_T[*]} ${LINK[*]}"
    if [ ! -f "$BUILD_DIR/.buildflags" ] || [ "$(cat "$BUILD_DIR/.buildflags")" != "$flags" ]; then
        echo "$flags" >"$BUILD_DIR/.buildflags"
    fi
    echo "# build: $flags" >&2
    for t in "${TESTS[@]}"; do
        if ! build_one "$TEST_DIR/$t.c" "$BUILD_DIR/$t"; then
            BUILD_ERR[$t]=1
            echo "# build of $t failed:" >&2
            sed 's/^/#   /' "$BUILD_DIR/$t.buildlog" | head -40 >&2
        fi
    done
    # the readiness probe is a libcpg program whatever the suite
    SUITE_LINK=("${LINK[@]}")
    [ "$SUITE" = evs ] && LINK=(-L"$OURS_LIBDIR" -lcpg)
    build_one "$HERE/harness/cpg_probe.c" "$BUILD_DIR/tools/cpg_probe" || echo "# build of cpg_probe failed" >&2
    LINK=("${SUITE_LINK[@]}")
fi

# ------------------------------------------------------------------ libraries
lib_available() { # lib_available LIB -> 0/1, sets LIB_REASON
    case "$1" in
        ours) if [ -e "$OURS_LIBDIR/libcpg.so.4" ]; then return 0; fi
              LIB_REASON="$OURS_LIBDIR/libcpg.so.4 not built"; return 1 ;;
        system) if [ -e "$SYSTEM_LIB" ]; then return 0; fi
              LIB_REASON="$SYSTEM_LIB absent"; return 1 ;;
    esac
    return 1
}
lib_dir() { # directory for LD_LIBRARY_PATH ("" = system)
    case "$1" in ours) echo "$OURS_LIBDIR" ;; *) echo "" ;; esac
}
other_lib() { case "$1" in ours) echo system ;; *) echo ours ;; esac; }

# ------------------------------------------------------------------ servers
# ======================= cpgd (our own server) ================================
# The command (one line, word-split, no shell syntax) that runs cpgd in the
# foreground; it is executed inside a private network namespace with a private
# tmpfs /run, like corosync.  Readiness is polled with cpg_probe (a
# cpg_initialize that must return CS_OK).  No output (return 1) when cpgd is
# not built: its suite is then reported SKIPPED.  --allow-uid 65534 lets the
# nonroot test's client (nobody) in.
cpgd_command() {
    if [ -n "${CPGD_CMD:-}" ]; then echo "$CPGD_CMD"; return 0; fi
    if [ -x "$REPO/target/release/cpgd" ]; then
        echo "$REPO/target/release/cpgd --allow-uid 65534"; return 0
    fi
    return 1
}
# LD_LIBRARY_PATH for the readiness probe (empty: the environment run.sh was started with)
CPGD_PROBE_LIBDIR=${CPGD_PROBE_LIBDIR:-}
# ==============================================================================

SERVER_REASON=""
server_start() { # server_start SERVER -> 0 ok, 1 failed, 2 skip (SERVER_REASON)
    local srv=$1 rc
    SERVER_REASON=""
    case "$srv" in
        corosync-shm) cs_start shm shm; rc=$? ;;
        corosync-socket) cs_start sock socket; rc=$? ;;
        cpgd)
            local cmd
            if ! cmd=$(cpgd_command); then SERVER_REASON="cpgd not built (cargo build --release) and CPGD_CMD not set"; return 2; fi
            CS_SERVER_CMD=$cmd
            if [ -n "$CPGD_PROBE_LIBDIR" ]; then
                CS_READY_PROBE="LD_LIBRARY_PATH='$CPGD_PROBE_LIBDIR' '$BUILD_DIR/tools/cpg_probe'"
            else
                CS_READY_PROBE="'$BUILD_DIR/tools/cpg_probe'"
            fi
            cs_start cpgd cmd; rc=$? ;;
    esac
    [ $rc = 2 ] && SERVER_REASON=${CS_SKIP_REASON:-unavailable}
    [ $rc = 1 ] && SERVER_REASON="server failed to start"
    return $rc
}

# ------------------------------------------------------------------ run one test
# run_one SERVER LIB TEST -> sets RUN_RC, RUN_LOG
run_one() {
    local srv=$1 lib=$2 t=$3
    local logdir="$BUILD_DIR/logs/$srv/$lib"
    mkdir -p "$logdir"
    RUN_LOG="$logdir/$t.log"
    CTL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cpgt-ctl-$$.XXXXXX")
    mkfifo "$CTL_DIR/req" "$CTL_DIR/ack"
    local reqfd ackfd
    exec {reqfd}<>"$CTL_DIR/req"
    exec {ackfd}<>"$CTL_DIR/ack"

    local envs=(CPG_TEST_LIB="$lib" CPG_TEST_SERVER="$srv" CPG_TEST_DAEMON_PID="$CS_PID"
                CPG_TEST_CTL="$CTL_DIR" CPG_TEST_NAME="$t"
                CPG_LIB_A="$(lib_dir "$lib")")
    local other; other=$(other_lib "$lib")
    if lib_available "$other"; then envs+=(CPG_LIB_B="$(lib_dir "$other")"); else envs+=(CPG_LIB_B="$(lib_dir "$lib")"); fi
    local unset_ld=(-u LD_LIBRARY_PATH)
    if [ "$lib" = ours ]; then envs+=(LD_LIBRARY_PATH="$OURS_LIBDIR"); unset_ld=(); fi

    local start=$SECONDS
    local wrap=()
    [ -n "${CPG_TEST_WRAPPER:-}" ] && read -r -a wrap <<<"$CPG_TEST_WRAPPER"
    timeout -k 5 "$TEST_TIMEOUT" ip netns exec "$CS_NS" \
        env "${unset_ld[@]}" "${envs[@]}" "${wrap[@]}" "$BUILD_DIR/$t" >"$RUN_LOG" 2>&1 </dev/null &
    local tpid=$! line old part="" pending=""
    RUN_TPID=$tpid
    while kill -0 "$tpid" 2>/dev/null; do
        # a read that times out mid-line keeps what it consumed in $part:
        # carry it over, or the next request loses its first bytes
        if ! IFS= read -r -t 0.2 -u "$reqfd" part; then
            pending=$pending$part
        else
            line=$pending$part; pending=""
            case "$line" in
                kill9)
                    old=$CS_PID
                    cs_kill9
                    echo "# harness: SIGKILLed daemon $old" >>"$RUN_LOG.harness"
                    echo "ok $old" >&"$ackfd" ;;
                start)
                    if cs_alive; then
                        echo "ok $CS_PID" >&"$ackfd"
                    elif cs__launch; then
                        echo "# harness: restarted daemon as $CS_PID" >>"$RUN_LOG.harness"
                        echo "ok $CS_PID" >&"$ackfd"
                    else
                        echo "error start" >&"$ackfd"
                    fi ;;
                *) echo "error unknown request" >&"$ackfd" ;;
            esac
        fi
    done
    wait "$tpid"; RUN_RC=$?
    RUN_TPID=""
    RUN_SECS=$((SECONDS - start))
    exec {reqfd}<&- {ackfd}<&-
    run__cleanup_ctl
    if [ -f "$RUN_LOG.harness" ]; then cat "$RUN_LOG.harness" >>"$RUN_LOG"; rm -f "$RUN_LOG.harness"; fi
    [ $RUN_RC = 124 ] || [ $RUN_RC = 137 ] && echo "FAIL: $t: killed by run.sh after ${TEST_TIMEOUT}s" >>"$RUN_LOG"
    return 0
}

# after a test: no client process may be left in the namespace, and the
# daemon must have released every /dev/shm connection directory.
post_checks() { # post_checks -> prints problems, returns 1 if any
    local bad=0 p pids left
    pids=$(ip netns pids "$CS_NS" 2>/dev/null)
    left=""
    for p in $pids; do
        [ "$p" = "$CS_PID" ] && continue
        left="$left $p"
    done
    if [ -n "$left" ]; then
        # processes started by this test that outlived it: ours to end, by pid
        for p in $left; do kill -KILL "$p" 2>/dev/null; done
        echo "left processes behind:$left (killed)"
        bad=1
    fi
    if [ -n "$CS_PID" ]; then
        local i n=0
        for i in $(seq 30); do
            n=$(compgen -G "/dev/shm/qb-$CS_PID-*" | wc -l)
            [ "$n" = 0 ] && break
            sleep 0.1
        done
        if [ "$n" != 0 ]; then
            echo "daemon still holds $n /dev/shm/qb-$CS_PID-* entries 3 s after the test ended:" \
                 "$(compgen -G "/dev/shm/qb-$CS_PID-*" | tr '\n' ' ')"
            bad=1
        fi
    fi
    return $bad
}

show_failure() {
    local log=$1
    {
        grep -E '^(FAIL|SKIP)' "$log" | head -40
        echo "  --- last lines of $log:"
        tail -n 15 "$log"
    } | sed 's/^/    /'
}

# ------------------------------------------------------------------ main loop
for srv in $SERVERS; do
    server_start "$srv"; src=$?
    for lib in $LIBS; do
        for t in "${TESTS[@]}"; do
            if [ $src = 2 ]; then result SKIP "$srv" "$lib" "$t" "($SERVER_REASON)"; continue; fi
            if [ $src = 1 ]; then result FAIL "$srv" "$lib" "$t" "($SERVER_REASON)"; continue; fi
            if ! lib_available "$lib"; then result SKIP "$srv" "$lib" "$t" "($LIB_REASON)"; continue; fi
            case "$t" in *_ours) if [ "$lib" = system ]; then
                result SKIP "$srv" "$lib" "$t" "(ours-only: the original crashes or hangs here)"; continue; fi ;; esac
            if [ -n "${BUILD_ERR[$t]:-}" ]; then result FAIL "$srv" "$lib" "$t" "(build failed: $BUILD_DIR/$t.buildlog)"; continue; fi
            if [ ! -x "$BUILD_DIR/$t" ]; then result FAIL "$srv" "$lib" "$t" "(binary missing)"; continue; fi
            if ! cs_alive; then
                if ! cs_restart; then result FAIL "$srv" "$lib" "$t" "(daemon could not be restarted)"; continue; fi
            fi
            run_one "$srv" "$lib" "$t"
            restarted=""
            if ! cs_alive; then
                cs_restart || true
                restarted=" [daemon restarted]"
            fi
            post=$(post_checks); postrc=$?
            npass=$(grep -c '^PASS' "$RUN_LOG"); nfail=$(grep -c '^FAIL' "$RUN_LOG")
            detail="(${RUN_SECS}s, $npass checks ok"
            [ "$nfail" != 0 ] && detail="$detail, $nfail failed"
            detail="$detail)$restarted"
            if [ $RUN_RC = 77 ] && [ $postrc = 0 ]; then
                result SKIP "$srv" "$lib" "$t" "($(grep -m1 '^SKIP' "$RUN_LOG" | sed 's/^SKIP: [^:]*: //'))"
            elif [ $RUN_RC = 0 ] && [ "$nfail" = 0 ] && [ $postrc = 0 ]; then
                result PASS "$srv" "$lib" "$t" "$detail"
                [ $VERBOSE = 1 ] && sed 's/^/    /' "$RUN_LOG"
            else
                [ $RUN_RC != 0 ] && detail="$detail exit $RUN_RC"
                result FAIL "$srv" "$lib" "$t" "$detail"
                if [ $VERBOSE = 1 ]; then sed 's/^/    /' "$RUN_LOG"; else show_failure "$RUN_LOG"; fi
                [ -n "$post" ] && echo "    harness: $post"
            fi
        done
    done
    cs_cleanup
done

cs_cleanup
if [ ${#FAILED_LIST[@]} -gt 0 ]; then
    echo "# failed: ${FAILED_LIST[*]}"
fi
if [ $NSKIP -gt 0 ]; then
    echo "$NPASS passed, $NFAIL failed, $NSKIP skipped"
else
    echo "$NPASS passed, $NFAIL failed"
fi
trap - EXIT
[ $NFAIL = 0 ]
