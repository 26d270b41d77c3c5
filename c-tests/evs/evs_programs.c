/*
 * evs_programs: the behaviours corosync 1.4's EVS test programs relied on,
 * asserted (their sources are not needed; see docs/evs.md):
 *  - testevs: evs_membership_get before any dispatch; join key1..key3;
 *    500 x 2000-byte evs_mcast_joined with TRY_AGAIN retried and
 *    evs_dispatch(ALL) after each send; the startup confchg comes first
 *    (members = joined = [local], left = []), then every message once, in
 *    order; then 500 evs_mcast_groups to key2, in order, no gap; no second
 *    confchg.
 *  - evsbench: short rounds of as-fast-as-possible sends of 1, 1001 and
 *    2001 bytes with dispatch after each, while a timer signal (no
 *    SA_RESTART) interrupts the process every few ms: writes > 0, no
 *    error but TRY_AGAIN, nothing lost.
 *  - evsverify: leave key1; two-iovec messages (a 24-byte header with
 *    size and digest, then 100 + rand() % 100000 bytes): each arrives
 *    with msg_len = 24 + size and its digest intact, numbered
 *    consecutively.
 */
#include "evs_tap.h"
#include <sys/time.h>

static unsigned int local;
static int phase; /* 0: testevs mcast_joined, 1: mcast_groups, 2: bench, 3: verify */
static uint32_t expect[4];
static int disorder, nconf, first_is_conf = -1, conf_ok;
static uint64_t ndeliver[4];
static int verify_bad;

struct vhdr {
	uint32_t size;
	unsigned char digest[20];
};

static void deliver(hdb_handle_t h, unsigned int nodeid, const void *msg, size_t len)
{
	if (first_is_conf < 0)
		first_is_conf = 0;
	if (len < 8) {
		disorder++;
		return;
	}
	uint32_t ph, seq;
	memcpy(&ph, msg, 4);
	memcpy(&seq, (const char *)msg + 4, 4);
	if (ph > 3) {
		disorder++;
		return;
	}
	if (seq != expect[ph])
		disorder++;
	expect[ph] = seq + 1;
	ndeliver[ph]++;
	if (ph == 3) {
		/* layout: phase, seq, then the evsverify header and body */
		struct vhdr vh;
		if (len < 8 + sizeof vh) {
			verify_bad++;
			return;
		}
		memcpy(&vh, (const char *)msg + 8, sizeof vh);
		uint64_t d = t_fnv((const char *)msg + 8 + sizeof vh, len - 8 - sizeof vh, T_FNV_INIT);
		if (len != 8 + sizeof vh + vh.size || memcmp(vh.digest, &d, sizeof d) != 0)
			verify_bad++;
	}
}

static void confchg(hdb_handle_t h, const unsigned int *m, size_t nm, const unsigned int *l, size_t nl,
		    const unsigned int *j, size_t nj, const struct evs_ring_id *r)
{
	if (first_is_conf < 0) {
		first_is_conf = 1;
		conf_ok = nm == 1 && m[0] == local && nl == 0 && nj == 1 && j[0] == local && r != NULL;
	}
	nconf++;
}

static evs_callbacks_t cbs = { deliver, confchg };

static volatile sig_atomic_t ticks;
static void on_tick(int sig)
{
	(void)sig;
	ticks++;
}

