/*
 * mcast_args_ours (ours-only: the original crashes): cpg_mcast_joined argument
 * handling.
 *  - iovec NULL with iov_len 1 -> CS_ERR_INVALID_PARAM (original: SIGSEGV)
 *  - iovec NULL with iov_len 1<<20 -> CS_ERR_INVALID_PARAM
 *  - 64, 100 and 1000 iovecs with a small total -> delivered intact
 *    (original: "buffer overflow detected" abort at >= 64 iovecs)
 *  - 300 iovecs with a total above 1047552 (fragmented) -> delivered intact
 * Each risky call runs in a child process so a crash fails only that check.
 */
#include "tap.h"

static struct cpg_name g;

struct send_args {
	int null_iov;
	unsigned niov;
	size_t each;
};

/* child: join, send with niov iovecs of `each` bytes (or NULL iovec), report
 * rc, delivered length and whether the content matched */
static void send_child(void *arg, int32_t *res)
{
	const struct send_args *a = arg;
	cpg_handle_t h;
	struct t_rec r;
	struct iovec *iov = NULL;
	unsigned char *buf = NULL;
	size_t total = (size_t)a->niov * a->each;
	unsigned i;
	if (t_init(&h, &r) != CS_OK || cpg_join(h, &g) != CS_OK || !t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000))
		_exit(3);
	if (!a->null_iov) {
		iov = calloc(a->niov, sizeof *iov);
		buf = malloc(total ? total : 1);
		t_fill(buf, total, a->niov);
		for (i = 0; i < a->niov; i++) {
			iov[i].iov_base = buf + (size_t)i * a->each;
			iov[i].iov_len = a->each;
		}
	}
	res[0] = cpg_mcast_joined(h, CPG_TYPE_AGREED, iov, a->niov);
	if (res[0] == CS_OK && t_wait_events(h, &r, T_EV_DELIVER, 1, 10000)) {
		struct t_ev *e = t_last(&r, T_EV_DELIVER);
		res[1] = (int32_t)e->len;
		res[2] = e->len == total && e->hash == t_fnv(buf, total, T_FNV_INIT);
	} else {
		t_drain(h, 200);
		res[1] = (int32_t)r.ndeliver;
	}
	cpg_finalize(h);
	t_rec_detach(&r);
	t_rec_free(&r);
	free(iov);
	free(buf);
}

static void isolated(const char *name, int null_iov, unsigned niov, size_t each, cs_error_t want_rc)
{
	struct send_args a = { null_iov, niov, each };
	int32_t res[3] = { -1, -1, -1 };
	if (!t_isolated(name, send_child, &a, res, 3, 20, 30000))
		return;
	if (res[0] != (int32_t)want_rc)
		t_fail(name, "returned %s, expected %s", t_err((cs_error_t)res[0]), t_err(want_rc));
	else if (want_rc == CS_OK && res[2] != 1)
		t_fail(name, "CS_OK but delivered length %d, content %s", res[1], res[2] == 0 ? "differs" : "missing");
	else if (want_rc != CS_OK && res[1] != 0)
		t_fail(name, "refused but %d messages were delivered", res[1]);
	else
		t_pass(name);
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 120);
	t_ours_only();
	t_name(&g, "mcast_args_ours-%d", (int)getpid());
	isolated("null_iovec_len_1_invalid_param", 1, 1, 0, CS_ERR_INVALID_PARAM);
	isolated("null_iovec_len_1M_invalid_param", 1, 1u << 20, 0, CS_ERR_INVALID_PARAM);
	isolated("iovecs_63_delivered", 0, 63, 10, CS_OK);
	isolated("iovecs_64_delivered", 0, 64, 10, CS_OK);
	isolated("iovecs_100_delivered", 0, 100, 7, CS_OK);
	isolated("iovecs_1000_delivered", 0, 1000, 1, CS_OK);
	isolated("iovecs_300_fragmented_delivered", 0, 300, 4000, CS_OK);
	return t_done();
}
