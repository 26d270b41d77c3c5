/*
 * frag_kill: a client SIGKILLed in the middle of a fragmented send
 * (cpg_mcast_joined of 6 MiB: 7 fragments) leaves nothing behind.
 *
 * A child joins the group and sends 6 MiB messages in a loop; the parent,
 * a member of the same group, checks every delivery.  When the child is
 * inside cpg_mcast_joined (a flag in shared memory, set around the call)
 * and has been inside the same call for 0.3-0.7 ms, the parent SIGKILLs it.  Then:
 *  - the parent gets a confchg with the child in `left`, reason PROCDOWN;
 *  - cpg_membership_get no longer lists the child;
 *  - every message delivered from the child is complete and intact, in
 *    order, and only the messages the child finished (plus possibly the
 *    one it was sending, if all its fragments had gone out) -- never a
 *    partial one, also not after the confchg;
 *  - no /dev/shm/qb-*-<child pid>-* entry is left (the server removes the
 *    connection's files).
 * Repeated until three kills landed inside the call (at most 12 tries).
 */
#include "tap.h"
#include <sys/mman.h>

#define SIZE (6u * 1024 * 1024 + 123)
#define WANT_MID 3
#define MAX_TRIES 12

struct shared {
	volatile int joined;
	volatile int in_call;
	volatile uint64_t completed; /* calls that returned CS_OK */
};

static struct shared *sh;
static unsigned char *ref;
static struct cpg_name g;

/* receiver state for the current child */
static uint32_t child_pid;
static uint64_t got, bad, after_down;
static int down, joined_seen;
static char why[200];

static void on_deliver(cpg_handle_t h, const struct cpg_name *grp, uint32_t nodeid, uint32_t pid, void *msg,
		       size_t len)
{
	uint64_t seq = UINT64_MAX;
	(void)h;
	(void)grp;
	(void)nodeid;
	if (pid != child_pid)
		return;
	if (down)
		after_down++;
	if (len >= 8)
		memcpy(&seq, msg, 8);
	if (len != SIZE || seq != got || memcmp((char *)msg + 8, ref + 8, SIZE - 8) != 0) {
		if (!bad++)
			snprintf(why, sizeof why, "delivery %" PRIu64 ": %zu bytes (want %u), seq %" PRIu64 ", content %s",
				 got, len, SIZE, seq,
				 len == SIZE && memcmp((char *)msg + 8, ref + 8, SIZE - 8) == 0 ? "ok" : "wrong");
	}
	got++;
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *grp, const struct cpg_address *m, size_t nm,
		       const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj)
{
	size_t i;
	(void)h;
	(void)grp;
	(void)m;
	(void)nm;
	for (i = 0; i < nj; i++)
		if (j[i].pid == child_pid)
			joined_seen = 1;
	for (i = 0; i < nl; i++)
		if (l[i].pid == child_pid) {
			if (l[i].reason == CPG_REASON_PROCDOWN)
				down = 1;
			else if (!bad++)
				snprintf(why, sizeof why, "child left with reason %u", l[i].reason);
		}
}

static cpg_callbacks_t cbs = { on_deliver, on_confchg };

static void ignore(cpg_handle_t h, const struct cpg_name *grp, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	(void)h;
	(void)grp;
	(void)nodeid;
	(void)pid;
	(void)msg;
	(void)len;
}

static void child(void)
{
	cpg_handle_t h;
	/* corosync's library calls a NULL deliver callback (and crashes) */
	cpg_callbacks_t none = { ignore, NULL };
	unsigned char *b = malloc(SIZE);
	struct iovec iov = { b, SIZE };
	uint64_t seq = 0;
	if (!b || cpg_initialize(&h, &none) != CS_OK || cpg_join(h, &g) != CS_OK)
		_exit(2);
	memcpy(b, ref, SIZE);
	sh->joined = 1;
	for (;;) {
		cs_error_t rc;
		memcpy(b, &seq, 8);
		sh->in_call = 1;
		rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		sh->in_call = 0;
		if (rc == CS_OK) {
			sh->completed = ++seq;
		} else if (rc != CS_ERR_TRY_AGAIN) {
			_exit(3);
		}
		/* its own copies */
		if (cpg_dispatch(h, CS_DISPATCH_ALL) != CS_OK)
			_exit(4);
	}
}

static int64_t t_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int pred_down(void *a)
{
	(void)a;
	return down;
}
static int pred_joined_and_one(void *a)
{
	(void)a;
	return joined_seen && got >= 1;
}

