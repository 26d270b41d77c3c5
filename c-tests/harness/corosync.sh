# shellcheck shell=bash
# c-tests/harness/corosync.sh -- sourceable bash library that runs a private,
# single-node corosync 3 on loopback inside its own network namespace.
#
#   source c-tests/harness/corosync.sh
#   cs_available || echo "SKIPPED: $CS_SKIP_REASON"
#   cs_start NAME MODE        # MODE = shm | socket; returns 0 ok, 1 failed, 2 unavailable (skip)
#                             # MODE = cmd: run "$CS_SERVER_CMD" (word-split) instead of
#                             # corosync, ready when "$CS_READY_PROBE" (sh -c, in the
#                             # namespace) succeeds -- used for our own server (cpgd)
#   cs_exec CMD...            # run CMD inside the namespace (abstract IPC socket lives there)
#   cs_kill9                  # SIGKILL the daemon (and reap it); the namespace stays
#   cs_stop                   # SIGTERM, bounded wait, then SIGKILL; reaped
#   cs_restart                # stop if running, clean its /dev/shm leftovers, start again
#   cs_alive                  # 0 if the daemon process is alive
#   cs_cleanup                # stop, delete namespace + temp dir + /dev/shm leftovers
#   cs_on_exit CMD            # register an extra command run by the exit trap
#
# Variables after cs_start: CS_NAME CS_MODE CS_NS CS_DIR CS_PID CS_LOG
#
# Only one daemon per sourcing shell.  Everything created (namespace, temp dir,
# daemon, /dev/shm/qb-<pid>-* connection dirs, /dev/shm/qb-corosync-<pid>-*
# blackbox files) is removed by cs_cleanup, which the installed trap runs on
# EXIT, INT and TERM.  Processes are only ever signalled by their own pid.

CS_NAME=""; CS_MODE=""; CS_NS=""; CS_DIR=""; CS_PID=""; CS_LOG=""
CS_OLD_PIDS=""          # every daemon pid this shell started (for /dev/shm clean-up)
CS_SKIP_REASON=""
CS_READY_TIMEOUT=${CS_READY_TIMEOUT:-30}
CS_STOP_TIMEOUT=${CS_STOP_TIMEOUT:-10}
CS__EXIT_HOOKS=()
CS__TRAP_SET=""

cs_log() { echo "[corosync.sh] $*" >&2; }

cs_on_exit() { CS__EXIT_HOOKS+=("$*"); }

cs__trap_exit() {
    local rc=$?
    trap - EXIT INT TERM
    local h
    for h in "${CS__EXIT_HOOKS[@]}"; do eval "$h" || true; done
    cs_cleanup
    exit "$rc"
}
cs__trap_sig() {
    local sig=$1
    cs_log "caught SIG$sig, cleaning up"
    trap - EXIT INT TERM
    local h
    for h in "${CS__EXIT_HOOKS[@]}"; do eval "$h" || true; done
    cs_cleanup
    [ "$sig" = INT ] && exit 130
    exit 143
}
cs__install_trap() {
    [ -n "$CS__TRAP_SET" ] && return 0
    trap cs__trap_exit EXIT
    trap 'cs__trap_sig INT' INT
    trap 'cs__trap_sig TERM' TERM
    CS__TRAP_SET=1
}
cs__install_trap

# cs_available: 0 when this machine can run the private daemon; otherwise sets
# CS_SKIP_REASON and returns 1 (callers must report SKIPPED, never PASS).
cs_available() {
    if [ "$(id -u)" != 0 ]; then CS_SKIP_REASON="not root"; return 1; fi
    if [ "${1:-}" != cmd ] && ! command -v corosync >/dev/null 2>&1; then CS_SKIP_REASON="corosync not installed"; return 1; fi
    if ! command -v ip >/dev/null 2>&1; then CS_SKIP_REASON="ip (iproute2) not installed"; return 1; fi
    if ! command -v unshare >/dev/null 2>&1; then CS_SKIP_REASON="unshare not installed"; return 1; fi
    if ! ip netns list >/dev/null 2>&1; then CS_SKIP_REASON="ip netns unavailable"; return 1; fi
    return 0
}

cs__write_conf() {
    local conf=$1 mode=$2
    {
        echo "totem {"
        echo "    version: 2"
        echo "    cluster_name: t"
        echo "    crypto_cipher: none"
        echo "    crypto_hash: none"
        echo "    token: 1000"
        echo "}"
        echo "logging {"
        echo "    to_stderr: yes"
        echo "    to_logfile: no"
        echo "    to_syslog: no"
        echo "}"
        echo "nodelist {"
        echo "    node {"
        echo "        name: n1"
        echo "        nodeid: 1"
        echo "        ring0_addr: 127.0.0.1"
        echo "    }"
        echo "}"
        # let the unprivileged user "nobody" connect (nonroot.c); other
        # non-root users are refused with CS_ERR_ACCESS
        if getent passwd nobody >/dev/null 2>&1; then
            echo "uidgid {"
            echo "    uid: nobody"
            echo "}"
        fi
        echo "quorum {"
        echo "    provider: corosync_votequorum"
        echo "}"
        echo "system {"
        echo "    state_dir: $CS_DIR/state"
        if [ "$mode" = socket ]; then echo "    qb_ipc_type: socket"; fi
        echo "}"
    } >"$conf"
}

cs_alive() {
    [ -n "$CS_PID" ] && kill -0 "$CS_PID" 2>/dev/null
}

