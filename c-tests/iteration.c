/*
 * iteration: cpg_iteration_initialize / _next / _finalize (spec 6.2, 6.4).
 *  - argument errors: ONE_GROUP with NULL group, ALL / NAME_ONLY with a group,
 *    type 7, NULL handle pointer -> INVALID_PARAM; next with NULL description
 *    -> INVALID_PARAM; invalid iteration handle -> BAD_HANDLE
 *  - ONE_GROUP on a joined group: our entry, then CS_ERR_NO_SECTIONS
 *  - ALL contains (group, 1, pid) for both joined groups; NAME_ONLY contains
 *    both group names with nodeid = pid = 0
 *  - ONE_GROUP on an unknown group: first next -> NO_SECTIONS
 *  - iteration finalize OK, again -> BAD_HANDLE, next after it -> BAD_HANDLE
 *  - iteration handle after cpg_finalize of its cpg handle -> BAD_HANDLE
 */
#include "tap.h"

static int collect(cpg_iteration_handle_t ih, struct cpg_iteration_description_t *d, int max, cs_error_t *end)
{
	int n = 0;
	cs_error_t rc;
	for (;;) {
		struct cpg_iteration_description_t tmp;
		rc = cpg_iteration_next(ih, &tmp);
		if (rc != CS_OK)
			break;
		if (n < max)
			d[n] = tmp;
		n++;
		if (n > 10000)
			break;
	}
	*end = rc;
	return n;
}

static int find(struct cpg_iteration_description_t *d, int n, const struct cpg_name *g, uint32_t nodeid, uint32_t pid)
{
	int i;
	for (i = 0; i < n; i++)
		if (t_name_eq(&d[i].group, g) && d[i].nodeid == nodeid && d[i].pid == pid)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	cpg_handle_t h1, h2;
	struct t_rec r1, r2;
	struct cpg_name g1, g2, unknown;
	cpg_iteration_handle_t ih;
	struct cpg_iteration_description_t d[256];
	cs_error_t end;
	int n;
	uint32_t me;

	(void)argc;
	t_start(argv[0], 60);
	me = (uint32_t)getpid();
	t_name(&g1, "iteration-1-%d", (int)me);
	t_name(&g2, "iteration-2-%d", (int)me);
	t_name(&unknown, "iteration-unknown-%d", (int)me);
	REQUIRE_RC("initialize", t_init(&h1, &r1), CS_OK);
	REQUIRE_RC("initialize_2", t_init(&h2, &r2), CS_OK);
	REQUIRE_RC("join_1", cpg_join(h1, &g1), CS_OK);
	REQUIRE_RC("join_2", cpg_join(h2, &g2), CS_OK);
	t_wait_events(h1, &r1, T_EV_CONFCHG, 1, 5000);
	t_wait_events(h2, &r2, T_EV_CONFCHG, 1, 5000);

	/* argument errors */
	CHECK_RC("one_group_null_group_invalid", cpg_iteration_initialize(h1, CPG_ITERATION_ONE_GROUP, NULL, &ih),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("all_with_group_invalid", cpg_iteration_initialize(h1, CPG_ITERATION_ALL, &g1, &ih),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("name_only_with_group_invalid", cpg_iteration_initialize(h1, CPG_ITERATION_NAME_ONLY, &g1, &ih),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("type_7_invalid", cpg_iteration_initialize(h1, (cpg_iteration_type_t)7, NULL, &ih),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("null_handle_pointer_invalid", cpg_iteration_initialize(h1, CPG_ITERATION_ALL, NULL, NULL),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("next_bad_iteration_handle", cpg_iteration_next(0x1234567800000003ULL, &d[0]), CS_ERR_BAD_HANDLE);
	CHECK_RC("finalize_bad_iteration_handle", cpg_iteration_finalize(0x1234567800000003ULL), CS_ERR_BAD_HANDLE);
	CHECK_RC("next_iteration_handle_0", cpg_iteration_next(0, &d[0]), CS_ERR_BAD_HANDLE);

	/* ONE_GROUP */
	if (CHECK_RC("one_group_initialize", cpg_iteration_initialize(h1, CPG_ITERATION_ONE_GROUP, &g1, &ih), CS_OK)) {
		CHECK_RC("next_null_description_invalid", cpg_iteration_next(ih, NULL), CS_ERR_INVALID_PARAM);
		n = collect(ih, d, 256, &end);
		CHECK("one_group_single_entry", n == 1 && find(d, n, &g1, 1, me), "%d entries", n);
		CHECK("one_group_ends_no_sections", end == CS_ERR_NO_SECTIONS, "ended with %s", t_err(end));
		CHECK_RC("one_group_finalize", cpg_iteration_finalize(ih), CS_OK);
		CHECK_RC("one_group_finalize_again_bad_handle", cpg_iteration_finalize(ih), CS_ERR_BAD_HANDLE);
		CHECK_RC("one_group_next_after_finalize_bad_handle", cpg_iteration_next(ih, &d[0]), CS_ERR_BAD_HANDLE);
	}

	/* ALL */
	if (CHECK_RC("all_initialize", cpg_iteration_initialize(h1, CPG_ITERATION_ALL, NULL, &ih), CS_OK)) {
		n = collect(ih, d, 256, &end);
		CHECK("all_contains_both", find(d, n < 256 ? n : 256, &g1, 1, me) && find(d, n < 256 ? n : 256, &g2, 1, me),
		      "%d entries, ours missing", n);
		CHECK("all_ends_no_sections", end == CS_ERR_NO_SECTIONS, "ended with %s", t_err(end));
		CHECK_RC("all_finalize", cpg_iteration_finalize(ih), CS_OK);
	}

	/* NAME_ONLY */
	if (CHECK_RC("name_only_initialize", cpg_iteration_initialize(h1, CPG_ITERATION_NAME_ONLY, NULL, &ih), CS_OK)) {
		n = collect(ih, d, 256, &end);
		CHECK("name_only_contains_both", find(d, n < 256 ? n : 256, &g1, 0, 0) && find(d, n < 256 ? n : 256, &g2, 0, 0),
		      "%d entries, ours missing (nodeid/pid must be 0)", n);
		CHECK("name_only_ends_no_sections", end == CS_ERR_NO_SECTIONS, "ended with %s", t_err(end));
		CHECK_RC("name_only_finalize", cpg_iteration_finalize(ih), CS_OK);
	}

	/* unknown group */
	if (CHECK_RC("unknown_initialize", cpg_iteration_initialize(h1, CPG_ITERATION_ONE_GROUP, &unknown, &ih), CS_OK)) {
		CHECK_RC("unknown_first_next_no_sections", cpg_iteration_next(ih, &d[0]), CS_ERR_NO_SECTIONS);
		CHECK_RC("unknown_finalize", cpg_iteration_finalize(ih), CS_OK);
	}

	/* iteration handle outliving its cpg handle */
	if (CHECK_RC("orphan_initialize", cpg_iteration_initialize(h2, CPG_ITERATION_ONE_GROUP, &g2, &ih), CS_OK)) {
		CHECK_RC("orphan_cpg_finalize", cpg_finalize(h2), CS_OK);
		CHECK_RC("orphan_next_bad_handle", cpg_iteration_next(ih, &d[0]), CS_ERR_BAD_HANDLE);
		CHECK_RC("orphan_finalize_bad_handle", cpg_iteration_finalize(ih), CS_ERR_BAD_HANDLE);
	}
	CHECK_RC("finalize", cpg_finalize(h1), CS_OK);
	t_rec_free(&r1);
	t_rec_free(&r2);
	return t_done();
}
