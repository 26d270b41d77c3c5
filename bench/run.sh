#!/bin/bash
# bench/run.sh -- throughput and latency of libcpg.so.4: corosync's C library
# ("C", Debian's /usr/lib/x86_64-linux-gnu/libcpg.so.4) against ours
# ("ours", build/lib), on a private corosync (shm IPC) and, when it exists, on
# our own server cpgd.  `make bench` runs it.  See docs/benchmarks.md.
#
# usage: bench/run.sh [--quick] [--update-docs] [--servers corosync,cpgd]
#   --quick          1 run of 1 s per point, 1000 round trips (a smoke test)
#   --update-docs    also copy the plot to docs/benchmarks.svg
#   --servers LIST   servers to measure (default: corosync,cpgd)
#
# environment (defaults in brackets):
#   BENCH_OUT        output directory [build/bench]
#   BENCH_SECONDS    length of one throughput run [1]
#   BENCH_RUNS       repetitions of every point; the median is reported [5]
#   BENCH_SIZES      throughput message sizes [64 320 1600 8000 40000 200000 1000000]
#   BENCH_ZC_SIZES   sizes also sent with cpg_zcb_mcast_joined [1600 200000]
#   BENCH_LAT_SIZES  latency message sizes [64 1600]
#   BENCH_LAT_COUNT  timed round trips per latency run [5000] (after BENCH_LAT_WARMUP [500])
#   CPGD_BIN         our server [target/release/cpgd];  CPGD_ARGS extra arguments
#   CC, CFLAGS       compiler for the benchmark programs [cc, -O2]
#
# Every point is run BENCH_RUNS times, alternating the two libraries (C first
# on odd runs, ours first on even runs) so slow drifts of a busy machine hit
# both alike.  A run that fails (lost message, library error, stall) is
# reported and the remaining repetitions of that point are skipped.
#
# Output (in BENCH_OUT): runs.csv (every run), results.csv (medians),
# summary.md (the tables printed at the end), benchmarks.svg (plot), logs/.
# Exit status: 0 all runs succeeded, 1 some run failed, 2 set-up error.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OURS_LIBDIR=$REPO/build/lib
SYSTEM_LIB=/usr/lib/x86_64-linux-gnu/libcpg.so.4

OUT=${BENCH_OUT:-$REPO/build/bench}
SECS=${BENCH_SECONDS:-1}
RUNS=${BENCH_RUNS:-5}
SIZES=${BENCH_SIZES:-64 320 1600 8000 40000 200000 1000000}
ZC_SIZES=${BENCH_ZC_SIZES:-1600 200000}
LAT_SIZES=${BENCH_LAT_SIZES:-64 1600}
LAT_COUNT=${BENCH_LAT_COUNT:-5000}
LAT_WARMUP=${BENCH_LAT_WARMUP:-500}
CPGD_BIN=${CPGD_BIN:-$REPO/target/release/cpgd}
CPGD_ARGS=${CPGD_ARGS:-}
SERVERS="corosync cpgd"
UPDATE_DOCS=0

die() { echo "bench: $*" >&2; exit 2; }
say() { echo "bench: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) SECS=1; RUNS=1; LAT_COUNT=1000; LAT_WARMUP=100; shift ;;
        --update-docs) UPDATE_DOCS=1; shift ;;
        --servers) SERVERS=${2//,/ }; shift 2 ;;
        --servers=*) v=${1#*=}; SERVERS=${v//,/ }; shift ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for s in $SERVERS; do
    case "$s" in corosync|cpgd) ;; *) die "unknown server $s" ;; esac
done

# ------------------------------------------------------------------ checks
[ -e "$OURS_LIBDIR/libcpg.so.4" ] || die "$OURS_LIBDIR/libcpg.so.4 missing: run 'make all' first"
[ -e "$SYSTEM_LIB" ] || die "$SYSTEM_LIB missing (Debian's libcpg4): nothing to compare with"
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the report"

