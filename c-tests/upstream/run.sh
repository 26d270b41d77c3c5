#!/bin/bash
# c-tests/upstream/run.sh -- the drop-in proof with corosync's own programs.
#
# usage: c-tests/upstream/run.sh [options]
#   --ipc shm|socket   IPC type of the private corosync (default shm)
#   --only PARTS       comma list of: cpgtool, programs, or program names
#                      (testcpg, cpgverify, ...); default everything
#   --source DIR       use this extracted corosync source tree instead of
#                      fetching Debian's source package through apt
#   --keep DIR         copy binaries, outputs and logs to DIR before exiting
#   -v, --verbose      on a failure print both outputs in full
#   -h, --help         this text
#
# environment: CC (default cc), CPG_OURS_LIBDIR (default <repo>/build/lib)
#
# Part 1 -- corosync-cpgtool (Debian's binary, linked against the system
# libcpg).  Three fixture processes (cpg_member.c, system library) join
# g1, g2 and awkward names: unprintable bytes, a backslash, a byte >= 0x80,
# an embedded NUL and a 128-byte (maximum length) name.  corosync-cpgtool
# runs in every listing mode (default, -e, -n, -n -e, -d ',', -d ',' -e,
# -d ',' -n, -h) with the system library and with ours (LD_LIBRARY_PATH;
# libcfg then also loads our libcorosync_common): stdout, stderr and exit
# status must be byte-identical.  The same with no group at all ("empty").
# "members-on-ours": the fixture is started again with OUR library and the
# system cpgtool's listings (default, -d ',') must equal the first
# fixture's once each member pid is replaced by the member's name.
#
# Part 2 -- corosync's own test programs (test/*.c of Debian's corosync
# source package, fetched at run time with apt into a temp dir, never
# committed).  deb-src entries are derived from the enabled entries in
# /etc/apt/sources.list{,.d/*.list,.d/*.sources} and used through a
# private apt state (Dir::Etc::SourceList/SourceParts, Dir::State::Lists,
# Dir::Cache all in the temp dir, APT::Update::*-Invoke hooks cleared):
# nothing in /etc/apt, /var/lib/apt or /var/cache/apt is touched.  The version is that of the installed libcpg4 (falls back to the
# newest available).  When the archive lacks the upstream tarball's .asc
# (apt then fails the download although the .dsc/.tar files it verified
# against the signed Sources index are there), the package is unpacked
# from a copy of the .dsc without that entry; dpkg-source still checks
# every other file's checksum.  If the source cannot be had: one line
# "SKIP: corosync source package unavailable: <reason>" and part 2 only is
# skipped.
#
# Build: unchanged sources, cc -O2 -g -I<repo>/include -I<temp>/standin,
# linked -L<repo>/build/lib -lcpg (+ -lz for cpgverify, + -lqb -lpthread
# for cpgbench, which calls qb_log_* itself; corosync's Makefile.am gives
# every program $(LIBQB_LIBS), the others do not need it).  Stand-ins:
# an empty config.h and corosync/swab.h copied from the source tree's
# include/ (not installed by Debian; testcpg uses swab32).  Proof: the -MD
# dependency list must hold <repo>/include/corosync/cpg.h and corotypes.h
# and nothing under /usr/include/corosync; the binary must have no
# RPATH/RUNPATH.  "loader": ldd resolves libcpg.so.4 to ours with
# LD_LIBRARY_PATH=build/lib and to /usr/lib/x86_64-linux-gnu/libcpg.so.4
# without.
#
# Every program runs inside the corosync netns, first with the system
# library, then with ours, under a watchdog (SIGKILL at its deadline).
# After each run: the daemon must be alive, no process left in the netns,
# the daemon's /dev/shm/qb-<pid>-* connection entries back to the count
# before the run within 3 s, and the dynamic loader's own trace
# (LD_DEBUG=libs, written to a file with LD_DEBUG_OUTPUT, so stdout and
# stderr stay untouched) must show that libcpg.so.4 and
# libcorosync_common.so.4 were the intended library's -- the same check
# is made for every corosync-cpgtool and fixture process of part 1.
# Per program (scenario -> what is compared):
#   testcpg GROUP   stdin fed over time: "hello world" (0.5 s), "second"
#                   (1.0 s), "EXIT" (1.5 s).  Exit 0; two deliveries
#                   (len=13 / len=8), own join "reason: 1", "Finalize
#                   result is 1".  Compared: stdout with the print_time()
#                   lines dropped, the own pid -> PID, the ring id ->
#                   RING, and the entries after "membership list" dropped
#                   (cpg_membership_get right after cpg_join races with the
#                   daemon processing the join: 0 or 1 entry), + stderr.
#   cpgverify -i 1000  1000 multicasts of 100..100099 bytes with a CRC
#                   (rand() unseeded: the same sizes with both libraries),
#                   the program itself exits 1 on a bad CRC.  Exit 0, no
#                   "incorrect hash", deliveries numbered 0,1,2,... and at
#                   least 500 (the last few sent may still be in flight at
#                   cpg_finalize), empty stderr.  Compared: the "msg" /
#                   "SIZE HASH" lines over the common prefix of both runs.
#   cpgbench        normally 7 rounds x 10 s; run.sh sends SIGALRM every
#                   second, which ends a round exactly as the program's own
#                   alarm(10) does.  Exit 0; 7 result lines for 64, 320,
#                   1600, 8000, 40000, 200000, 1000000 bytes per write,
#                   each with > 0 messages received.  Compared: that
#                   sequence (counts and rates are timings).  stderr is
#                   NOT compared: cpgbench turns on libqb's debug log, in
#                   which the system library (built on libqb's IPC) writes
#                   its ring-buffer messages; ours does not use libqb.
#   testcpg2        as is: asserts init/local_get/join/mcast/poll/dispatch.
#                   Compared: exit status, full stdout, stderr.
#   testzcgc        as is: 100 cpg_zcb_alloc of 1 MiB, exits without
#                   freeing.  Exit 0 with no output; afterwards the daemon's
#                   corosync_zerocopy mappings (/proc/<daemon>/maps) return
#                   to 0 within 5 s and no /dev/shm/corosync_zerocopy-*
#                   file is left.  Compared: all of that.
#   stress_cpgfdget as is (2,000,000 cpg_fd_get): exit 0, stdout "PASS".
#                   Compared: exit status, stdout, stderr.
#   stress_cpgcontext  100 handles x 1,000,000 context set/get: 3-8 s with
#                   ours, 8-55 s with the system library depending on the
#                   machine's load, so SIGINT (its handler exits 1) at
#                   15 s.  Either "PASS" and exit 0, or stopped with
#                   nothing printed (exit 1): no "FAIL" line.  Compared:
#                   no FAIL line, stderr (the outcome class is timing).
#   stress_cpgzc    100 x 2000 zcb alloc+free of random sizes take 15-30 s
#                   per library, too long: stopped with SIGINT (its handler
#                   exits 1) when it prints "iteration 20" (42,000 pairs),
#                   or after 8 s (line-buffered stdout).  Exit 1 from the
#                   handler, no "FAIL"; the daemon's zero-copy mappings
#                   back to 0 and no /dev/shm leftover, except the file of
#                   the one allocation SIGINT may interrupt (both libraries
#                   create it before the daemon maps and unlinks it; it is
#                   removed and reported).  Compared: output without the
#                   "iteration N" progress lines, stderr, exit status,
#                   clean-up.
#   cpgbound        searches the message size (from 1025000, +1 per
#                   message) where cpg_mcast_joined gives
#                   CS_ERR_INVALID_PARAM; corosync 3's library fragments
#                   large messages, so it never ends: stopped with SIGTERM
#                   after 3 s (stdout line-buffered with stdbuf -oL).
#                   Killed by that SIGTERM, "msg size" lines consecutive
#                   from 1025001, at least 20, no "found boundary" and no
#                   "cpg_dispatch failed".  Compared: that verdict.
#
# Output: one line per check (PASS/FAIL/SKIP ...), then exactly one line
# "upstream: N passed, N failed[, N skipped]"; exit 1 on any failure.
# Everything created (temp dir, netns, daemon, processes, /dev/shm files)
# is removed on every exit path; processes are signalled by pid only.

