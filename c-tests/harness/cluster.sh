# shellcheck shell=bash
# c-tests/harness/cluster.sh -- sourceable bash library that runs a real
# corosync 3 cluster of N nodes (1..9) on this machine.
#
# Topology: one network namespace per node (NODE 1..N: interface eth0,
# address 10.201.0.NODE/24, loopback up), a bridge (br0) in a namespace of
# its own, one veth pair per node (bridge side "vNODE", node side "eth0").
# Each corosync runs in its node's namespace with a private mount namespace
# and tmpfs /run (corosync's pid file path is fixed), its own config (knet
# transport, nodelist with nodeids 1..N, token $CL_TOKEN ms), state_dir and
# log.  Clients must run inside a node's namespace (the IPC socket is an
# abstract unix socket, one per network namespace): cluster_exec, or
# setns(2) on /run/netns/$(cluster_ns NODE).
#
#   source c-tests/harness/cluster.sh
#   cluster_available || echo "SKIPPED: $CL_SKIP_REASON"
#   cluster_start N               start N nodes and wait until all see N members;
#                                 0 ok, 1 failed, 2 unavailable (skip, CL_SKIP_REASON)
#   cluster_exec NODE CMD...      run CMD in NODE's network namespace
#   cluster_ns NODE               print NODE's namespace name (/run/netns/<name>)
#   cluster_pid NODE              print NODE's corosync pid (empty when down)
#   cluster_alive NODE            0 if NODE's corosync is running
#   cluster_kill_node NODE        SIGKILL NODE's corosync (reaped; its /dev/shm
#                                 files are kept until the node is started again)
#   cluster_stop_node NODE        SIGTERM, bounded wait, then SIGKILL
#   cluster_start_node NODE       start NODE's corosync again, wait until ready
#   cluster_restart_node NODE     stop (if running) + start
#   cluster_pause_node NODE       SIGSTOP NODE's corosync (a stalled daemon; keep
#                                 it shorter than the token timeout to avoid a
#                                 membership change)
#   cluster_resume_node NODE      SIGCONT it
#   cluster_partition NODE        cut NODE off the bridge (bridge-side veth down)
#   cluster_heal NODE             reconnect it (veth up)
#   cluster_members NODE          print the nodeids NODE's corosync sees joined
#   cluster_wait_members COUNT TIMEOUT [NODE...]
#                                 wait until every NODE (default: every running
#                                 node) sees exactly COUNT members; 0 ok, 1 timeout
#   cluster_shm_clean             remove /dev/shm files of our daemons that are gone
#   cluster_cleanup               stop all, delete namespaces, bridge, temp dir,
#                                 /dev/shm files of our daemons (runs on EXIT/INT/TERM)
#   cluster_on_exit CMD           register an extra command for the exit trap
#
# Variables: CL_N, CL_TAG (unique name prefix "cpgcl-$$"), CL_DIR (temp dir;
# node K's files in $CL_DIR/nK: cs.conf, cs.log, state/), CL_BR_NS,
# CL_NS[K], CL_PID[K], CL_LOG[K], CL_ADDR[K].  Settings (before cluster_start):
# CL_TOKEN (ms, default 1000), CL_READY_TIMEOUT (s, default 30),
# CL_STOP_TIMEOUT (s, default 10), CL_CONF_EXTRA (text appended to every
# corosync.conf, e.g. a quorum section), CL_TOTEM_EXTRA (lines added inside
# its totem section), CL_LOG_DEBUG=1 (debug logging), CL_KEEP_LOGS=DIR (copy
# the nodes' logs there on clean-up).
#
# Only one cluster per sourcing shell; do not source corosync.sh in the same
# shell (both install an exit trap).  Processes are only ever signalled by their
# own pid; everything created is removed by cluster_cleanup, which the trap
# installed here runs on EXIT, INT and TERM.

CL_N=0
CL_TAG=${CL_TAG:-cpgcl-$$}
CL_DIR=""
CL_BR_NS=""
CL_NS=(); CL_PID=(); CL_LOG=(); CL_ADDR=(); CL_PARTED=()
CL_OLD_PIDS=""
CL_SKIP_REASON=""
CL_TOKEN=${CL_TOKEN:-1000}
CL_READY_TIMEOUT=${CL_READY_TIMEOUT:-30}
CL_STOP_TIMEOUT=${CL_STOP_TIMEOUT:-10}
CL_CONF_EXTRA=${CL_CONF_EXTRA:-}
CL_TOTEM_EXTRA=${CL_TOTEM_EXTRA:-}
CL_LOG_DEBUG=${CL_LOG_DEBUG:-0}
CL__EXIT_HOOKS=()

