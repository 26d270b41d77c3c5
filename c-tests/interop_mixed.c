/*
 * interop_mixed: two processes, each with its own libcpg chosen at exec time:
 * process A runs with LD_LIBRARY_PATH=$CPG_LIB_A, process B with
 * LD_LIBRARY_PATH=$CPG_LIB_B (unset, empty or "system" = the system library).
 * run.sh sets A to the library under test and B to the other one, so with both
 * libraries present one process uses the original and the other ours.
 * Both join one group and each multicasts 0 B, 1 B, 1000 B, 64 KiB, 1047552 B
 * (unfragmented), 1047553 B and 3000000 B (fragmented) plus 20 small messages,
 * interleaved.  Each process must receive all messages of both, intact (length
 * + content hash), per-sender in order, and both must see the same total order.
 */
#include "tap.h"

static const size_t sizes[] = { 0, 1, 1000, 65536, 1047552, 1047553, 3000000 };
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define NSMALL 20
#define NPER (NSIZES + NSMALL)
#define NTOTAL (2 * NPER)

static size_t size_of(int k) { return k < (int)NSIZES ? sizes[k] : (size_t)(10 + k); }
static uint64_t seed_of(int role, int k) { return (uint64_t)role * 1000 + (uint64_t)k; }

struct rec { uint32_t role, k, ok, pad; };

/* ------------------------------------------------------------ child */

static struct cpg_name g;
static uint32_t pid_of[2];
static struct rec got[NTOTAL + 8];
static int ngot, nextk[2];
static size_t nmembers;

static void c_deliver(cpg_handle_t h, const struct cpg_name *gn, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	int role;
	unsigned char *want;
	size_t wl;
	(void)h; (void)nodeid;
	if (!t_name_eq(gn, &g))
		return;
	role = pid == pid_of[0] ? 0 : pid == pid_of[1] ? 1 : 9;
	if (ngot >= (int)(NTOTAL + 8))
		return;
	got[ngot].role = (uint32_t)role;
	got[ngot].k = role < 2 ? (uint32_t)nextk[role] : 999;
	got[ngot].ok = 0;
	if (role < 2 && nextk[role] < (int)NPER) {
		wl = size_of(nextk[role]);
		want = malloc(wl ? wl : 1);
		t_fill(want, wl, seed_of(role, nextk[role]));
		got[ngot].ok = len == wl && (len == 0 || memcmp(want, msg, len) == 0) && nodeid == 1;
		free(want);
		nextk[role]++;
	}
	ngot++;
}

static void c_confchg(cpg_handle_t h, const struct cpg_name *gn, const struct cpg_address *m, size_t nm,
		      const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj)
{
	(void)h; (void)gn; (void)m; (void)l; (void)nl; (void)j; (void)nj;
	nmembers = nm;
}

static int p_members(void *a) { (void)a; return nmembers == 2; }
static int p_all(void *a) { (void)a; return ngot >= (int)NTOTAL; }

