#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# ABI/API check of include/corosync/{corotypes,cpg}.h against the system's
# corosync 3 headers (/usr/include/corosync, when installed).
#
#   - abi_dump.c built against both header sets; outputs must be identical
#     (sizes, alignments, offsets, field types, enum values, macro values,
#     macro expansions, typedef identities)
#   - function prototypes (gcc -aux-info) must be identical
#   - preprocessor macro sets (-E -dM) must be identical
#   - the set of headers pulled in transitively must be identical
#   - our headers must compile standalone as C99/gnu11 (strict) and C++11
#
# Usage: c-tests/abi/check.sh      (env: CC, default cc; CXX, default g++)
# Exit status is non-zero if any check failed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ours_inc="$repo/include"
sys_dir=/usr/include/corosync
CC=${CC:-cc}
CXX=${CXX:-g++}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/abi-check.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "PASS: $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL: $*"; }
# Show a file indented (diagnostics for failures).
show() { sed 's/^/    /' "$1"; }

have_sys=0
if [ -f "$sys_dir/cpg.h" ] && [ -f "$sys_dir/corotypes.h" ]; then
	have_sys=1
else
	echo "SKIP: system corosync headers not found in $sys_dir;" \
	     "comparisons skipped, only our headers are built"
fi

# The expected public functions (used for the prototype check).
funcs="cs_timestamp_get qb_to_cs_error cs_strerror hdb_error_to_cs
cpg_initialize cpg_model_initialize cpg_finalize cpg_fd_get
cpg_max_atomic_msgsize_get cpg_context_get cpg_context_set cpg_dispatch
cpg_join cpg_leave cpg_mcast_joined cpg_membership_get cpg_local_get
cpg_flow_control_state_get cpg_zcb_alloc cpg_zcb_free cpg_zcb_mcast_joined
cpg_iteration_initialize cpg_iteration_next cpg_iteration_finalize"
func_re='(cpg_[A-Za-z0-9_]*|cs_strerror|qb_to_cs_error|hdb_error_to_cs|cs_timestamp_get)'

printf '#include <corosync/cpg.h>\n' > "$tmp/tu_cpg.c"
printf '#include <corosync/corotypes.h>\n' > "$tmp/tu_corotypes.c"
printf '#include <corosync/cpg.h>\nint main(void) { return cs_timestamp_get() == 0; }\n' \
	> "$tmp/tu_cpg.cc"

# Variants: name -> extra include flags. "sys" uses the default search path.
variants=ours
[ "$have_sys" = 1 ] && variants="ours sys"
flags_for() {
	if [ "$1" = ours ]; then echo "-I$ours_inc"; else echo ""; fi
}

# --- 1. which header files really get included --------------------------
# Prints the dependency list of tu_cpg.c, one file per line.
deps() {
	# shellcheck disable=SC2046
	$CC -std=gnu11 $(flags_for "$1") -M "$tmp/tu_cpg.c" 2>"$tmp/deps.$1.err" |
		sed 's/\\$//' | tr ' ' '\n' | sed '/^$/d; /:$/d' |
		grep -v 'tu_cpg\.c$'
}
for v in $variants; do
	if ! deps "$v" > "$tmp/deps.$v"; then
		fail "headers-resolve[$v]: preprocessing failed"; show "$tmp/deps.$v.err"
		continue
	fi
	if [ "$v" = ours ]; then want="$ours_inc/corosync"; else want="$sys_dir"; fi
	ok=1
	for h in cpg.h corotypes.h; do
		grep -qx "$want/$h" "$tmp/deps.$v" || ok=0
	done
	# the other set must not sneak in
	if [ "$v" = ours ]; then
		grep -q "^$sys_dir/" "$tmp/deps.$v" && ok=0
	else
		grep -q "^$ours_inc/" "$tmp/deps.$v" && ok=0
	fi
	if [ $ok = 1 ]; then
		pass "headers-resolve[$v]: cpg.h and corotypes.h come from $want"
	else
		fail "headers-resolve[$v]: expected cpg.h/corotypes.h from $want, got:"
		show "$tmp/deps.$v"
	fi
done
if [ "$have_sys" = 1 ]; then
	for v in ours sys; do
		sed -e "s#^$ours_inc/corosync/#<corosync>/#" -e "s#^$sys_dir/#<corosync>/#" \
			"$tmp/deps.$v" | sort -u > "$tmp/deps.$v.norm"
	done
	if diff -u "$tmp/deps.sys.norm" "$tmp/deps.ours.norm" > "$tmp/deps.diff"; then
		pass "include-closure: same set of headers pulled in transitively"
	else
		fail "include-closure: transitive includes differ (- system, + ours)"
		show "$tmp/deps.diff"
	fi
