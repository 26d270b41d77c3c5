/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Round-trip latency through the CPG server: two processes (fork) join one
 * group; A multicasts a PING, B answers with a PONG as soon as it sees the
 * PING, A waits for the PONG before the next PING. Each round trip is timed
 * with CLOCK_MONOTONIC (from just before A's cpg_mcast_joined to the
 * delivery of B's answer in A's callback). Both sides wait with poll() on
 * cpg_fd_get's fd and then call cpg_dispatch(CS_DISPATCH_ALL).
 *
 * Usage: latency SIZE COUNT [WARMUP]     (SIZE >= 16; defaults 64 5000 500)
 * Prints one line (microseconds):
 *   size count p50_us p99_us max_us mean_us
 *
 * Fails (stderr, exit 1) on any library error, an unexpected / lost /
 * duplicated message, or a round trip taking longer than RT_TIMEOUT_MS.
 * Whole run bounded by a watchdog (exit 3). */
#include <corosync/cpg.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x4c415431u /* "LAT1" */
#define PING 1
#define PONG 2
#define QUIT 3
#define RT_TIMEOUT_MS 5000
#define JOIN_TIMEOUT_MS 10000
#define WATCHDOG_SECONDS 120

struct hdr {
	uint32_t magic;
	uint32_t type;
	uint64_t seq;
};

static const char *who = "A";
static size_t msg_size;
static uint32_t my_pid, peer_pid;
static int failed;
static int members;     /* members of the group in the last confchg */
static int peer_left;   /* peer left the group */
/* A: the PONG seen for the current PING; B: the PING to answer / quit seen */
static int64_t got_seq = -1;
static int got_quit;
static uint64_t expect_seq; /* A: seq of the outstanding PING; B: next PING */

static void fail(const char *why)
{
	if (!failed)
		fprintf(stderr, "latency[%s]: %s (size %zu, seq %" PRIu64 ")\n", who, why, msg_size, expect_seq);
	failed = 1;
}

static void on_alarm(int sig)
{
	static const char m[] = "latency: watchdog: run took too long (stuck in the library?)\n";
	(void)sig;
	(void)!write(2, m, sizeof(m) - 1);
	_exit(3);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct hdr m;
	(void)h;
	(void)g;
	(void)nodeid;
	if (pid == my_pid)
		return; /* our own message coming back (agreed order) */
	if (len != msg_size || len < sizeof(m)) {
		fail("delivery with the wrong length");
		return;
	}
	memcpy(&m, msg, sizeof(m));
	if (m.magic != MAGIC || pid != peer_pid) {
		fail("delivery from an unexpected sender");
		return;
	}
	if (m.type == QUIT) {
		got_quit = 1;
		return;
	}
	int want = *who == 'A' ? PONG : PING;
	if ((int)m.type != want) {
		fail("unexpected message type");
		return;
	}
	if (m.seq != expect_seq || got_seq >= 0) {
		fail(m.seq < expect_seq || got_seq >= 0 ? "duplicated message" : "lost message");
		return;
	}
	got_seq = (int64_t)m.seq;
}

static void confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *memb, size_t nmemb,
		    const struct cpg_address *left, size_t nleft, const struct cpg_address *joined, size_t njoined)
{
	(void)h;
	(void)g;
	(void)memb;
	(void)joined;
	(void)njoined;
	members = (int)nmemb;
	for (size_t i = 0; i < nleft; i++)
		if (peer_pid && left[i].pid == peer_pid)
			peer_left = 1;
	if (!peer_pid && *who == 'A')
		for (size_t i = 0; i < nmemb; i++)
			if (memb[i].pid != my_pid)
				peer_pid = memb[i].pid;
}

/* poll + dispatch once; wait at most timeout_ms. -1 on error. */
static int pump(cpg_handle_t h, int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int r = poll(&p, 1, timeout_ms);
	if (r < 0 && errno != EINTR) {
		fail("poll failed");
		return -1;
	}
	if (r > 0) {
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			if (!(p.revents & POLLIN)) {
				fail("connection closed (POLLHUP/POLLERR)");
				return -1;
			}
		}
		cs_error_t e = cpg_dispatch(h, CS_DISPATCH_ALL);
		if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
			char why[64];
			snprintf(why, sizeof(why), "cpg_dispatch returned %d", (int)e);
			fail(why);
			return -1;
		}
	}
	return failed ? -1 : 0;
}

static int send_msg(cpg_handle_t h, int fd, void *buf, uint32_t type, uint64_t seq)
{
	struct hdr m = { MAGIC, type, seq };
	struct iovec iov = { buf, msg_size };
	memcpy(buf, &m, sizeof(m));
	uint64_t deadline = now_ns() + (uint64_t)RT_TIMEOUT_MS * 1000000u;
	for (;;) {
		cs_error_t e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		if (e == CS_OK)
			return 0;
		if (e != CS_ERR_TRY_AGAIN) {
			char why[64];
			snprintf(why, sizeof(why), "cpg_mcast_joined returned %d", (int)e);
			fail(why);
			return -1;
		}
		if (now_ns() > deadline) {
			fail("cpg_mcast_joined: CS_ERR_TRY_AGAIN for too long");
			return -1;
		}
		if (pump(h, fd, 1))
			return -1;
	}
}

