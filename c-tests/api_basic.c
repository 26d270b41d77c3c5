/*
 * api_basic: every basic function on one node, in the order of spec 6.1:
 * initialize, fd_get (stable), context_get/set, max_atomic_msgsize_get,
 * flow_control_state_get, local_get (nodeid 1), join + join confchg,
 * membership_get, mcast_joined with two iovecs + self delivery, leave + leave
 * confchg, finalize; cpg_model_initialize (V1, totem confchg callback,
 * CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF, context); initialize without
 * callbacks.
 */
#include "tap.h"

static void basic(void)
{
	cpg_handle_t h = 0;
	struct t_rec r;
	struct cpg_name g;
	int fd1 = -1, fd2 = -1;
	void *ctx = (void *)1;
	uint32_t sz = 0, nodeid = 0;
	cpg_flow_control_state_t fc = 99;
	struct cpg_address ml[8];
	int n = 8;
	pid_t me = getpid();
	struct iovec iov[2];
	struct t_ev *e;

	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	CHECK("handle_nonzero", h != 0, "handle is 0");
	CHECK_RC("fd_get", cpg_fd_get(h, &fd1), CS_OK);
	CHECK("fd_valid", fd1 >= 0 && fcntl(fd1, F_GETFD) >= 0, "fd %d not open", fd1);
	CHECK_RC("context_get_initial", cpg_context_get(h, &ctx), CS_OK);
	CHECK("context_initial_null", ctx == NULL, "initial context %p, expected NULL", ctx);
	CHECK_RC("context_set", cpg_context_set(h, (void *)0x1234), CS_OK);
	CHECK_RC("context_get", cpg_context_get(h, &ctx), CS_OK);
	CHECK("context_value", ctx == (void *)0x1234, "context %p, expected 0x1234", ctx);
	CHECK_RC("max_atomic_msgsize_get", cpg_max_atomic_msgsize_get(h, &sz), CS_OK);
	CHECK("max_atomic_msgsize_value", sz == 1047552, "size %u, expected 1047552", sz);
	CHECK_RC("flow_control_state_get", cpg_flow_control_state_get(h, &fc), CS_OK);
	CHECK("flow_control_disabled", fc == CPG_FLOW_CONTROL_DISABLED, "state %d", (int)fc);
	CHECK_RC("local_get", cpg_local_get(h, &nodeid), CS_OK);
	CHECK("local_get_nodeid_1", nodeid == 1, "nodeid %u, expected 1", nodeid);

	t_name(&g, "api_basic-%d", (int)me);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	REQUIRE("join_confchg", t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000), "no confchg after join");
	e = t_last(&r, T_EV_CONFCHG);
	CHECK("join_confchg_group", t_name_eq(&e->group, &g), "confchg group name differs (len %u)", e->group.length);
	{
		struct cpg_address m[1] = { { 1, (uint32_t)me, CPG_REASON_UNDEFINED } };
		struct cpg_address j[1] = { { 1, (uint32_t)me, CPG_REASON_JOIN } };
		t_check_confchg("join_confchg_lists", e, m, 1, NULL, 0, j, 1);
	}

	CHECK_RC("membership_get", cpg_membership_get(h, &g, ml, &n), CS_OK);
	CHECK("membership_get_self", n == 1 && ml[0].nodeid == 1 && ml[0].pid == (uint32_t)me,
	      "n=%d first={%u,%u}", n, n > 0 ? ml[0].nodeid : 0, n > 0 ? ml[0].pid : 0);

	iov[0].iov_base = "hello ";
	iov[0].iov_len = 6;
	iov[1].iov_base = "world";
	iov[1].iov_len = 5;
	CHECK_RC("mcast_joined_iovecs", cpg_mcast_joined(h, CPG_TYPE_AGREED, iov, 2), CS_OK);
	if (CHECK("self_delivery", t_wait_events(h, &r, T_EV_DELIVER, 1, 5000), "own message not delivered")) {
		e = t_last(&r, T_EV_DELIVER);
		CHECK("deliver_content", e->len == 11 && memcmp(e->head, "hello world", 11) == 0,
		      "len %zu content '%.*s'", e->len, (int)(e->len < 64 ? e->len : 64), e->head);
		CHECK("deliver_sender", e->nodeid == 1 && e->pid == (uint32_t)me,
		      "sender {%u,%u}, expected {1,%d}", e->nodeid, e->pid, (int)me);
		CHECK("deliver_group", t_name_eq(&e->group, &g), "group differs");
	}

	CHECK_RC("fd_get_again", cpg_fd_get(h, &fd2), CS_OK);
	CHECK("fd_stable", fd1 == fd2, "fd changed %d -> %d", fd1, fd2);

	CHECK_RC("leave", cpg_leave(h, &g), CS_OK);
	if (CHECK("leave_confchg", t_wait_events(h, &r, T_EV_CONFCHG, 2, 5000), "no confchg after leave")) {
		struct cpg_address l[1] = { { 1, (uint32_t)me, CPG_REASON_LEAVE } };
		t_check_confchg("leave_confchg_lists", t_last(&r, T_EV_CONFCHG), NULL, 0, l, 1, NULL, 0);
	}
	n = 8;
	CHECK_RC("membership_get_after_leave", cpg_membership_get(h, &g, ml, &n), CS_OK);
	CHECK("membership_empty_after_leave", n == 0, "n=%d", n);
	CHECK_RC("fd_get_end", cpg_fd_get(h, &fd2), CS_OK);
	CHECK("fd_stable_end", fd1 == fd2, "fd changed %d -> %d", fd1, fd2);
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