fi

# --- 2. abi_dump: layout, values, types ----------------------------------
for v in $variants; do
	# shellcheck disable=SC2046
	if $CC -std=gnu11 -Wall $(flags_for "$v") -o "$tmp/abi_dump.$v" \
		"$here/abi_dump.c" > "$tmp/build.$v.log" 2>&1; then
		if "$tmp/abi_dump.$v" > "$tmp/dump.$v"; then
			pass "abi_dump[$v]: built and ran ($(wc -l < "$tmp/dump.$v") facts)"
		else
			fail "abi_dump[$v]: program failed"
		fi
	else
		fail "abi_dump[$v]: build failed"; show "$tmp/build.$v.log"
	fi
done
if [ "$have_sys" = 1 ] && [ -s "$tmp/dump.ours" ] && [ -s "$tmp/dump.sys" ]; then
	if diff -u "$tmp/dump.sys" "$tmp/dump.ours" > "$tmp/dump.diff"; then
		pass "abi-dump: sizes/alignments/offsets/enums/macros identical"
	else
		fail "abi-dump: differences (- system, + ours)"; show "$tmp/dump.diff"
	fi
fi

# --- 3. function prototypes via -aux-info --------------------------------
for v in $variants; do
	# shellcheck disable=SC2046
	if $CC -std=gnu11 $(flags_for "$v") -c "$tmp/tu_cpg.c" -o "$tmp/aux.$v.o" \
		-aux-info "$tmp/aux.$v.raw" > "$tmp/aux.$v.log" 2>&1; then
		# drop "/* file:line:FLAGS */" (keep the N/C/F flags), squeeze blanks
		sed -E 's#^/\* .*:[0-9]+:([A-Za-z]*) \*/ #\1 #' "$tmp/aux.$v.raw" |
			grep -E "[ *]$func_re \(" |
			sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//' | sort > "$tmp/aux.$v"
		missing=
		for f in $funcs; do
			grep -Eq "[ *]$f \(" "$tmp/aux.$v" || missing="$missing $f"
		done
		if [ -z "$missing" ]; then
			pass "prototypes-present[$v]: all $(echo $funcs | wc -w) functions declared"
		else
			fail "prototypes-present[$v]: missing:$missing"
		fi
	else
		fail "prototypes-present[$v]: $CC -aux-info failed"; show "$tmp/aux.$v.log"
		: > "$tmp/aux.$v"
	fi
done
if [ "$have_sys" = 1 ]; then
	if [ -s "$tmp/aux.sys" ] && diff -u "$tmp/aux.sys" "$tmp/aux.ours" > "$tmp/aux.diff"; then
		pass "prototypes: $(wc -l < "$tmp/aux.ours") prototypes identical"
	else
		fail "prototypes: differences (- system, + ours)"; show "$tmp/aux.diff"
	fi
fi

# --- 4. preprocessor macros ----------------------------------------------
if [ "$have_sys" = 1 ]; then
	for v in ours sys; do
		# shellcheck disable=SC2046
		$CC -std=gnu11 $(flags_for "$v") -E -dM "$tmp/tu_cpg.c" 2>/dev/null |
			sed -E 's/[[:space:]]+/ /g; s/ $//' | sort > "$tmp/macros.$v"
	done
	if [ -s "$tmp/macros.sys" ] &&
	   diff -u "$tmp/macros.sys" "$tmp/macros.ours" > "$tmp/macros.diff"; then
		pass "macros: all $(wc -l < "$tmp/macros.ours") macros visible after #include <corosync/cpg.h> identical"
	else
		fail "macros: differences (- system, + ours)"; show "$tmp/macros.diff"
	fi
fi

# --- 5. our headers compile standalone -----------------------------------
try_build() { # name, log-id, command...
	name=$1; id=$2; shift 2
	if "$@" > "$tmp/std.$id.log" 2>&1; then
		pass "standalone: $name"
	else
		fail "standalone: $name"; show "$tmp/std.$id.log"
	fi
}
try_build "cpg.h, $CC -std=c99 -Wall -Wextra -Werror -pedantic" c99cpg \
	$CC -std=c99 -Wall -Wextra -Werror -pedantic -I"$ours_inc" -c "$tmp/tu_cpg.c" -o "$tmp/s1.o"
