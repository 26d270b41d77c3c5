/*
 * evs_daemon: departures. A member process that exits or is killed is not
 * an EVS configuration change (EVS reports nodes, not processes) and does
 * not disturb the others. When the server is SIGKILLed, every handle of
 * the process learns it -- a blocked evs_dispatch returns CS_ERR_LIBRARY
 * promptly, requests fail with CS_ERR_LIBRARY -- while evs_fd_get and the
 * context calls still work; nothing of ours stays in /dev/shm; and once
 * the server is back, evs_initialize works again.
 */
#include "evs_tap.h"
#include <pthread.h>

static evs_handle_t blocked_handle;
static volatile cs_error_t blocked_rc = (cs_error_t)-1;
static volatile int64_t blocked_at;

static void *blocked_dispatch(void *arg)
{
	(void)arg;
	cs_error_t rc = evs_dispatch(blocked_handle, CS_DISPATCH_BLOCKING);
	blocked_at = t_now_ms();
	blocked_rc = rc;
	return NULL;
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 100);
	struct e_rec *ra = e_rec_new(), *rb = e_rec_new();
	evs_handle_t a, b;
	e_init_or_skip(&a, ra);
	REQUIRE_RC("second_handle", e_init(&b, rb), CS_OK);
	struct evs_group k1 = e_group("daemon-key1");
	CHECK_RC("join_a", evs_join(a, &k1, 1), CS_OK);
	CHECK_RC("join_b", evs_join(b, &k1, 1), CS_OK);
	e_wait(a, ra, E_CONFCHG, 1, 5000);
	e_wait(b, rb, E_CONFCHG, 1, 5000);

	/* a child joins, sends one message, and is SIGKILLed; another exits */
	for (int kill_it = 0; kill_it < 2; kill_it++) {
		int sync[2];
		if (pipe(sync) < 0)
			return 1;
		pid_t pid = t_fork();
		if (pid == 0) {
			evs_handle_t c;
			if (evs_initialize(&c, NULL) != CS_OK || evs_join(c, &k1, 1) != CS_OK)
				_exit(2);
			if (e_send_groups(c, &k1, 1, "child", 5) != CS_OK)
				_exit(3);
			if (write(sync[1], "s", 1) != 1)
				_exit(4);
			if (kill_it)
				pause();
			_exit(0); /* without evs_finalize */
		}
		char ch;
		CHECK("child_sent", t_read_all(sync[0], &ch, 1, 10000) == 0, "child did not report");
		if (kill_it)
			kill(pid, SIGKILL);
		int st = t_wait_child(pid, 10000);
		CHECK("child_gone", kill_it ? WIFSIGNALED(st) : st == 0, "child status %d", st);
		close(sync[0]);
		close(sync[1]);
	}
	size_t conf_before = ra->nconfchg;
	CHECK("children_messages", e_wait(a, ra, E_DELIVER, 2, 5000), "a got %zu of the children's 2 messages",
	      ra->ndeliver);
	e_pump(a, 1500, NULL, NULL);
	CHECK("process_exit_is_no_confchg", ra->nconfchg == conf_before,
	      "%zu configuration changes after processes left", ra->nconfchg - conf_before);
	size_t d_before = ra->ndeliver;
	CHECK_RC("still_sends", e_send_groups(b, &k1, 1, "after", 5), CS_OK);
	CHECK("still_receives", e_wait(a, ra, E_DELIVER, d_before + 1, 5000), "no delivery after children left");

	if (!t_harness_available()) {
		t_note("no harness (CPG_TEST_CTL): the server-kill part is not run");
		return t_done();
	}
	/* the server dies while b's dispatch is blocked */
	blocked_handle = b;
	evs_dispatch(b, CS_DISPATCH_ALL);
	pthread_t th;
	pthread_create(&th, NULL, blocked_dispatch, NULL);
	t_sleep_ms(200);
	pid_t dpid = t_daemon_pid();
	char reply[128] = "";
	REQUIRE("harness_kill9", t_harness("kill9", reply, sizeof reply, 15000) == 0, "reply '%s'", reply);
	int64_t killed_at = t_now_ms();
	int64_t end = t_now_ms() + 10000;
	while ((int)blocked_rc == -1 && t_now_ms() < end)
		t_sleep_ms(10);
	CHECK("blocked_dispatch_returns_library", blocked_rc == CS_ERR_LIBRARY, "blocked dispatch: %s",
	      (int)blocked_rc == -1 ? "still blocked after 10 s" : t_err(blocked_rc));
	if ((int)blocked_rc != -1) {
		pthread_join(th, NULL);
		t_note("blocked dispatch returned %lld ms after the kill", (long long)(blocked_at - killed_at));
	}
	unsigned int ids[8], local;
	size_t n = 8;
	CHECK_RC("dead/dispatch", evs_dispatch(a, CS_DISPATCH_ALL), CS_ERR_LIBRARY);
	CHECK_RC("dead/join", evs_join(a, &k1, 1), CS_ERR_LIBRARY);
	CHECK_RC("dead/leave", evs_leave(a, &k1, 1), CS_ERR_LIBRARY);
	struct iovec iov = { "x", 1 };
	CHECK_RC("dead/mcast_joined", evs_mcast_joined(a, EVS_TYPE_AGREED, &iov, 1), CS_ERR_LIBRARY);
	CHECK_RC("dead/mcast_groups", evs_mcast_groups(b, EVS_TYPE_AGREED, &k1, 1, &iov, 1), CS_ERR_LIBRARY);
	CHECK_RC("dead/membership_get", evs_membership_get(a, &local, ids, &n), CS_ERR_LIBRARY);
	int fd;
	void *ctx;
	CHECK_RC("dead/fd_get", evs_fd_get(a, &fd), CS_OK);
	CHECK_RC("dead/context_get", evs_context_get(a, &ctx), CS_OK);
	CHECK("dead/context_value", ctx == ra, "context lost");
	struct pollfd p = { fd, POLLIN, 0 };
	CHECK("dead/fd_readable", poll(&p, 1, 0) == 1, "descriptor not readable after the server died");

	/* with no server, a new handle is TRY_AGAIN (as in 1.4) */
	evs_handle_t x;
	CHECK_RC("no_server/initialize", evs_initialize(&x, NULL), CS_ERR_TRY_AGAIN);

	CHECK_RC("dead/finalize_a", evs_finalize(a), CS_OK);
	CHECK_RC("dead/finalize_b", evs_finalize(b), CS_OK);

	/* nothing of our connection left in /dev/shm */
	char pattern[96];
	snprintf(pattern, sizeof pattern, "/dev/shm/qb-%d-%d-*", (int)dpid, (int)getpid());
	int cnt = 0;
	for (int k = 0; k < 20; k++) {
		cnt = t_shm_count(pattern, NULL);
		if (!cnt)
			break;
		t_sleep_ms(100);
	}
	CHECK("shm_nothing_left", cnt == 0, "%d %s entries left", cnt, pattern);

	/* the server comes back: EVS works again */
	REQUIRE("harness_start", t_harness("start", reply, sizeof reply, 40000) == 0, "reply '%s'", reply);
	struct e_rec *rc2 = e_rec_new();
	evs_handle_t h2;
	cs_error_t rc = CS_ERR_TRY_AGAIN;
	for (int k = 0; k < 100 && rc == CS_ERR_TRY_AGAIN; k++) {
		rc = e_init(&h2, rc2);
		if (rc == CS_ERR_TRY_AGAIN)
			t_sleep_ms(100);
	}
	REQUIRE_RC("restart/initialize", rc, CS_OK);
	CHECK("restart/startup_confchg", e_wait(h2, rc2, E_CONFCHG, 1, 5000), "no startup confchg");
	CHECK_RC("restart/join", evs_join(h2, &k1, 1), CS_OK);
	CHECK_RC("restart/send", e_send_groups(h2, &k1, 1, "again", 5), CS_OK);
	CHECK("restart/self_delivery", e_wait(h2, rc2, E_DELIVER, 1, 5000), "no delivery after restart");
	CHECK_RC("restart/finalize", evs_finalize(h2), CS_OK);
	e_rec_free(ra);
	e_rec_free(rb);
	e_rec_free(rc2);
	return t_done();
}
