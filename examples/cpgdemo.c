/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* A small CPG member for the demo.
 *   cpgdemo listen NAME N   join the group, print membership changes and
 *                           messages, leave after N messages
 *   cpgdemo send NAME N     join, send N messages, wait until they come
 *                           back (self-delivery, agreed order), leave */
#include <corosync/cpg.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *who;
static int received, want;

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	(void)h; (void)g;
	printf("[%s %d] message from %u/%u: %.*s\n", who, (int)getpid(), nodeid, pid, (int)len, (const char *)msg);
	received++;
}

static const char *reason(uint32_t r)
{
	switch (r) {
	case CPG_REASON_JOIN: return "joined";
	case CPG_REASON_LEAVE: return "left";
	case CPG_REASON_NODEDOWN: return "node down";
	case CPG_REASON_NODEUP: return "node up";
	case CPG_REASON_PROCDOWN: return "process down";
	default: return "?";
	}
}

static void confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *members, size_t n_members,
		    const struct cpg_address *left, size_t n_left, const struct cpg_address *joined, size_t n_joined)
{
	(void)h;
	for (size_t i = 0; i < n_joined; i++)
		printf("[%s %d] %u/%u %s %.*s\n", who, (int)getpid(), joined[i].nodeid, joined[i].pid,
		       reason(joined[i].reason), (int)g->length, g->value);
	for (size_t i = 0; i < n_left; i++)
		printf("[%s %d] %u/%u %s %.*s\n", who, (int)getpid(), left[i].nodeid, left[i].pid,
		       reason(left[i].reason), (int)g->length, g->value);
	printf("[%s %d] members now:", who, (int)getpid());
	for (size_t i = 0; i < n_members; i++)
		printf(" %u/%u", members[i].nodeid, members[i].pid);
	printf("\n");
	fflush(stdout);
}

static int pump(cpg_handle_t h, int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, timeout_ms) < 0)
		return -1;
	cs_error_t e = cpg_dispatch(h, CS_DISPATCH_ALL);
	fflush(stdout);
	return e == CS_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "listen") && strcmp(argv[1], "send"))) {
		fprintf(stderr, "usage: %s listen|send GROUP N\n", argv[0]);
		return 2;
	}
	who = argv[1];
	want = atoi(argv[3]);
	cpg_callbacks_t cb = { deliver, confchg };
	cpg_handle_t h;
	struct cpg_name group;
	int fd;
	cs_error_t e = cpg_initialize(&h, &cb);
	if (e != CS_OK) {
		fprintf(stderr, "cpg_initialize: %s\n", cs_strerror(e));
		return 1;
	}
	group.length = strlen(argv[2]);
	memcpy(group.value, argv[2], group.length);
	if ((e = cpg_join(h, &group)) != CS_OK) {
		fprintf(stderr, "cpg_join: %s\n", cs_strerror(e));
		return 1;
	}
	cpg_fd_get(h, &fd);
	if (!strcmp(who, "send")) {
		for (int i = 1; i <= want; i++) {
			char text[64];
			struct iovec iov = { text, (size_t)snprintf(text, sizeof(text), "hello #%d", i) };
			while ((e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN)
				pump(h, fd, 10);
			if (e != CS_OK) {
				fprintf(stderr, "cpg_mcast_joined: %s\n", cs_strerror(e));
				return 1;
			}
		}
	}
	for (int waited = 0; received < want && waited < 100; waited++)
		if (pump(h, fd, 100) < 0)
			return 1;
	cpg_leave(h, &group);
	pump(h, fd, 200);
	cpg_finalize(h);
	return received == want ? 0 : 1;
}