set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OURS_LIBDIR=${CPG_OURS_LIBDIR:-$REPO/build/lib}
SYSTEM_LIB=/usr/lib/x86_64-linux-gnu/libcpg.so.4
CC=${CC:-cc}

IPC=shm
ONLY=""
OPT_SOURCE=""
KEEP_DIR=""
VERBOSE=0
PROGRAMS=(testcpg cpgverify cpgbench testcpg2 testzcgc stress_cpgfdget stress_cpgcontext stress_cpgzc cpgbound)

die() { echo "upstream/run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --ipc) IPC=${2:-}; shift 2 ;;
        --ipc=*) IPC=${1#*=}; shift ;;
        --only) ONLY="$ONLY ${2//,/ }"; shift 2 ;;
        --only=*) v=${1#*=}; ONLY="$ONLY ${v//,/ }"; shift ;;
        --source) OPT_SOURCE=${2:-}; shift 2 ;;
        --source=*) OPT_SOURCE=${1#*=}; shift ;;
        --keep) KEEP_DIR=${2:-}; shift 2 ;;
        --keep=*) KEEP_DIR=${1#*=}; shift ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
case "$IPC" in shm|socket) ;; *) die "--ipc must be shm or socket" ;; esac
for o in $ONLY; do
    case " cpgtool programs ${PROGRAMS[*]} " in *" $o "*) ;; *) die "--only: unknown part $o" ;; esac
done
if [ -n "$OPT_SOURCE" ]; then
    [ -d "$OPT_SOURCE/test" ] || die "--source: $OPT_SOURCE/test is not a directory"
    OPT_SOURCE=$(cd "$OPT_SOURCE" && pwd)
fi
wanted() { # wanted PART [GROUP]
    [ -z "$ONLY" ] && return 0
    case " $ONLY " in *" $1 "*) return 0 ;; esac
    [ -n "${2:-}" ] && case " $ONLY " in *" $2 "*) return 0 ;; esac
    return 1
}
want_programs() {
    local p
    for p in "${PROGRAMS[@]}"; do wanted "$p" programs && return 0; done
    return 1
}

# ------------------------------------------------------------------ harness
# shellcheck source=../harness/corosync.sh
source "$HERE/../harness/corosync.sh"

WORK=""
RUN_PID=""          # the program under test (a child of this shell)
BG_PID=""           # apt / compiler running in the background
MEMBER_PIDS=""      # cpgtool fixture processes
FEED_FD=""

up_kill() { # up_kill PID: TERM, bounded wait, KILL; reaped
    local p=$1 i
    [ -n "$p" ] || return 0
    if kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p" 2>/dev/null
        for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
    return 0
}
up_cleanup() {
    local p
    up_kill "$RUN_PID"; RUN_PID=""
    up_kill "$BG_PID"; BG_PID=""
    for p in $MEMBER_PIDS; do up_kill "$p"; done
    MEMBER_PIDS=""
    if [ -n "$FEED_FD" ]; then eval "exec $FEED_FD>&-"; FEED_FD=""; fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ -n "$KEEP_DIR" ]; then
            mkdir -p "$KEEP_DIR" && cp -a "$WORK/bin" "$WORK/runs" "$WORK/logs" "$KEEP_DIR"/ 2>/dev/null
        fi
        rm -rf "$WORK"
    fi
    WORK=""
}
cs_on_exit up_cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpgt-upstream-$$.XXXXXX") || die "mktemp failed"
mkdir -p "$WORK/bin" "$WORK/runs" "$WORK/logs" "$WORK/standin/corosync"

NPASS=0; NFAIL=0; NSKIP=0
FAILED_LIST=()
result() { # result STATUS CHECK LIB DETAIL
    local st=$1 check=$2 lib=$3 detail=${4:-}
    printf '%-4s  %-26s %-6s %s\n' "$st" "$check" "$lib" "$detail"
    case "$st" in
        PASS) NPASS=$((NPASS + 1)) ;;
        FAIL) NFAIL=$((NFAIL + 1)); FAILED_LIST+=("$check${lib:+/$lib}") ;;
        SKIP) NSKIP=$((NSKIP + 1)) ;;
    esac
}
note() { sed 's/^/    /'; }
ms_now() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

# Every client runs with LD_DEBUG=libs LD_DEBUG_OUTPUT=<prefix> (the
# dynamic loader's trace goes to <prefix>.<pid>, not to stdout/stderr);
# loaded_check PREFIX LIB prints a problem when the libcpg.so.4 /
# libcorosync_common.so.4 the loader initialised are not LIB's.
loaded_check() {
    local prefix=$1 lib=$2 so want got bad=""
    for so in libcpg.so.4 libcorosync_common.so.4; do
        if [ "$lib" = ours ]; then want=$(readlink -f "$OURS_LIBDIR/$so")
        else want=$(readlink -f "$(dirname "$SYSTEM_LIB")/$so"); fi
        got=$(cat "$prefix".* 2>/dev/null | sed -n "s|.*calling init: \(.*/$so\)\$|\1|p" | sort -u)
        if [ -z "$got" ]; then
            [ "$so" = libcpg.so.4 ] && bad="$bad $so not loaded;"
            continue
        fi
        local g
        for g in $got; do
            [ "$(readlink -f "$g")" = "$want" ] || bad="$bad loaded $g instead of $want;"
        done
    done
    echo "$bad"
}

# bg_run LOG CMD...: run CMD in the background (so that a signal to this
# script is handled at once), wait for it; returns its status
bg_run() {
    local log=$1; shift
    "$@" >"$log" 2>&1 </dev/null &
    BG_PID=$!
    wait "$BG_PID"; local rc=$?
    BG_PID=""
    return $rc
}

# ------------------------------------------------------------------ prerequisites
HAVE_OURS=1; HAVE_SYSTEM=1
[ -e "$OURS_LIBDIR/libcpg.so.4" ] || HAVE_OURS=0
[ -e "$SYSTEM_LIB" ] || HAVE_SYSTEM=0
command -v "$CC" >/dev/null 2>&1 || die "no C compiler ($CC)"
if [ $HAVE_OURS = 0 ]; then
    result FAIL prerequisites "" "($OURS_LIBDIR/libcpg.so.4 not built: make all)"
fi
if [ $HAVE_SYSTEM = 0 ]; then
    result SKIP prerequisites "" "($SYSTEM_LIB absent: nothing to compare with; install libcpg4)"
