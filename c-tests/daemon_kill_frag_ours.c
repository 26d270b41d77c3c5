/*
 * daemon_kill_frag_ours (ours-only: the original returns an uninitialised
 * value, 0 was observed): after the daemon was SIGKILLed under a joined
 * client, a fragmented cpg_mcast_joined (2 MiB) returns CS_ERR_LIBRARY
 * promptly, and so does a second one; cpg_finalize returns CS_ERR_LIBRARY.
 */
#include "tap.h"

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name g;
	char reply[64];
	size_t sz = 2 * 1024 * 1024;
	unsigned char *b;
	struct iovec iov;
	int i;

	(void)argc;
	t_start(argv[0], 60);
	t_ours_only();
	if (!t_harness_available())
		t_skip_all("needs the harness (CPG_TEST_CTL) to kill the daemon");
	t_name(&g, "daemon_kill_frag_ours-%d", (int)getpid());
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);
	b = calloc(1, sz);
	iov.iov_base = b;
	iov.iov_len = sz;
	REQUIRE_RC("fragmented_mcast_before_kill", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	t_wait_events(h, &r, T_EV_DELIVER, 1, 5000);
	REQUIRE("harness_kill9", t_harness("kill9", reply, sizeof reply, 15000) == 0, "harness did not kill the daemon");
	for (i = 0; i < 2; i++) {
		int64_t t0 = t_now_ms();
		cs_error_t rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		int64_t dt = t_now_ms() - t0;
		CHECK(i ? "fragmented_mcast_again_library" : "fragmented_mcast_library", rc == CS_ERR_LIBRARY && dt < 2000,
		      "returned %s after %" PRId64 " ms", t_err(rc), dt);
	}
	CHECK_RC("finalize_library", cpg_finalize(h), CS_ERR_LIBRARY);
	free(b);
	t_rec_free(&r);
	return t_done();
}