BIN=$OUT/bin
LOGS=$OUT/logs
mkdir -p "$BIN" "$LOGS" || die "cannot create $OUT"
rm -f "$LOGS"/*.log

# ------------------------------------------------------------------ build
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2}
for p in throughput latency; do
    # shellcheck disable=SC2086
    $CC $CFLAGS -Wall -Wextra -I"$REPO/include" -o "$BIN/$p" "$HERE/$p.c" -L"$OURS_LIBDIR" -lcpg \
        || die "cannot compile bench/$p.c"
done
# readiness probe for cpgd (a cpg_initialize that must succeed)
# shellcheck disable=SC2086
$CC $CFLAGS -I"$REPO/include" -o "$BIN/cpg_probe" "$REPO/c-tests/harness/cpg_probe.c" -L"$OURS_LIBDIR" -lcpg \
    || die "cannot compile the readiness probe"

# make sure each mode really loads the library it claims to
lib_env() { # lib_env LIB -> env(1) arguments choosing the library
    if [ "$1" = ours ]; then echo "LD_LIBRARY_PATH=$OURS_LIBDIR"; else echo "-u LD_LIBRARY_PATH"; fi
}
resolved() { # resolved LIB -> path of the libcpg.so.4 the programs load
    # shellcheck disable=SC2046
    env $(lib_env "$1") ldd "$BIN/throughput" | awk '$1 == "libcpg.so.4" { print $3 }'
}
C_RESOLVED=$(resolved c); OURS_RESOLVED=$(resolved ours)
[ "$(readlink -f "$C_RESOLVED")" = "$(readlink -f "$SYSTEM_LIB")" ] \
    || die "the C runs would load '$C_RESOLVED', not $SYSTEM_LIB"
[ "$(readlink -f "$OURS_RESOLVED")" = "$(readlink -f "$OURS_LIBDIR/libcpg.so.4")" ] \
    || die "our runs would load '$OURS_RESOLVED', not $OURS_LIBDIR/libcpg.so.4"

# ------------------------------------------------------------------ harness
# shellcheck source=../c-tests/harness/corosync.sh
source "$REPO/c-tests/harness/corosync.sh"   # installs the EXIT/INT/TERM clean-up trap
cs_available || die "cannot run a private corosync: $CS_SKIP_REASON"

RUNS_CSV=$OUT/runs.csv
META=$OUT/meta.txt
echo "server,lib,test,size,run,status,msgs_per_s,MB_per_s,msgs,seconds,try_again,cpu_us_per_msg,srv_cpu_us_per_msg,p50_us,p99_us,max_us,mean_us" >"$RUNS_CSV"
NFAIL=0
PROBLEMS=()
declare -A FAILED=()
T_START=$SECONDS

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs, $(uname -sr), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "corosync: $(corosync -v 2>/dev/null | head -1 | sed "s/.*version '\([^']*\)'.*/\1/") (shm IPC), C library: $(readlink -f "$SYSTEM_LIB")"
    echo "ours: $(readlink -f "$OURS_LIBDIR/libcpg.so.4")"
    echo "settings: $RUNS runs x ${SECS} s per throughput point (median), latency $LAT_COUNT round trips after $LAT_WARMUP warm-up (median of $RUNS runs)"
} >"$META"

CLK_TCK=$(getconf CLK_TCK)
server_cpu() { # CPU time (user + system, clock ticks) of the running server
    [ -n "$CS_PID" ] && awk '{ print $14 + $15 }' "/proc/$CS_PID/stat" 2>/dev/null
}

