/*
 * evs_threads: what corosync 1.4's testevsth did, asserted -- a thread sits
 * in evs_dispatch(CS_DISPATCH_BLOCKING) while the main thread joins three
 * groups, leaves one, and sends 2 x 20000 messages of 1000 bytes
 * (evs_mcast_joined, then evs_mcast_groups to key2); the callback count
 * must reach exactly 40000, in send order, and evs_finalize from the main
 * thread must end the blocked dispatch with CS_OK. Then three threads send
 * on one handle at once while another dispatches it: each thread's
 * messages arrive complete and in order.
 */
#include "evs_tap.h"
#include <pthread.h>
#include <stdatomic.h>

#define N 20000
#define SENDERS 3
#define PER_SENDER 5000

struct m {
	uint32_t phase, thread, seq;
	char pad[1000 - 12];
};

static atomic_uint count, bad;
static uint32_t next_seq[3][SENDERS];

static void deliver(hdb_handle_t h, unsigned int nodeid, const void *msg, size_t len)
{
	struct m mm;
	if (len != sizeof mm) {
		atomic_fetch_add(&bad, 1);
		return;
	}
	memcpy(&mm, msg, sizeof mm);
	if (mm.phase > 2 || mm.thread >= SENDERS || mm.seq != next_seq[mm.phase][mm.thread])
		atomic_fetch_add(&bad, 1);
	else
		next_seq[mm.phase][mm.thread]++;
	atomic_fetch_add(&count, 1);
}

static atomic_uint nconf;
static void confchg(hdb_handle_t h, const unsigned int *m, size_t nm, const unsigned int *l, size_t nl,
		    const unsigned int *j, size_t nj, const struct evs_ring_id *r)
{
	atomic_fetch_add(&nconf, 1);
}

static evs_callbacks_t cbs = { deliver, confchg };
static evs_handle_t h;
static cs_error_t dispatch_rc = (cs_error_t)-1;
static atomic_int dispatch_done;

static void *dispatcher(void *arg)
{
	(void)arg;
	dispatch_rc = evs_dispatch(h, CS_DISPATCH_BLOCKING);
	atomic_store(&dispatch_done, 1);
	return NULL;
}

static atomic_uint send_errors;
static struct evs_group key2;

static cs_error_t send_one(uint32_t phase, uint32_t thread, uint32_t seq)
{
	struct m mm;
	memset(&mm, 0, sizeof mm);
	mm.phase = phase;
	mm.thread = thread;
	mm.seq = seq;
	struct iovec iov = { &mm, sizeof mm };
	int64_t end = t_now_ms() + 20000;
	for (;;) {
		cs_error_t rc = phase == 1 ? evs_mcast_groups(h, EVS_TYPE_AGREED, &key2, 1, &iov, 1)
					   : evs_mcast_joined(h, EVS_TYPE_AGREED, &iov, 1);
		if (rc != CS_ERR_TRY_AGAIN || t_now_ms() > end)
			return rc;
		sched_yield();
	}
}

static void *sender(void *arg)
{
	uint32_t t = (uint32_t)(uintptr_t)arg;
	for (uint32_t i = 0; i < PER_SENDER; i++)
		if (send_one(2, t, i) != CS_OK) {
			atomic_fetch_add(&send_errors, 1);
			break;
		}
	return NULL;
}

static int wait_count(unsigned want, int ms)
{
	int64_t end = t_now_ms() + ms;
	while (atomic_load(&count) < want && t_now_ms() < end)
		t_sleep_ms(5);
	return atomic_load(&count) == want;
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 150);
	cs_error_t rc = evs_initialize(&h, &cbs);
	if (rc != CS_OK)
		t_skip_all("evs_initialize: %s", t_err(rc));
	pthread_t th;
	pthread_create(&th, NULL, dispatcher, NULL);

	struct evs_group g[3] = { e_group("th-key1"), e_group("th-key2"), e_group("th-key3") };
	key2 = g[1];
	CHECK_RC("join", evs_join(h, g, 3), CS_OK);
	CHECK_RC("leave_key1", evs_leave(h, g, 1), CS_OK);
	int errors = 0;
	for (uint32_t i = 0; i < N && !errors; i++)
		errors += send_one(0, 0, i) != CS_OK;
	for (uint32_t i = 0; i < N && !errors; i++)
		errors += send_one(1, 0, i) != CS_OK;
	CHECK("no_send_error", !errors, "a send failed");
	CHECK("all_delivered_once", wait_count(2 * N, 60000), "%u of %u callbacks", atomic_load(&count), 2 * N);
	t_sleep_ms(200);
	CHECK("exactly_2N", atomic_load(&count) == 2 * N && !atomic_load(&bad), "%u callbacks, %u out of order",
	      atomic_load(&count), atomic_load(&bad));
	CHECK("one_startup_confchg", atomic_load(&nconf) == 1, "%u confchgs", atomic_load(&nconf));

	/* three senders on the same handle, the dispatcher still running */
	pthread_t s[SENDERS];
	for (uintptr_t t = 0; t < SENDERS; t++)
		pthread_create(&s[t], NULL, sender, (void *)t);
	for (int t = 0; t < SENDERS; t++)
		pthread_join(s[t], NULL);
	CHECK("concurrent_senders/no_error", !atomic_load(&send_errors), "%u sender threads failed",
	      atomic_load(&send_errors));
	CHECK("concurrent_senders/all_delivered", wait_count(2 * N + SENDERS * PER_SENDER, 60000),
	      "%u of %u callbacks", atomic_load(&count), 2 * N + SENDERS * PER_SENDER);
	CHECK("concurrent_senders/fifo_each", !atomic_load(&bad), "%u out of order", atomic_load(&bad));

	/* finalize from this thread ends the blocked dispatch with CS_OK */
	CHECK_RC("finalize", evs_finalize(h), CS_OK);
	int64_t end = t_now_ms() + 5000;
	while (!atomic_load(&dispatch_done) && t_now_ms() < end)
		t_sleep_ms(5);
	CHECK("blocked_dispatch_returned", atomic_load(&dispatch_done), "dispatch still blocked 5 s after finalize");
	if (atomic_load(&dispatch_done)) {
		pthread_join(th, NULL);
		CHECK("blocked_dispatch_ok", dispatch_rc == CS_OK, "dispatch returned %s", t_err(dispatch_rc));
	}
	return t_done();
}
