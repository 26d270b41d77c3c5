/*
 * dispatch_flags_ours (ours-only: the original treats unknown dispatch flags
 * like CS_DISPATCH_BLOCKING and never returns): cpg_dispatch with flags 0, 5,
 * 99 and -1 returns CS_ERR_INVALID_PARAM at once (< 1 s, also with an event
 * pending, which stays pending), and the handle keeps working.
 */
#include "tap.h"

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name g;
	int flags[] = { 0, 5, 99, -1 };
	unsigned i;
	char name[64];
	struct iovec iov = { "x", 1 };

	(void)argc;
	t_start(argv[0], 30);
	t_ours_only();
	t_name(&g, "dispatch_flags_ours-%d", (int)getpid());
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);
	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		int64_t t0 = t_now_ms(), dt;
		cs_error_t rc;
		alarm(10);
		rc = cpg_dispatch(h, (cs_dispatch_flags_t)flags[i]);
		dt = t_now_ms() - t0;
		snprintf(name, sizeof name, "flag_%d_idle_invalid_param", flags[i]);
		CHECK(name, rc == CS_ERR_INVALID_PARAM && dt < 1000, "returned %s after %" PRId64 " ms", t_err(rc), dt);
	}
	/* with an event pending: refused, the event stays for a valid dispatch */
	CHECK_RC("mcast", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	{
		struct pollfd p = { t_fd(h), POLLIN, 0 };
		poll(&p, 1, 3000);
	}
	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		cs_error_t rc;
		alarm(10);
		rc = cpg_dispatch(h, (cs_dispatch_flags_t)flags[i]);
		snprintf(name, sizeof name, "flag_%d_pending_invalid_param", flags[i]);
		CHECK(name, rc == CS_ERR_INVALID_PARAM, "returned %s", t_err(rc));
	}
	alarm(30);
	CHECK("event_not_consumed", r.ndeliver == 0, "%zu callbacks ran", r.ndeliver);
	CHECK("event_still_delivered", t_wait_events(h, &r, T_EV_DELIVER, 1, 3000), "pending event lost");
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	return t_done();
}
