/*
 * cancel_dispatch: what fence_virtd does at shutdown -- pthread_cancel a
 * thread blocked in cpg_dispatch(CS_DISPATCH_BLOCKING) on a joined handle.
 * The thread must be cancelled promptly (the blocking wait is a cancellation
 * point), the process must not abort, other handles and cpg_finalize must not
 * hang afterwards (a lock left held would show here), and the process exits 0.
 */
#include "tap.h"
#include <pthread.h>

static void *dispatcher(void *a)
{
	cpg_handle_t h = *(cpg_handle_t *)a;
	for (;;)
		cpg_dispatch(h, CS_DISPATCH_BLOCKING);
	return NULL;
}

int main(int argc, char **argv)
{
	cpg_handle_t h, h2;
	struct t_rec r, r2;
	struct cpg_name g;
	pthread_t th;
	void *ret = NULL;
	struct timespec ts;
	int64_t t0;
	int jr;
	uint32_t nodeid = 0;

	(void)argc;
	t_start(argv[0], 30);
	t_name(&g, "cancel_dispatch-%d", (int)getpid());
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);
	pthread_create(&th, NULL, dispatcher, &h);
	t_sleep_ms(300);
	{
		struct iovec iov = { "m", 1 };
		/* one message while the thread dispatches (from this thread) */
		CHECK_RC("mcast_while_dispatching", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	}
	t_sleep_ms(300);
	t0 = t_now_ms();
	CHECK("cancel", pthread_cancel(th) == 0, "pthread_cancel failed");
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	jr = pthread_timedjoin_np(th, &ret, &ts);
	CHECK("thread_cancelled_promptly", jr == 0 && ret == PTHREAD_CANCELED,
	      jr ? "thread still running 3 s after pthread_cancel" : "thread ended without being cancelled");
	if (jr != 0) {
		t_note("cannot continue: thread stuck");
		return t_done();
	}
	t_note("cancelled after %" PRId64 " ms", t_now_ms() - t0);
	CHECK("delivered_before_cancel", r.ndeliver == 1, "%zu deliveries", r.ndeliver);
	/* the library still works: a request on the same handle, a new handle */
	CHECK_RC("local_get_after_cancel", cpg_local_get(h, &nodeid), CS_OK);
	CHECK_RC("new_handle_after_cancel", t_init(&h2, &r2), CS_OK);
	CHECK_RC("new_handle_finalize", cpg_finalize(h2), CS_OK);
	t0 = t_now_ms();
	CHECK_RC("finalize_after_cancel", cpg_finalize(h), CS_OK);
	CHECK("finalize_after_cancel_prompt", t_now_ms() - t0 < 2000, "took %" PRId64 " ms", t_now_ms() - t0);
	t_rec_free(&r);
	t_rec_free(&r2);
	return t_done();
}