try_build "corotypes.h, $CC -std=c99 -Wall -Wextra -Werror -pedantic" c99coro \
	$CC -std=c99 -Wall -Wextra -Werror -pedantic -I"$ours_inc" -c "$tmp/tu_corotypes.c" -o "$tmp/s2.o"
try_build "cpg.h, $CC -std=gnu11 -Wall -Wextra -Werror -pedantic" gnu11cpg \
	$CC -std=gnu11 -Wall -Wextra -Werror -pedantic -I"$ours_inc" -c "$tmp/tu_cpg.c" -o "$tmp/s3.o"
try_build "cpg.h, $CXX -std=c++11 -Wall -Wextra -Werror -pedantic" cxx11cpg \
	$CXX -std=c++11 -Wall -Wextra -Werror -pedantic -I"$ours_inc" -c "$tmp/tu_cpg.cc" -o "$tmp/s4.o"

# --- 6. quirk parity: cs_timestamp_get with <unistd.h> first, strict C99 --
# Upstream only takes the clock_gettime() branch when _POSIX_MONOTONIC_CLOCK
# is already visible; under strict -std=c99 that branch fails to compile.
# We must behave the same way (succeed or fail alike).
if [ "$have_sys" = 1 ]; then
	printf '#include <unistd.h>\n#include <corosync/cpg.h>\nint main(void) { return cs_timestamp_get() == 0; }\n' \
		> "$tmp/tu_unistd.c"
	r_ours=0; r_sys=0
	$CC -std=c99 -I"$ours_inc" -c "$tmp/tu_unistd.c" -o "$tmp/q1.o" > /dev/null 2>&1 || r_ours=1
	$CC -std=c99 -c "$tmp/tu_unistd.c" -o "$tmp/q2.o" > /dev/null 2>&1 || r_sys=1
	if [ $r_ours = $r_sys ]; then
		pass "quirk-parity: <unistd.h> + -std=c99 behaves like upstream (build failed=$r_sys)"
	else
		fail "quirk-parity: <unistd.h> + -std=c99: ours failed=$r_ours, system failed=$r_sys"
	fi
fi

# --- 7. evs.h: corosync 1.4's EVS interface (no 1.4 header exists on a
# corosync 3 system: the values are checked against evs_abi.expected, the
# function types by _Static_assert in evs_abi.c) ---------------------------
if $CC -std=gnu11 -Wall -Wextra -Werror -I"$ours_inc" -o "$tmp/evs_abi" "$here/evs_abi.c" > "$tmp/evs_build" 2>&1 \
	&& "$tmp/evs_abi" > "$tmp/evs_abi.out"; then
	if diff -u "$here/evs_abi.expected" "$tmp/evs_abi.out" > "$tmp/evs_abi.diff"; then
		pass "evs.h: sizes, offsets, enum and macro values, function types as corosync 1.4"
	else
		fail "evs.h: layout differs from corosync 1.4"; show "$tmp/evs_abi.diff"
	fi
else
	fail "evs.h: evs_abi.c does not build or run"; show "$tmp/evs_build"
fi
printf '#include <corosync/evs.h>\n' > "$tmp/tu_evs.c"
printf '#include <corosync/evs.h>\nint main(void) { return 0; }\n' > "$tmp/tu_evs.cc"
try_build "evs.h, $CC -std=c99 -Wall -Wextra -Werror -pedantic" c99evs \
	$CC -std=c99 -Wall -Wextra -Werror -pedantic -I"$ours_inc" -c "$tmp/tu_evs.c" -o "$tmp/e1.o"
try_build "evs.h, $CXX -std=c++11 -Wall -Wextra -Werror -pedantic" cxx11evs \
	$CXX -std=c++11 -Wall -Wextra -Werror -pedantic -I"$ours_inc" -c "$tmp/tu_evs.cc" -o "$tmp/e2.o"
# with corosync 3's own hdb.h included first, hdb_handle_t must not clash
if [ -f "$sys_dir/hdb.h" ]; then
	printf '#include <corosync/hdb.h>\n#include <evs.h>\nint main(void) { hdb_handle_t h = 0; return (int)h; }\n' > "$tmp/tu_hdb.c"
	try_build "evs.h after corosync 3's <corosync/hdb.h>" hdbevs \
		$CC -std=gnu11 -Wall -Wextra -Werror -I"$ours_inc/corosync" -c "$tmp/tu_hdb.c" -o "$tmp/e3.o"
fi

echo "abi: $npass passed, $nfail failed"
[ "$nfail" = 0 ]