static int child_main(int role, int fd, const char *group, uint32_t pa, uint32_t pb)
{
	cpg_callbacks_t cb = { c_deliver, c_confchg };
	cpg_handle_t h;
	cs_error_t rc;
	int k, tries = 0;
	char line[600];
	int64_t end;

	alarm(60);
	t_name(&g, "%s", group);
	pid_of[0] = pa;
	pid_of[1] = pb;
	snprintf(line, sizeof line, "%s", t_lib_path());
	if (t_write_all(fd, line, sizeof line) < 0)
		return 2;
	end = t_now_ms() + 5000;
	while ((rc = cpg_initialize(&h, &cb)) == CS_ERR_TRY_AGAIN && t_now_ms() < end)
		t_sleep_ms(50);
	if (rc != CS_OK)
		return 3;
	if (cpg_join(h, &g) != CS_OK)
		return 4;
	if (!t_pump(h, 15000, p_members, NULL))
		return 5;
	/* interleave: big ones in order, a few small ones after each */
	for (k = 0; k < (int)NPER; k++) {
		size_t len = size_of(k);
		unsigned char *b = malloc(len ? len : 1);
		struct iovec iov = { b, len };
		t_fill(b, len, seed_of(role, k));
		end = t_now_ms() + 20000;
		while ((rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN && t_now_ms() < end) {
			tries++;
			t_pump(h, 10, NULL, NULL);
		}
		free(b);
		if (rc != CS_OK) {
			fprintf(stderr, "child %d: mcast %d (%zu bytes) returned %d\n", role, k, len, (int)rc);
			return 6;
		}
		cpg_dispatch(h, CS_DISPATCH_ALL);
	}
	t_pump(h, 30000, p_all, NULL);
	if (t_write_all(fd, &ngot, sizeof ngot) < 0 || t_write_all(fd, &tries, sizeof tries) < 0 ||
	    t_write_all(fd, got, sizeof got) < 0)
		return 7;
	close(fd);
	/* wait until the peer has everything too (the parent closes our stdin) */
	{
		char c;
		(void)t_read_all(0, &c, 1, 30000);
	}
	cpg_finalize(h);
	return 0;
}

/* ------------------------------------------------------------ parent */

static const char *libdir(const char *var)
{
	const char *v = getenv(var);
	if (!v || !*v || strcmp(v, "system") == 0)
		return NULL;
	return v;
}

int main(int argc, char **argv)
{
	int i;
	pid_t pid[2];
	int fds[2][2], go[2][2], in[2][2];
	char group[CPG_MAX_NAME_LENGTH];
	struct rec *seq[2];
	int n[2] = { 0, 0 };

	if (argc == 7 && strcmp(argv[1], "--child") == 0) {
		t_start(argv[0], 70);
		return child_main(atoi(argv[2]), atoi(argv[3]), argv[4], (uint32_t)strtoul(argv[5], NULL, 10),
				  (uint32_t)strtoul(argv[6], NULL, 10));
	}
	t_start(argv[0], 100);
	snprintf(group, sizeof group, "interop_mixed-%d", (int)getpid());
	t_note("process A library dir: %s, process B: %s", libdir("CPG_LIB_A") ? libdir("CPG_LIB_A") : "(system)",
	       libdir("CPG_LIB_B") ? libdir("CPG_LIB_B") : "(system)");

	/* children wait for the pid list on a pipe, then exec themselves */
	for (i = 0; i < 2; i++) {
		if (pipe2(fds[i], O_CLOEXEC) < 0 || pipe2(go[i], O_CLOEXEC) < 0 || pipe2(in[i], O_CLOEXEC) < 0)
			return 1;
	}
	for (i = 0; i < 2; i++) {
		pid[i] = t_fork();
		if (pid[i] == 0) {
			uint32_t pids[2];
			char a[4][32];
			const char *dir = libdir(i == 0 ? "CPG_LIB_A" : "CPG_LIB_B");
			if (t_read_all(go[i][0], pids, sizeof pids, 10000) < 0)
				_exit(20);
			/* only stdin (end-of-test signal) and fd 3 (report) survive exec */
			dup2(in[i][0], 0);
			dup2(fds[i][1], 3);
			snprintf(a[0], sizeof a[0], "%d", i);
			snprintf(a[1], sizeof a[1], "%d", 3);
			snprintf(a[2], sizeof a[2], "%u", pids[0]);
			snprintf(a[3], sizeof a[3], "%u", pids[1]);
			if (dir)
				setenv("LD_LIBRARY_PATH", dir, 1);
			else
				unsetenv("LD_LIBRARY_PATH");
			execl("/proc/self/exe", argv[0], "--child", a[0], a[1], group, a[2], a[3], (char *)NULL);
			_exit(21);
		}
	}
	for (i = 0; i < 2; i++) {
		uint32_t pids[2] = { (uint32_t)pid[0], (uint32_t)pid[1] };
		close(fds[i][1]);
		close(go[i][0]);
		close(in[i][0]);
		t_write_all(go[i][1], pids, sizeof pids);
		close(go[i][1]);
	}
	for (i = 0; i < 2; i++) {
		char line[600], name[64];
		int tries = 0;
		seq[i] = calloc(NTOTAL + 8, sizeof(struct rec));
		snprintf(name, sizeof name, "process_%c_library", 'A' + i);
		if (t_read_all(fds[i][0], line, sizeof line, 20000) < 0) {
			t_fail(name, "process %c did not start", 'A' + i);
			continue;
		}
		{
			const char *dir = libdir(i == 0 ? "CPG_LIB_A" : "CPG_LIB_B");
			int ok;
			if (dir) {
				char *rd = realpath(dir, NULL);
				ok = rd && strncmp(line, rd, strlen(rd)) == 0;
				free(rd);
			} else {
				ok = strncmp(line, "/usr/lib/", 9) == 0 || strncmp(line, "/lib/", 5) == 0;
			}
			CHECK(name, ok, "loaded %s, expected it from %s", line, dir ? dir : "the system");
			t_note("process %c uses %s", 'A' + i, line);
		}
		snprintf(name, sizeof name, "process_%c_report", 'A' + i);
		if (t_read_all(fds[i][0], &n[i], sizeof n[i], 60000) < 0 || t_read_all(fds[i][0], &tries, sizeof tries, 5000) < 0 ||
		    t_read_all(fds[i][0], seq[i], (NTOTAL + 8) * sizeof(struct rec), 5000) < 0) {
			t_fail(name, "no report from process %c", 'A' + i);
			n[i] = 0;
			continue;
		}
		t_pass(name);
		if (tries)
			t_note("process %c retried %d CS_ERR_TRY_AGAIN sends", 'A' + i, tries);
	}
	for (i = 0; i < 2; i++)
		close(in[i][1]);
	for (i = 0; i < 2; i++) {
		char name[64], why[64];
		int st = t_wait_child(pid[i], 20000);
		t_fmt_status(why, sizeof why, st);
		snprintf(name, sizeof name, "process_%c_exit", 'A' + i);
		CHECK(name, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", why);
	}
	for (i = 0; i < 2; i++) {
		char name[64];
		int k, bad = -1, from[2] = { 0, 0 };
		for (k = 0; k < n[i] && k < (int)NTOTAL; k++) {
			if (seq[i][k].role > 1 || !seq[i][k].ok) {
				if (bad < 0)
					bad = k;
			} else {
				from[seq[i][k].role]++;
			}
		}
		snprintf(name, sizeof name, "process_%c_received_all", 'A' + i);
		CHECK(name, n[i] == (int)NTOTAL && from[0] == (int)NPER && from[1] == (int)NPER,
		      "received %d (from A %d, from B %d), expected %d each", n[i], from[0], from[1], (int)NPER);
		snprintf(name, sizeof name, "process_%c_all_intact", 'A' + i);
		if (bad >= 0)
			t_fail(name, "delivery %d (message %u of %c, %zu bytes) wrong sender, length or content", bad,
			       seq[i][bad].k, 'A' + (int)seq[i][bad].role, size_of((int)seq[i][bad].k));
		else
			t_pass(name);
	}
	{
		int k, diff = -1;
		for (k = 0; k < n[0] && k < n[1]; k++)
			if (seq[0][k].role != seq[1][k].role || seq[0][k].k != seq[1][k].k) {
				diff = k;
				break;
			}
		CHECK("same_total_order", diff < 0 && n[0] == n[1] && n[0] == (int)NTOTAL,
		      "orders differ at %d (counts %d/%d)", diff, n[0], n[1]);
	}
	free(seq[0]);
	free(seq[1]);
	return t_done();
}
