/*
 * c-tests/cluster/cl.h -- helpers for the cluster tests run by
 * c-tests/cluster/run.sh (on a real corosync cluster, c-tests/harness/cluster.sh,
 * or on one cpgd).
 *
 * A test program is a coordinator: it forks member processes, each of which
 * enters one node's network namespace (setns on /run/netns/<name>, so that
 * cpg_initialize reaches that node's daemon) and reports to the coordinator
 * through a pipe.  Faults are asked of the driver through the fifos in
 * $CPG_TEST_CTL (tap.h t_harness): "kill K", "start K", "partition K",
 * "heal K", "wait COUNT SECS [K...]", "pid K" -- the reply is "ok ..." or
 * "error ...".
 *
 * Environment from the driver: CL_NODES (number of nodes), CL_NS_<K> (the
 * namespace of node K), CL_SERVER (corosync | cpgd), CPG_TEST_CTL,
 * CPG_TEST_LIB (ours | system), CL_SCALE (percent, scales message counts;
 * default 100).
 *
 * Messages (struct cl_msg) carry their sender, sequence number, total length
 * and a hash of the body; the body is a deterministic function of (sender,
 * seq), so a receiver checks length, content and per-sender order of every
 * message it gets.
 */
#ifndef CPG_CLUSTER_CL_H
#define CPG_CLUSTER_CL_H

#include "tap.h"
#include <sched.h>
#include <sys/resource.h>

/* ---------------------------------------------------------------- environment */

static int cl_nodes(void)
{
	const char *e = getenv("CL_NODES");
	int n = e ? atoi(e) : 0;
	return n > 0 ? n : 1;
}

static int cl_is_cpgd(void)
{
	const char *e = getenv("CL_SERVER");
	return e && strcmp(e, "cpgd") == 0;
}

/* scale a count by CL_SCALE percent (at least 1) */
static long cl_scaled(long n)
{
	const char *e = getenv("CL_SCALE");
	long pct = e ? atol(e) : 100;
	long v;
	if (pct <= 0)
		pct = 100;
	v = n * pct / 100;
	return v > 0 ? v : 1;
}

/* enter node K's network namespace (in a child, before any cpg call) */
static int cl_enter(int node)
{
	char var[32], path[300];
	const char *ns;
	int fd, rc;
	snprintf(var, sizeof var, "CL_NS_%d", node);
	ns = getenv(var);
	if (!ns || !*ns) {
		fprintf(stderr, "cl_enter: %s not set\n", var);
		return -1;
	}
	snprintf(path, sizeof path, "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cl_enter: open %s: %s\n", path, strerror(errno));
		return -1;
	}
	rc = setns(fd, CLONE_NEWNET);
	if (rc < 0)
		fprintf(stderr, "cl_enter: setns %s: %s\n", path, strerror(errno));
	close(fd);
	return rc;
}

/* ask the driver; returns 0 on "ok", reply text in reply */
static int cl_ctl(char *reply, size_t replysz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cl_ctl(char *reply, size_t replysz, const char *fmt, ...)
{
	char cmd[200], tmp[256];
	va_list ap;
	int rc;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (!reply) {
		reply = tmp;
		replysz = sizeof tmp;
	}
	reply[0] = 0;
	rc = t_harness(cmd, reply, replysz, 90000);
	t_note("driver: %s -> %s", cmd, reply[0] ? reply : "(no reply)");
	return rc;
}

/* current daemon pid of node K (0 if unknown / down) */
static pid_t cl_daemon_pid(int node)
{
	char r[128];
	if (cl_ctl(r, sizeof r, "pid %d", node) != 0)
		return 0;
	return (pid_t)atoi(r + 2);
}

/* VmRSS of a process in KiB (0 if unknown) */
static long cl_rss_kib(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long v = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			v = atol(line + 6);
			break;
		}
	fclose(f);
	return v;
}

/* ---------------------------------------------------------------- hashing */

/* 64-bit FNV-1a variant over 8-byte words (fast enough for MiBs) */
static uint64_t cl_hash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;
	uint64_t w;
	while (n >= 8) {
		memcpy(&w, c, 8);
		h = (h ^ w) * 1099511628211ULL;
		h ^= h >> 29;
		c += 8;
		n -= 8;
	}
	while (n--) {
		h = (h ^ *c++) * 1099511628211ULL;
	}
	return h;
}

static void cl_fill(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
	while (n >= 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p, &x, 8);
		p += 8;
		n -= 8;
	}
	while (n--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		*p++ = (unsigned char)x;
	}
}

