/*
 * finalize_thread_ours (ours-only: with the original, a dispatch blocked on
 * another thread stays blocked forever after cpg_finalize):
 *  - cpg_finalize from another thread wakes a thread blocked in
 *    cpg_dispatch(CS_DISPATCH_BLOCKING), and one blocked in CS_DISPATCH_ONE,
 *    which return CS_ERR_BAD_HANDLE promptly (< 2 s); finalize returns CS_OK
 *  - the finalized member really leaves: an observer process sees a PROCDOWN
 *    confchg for it while the process is still alive
 *  - cpg_finalize from inside a confchg callback and from inside the deliver
 *    callback of a fragmented (2 MiB) message: CS_OK there, dispatch returns
 *    CS_ERR_BAD_HANDLE right after the callback, no crash
 */
#include "tap.h"
#include <pthread.h>

static struct cpg_name g;

struct blocked { cpg_handle_t h; int mode; cs_error_t rc; int64_t t_end; volatile int done; };
static void *blocked_thread(void *a)
{
	struct blocked *b = a;
	b->rc = cpg_dispatch(b->h, (cs_dispatch_flags_t)b->mode);
	b->t_end = t_now_ms();
	b->done = 1;
	return NULL;
}

/* child: join g, block a thread in dispatch(mode), finalize from main thread */
static int member(int mode, int wfd, int rfd)
{
	cpg_handle_t h;
	struct t_rec r;
	struct blocked b = { 0 };
	pthread_t th;
	int32_t res[3];
	int64_t t0;
	struct timespec ts;
	char c;
	alarm(20);
	if (t_init(&h, &r) != CS_OK || cpg_join(h, &g) != CS_OK || !t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000))
		return 2;
	t_drain(h, 100);
	b.h = h;
	b.mode = mode;
	pthread_create(&th, NULL, blocked_thread, &b);
	t_sleep_ms(300);
	t0 = t_now_ms();
	res[0] = cpg_finalize(h);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	if (pthread_timedjoin_np(th, NULL, &ts) != 0) {
		res[1] = -1;
		res[2] = -1;
	} else {
		res[1] = b.rc;
		res[2] = (int32_t)(b.t_end - t0);
	}
	if (t_write_all(wfd, res, sizeof res) < 0)
		return 3;
	/* stay alive until the parent has checked the membership */
	(void)t_read_all(rfd, &c, 1, 15000);
	return 0;
}

