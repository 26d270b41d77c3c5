/*
 * mcast_order: 3 processes join one group and each multicasts 2000 messages
 * concurrently (sender index + sequence number + checksum, 16..1000 bytes).
 * Every process must receive all 6000 messages -- its own included -- intact,
 * with no loss and no duplicate, each sender's messages in send order, and all
 * three processes must see one identical total order (full sequences are sent
 * back to the parent over pipes and compared).
 */
#include "tap.h"

#define NPROC 3
#define NMSG 2000
#define TOTAL (NPROC * NMSG)

struct hdr {
	uint32_t magic;
	uint32_t sender;
	uint32_t seq;
	uint32_t len;     /* total message length */
	uint64_t sum;     /* FNV of the payload after the header */
};
#define MAGIC 0x6d636f72u

static struct cpg_name g;
static uint32_t order[TOTAL + 16];
static size_t nrecv;
static int nbad;
static pid_t pids[NPROC];
static char firstbad[200];

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
	va_list ap;
	if (!nbad++) {
		va_start(ap, fmt);
		vsnprintf(firstbad, sizeof firstbad, fmt, ap);
		va_end(ap);
	}
}

static size_t msglen(uint32_t sender, uint32_t seq)
{
	return sizeof(struct hdr) + (sender * 131 + seq * 7) % 985;
}

static void deliver(cpg_handle_t h, const struct cpg_name *gn, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct hdr hd;
	(void)h;
	if (!t_name_eq(gn, &g)) {
		bad("delivery for another group");
		return;
	}
	if (len < sizeof hd) {
		bad("short message (%zu bytes)", len);
		return;
	}
	memcpy(&hd, msg, sizeof hd);
	if (hd.magic != MAGIC || hd.sender >= NPROC || hd.seq >= NMSG) {
		bad("garbled header");
		return;
	}
	if (hd.len != len || len != msglen(hd.sender, hd.seq)) {
		bad("length %zu for %u/%u, expected %zu", len, hd.sender, hd.seq, msglen(hd.sender, hd.seq));
		return;
	}
	if (t_fnv((char *)msg + sizeof hd, len - sizeof hd, T_FNV_INIT) != hd.sum) {
		bad("checksum mismatch for %u/%u", hd.sender, hd.seq);
		return;
	}
	if (nodeid != 1 || pid != (uint32_t)pids[hd.sender])
		bad("sender {%u,%u} for message of process %u (pid %d)", nodeid, pid, hd.sender, (int)pids[hd.sender]);
	if (nrecv < TOTAL + 16)
		order[nrecv] = hd.sender << 16 | hd.seq;
	nrecv++;
}

static size_t members_seen;
static void confchg(cpg_handle_t h, const struct cpg_name *gn, const struct cpg_address *m, size_t nm,
		    const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj)
{
	(void)h; (void)gn; (void)m; (void)l; (void)nl; (void)j; (void)nj;
	members_seen = nm;
}

static int pred_members(void *a) { (void)a; return members_seen == NPROC; }
static int pred_all(void *a) { (void)a; return nrecv >= TOTAL; }

static int child(int idx, int wfd)
{
	cpg_callbacks_t cb = { deliver, confchg };
	cpg_handle_t h;
	cs_error_t rc;
	uint32_t seq;
	unsigned char buf[sizeof(struct hdr) + 1000];
	int64_t end;
	int tries = 0;

	alarm(60);
	end = t_now_ms() + 5000;
	while ((rc = cpg_initialize(&h, &cb)) == CS_ERR_TRY_AGAIN && t_now_ms() < end)
		t_sleep_ms(50);
	if (rc != CS_OK)
		return 10;
	if (cpg_join(h, &g) != CS_OK)
		return 11;
	if (!t_pump(h, 15000, pred_members, NULL))
		return 12;
	for (seq = 0; seq < NMSG; seq++) {
		struct hdr hd;
		size_t len = msglen((uint32_t)idx, seq);
		struct iovec iov[2];
		hd.magic = MAGIC;
		hd.sender = (uint32_t)idx;
		hd.seq = seq;
		hd.len = (uint32_t)len;
		t_fill(buf, len - sizeof hd, (uint64_t)idx << 32 | seq);
		hd.sum = t_fnv(buf, len - sizeof hd, T_FNV_INIT);
		iov[0].iov_base = &hd;
		iov[0].iov_len = sizeof hd;
		iov[1].iov_base = buf;
		iov[1].iov_len = len - sizeof hd;
		for (;;) {
			rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, iov, 2);
			if (rc == CS_OK)
				break;
			if (rc != CS_ERR_TRY_AGAIN)
				return 13;
			tries++;
			cpg_dispatch(h, CS_DISPATCH_ALL);
			t_sleep_ms(1);
		}
		if (seq % 16 == 0)
			cpg_dispatch(h, CS_DISPATCH_ALL);
	}
	if (!t_pump(h, 40000, pred_all, NULL)) {
		bad("received only %zu of %d messages", nrecv, TOTAL);
	}
	/* report: count, nbad, first error, the sequence */
	{
		uint32_t cnt = (uint32_t)(nrecv < TOTAL + 16 ? nrecv : TOTAL + 16);
		int32_t nb = nbad;
		if (t_write_all(wfd, &cnt, sizeof cnt) || t_write_all(wfd, &nb, sizeof nb) ||
		    t_write_all(wfd, firstbad, sizeof firstbad) || t_write_all(wfd, &tries, sizeof tries) ||
		    t_write_all(wfd, order, cnt * sizeof order[0]))
			return 14;
	}
	close(wfd);
	cpg_finalize(h);
	return 0;
}

