/*
 * errors: the well-defined rows of the spec 6.2 error-code table that need no
 * group state machine (see join_leave.c and iteration.c for those):
 *  - invalid handles (0, random, wrong check bits, slot past the end, after
 *    finalize) -> CS_ERR_BAD_HANDLE from every handle-taking function,
 *    including a second cpg_finalize; cpg_dispatch(0, ...) in every mode
 *  - group name length 129 / 0xFFFFFFFF -> CS_ERR_NAME_TOO_LONG for join,
 *    leave, membership_get, iteration_initialize(ONE_GROUP); length 128 works
 *  - cpg_model_initialize: model 0 / 2 -> INVALID_PARAM, flags 0x2 ->
 *    INVALID_PARAM, V1 with NULL model data -> OK
 *  - membership_get with NULL list / NULL count -> INVALID_PARAM; unknown
 *    group -> OK with 0 entries
 *  - cpg_initialize(&h, NULL) -> OK
 *  - mcast not joined: small -> CS_OK (fire and forget), fragmented
 *    (1047553 bytes) -> CS_ERR_NOT_EXIST
 */
#include "tap.h"

static struct cpg_name g;

/* every handle-taking function with handle h must return CS_ERR_BAD_HANDLE */
static void all_bad(const char *what, cpg_handle_t h)
{
	char name[128];
	int fd;
	uint32_t u32;
	void *ctx;
	struct cpg_address ml[4];
	int n = 4;
	struct iovec iov = { "x", 1 };
	cpg_flow_control_state_t fc;
	cpg_iteration_handle_t ih;
	void *buf = NULL;

#define BAD(fn, expr)                                                          \
	do {                                                                   \
		snprintf(name, sizeof name, "%s_%s", what, fn);                \
		CHECK_RC(name, expr, CS_ERR_BAD_HANDLE);                       \
	} while (0)
	BAD("fd_get", cpg_fd_get(h, &fd));
	BAD("max_atomic_msgsize_get", cpg_max_atomic_msgsize_get(h, &u32));
	BAD("context_get", cpg_context_get(h, &ctx));
	BAD("context_set", cpg_context_set(h, (void *)1));
	BAD("dispatch_all", cpg_dispatch(h, CS_DISPATCH_ALL));
	BAD("dispatch_one", cpg_dispatch(h, CS_DISPATCH_ONE));
	BAD("dispatch_blocking", cpg_dispatch(h, CS_DISPATCH_BLOCKING));
	BAD("dispatch_one_nonblocking", cpg_dispatch(h, CS_DISPATCH_ONE_NONBLOCKING));
	BAD("join", cpg_join(h, &g));
	BAD("leave", cpg_leave(h, &g));
	BAD("mcast_joined", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1));
	BAD("membership_get", cpg_membership_get(h, &g, ml, &n));
	BAD("local_get", cpg_local_get(h, &u32));
	BAD("flow_control_state_get", cpg_flow_control_state_get(h, &fc));
	BAD("zcb_alloc", cpg_zcb_alloc(h, 100, &buf));
	BAD("iteration_initialize", cpg_iteration_initialize(h, CPG_ITERATION_ALL, NULL, &ih));
	BAD("finalize", cpg_finalize(h));
#undef BAD
}

static void bad_handles(void)
{
	cpg_handle_t h, dead;
	struct t_rec r, rd;
	uint64_t wrong;

	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	all_bad("handle0", 0);
	all_bad("random", 0x1234567800000005ULL);
	wrong = h ^ 0x0000000100000000ULL;
	if ((wrong >> 32) == 0xFFFFFFFFULL || (wrong >> 32) == 0)
		wrong = h ^ 0x0000000200000000ULL;
	all_bad("wrong_check", wrong);
	all_bad("slot_past_end", (h & 0xFFFFFFFF00000000ULL) | 0x3e8);
	REQUIRE_RC("initialize_2", t_init(&dead, &rd), CS_OK);
	CHECK_RC("finalize_2", cpg_finalize(dead), CS_OK);
	all_bad("after_finalize", dead);
	/* the valid handle is unaffected by all of this */
	{
		int fd;
		CHECK_RC("valid_handle_still_ok", cpg_fd_get(h, &fd), CS_OK);
	}
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	t_rec_free(&rd);
}