fi

# ------------------------------------------------------------------ build
# build NAME SRC [LIBS...] -> $WORK/bin/NAME; one result line
BUILT=()
build() {
    local name=$1 src=$2; shift 2
    local out=$WORK/bin/$name log=$WORK/logs/build-$name.log dep=$WORK/logs/build-$name.d
    local cflags=(-O2 -g -I"$REPO/include" -I"$WORK/standin")
    if ! bg_run "$log" "$CC" "${cflags[@]}" -MD -MF "$dep" -o "$out" "$src" \
            -L"$OURS_LIBDIR" -lcpg "$@"; then
        result FAIL "build/$name" "" "(compiler failed: see below)"
        grep -v '^ *|' "$log" | grep -E 'error|undefined' | head -10 | note
        return 1
    fi
    # which headers were used: ours, never the system's cpg.h/corotypes.h
    local deps bad="" h
    deps=$(sed -e 's/\\$//' "$dep" | tr ' ' '\n' | grep -v '^$' | grep -v ':$')
    for h in cpg.h corotypes.h; do
        if ! grep -qx "$REPO/include/corosync/$h" <<<"$deps"; then bad="$bad corosync/$h not from $REPO/include;"; fi
    done
    if grep -q '^/usr/include/corosync/' <<<"$deps"; then
        bad="$bad uses $(grep '^/usr/include/corosync/' <<<"$deps" | tr '\n' ' ');"
    fi
    local dyn
    dyn=$(readelf -d "$out" 2>/dev/null)
    grep -q 'NEEDED.*\[libcpg\.so\.4\]' <<<"$dyn" || bad="$bad no DT_NEEDED libcpg.so.4;"
    grep -qE '\((RPATH|RUNPATH)\)' <<<"$dyn" && bad="$bad has an RPATH/RUNPATH;"
    if [ -n "$bad" ]; then
        result FAIL "build/$name" "" "($bad)"
        rm -f "$out"
        return 1
    fi
    local needed
    needed=$(grep NEEDED <<<"$dyn" | sed 's/.*\[\(.*\)\]/\1/' | grep -v '^libc\.so' | tr '\n' ' ')
    result PASS "build/$name" "" "(headers: $REPO/include/corosync/{cpg,corotypes}.h, none from /usr/include/corosync; needs ${needed% })"
    BUILT+=("$name")
    return 0
}

if [ $HAVE_OURS = 1 ]; then
    build cpg_member "$HERE/cpg_member.c"
fi

# ------------------------------------------------------------------ corosync source
SRC_DIR=""
SRC_REASON=""
SRC_NOTE=""
APT_OPTS=()

derive_src_entries() { # -> $1/sources.list, $1/parts/*.sources; 0 if any entry
    local a=$1 f n=0
    : >"$a/sources.list"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # one-line format: every "deb" line also as "deb-src"
        sed -n -E 's/^[[:space:]]*deb[[:space:]]+/deb-src /p; /^[[:space:]]*deb-src[[:space:]]/p' "$f" \
            >>"$a/sources.list"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        # deb822: the same stanzas with "Types: deb-src" (Enabled: no is kept)
        sed -E 's/^Types:.*/Types: deb-src/I' "$f" >"$a/parts/$n-$(basename "$f")"
    done
    [ -s "$a/sources.list" ] || [ $n -gt 0 ]
}

fetch_source() { # sets SRC_DIR, or SRC_REASON
    if [ -n "$OPT_SOURCE" ]; then SRC_DIR=$OPT_SOURCE; SRC_NOTE="given with --source"; return 0; fi
    if ! command -v apt-get >/dev/null 2>&1; then SRC_REASON="apt-get not available"; return 1; fi
    if [ "$(id -u)" != 0 ]; then SRC_REASON="not root (apt-get update needs root)"; return 1; fi
    local a=$WORK/apt ver
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/parts" "$WORK/src"
    if ! derive_src_entries "$a"; then SRC_REASON="no apt sources configured"; return 1; fi
    # no update hooks (docker-clean, appstream, packagekit): this private
    # update must not touch the system's caches
    printf '#clear %s;\n' APT::Update::Pre-Invoke APT::Update::Post-Invoke \
        APT::Update::Post-Invoke-Success >"$a/apt.conf"
    APT_OPTS=(-q -c "$a/apt.conf" -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/parts"
              -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache"
              -o APT::Sandbox::User=root -o Acquire::Retries=1
              -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30)
    bg_run "$WORK/logs/apt-update.log" timeout -k 5 120 apt-get "${APT_OPTS[@]}" update
    # failures of single repositories are only warnings: go on while at
    # least one Sources index arrived
    if ! compgen -G "$a/lists/*_Sources*" >/dev/null; then
        SRC_REASON="apt-get update fetched no Sources index: $(grep -m1 -E '^(E:|W: Failed)' "$WORK/logs/apt-update.log" | sed 's/^W: Failed/Failed/' || tail -1 "$WORK/logs/apt-update.log")"
        return 1
    fi
    ver=$(dpkg-query -W -f='${source:Version}' libcpg4 2>/dev/null)
    local spec=corosync
    [ -n "$ver" ] && spec="corosync=$ver"
    local oldpwd=$PWD
    cd "$WORK/src" || return 1
    bg_run "$WORK/logs/apt-source.log" \
        timeout -k 5 120 apt-get "${APT_OPTS[@]}" source --download-only "$spec"
    local dsc
    dsc=$(compgen -G "$WORK/src/corosync_*.dsc" | head -1)
    if [ -z "$dsc" ] && [ "$spec" != corosync ]; then
        SRC_NOTE="version $ver not available, used the newest"
        bg_run "$WORK/logs/apt-source2.log" \
            timeout -k 5 120 apt-get "${APT_OPTS[@]}" source --download-only corosync
        dsc=$(compgen -G "$WORK/src/corosync_*.dsc" | head -1)
    fi
    cd "$oldpwd" || return 1
    if [ -z "$dsc" ]; then
        SRC_REASON=$(grep -hE '^(E|Err):' "$WORK/logs/apt-source"*.log 2>/dev/null | sort -u | head -2 | tr '\n' ' ')
        SRC_REASON="apt-get source $spec failed: ${SRC_REASON:-no .dsc downloaded}"
        return 1
    fi
    if ! command -v dpkg-source >/dev/null 2>&1; then
        bg_run "$WORK/logs/apt-install.log" timeout -k 5 180 \
            apt-get -q -y --no-install-recommends install dpkg-dev
        command -v dpkg-source >/dev/null 2>&1 || { SRC_REASON="dpkg-source missing and dpkg-dev could not be installed"; return 1; }
        SRC_NOTE="${SRC_NOTE:+$SRC_NOTE; }installed dpkg-dev"
    fi
    # files named in the .dsc that apt could not get (the archive may lack
    # the upstream signature .asc): unpack from a copy without them
    local f missing=()
    for f in $(sed -n '/^Files:/,/^[^ ]/s/^ [0-9a-f]\{32\} [0-9]* //p' "$dsc"); do
        [ -e "$WORK/src/$f" ] || missing+=("$f")
    done
    local use=$dsc
    if [ ${#missing[@]} -gt 0 ]; then
        for f in "${missing[@]}"; do
            case "$f" in *.asc) ;; *) SRC_REASON="apt could not download $f"; return 1 ;; esac
        done
        use=$WORK/src/unpack.dsc
        # drop the PGP armour (its signature no longer matches) and the
        # missing entries; the remaining checksums are still verified
        local drop=()
        for f in "${missing[@]}"; do drop+=(-e " $f"); done
        sed -e '/^-----BEGIN PGP SIGNED MESSAGE-----$/,/^$/d' -e '/^-----BEGIN PGP SIGNATURE-----$/,$d' "$dsc" |
            grep -vF "${drop[@]}" >"$use"
        SRC_NOTE="${SRC_NOTE:+$SRC_NOTE; }archive lacks ${missing[*]}, unpacked without it"
    fi
    cd "$WORK/src" || return 1
    bg_run "$WORK/logs/dpkg-source.log" dpkg-source -x "$(basename "$use")" corosync-src
    local xrc=$?
    cd "$oldpwd" || return 1
    if [ $xrc != 0 ]; then
        SRC_REASON="dpkg-source -x failed: $(grep -m1 'error' "$WORK/logs/dpkg-source.log")"
        return 1
    fi
    SRC_DIR=$WORK/src/corosync-src
    SRC_NOTE="$(basename "$dsc" .dsc)${SRC_NOTE:+ ($SRC_NOTE)}"
    return 0
}