int main(int argc, char **argv)
{
	int fds[NPROC][2];
	uint32_t *seqs[NPROC];
	uint32_t cnt[NPROC];
	int i, p;
	char name[64];

	(void)argc;
	t_start(argv[0], 90);
	t_name(&g, "mcast_order-%d", (int)getpid());
	for (i = 0; i < NPROC; i++)
		if (pipe(fds[i]) < 0)
			return 1;
	/* pids[] must be known by every child: fork them stopped on a pipe */
	{
		int go[2];
		if (pipe(go) < 0)
			return 1;
		for (i = 0; i < NPROC; i++) {
			pid_t c = t_fork();
			if (c == 0) {
				char x;
				int k;
				for (k = 0; k < NPROC; k++) {
					close(fds[k][0]);
					if (k != i)
						close(fds[k][1]);
				}
				close(go[1]);
				alarm(30);
				if (t_read_all(go[0], pids, sizeof pids, 20000) < 0)
					_exit(20);
				(void)x;
				_exit(child(i, fds[i][1]));
			}
			pids[i] = c;
		}
		close(go[0]);
		for (i = 0; i < NPROC; i++)
			if (t_write_all(go[1], pids, sizeof pids) < 0)
				t_fail("start", "cannot start child %d", i);
		close(go[1]);
	}
	for (i = 0; i < NPROC; i++)
		close(fds[i][1]);

	for (i = 0; i < NPROC; i++) {
		int32_t nb = 0;
		int tries = 0;
		char fb[200];
		seqs[i] = calloc(TOTAL + 16, sizeof(uint32_t));
		cnt[i] = 0;
		snprintf(name, sizeof name, "process_%d_report", i);
		if (t_read_all(fds[i][0], &cnt[i], sizeof cnt[i], 80000) || t_read_all(fds[i][0], &nb, sizeof nb, 5000) ||
		    t_read_all(fds[i][0], fb, sizeof fb, 5000) || t_read_all(fds[i][0], &tries, sizeof tries, 5000) ||
		    cnt[i] > TOTAL + 16 || t_read_all(fds[i][0], seqs[i], cnt[i] * sizeof(uint32_t), 5000)) {
			t_fail(name, "no report from process %d", i);
			cnt[i] = 0;
			continue;
		}
		t_pass(name);
		if (tries)
			t_note("process %d got CS_ERR_TRY_AGAIN %d times (retried)", i, tries);
		snprintf(name, sizeof name, "process_%d_all_intact", i);
		CHECK(name, nb == 0, "%d bad deliveries, first: %s", (int)nb, fb);
		snprintf(name, sizeof name, "process_%d_received_all", i);
		CHECK(name, cnt[i] == TOTAL, "received %u of %d", cnt[i], TOTAL);
	}
	for (i = 0; i < NPROC; i++) {
		int st = t_wait_child(pids[i], 20000);
		char why[64];
		t_fmt_status(why, sizeof why, st);
		snprintf(name, sizeof name, "process_%d_exit", i);
		CHECK(name, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", why);
	}

	/* per-process: no duplicate, no loss, FIFO per sender */
	for (p = 0; p < NPROC; p++) {
		uint32_t next[NPROC] = { 0 };
		int ok = 1;
		uint32_t k;
		char why[160] = "";
		for (k = 0; k < cnt[p] && ok; k++) {
			uint32_t s = seqs[p][k] >> 16, q = seqs[p][k] & 0xffff;
			if (s >= NPROC) {
				ok = 0;
				snprintf(why, sizeof why, "bad sender at %u", k);
			} else if (q != next[s]) {
				ok = 0;
				snprintf(why, sizeof why, "position %u: message %u/%u, expected %u/%u (loss, duplicate or reorder)",
					 k, s, q, s, next[s]);
			} else {
				next[s]++;
			}
		}
		snprintf(name, sizeof name, "process_%d_fifo_no_loss_no_dup", p);
		CHECK(name, ok && cnt[p] == TOTAL, "%s", why[0] ? why : "incomplete");
	}
	/* identical total order */
	for (p = 1; p < NPROC; p++) {
		uint32_t k, n = cnt[0] < cnt[p] ? cnt[0] : cnt[p];
		long diff = -1;
		for (k = 0; k < n; k++)
			if (seqs[0][k] != seqs[p][k]) {
				diff = k;
				break;
			}
		snprintf(name, sizeof name, "total_order_0_vs_%d", p);
		CHECK(name, diff < 0 && cnt[0] == cnt[p] && cnt[0] == TOTAL,
		      "sequences differ at position %ld (counts %u/%u)", diff, cnt[0], cnt[p]);
	}
	/* interleaving actually happened (concurrency sanity, informative) */
	{
		uint32_t k, switches = 0;
		for (k = 1; k < cnt[0]; k++)
			if ((seqs[0][k] >> 16) != (seqs[0][k - 1] >> 16))
				switches++;
		t_note("sender switches in the total order: %u", switches);
	}
	for (i = 0; i < NPROC; i++)
		free(seqs[i]);
	return t_done();
}