static int member_listed(cpg_handle_t h, uint32_t pid, int *err)
{
	struct cpg_address m[CPG_MEMBERS_MAX];
	int n = CPG_MEMBERS_MAX, i;
	cs_error_t rc = cpg_membership_get(h, &g, m, &n);
	*err = rc != CS_OK;
	for (i = 0; i < n && rc == CS_OK; i++)
		if (m[i].pid == pid)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	int fd, tries, mid = 0;
	char pat[128];

	(void)argc;
	t_start(argv[0], 110);
	ref = malloc(SIZE);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE("setup", ref && sh != MAP_FAILED, "out of memory");
	t_fill(ref, SIZE, 4242);
	t_name(&g, "frag_kill-%d", (int)getpid());
	REQUIRE_RC("initialize", cpg_initialize(&h, &cbs), CS_OK);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	REQUIRE_RC("fd_get", cpg_fd_get(h, &fd), CS_OK);

	for (tries = 0; tries < MAX_TRIES && mid < WANT_MID; tries++) {
		pid_t pid;
		int st, n, nonempty, err, listed, in_call;
		uint64_t completed;
		int64_t end;
		char check[64];

		memset(sh, 0, sizeof *sh);
		got = bad = after_down = 0;
		down = joined_seen = 0;
		why[0] = 0;
		pid = t_fork();
		REQUIRE("fork", pid >= 0, "fork failed");
		if (pid == 0)
			child();
		child_pid = (uint32_t)pid;
		/* running: it joined and one message of it arrived here */
		if (!t_pump(h, 20000, pred_joined_and_one, NULL)) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			t_fail("child_running", "try %d: joined %d, %" PRIu64 " delivered", tries, joined_seen, got);
			break;
		}
		/* kill it inside cpg_mcast_joined, once it has been inside the
		 * same call for a while (some fragments are out by then) */
		end = t_now_ms() + 5000;
		for (;;) {
			uint64_t c0 = sh->completed;
			int64_t since = t_now_us();
			while (sh->in_call && sh->completed == c0 && t_now_us() - since < 300 + 200 * (tries % 3))
				;
			if (sh->in_call && sh->completed == c0)
				break;
			if (t_now_ms() > end)
				break;
			/* not dispatching meanwhile: receiving the child's
			 * fragments kept this process busy exactly while the
			 * child was sending them */
			usleep(50);
		}
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		in_call = sh->in_call;
		completed = sh->completed;

		snprintf(check, sizeof check, "try%d_alive_until_killed", tries);
		{
			char how[64];
			t_fmt_status(how, sizeof how, st);
			CHECK(check, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child ended by itself: %s", how);
		}
		snprintf(check, sizeof check, "try%d_procdown", tries);
		CHECK(check, t_pump(h, 10000, pred_down, NULL), "no PROCDOWN confchg for pid %d", pid);
		/* anything still on its way */
		t_drain(h, 200);
		snprintf(check, sizeof check, "try%d_not_a_member", tries);
		listed = member_listed(h, child_pid, &err);
		CHECK(check, !listed && !err, "membership_get: %s", err ? "failed" : "still lists the killed child");
		snprintf(check, sizeof check, "try%d_no_partial_message", tries);
		CHECK(check, !bad && !after_down && (got == completed || got == completed + 1),
		      "%" PRIu64 " delivered, %" PRIu64 " completed by the child, %" PRIu64 " after its PROCDOWN%s%s",
		      got, completed, after_down, bad ? "; " : "", why);
		snprintf(pat, sizeof pat, "/dev/shm/qb-*-%d-*", pid);
		for (n = 0; n < 50 && t_shm_count(pat, &nonempty) > 0; n++)
			t_sleep_ms(100);
		snprintf(check, sizeof check, "try%d_no_shm_left", tries);
		CHECK(check, t_shm_count(pat, &nonempty) == 0, "%s still exists", pat);
		if (in_call) {
			mid++;
			t_note("try %d: killed inside cpg_mcast_joined after %" PRIu64 " messages (%" PRIu64
			       " delivered)",
			       tries, completed, got);
		} else {
			t_note("try %d: the kill landed between two calls", tries);
		}
	}
	CHECK("killed_mid_send", mid >= WANT_MID, "only %d of %d kills landed inside cpg_mcast_joined", mid, tries);
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	munmap(sh, sizeof *sh);
	free(ref);
	return t_done();
}
