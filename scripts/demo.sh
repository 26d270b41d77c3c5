#!/usr/bin/env bash
# make demo: start our CPG server (cpgd), run two listeners and a sender
# that exchange messages in one group and watch each other join and leave,
# then stop the server. No root needed: it runs in a private network
# namespace (an unprivileged user namespace) when the system allows one,
# so it never meets a corosync running on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CPGRS_DEMO_INNER:-}" ]; then
	export CPGRS_DEMO_INNER=1
	if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then exec unshare -n "$0"; fi
	if unshare -rn true 2>/dev/null; then exec unshare -rn "$0"; fi
	echo "demo: no private network namespace available; using the host's (fails if corosync runs)"
fi
ip link set lo up 2>/dev/null || true
export LD_LIBRARY_PATH=$PWD/build/lib
server=$PWD/target/release/cpgd
demo=$PWD/build/examples/cpgdemo
"$server" &
spid=$!
trap 'kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do "$PWD/build/examples/cpgprobe" && break; sleep 0.1; done
echo "== cpgd (pid $spid) is serving the cpg service; starting two listeners"
"$demo" listen demo 3 & l1=$!
sleep 0.3
"$demo" listen demo 3 & l2=$!
sleep 0.3
echo "== a sender joins, multicasts three messages, and leaves"
"$demo" send demo 3
wait "$l1" "$l2"
echo "== stopping cpgd"
kill -TERM "$spid"
wait "$spid" || true
trap - EXIT
left=$(ls /dev/shm | grep -c "^qb-$spid-" || true)
echo "== done: every member saw the same messages in the same order; $left files left in /dev/shm"