static void wake_test(cpg_handle_t obs, struct t_rec *ro, int mode, const char *tag)
{
	int up[2], down[2];
	pid_t c;
	int32_t res[3] = { 0, 0, 0 };
	char name[96];
	if (pipe(up) < 0 || pipe(down) < 0)
		exit(1);
	c = t_fork();
	if (c == 0) {
		close(up[0]);
		close(down[1]);
		_exit(member(mode, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	snprintf(name, sizeof name, "%s_member_joined", tag);
	CHECK(name, t_wait_members(obs, ro, &g, 2, 5000), "member did not join");
	snprintf(name, sizeof name, "%s_report", tag);
	if (t_read_all(up[0], res, sizeof res, 10000) < 0) {
		t_fail(name, "no report from the member process");
	} else {
		snprintf(name, sizeof name, "%s_finalize_ok", tag);
		CHECK(name, res[0] == CS_OK, "cpg_finalize returned %s", t_err((cs_error_t)res[0]));
		snprintf(name, sizeof name, "%s_blocked_dispatch_returns_bad_handle", tag);
		CHECK(name, res[1] == CS_ERR_BAD_HANDLE && res[2] < 2000,
		      res[1] == -1 ? "dispatch still blocked 3 s after cpg_finalize" : "returned %s after %d ms",
		      t_err((cs_error_t)res[1]), (int)res[2]);
	}
	{
		struct cpg_address m[1] = { { 1, (uint32_t)getpid(), 0 } };
		struct cpg_address l[1] = { { 1, (uint32_t)c, CPG_REASON_PROCDOWN } };
		snprintf(name, sizeof name, "%s_member_leaves_while_alive", tag);
		if (t_wait_members(obs, ro, &g, 1, 5000))
			t_check_confchg(name, t_last(ro, T_EV_CONFCHG), m, 1, l, 1, NULL, 0);
		else
			t_fail(name, "the finalized process is still a member");
	}
	(void)!write(down[1], "x", 1);
	close(down[1]);
	close(up[0]);
	{
		int st = t_wait_child(c, 10000);
		char why[64];
		t_fmt_status(why, sizeof why, st);
		snprintf(name, sizeof name, "%s_member_exit", tag);
		CHECK(name, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", why);
	}
}

/* finalize inside callbacks */
static int fin_rc = -1, fin_calls;
static void fin_hook(struct t_rec *r, struct t_ev *e)
{
	(void)e;
	fin_calls++;
	if (fin_calls == 1)
		fin_rc = cpg_finalize(r->handle);
}

static void in_callback(int confchg)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name g2;
	cs_error_t rc;
	const char *tag = confchg ? "finalize_in_confchg_callback" : "finalize_in_fragmented_deliver_callback";
	char name[96];

	fin_rc = -1;
	fin_calls = 0;
	t_name(&g2, "finalize_thread_ours-cb%d-%d", confchg, (int)getpid());
	REQUIRE_RC(tag, t_init(&h, &r), CS_OK);
	if (cpg_join(h, &g2) != CS_OK) {
		t_fail(tag, "join failed");
		return;
	}
	if (!confchg) {
		size_t sz = 2 * 1024 * 1024;
		unsigned char *b = calloc(1, sz);
		struct iovec iov = { b, sz };
		t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);
		rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		free(b);
		if (rc != CS_OK) {
			t_fail(tag, "mcast returned %s", t_err(rc));
			cpg_finalize(h);
			return;
		}
		/* a second one stays pending */
		iov.iov_len = 10;
		iov.iov_base = "second";
		cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
	}
	{
		struct pollfd p = { t_fd(h), POLLIN, 0 };
		poll(&p, 1, 3000);
	}
	r.hook = fin_hook;
	{
		int64_t end = t_now_ms() + 5000;
		do {
			rc = cpg_dispatch(h, CS_DISPATCH_ALL);
			if (rc == CS_OK)
				t_sleep_ms(10);
		} while (rc == CS_OK && fin_calls == 0 && t_now_ms() < end);
	}
	snprintf(name, sizeof name, "%s_dispatch_bad_handle", tag);
	CHECK(name, rc == CS_ERR_BAD_HANDLE, "dispatch returned %s", t_err(rc));
	snprintf(name, sizeof name, "%s_finalize_ok", tag);
	CHECK(name, fin_rc == CS_OK, "cpg_finalize in the callback returned %s", t_err((cs_error_t)fin_rc));
	snprintf(name, sizeof name, "%s_no_more_callbacks", tag);
	CHECK(name, fin_calls == 1, "%d callbacks ran", fin_calls);
	snprintf(name, sizeof name, "%s_handle_gone", tag);
	CHECK_RC(name, cpg_dispatch(h, CS_DISPATCH_ALL), CS_ERR_BAD_HANDLE);
	t_rec_free(&r);
}

int main(int argc, char **argv)
{
	cpg_handle_t obs;
	struct t_rec ro;

	(void)argc;
	t_start(argv[0], 60);
	t_ours_only();
	t_name(&g, "finalize_thread_ours-%d", (int)getpid());
	REQUIRE_RC("observer_initialize", t_init(&obs, &ro), CS_OK);
	REQUIRE_RC("observer_join", cpg_join(obs, &g), CS_OK);
	t_wait_events(obs, &ro, T_EV_CONFCHG, 1, 5000);
	wake_test(obs, &ro, CS_DISPATCH_BLOCKING, "blocking");
	wake_test(obs, &ro, CS_DISPATCH_ONE, "one");
	in_callback(1);
	in_callback(0);
	CHECK_RC("observer_finalize", cpg_finalize(obs), CS_OK);
	t_rec_free(&ro);
	return t_done();
}
