/*
 * join_leave: the join/leave state machine and multicast rows of spec 6.2.
 *  - leave never joined -> NOT_EXIST
 *  - join same group again (before and after its confchg) -> EXIST; another
 *    group on a joined handle -> EXIST; same group from a second handle of the
 *    same process -> EXIST; a different group from a second handle -> OK
 *  - leave right after join, before the join confchg was dispatched -> OK,
 *    then the join and the leave confchg arrive in that order
 *  - leave twice (before and after the leave confchg) -> NOT_EXIST
 *  - mcast after leave (small) -> OK, nothing delivered
 *  - after leave and finalize of the old handle, the same group can be joined
 *    on a new handle; joining right after finalize of a member works
 *    (TRY_AGAIN retried, allowed by design)
 *  - mcast with iovec NULL / iov_len 0 -> OK and a 0-byte message delivered;
 *    guarantee values 0 and 4 -> OK and delivered
 *  - group names are raw bytes of exactly `length`: "name\0" (length+1, as
 *    pacemaker does) is a different group from "name"; bytes after `length`
 *    are ignored when matching
 */
#include "tap.h"

static pid_t me;

static void state_machine(void)
{
	cpg_handle_t h1, h2;
	struct t_rec r1, r2;
	struct cpg_name g, g2, g3;
	struct t_ev *e;

	t_name(&g, "join_leave-a-%d", (int)me);
	t_name(&g2, "join_leave-b-%d", (int)me);
	t_name(&g3, "join_leave-c-%d", (int)me);
	REQUIRE_RC("initialize", t_init(&h1, &r1), CS_OK);
	REQUIRE_RC("initialize_2", t_init(&h2, &r2), CS_OK);

	CHECK_RC("leave_never_joined_not_exist", cpg_leave(h1, &g), CS_ERR_NOT_EXIST);
	REQUIRE_RC("join", cpg_join(h1, &g), CS_OK);
	CHECK_RC("join_again_before_confchg_exist", cpg_join(h1, &g), CS_ERR_EXIST);
	CHECK("join_confchg", t_wait_events(h1, &r1, T_EV_CONFCHG, 1, 5000), "no confchg");
	CHECK_RC("join_again_after_confchg_exist", cpg_join(h1, &g), CS_ERR_EXIST);
	CHECK_RC("join_other_group_same_handle_exist", cpg_join(h1, &g2), CS_ERR_EXIST);
	CHECK_RC("join_same_group_second_handle_exist", cpg_join(h2, &g), CS_ERR_EXIST);
	CHECK_RC("join_other_group_second_handle_ok", cpg_join(h2, &g2), CS_OK);
	CHECK("second_handle_confchg", t_wait_events(h2, &r2, T_EV_CONFCHG, 1, 5000), "no confchg on second handle");
	e = t_last(&r2, T_EV_CONFCHG);
	if (e)
		CHECK("second_handle_confchg_group", t_name_eq(&e->group, &g2), "confchg for another group");

	/* leave, then leave again, then mcast on the left handle */
	CHECK_RC("leave", cpg_leave(h1, &g), CS_OK);
	CHECK_RC("leave_twice_before_confchg_not_exist", cpg_leave(h1, &g), CS_ERR_NOT_EXIST);
	if (CHECK("leave_confchg", t_wait_events(h1, &r1, T_EV_CONFCHG, 2, 5000), "no leave confchg")) {
		struct cpg_address l[1] = { { 1, (uint32_t)me, CPG_REASON_LEAVE } };
		t_check_confchg("leave_confchg_lists", t_last(&r1, T_EV_CONFCHG), NULL, 0, l, 1, NULL, 0);
	}
	CHECK_RC("leave_twice_after_confchg_not_exist", cpg_leave(h1, &g), CS_ERR_NOT_EXIST);
	{
		struct iovec iov = { "after-leave", 11 };
		size_t before = r1.ndeliver;
		CHECK_RC("mcast_after_leave_ok", cpg_mcast_joined(h1, CPG_TYPE_AGREED, &iov, 1), CS_OK);
		t_drain(h1, 300);
		CHECK("mcast_after_leave_not_delivered", r1.ndeliver == before, "%zu deliveries", r1.ndeliver - before);
	}
	CHECK_RC("finalize_left_handle", cpg_finalize(h1), CS_OK);
	t_rec_free(&r1);

	/* the group can be joined again from a new handle once the old one is gone */
	REQUIRE_RC("initialize_3", t_init(&h1, &r1), CS_OK);
	CHECK_RC("rejoin_after_leave_and_finalize_ok", cpg_join(h1, &g), CS_OK);
	if (CHECK("rejoin_confchg", t_wait_events(h1, &r1, T_EV_CONFCHG, 1, 5000), "no confchg")) {
		struct cpg_address m[1] = { { 1, (uint32_t)me, 0 } };
		struct cpg_address j[1] = { { 1, (uint32_t)me, CPG_REASON_JOIN } };
		t_check_confchg("rejoin_confchg_lists", t_last(&r1, T_EV_CONFCHG), m, 1, NULL, 0, j, 1);
	}
	/* finalize while a member, then join the same group right away */
	CHECK_RC("finalize_member", cpg_finalize(h1), CS_OK);
	t_rec_free(&r1);
	REQUIRE_RC("initialize_4", t_init(&h1, &r1), CS_OK);
	{
		cs_error_t rc;
		int64_t end = t_now_ms() + 5000;
		int tries = 0;
		do {
			rc = cpg_join(h1, &g);
			tries++;
			if (rc == CS_ERR_TRY_AGAIN)
				t_sleep_ms(20);
		} while (rc == CS_ERR_TRY_AGAIN && t_now_ms() < end);
		CHECK("join_right_after_finalize_of_member", rc == CS_OK, "cpg_join returned %s after %d tries",
		      t_err(rc), tries);
	}
	t_wait_events(h1, &r1, T_EV_CONFCHG, 1, 5000);

	/* leave right after join, before the join confchg is dispatched */
	CHECK_RC("join_c", cpg_join(h2, &g3), CS_ERR_EXIST); /* h2 is in g2 */
	{
		cpg_handle_t h3;
		struct t_rec r3;
		REQUIRE_RC("initialize_5", t_init(&h3, &r3), CS_OK);
		CHECK_RC("join_then_leave_join", cpg_join(h3, &g3), CS_OK);
		CHECK_RC("leave_before_join_confchg_ok", cpg_leave(h3, &g3), CS_OK);
		if (CHECK("join_and_leave_confchgs", t_wait_events(h3, &r3, T_EV_CONFCHG, 2, 5000),
			  "%zu confchg events, expected 2", r3.nconfchg)) {
			struct cpg_address j[1] = { { 1, (uint32_t)me, CPG_REASON_JOIN } };
			struct cpg_address m[1] = { { 1, (uint32_t)me, 0 } };
			struct cpg_address l[1] = { { 1, (uint32_t)me, CPG_REASON_LEAVE } };
			struct t_ev *first = NULL, *second = NULL;
			size_t i;
			for (i = 0; i < r3.n; i++) {
				if (r3.ev[i].type != T_EV_CONFCHG)
					continue;
				if (!first)
					first = &r3.ev[i];
				else if (!second)
					second = &r3.ev[i];
			}
			t_check_confchg("join_then_leave_first_is_join", first, m, 1, NULL, 0, j, 1);
			t_check_confchg("join_then_leave_second_is_leave", second, NULL, 0, l, 1, NULL, 0);
		}
		CHECK_RC("finalize_5", cpg_finalize(h3), CS_OK);
		t_rec_free(&r3);
	}
	CHECK_RC("finalize_2", cpg_finalize(h2), CS_OK);
	CHECK_RC("finalize_4", cpg_finalize(h1), CS_OK);
	t_rec_free(&r1);
	t_rec_free(&r2);
}