# run_point SERVER LIB TEST SIZE RUN -> appends to runs.csv
run_point() {
    local srv=$1 lib=$2 test=$3 size=$4 run=$5
    local key="$srv/$lib/$test/$size"
    if [ -n "${FAILED[$key]:-}" ]; then return 0; fi
    local log="$LOGS/$srv-$lib-$test-$size-$run.log" limit out rc
    local cmd
    case "$test" in
        mcast) cmd=("$BIN/throughput" "$size" "$SECS"); limit=$(( ${SECS%.*} + 20 )) ;;
        zc) cmd=("$BIN/throughput" "$size" "$SECS" zc); limit=$(( ${SECS%.*} + 20 )) ;;
        latency) cmd=("$BIN/latency" "$size" "$LAT_COUNT" "$LAT_WARMUP"); limit=130 ;;
    esac
    local cpu0 cpu1
    cpu0=$(server_cpu)
    # shellcheck disable=SC2046
    out=$(cs_exec env $(lib_env "$lib") timeout -k 3 "$limit" "${cmd[@]}" 2>"$log" </dev/null)
    rc=$?
    cpu1=$(server_cpu)
    local f
    read -r -a f <<<"$out"
    if [ $rc = 0 ] && [ "$test" = latency ] && [ ${#f[@]} -ge 6 ]; then
        echo "$srv,$lib,$test,$size,$run,ok,,,,,,,,${f[2]},${f[3]},${f[4]},${f[5]}" >>"$RUNS_CSV"
        printf '  %-8s %-4s %-7s %8s B  run %d: p50 %8s us  p99 %8s us  max %8s us\n' \
            "$srv" "$lib" "$test" "$size" "$run" "${f[2]}" "${f[3]}" "${f[4]}" >&2
    elif [ $rc = 0 ] && [ "$test" != latency ] && [ ${#f[@]} -ge 7 ]; then
        # server CPU time per message over the whole run (join to finalize)
        local srv_us=""
        if [ -n "$cpu0" ] && [ -n "$cpu1" ] && [ "${f[1]}" -gt 0 ]; then
            srv_us=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" -v n="${f[1]}" \
                'BEGIN { printf "%.2f", (b - a) / t * 1e6 / n }')
        fi
        echo "$srv,$lib,$test,$size,$run,ok,${f[3]},${f[4]},${f[1]},${f[2]},${f[5]},${f[6]},$srv_us,,,," >>"$RUNS_CSV"
        printf '  %-8s %-4s %-7s %8s B  run %d: %9s msgs/s %9s MB/s  CPU/msg: client %7s us, server %7s us  (%s TRY_AGAIN)\n' \
            "$srv" "$lib" "$test" "$size" "$run" "${f[3]}" "${f[4]}" "${f[6]}" "${srv_us:-?}" "${f[5]}" >&2
    else
        local why
        why=$(grep -v '^\s*$' "$log" | head -1)
        [ $rc = 124 ] || [ $rc = 137 ] && why="killed after ${limit} s (stall)${why:+: $why}"
        [ -n "$why" ] || why="exit status $rc, no message"
        echo "$srv,$lib,$test,$size,$run,FAIL,,,,,,,,,,," >>"$RUNS_CSV"
        FAILED[$key]=1
        NFAIL=$((NFAIL + 1))
        PROBLEMS+=("$srv / $lib / $test / $size B / run $run: $why")
        printf '  %-8s %-4s %-7s %8s B  run %d: FAILED: %s\n' "$srv" "$lib" "$test" "$size" "$run" "$why" >&2
    fi
    if ! cs_alive; then
        PROBLEMS+=("$srv died during $lib / $test / $size B / run $run")
        return 1
    fi
    return 0
}

# lib order for run R: alternate which library goes first
lib_order() { if [ $(($1 % 2)) = 1 ]; then echo "c ours"; else echo "ours c"; fi; }

ALL_SIZES=$(printf '%s\n' $SIZES $ZC_SIZES | sort -n -u)

bench_server() { # bench_server NAME: everything against the running server
    local srv=$1 size r lib test tests
    for size in $ALL_SIZES; do
        tests="mcast"
        case " $ZC_SIZES " in *" $size "*) tests="mcast zc" ;; esac
        for r in $(seq 1 "$RUNS"); do
            for test in $tests; do
                for lib in $(lib_order "$r"); do
                    run_point "$srv" "$lib" "$test" "$size" "$r" || return 1
                done
            done
        done
    done
    for size in $LAT_SIZES; do
        for r in $(seq 1 "$RUNS"); do
            for lib in $(lib_order "$r"); do
                run_point "$srv" "$lib" latency "$size" "$r" || return 1
            done
        done
    done
    return 0
}

for srv in $SERVERS; do
    case "$srv" in
        corosync)
            say "starting corosync (shm)"
            if ! cs_start bench shm; then
                die "corosync did not start (see above)"
            fi ;;
        cpgd)
            if [ ! -x "$CPGD_BIN" ]; then
                echo "cpgd: not available ($CPGD_BIN does not exist)"
                echo "cpgd: not available ($CPGD_BIN does not exist)" >>"$META"
                continue
            fi
            say "starting cpgd ($CPGD_BIN $CPGD_ARGS)"
            CS_SERVER_CMD="$CPGD_BIN $CPGD_ARGS"
            CS_READY_PROBE="env -u LD_LIBRARY_PATH '$BIN/cpg_probe'"
            if ! CS_READY_TIMEOUT=15 cs_start cpgd cmd; then
                echo "cpgd: not available (it did not start; see above)"
                echo "cpgd: not available (did not start)" >>"$META"
                cs_cleanup
                continue
            fi
            echo "cpgd: $("$CPGD_BIN" --version 2>/dev/null | head -1) ($CPGD_BIN built $(date -u -r "$CPGD_BIN" '+%Y-%m-%d %H:%M UTC'), default options${CPGD_ARGS:+ + $CPGD_ARGS})" >>"$META" ;;
    esac
    if ! bench_server "$srv"; then
        say "$srv died; its remaining points are skipped (log: $LOGS/$srv-server.log)"
        NFAIL=$((NFAIL + 1))
    fi
    cp "$CS_LOG" "$LOGS/$srv-server.log" 2>/dev/null
    cs_cleanup
done

find "$LOGS" -type f -empty -delete 2>/dev/null
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); total time $((SECONDS - T_START)) s" >>"$META"

# ------------------------------------------------------------------ report
python3 "$HERE/report.py" --meta "$META" --csv "$OUT/results.csv" "$RUNS_CSV" >"$OUT/summary.md" \
    || die "report.py failed"
if [ ${#PROBLEMS[@]} -gt 0 ]; then
    {
        echo
        echo "## Problems"
        echo
        for p in "${PROBLEMS[@]}"; do echo "- $p"; done
        echo
        echo "(per-run stderr in $LOGS)"
    } >>"$OUT/summary.md"
fi
echo
cat "$OUT/summary.md"
python3 "$HERE/plot.py" "$OUT/results.csv" "$OUT/benchmarks.svg" || die "plot.py failed"
if [ $UPDATE_DOCS = 1 ]; then
    cp "$OUT/benchmarks.svg" "$REPO/docs/benchmarks.svg"
    echo "plot copied to docs/benchmarks.svg"
fi
echo
echo "files: $RUNS_CSV $OUT/results.csv $OUT/summary.md $OUT/benchmarks.svg"
[ $NFAIL = 0 ] || { echo "bench: $NFAIL failed run(s), see Problems above"; exit 1; }
exit 0