/* ---------------------------------------------------------------- messages */

#define CL_MAGIC 0x434c4d53u
struct cl_msg {
	uint32_t magic;
	uint32_t sender; /* sender index, unique in the test */
	uint64_t seq;    /* per sender, from 0 */
	uint64_t len;    /* total length, this header included */
	uint64_t hash;   /* cl_hash of the body */
};

static uint64_t cl_seed(uint32_t sender, uint64_t seq)
{
	return ((uint64_t)sender << 40) ^ seq ^ 0x5bd1e995ULL;
}

/* build message (sender, seq) of len bytes (>= sizeof(struct cl_msg)) in buf */
static void cl_msg_make(void *buf, size_t len, uint32_t sender, uint64_t seq)
{
	struct cl_msg m;
	unsigned char *b = buf;
	cl_fill(b + sizeof m, len - sizeof m, cl_seed(sender, seq));
	m.magic = CL_MAGIC;
	m.sender = sender;
	m.seq = seq;
	m.len = len;
	m.hash = cl_hash(b + sizeof m, len - sizeof m, T_FNV_INIT);
	memcpy(b, &m, sizeof m);
}

/* check a delivered message: 0 ok, else writes why (length / content) */
static int cl_msg_check(const void *msg, size_t len, struct cl_msg *out, int full, char *why, size_t whysz)
{
	struct cl_msg m;
	const unsigned char *b = msg;
	if (!msg || len < sizeof m) {
		snprintf(why, whysz, "message of %zu bytes (too short for a header)", len);
		return -1;
	}
	memcpy(&m, b, sizeof m);
	if (out)
		*out = m;
	if (m.magic != CL_MAGIC) {
		snprintf(why, whysz, "bad magic 0x%x (len %zu)", m.magic, len);
		return -1;
	}
	if (m.len != len) {
		snprintf(why, whysz, "sender %u seq %" PRIu64 ": delivered %zu bytes, sent %" PRIu64, m.sender,
			 m.seq, len, m.len);
		return -1;
	}
	if (cl_hash(b + sizeof m, len - sizeof m, T_FNV_INIT) != m.hash) {
		snprintf(why, whysz, "sender %u seq %" PRIu64 ": body hash mismatch (%zu bytes)", m.sender, m.seq,
			 len);
		return -1;
	}
	if (full) {
		/* the body is exactly what the sender generated */
		uint64_t want;
		unsigned char *tmp = malloc(len);
		if (!tmp)
			abort();
		cl_fill(tmp, len - sizeof m, cl_seed(m.sender, m.seq));
		want = cl_hash(tmp, len - sizeof m, T_FNV_INIT);
		free(tmp);
		if (want != m.hash) {
			snprintf(why, whysz, "sender %u seq %" PRIu64 ": body is not the sender's", m.sender, m.seq);
			return -1;
		}
	}
	return 0;
}

/* the running hash of a delivered stream: folds in (nodeid, pid, sender, seq, body hash) */
static uint64_t cl_stream_fold(uint64_t h, uint32_t nodeid, uint32_t pid, const struct cl_msg *m)
{
	uint64_t t[4];
	t[0] = ((uint64_t)nodeid << 32) | pid;
	t[1] = m->sender;
	t[2] = m->seq;
	t[3] = m->hash ^ m->len;
	return cl_hash(t, sizeof t, h);
}

/* ---------------------------------------------------------------- member processes */

struct cl_proc {
	pid_t pid;
	int node;       /* 1..N */
	int idx;        /* index in the test */
	int up[2];      /* child -> parent */
	int down[2];    /* parent -> child */
	int status;     /* wait status, -1 = not reaped / timed out */
	int reaped;
};

/* fork a member that enters node's namespace and runs fn; fn's return value
 * is its exit status.  Returns 0 (parent) or -1. */
static int cl_spawn(struct cl_proc *p, int node, int idx, int (*fn)(struct cl_proc *self, void *arg), void *arg)
{
	memset(p, 0, sizeof *p);
	p->node = node;
	p->idx = idx;
	p->status = -1;
	if (pipe2(p->up, O_CLOEXEC) < 0 || pipe2(p->down, O_CLOEXEC) < 0)
		return -1;
	p->pid = t_fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		int rc;
		close(p->up[0]);
		close(p->down[1]);
		alarm(0);
		if (cl_enter(node) < 0)
			_exit(3);
		rc = fn(p, arg);
		fflush(stdout);
		_exit(rc);
	}
	close(p->up[1]);
	close(p->down[0]);
	return 0;
}