static void names(void)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name bad;
	struct cpg_address ml[4];
	int n = 4;
	cpg_iteration_handle_t ih;
	uint32_t lens[2] = { 129, 0xFFFFFFFFu };
	int i;
	char name[64];

	REQUIRE_RC("names_initialize", t_init(&h, &r), CS_OK);
	for (i = 0; i < 2; i++) {
		memset(&bad, 'a', sizeof bad);
		bad.length = lens[i];
		snprintf(name, sizeof name, "join_len_%u", lens[i]);
		CHECK_RC(name, cpg_join(h, &bad), CS_ERR_NAME_TOO_LONG);
		snprintf(name, sizeof name, "leave_len_%u", lens[i]);
		CHECK_RC(name, cpg_leave(h, &bad), CS_ERR_NAME_TOO_LONG);
		snprintf(name, sizeof name, "membership_get_len_%u", lens[i]);
		n = 4;
		CHECK_RC(name, cpg_membership_get(h, &bad, ml, &n), CS_ERR_NAME_TOO_LONG);
		snprintf(name, sizeof name, "iteration_initialize_len_%u", lens[i]);
		CHECK_RC(name, cpg_iteration_initialize(h, CPG_ITERATION_ONE_GROUP, &bad, &ih), CS_ERR_NAME_TOO_LONG);
	}
	/* nothing was joined by the refused calls */
	CHECK_RC("leave_after_refused_join_not_exist", cpg_leave(h, &g), CS_ERR_NOT_EXIST);

	/* length 128 works */
	{
		struct cpg_name g128;
		struct t_ev *e;
		int k;
		memset(&g128, 0, sizeof g128);
		snprintf(g128.value, sizeof g128.value, "errors-128-%d-", (int)getpid());
		for (k = (int)strlen(g128.value); k < 128; k++)
			g128.value[k] = (char)('a' + k % 26);
		g128.length = 128;
		CHECK_RC("join_len_128", cpg_join(h, &g128), CS_OK);
		if (CHECK("join_len_128_confchg", t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000), "no confchg")) {
			e = t_last(&r, T_EV_CONFCHG);
			CHECK("join_len_128_group_echoed", t_name_eq(&e->group, &g128), "group in confchg has length %u",
			      e->group.length);
		}
		n = 4;
		CHECK_RC("membership_get_len_128", cpg_membership_get(h, &g128, ml, &n), CS_OK);
		CHECK("membership_len_128_one_member", n == 1 && ml[0].pid == (uint32_t)getpid(), "n=%d", n);
		CHECK_RC("leave_len_128", cpg_leave(h, &g128), CS_OK);
		t_wait_events(h, &r, T_EV_CONFCHG, 2, 5000);
	}
	CHECK_RC("names_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

static void models(void)
{
	cpg_handle_t h = 0;
	cpg_model_v1_data_t md;
	memset(&md, 0, sizeof md);
	md.model = CPG_MODEL_V1;
	md.cpg_deliver_fn = t_deliver_cb;
	md.cpg_confchg_fn = t_confchg_cb;

	CHECK_RC("model_2_invalid_param", cpg_model_initialize(&h, (cpg_model_t)2, (cpg_model_data_t *)&md, NULL),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("model_0_invalid_param", cpg_model_initialize(&h, (cpg_model_t)0, (cpg_model_data_t *)&md, NULL),
		 CS_ERR_INVALID_PARAM);
	md.flags = 0x2;
	CHECK_RC("model_flags_0x2_invalid_param",
		 cpg_model_initialize(&h, CPG_MODEL_V1, (cpg_model_data_t *)&md, NULL), CS_ERR_INVALID_PARAM);
	h = 0;
	if (CHECK_RC("model_v1_null_data_ok", cpg_model_initialize(&h, CPG_MODEL_V1, NULL, NULL), CS_OK))
		CHECK_RC("model_v1_null_data_finalize", cpg_finalize(h), CS_OK);
	h = 0;
	if (CHECK_RC("initialize_null_callbacks_ok", cpg_initialize(&h, NULL), CS_OK))
		CHECK_RC("initialize_null_callbacks_finalize", cpg_finalize(h), CS_OK);
}

static void membership_args(void)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_address ml[4];
	int n = 4;
	struct cpg_name unknown;

	REQUIRE_RC("membership_initialize", t_init(&h, &r), CS_OK);
	CHECK_RC("membership_get_null_list", cpg_membership_get(h, &g, NULL, &n), CS_ERR_INVALID_PARAM);
	CHECK_RC("membership_get_null_count", cpg_membership_get(h, &g, ml, NULL), CS_ERR_INVALID_PARAM);
	t_name(&unknown, "errors-unknown-%d", (int)getpid());
	n = 4;
	CHECK_RC("membership_get_unknown_group", cpg_membership_get(h, &unknown, ml, &n), CS_OK);
	CHECK("membership_unknown_group_empty", n == 0, "n=%d", n);
	CHECK_RC("membership_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

static void mcast_not_joined(void)
{
	cpg_handle_t h;
	struct t_rec r;
	struct iovec iov;
	char *big;
	size_t bigsz = 1047553;

	REQUIRE_RC("notjoined_initialize", t_init(&h, &r), CS_OK);
	iov.iov_base = "small";
	iov.iov_len = 5;
	CHECK_RC("mcast_not_joined_small_ok", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	big = calloc(1, bigsz);
	iov.iov_base = big;
	iov.iov_len = bigsz;
	CHECK_RC("mcast_not_joined_fragmented_not_exist", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1),
		 CS_ERR_NOT_EXIST);
	free(big);
	t_drain(h, 200);
	CHECK("mcast_not_joined_nothing_delivered", r.ndeliver == 0, "%zu deliveries", r.ndeliver);
	CHECK_RC("notjoined_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 60);
	t_name(&g, "errors-%d", (int)getpid());
	bad_handles();
	names();
	models();
	membership_args();
	mcast_not_joined();
	return t_done();
}