/* model initialize: join confchg, then exactly one totem confchg */
static void model(void)
{
	cpg_handle_t h = 0;
	struct t_rec r;
	cpg_model_v1_data_t md;
	struct cpg_name g;
	void *ctx = NULL;
	struct t_ev *e;
	size_t i, nconf = 0, ntot = 0;
	int order_ok = 1;

	memset(&md, 0, sizeof md);
	memset(&r, 0, sizeof r);
	md.model = CPG_MODEL_V1;
	md.cpg_deliver_fn = t_deliver_cb;
	md.cpg_confchg_fn = t_confchg_cb;
	md.cpg_totem_confchg_fn = t_totem_cb;
	md.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
	REQUIRE_RC("model_initialize", cpg_model_initialize(&h, CPG_MODEL_V1, (cpg_model_data_t *)&md, (void *)0x77), CS_OK);
	t_rec_attach(&r, h);
	CHECK_RC("model_context_get", cpg_context_get(h, &ctx), CS_OK);
	CHECK("model_context_value", ctx == (void *)0x77, "context %p, expected 0x77", ctx);
	t_name(&g, "api_model-%d", (int)getpid());
	REQUIRE_RC("model_join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_TOTEM, 1, 5000);
	t_drain(h, 300);
	for (i = 0; i < r.n; i++) {
		if (r.ev[i].type == T_EV_CONFCHG)
			nconf++;
		if (r.ev[i].type == T_EV_TOTEM) {
			ntot++;
			if (nconf == 0)
				order_ok = 0;
		}
	}
	CHECK("model_join_confchg", nconf == 1, "%zu confchg events, expected 1", nconf);
	CHECK("model_one_totem_confchg", ntot == 1, "%zu totem confchg events, expected 1", ntot);
	CHECK("model_totem_after_join_confchg", order_ok && ntot > 0, "totem confchg came before the join confchg");
	e = t_last(&r, T_EV_TOTEM);
	if (e) {
		CHECK("model_totem_ring_nodeid", e->ring.nodeid == 1, "ring id nodeid %u, expected 1", e->ring.nodeid);
		CHECK("model_totem_ring_seq", e->ring.seq != 0, "ring seq 0");
		CHECK("model_totem_members", e->ntm == 1 && e->tmembers[0] == 1, "%u members, first %u", e->ntm,
		      e->ntm ? e->tmembers[0] : 0);
		t_note("totem ring id %x.%" PRIx64, e->ring.nodeid, e->ring.seq);
	}
	e = t_last(&r, T_EV_CONFCHG);
	if (e) {
		struct cpg_address m[1] = { { 1, (uint32_t)getpid(), 0 } };
		struct cpg_address j[1] = { { 1, (uint32_t)getpid(), CPG_REASON_JOIN } };
		t_check_confchg("model_join_confchg_lists", e, m, 1, NULL, 0, j, 1);
	}
	/* deliver still works through the V1 callbacks */
	{
		struct iovec iov = { "m", 1 };
		CHECK_RC("model_mcast", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
		CHECK("model_deliver", t_wait_events(h, &r, T_EV_DELIVER, 1, 5000), "no delivery");
	}
	CHECK_RC("model_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);

	/* model data NULL: no callbacks, CS_OK */
	h = 0;
	CHECK_RC("model_initialize_null_data", cpg_model_initialize(&h, CPG_MODEL_V1, NULL, NULL), CS_OK);
	if (h)
		CHECK_RC("model_null_data_finalize", cpg_finalize(h), CS_OK);

	/* model without the flag: no totem confchg after join */
	md.flags = 0;
	memset(&r, 0, sizeof r);
	REQUIRE_RC("model_initialize_noflag", cpg_model_initialize(&h, CPG_MODEL_V1, (cpg_model_data_t *)&md, NULL), CS_OK);
	t_rec_attach(&r, h);
	t_name(&g, "api_model2-%d", (int)getpid());
	CHECK_RC("model_noflag_join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);
	t_drain(h, 300);
	CHECK("model_noflag_no_totem", r.ntotem == 0 && r.nconfchg == 1, "%zu totem, %zu confchg events", r.ntotem, r.nconfchg);
	CHECK_RC("model_noflag_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

/* initialize with NULL callbacks: events are consumed silently */
static void no_callbacks(void)
{
	cpg_handle_t h = 0;
	struct cpg_name g;
	struct iovec iov = { "x", 1 };
	int fd;
	struct pollfd p;
	REQUIRE_RC("nocb_initialize", cpg_initialize(&h, NULL), CS_OK);
	t_name(&g, "api_nocb-%d", (int)getpid());
	CHECK_RC("nocb_join", cpg_join(h, &g), CS_OK);
	CHECK_RC("nocb_mcast", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	fd = t_fd(h);
	/* wait for the confchg + message to be pending, then dispatch them */
	p.fd = fd;
	p.events = POLLIN;
	poll(&p, 1, 2000);
	t_sleep_ms(100);
	CHECK_RC("nocb_dispatch_all", cpg_dispatch(h, CS_DISPATCH_ALL), CS_OK);
	t_drain(h, 200);
	p.revents = 0;
	CHECK("nocb_fd_idle", poll(&p, 1, 0) == 0, "fd still readable (revents 0x%x)", p.revents);
	CHECK_RC("nocb_finalize", cpg_finalize(h), CS_OK);
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 60);
	t_note("library %s", t_lib_path());
	basic();
	model();
	no_callbacks();
	return t_done();
}
