#!/bin/bash
# fuzz/run.sh -- build the fuzz targets and run each for a bounded time,
# one after the other (never two fuzzers at once).
#
# usage: fuzz/run.sh [--seconds N] [--merge] [TARGET...]
#   --seconds N   time per target (default $FUZZ_SECONDS, else 30)
#   --merge       afterwards, merge what the run found into fuzz/corpus/<target>,
#                 minimized (libFuzzer -set_cover_merge=1); without it the checked-in
#                 corpus is only read
#   TARGET...     default: every target in fuzz/Cargo.toml
#
# Needs cargo-fuzz (scripts/install-deps.sh installs the pinned version).
# The targets are built with AddressSanitizer, debug assertions and
# overflow checks; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept the
# sanitizer flags. Each input is limited to 10 s (a hang is a failure) and
# the process to 2 GiB RSS. Crashing inputs go to build/fuzz/artifacts/<target>/.
# Prints one line per target (time, executions, corpus) and exits 1 if any
# target found a failure.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SECONDS_PER=${FUZZ_SECONDS:-30}
MERGE=0
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_PER=$2; shift 2 ;;
        --seconds=*) SECONDS_PER=${1#*=}; shift ;;
        --merge) MERGE=1; shift ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz is not installed (run scripts/install-deps.sh)" >&2
    exit 2
fi
if [ ${#TARGETS[@]} = 0 ]; then
    mapfile -t TARGETS < <(cd "$HERE" && cargo fuzz list 2>/dev/null)
fi

OUT=$REPO/build/fuzz
mkdir -p "$OUT/artifacts" "$OUT/logs"
BIN=$HERE/target/x86_64-unknown-linux-gnu/release

# Scratch files of fuzzer processes that are gone (a crash skips atexit).
clean_scratch() {
    local d pid
    for d in /dev/shm/cpgrs-fuzz-*; do
        [ -e "$d" ] || continue
        pid=${d#/dev/shm/cpgrs-fuzz-}
        pid=${pid%%-*}
        case "$pid" in ''|*[!0-9]*) continue ;; esac
        kill -0 "$pid" 2>/dev/null || rm -rf "$d"
    done
}
WORK=""
FPID=""
on_exit() {
    if [ -n "$FPID" ] && kill -0 "$FPID" 2>/dev/null; then
        kill -TERM "$FPID" 2>/dev/null; sleep 1; kill -KILL "$FPID" 2>/dev/null
    fi
    [ -n "$WORK" ] && rm -rf "$WORK"
    clean_scratch
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "# building ${#TARGETS[*]} targets (cargo fuzz build -O -a)" >&2
if ! (cd "$HERE" && RUSTC_BOOTSTRAP=1 cargo fuzz build -O -a); then
    echo "run.sh: build failed" >&2
    exit 1
fi

WORK=$(mktemp -d "$OUT/work.XXXXXX")
failed=0
printf '%-15s %5s %12s %9s %8s %10s %7s  %s\n' target secs execs execs/s new corpus rss result
for t in "${TARGETS[@]}"; do
    corpus=$HERE/corpus/$t
    mkdir -p "$corpus" "$OUT/artifacts/$t" "$WORK/$t"
    log=$OUT/logs/$t.log
    start=$(date +%s)
    # New units go to the scratch dir; the checked-in corpus is read only.
    "$BIN/$t" "$WORK/$t" "$corpus" -max_total_time="$SECONDS_PER" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" \
        >"$log" 2>&1 &
    FPID=$!
    wait "$FPID"; rc=$?
    FPID=""
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    if [ $rc = 0 ]; then res=ok; else res="FAIL (exit $rc)"; failed=1; fi
    if [ $MERGE = 1 ] && [ $rc = 0 ]; then
        min=$WORK/$t.min
        mkdir -p "$min"
        if "$BIN/$t" -set_cover_merge=1 "$min" "$corpus" "$WORK/$t" >"$log.merge" 2>&1; then
            rm -f "$corpus"/*
            cp "$min"/* "$corpus"/ 2>/dev/null || true
        else
            echo "# merge of $t failed: $log.merge" >&2
        fi
    fi
    files=$(find "$corpus" -type f | wc -l)
    kb=$(du -sk "$corpus" | cut -f1)
    printf '%-15s %5s %12s %9s %8s %10s %7s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${new:-?}" \
        "${files}f/${kb}K" "${rss:-?}M" "$res"
    if [ $rc != 0 ]; then
        grep -m3 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer|assertion' "$log" | sed 's/^/    /'
        ls "$OUT/artifacts/$t/" 2>/dev/null | head -3 | sed "s|^|    artifact: $OUT/artifacts/$t/|"
        echo "    log: $log"
    fi
    rm -rf "${WORK:?}/$t"
    clean_scratch
done
exit $failed
