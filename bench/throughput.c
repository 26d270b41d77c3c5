/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* cpgbench-style throughput: one process joins a group and multicasts
 * messages of a given size as fast as flow control allows for a fixed
 * time, dispatching its own deliveries. Prints one line:
 *   size msgs seconds msgs_per_s MB_per_s try_again cpu_us_per_msg
 * (seconds runs from the first send until the last message came back;
 * try_again counts CS_ERR_TRY_AGAIN answers, i.e. flow-control back-offs;
 * cpu_us_per_msg is this process's CPU time (user + system) over the same
 * span divided by the messages: the library's cost, which unlike the rate
 * hardly depends on how busy the machine is).
 *
 * Usage: throughput SIZE SECONDS [zc]
 *   zc: send with cpg_zcb_alloc / cpg_zcb_mcast_joined instead of
 *       cpg_mcast_joined.
 *
 * Correctness: every message carries a sequence number (SIZE >= 8); each
 * delivery must come from this process, have the right length and the next
 * sequence number. A lost, duplicated, reordered or truncated message, any
 * error from the library, or not getting every message back within
 * DRAIN_SECONDS makes it print a reason on stderr and exit 1. A watchdog
 * (alarm) ends it with exit 3 if the library blocks (SECONDS + WATCHDOG_SLACK). */
#include <corosync/cpg.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_SECONDS 5.0
#define WATCHDOG_SLACK 8

static uint64_t delivered, delivered_bytes, sent;
static size_t msg_size;
static uint32_t my_pid, my_nodeid;
static int failed;
static const char *phase = "start";

static void fail(const char *why)
{
	if (!failed)
		fprintf(stderr, "throughput: %s (size %zu, sent %" PRIu64 ", delivered %" PRIu64 ")\n", why,
			msg_size, sent, delivered);
	failed = 1;
}

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	(void)h;
	(void)g;
	if (pid != my_pid || (my_nodeid && nodeid != my_nodeid))
		fail("delivery from an unexpected sender");
	else if (len != msg_size)
		fail("delivery with the wrong length");
	else if (msg_size >= sizeof(uint64_t)) {
		uint64_t seq;
		memcpy(&seq, msg, sizeof(seq));
		if (seq != delivered)
			fail(seq < delivered ? "duplicated or reordered message" : "lost message");
	}
	delivered++;
	delivered_bytes += len;
}

static void on_alarm(int sig)
{
	char buf[200];
	(void)sig;
	int n = snprintf(buf, sizeof(buf),
			 "throughput: watchdog: stuck in the library (%s; size %zu, sent %" PRIu64
			 ", delivered %" PRIu64 ")\n",
			 phase, msg_size, sent, delivered);
	if (n > 0)
		(void)!write(2, buf, (size_t)n);
	_exit(3);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
	       (double)u.ru_stime.tv_usec / 1e6;
}

static int dispatch(cpg_handle_t h)
{
	cs_error_t e = cpg_dispatch(h, CS_DISPATCH_ALL);
	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		char why[64];
		snprintf(why, sizeof(why), "cpg_dispatch returned %d", (int)e);
		fail(why);
		return -1;
	}
	return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	double seconds = argc > 2 ? atof(argv[2]) : 2.0;
	int zc = argc > 3 && strcmp(argv[3], "zc") == 0;
	cpg_callbacks_t cb = { deliver, NULL };
	cpg_handle_t h;
	struct cpg_name group;
	void *buf = NULL;
	uint64_t try_again = 0;
	cs_error_t e;
	int fd;

	if (size == 0 || seconds <= 0) {
		fprintf(stderr, "usage: throughput SIZE SECONDS [zc]\n");
		return 2;
	}
	msg_size = size;
	my_pid = (uint32_t)getpid();
	signal(SIGALRM, on_alarm);
	alarm((unsigned)seconds + WATCHDOG_SLACK);

	phase = "cpg_initialize";
	if ((e = cpg_initialize(&h, &cb)) != CS_OK) {
		fprintf(stderr, "throughput: cpg_initialize failed: %d\n", (int)e);
		return 1;
	}
	phase = "cpg_local_get";
	if (cpg_local_get(h, &my_nodeid) != CS_OK)
		my_nodeid = 0;
	snprintf(group.value, sizeof(group.value), "bench-%d", (int)getpid());
	group.length = strlen(group.value);
	phase = "cpg_join";
	if ((e = cpg_join(h, &group)) != CS_OK) {
		fprintf(stderr, "throughput: cpg_join failed: %d\n", (int)e);
		return 1;
	}
	if ((e = cpg_fd_get(h, &fd)) != CS_OK) {
		fprintf(stderr, "throughput: cpg_fd_get failed: %d\n", (int)e);
		return 1;
	}
	if (zc) {
		phase = "cpg_zcb_alloc";
		if ((e = cpg_zcb_alloc(h, size, &buf)) != CS_OK) {
			fprintf(stderr, "throughput: cpg_zcb_alloc failed: %d\n", (int)e);
			return 1;
		}
	} else {
		buf = malloc(size);
		if (!buf)
			return 1;
	}
	memset(buf, 0xa5, size);
	struct iovec iov = { buf, size };
	double cpu_start = cpu_seconds();
	double start = now(), end = start + seconds;
	phase = "sending";
	while (!failed && now() < end) {
		if (size >= sizeof(uint64_t))
			memcpy(buf, &sent, sizeof(sent));
		e = zc ? cpg_zcb_mcast_joined(h, CPG_TYPE_AGREED, buf, size)
		       : cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		if (e == CS_OK) {
			sent++;
		} else if (e == CS_ERR_TRY_AGAIN) {
			struct pollfd p = { fd, POLLIN, 0 };
			try_again++;
			poll(&p, 1, 1);
		} else {
			char why[64];
			snprintf(why, sizeof(why), "%s returned %d", zc ? "cpg_zcb_mcast_joined" : "cpg_mcast_joined",
				 (int)e);
			fail(why);
			break;
		}
		if (dispatch(h))
			break;
	}
	/* Wait for our own messages to come back (bounded). */
	phase = "draining";
	double drain_end = now() + DRAIN_SECONDS;
	while (!failed && delivered < sent && now() < drain_end) {
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 100);
		if (dispatch(h))
			break;
	}
	double took = now() - start;
	double cpu = cpu_seconds() - cpu_start;
	if (!failed && delivered != sent)
		fail("not every message came back");
	if (failed)
		return 1;
	phase = "finalizing";
	printf("%zu %" PRIu64 " %.3f %.0f %.2f %" PRIu64 " %.2f\n", size, sent, took, (double)sent / took,
	       (double)delivered_bytes / took / 1e6, try_again, sent ? cpu * 1e6 / (double)sent : 0.0);
	fflush(stdout);
	if (zc && (e = cpg_zcb_free(h, buf)) != CS_OK) {
		fprintf(stderr, "throughput: cpg_zcb_free failed: %d\n", (int)e);
		return 1;
	}
	if ((e = cpg_finalize(h)) != CS_OK) {
		fprintf(stderr, "throughput: cpg_finalize failed: %d\n", (int)e);
		return 1;
	}
	if (!zc)
		free(buf);
	return 0;
}
