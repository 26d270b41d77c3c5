/*
 * evs_node: one EVS process of the two-node test (twonode/run.sh), run in a
 * node's network namespace.
 *
 *   evs_node NODE_COUNT MSGS OUT ROLE
 *
 * Waits until evs_membership_get lists NODE_COUNT nodes, joins key1 (and
 * key2), then sends MSGS messages -- alternately to key1 and to key1+key2,
 * each carrying (sender node, seq, payload hash), some of them 100 KB --
 * while dispatching. It writes every delivery "D <nodeid> <seq>" and every
 * configuration change "C <members> | <left> | <joined> | <ring nodeid>
 * <ring seq>" to OUT, and OUT.done once it has all MSGS messages of every
 * node (after OUT.joined, it waits for the driver's OUT.go before sending,
 * so that both nodes have joined). ROLE "survivor" then keeps dispatching until it has seen another
 * node leave and come back (exit 0); ROLE "victim" dispatches until its
 * daemon is killed (exit 0 when dispatch reports CS_ERR_LIBRARY).
 */
#include "../evs_tap.h"

struct hdr {
	uint32_t node, seq, len;
	uint32_t pad;
	uint64_t hash;
};

static FILE *out;
static unsigned int local;
static uint32_t nnodes, msgs;
static uint32_t got_from[16];
static uint32_t next_seq[16];
static int bad, seen_left, seen_back;
static unsigned int left_node;

static void deliver(hdb_handle_t h, unsigned int nodeid, const void *msg, size_t len)
{
	struct hdr hd;
	if (len < sizeof hd) {
		bad++;
		return;
	}
	memcpy(&hd, msg, sizeof hd);
	if (hd.len != len || hd.hash != t_fnv((const char *)msg + sizeof hd, len - sizeof hd, T_FNV_INIT) ||
	    hd.node != nodeid || nodeid >= 16 || hd.seq != next_seq[nodeid]) {
		bad++;
		fprintf(out, "BAD from %u seq %u len %zu\n", nodeid, hd.seq, len);
		return;
	}
	next_seq[nodeid]++;
	got_from[nodeid]++;
	fprintf(out, "D %u %u\n", nodeid, hd.seq);
}

static void ids(const unsigned int *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%u", i ? "," : "", a[i]);
}

static void confchg(hdb_handle_t h, const unsigned int *m, size_t nm, const unsigned int *l, size_t nl,
		    const unsigned int *j, size_t nj, const struct evs_ring_id *r)
{
	fprintf(out, "C ");
	ids(m, nm);
	fprintf(out, " | ");
	ids(l, nl);
	fprintf(out, " | ");
	ids(j, nj);
	fprintf(out, " | %u %llu\n", r ? r->nodeid : 0, r ? (unsigned long long)r->seq : 0ULL);
	fflush(out);
	for (size_t i = 0; i < nl; i++)
		if (l[i] != local) {
			seen_left = 1;
			left_node = l[i];
		}
	for (size_t i = 0; i < nj; i++)
		if (seen_left && j[i] == left_node)
			seen_back = 1;
}

static evs_callbacks_t cbs = { deliver, confchg };

static int all_in(void)
{
	uint32_t full = 0;
	for (int i = 0; i < 16; i++)
		full += got_from[i] == msgs;
	return full >= nnodes;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: evs_node NODE_COUNT MSGS OUT survivor|victim\n");
		return 2;
	}
	t_start(argv[0], 170);
	nnodes = (uint32_t)atoi(argv[1]);
	msgs = (uint32_t)atoi(argv[2]);
	int survivor = strcmp(argv[4], "survivor") == 0;
	out = fopen(argv[3], "w");
	if (!out)
		return 2;
	setvbuf(out, NULL, _IOLBF, 0);
	evs_handle_t h;
	cs_error_t rc = CS_ERR_TRY_AGAIN;
	for (int i = 0; i < 200 && rc == CS_ERR_TRY_AGAIN; i++)
		if ((rc = evs_initialize(&h, &cbs)) == CS_ERR_TRY_AGAIN)
			t_sleep_ms(100);
	if (rc != CS_OK) {
		fprintf(out, "INIT %d\n", rc);
		return 1;
	}
	unsigned int members[16];
	size_t n = 0;
	int64_t end = t_now_ms() + 30000;
	do {
		n = 16;
		if (evs_membership_get(h, &local, members, &n) != CS_OK)
			return 1;
		evs_dispatch(h, CS_DISPATCH_ALL);
		if (n < nnodes)
			t_sleep_ms(50);
	} while (n < nnodes && t_now_ms() < end);
	if (n != nnodes) {
		fprintf(out, "MEMBERS %zu\n", n);
		return 1;
	}
	struct evs_group g[2] = { e_group("key1"), e_group("key2") };
	if (evs_join(h, g, 2) != CS_OK)
		return 1;
	/* messages sent before the other node's join would not reach it:
	 * report OUT.joined and wait for the driver's OUT.go */
	char path[512];
	snprintf(path, sizeof path, "%s.joined", argv[3]);
	FILE *j = fopen(path, "w");
	if (j)
		fclose(j);
	snprintf(path, sizeof path, "%s.go", argv[3]);
	end = t_now_ms() + 30000;
	while (access(path, F_OK) != 0 && t_now_ms() < end) {
		evs_dispatch(h, CS_DISPATCH_ALL);
		t_sleep_ms(20);
	}
	static unsigned char buf[100000];
	for (uint32_t seq = 0; seq < msgs; seq++) {
		size_t len = seq % 97 == 3 ? sizeof buf : sizeof(struct hdr) + (seq * 37) % 1500;
		struct hdr hd = { local, seq, (uint32_t)len, 0, 0 };
		t_fill(buf + sizeof hd, len - sizeof hd, ((uint64_t)local << 32) | seq);
		hd.hash = t_fnv(buf + sizeof hd, len - sizeof hd, T_FNV_INIT);
		memcpy(buf, &hd, sizeof hd);
		rc = e_send_groups(h, g, seq % 2 ? 2 : 1, buf, len);
		if (rc != CS_OK) {
			fprintf(out, "SEND %u %d\n", seq, rc);
			return 1;
		}
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
	int fd;
	evs_fd_get(h, &fd);
	end = t_now_ms() + 60000;
	while (!all_in() && t_now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 100);
		if (evs_dispatch(h, CS_DISPATCH_ALL) != CS_OK)
			break;
	}
	if (!all_in() || bad) {
		fprintf(out, "INCOMPLETE bad=%d\n", bad);
		return 1;
	}
	char done[512];
	snprintf(done, sizeof done, "%s.done", argv[3]);
	FILE *d = fopen(done, "w");
	if (d)
		fclose(d);
	if (!survivor) {
		rc = evs_dispatch(h, CS_DISPATCH_BLOCKING);
		fprintf(out, "END %d\n", rc);
		return rc == CS_ERR_LIBRARY ? 0 : 1;
	}
	while (!seen_back && (rc = evs_dispatch(h, CS_DISPATCH_ONE)) == CS_OK)
		;
	fprintf(out, "END %d\n", rc);
	evs_finalize(h);
	return seen_back ? 0 : 1;
}