# is the started server ready to accept clients?
cs__ready() {
    if [ "$CS_MODE" = cmd ]; then
        [ -n "${CS_READY_PROBE:-}" ] || return 0
        ip netns exec "$CS_NS" sh -c "$CS_READY_PROBE" >/dev/null 2>&1
    else
        grep -q "ready to provide service" "$CS_LOG" 2>/dev/null
    fi
}

# start the daemon process in the existing namespace and wait until it is ready
cs__launch() {
    : >"$CS_LOG"
    # ip netns exec and unshare both exec (no fork), and sh execs the server,
    # so $! is the daemon's own pid (checked below).  /run is private so the
    # fixed /run/corosync.pid of a second corosync never collides.
    if [ "$CS_MODE" = cmd ]; then
        ip netns exec "$CS_NS" unshare -m --propagation private \
            sh -c 'mount -t tmpfs none /run && exec "$@"' sh $CS_SERVER_CMD \
            >>"$CS_LOG" 2>&1 </dev/null &
    else
        ip netns exec "$CS_NS" unshare -m --propagation private \
            sh -c 'mount -t tmpfs none /run && exec corosync -f -c "$1"' sh "$CS_DIR/cs.conf" \
            >>"$CS_LOG" 2>&1 </dev/null &
    fi
    CS_PID=$!
    CS_OLD_PIDS="$CS_OLD_PIDS $CS_PID"
    local deadline=$((SECONDS + CS_READY_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$CS_PID" 2>/dev/null; then
            cs_log "server ($CS_NAME/$CS_MODE) exited during start-up; log:"
            sed 's/^/    /' "$CS_LOG" >&2
            wait "$CS_PID" 2>/dev/null
            CS_PID=""
            return 1
        fi
        if cs__ready; then
            local comm
            comm=$(cat "/proc/$CS_PID/comm" 2>/dev/null)
            if [ "$CS_MODE" != cmd ] && [ "$comm" != corosync ]; then
                cs_log "warning: pid $CS_PID is '$comm', not corosync"
            fi
            return 0
        fi
        sleep 0.1
    done
    cs_log "server ($CS_NAME/$CS_MODE) not ready after ${CS_READY_TIMEOUT}s; log:"
    sed 's/^/    /' "$CS_LOG" >&2
    cs_stop
    return 1
}

# cs_start NAME MODE
cs_start() {
    local name=$1 mode=$2
    case "$mode" in
        shm|socket) ;;
        cmd) if [ -z "${CS_SERVER_CMD:-}" ]; then cs_log "cs_start: mode cmd needs CS_SERVER_CMD"; return 1; fi ;;
        *) cs_log "cs_start: bad mode '$mode'"; return 1;;
    esac
    if [ -n "$CS_NS" ]; then cs_log "cs_start: a daemon is already managed ($CS_NS)"; return 1; fi
    if ! cs_available "$mode"; then cs_log "SKIPPED: $CS_SKIP_REASON"; return 2; fi
    CS_NAME=$name; CS_MODE=$mode
    CS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cpgt-$name-$$.XXXXXX") || return 1
    mkdir -p "$CS_DIR/state"
    CS_LOG=$CS_DIR/cs.log
    cs__write_conf "$CS_DIR/cs.conf" "$mode"
    local ns="cpgt-$name-$$"
    if ! ip netns add "$ns" 2>"$CS_DIR/netns.err"; then
        CS_SKIP_REASON="ip netns add failed: $(cat "$CS_DIR/netns.err")"
        cs_log "SKIPPED: $CS_SKIP_REASON"
        rm -rf "$CS_DIR"; CS_DIR=""
        return 2
    fi
    CS_NS=$ns
    ip netns exec "$CS_NS" ip link set lo up || { cs_cleanup; return 1; }
    cs__launch || return 1
    return 0
}

cs_exec() {
    if [ -z "$CS_NS" ]; then cs_log "cs_exec: no namespace"; return 127; fi
    ip netns exec "$CS_NS" "$@"
}

cs_kill9() {
    [ -n "$CS_PID" ] || return 0
    kill -KILL "$CS_PID" 2>/dev/null
    wait "$CS_PID" 2>/dev/null
    CS_PID=""
    return 0
}

cs_stop() {
    [ -n "$CS_PID" ] || return 0
    if kill -0 "$CS_PID" 2>/dev/null; then
        kill -TERM "$CS_PID" 2>/dev/null
        local deadline=$((SECONDS + CS_STOP_TIMEOUT))
        while kill -0 "$CS_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if kill -0 "$CS_PID" 2>/dev/null; then
            cs_log "corosync $CS_PID ignored SIGTERM for ${CS_STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$CS_PID" 2>/dev/null
        fi
    fi
    wait "$CS_PID" 2>/dev/null
    CS_PID=""
    return 0
}

# remove /dev/shm files of daemons we started that are no longer running
cs__clean_shm() {
    local p
    for p in $CS_OLD_PIDS; do
        if [ "$p" = "$CS_PID" ] && cs_alive; then continue; fi
        rm -rf /dev/shm/qb-"$p"-* /dev/shm/qb-corosync-"$p"-* 2>/dev/null
    done
}

cs_restart() {
    if [ -z "$CS_NS" ]; then cs_log "cs_restart: nothing started"; return 1; fi
    cs_stop
    cs__clean_shm
    cs__launch
}

cs_cleanup() {
    cs_stop
    cs__clean_shm
    if [ -n "$CS_NS" ]; then
        ip netns del "$CS_NS" 2>/dev/null || cs_log "warning: could not delete netns $CS_NS"
        CS_NS=""
    fi
    if [ -n "$CS_DIR" ]; then
        rm -rf "$CS_DIR"
        CS_DIR=""
    fi
    CS_OLD_PIDS=""
    return 0
}
