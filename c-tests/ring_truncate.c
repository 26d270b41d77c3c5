/*
 * ring_truncate: a client that shrinks its own ring files under the server
 * (it owns them and may ftruncate them) is disconnected; the server lives on.
 *
 * Touching a mapped page past the new end of a file raises SIGBUS. corosync
 * 3.1.7 dies of it (every client of the node loses its connection), so this
 * runs against cpgd only, whose SIGBUS guard puts zero pages in place of the
 * shrunk mapping and drops that one connection (docs/reliability.md).
 *
 * Parent A is a member of group G throughout. Two offenders, one at a time:
 *  1. event data: a child joins G, truncates its qb-event-cpg-data and
 *     qb-event-cpg-header to 0, then sits still; A multicasts, so the server
 *     writes the delivery into the shrunk ring.
 *  2. response header: a child joins G, truncates its qb-response-cpg-header
 *     and calls cpg_local_get, so the server writes the reply into it (the
 *     child's own library then faults reading it: its death is expected).
 * After each: A receives its own message; A gets a confchg with the child in
 * `left` (PROCDOWN) -- in case 1 while the child is still alive; the child's
 * connection directory is gone; the server process is alive; a new client
 * can join (another group), multicast and receive. Skipped in socket mode (no ring files).
 */
#include "tap.h"
#include <glob.h>

static struct cpg_name g;

/* the connection directory of process `pid` (first match), or "" */
static void conn_dir(pid_t pid, char *out, size_t n)
{
	char pat[128];
	glob_t gl;
	out[0] = 0;
	snprintf(pat, sizeof pat, "/dev/shm/qb-*-%d-*", (int)pid);
	if (glob(pat, 0, NULL, &gl) == 0) {
		if (gl.gl_pathc)
			snprintf(out, n, "%s", gl.gl_pathv[0]);
		globfree(&gl);
	}
}

static int shrink(const char *dir, const char *file)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	return truncate(path, 0);
}

/* child: join, report the directory, shrink, then (case 2) make a request */
static void offender(int kase, int wfd, int rfd)
{
	cpg_handle_t h;
	struct t_rec r;
	char dir[400], c;
	if (t_init(&h, &r) != CS_OK || cpg_join(h, &g) != CS_OK)
		_exit(3);
	conn_dir(getpid(), dir, sizeof dir);
	{
		char ring[512];
		snprintf(ring, sizeof ring, "%s/qb-event-cpg-data", dir);
		if (!dir[0] || access(ring, F_OK) != 0) {
			/* socket mode: no directory, or only a control file */
			(void)t_write_all(wfd, "s", 1);
			_exit(T_EXIT_SKIP);
		}
	}
	if (kase == 1) {
		if (shrink(dir, "qb-event-cpg-data") || shrink(dir, "qb-event-cpg-header"))
			_exit(4);
		(void)t_write_all(wfd, "t", 1);
		/* never dispatch: the parent SIGKILLs us when it is done */
		(void)t_read_all(rfd, &c, 1, 60000);
		_exit(0);
	} else {
		unsigned int nodeid;
		if (shrink(dir, "qb-response-cpg-header"))
			_exit(4);
		(void)t_write_all(wfd, "t", 1);
		(void)cpg_local_get(h, &nodeid);
		(void)t_read_all(rfd, &c, 1, 60000);
		_exit(0);
	}
}

/* a live process, not a zombie (the harness reaps its daemon late) */
static int alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

struct self_msg { struct t_rec *r; const char *text; };
static int got_text(void *a)
{
	struct self_msg *s = a;
	size_t i;
	for (i = 0; i < s->r->n; i++) {
		struct t_ev *e = &s->r->ev[i];
		if (e->type == T_EV_DELIVER && e->pid == (uint32_t)getpid() && e->len == strlen(s->text) &&
		    memcmp(e->head, s->text, e->len) == 0)
			return 1;
	}
	return 0;
}

struct left_pred { struct t_rec *r; pid_t pid; uint32_t reason; };
static int child_left(void *a)
{
	struct left_pred *p = a;
	size_t i, k;
	for (i = 0; i < p->r->n; i++) {
		struct t_ev *e = &p->r->ev[i];
		if (e->type != T_EV_CONFCHG)
			continue;
		for (k = 0; k < e->nl; k++)
			if (e->left[k].pid == (uint32_t)p->pid) {
				p->reason = e->left[k].reason;
				return 1;
			}
	}
	return 0;
}

