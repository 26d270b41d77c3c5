/*
 * dispatch_modes: cpg_dispatch in all four modes (spec 5.2).
 *  - ONE_NONBLOCKING with nothing pending -> CS_ERR_TRY_AGAIN
 *  - ALL with nothing pending -> CS_OK at once
 *  - with 5 pending messages: ONE runs exactly one callback, ONE_NONBLOCKING
 *    exactly one, ALL the remaining three, then ONE_NONBLOCKING -> TRY_AGAIN
 *  - ONE with nothing pending blocks until an event arrives (sent by another
 *    thread 400 ms later), then returns CS_OK after exactly one callback
 *  - BLOCKING keeps dispatching (messages arriving over time) until a callback
 *    calls cpg_finalize on its own handle: finalize returns CS_OK inside the
 *    callback, other calls there return BAD_HANDLE, dispatch returns
 *    CS_ERR_BAD_HANDLE right after that callback, leaving later events
 *    undispatched, and later calls return BAD_HANDLE.
 */
#include "tap.h"
#include <pthread.h>

static struct cpg_name g;

static int send_msg(cpg_handle_t h, const char *s)
{
	struct iovec iov = { (void *)s, strlen(s) };
	return cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1) == CS_OK;
}

/* wait until the fd is readable, then give the daemon time to queue the rest */
static void settle(cpg_handle_t h, int ms)
{
	struct pollfd p = { t_fd(h), POLLIN, 0 };
	poll(&p, 1, 3000);
	t_sleep_ms(ms);
}

struct sender_arg { cpg_handle_t h; int delay_ms; int count; int gap_ms; };
static void *sender_thread(void *a)
{
	struct sender_arg *s = a;
	int i;
	t_sleep_ms(s->delay_ms);
	for (i = 0; i < s->count; i++) {
		char buf[32];
		snprintf(buf, sizeof buf, "late-%d", i);
		send_msg(s->h, buf);
		if (s->gap_ms)
			t_sleep_ms(s->gap_ms);
	}
	return NULL;
}

/* BLOCKING: finalize from inside the 3rd delivery callback */
static int fin_calls, fin_rc_inside, fin_fd_rc_inside, fin_done;
static void fin_hook(struct t_rec *r, struct t_ev *e)
{
	int fd;
	if (e->type != T_EV_DELIVER)
		return;
	fin_calls++;
	if (fin_calls == 3 && !fin_done) {
		fin_done = 1;
		fin_rc_inside = cpg_finalize(r->handle);
		fin_fd_rc_inside = cpg_fd_get(r->handle, &fd);
	}
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	int64_t t0, dt;
	size_t before;
	cs_error_t rc;
	int i;
	pthread_t th;
	struct sender_arg sa;

	(void)argc;
	t_start(argv[0], 60);
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	t_name(&g, "dispatch_modes-%d", (int)getpid());
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	REQUIRE("join_confchg", t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000), "no join confchg");
	t_drain(h, 100);

	/* idle */
	CHECK_RC("one_nonblocking_idle_try_again", cpg_dispatch(h, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
	t0 = t_now_ms();
	CHECK_RC("all_idle_ok", cpg_dispatch(h, CS_DISPATCH_ALL), CS_OK);
	dt = t_now_ms() - t0;
	CHECK("all_idle_returns_at_once", dt < 500, "took %" PRId64 " ms", dt);

	/* five pending messages */
	for (i = 0; i < 5; i++) {
		char buf[16];
		snprintf(buf, sizeof buf, "m%d", i);
		if (!send_msg(h, buf))
			t_fail("mcast", "send %d failed", i);
	}
	settle(h, 500);
	before = r.ndeliver;
	CHECK_RC("one_pending_ok", cpg_dispatch(h, CS_DISPATCH_ONE), CS_OK);
	CHECK("one_runs_one_callback", r.ndeliver == before + 1, "%zu callbacks", r.ndeliver - before);
	CHECK_RC("one_nonblocking_pending_ok", cpg_dispatch(h, CS_DISPATCH_ONE_NONBLOCKING), CS_OK);
	CHECK("one_nonblocking_runs_one_callback", r.ndeliver == before + 2, "%zu callbacks", r.ndeliver - before);
	CHECK_RC("all_pending_ok", cpg_dispatch(h, CS_DISPATCH_ALL), CS_OK);
	CHECK("all_runs_remaining_callbacks", r.ndeliver == before + 5, "%zu callbacks in total, expected 5",
	      r.ndeliver - before);
	CHECK("order_preserved", r.ndeliver >= 5 && memcmp(r.ev[r.n - 5].head, "m0", 2) == 0 &&
				 memcmp(r.ev[r.n - 1].head, "m4", 2) == 0,
	      "messages out of order");
	CHECK_RC("one_nonblocking_after_all_try_again", cpg_dispatch(h, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);

	/* ONE blocks while idle */
	sa.h = h;
	sa.delay_ms = 400;
	sa.count = 1;
	sa.gap_ms = 0;
	before = r.ndeliver;
	pthread_create(&th, NULL, sender_thread, &sa);
	t0 = t_now_ms();
	rc = cpg_dispatch(h, CS_DISPATCH_ONE);
	dt = t_now_ms() - t0;
	pthread_join(th, NULL);
	CHECK("one_blocks_until_event", rc == CS_OK && r.ndeliver == before + 1 && dt >= 300,
	      "rc %s, %zu callbacks, returned after %" PRId64 " ms", t_err(rc), r.ndeliver - before, dt);

	/* BLOCKING: keeps going across gaps, ends via finalize in a callback */
	before = r.ndeliver;
	r.hook = fin_hook;
	sa.delay_ms = 200;
	sa.count = 4;     /* the 4th stays undispatched */
	sa.gap_ms = 150;
	pthread_create(&th, NULL, sender_thread, &sa);
	t0 = t_now_ms();
	rc = cpg_dispatch(h, CS_DISPATCH_BLOCKING);
	dt = t_now_ms() - t0;
	pthread_join(th, NULL);
	CHECK("blocking_returns_bad_handle_after_finalize_in_callback", rc == CS_ERR_BAD_HANDLE,
	      "cpg_dispatch(BLOCKING) returned %s", t_err(rc));
	CHECK("blocking_dispatched_across_gaps", fin_calls == 3 && dt >= 400,
	      "%d callbacks, returned after %" PRId64 " ms", fin_calls, dt);
	CHECK("finalize_inside_callback_ok", fin_rc_inside == CS_OK, "cpg_finalize in callback returned %s",
	      t_err(fin_rc_inside));
	CHECK("call_after_finalize_inside_callback_bad_handle", fin_fd_rc_inside == CS_ERR_BAD_HANDLE,
	      "cpg_fd_get in callback after finalize returned %s", t_err(fin_fd_rc_inside));
	CHECK("no_callback_after_finalize", r.ndeliver == before + 3, "%zu callbacks", r.ndeliver - before);
	CHECK_RC("dispatch_after_finalize_bad_handle", cpg_dispatch(h, CS_DISPATCH_ALL), CS_ERR_BAD_HANDLE);
	CHECK_RC("finalize_again_bad_handle", cpg_finalize(h), CS_ERR_BAD_HANDLE);
	t_rec_free(&r);
	return t_done();
}