cl_log() { echo "[cluster.sh] $*" >&2; }

cluster_on_exit() { CL__EXIT_HOOKS+=("$*"); }

cl__run_hooks() {
    local h
    for h in "${CL__EXIT_HOOKS[@]}"; do eval "$h" || true; done
}
cl__trap_exit() {
    local rc=$?
    trap - EXIT INT TERM
    cl__run_hooks
    cluster_cleanup
    exit "$rc"
}
cl__trap_sig() {
    cl_log "caught SIG$1, cleaning up"
    trap - EXIT INT TERM
    cl__run_hooks
    cluster_cleanup
    [ "$1" = INT ] && exit 130
    exit 143
}
trap cl__trap_exit EXIT
trap 'cl__trap_sig INT' INT
trap 'cl__trap_sig TERM' TERM

cluster_available() {
    if [ "$(id -u)" != 0 ]; then CL_SKIP_REASON="not root"; return 1; fi
    if ! command -v corosync >/dev/null 2>&1; then CL_SKIP_REASON="corosync not installed"; return 1; fi
    if ! command -v corosync-cmapctl >/dev/null 2>&1; then CL_SKIP_REASON="corosync-cmapctl not installed"; return 1; fi
    if ! command -v ip >/dev/null 2>&1; then CL_SKIP_REASON="ip (iproute2) not installed"; return 1; fi
    if ! command -v unshare >/dev/null 2>&1; then CL_SKIP_REASON="unshare not installed"; return 1; fi
    if ! ip netns list >/dev/null 2>&1; then CL_SKIP_REASON="ip netns unavailable"; return 1; fi
    return 0
}

cl__node_ok() { # cl__node_ok NODE -> 0 if NODE is a node of the running cluster
    case "${1:-}" in ''|*[!0-9]*) cl_log "bad node '${1:-}'"; return 1 ;; esac
    if [ "$1" -lt 1 ] || [ "$1" -gt "$CL_N" ]; then cl_log "no node $1 (cluster has $CL_N)"; return 1; fi
    return 0
}

cl__write_conf() { # cl__write_conf NODE
    local k=$1 i
    {
        echo "totem {"
        echo "    version: 2"
        echo "    cluster_name: $CL_TAG"
        echo "    transport: knet"
        echo "    token: $CL_TOKEN"
        echo "    crypto_cipher: none"
        echo "    crypto_hash: none"
        [ -n "$CL_TOTEM_EXTRA" ] && printf '    %s\n' "$CL_TOTEM_EXTRA"
        echo "}"
        echo "logging {"
        echo "    to_stderr: yes"
        echo "    to_logfile: no"
        echo "    to_syslog: no"
        echo "    timestamp: hires"
        [ "$CL_LOG_DEBUG" = 1 ] && echo "    debug: on"
        echo "}"
        echo "nodelist {"
        for i in $(seq "$CL_N"); do
            echo "    node {"
            echo "        name: n$i"
            echo "        nodeid: $i"
            echo "        ring0_addr: ${CL_ADDR[$i]}"
            echo "    }"
        done
        echo "}"
        echo "system {"
        echo "    state_dir: $CL_DIR/n$k/state"
        echo "}"
        [ -n "$CL_CONF_EXTRA" ] && printf '%s\n' "$CL_CONF_EXTRA"
    } >"$CL_DIR/n$k/cs.conf"
}

cluster_ns() { cl__node_ok "$1" || return 1; echo "${CL_NS[$1]}"; }
cluster_pid() { cl__node_ok "$1" || return 1; echo "${CL_PID[$1]:-}"; }
cluster_alive() {
    cl__node_ok "$1" || return 1
    [ -n "${CL_PID[$1]:-}" ] && kill -0 "${CL_PID[$1]}" 2>/dev/null
}

cluster_exec() {
    local k=$1; shift
    cl__node_ok "$k" || return 127
    ip netns exec "${CL_NS[$k]}" "$@"
}