static void fresh_client_works(const char *check, int kase)
{
	struct cpg_name fg;
	cpg_handle_t h;
	struct t_rec r;
	struct self_msg want = { &r, "fresh" };
	struct iovec iov = { (void *)"fresh", 5 };
	cs_error_t rc = t_init(&h, &r);
	/* a second join of G by this process would be CS_ERR_EXIST */
	t_name(&fg, "truncate-fresh-%d-%d", (int)getpid(), kase);
	if (rc == CS_OK)
		rc = cpg_join(h, &fg);
	if (rc == CS_OK)
		rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
	CHECK(check, rc == CS_OK && t_pump(h, 10000, got_text, &want), "rc %s, own message %s", t_err(rc),
	      rc == CS_OK ? "not received" : "not sent");
	if (rc != CS_ERR_LIBRARY)
		cpg_finalize(h);
	t_rec_detach(&r);
	t_rec_free(&r);
}

static void one_case(cpg_handle_t a, struct t_rec *ra, int kase)
{
	const char *tag = kase == 1 ? "event_ring" : "response_header";
	char check[96], dir[400], c = 0, why[64];
	int up[2], down[2], st;
	pid_t child, daemon = t_daemon_pid();
	struct left_pred lp;
	struct self_msg mine;
	char text[32];
	struct iovec iov;

	if (pipe(up) < 0 || pipe(down) < 0)
		exit(1);
	child = t_fork();
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		offender(kase, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	snprintf(check, sizeof check, "%s/child_truncated", tag);
	REQUIRE(check, t_read_all(up[0], &c, 1, 15000) == 0 && (c == 't' || c == 's'), "child did not report");
	if (c == 's') {
		t_wait_child(child, 5000);
		t_skip_all("socket mode: there are no ring files to truncate");
	}
	conn_dir(child, dir, sizeof dir);

	/* case 1: our multicast makes the server write into the shrunk ring */
	snprintf(text, sizeof text, "after-%d", kase);
	iov.iov_base = text;
	iov.iov_len = strlen(text);
	snprintf(check, sizeof check, "%s/mcast", tag);
	CHECK_RC(check, cpg_mcast_joined(a, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	mine.r = ra;
	mine.text = text;
	snprintf(check, sizeof check, "%s/own_message_delivered", tag);
	CHECK(check, t_pump(a, 10000, got_text, &mine), "no delivery of our own message");

	lp.r = ra;
	lp.pid = child;
	lp.reason = 0;
	snprintf(check, sizeof check, "%s/child_left_procdown", tag);
	CHECK(check, t_pump(a, 10000, child_left, &lp) && lp.reason == CPG_REASON_PROCDOWN,
	      "confchg with the child in left: %s (reason %u)", child_left(&lp) ? "yes" : "no", lp.reason);
	if (kase == 1) {
		snprintf(check, sizeof check, "%s/child_still_alive", tag);
		CHECK(check, waitpid(child, &st, WNOHANG) == 0, "the child is gone: the confchg may be its death");
	}
	snprintf(check, sizeof check, "%s/server_alive", tag);
	CHECK(check, daemon <= 0 || alive(daemon), "server pid %d is gone", (int)daemon);
	snprintf(check, sizeof check, "%s/connection_files_removed", tag);
	{
		int64_t end = t_now_ms() + 5000;
		while (access(dir, F_OK) == 0 && t_now_ms() < end)
			t_sleep_ms(20);
		CHECK(check, access(dir, F_OK) != 0, "%s still exists", dir);
	}
	snprintf(check, sizeof check, "%s/new_client_works", tag);
	fresh_client_works(check, kase);

	kill(child, SIGKILL);
	st = t_wait_child(child, 5000);
	t_fmt_status(why, sizeof why, st);
	t_note("%s: offender ended: %s", tag, why);
	close(up[0]);
	close(down[1]);
}

int main(int argc, char **argv)
{
	const char *srv = getenv("CPG_TEST_SERVER");
	cpg_handle_t a;
	struct t_rec ra;

	(void)argc;
	t_start(argv[0], 90);
	if (!srv || strcmp(srv, "cpgd") != 0)
		t_skip_all("cpgd only: corosync 3.1.7 dies of SIGBUS here (docs/reliability.md)");
	t_name(&g, "truncate-%d", (int)getpid());
	REQUIRE_RC("initialize", t_init(&a, &ra), CS_OK);
	REQUIRE_RC("join", cpg_join(a, &g), CS_OK);
	one_case(a, &ra, 1);
	one_case(a, &ra, 2);
	cpg_finalize(a);
	return t_done();
}
