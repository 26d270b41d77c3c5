#!/usr/bin/env bash
# Our libraries' exported symbols and versions, SONAMEs and dependencies,
# compared with the checked-in lists (src/ffi/exports/*.abi) and, when
# Debian's libraries are installed, with theirs.
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS: $1"; }
ko() { fail=$((fail + 1)); echo "FAIL: $1"; }
# Defined dynamic symbols as "name version", sorted.
symbols() {
	# Lines are "addr flags type section size [version] name"; a library
	# without any versioning (no versioned imports either) has no version
	# column. Unversioned and base-versioned bind alike: both read "Base".
	objdump -T "$1" | awk '$0 ~ /^[0-9a-f]+ / && $0 !~ /\*UND\*/ { print $NF, (NF >= 7 ? $(NF-1) : "Base") }' |
		sed 's/(\(.*\))/\1/' | sort
}
compare() { # label file-a file-b
	if diff -u "$2" "$3" >/dev/null; then ok "$1"; else ko "$1"; diff -u "$2" "$3" || true; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sys=/usr/lib/x86_64-linux-gnu
for spec in "libcpg libcpg.so.4.1.0 libcpg.so.4" "libcorosync_common libcorosync_common.so.4.0.0 libcorosync_common.so.4" "libevs libevs.so.4.0.0 libevs.so.4"; do
	set -- $spec
	name=$1 file=$2 soname=$3
	ours=build/lib/$file
	symbols "$ours" > "$tmp/ours"
	grep -v '^#' "src/ffi/exports/$name.abi" | sort > "$tmp/list"
	compare "$name: exports equal the checked-in list" "$tmp/list" "$tmp/ours"
	if [ -e "$sys/$file" ]; then
		symbols "$sys/$file" > "$tmp/sys"
		compare "$name: exports equal Debian's $file" "$tmp/sys" "$tmp/ours"
	else
		echo "SKIP: $name: Debian's $file not installed"
	fi
	if objdump -p "$ours" | grep -q "SONAME *$soname\$"; then ok "$name: SONAME $soname"; else ko "$name: SONAME"; fi
	needed=$(objdump -p "$ours" | awk '/NEEDED/ { print $2 }' | tr '\n' ' ')
	if grep -q 'libqb' <<<"$needed"; then ko "$name: depends on libqb ($needed)"; else ok "$name: no libqb ($needed)"; fi
done
echo "symbols: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