# start NODE's corosync in its namespace; wait for "ready to provide service"
cl__launch() {
    local k=$1 log=${CL_LOG[$1]}
    echo "=== start $(date +%T.%N)" >>"$log"
    # ip netns exec and unshare exec (no fork) and sh execs corosync, so $!
    # is corosync's own pid
    ip netns exec "${CL_NS[$k]}" unshare -m --propagation private \
        sh -c 'mount -t tmpfs none /run && exec corosync -f -c "$1"' sh "$CL_DIR/n$k/cs.conf" \
        >>"$log" 2>&1 </dev/null &
    local pid=$!
    CL_PID[$k]=$pid
    CL_OLD_PIDS="$CL_OLD_PIDS $pid"
    local start_line
    start_line=$(wc -l <"$log")
    local deadline=$((SECONDS + CL_READY_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cl_log "corosync of node $k exited during start-up; log:"
            tail -n +"$start_line" "$log" | sed 's/^/    /' >&2
            wait "$pid" 2>/dev/null
            CL_PID[$k]=""
            return 1
        fi
        if tail -n +"$start_line" "$log" | grep -q "ready to provide service"; then
            return 0
        fi
        sleep 0.1
    done
    cl_log "corosync of node $k not ready after ${CL_READY_TIMEOUT}s; log:"
    tail -n +"$start_line" "$log" | tail -30 | sed 's/^/    /' >&2
    cluster_stop_node "$k"
    return 1
}

# cluster_start N
cluster_start() {
    local n=${1:-3} k
    case "$n" in [1-9]) ;; *) cl_log "cluster_start: N must be 1..9"; return 1 ;; esac
    if [ -n "$CL_BR_NS" ]; then cl_log "cluster_start: a cluster is already running"; return 1; fi
    if ! cluster_available; then cl_log "SKIPPED: $CL_SKIP_REASON"; return 2; fi
    CL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$CL_TAG.XXXXXX") || return 1
    CL_N=$n
    CL_BR_NS=$CL_TAG-br
    if ! ip netns add "$CL_BR_NS" 2>"$CL_DIR/netns.err"; then
        CL_SKIP_REASON="ip netns add failed: $(cat "$CL_DIR/netns.err")"
        cl_log "SKIPPED: $CL_SKIP_REASON"
        CL_BR_NS=""
        cluster_cleanup
        return 2
    fi
    {
        ip -n "$CL_BR_NS" link set lo up &&
        ip -n "$CL_BR_NS" link add br0 type bridge &&
        ip -n "$CL_BR_NS" link set br0 up
    } || { cl_log "bridge set-up failed"; cluster_cleanup; return 1; }
    for k in $(seq "$n"); do
        CL_NS[$k]=$CL_TAG-n$k
        CL_ADDR[$k]=10.201.0.$k
        CL_LOG[$k]=$CL_DIR/n$k/cs.log
        CL_PID[$k]=""
        CL_PARTED[$k]=0
        mkdir -p "$CL_DIR/n$k/state"
        : >"${CL_LOG[$k]}"
        if ! ip netns add "${CL_NS[$k]}"; then
            CL_NS[$k]=""
            cl_log "ip netns add ${CL_TAG}-n$k failed"; cluster_cleanup; return 1
        fi
        {
            ip -n "${CL_NS[$k]}" link set lo up &&
            ip -n "$CL_BR_NS" link add "v$k" type veth peer name eth0 netns "${CL_NS[$k]}" &&
            ip -n "$CL_BR_NS" link set "v$k" master br0 &&
            ip -n "$CL_BR_NS" link set "v$k" up &&
            ip -n "${CL_NS[$k]}" addr add "${CL_ADDR[$k]}/24" dev eth0 &&
            ip -n "${CL_NS[$k]}" link set eth0 up
        } || { cl_log "network set-up of node $k failed"; cluster_cleanup; return 1; }
    done
    for k in $(seq "$n"); do cl__write_conf "$k"; done
    # start them all at once (each waits for its own readiness afterwards)
    for k in $(seq "$n"); do
        cl__launch "$k" || { cluster_cleanup; return 1; }
    done
    if ! cluster_wait_members "$n" "$CL_READY_TIMEOUT"; then
        cl_log "cluster of $n did not form in ${CL_READY_TIMEOUT}s"
        cluster_cleanup
        return 1
    fi
    return 0
}

# nodeids that NODE's corosync reports as joined (one per line)
cluster_members() {
    cl__node_ok "$1" || return 1
    cluster_alive "$1" || return 1
    timeout 5 ip netns exec "${CL_NS[$1]}" corosync-cmapctl -b runtime.members 2>/dev/null |
        sed -n 's/^runtime\.members\.\([0-9]*\)\.status (str) = joined$/\1/p' | sort -n
}