static int setup(cpg_handle_t *h, int *fd, const struct cpg_name *group, cpg_callbacks_t *cb)
{
	cs_error_t e;
	if ((e = cpg_initialize(h, cb)) != CS_OK) {
		fprintf(stderr, "latency[%s]: cpg_initialize failed: %d\n", who, (int)e);
		return -1;
	}
	if ((e = cpg_join(*h, group)) != CS_OK) {
		fprintf(stderr, "latency[%s]: cpg_join failed: %d\n", who, (int)e);
		return -1;
	}
	if ((e = cpg_fd_get(*h, fd)) != CS_OK) {
		fprintf(stderr, "latency[%s]: cpg_fd_get failed: %d\n", who, (int)e);
		return -1;
	}
	return 0;
}

/* B: answer every PING until QUIT (or A leaves). */
static int run_b(const struct cpg_name *group, uint32_t a_pid)
{
	cpg_callbacks_t cb = { deliver, confchg };
	cpg_handle_t h;
	int fd;
	who = "B";
	my_pid = (uint32_t)getpid();
	peer_pid = a_pid;
	void *buf = calloc(1, msg_size);
	if (!buf || setup(&h, &fd, group, &cb))
		return 1;
	while (!failed && !got_quit) {
		if (pump(h, fd, 1000))
			break;
		if (got_seq >= 0) {
			uint64_t s = (uint64_t)got_seq;
			got_seq = -1;
			expect_seq = s + 1;
			if (send_msg(h, fd, buf, PONG, s))
				break;
		}
		if (peer_left && !got_quit) {
			fail("A left without saying QUIT");
			break;
		}
	}
	cpg_finalize(h);
	free(buf);
	return failed ? 1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	/* nearest rank */
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

int main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	long count = argc > 2 ? atol(argv[2]) : 5000;
	long warmup = argc > 3 ? atol(argv[3]) : 500;
	struct cpg_name group;
	cpg_callbacks_t cb = { deliver, confchg };
	cpg_handle_t h;
	int fd, status;

	if (size < sizeof(struct hdr) || count < 1 || warmup < 0) {
		fprintf(stderr, "usage: latency SIZE(>=16) COUNT [WARMUP]\n");
		return 2;
	}
	msg_size = size;
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_SECONDS);
	snprintf(group.value, sizeof(group.value), "lat-%d", (int)getpid());
	group.length = strlen(group.value);
	my_pid = (uint32_t)getpid();

	fflush(stdout);
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(WATCHDOG_SECONDS + 5);
		_exit(run_b(&group, my_pid));
	}

	uint64_t *rt = calloc((size_t)count, sizeof(*rt));
	void *buf = calloc(1, size);
	int rc = 1;
	if (!rt || !buf || setup(&h, &fd, &group, &cb))
		goto out_kill;

	/* wait until B is a member: from then on it sees every message we send */
	uint64_t deadline = now_ns() + (uint64_t)JOIN_TIMEOUT_MS * 1000000u;
	while (!failed && members < 2) {
		if (now_ns() > deadline) {
			fail("B did not join in time");
			break;
		}
		if (pump(h, fd, 100))
			break;
	}
	if (peer_pid != (uint32_t)child && !failed)
		fail("the other group member is not our child");

	for (long i = 0; !failed && i < warmup + count; i++) {
		expect_seq = (uint64_t)i;
		got_seq = -1;
		uint64_t t0 = now_ns();
		if (send_msg(h, fd, buf, PING, (uint64_t)i))
			break;
		uint64_t end = t0 + (uint64_t)RT_TIMEOUT_MS * 1000000u;
		while (!failed && got_seq < 0) {
			uint64_t t = now_ns();
			if (t > end) {
				fail("no answer in time (stall or lost message)");
				break;
			}
			if (peer_left) {
				fail("B left the group");
				break;
			}
			pump(h, fd, (int)((end - t) / 1000000u) + 1);
		}
		uint64_t t1 = now_ns();
		if (!failed && i >= warmup)
			rt[i - warmup] = t1 - t0;
	}
	if (!failed)
		send_msg(h, fd, buf, QUIT, 0);
	cpg_finalize(h);
	if (failed)
		goto out_kill;

	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "latency[A]: B failed (status 0x%x)\n", status);
		return 1;
	}
	qsort(rt, (size_t)count, sizeof(*rt), cmp_u64);
	double sum = 0;
	for (long i = 0; i < count; i++)
		sum += (double)rt[i];
	printf("%zu %ld %.1f %.1f %.1f %.1f\n", size, count, pct(rt, (size_t)count, 50), pct(rt, (size_t)count, 99),
	       (double)rt[count - 1] / 1000.0, sum / (double)count / 1000.0);
	free(rt);
	free(buf);
	return 0;

out_kill:
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	return rc;
}
