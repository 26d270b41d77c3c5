/*
 * quirks: well-defined but odd behaviours of the original library and of
 * corosync 3.1.7 (spec 5.1, 6.2, 7.6) that a faithful drop-in reproduces.
 * Kept apart so a server that fixes the upstream defects deliberately
 * (e.g. our own cpgd) can be judged separately (run.sh --exclude quirks).
 *  - library: a valid slot with check bits 0xFFFFFFFF is accepted (CS_OK)
 *  - daemon: after cpg_leave the connection is never reset: joining the same
 *    group again on the left handle -> CS_ERR_EXIST, and the left handle keeps
 *    receiving the group's messages and confchgs
 *  - daemon: cpg_iteration_next after CS_ERR_NO_SECTIONS starts over (wraps)
 */
#include "tap.h"

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name g;
	int fd = -1, up[2], down[2];
	pid_t c;
	char x;

	(void)argc;
	t_start(argv[0], 40);
	t_name(&g, "quirks-%d", (int)getpid());
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);

	CHECK_RC("wildcard_check_bits_accepted", cpg_fd_get(0xFFFFFFFF00000000ULL | (h & 0xFFFFFFFFULL), &fd), CS_OK);

	/* iteration wraps after NO_SECTIONS */
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);
	{
		cpg_iteration_handle_t ih;
		struct cpg_iteration_description_t d;
		if (CHECK_RC("iteration_initialize", cpg_iteration_initialize(h, CPG_ITERATION_ONE_GROUP, &g, &ih), CS_OK)) {
			CHECK_RC("iteration_first", cpg_iteration_next(ih, &d), CS_OK);
			CHECK_RC("iteration_end", cpg_iteration_next(ih, &d), CS_ERR_NO_SECTIONS);
			memset(&d, 0, sizeof d);
			CHECK_RC("iteration_wraps_after_no_sections", cpg_iteration_next(ih, &d), CS_OK);
			CHECK("iteration_wrap_returns_first", d.pid == (uint32_t)getpid() && t_name_eq(&d.group, &g),
			      "pid %u", d.pid);
			cpg_iteration_finalize(ih);
		}
	}

	/* a second member that sends after we left */
	if (pipe(up) < 0 || pipe(down) < 0)
		return 1;
	c = t_fork();
	if (c == 0) {
		cpg_handle_t ch;
		struct t_rec cr;
		struct iovec iov = { "after-your-leave", 16 };
		close(up[0]);
		close(down[1]);
		alarm(20);
		if (t_init(&ch, &cr) != CS_OK || cpg_join(ch, &g) != CS_OK)
			_exit(2);
		(void)!write(up[1], "j", 1);
		if (t_read_all(down[0], &x, 1, 15000) < 0)
			_exit(3);
		if (cpg_mcast_joined(ch, CPG_TYPE_AGREED, &iov, 1) != CS_OK)
			_exit(4);
		t_sleep_ms(200);
		cpg_leave(ch, &g);
		t_sleep_ms(200);
		cpg_finalize(ch);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	REQUIRE("other_member_joined", t_read_all(up[0], &x, 1, 10000) == 0 && t_wait_members(h, &r, &g, 2, 5000),
		"second member did not join");
	CHECK_RC("leave", cpg_leave(h, &g), CS_OK);
	CHECK("leave_confchg", t_wait_members(h, &r, &g, 1, 5000), "no leave confchg");
	CHECK_RC("rejoin_left_handle_exist", cpg_join(h, &g), CS_ERR_EXIST);
	(void)!write(down[1], "s", 1);
	if (CHECK("left_handle_still_receives_messages", t_wait_events(h, &r, T_EV_DELIVER, 1, 5000),
		  "no delivery on the left handle")) {
		struct t_ev *e = t_last(&r, T_EV_DELIVER);
		CHECK("left_handle_message_content", e->len == 16 && memcmp(e->head, "after-your-leave", 16) == 0,
		      "len %zu", e->len);
	}
	CHECK("left_handle_still_receives_confchg", t_wait_members(h, &r, &g, 0, 5000),
	      "no confchg for the other member's leave on the left handle");
	{
		int st = t_wait_child(c, 10000);
		CHECK("other_member_exit", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	}
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	return t_done();
}