# cluster_wait_members COUNT TIMEOUT [NODE...]
cluster_wait_members() {
    local want=$1 tmo=$2; shift 2
    local nodes=("$@") k
    if [ ${#nodes[@]} = 0 ]; then
        for k in $(seq "$CL_N"); do cluster_alive "$k" && nodes+=("$k"); done
    fi
    local deadline=$((SECONDS + tmo)) all got
    while :; do
        all=1
        for k in "${nodes[@]}"; do
            got=$(cluster_members "$k" | wc -l)
            [ "$got" = "$want" ] || { all=0; break; }
        done
        [ $all = 1 ] && return 0
        [ $SECONDS -ge $deadline ] && break
        sleep 0.2
    done
    for k in "${nodes[@]}"; do
        cl_log "node $k sees members: $(cluster_members "$k" | tr '\n' ' ')(want $want)"
    done
    return 1
}

cluster_kill_node() {
    cl__node_ok "$1" || return 1
    local pid=${CL_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "=== SIGKILL $(date +%T.%N)" >>"${CL_LOG[$1]}"
    CL_PID[$1]=""
    return 0
}

cluster_stop_node() {
    cl__node_ok "$1" || return 1
    local pid=${CL_PID[$1]:-}
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        kill -CONT "$pid" 2>/dev/null   # in case it was paused
        local deadline=$((SECONDS + CL_STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            cl_log "corosync $pid (node $1) ignored SIGTERM for ${CL_STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    CL_PID[$1]=""
    return 0
}

cluster_start_node() {
    cl__node_ok "$1" || return 1
    if cluster_alive "$1"; then return 0; fi
    cluster_shm_clean
    cl__launch "$1"
}

cluster_restart_node() {
    cl__node_ok "$1" || return 1
    cluster_stop_node "$1"
    cluster_start_node "$1"
}

cluster_pause_node() {
    cl__node_ok "$1" || return 1
    [ -n "${CL_PID[$1]:-}" ] || return 1
    kill -STOP "${CL_PID[$1]}"
}

cluster_resume_node() {
    cl__node_ok "$1" || return 1
    [ -n "${CL_PID[$1]:-}" ] || return 1
    kill -CONT "${CL_PID[$1]}"
}

cluster_partition() {
    cl__node_ok "$1" || return 1
    ip -n "$CL_BR_NS" link set "v$1" down || return 1
    CL_PARTED[$1]=1
}

cluster_heal() {
    cl__node_ok "$1" || return 1
    ip -n "$CL_BR_NS" link set "v$1" up || return 1
    CL_PARTED[$1]=0
}

# remove /dev/shm files (connection dirs, blackbox) of our daemons that are gone
cluster_shm_clean() {
    local p k live keep=""
    for k in $(seq "$CL_N"); do
        live=${CL_PID[$k]:-}
        [ -n "$live" ] && kill -0 "$live" 2>/dev/null && keep="$keep $live "
    done
    for p in $CL_OLD_PIDS; do
        case "$keep" in *" $p "*) continue ;; esac
        rm -rf /dev/shm/qb-"$p"-* /dev/shm/qb-corosync-"$p"-* 2>/dev/null
    done
}

cluster_cleanup() {
    local k p left
    for k in $(seq "$CL_N"); do cluster_stop_node "$k"; done
    # anything still running in our namespaces was started there by us (a
    # test's client, a daemon whose pid a subshell kept): end it by pid
    for k in $(seq "$CL_N"); do
        [ -n "${CL_NS[$k]:-}" ] || continue
        left=$(ip netns pids "${CL_NS[$k]}" 2>/dev/null)
        for p in $left; do
            cl_log "cleanup: pid $p ($(cat "/proc/$p/comm" 2>/dev/null)) still in ${CL_NS[$k]}: SIGKILL"
            [ "$(cat "/proc/$p/comm" 2>/dev/null)" = corosync ] && CL_OLD_PIDS="$CL_OLD_PIDS $p"
            kill -KILL "$p" 2>/dev/null
        done
        for p in $left; do
            wait "$p" 2>/dev/null   # reaps it if it is our child
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        done
    done
    cluster_shm_clean
    CL_OLD_PIDS=""
    for k in $(seq "$CL_N"); do
        if [ -n "${CL_NS[$k]:-}" ]; then
            ip netns del "${CL_NS[$k]}" 2>/dev/null || cl_log "warning: could not delete netns ${CL_NS[$k]}"
            CL_NS[$k]=""
        fi
    done
    if [ -n "$CL_BR_NS" ]; then
        ip netns del "$CL_BR_NS" 2>/dev/null || cl_log "warning: could not delete netns $CL_BR_NS"
        CL_BR_NS=""
    fi
    if [ -n "$CL_DIR" ]; then
        if [ -n "${CL_KEEP_LOGS:-}" ]; then
            mkdir -p "$CL_KEEP_LOGS" && cp -r "$CL_DIR"/n* "$CL_KEEP_LOGS"/ 2>/dev/null
        fi
        rm -rf "$CL_DIR"
        CL_DIR=""
    fi
    CL_N=0
    return 0
}
