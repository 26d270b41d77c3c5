#!/usr/bin/env bash
# make install into a scratch DESTDIR, then build and link a C program with
# `pkg-config --cflags --libs libcpg` against the installed tree only, and
# check what it would load at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); echo "PASS: $desc"; else fail=$((fail + 1)); echo "FAIL: $desc"; fi; }

make -s install DESTDIR="$dest" PREFIX=/opt/cpgrs >/dev/null
lib=$dest/opt/cpgrs/lib
desc="installed files and symlinks"
check test -f "$lib/libcpg.so.4.1.0" -a -L "$lib/libcpg.so.4" -a -L "$lib/libcpg.so" \
	-a -f "$dest/opt/cpgrs/include/corosync/cpg.h" -a -f "$dest/opt/cpgrs/include/corosync/corotypes.h" \
	-a -f "$lib/pkgconfig/libcpg.pc" -a -L "$lib/libcorosync_common.so.4"

export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR=$lib/pkgconfig
flags=$(pkg-config --cflags --libs libcpg)
desc="pkg-config names the installed tree ($flags)"
check grep -q -- "-I$dest/opt/cpgrs/include" <<<"$flags"

cat > "$dest/prog.c" <<'C'
#include <corosync/cpg.h>
#include <stdio.h>
int main(void)
{
	cpg_handle_t h;
	unsigned int n = 0;
	/* Linking is what is tested; with no server this returns an error. */
	cs_error_t e = cpg_initialize(&h, NULL);
	printf("%d %s\n", (int)CPG_MAX_NAME_LENGTH, e == CS_OK || e == CS_ERR_LIBRARY ? "ok" : "bad");
	return cpg_local_get(0, &n) == CS_ERR_BAD_HANDLE ? 0 : 1;
}
C
desc="a program builds with pkg-config against the installed tree"
check ${CC:-cc} -o "$dest/prog" "$dest/prog.c" $flags -Wl,-rpath,"$lib"
desc="it loads the installed libcpg.so.4"
check grep -q "$lib/libcpg.so.4" <<<"$(ldd "$dest/prog")"
desc="it runs"
check "$dest/prog"

desc="libevs installed: files, symlinks, evs.h, libevs.pc, libcoroipcc.so.4"
check test -f "$lib/libevs.so.4.0.0" -a -L "$lib/libevs.so.4" -a -L "$lib/libevs.so" \
	-a -f "$dest/opt/cpgrs/include/corosync/evs.h" -a -f "$lib/pkgconfig/libevs.pc" -a -L "$lib/libcoroipcc.so.4"
eflags=$(pkg-config --cflags --libs libevs)
cat > "$dest/eprog.c" <<'C'
#include <corosync/evs.h>
int main(void)
{
	int fd;
	/* Linking is what is tested: a forged handle is refused. */
	return evs_fd_get(0, &fd) == EVS_ERR_BAD_HANDLE ? 0 : 1;
}
C
desc="an EVS program builds with pkg-config libevs ($eflags)"
check ${CC:-cc} -o "$dest/eprog" "$dest/eprog.c" $eflags -Wl,-rpath,"$lib"
desc="it loads the installed libevs.so.4"
check grep -q "$lib/libevs.so.4" <<<"$(ldd "$dest/eprog")"
desc="it runs"
check "$dest/eprog"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
