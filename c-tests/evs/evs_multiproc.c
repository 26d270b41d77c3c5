/*
 * evs_multiproc: four real processes joined to different sets of groups
 * send to changing sets of groups (evs_mcast_groups, and evs_mcast_joined
 * for every fifth message) at the same time. Each must receive exactly
 * the messages whose groups meet its own -- each once, intact -- and all
 * must see one order: any two processes deliver the messages they share
 * in the same relative order, across all groups and senders.
 */
#include "evs_tap.h"

#define NPROC 4
#define NMSG 300
#define NTOTAL (NPROC * (NMSG + 1))

struct hdr {
	uint32_t sender;
	uint32_t seq; /* NMSG = the end marker */
	uint32_t mask;
	uint32_t len;
	uint64_t hash; /* of the bytes after the header */
};

static const char *gnames[3] = { "mp-key1", "mp-key2", "mp-key3" };
/* groups joined by each process, as a mask over gnames */
static const uint32_t joined_mask[NPROC] = { 1, 2, 1 | 4, 2 | 4 };

static uint32_t target_mask(uint32_t sender, uint32_t seq)
{
	if (seq == NMSG)
		return 7;
	if (seq % 5 == 4)
		return joined_mask[sender]; /* sent with evs_mcast_joined */
	return (sender * 7 + seq * 3) % 7 + 1;
}

static size_t msg_len(uint32_t sender, uint32_t seq)
{
	if (seq % 50 == 17)
		return 100000;
	return sizeof(struct hdr) + (sender * 131 + seq * 977) % 3000;
}

struct got {
	uint32_t sender, seq;
};

static struct got got_list[NTOTAL];
static size_t ngot, nbad, nend;
static uint32_t me;

static void deliver(hdb_handle_t h, unsigned int nodeid, const void *msg, size_t len)
{
	struct hdr hd;
	if (len < sizeof hd) {
		nbad++;
		return;
	}
	memcpy(&hd, msg, sizeof hd);
	if (hd.len != len || hd.hash != t_fnv((const char *)msg + sizeof hd, len - sizeof hd, T_FNV_INIT) ||
	    hd.sender >= NPROC || hd.seq > NMSG || hd.mask != target_mask(hd.sender, hd.seq)) {
		nbad++;
		return;
	}
	if (ngot < NTOTAL)
		got_list[ngot++] = (struct got){ hd.sender, hd.seq };
	if (hd.seq == NMSG)
		nend++;
}

static void confchg(hdb_handle_t h, const unsigned int *m, size_t nm, const unsigned int *l, size_t nl,
		    const unsigned int *j, size_t nj, const struct evs_ring_id *r)
{
}

static evs_callbacks_t cbs = { deliver, confchg };

static int child(uint32_t idx, int ready_fd, int go_fd, const char *outpath)
{
	me = idx;
	evs_handle_t h;
	cs_error_t rc = evs_initialize(&h, &cbs);
	if (rc != CS_OK) {
		fprintf(stderr, "child %u: evs_initialize: %s\n", idx, t_err(rc));
		return 2;
	}
	struct evs_group g[3];
	for (int i = 0; i < 3; i++)
		g[i] = e_group(gnames[i]);
	struct evs_group mine[3];
	size_t nmine = 0;
	for (int i = 0; i < 3; i++)
		if (joined_mask[idx] & (1u << i))
			mine[nmine++] = g[i];
	if ((rc = evs_join(h, mine, nmine)) != CS_OK) {
		fprintf(stderr, "child %u: evs_join: %s\n", idx, t_err(rc));
		return 2;
	}
	char c = 'r';
	if (write(ready_fd, &c, 1) != 1 || t_read_all(go_fd, &c, 1, 30000) != 0)
		return 2;

	static unsigned char buf[100000];
	for (uint32_t seq = 0; seq <= NMSG; seq++) {
		uint32_t mask = target_mask(idx, seq);
		size_t len = seq == NMSG ? sizeof(struct hdr) : msg_len(idx, seq);
		struct hdr hd = { idx, seq, mask, (uint32_t)len, 0 };
		t_fill(buf + sizeof hd, len - sizeof hd, ((uint64_t)idx << 32) | seq);
		hd.hash = t_fnv(buf + sizeof hd, len - sizeof hd, T_FNV_INIT);
		memcpy(buf, &hd, sizeof hd);
		struct evs_group to[3];
		size_t nto = 0;
		for (int i = 0; i < 3; i++)
			if (mask & (1u << i))
				to[nto++] = g[i];
		int joined_send = seq % 5 == 4 && seq != NMSG;
		rc = e_send_groups(h, joined_send ? NULL : to, nto, buf, len);
		if (rc != CS_OK) {
			fprintf(stderr, "child %u: send %u: %s\n", idx, seq, t_err(rc));
			return 2;
		}
		evs_dispatch(h, CS_DISPATCH_ALL);
	}
	/* everyone's end marker reaches everyone: all messages are then in */
	int fd;
	evs_fd_get(h, &fd);
	while (nend < NPROC) {
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 100);
		if ((rc = evs_dispatch(h, CS_DISPATCH_ALL)) != CS_OK) {
			fprintf(stderr, "child %u: dispatch: %s\n", idx, t_err(rc));
			return 2;
		}
	}
	FILE *f = fopen(outpath, "w");
	if (!f)
		return 2;
	fprintf(f, "%zu %zu\n", ngot, nbad);
	for (size_t i = 0; i < ngot; i++)
		fprintf(f, "%u %u\n", got_list[i].sender, got_list[i].seq);
	fclose(f);
	evs_finalize(h);
	return 0;
}