static cs_error_t send2(evs_handle_t h, const struct evs_group *g, struct iovec *iov, int n, int *tries)
{
	for (;;) {
		cs_error_t rc = g ? evs_mcast_groups(h, EVS_TYPE_AGREED, g, 1, iov, n)
				  : evs_mcast_joined(h, EVS_TYPE_AGREED, iov, n);
		if (rc != CS_ERR_TRY_AGAIN)
			return rc;
		if (tries)
			(*tries)++;
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
}

static void wait_for(evs_handle_t h, int ph, uint64_t want, int ms)
{
	int fd;
	evs_fd_get(h, &fd);
	int64_t end = t_now_ms() + ms;
	while (ndeliver[ph] < want && t_now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 50);
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 150);
	evs_handle_t h;
	cs_error_t rc = evs_initialize(&h, &cbs);
	if (rc != CS_OK)
		t_skip_all("evs_initialize: %s", t_err(rc));
	unsigned int ids[32];
	size_t n = 32;
	CHECK_RC("testevs/membership_before_dispatch", evs_membership_get(h, &local, ids, &n), CS_OK);
	int single = n == 1 && ids[0] == local;
	if (!single)
		t_note("%zu nodes: the single-node startup confchg check is not made", n);
	struct evs_group g[3] = { e_group("key1"), e_group("key2"), e_group("key3") };
	CHECK_RC("testevs/join", evs_join(h, g, 3), CS_OK);

	/* testevs */
	static char buf[200000];
	int errors = 0;
	for (uint32_t i = 0; i < 500; i++) {
		uint32_t hdr[2] = { 0, i };
		memset(buf, 0, 2000);
		memcpy(buf, hdr, 8);
		snprintf(buf + 8, 64, "evs_mcast_joined: This is message %u", i);
		struct iovec iov = { buf, 2000 };
		errors += send2(h, NULL, &iov, 1, NULL) != CS_OK;
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
	wait_for(h, 0, 500, 10000);
	CHECK("testevs/no_error", !errors, "%d sends failed", errors);
	CHECK("testevs/startup_confchg_first", first_is_conf == 1, "first callback was a delivery");
	if (single)
		CHECK("testevs/startup_confchg_lists", conf_ok, "not member=[%x] left=[] joined=[%x] ring!=NULL", local,
		      local);
	CHECK("testevs/joined_all_in_order", ndeliver[0] == 500 && !disorder, "%" PRIu64 " of 500, %d out of order",
	      ndeliver[0], disorder);
	for (uint32_t i = 0; i < 500; i++) {
		uint32_t hdr[2] = { 1, i };
		memcpy(buf, hdr, 8);
		snprintf(buf + 8, 64, "evs_mcast_groups: This is message %u", i);
		struct iovec iov = { buf, 2000 };
		errors += send2(h, &g[1], &iov, 1, NULL) != CS_OK;
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
	wait_for(h, 1, 500, 10000);
	CHECK("testevs/groups_all_in_order", ndeliver[1] == 500 && !disorder && !errors,
	      "%" PRIu64 " of 500, %d out of order, %d errors", ndeliver[1], disorder, errors);
	CHECK("testevs/no_second_confchg", nconf == 1, "%d confchgs", nconf);

	/* evsbench, short rounds, interrupted by a timer signal */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_tick;
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: poll and friends see EINTR */
	timer_t timer;
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	int have_timer = timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0;
	if (have_timer) {
		struct itimerspec its = { { 0, 3000000 }, { 0, 3000000 } };
		timer_settime(timer, 0, &its, NULL);
	}
	uint32_t sent = 0;
	int bench_errors = 0, tries = 0;
	for (int round = 0; round < 3; round++) {
		size_t size = 1 + 1000 * (size_t)round;
		if (size < 8)
			size = 8;
		uint32_t writes = 0;
		int64_t end = t_now_ms() + 1000;
		while (t_now_ms() < end) {
			uint32_t hdr[2] = { 2, sent };
			memcpy(buf, hdr, 8);
			struct iovec iov = { buf, size };
			if (send2(h, NULL, &iov, 1, &tries) != CS_OK) {
				bench_errors++;
				break;
			}
			sent++;
			writes++;
			if (evs_dispatch(h, CS_DISPATCH_ALL) != CS_OK)
				bench_errors++;
		}
		t_note("evsbench round %d: %u writes of %zu bytes in 1 s", round, writes, size);
		CHECK("evsbench/writes", writes > 0, "round %d: no write", round);
	}
	if (have_timer)
		timer_delete(timer);
	wait_for(h, 2, sent, 20000);
	CHECK("evsbench/no_error", !bench_errors, "%d errors", bench_errors);
	CHECK("evsbench/signals_seen", !have_timer || ticks > 100, "only %d timer signals", (int)ticks);
	CHECK("evsbench/nothing_lost", ndeliver[2] == sent && !disorder, "%" PRIu64 " of %u, %d out of order",
	      ndeliver[2], sent, disorder);
	t_note("evsbench: %u messages, %d TRY_AGAIN retries, %d timer signals", sent, tries, (int)ticks);

	/* evsverify */
	CHECK_RC("evsverify/leave_key1", evs_leave(h, &g[0], 1), CS_OK);
	srand(1);
	uint32_t vsent = 0;
	int64_t vend = t_now_ms() + 4000;
	while (t_now_ms() < vend && vsent < 2000) {
		uint32_t size = 100 + (uint32_t)(rand() % 100000);
		uint32_t hdr[2] = { 3, vsent };
		static char body[8 + 100100];
		memcpy(body, hdr, 8);
		for (uint32_t j = 0; j < size; j++)
			body[8 + j] = (char)(j & 0xff);
		snprintf(body + 8, 64, "evs_mcast_joined: This is message %12u", vsent);
		struct vhdr vh;
		memset(&vh, 0, sizeof vh);
		vh.size = size;
		uint64_t d = t_fnv(body + 8, size, T_FNV_INIT);
		memcpy(vh.digest, &d, sizeof d);
		/* three iovecs: phase+seq, the 24-byte header, the body */
		struct iovec iov[3] = { { body, 8 }, { &vh, sizeof vh }, { body + 8, size } };
		if (send2(h, NULL, iov, 3, NULL) != CS_OK) {
			errors++;
			break;
		}
		vsent++;
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
	wait_for(h, 3, vsent, 20000);
	CHECK("evsverify/all_intact", ndeliver[3] == vsent && !verify_bad && !disorder && !errors,
	      "%" PRIu64 " of %u delivered, %d bad, %d out of order, %d errors", ndeliver[3], vsent, verify_bad,
	      disorder, errors);
	t_note("evsverify: %u messages checked", vsent);
	CHECK_RC("finalize", evs_finalize(h), CS_OK);
	return t_done();
}