SRC_OK=0
if want_programs; then
    if [ $HAVE_OURS = 0 ] || [ $HAVE_SYSTEM = 0 ]; then
        :
    elif fetch_source; then
        local_missing=""
        for p in "${PROGRAMS[@]}"; do [ -f "$SRC_DIR/test/$p.c" ] || local_missing="$local_missing $p.c"; done
        if [ -n "$local_missing" ]; then
            echo "SKIP: corosync source package unavailable: test/ lacks$local_missing"
            NSKIP=$((NSKIP + 1))
        else
            SRC_OK=1
            echo "# corosync source: $SRC_NOTE"
        fi
    else
        echo "SKIP: corosync source package unavailable: $SRC_REASON"
        NSKIP=$((NSKIP + 1))
    fi
fi

if [ $SRC_OK = 1 ]; then
    echo "/* stand-in for corosync's generated config.h: nothing needed */" >"$WORK/standin/config.h"
    if [ -f "$SRC_DIR/include/corosync/swab.h" ]; then
        cp "$SRC_DIR/include/corosync/swab.h" "$WORK/standin/corosync/swab.h"
    fi
    for p in "${PROGRAMS[@]}"; do
        wanted "$p" programs || continue
        case "$p" in
            cpgverify) build "$p" "$SRC_DIR/test/$p.c" -lz ;;
            cpgbench) build "$p" "$SRC_DIR/test/$p.c" -lqb -lpthread ;;
            *) build "$p" "$SRC_DIR/test/$p.c" ;;
        esac
    done
fi

