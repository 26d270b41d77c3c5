/*
 * zc_flow: a fast zero-copy sender (cpg_zcb_mcast_joined, 200 000-byte
 * messages) gets back-pressure, never a disconnect, and loses nothing.
 *
 * 1. The benchmark's loop: send as fast as the server allows, dispatching
 *    (CS_DISPATCH_ALL) after every send; CS_ERR_TRY_AGAIN waits up to 1 ms
 *    on the fd.  Every message comes back, in order, intact.
 * 2. A sender that does not dispatch at all: it sends until the server
 *    refuses (CS_ERR_TRY_AGAIN) or 400 messages (80 MB) went out; the
 *    connection survives, and once it dispatches every accepted message
 *    comes back in order.  cpgd must refuse before its hard queue limit
 *    (64 MiB, about 330 such messages); corosync is only reported.
 *
 * The zero-copy request is synchronous and the C library does not check the
 * flow-control word for it (libqb's threshold is 1 there, cpgd raises 2), so
 * the server's reply is the only back-pressure this sender can get.
 */
#include "tap.h"

#define SIZE 200000
#define PHASE1_MS 1500
#define PHASE2_MAX 400

static uint64_t delivered, bad;
static char first_bad[160];

static void on_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg,
		       size_t len)
{
	uint64_t seq = UINT64_MAX;
	(void)h;
	(void)g;
	(void)nodeid;
	if (len >= sizeof seq)
		memcpy(&seq, msg, sizeof seq);
	if (pid != (uint32_t)getpid() || len != SIZE || seq != delivered) {
		if (!bad++)
			snprintf(first_bad, sizeof first_bad, "delivery %" PRIu64 ": pid %u len %zu seq %" PRIu64,
				 delivered, pid, len, seq);
	}
	delivered++;
}

static cpg_callbacks_t cbs = { on_deliver, NULL };

/* dispatch until `want` deliveries arrived (bounded); returns the last error */
static cs_error_t drain(cpg_handle_t h, int fd, uint64_t want, int ms)
{
	int64_t end = t_now_ms() + ms;
	cs_error_t rc = CS_OK;
	while (delivered < want && t_now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 100);
		rc = cpg_dispatch(h, CS_DISPATCH_ALL);
		if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN)
			break;
		rc = CS_OK;
	}
	return rc;
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct cpg_name g;
	void *buf;
	int fd;
	uint64_t sent = 0, try_again = 0;
	cs_error_t rc = CS_OK;
	int64_t end;
	const char *srv = getenv("CPG_TEST_SERVER");
	int cpgd = srv && strcmp(srv, "cpgd") == 0;

	(void)argc;
	t_start(argv[0], 60);
	t_name(&g, "zc_flow-%d", (int)getpid());
	REQUIRE_RC("initialize", cpg_initialize(&h, &cbs), CS_OK);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	REQUIRE_RC("fd_get", cpg_fd_get(h, &fd), CS_OK);
	REQUIRE_RC("zcb_alloc", cpg_zcb_alloc(h, SIZE, &buf), CS_OK);
	memset(buf, 0x5a, SIZE);

	/* 1: send and dispatch after every send */
	end = t_now_ms() + PHASE1_MS;
	while (t_now_ms() < end) {
		memcpy(buf, &sent, sizeof sent);
		rc = cpg_zcb_mcast_joined(h, CPG_TYPE_AGREED, buf, SIZE);
		if (rc == CS_OK) {
			sent++;
		} else if (rc == CS_ERR_TRY_AGAIN) {
			struct pollfd p = { fd, POLLIN, 0 };
			try_again++;
			poll(&p, 1, 1);
		} else {
			break;
		}
		rc = cpg_dispatch(h, CS_DISPATCH_ALL);
		if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN)
			break;
		rc = CS_OK;
	}
	CHECK("dispatching_sender_no_error", rc == CS_OK, "%s after %" PRIu64 " sent, %" PRIu64 " delivered",
	      t_err(rc), sent, delivered);
	t_note("phase 1: %" PRIu64 " sent, %" PRIu64 " TRY_AGAIN", sent, try_again);
	rc = drain(h, fd, sent, 10000);
	CHECK("dispatching_sender_all_back", rc == CS_OK && delivered == sent && !bad,
	      "%" PRIu64 " of %" PRIu64 " delivered (%s)%s%s", delivered, sent, t_err(rc), bad ? "; " : "",
	      first_bad);

	/* 2: send without dispatching */
	try_again = 0;
	{
		uint64_t base = sent, n;
		for (n = 0; n < PHASE2_MAX; n++) {
			memcpy(buf, &sent, sizeof sent);
			rc = cpg_zcb_mcast_joined(h, CPG_TYPE_AGREED, buf, SIZE);
			if (rc != CS_OK)
				break;
			sent++;
		}
		if (rc == CS_ERR_TRY_AGAIN)
			try_again = 1;
		CHECK("silent_sender_no_error", rc == CS_OK || rc == CS_ERR_TRY_AGAIN, "%s after %" PRIu64 " sends",
		      t_err(rc), sent - base);
		if (cpgd)
			CHECK("silent_sender_refused_in_time", try_again, "%" PRIu64 " messages accepted, never TRY_AGAIN",
			      sent - base);
		else
			t_note("phase 2: %s after %" PRIu64 " messages", try_again ? "TRY_AGAIN" : "no TRY_AGAIN",
			       sent - base);
	}
	rc = drain(h, fd, sent, 20000);
	CHECK("silent_sender_all_back", rc == CS_OK && delivered == sent && !bad,
	      "%" PRIu64 " of %" PRIu64 " delivered (%s)%s%s", delivered, sent, t_err(rc), bad ? "; " : "",
	      first_bad);
	/* the connection still works */
	memcpy(buf, &sent, sizeof sent);
	CHECK_RC("still_connected", cpg_zcb_mcast_joined(h, CPG_TYPE_AGREED, buf, SIZE), CS_OK);
	sent++;
	drain(h, fd, sent, 5000);
	CHECK("last_back", delivered == sent && !bad, "%" PRIu64 " of %" PRIu64 " delivered", delivered, sent);
	CHECK_RC("zcb_free", cpg_zcb_free(h, buf), CS_OK);
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	return t_done();
}
