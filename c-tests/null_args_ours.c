/*
 * null_args_ours (ours-only: the original library dereferences these NULL
 * pointers and crashes): NULL handle pointer to cpg_initialize and
 * cpg_model_initialize, NULL group to join / leave / membership_get, NULL
 * out-pointers to fd_get / context_get / local_get / max_atomic_msgsize_get /
 * flow_control_state_get -> CS_ERR_INVALID_PARAM, no crash, and the handle
 * keeps working afterwards.  Each call runs in its own child process so a
 * crash is reported as a failure of that check only.
 */
#include "tap.h"

typedef cs_error_t (*probe_fn)(cpg_handle_t h);

static cs_error_t p_init(cpg_handle_t h)
{
	cpg_callbacks_t cb = { t_deliver_cb, t_confchg_cb };
	(void)h;
	return cpg_initialize(NULL, &cb);
}
static cs_error_t p_model_init(cpg_handle_t h)
{
	(void)h;
	return cpg_model_initialize(NULL, CPG_MODEL_V1, NULL, NULL);
}
static cs_error_t p_join(cpg_handle_t h) { return cpg_join(h, NULL); }
static cs_error_t p_leave(cpg_handle_t h) { return cpg_leave(h, NULL); }
static cs_error_t p_membership(cpg_handle_t h)
{
	struct cpg_address ml[4];
	int n = 4;
	return cpg_membership_get(h, NULL, ml, &n);
}
static cs_error_t p_fd(cpg_handle_t h) { return cpg_fd_get(h, NULL); }
static cs_error_t p_ctx(cpg_handle_t h) { return cpg_context_get(h, NULL); }
static cs_error_t p_local(cpg_handle_t h) { return cpg_local_get(h, NULL); }
static cs_error_t p_max(cpg_handle_t h) { return cpg_max_atomic_msgsize_get(h, NULL); }
static cs_error_t p_fc(cpg_handle_t h) { return cpg_flow_control_state_get(h, NULL); }

/* child: initialize, run the probe (arg: its probe_fn), report its rc and
 * whether the handle still works */
static void probe_child(void *arg, int32_t *res)
{
	probe_fn fn = *(probe_fn *)arg;
	cpg_handle_t h;
	struct t_rec r;
	uint32_t nodeid = 0;
	if (t_init(&h, &r) != CS_OK)
		_exit(3);
	res[0] = fn(h);
	/* the handle must still work */
	res[1] = cpg_local_get(h, &nodeid) == CS_OK && nodeid == 1;
	cpg_finalize(h);
}

static void isolated(const char *name, probe_fn fn)
{
	int32_t res[2] = { -1, -1 };
	if (!t_isolated(name, probe_child, &fn, res, 2, 10, 15000))
		return;
	if (res[0] != CS_ERR_INVALID_PARAM)
		t_fail(name, "returned %s, expected CS_ERR_INVALID_PARAM", t_err((cs_error_t)res[0]));
	else if (!res[1])
		t_fail(name, "returned CS_ERR_INVALID_PARAM but the handle no longer works");
	else
		t_pass(name);
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 120);
	t_ours_only();
	isolated("initialize_null_handle_pointer", p_init);
	isolated("model_initialize_null_handle_pointer", p_model_init);
	isolated("join_null_group", p_join);
	isolated("leave_null_group", p_leave);
	isolated("membership_get_null_group", p_membership);
	isolated("fd_get_null", p_fd);
	isolated("context_get_null", p_ctx);
	isolated("local_get_null", p_local);
	isolated("max_atomic_msgsize_get_null", p_max);
	isolated("flow_control_state_get_null", p_fc);
	return t_done();
}
