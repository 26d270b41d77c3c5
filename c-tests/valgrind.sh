#!/bin/bash
# c-tests/valgrind.sh -- a representative part of the C suite under valgrind
# memcheck, with our library, against a private corosync (SHM).
#
# usage: c-tests/valgrind.sh [--only T[,T...]] [--server S]
#   default tests: $VG_TESTS below (dispatch, multicast incl. fragmented
#   messages, zero-copy buffers, iteration, finalize from other threads and
#   callbacks, join/leave, error paths, NULL arguments, initialize/finalize
#   rounds)
#
# Fails when a test fails, when memcheck reports any error (invalid read or
# write, use of uninitialised values, bad free ...; --errors-for-leak-kinds=none
# keeps leaks out of that count), or when a block is definitely lost that our
# library allocated (the innermost non-allocator frame of its stack is ours). Definite
# leaks of the test programs themselves are listed, not failed. Suppressions:
# c-tests/valgrind.supp (glibc/ld.so noise only). Logs: build/c-tests-valgrind/vg/.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VG_TESTS=${VG_TESTS:-api_basic,dispatch_modes,mcast_order,msg_sizes,errors,iteration,join_leave,confchg,finalize_thread_ours,null_args_ours,mcast_args_ours,resource_leaks,threads_hammer_ours}
SERVER=corosync-shm
while [ $# -gt 0 ]; do
    case "$1" in
        --only) VG_TESTS=$2; shift 2 ;;
        --server) SERVER=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "valgrind.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP: valgrind not installed (scripts/install-deps.sh installs it)"
    exit 0
fi
OUT=$REPO/build/c-tests-valgrind
VGDIR=$OUT/vg
rm -rf "$VGDIR"
mkdir -p "$VGDIR"

# the thread hammer runs longer: valgrind serialises its threads
export CPG_HAMMER_MS=${CPG_HAMMER_MS:-8000}
# memcheck runs programs some 4-20 times slower: the tests' watchdogs stretch
export CPG_TEST_SLOW=${CPG_TEST_SLOW:-5}
export CPG_TEST_WRAPPER="valgrind --tool=memcheck --error-exitcode=0 --errors-for-leak-kinds=none \
--leak-check=full --show-leak-kinds=definite --num-callers=40 --track-origins=yes --fullpath-after= \
--suppressions=$HERE/valgrind.supp --log-file=$VGDIR/%q{CPG_TEST_NAME}.%p.log"
bash "$HERE/run.sh" --server "$SERVER" --lib ours --only "$VG_TESTS" --timeout 600 "$OUT"
suite=$?

# ---- read the logs
failed=0
printf '\n%-22s %6s %8s %14s %16s\n' test procs errors "ours lost" "tests' lost"
for t in ${VG_TESTS//,/ }; do
    logs=("$VGDIR/$t".*.log)
    [ -e "${logs[0]}" ] || { printf '%-22s %6s\n' "$t" "no log"; failed=1; continue; }
    errs=0; ours=0; other=0
    for f in "${logs[@]}"; do
        e=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)
        errs=$((errs + ${e:-0}))
        # one leak record: the "definitely lost" line and its stack, up to a blank line.
        # Whose: the innermost frame that is not the allocator (valgrind's
        # malloc, Rust's alloc/std, libc) -- ours when it is in our sources
        # (full paths), our Rust crate or our .so. (A test's callback that
        # allocates has our dispatch further out in its stack: the test's.)
        read -r o x < <(awk -v src="$REPO/src/" '
            /definitely lost in loss record/ { inrec=1; bytes=$2; gsub(",", "", bytes); ours=-1; next }
            inrec && /^==[0-9]+== *$/ { if (ours == 1) o += bytes; else x += bytes; inrec=0; next }
            inrec && ours == -1 && /(at|by) 0x/ {
                if (/vgpreload|\/rustc\/|cargo\/registry\/|__rust_|alloc::|libc\.so|ld-linux/) next
                ours = (index($0, src) || /(libcpg\.so|libcorosync_common\.so|libevs\.so|cpg_rs::)/) ? 1 : 0
            }
            END { if (inrec) { if (ours == 1) o += bytes; else x += bytes }; print o+0, x+0 }' "$f")
        ours=$((ours + o)); other=$((other + x))
    done
    printf '%-22s %6s %8s %14s %16s\n' "$t" "${#logs[@]}" "$errs" "${ours} B" "${other} B"
    if [ "$errs" != 0 ] || [ "$ours" != 0 ]; then
        failed=1
        for f in "${logs[@]}"; do
            if grep -q -E 'ERROR SUMMARY: [1-9]|definitely lost in loss record' "$f"; then
                echo "    see $f"
            fi
        done
    fi
done
if [ $suite != 0 ]; then echo "valgrind.sh: C tests failed under valgrind"; failed=1; fi
[ $failed = 0 ] && echo "valgrind: no memory errors, no definite leak in our library"
exit $failed