/* child side */
static int cl_report(struct cl_proc *self, const void *buf, size_t n)
{
	return t_write_all(self->up[1], buf, n);
}

/* child side: a byte from the parent within timeout_ms? returns it, or -1 */
static int cl_heard(struct cl_proc *self, int timeout_ms)
{
	struct pollfd pf = { self->down[0], POLLIN, 0 };
	unsigned char c;
	if (poll(&pf, 1, timeout_ms) <= 0)
		return -1;
	if (read(self->down[0], &c, 1) != 1)
		return 'q'; /* parent gone */
	return c;
}

/* parent side */
static int cl_tell(struct cl_proc *p, char c)
{
	return t_write_all(p->down[1], &c, 1);
}

static int cl_hear(struct cl_proc *p, void *buf, size_t n, int timeout_ms)
{
	return t_read_all(p->up[0], buf, n, timeout_ms);
}

/* parent side: reap with a deadline; SIGKILL (by pid) what is still running */
static void cl_reap(struct cl_proc *ps, int n, int timeout_ms)
{
	int64_t end = t_now_ms() + timeout_ms;
	int i, left;
	do {
		left = 0;
		for (i = 0; i < n; i++) {
			int st;
			if (ps[i].reaped || ps[i].pid <= 0)
				continue;
			if (waitpid(ps[i].pid, &st, WNOHANG) == ps[i].pid) {
				ps[i].status = st;
				ps[i].reaped = 1;
			} else {
				left++;
			}
		}
		if (left)
			t_sleep_ms(20);
	} while (left && t_now_ms() < end);
	for (i = 0; i < n; i++) {
		if (ps[i].reaped || ps[i].pid <= 0)
			continue;
		t_note("member %d (pid %d, node %d) still running after the deadline: SIGKILL", ps[i].idx,
		       (int)ps[i].pid, ps[i].node);
		kill(ps[i].pid, SIGKILL);
		waitpid(ps[i].pid, &ps[i].status, 0);
		ps[i].status = -1;
		ps[i].reaped = 1;
	}
	for (i = 0; i < n; i++) {
		if (ps[i].up[0] > 0)
			close(ps[i].up[0]);
		if (ps[i].down[1] > 0)
			close(ps[i].down[1]);
		ps[i].up[0] = ps[i].down[1] = -1;
	}
}

static int cl_exited_ok(const struct cl_proc *p)
{
	return p->reaped && p->status != -1 && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
}

/* ---------------------------------------------------------------- cpg helpers */

/* cpg_model_initialize (v1, totem confchg) retried on TRY_AGAIN / LIBRARY for up to ms */
static cs_error_t cl_init(cpg_handle_t *h, cpg_model_v1_data_t *md, int ms)
{
	int64_t end = t_now_ms() + ms;
	cs_error_t rc;
	for (;;) {
		rc = cpg_model_initialize(h, CPG_MODEL_V1, (cpg_model_data_t *)md, NULL);
		if (rc == CS_OK || t_now_ms() > end)
			return rc;
		if (rc != CS_ERR_TRY_AGAIN && rc != CS_ERR_LIBRARY)
			return rc;
		t_sleep_ms(100);
	}
}

static cs_error_t cl_join(cpg_handle_t h, const struct cpg_name *g, int ms)
{
	int64_t end = t_now_ms() + ms;
	cs_error_t rc;
	for (;;) {
		rc = cpg_join(h, g);
		if (rc != CS_ERR_TRY_AGAIN || t_now_ms() > end)
			return rc;
		t_sleep_ms(50);
	}
}

/* poll the handle's fd up to ms and dispatch everything; returns the dispatch result
 * (CS_OK also when nothing was there) */
static cs_error_t cl_dispatch(cpg_handle_t h, int fd, int ms)
{
	struct pollfd pf = { fd, POLLIN, 0 };
	int r = poll(&pf, 1, ms);
	if (r < 0 && errno != EINTR)
		return CS_ERR_LIBRARY;
	if (r <= 0)
		return CS_OK;
	return cpg_dispatch(h, CS_DISPATCH_ALL);
}

static void cl_fmt_addrs(char *buf, size_t n, const struct cpg_address *a, size_t cnt)
{
	t_fmt_addrs(buf, n, a, cnt);
}

#endif /* CPG_CLUSTER_CL_H */
