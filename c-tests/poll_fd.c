/*
 * poll_fd: readiness of the descriptor from cpg_fd_get (spec 5.3).
 *  - not readable while idle (also over a 300 ms wait: no spurious wake-ups)
 *  - readable when a delivery is pending; not readable after dispatching it
 *  - with 3 pending: still readable after dispatching ONE, idle after ALL
 *  - readable for a pending confchg (another process joins, and exits)
 */
#include "tap.h"

static int readable(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int n = poll(&p, 1, ms);
	return n > 0 && (p.revents & POLLIN);
}

static int revents(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 0) <= 0)
		return 0;
	return p.revents;
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	struct cpg_name g;
	int fd, i;
	struct iovec iov = { "ping", 4 };
	int pfd[2];
	pid_t child;

	(void)argc;
	t_start(argv[0], 60);
	t_name(&g, "poll_fd-%d", (int)getpid());
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	fd = t_fd(h);
	REQUIRE("fd", fd >= 0, "no fd");
	CHECK("idle_after_initialize", !readable(fd, 200), "readable before anything happened (revents 0x%x)",
	      revents(fd));
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	CHECK("readable_for_join_confchg", readable(fd, 3000), "join confchg did not make the fd readable");
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 3000);
	t_drain(h, 100);
	CHECK("idle_after_dispatch", !readable(fd, 0), "readable after dispatching everything (revents 0x%x)",
	      revents(fd));
	CHECK("idle_stays_idle", !readable(fd, 300), "woke up while idle (revents 0x%x)", revents(fd));

	/* one delivery */
	CHECK_RC("mcast", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1), CS_OK);
	CHECK("readable_for_delivery", readable(fd, 3000), "pending delivery did not make the fd readable");
	CHECK_RC("dispatch_all", cpg_dispatch(h, CS_DISPATCH_ALL), CS_OK);
	CHECK("delivery_dispatched", r.ndeliver == 1, "%zu deliveries", r.ndeliver);
	CHECK("idle_after_dispatch_delivery", !readable(fd, 0), "readable after dispatching (revents 0x%x)",
	      revents(fd));

	/* three deliveries, dispatched one then all */
	for (i = 0; i < 3; i++)
		cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
	CHECK("readable_for_three", readable(fd, 3000), "not readable");
	t_sleep_ms(500);
	CHECK_RC("dispatch_one", cpg_dispatch(h, CS_DISPATCH_ONE), CS_OK);
	CHECK("still_readable_after_one_of_three", readable(fd, 0), "not readable with 2 events pending");
	CHECK_RC("dispatch_all_rest", cpg_dispatch(h, CS_DISPATCH_ALL), CS_OK);
	CHECK("four_deliveries", r.ndeliver == 4, "%zu deliveries", r.ndeliver);
	CHECK("idle_after_all_of_three", !readable(fd, 0), "readable after dispatching all (revents 0x%x)",
	      revents(fd));

	/* confchg from another process */
	if (pipe(pfd) < 0)
		return 1;
	child = t_fork();
	if (child == 0) {
		cpg_handle_t ch;
		struct t_rec cr;
		char c;
		close(pfd[1]);
		alarm(20);
		if (t_init(&ch, &cr) != CS_OK || cpg_join(ch, &g) != CS_OK)
			_exit(2);
		/* stay until the parent closes the pipe */
		(void)!read(pfd[0], &c, 1);
		_exit(0);
	}
	close(pfd[0]);
	CHECK("readable_for_other_join", readable(fd, 5000), "another process joining did not wake the fd");
	t_wait_members(h, &r, &g, 2, 5000);
	t_drain(h, 100);
	CHECK("idle_after_other_join", !readable(fd, 0), "readable after dispatching (revents 0x%x)", revents(fd));
	close(pfd[1]);
	CHECK("readable_for_other_exit", readable(fd, 5000), "the other process exiting did not wake the fd");
	CHECK("other_exit_confchg", t_wait_members(h, &r, &g, 1, 5000), "no confchg after the other process exited");
	t_drain(h, 100);
	CHECK("idle_at_end", !readable(fd, 0), "readable after dispatching (revents 0x%x)", revents(fd));
	{
		int st = t_wait_child(child, 5000);
		CHECK("child_ok", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	}
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	return t_done();
}