# loader: which libcpg.so.4 each binary gets with and without LD_LIBRARY_PATH
if [ ${#BUILT[@]} -gt 0 ] && [ $HAVE_SYSTEM = 1 ]; then
    bad=""
    sys_real=$(readlink -f "$SYSTEM_LIB")
    ours_real=$(readlink -f "$OURS_LIBDIR/libcpg.so.4")
    for b in "${BUILT[@]}"; do
        o=$(env LD_LIBRARY_PATH="$OURS_LIBDIR" ldd "$WORK/bin/$b" | awk '$1 == "libcpg.so.4" {print $3}')
        s=$(env -u LD_LIBRARY_PATH ldd "$WORK/bin/$b" | awk '$1 == "libcpg.so.4" {print $3}')
        [ -n "$o" ] && [ "$(readlink -f "$o")" = "$ours_real" ] || bad="$bad $b(ours->${o:-none})"
        [ -n "$s" ] && [ "$(readlink -f "$s")" = "$sys_real" ] || bad="$bad $b(system->${s:-none})"
    done
    if [ -z "$bad" ]; then
        result PASS loader "" "(${#BUILT[@]} binaries: LD_LIBRARY_PATH=$OURS_LIBDIR -> ours, unset -> $sys_real)"
    else
        result FAIL loader "" "(wrong libcpg.so.4:$bad)"
    fi
fi

# ------------------------------------------------------------------ daemon
CS_STATE=""   # ok | skip | fail
need_cpgtool=0; need_programs=0
wanted cpgtool && [ $HAVE_OURS = 1 ] && [ $HAVE_SYSTEM = 1 ] && need_cpgtool=1
[ $SRC_OK = 1 ] && [ ${#BUILT[@]} -gt 1 ] && need_programs=1
if [ $need_cpgtool = 1 ] || [ $need_programs = 1 ]; then
    cs_start "up$IPC" "$IPC"
    case $? in
        0) CS_STATE=ok ;;
        2) CS_STATE=skip ;;
        *) CS_STATE=fail ;;
    esac
fi

shm_qb_count() { [ -n "$CS_PID" ] && compgen -G "/dev/shm/qb-$CS_PID-*" | wc -l || echo 0; }
zc_files() { compgen -G "/dev/shm/corosync_zerocopy-*" | sort; }
daemon_zc_maps() {
    local n=""
    [ -n "$CS_PID" ] && n=$(grep -c corosync_zerocopy "/proc/$CS_PID/maps" 2>/dev/null)
    echo "${n:-0}"
}

# wait until the daemon's connection entries are back to N (bounded, 3 s)
wait_qb_count() {
    local want=$1 i n
    for i in $(seq 30); do
        n=$(shm_qb_count)
        [ "$n" -le "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

# ------------------------------------------------------------------ part 1: cpgtool
CPGTOOL_MODES=("" "-e" "-n" "-n -e" "-d ," "-d , -e" "-d , -n" "-h")
M1=(g1 g2)
M2=(g1 'odd name\x01\x09\\\xe9\x7f')
M3=(g2 "$(printf 'L%.0s' $(seq 128))" 'nul\x00byte')

# start_members LIB -> MEMBER_PIDS (in order m1 m2 m3); 0 when all are
# ready, else 1 with the reason in START_ERR
START_ERR=""
start_members() {
    local lib=$1 i p envs
    if [ "$lib" = ours ]; then envs=(LD_LIBRARY_PATH="$OURS_LIBDIR"); else envs=(-u LD_LIBRARY_PATH); fi
    MEMBER_PIDS=""
    for i in 1 2 3; do
        local -n groups="M$i"
        rm -f "$WORK/logs/member-$lib-$i.ld".*
        ip netns exec "$CS_NS" env "${envs[@]}" LD_DEBUG=libs LD_DEBUG_OUTPUT="$WORK/logs/member-$lib-$i.ld" \
            "$WORK/bin/cpg_member" "${groups[@]}" \
            >"$WORK/logs/member-$lib-$i.out" 2>&1 </dev/null &
        p=$!
        MEMBER_PIDS="$MEMBER_PIDS $p"
        local t
        for t in $(seq 100); do
            grep -q '^ready' "$WORK/logs/member-$lib-$i.out" 2>/dev/null && break
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if ! grep -q "^ready $p\$" "$WORK/logs/member-$lib-$i.out"; then
            START_ERR="member $i ($lib) not ready: $(head -3 "$WORK/logs/member-$lib-$i.out" | tr '\n' ' ')"
            return 1
        fi
        START_ERR=$(loaded_check "$WORK/logs/member-$lib-$i.ld" "$lib")
        [ -z "$START_ERR" ] || { START_ERR="member $i:$START_ERR"; return 1; }
    done
    return 0
}
stop_members() { # 0 when every member exited 0 after SIGTERM
    local p rc bad=0
    for p in $MEMBER_PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $MEMBER_PIDS; do
        local i
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p"; rc=$?
        [ $rc = 0 ] || bad=1
    done
    MEMBER_PIDS=""
    return $bad
}

# cpgtool LIB TAG ARGS... -> $WORK/runs/cpgtool/TAG.LIB.{out,err,rc}
cpgtool() {
    local lib=$1 tag=$2; shift 2
    local d=$WORK/runs/cpgtool envs
    mkdir -p "$d"
    if [ "$lib" = ours ]; then envs=(LD_LIBRARY_PATH="$OURS_LIBDIR"); else envs=(-u LD_LIBRARY_PATH); fi
    rm -f "$d/$tag.$lib.ld".*
    timeout -k 2 20 ip netns exec "$CS_NS" env "${envs[@]}" LD_DEBUG=libs LD_DEBUG_OUTPUT="$d/$tag.$lib.ld" corosync-cpgtool "$@" \
        >"$d/$tag.$lib.out" 2>"$d/$tag.$lib.err" </dev/null
    echo $? >"$d/$tag.$lib.rc"
    loaded_check "$d/$tag.$lib.ld" "$lib" >"$d/$tag.$lib.loaded"
}

# compare_cpgtool TAG ARGS...: run with both libraries, require identical bytes
compare_cpgtool() {
    local tag=$1; shift
    local d=$WORK/runs/cpgtool
    cpgtool system "$tag" "$@"
    cpgtool ours "$tag" "$@"
    local label="cpgtool${tag:+ }${*}"
    [ $# = 0 ] && label="cpgtool (default)"
    [[ $tag == empty* ]] && label="cpgtool/empty${*:+ $*}"
    local src; src=$(cat "$d/$tag.system.rc") ; local orc; orc=$(cat "$d/$tag.ours.rc")
    local lines; lines=$(wc -l <"$d/$tag.system.out")
    local ld; ld=$(cat "$d/$tag.system.loaded" "$d/$tag.ours.loaded")
    if [ -n "$ld" ]; then
        result FAIL "$label" both "(wrong library:$ld)"
    elif [ "$src" != 0 ]; then
        result FAIL "$label" both "(system library: exit $src: $(head -c 200 "$d/$tag.system.err"))"
    elif cmp -s "$d/$tag.system.out" "$d/$tag.ours.out" && cmp -s "$d/$tag.system.err" "$d/$tag.ours.err" && [ "$src" = "$orc" ]; then
        result PASS "$label" both "(byte-identical: exit $src, $lines lines, $(wc -c <"$d/$tag.system.out") bytes; loader: system / ours)"
    else
        result FAIL "$label" both "(differs: exit system $src / ours $orc)"
        { diff <(cat -v "$d/$tag.system.out") <(cat -v "$d/$tag.ours.out") | head -20
          diff <(cat -v "$d/$tag.system.err") <(cat -v "$d/$tag.ours.err") | head -6; } | note
    fi
}

# pid -> member name, for comparing listings of two fixtures
map_pids() { # map_pids FILE PIDS...
    local f=$1 i=1 p expr=()
    shift
    # The padding in front of a pid depends on its number of digits: fold
    # it into the placeholder too.
    for p in "$@"; do expr+=(-e "s/ *\\b$p\\b/ <m$i>/g"); i=$((i + 1)); done
    sed "${expr[@]}" "$f"
}

part_cpgtool() {
    if ! command -v corosync-cpgtool >/dev/null 2>&1; then
        result SKIP cpgtool "" "(corosync-cpgtool not installed)"; return
    fi
    if [ ! -x "$WORK/bin/cpg_member" ]; then
        result FAIL cpgtool "" "(fixture helper cpg_member not built)"; return
    fi
    # no group at all
    compare_cpgtool empty0
    compare_cpgtool empty1 -n
    # fixture with the system library
    if ! start_members system; then
        result FAIL "cpgtool fixture" system "($START_ERR)"; stop_members; return
    fi
    local a_pids=$MEMBER_PIDS
    local i=0 m
    for m in "${CPGTOOL_MODES[@]}"; do
        # shellcheck disable=SC2086
        compare_cpgtool "m$i" $m
        i=$((i + 1))
    done
    # sanity: the listing is not vacuous (5 groups, 7 memberships)
    local d=$WORK/runs/cpgtool ng nm
    ng=$(wc -l <"$d/m2.system.out"); nm=$(($(wc -l <"$d/m4.system.out") - 1))
    if [ "$ng" = 5 ] && [ "$nm" = 7 ]; then
        result PASS "cpgtool fixture" system "(5 groups, 7 memberships listed as started)"
    else
        result FAIL "cpgtool fixture" system "(expected 5 groups / 7 memberships, listed $ng / $nm)"
    fi
    stop_members || result FAIL "cpgtool fixture" system "(a member did not exit 0 on SIGTERM)"
    wait_qb_count 0 || true
    # the same fixture on our library, listed by the system cpgtool
    if ! start_members ours; then
        result FAIL cpgtool/members-on-ours ours "($START_ERR)"; stop_members; return
    fi
    local b_pids=$MEMBER_PIDS
    cpgtool system b0
    cpgtool system b4 -d ,
    local bad=""
    # shellcheck disable=SC2086
    for t in 0 4; do
        if ! cmp -s <(map_pids "$d/m$t.system.out" $a_pids) <(map_pids "$d/b$t.system.out" $b_pids); then
            bad="$bad m$t"
        fi
    done
    if stop_members; then :; else bad="$bad exit-on-SIGTERM"; fi
    if [ -z "$bad" ]; then
        result PASS cpgtool/members-on-ours ours "(listing of members using our library = listing of the system fixture, pids mapped)"
    else
        result FAIL cpgtool/members-on-ours ours "(differs:$bad)"
        # shellcheck disable=SC2086
        diff <(map_pids "$d/m0.system.out" $a_pids | cat -v) <(map_pids "$d/b0.system.out" $b_pids | cat -v) | head -20 | note
    fi
    wait_qb_count 0 || true
}

# ------------------------------------------------------------------ part 2: programs
# run_prog LIB NAME ARGS...   (the program is $WORK/bin/NAME)
# controls (reset by the caller): R_DEADLINE s (SIGKILL), R_STOP_AFTER s and
# R_STOP_SIG (sent once; R_STOP_AFTER=0: never), or R_STOP_ON (send R_STOP_SIG once
# when stdout has this whole line), R_ALRM_EVERY s (SIGALRM; 0 = never),
# R_FEED=("ms|line" ...) stdin lines written at those times (else /dev/null),
# R_LINEBUF=1 (stdout line-buffered through stdbuf -oL).
# results: R_RC R_MS R_PID R_KILLED R_STOPPED R_OUT R_ERR R_POST (problems)
R_DEADLINE=30; R_STOP_AFTER=0; R_STOP_ON=""; R_STOP_SIG=TERM; R_ALRM_EVERY=0; R_FEED=(); R_LINEBUF=0
run_reset() { R_DEADLINE=30; R_STOP_AFTER=0; R_STOP_ON=""; R_STOP_SIG=TERM; R_ALRM_EVERY=0; R_FEED=(); R_LINEBUF=0; }
run_prog() {
    local lib=$1 name=$2; shift 2
    local d=$WORK/runs/$name/$lib envs pre=()
    mkdir -p "$d"
    R_OUT=$d/stdout; R_ERR=$d/stderr; R_POST=""
    if [ "$lib" = ours ]; then envs=(LD_LIBRARY_PATH="$OURS_LIBDIR"); else envs=(-u LD_LIBRARY_PATH); fi
    if [ "$R_LINEBUF" = 1 ] && command -v stdbuf >/dev/null 2>&1; then pre=(stdbuf -oL); fi
    if ! cs_alive; then cs_restart >/dev/null 2>&1; fi
    local qb0 zc0 maps0
    qb0=$(shm_qb_count); zc0=$(zc_files); maps0=$(daemon_zc_maps)
    rm -f "$d/ld".*
    envs+=(LD_DEBUG=libs LD_DEBUG_OUTPUT="$d/ld")
    local t0; t0=$(ms_now)
    if [ ${#R_FEED[@]} -gt 0 ]; then
        rm -f "$d/stdin"; mkfifo "$d/stdin"
        exec {FEED_FD}<>"$d/stdin"
        ip netns exec "$CS_NS" env "${envs[@]}" "${pre[@]}" "$WORK/bin/$name" "$@" \
            <"$d/stdin" >"$R_OUT" 2>"$R_ERR" {FEED_FD}>&- &
    else
        ip netns exec "$CS_NS" env "${envs[@]}" "${pre[@]}" "$WORK/bin/$name" "$@" \
            </dev/null >"$R_OUT" 2>"$R_ERR" &
    fi
    RUN_PID=$!
    R_PID=$RUN_PID; R_KILLED=0; R_STOPPED=0
    local el fi=0 next_alrm=$((R_ALRM_EVERY * 1000)) entry
    while kill -0 "$RUN_PID" 2>/dev/null; do
        el=$(( $(ms_now) - t0 ))
        while [ $fi -lt ${#R_FEED[@]} ]; do
            entry=${R_FEED[$fi]}
            [ "$el" -ge "${entry%%|*}" ] || break
            printf '%s\n' "${entry#*|}" >&"$FEED_FD"
            fi=$((fi + 1))
        done
        if [ "$R_ALRM_EVERY" != 0 ] && [ "$el" -ge "$next_alrm" ]; then
            kill -ALRM "$RUN_PID" 2>/dev/null
            next_alrm=$((next_alrm + R_ALRM_EVERY * 1000))
        fi
        if [ "$R_STOP_AFTER" != 0 ] && [ $R_STOPPED = 0 ] && [ "$el" -ge $((R_STOP_AFTER * 1000)) ]; then
            kill -"$R_STOP_SIG" "$RUN_PID" 2>/dev/null; R_STOPPED=1
        fi
        if [ -n "$R_STOP_ON" ] && [ $R_STOPPED = 0 ] && grep -qxF "$R_STOP_ON" "$R_OUT"; then
            kill -"$R_STOP_SIG" "$RUN_PID" 2>/dev/null; R_STOPPED=1
        fi
        if [ "$el" -ge $((R_DEADLINE * 1000)) ] && [ $R_KILLED = 0 ]; then
            kill -KILL "$RUN_PID" 2>/dev/null; R_KILLED=1
        fi
        sleep 0.05
    done
    wait "$RUN_PID" 2>/dev/null; R_RC=$?
    RUN_PID=""
    R_MS=$(( $(ms_now) - t0 ))
    if [ -n "$FEED_FD" ]; then exec {FEED_FD}>&-; FEED_FD=""; fi
    [ $R_KILLED = 1 ] && R_POST="$R_POST killed by the watchdog after ${R_DEADLINE}s;"
    R_POST="$R_POST$(loaded_check "$d/ld" "$lib")"
    # the daemon, the netns, /dev/shm
    if ! cs_alive; then
        R_POST="$R_POST corosync died;"
        cs_restart >/dev/null 2>&1 || R_POST="$R_POST corosync could not be restarted;"
    fi
    local p left=""
    for p in $(ip netns pids "$CS_NS" 2>/dev/null); do
        [ "$p" = "$CS_PID" ] && continue
        left="$left $p"
    done
    if [ -n "$left" ]; then
        for p in $left; do kill -KILL "$p" 2>/dev/null; done
        R_POST="$R_POST left processes$left (killed);"
    fi
    if ! wait_qb_count "$qb0"; then
        R_POST="$R_POST daemon holds $(shm_qb_count) /dev/shm/qb-$CS_PID-* entries (before: $qb0) 3 s after the end;"
    fi
    R_MAPS_LEFT=0
    local i
    for i in $(seq 50); do
        R_MAPS_LEFT=$(daemon_zc_maps)
        [ "$R_MAPS_LEFT" -le "$maps0" ] && break
        sleep 0.1
    done
    R_MAPS_LEFT=$((R_MAPS_LEFT - maps0))
    # zero-copy files that appeared during the run and are still there:
    # in normal operation one lives for milliseconds (the daemon unlinks it
    # when it maps it), so a file nobody maps 0.5 s later was left by this
    # run (another suite's files in flight are mapped by their process)
    local new f
    new=$(comm -13 <(echo "$zc0") <(zc_files) | grep -v '^$')
    R_ZC_LEFT=0
    if [ -n "$new" ]; then
        sleep 0.5
        while read -r f; do
            [ -e "$f" ] || continue
            grep -qF "$f" /proc/[0-9]*/maps 2>/dev/null && continue
            R_ZC_LEFT=$((R_ZC_LEFT + 1))
            rm -f "$f"
        done <<<"$new"
    fi
}

rc_text() { # rc_text RC
    if [ "$1" -gt 128 ]; then echo "signal $(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"; else echo "exit $1"; fi
}

# judge_NAME LIB: after run_prog; sets J_FAIL (reasons, empty = ok),
# J_INFO (short summary) and writes the comparison key to $WORK/runs/NAME/LIB/key
judge_testcpg() {
    local k=$WORK/runs/testcpg/$1/key
    local pid=$R_PID
    # entries right after "membership list" dropped (see the header)
    awk '/^membership list$/ { inml = 1; print; next }
         inml && /^node id [0-9]+ pid [0-9]+$/ { next }
         { inml = 0; print }' "$R_OUT" |
    sed -E -e '/^[^ ]+:[0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}$/d' \
           -e "s/\\b$pid\\b/PID/g" -e 's/ringid \([0-9a-f]+\.[0-9a-f]+\)/ringid (RING)/' >"$k"
    { echo "--- stderr"; cat "$R_ERR"; echo "--- $(rc_text "$R_RC")"; } >>"$k"
    [ "$R_RC" = 0 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC");"
    grep -q "^DeliverCallback: message (len=13)from node/pid 1/PID: 'hello world$" "$k" || J_FAIL="$J_FAIL no delivery of 'hello world';"
    grep -q "^DeliverCallback: message (len=8)from node/pid 1/PID: 'second$" "$k" || J_FAIL="$J_FAIL no delivery of 'second';"
    [ "$(grep -c '^DeliverCallback' "$k")" = 2 ] || J_FAIL="$J_FAIL $(grep -c '^DeliverCallback' "$k") deliveries, expected 2;"
    grep -q '^joined node/pid 1/PID reason: 1$' "$k" || J_FAIL="$J_FAIL own join not reported;"
    grep -q '^TotemConfchgCallback: ringid' "$k" || J_FAIL="$J_FAIL no initial totem confchg;"
    grep -q '^Finalize  result is 1 (should be 1)$' "$k" || J_FAIL="$J_FAIL finalize result not 1;"
    J_INFO="$(grep -c '^DeliverCallback' "$k") deliveries, $(grep -c 'Callback' "$k") callbacks"
}
CPGVERIFY_ITER=1000
judge_cpgverify() {
    local k=$WORK/runs/cpgverify/$1/key n
    cp "$R_OUT" "$k"
    [ "$R_RC" = 0 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC");"
    grep -q '^incorrect hash' "$R_OUT" && J_FAIL="$J_FAIL incorrect hash;"
    [ -s "$R_ERR" ] && J_FAIL="$J_FAIL stderr: $(head -c 100 "$R_ERR");"
    n=$(grep -c '^msg ' "$R_OUT")
    # deliveries numbered 0..n-1, each followed by its SIZE/HASH line
    if ! awk -v n="$n" '
        NR % 2 == 1 { if ($0 !~ /^msg .cpg_mcast_joined: This is message +[0-9]+.$/) exit 1
                      s = $0; sub(/.* /, "", s); sub(/.$/, "", s); if (s + 0 != (NR - 1) / 2) exit 1 }
        NR % 2 == 0 { if ($0 !~ /^SIZE [0-9]+ HASH: 0x[0-9a-f]+$/) exit 1 }
        END { if (NR != 2 * n) exit 1 }' "$R_OUT"; then
        J_FAIL="$J_FAIL deliveries not in order/format;"
    fi
    [ "$n" -ge $((CPGVERIFY_ITER / 2)) ] || J_FAIL="$J_FAIL only $n of $CPGVERIFY_ITER delivered;"
    J_INFO="$n of $CPGVERIFY_ITER delivered before finalize, CRCs ok"
}
judge_cpgbench() {
    local k=$WORK/runs/cpgbench/$1/key
    awk '/messages received/ { print $4, ($1 > 0 ? "received>0" : "received=0") ; next } { print "other: " $0 }' "$R_OUT" >"$k"
    echo "$(rc_text "$R_RC")" >>"$k"
    [ "$R_RC" = 0 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC");"
    local want
    want=$(printf '%s received>0\n' 64 320 1600 8000 40000 200000 1000000; echo "exit 0")
    [ "$(cat "$k")" = "$want" ] || J_FAIL="$J_FAIL rounds: $(tr '\n' ' ' <"$k");"
    J_INFO="$(grep -c 'messages received' "$R_OUT") rounds, msgs/round $(awk '/messages received/ {printf "%s%s", s, $1; s="/"}' "$R_OUT")"
}
judge_testcpg2() {
    local k=$WORK/runs/testcpg2/$1/key
    { cat "$R_OUT"; echo "--- stderr"; cat "$R_ERR"; echo "--- $(rc_text "$R_RC")"; } >"$k"
    [ "$R_RC" = 0 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC");"
    local want
    want=$(printf 'All of the nodeids should match on a single node configuration\n for the test to pass.local_get: 1\nconfchg nodeid 1\nself delivered nodeid: 1')
    [ "$(cat "$R_OUT")" = "$want" ] || J_FAIL="$J_FAIL unexpected output;"
    J_INFO="local_get/confchg/self-delivery nodeid 1"
}
judge_zc_common() { # R_MAPS_LEFT / R_ZC_LEFT into the key and verdict
    local k=$1
    echo "daemon zerocopy mappings left: $R_MAPS_LEFT" >>"$k"
    echo "/dev/shm/corosync_zerocopy-* left: $R_ZC_LEFT" >>"$k"
    [ "$R_MAPS_LEFT" = 0 ] || J_FAIL="$J_FAIL daemon still maps $R_MAPS_LEFT zero-copy buffers 5 s after exit;"
    [ "$R_ZC_LEFT" = 0 ] || J_FAIL="$J_FAIL left $R_ZC_LEFT /dev/shm/corosync_zerocopy-* (removed);"
}
judge_testzcgc() {
    local k=$WORK/runs/testzcgc/$1/key
    { cat "$R_OUT"; echo "--- stderr"; cat "$R_ERR"; echo "--- $(rc_text "$R_RC")"; } >"$k"
    [ "$R_RC" = 0 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC");"
    [ -s "$R_OUT" ] && J_FAIL="$J_FAIL output: $(head -c 100 "$R_OUT");"
    judge_zc_common "$k"
    J_INFO="100 x 1 MiB allocated, daemon released them"
}
judge_simple_pass() { # stress_cpgfdget, stress_cpgcontext
    local k=$WORK/runs/$2/$1/key
    { cat "$R_OUT"; echo "--- stderr"; cat "$R_ERR"; echo "--- $(rc_text "$R_RC")"; } >"$k"
    [ "$R_RC" = 0 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC");"
    [ "$(cat "$R_OUT")" = PASS ] || J_FAIL="$J_FAIL output: $(head -c 100 "$R_OUT" | tr '\n' ' ');"
    J_INFO="PASS"
}
judge_stress_cpgfdget() { judge_simple_pass "$1" stress_cpgfdget; }
judge_stress_cpgcontext() {
    # runs to "PASS" (exit 0) or is stopped by SIGINT at 15 s (its handler
    # exits 1) with nothing printed: either way no "FAIL"
    local k=$WORK/runs/stress_cpgcontext/$1/key
    if [ "$R_RC" = 0 ] && [ "$(cat "$R_OUT")" = PASS ]; then
        J_INFO="PASS"
    elif [ "$R_STOPPED" = 1 ] && [ "$R_RC" = 1 ] && [ ! -s "$R_OUT" ]; then
        J_INFO="no FAIL before SIGINT at ${R_STOP_AFTER} s (not finished)"
    else
        J_FAIL="$J_FAIL $(rc_text "$R_RC"), output: $(head -c 100 "$R_OUT" | tr '\n' ' ');"
    fi
    { echo "no FAIL line: $(grep -c '^FAIL' "$R_OUT" | sed 's/^0$/yes/')"; echo "--- stderr"; cat "$R_ERR"; } >"$k"
}
judge_stress_cpgzc() {
    local k=$WORK/runs/stress_cpgzc/$1/key
    # stopped by SIGINT at "iteration 20" or after 8 s: its handler exits 1
    [ "$R_STOPPED" = 1 ] && [ "$R_RC" = 1 ] || J_FAIL="$J_FAIL $(rc_text "$R_RC") (expected exit 1 from its SIGINT handler);"
    local its
    its=$(grep -c '^iteration [0-9]*$' "$R_OUT")
    # compared: the output without the "iteration N" progress lines
    { grep -v '^iteration [0-9]*$' "$R_OUT"; echo "--- stderr"; cat "$R_ERR"; echo "--- $(rc_text "$R_RC")"; } >"$k"
    [ "$(grep -v '^iteration [0-9]*$' "$R_OUT")" = 'stress cpgzc running 2000 allocations for 100 iterations' ] ||
        J_FAIL="$J_FAIL output: $(grep -v '^iteration' "$R_OUT" | tail -2 | tr '\n' ' ');"
    # the allocation SIGINT interrupted may leave its file: both libraries
    # create it before the daemon opens and unlinks it (removed by run_prog)
    J_ZC_NOTE=""
    if [ "$R_ZC_LEFT" = 1 ]; then J_ZC_NOTE=", 1 file of the interrupted allocation removed"; R_ZC_LEFT=0; fi
    judge_zc_common "$k"
    if [ "$its" -ge 1 ]; then J_INFO="SIGINT at \"iteration 20\""; else J_INFO="SIGINT after 8 s, before iteration 20"; fi
    J_INFO="$J_INFO, no FAIL$J_ZC_NOTE"
}
judge_cpgbound() {
    local k=$WORK/runs/cpgbound/$1/key n
    n=$(grep -c '^msg size [0-9]*$' "$R_OUT")
    {
        if [ "$R_STOPPED" = 1 ] && [ "$R_RC" = 143 ]; then echo "ran until stopped by SIGTERM"; else echo "ended by itself: $(rc_text "$R_RC")"; fi
        grep -q '^found boundary' "$R_OUT" && echo "found a boundary: $(grep -m1 '^found boundary' "$R_OUT")"
        grep -q '^cpg_dispatch failed' "$R_OUT" && echo "dispatch failed"
        awk 'BEGIN { want = 1025001 }
             /^msg size [0-9]+$/ { if ($3 != want) { print "gap at line " NR ": " $0; exit } want++ ; next }
             { if (!seen++) print "other output: " $0 }' "$R_OUT"
        [ "$n" -ge 20 ] && echo "at least 20 messages" || echo "only $n messages"
        echo "--- stderr"; cat "$R_ERR"
    } >"$k"
    local want
    want=$(printf 'ran until stopped by SIGTERM\nat least 20 messages\n--- stderr')
    [ "$(cat "$k")" = "$want" ] || J_FAIL="$J_FAIL $(grep -v -e '^---' -e '^ran until' "$k" | head -3 | tr '\n' ' ');"
    J_INFO="$n messages of 1025000+ bytes in 3 s, no boundary"
}

# compare_keys NAME: system key vs ours key
compare_keys() {
    local name=$1 ks=$WORK/runs/$1/system/key ko=$WORK/runs/$1/ours/key
    if [ "$name" = cpgverify ]; then
        # the common prefix of the deliveries
        local ns no m
        ns=$(grep -c '^msg ' "$ks"); no=$(grep -c '^msg ' "$ko")
        m=$((ns < no ? ns : no))
        if cmp -s <(head -n $((2 * m)) "$ks") <(head -n $((2 * m)) "$ko"); then
            result PASS "$name" same "(first $m deliveries identical: sizes and CRCs; system $ns / ours $no delivered)"
        else
            result FAIL "$name" same "(deliveries differ within the first $m)"
            diff <(head -n $((2 * m)) "$ks") <(head -n $((2 * m)) "$ko") | head -10 | note
        fi
        return
    fi
    if cmp -s "$ks" "$ko"; then
        local what
        case "$name" in
            testcpg) what="normalized callbacks, stderr, exit status" ;;
            cpgbench) what="rounds (sizes, messages>0), exit status" ;;
            cpgbound) what="stopped by SIGTERM, consecutive sizes, no boundary, stderr" ;;
            testzcgc|stress_cpgzc) what="output, stderr, exit status, daemon/shm clean-up" ;;
            stress_cpgcontext) what="no FAIL line, stderr" ;;
            *) what="output, stderr, exit status" ;;
        esac
        result PASS "$name" same "($what identical)"
    else
        result FAIL "$name" same "(outcome differs: system vs ours)"
        diff "$ks" "$ko" | cat -v | head -20 | note
    fi
}

part_programs() {
    local name lib
    for name in "${PROGRAMS[@]}"; do
        wanted "$name" programs || continue
        if [ ! -x "$WORK/bin/$name" ]; then
            result FAIL "$name" both "(not built)"; continue
        fi
        for lib in system ours; do
            run_reset
            local args=()
            case "$name" in
                testcpg) args=(upstream_testcpg); R_DEADLINE=15
                         R_FEED=("500|hello world" "1000|second" "1500|EXIT") ;;
                cpgverify) args=(-i "$CPGVERIFY_ITER"); R_DEADLINE=60 ;;
                cpgbench) R_DEADLINE=40; R_ALRM_EVERY=1 ;;
                testcpg2) R_DEADLINE=10 ;;
                testzcgc) R_DEADLINE=15 ;;
                stress_cpgfdget) R_DEADLINE=30 ;;
                stress_cpgcontext) R_DEADLINE=30; R_STOP_AFTER=15; R_STOP_SIG=INT ;;
                stress_cpgzc) R_DEADLINE=30; R_STOP_ON="iteration 20"; R_STOP_AFTER=8; R_STOP_SIG=INT; R_LINEBUF=1 ;;
                cpgbound) R_DEADLINE=15; R_STOP_AFTER=3; R_STOP_SIG=TERM; R_LINEBUF=1 ;;
            esac
            run_prog "$lib" "$name" "${args[@]}"
            J_FAIL=""; J_INFO=""
            "judge_$name" "$lib"
            J_FAIL="$J_FAIL$R_POST"
            local secs
            secs=$(printf '%d.%01ds' $((R_MS / 1000)) $(((R_MS % 1000) / 100)))
            if [ -z "$J_FAIL" ]; then
                result PASS "$name" "$lib" "($secs, $(rc_text "$R_RC"); $J_INFO)"
            else
                result FAIL "$name" "$lib" "($secs;$J_FAIL)"
                if [ $VERBOSE = 1 ]; then
                    { echo "--- stdout:"; cat -v "$R_OUT"; echo "--- stderr:"; cat -v "$R_ERR"; } | note
                else
                    { echo "--- last lines of stdout:"; tail -n 8 "$R_OUT" | cat -v
                      echo "--- last lines of stderr:"; tail -n 5 "$R_ERR" | cat -v; } | note
                fi
            fi
        done
        compare_keys "$name"
    done
}

# ------------------------------------------------------------------ main
if [ $need_cpgtool = 1 ]; then
    case "$CS_STATE" in
        ok) part_cpgtool ;;
        skip) result SKIP cpgtool "" "(corosync unavailable: ${CS_SKIP_REASON:-?})" ;;
        *) result FAIL cpgtool "" "(corosync did not start)" ;;
    esac
fi
if [ $need_programs = 1 ]; then
    case "$CS_STATE" in
        ok) part_programs ;;
        skip) result SKIP programs "" "(corosync unavailable: ${CS_SKIP_REASON:-?})" ;;
        *) result FAIL programs "" "(corosync did not start)" ;;
    esac
fi

cs_cleanup
[ ${#FAILED_LIST[@]} -gt 0 ] && echo "# failed: ${FAILED_LIST[*]}"
if [ $NSKIP -gt 0 ]; then
    echo "upstream: $NPASS passed, $NFAIL failed, $NSKIP skipped"
else
    echo "upstream: $NPASS passed, $NFAIL failed"
fi
[ $NFAIL = 0 ]