static void mcast_variants(void)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name g;
	struct iovec iov = { "g", 1 };
	struct t_ev *e;

	t_name(&g, "join_leave-m-%d", (int)me);
	REQUIRE_RC("mv_initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("mv_join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);

	CHECK_RC("mcast_zero_iovecs_ok", cpg_mcast_joined(h, CPG_TYPE_AGREED, NULL, 0), CS_OK);
	if (CHECK("mcast_zero_iovecs_delivered", t_wait_events(h, &r, T_EV_DELIVER, 1, 5000), "not delivered")) {
		e = t_last(&r, T_EV_DELIVER);
		CHECK("mcast_zero_iovecs_len_0", e->len == 0, "len %zu", e->len);
	}
	CHECK_RC("mcast_guarantee_0_ok", cpg_mcast_joined(h, (cpg_guarantee_t)0, &iov, 1), CS_OK);
	CHECK_RC("mcast_guarantee_4_ok", cpg_mcast_joined(h, (cpg_guarantee_t)4, &iov, 1), CS_OK);
	CHECK_RC("mcast_guarantee_safe_ok", cpg_mcast_joined(h, CPG_TYPE_SAFE, &iov, 1), CS_OK);
	CHECK("mcast_guarantees_delivered", t_wait_events(h, &r, T_EV_DELIVER, 4, 5000), "%zu delivered, expected 4",
	      r.ndeliver);
	CHECK_RC("mv_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

static void raw_names(void)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name withnul, plain, junk;
	struct cpg_address ml[4];
	int n;
	struct t_ev *e;
	char txt[64];
	size_t len;

	snprintf(txt, sizeof txt, "join_leave-raw-%d", (int)me);
	len = strlen(txt);
	memset(&withnul, 0, sizeof withnul);
	memcpy(withnul.value, txt, len + 1);
	withnul.length = (uint32_t)len + 1; /* trailing NUL counted, like pacemaker */
	memset(&plain, 0, sizeof plain);
	memcpy(plain.value, txt, len);
	plain.length = (uint32_t)len;
	memset(&junk, 'Z', sizeof junk);
	memcpy(junk.value, txt, len + 1);
	junk.length = (uint32_t)len + 1; /* same group as withnul, junk after length */

	REQUIRE_RC("raw_initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("raw_join_with_nul", cpg_join(h, &withnul), CS_OK);
	if (CHECK("raw_confchg", t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000), "no confchg")) {
		e = t_last(&r, T_EV_CONFCHG);
		CHECK("raw_confchg_length_includes_nul", e->group.length == len + 1 &&
			  memcmp(e->group.value, withnul.value, len + 1) == 0,
		      "confchg group length %u, expected %zu", e->group.length, len + 1);
	}
	n = 4;
	CHECK_RC("raw_membership_with_nul", cpg_membership_get(h, &withnul, ml, &n), CS_OK);
	CHECK("raw_membership_with_nul_one", n == 1, "n=%d", n);
	n = 4;
	CHECK_RC("raw_membership_without_nul", cpg_membership_get(h, &plain, ml, &n), CS_OK);
	CHECK("raw_membership_without_nul_is_other_group", n == 0, "n=%d", n);
	n = 4;
	CHECK_RC("raw_membership_junk_after_length", cpg_membership_get(h, &junk, ml, &n), CS_OK);
	CHECK("raw_membership_junk_after_length_ignored", n == 1, "n=%d", n);
	{
		struct iovec iov = { "raw", 3 };
		CHECK_RC("raw_mcast", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
		if (CHECK("raw_deliver", t_wait_events(h, &r, T_EV_DELIVER, 1, 5000), "not delivered")) {
			e = t_last(&r, T_EV_DELIVER);
			CHECK("raw_deliver_group_length", e->group.length == len + 1, "length %u", e->group.length);
		}
	}
	CHECK_RC("raw_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 60);
	me = getpid();
	state_machine();
	mcast_variants();
	raw_names();
	return t_done();
}