static struct got lists[NPROC][NTOTAL];
static size_t nlist[NPROC];
static int pos[NPROC][NPROC][NMSG + 1];

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 120);
	/* skip cleanly when no server answers */
	evs_handle_t probe;
	cs_error_t prc = evs_initialize(&probe, NULL);
	if (prc != CS_OK)
		t_skip_all("evs_initialize: %s", t_err(prc));
	evs_finalize(probe);

	char dir[] = "/tmp/evs_multiproc.XXXXXX";
	if (!mkdtemp(dir))
		t_skip_all("mkdtemp failed");
	int ready[2], go[NPROC][2];
	pid_t pids[NPROC];
	if (pipe(ready) < 0)
		return 1;
	for (uint32_t i = 0; i < NPROC; i++) {
		if (pipe(go[i]) < 0)
			return 1;
		char path[128];
		snprintf(path, sizeof path, "%s/%u", dir, i);
		pids[i] = t_fork();
		if (pids[i] == 0)
			_exit(child(i, ready[1], go[i][0], path));
	}
	char c;
	int nready = 0;
	for (; nready < NPROC; nready++)
		if (t_read_all(ready[0], &c, 1, 30000) != 0)
			break;
	REQUIRE("all_joined", nready == NPROC, "%d of %d children joined", nready, NPROC);
	for (int i = 0; i < NPROC; i++)
		if (write(go[i][1], "g", 1) != 1)
			return 1;
	int all_ok = 1;
	for (int i = 0; i < NPROC; i++) {
		int st = t_wait_child(pids[i], 90000);
		if (st != 0) {
			char why[64];
			t_fmt_status(why, sizeof why, st);
			t_fail("child_exit", "child %d: %s", i, why);
			all_ok = 0;
		}
	}
	REQUIRE("children_finished", all_ok, "see above");

	/* read the delivered streams */
	for (int i = 0; i < NPROC; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s/%d", dir, i);
		FILE *f = fopen(path, "r");
		size_t n = 0, bad = 0;
		if (!f || fscanf(f, "%zu %zu", &n, &bad) != 2) {
			t_fail("read_stream", "child %d wrote no stream", i);
			return t_done();
		}
		for (size_t k = 0; k < n && k < NTOTAL; k++)
			if (fscanf(f, "%u %u", &lists[i][k].sender, &lists[i][k].seq) != 2)
				break;
		fclose(f);
		unlink(path);
		nlist[i] = n;
		CHECK("payload_intact", bad == 0, "child %d got %zu malformed messages", i, bad);
	}
	rmdir(dir);

	/* exactly the expected messages, each once */
	for (int i = 0; i < NPROC; i++) {
		memset(pos[i], 0, sizeof pos[i]);
		for (size_t k = 0; k < nlist[i]; k++) {
			struct got g = lists[i][k];
			pos[i][g.sender][g.seq] = pos[i][g.sender][g.seq] ? -1 : (int)k + 1;
		}
		size_t missing = 0, extra = 0, dup = 0;
		for (uint32_t s = 0; s < NPROC; s++)
			for (uint32_t q = 0; q <= NMSG; q++) {
				int want = (target_mask(s, q) & joined_mask[i]) != 0;
				int p = pos[i][s][q];
				if (p < 0)
					dup++;
				else if (want && !p)
					missing++;
				else if (!want && p)
					extra++;
			}
		CHECK("exact_set", !missing && !extra && !dup, "child %d: %zu missing, %zu extra, %zu duplicated", i,
		      missing, extra, dup);
	}
	/* one order: shared messages in the same relative order everywhere */
	size_t pairs_checked = 0, shared = 0;
	for (int a = 0; a < NPROC; a++)
		for (int b = a + 1; b < NPROC; b++) {
			int last = 0, inorder = 1;
			for (size_t k = 0; k < nlist[b]; k++) {
				int p = pos[a][lists[b][k].sender][lists[b][k].seq];
				if (p <= 0)
					continue;
				shared++;
				if (p < last)
					inorder = 0;
				last = p;
			}
			pairs_checked++;
			CHECK("one_agreed_order", inorder, "children %d and %d disagree on the order", a, b);
		}
	t_note("%zu pairs, %zu shared deliveries compared", pairs_checked, shared);
	return t_done();
}
