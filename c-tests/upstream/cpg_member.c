/*
 * cpg_member: fixture for the corosync-cpgtool comparison in run.sh.
 *
 *   cpg_member GROUP...
 *
 * Joins every GROUP (one cpg handle per group: a corosync cpg connection
 * joins at most one group), waits until the daemon has reported its own
 * join for each of them (a confchg whose joined list holds this pid), then
 * prints "ready" and stays a member until SIGTERM/SIGINT, when it leaves
 * and finalizes every handle and exits 0.  Exit 1 on any error; every wait
 * is bounded by an alarm() watchdog (30 s for the joins).
 *
 * GROUP may contain C-style escapes so that names with unprintable bytes
 * (corosync-cpgtool escapes them) can be given on the command line:
 * \xHH (two hex digits, may be \x00) and \\.
 */
#include <corosync/cpg.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GROUPS 16

static cpg_handle_t handles[MAX_GROUPS];
static struct cpg_name names[MAX_GROUPS];
static int joined[MAX_GROUPS];
static int ngroups;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* decode ARG into NAME; 0 ok, -1 bad escape or too long */
static int parse_name(const char *arg, struct cpg_name *name)
{
	size_t n = 0;
	memset(name, 0, sizeof(*name));
	while (*arg) {
		unsigned char c;
		if (arg[0] == '\\' && arg[1] == '\\') {
			c = '\\';
			arg += 2;
		} else if (arg[0] == '\\' && arg[1] == 'x') {
			int hi = arg[2] ? hexval(arg[2]) : -1;
			int lo = (hi >= 0 && arg[3]) ? hexval(arg[3]) : -1;
			if (hi < 0 || lo < 0) return -1;
			c = (unsigned char)(hi * 16 + lo);
			arg += 4;
		} else {
			c = (unsigned char)*arg++;
		}
		if (n >= CPG_MAX_NAME_LENGTH) return -1;
		name->value[n++] = (char)c;
	}
	name->length = (uint32_t)n;
	return 0;
}

static int handle_index(cpg_handle_t h)
{
	int i;
	for (i = 0; i < ngroups; i++)
		if (handles[i] == h) return i;
	return -1;
}

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid,
		    uint32_t pid, void *msg, size_t len)
{
	(void)h; (void)g; (void)nodeid; (void)pid; (void)msg; (void)len;
}

static void confchg(cpg_handle_t h, const struct cpg_name *g,
		    const struct cpg_address *members, size_t nmembers,
		    const struct cpg_address *left, size_t nleft,
		    const struct cpg_address *joins, size_t njoins)
{
	size_t k;
	int i = handle_index(h);
	(void)g; (void)members; (void)nmembers; (void)left; (void)nleft;
	if (i < 0) return;
	for (k = 0; k < njoins; k++)
		if (joins[k].pid == (uint32_t)getpid()) joined[i] = 1;
}

static cpg_callbacks_t callbacks = { deliver, confchg };

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct pollfd pfd[MAX_GROUPS];
	cs_error_t rc;
	int i, all;

	if (argc < 2 || argc - 1 > MAX_GROUPS) {
		fprintf(stderr, "usage: cpg_member GROUP... (at most %d)\n", MAX_GROUPS);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	alarm(30);

	ngroups = argc - 1;
	for (i = 0; i < ngroups; i++) {
		if (parse_name(argv[i + 1], &names[i]) != 0) {
			fprintf(stderr, "cpg_member: bad group name '%s'\n", argv[i + 1]);
			return 1;
		}
		rc = cpg_initialize(&handles[i], &callbacks);
		if (rc != CS_OK) {
			fprintf(stderr, "cpg_member: cpg_initialize: %d\n", (int)rc);
			return 1;
		}
		do {
			rc = cpg_join(handles[i], &names[i]);
		} while (rc == CS_ERR_TRY_AGAIN && (usleep(10000), 1));
		if (rc != CS_OK) {
			fprintf(stderr, "cpg_member: cpg_join '%s': %d\n", argv[i + 1], (int)rc);
			return 1;
		}
		if (cpg_fd_get(handles[i], &pfd[i].fd) != CS_OK) {
			fprintf(stderr, "cpg_member: cpg_fd_get failed\n");
			return 1;
		}
		pfd[i].events = POLLIN;
	}

	for (;;) {
		all = 1;
		for (i = 0; i < ngroups; i++) all &= joined[i];
		if (all) break;
		if (poll(pfd, (nfds_t)ngroups, 1000) < 0 && errno != EINTR) {
			perror("cpg_member: poll");
			return 1;
		}
		for (i = 0; i < ngroups; i++) {
			if (pfd[i].revents & POLLIN) {
				rc = cpg_dispatch(handles[i], CS_DISPATCH_ALL);
				if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
					fprintf(stderr, "cpg_member: cpg_dispatch: %d\n", (int)rc);
					return 1;
				}
			} else if (pfd[i].revents & (POLLHUP | POLLERR)) {
				fprintf(stderr, "cpg_member: connection lost\n");
				return 1;
			}
		}
	}
	alarm(0);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);

	/* stay a member; later confchgs are drained so the daemon never blocks */
	while (!stop) {
		if (poll(pfd, (nfds_t)ngroups, 1000) < 0) continue;   /* EINTR: stop set */
		for (i = 0; i < ngroups; i++)
			if (pfd[i].revents & POLLIN) cpg_dispatch(handles[i], CS_DISPATCH_ALL);
	}

	alarm(10);
	for (i = 0; i < ngroups; i++) {
		cpg_leave(handles[i], &names[i]);
		cpg_finalize(handles[i]);
	}
	return 0;
}
