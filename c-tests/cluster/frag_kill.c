/*
 * frag_kill: a member is SIGKILLed in the middle of sending a fragmented
 * message (3 .. 8 MiB, so libcpg splits it into 1 MiB fragments).  One
 * receiver per node; in each of CL_ROUNDS rounds (default 8) a new sender
 * joins on node (round mod N) + 1, sends 2-4 complete messages, and is
 * killed a random moment into a send (between 5% and 50% of the time the
 * quickest send took).  Asserted:
 *  - the receivers never get a message of the wrong length or content
 *    (no partial delivery), no duplicate, no gap;
 *  - each receiver got from each sender at least the messages whose send
 *    had returned and at most the ones started, and all receivers the same
 *    number;
 *  - every receiver sees the sender leave with CPG_REASON_PROCDOWN;
 *  - most kills really happened during a send (the send had not returned).
 */
#include "member.h"
#include <pthread.h>

#define MAX_LEN (8u << 20)
#define MIN_LEN (3u << 20)

struct srec {
	char type; /* 'A' about to send, 'D' done, 'J' joined */
	int32_t rc;
	uint64_t seq;
	int64_t dur_ms;
};

static struct cpg_name group;
static struct cl_proc rs[64];
static struct cl_log logs[64];
static int R;
static pid_t cur_sender;

static void s_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t n, uint32_t p, void *m, size_t l) {}
static void s_confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *m, size_t nm,
		      const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj) {}

/* the sender's dispatcher thread: its own deliveries (it is a member too)
 * must not pile up while the main thread sends, as in real applications */
static cpg_handle_t s_handle;
static int s_fd;
static void *s_dispatcher(void *a)
{
	for (;;)
		if (cl_dispatch(s_handle, s_fd, 50) != CS_OK)
			return NULL;
}

static int sender_main(struct cl_proc *self, void *arg)
{
	pthread_t th;
	cpg_model_v1_data_t md = { CPG_MODEL_V1, s_deliver, s_confchg, NULL, 0 };
	cpg_handle_t h;
	struct srec r;
	unsigned char *buf = malloc(MAX_LEN);
	uint64_t seq, rnd = (uint64_t)getpid();
	int fd, c;
	memset(&r, 0, sizeof r);
	r.type = 'J';
	if (!buf)
		return 2;
	r.rc = cl_init(&h, &md, 20000);
	if (r.rc == CS_OK)
		r.rc = cl_join(h, &group, 10000);
	cl_report(self, &r, sizeof r);
	if (r.rc != CS_OK)
		return 1;
	cpg_fd_get(h, &fd);
	s_handle = h;
	s_fd = fd;
	if (pthread_create(&th, NULL, s_dispatcher, NULL) != 0)
		return 2;
	while ((c = cl_heard(self, 20)) != 'G')
		if (c == 'q')
			return 1;
	for (seq = 0; seq < 1000; seq++) {
		struct iovec iov;
		size_t len;
		int64_t t0;
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		len = MIN_LEN + (size_t)((rnd >> 24) % (MAX_LEN - MIN_LEN));
		cl_msg_make(buf, len, (uint32_t)self->idx, seq);
		iov.iov_base = buf;
		iov.iov_len = len;
		r.type = 'A';
		r.seq = seq;
		cl_report(self, &r, sizeof r);
		t0 = t_now_ms();
		do {
			r.rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
			if (r.rc == CS_ERR_TRY_AGAIN)
				t_sleep_ms(5);
		} while (r.rc == CS_ERR_TRY_AGAIN && t_now_ms() - t0 < 10000);
		r.type = 'D';
		r.dur_ms = t_now_ms() - t0;
		cl_report(self, &r, sizeof r);
		if (r.rc != CS_OK)
			break;
	}
	/* not reached unless sends fail: the coordinator kills us */
	t_sleep_ms(30000);
	return 1;
}

static int pred_has_member(void *a)
{
	int i;
	for (i = 0; i < R; i++) {
		long c = cl_find_last(&logs[i], 'C');
		uint32_t k;
		int found = 0;
		if (c < 0)
			return 0;
		for (k = 0; k < logs[i].ev[c].nm && k < CL_MAXA; k++)
			found |= logs[i].ev[c].m[k].pid == (uint32_t)cur_sender;
		if (!found)
			return 0;
	}
	return 1;
}

/* every receiver saw cur_sender leave: the left entry (or NULL) for receiver i */
static const struct cpg_address *left_entry(int i)
{
	size_t k;
	uint32_t j;
	for (k = 0; k < logs[i].n; k++) {
		const struct cl_ev *e = &logs[i].ev[k];
		if (e->type != 'C')
			continue;
		for (j = 0; j < e->nl && j < CL_MAXA; j++)
			if (e->l[j].pid == (uint32_t)cur_sender)
				return &e->l[j];
	}
	return NULL;
}
static int pred_left(void *a)
{
	int i;
	for (i = 0; i < R; i++)
		if (!left_entry(i))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	struct cl_member_cfg cfg;
	int N = cl_nodes(), rounds, r, i, ok, mid_rounds = 0;
	uint64_t started[CL_MAXS] = { 0 }, completed[CL_MAXS] = { 0 };
	int sender_idx[CL_MAXS], nodes[64];
	int procdown_ok = 1, count_ok = 1, clean_ok = 1;
	uint64_t total_frag = 0;
	int64_t t0;
	uint64_t rnd = (uint64_t)getpid() * 2654435761u;

	t_start(argv[0], 220);
	rounds = getenv("CL_ROUNDS") ? atoi(getenv("CL_ROUNDS")) : 8;
	if (rounds < 1 || rounds > 12)
		rounds = 8;
	R = N;
	memset(&cfg, 0, sizeof cfg);
	t_name(&group, "cl-fragkill-%d", (int)getpid());
	cfg.group = group;
	t0 = t_now_ms();
	for (i = 0; i < R; i++)
		nodes[i] = 1 + i % N;
	cl_spawn_members(rs, R, nodes, &cfg);
	for (r = 0; r < rounds; r++) {
		struct cl_proc sp;
		struct srec rec;
		int node = (r % N) + 1, ndone = 0, mid = 0, st, warm;
		int64_t dur = 0, delay, t_kill;
		uint64_t last_a = 0, last_d = 0;
		int have_a = 0, have_d = 0;
		char name[64];

		sender_idx[r] = 16 + r;
		if (cl_spawn(&sp, node, sender_idx[r], sender_main, NULL) != 0) {
			t_fail("spawn", "fork: %s", strerror(errno));
			break;
		}
		cur_sender = sp.pid;
		if (cl_hear(&sp, &rec, sizeof rec, 30000) != 0 || rec.type != 'J' || rec.rc != CS_OK) {
			t_fail("sender_join", "round %d: sender did not join", r);
			kill(sp.pid, SIGKILL);
			cl_reap(&sp, 1, 5000);
			break;
		}
		if (!cl_until(rs, logs, R, 20000, pred_has_member, NULL)) {
			t_fail("sender_seen", "round %d: not every receiver saw the sender join", r);
			kill(sp.pid, SIGKILL);
			cl_reap(&sp, 1, 5000);
			break;
		}
		cl_tell(&sp, 'G');
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		warm = 2 + (int)((rnd >> 40) % 3);
		/* a few complete sends to learn how long one takes, then kill during the next */
		while (cl_hear(&sp, &rec, sizeof rec, 30000) == 0) {
			if (rec.type == 'A') {
				have_a = 1;
				last_a = rec.seq;
				if (ndone >= warm)
					break;
			} else if (rec.type == 'D') {
				if (rec.rc != CS_OK) {
					t_note("round %d: send %" PRIu64 " returned %s", r, rec.seq, t_err((cs_error_t)rec.rc));
					break;
				}
				have_d = 1;
				last_d = rec.seq;
				if (!ndone || rec.dur_ms < dur)
					dur = rec.dur_ms; /* the quickest send */
				ndone++;
			}
			cl_collect(rs, logs, R, 0);
		}
		if (!ndone || dur < 2)
			dur = 2;
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		delay = dur / 20 + (int64_t)((rnd >> 33) % (uint64_t)(dur * 45 / 100 + 1));
		t_sleep_ms((int)delay);
		t_kill = t_now_ms();
		kill(sp.pid, SIGKILL);
		waitpid(sp.pid, &st, 0);
		sp.reaped = 1;
		/* what the sender reported before it died */
		while (cl_hear(&sp, &rec, sizeof rec, 200) == 0) {
			if (rec.type == 'A') {
				have_a = 1;
				last_a = rec.seq;
			} else if (rec.type == 'D' && rec.rc == CS_OK) {
				have_d = 1;
				last_d = rec.seq;
			}
		}
		cl_reap(&sp, 1, 0);
		started[r] = have_a ? last_a + 1 : 0;
		completed[r] = have_d ? last_d + 1 : 0;
		mid = started[r] > completed[r];
		mid_rounds += mid;
		t_note("round %d: sender on node %d killed %" PRId64 " ms into send #%" PRIu64 " (quickest send %" PRId64
		       " ms)%s",
		       r, node, delay, started[r] - 1, dur, mid ? "" : " -- it had already returned");
		ok = cl_until(rs, logs, R, 20000, pred_left, NULL);
		snprintf(name, sizeof name, "round%d_sender_left", r);
		if (!ok) {
			t_fail(name, "not every receiver saw the killed sender leave within 20 s");
			procdown_ok = 0;
		} else {
			for (i = 0; i < R; i++)
				if (left_entry(i)->reason != CPG_REASON_PROCDOWN)
					procdown_ok = 0;
			t_pass(name);
		}
		(void)t_kill;
	}
	CHECK("left_with_procdown", procdown_ok, "a killed sender left with a reason other than CPG_REASON_PROCDOWN");
	for (i = 0; i < R; i++)
		cl_tell(&rs[i], 'Q');
	ok = cl_until_all(rs, logs, R, 30000, NULL, 'X');
	REQUIRE("reports", ok, "not every receiver reported");
	for (r = 0; r < rounds; r++) {
		uint32_t first = 0;
		for (i = 0; i < R; i++) {
			const struct cl_ev *x = &logs[i].ev[cl_find_last(&logs[i], 'X')];
			uint32_t got = x->recv[sender_idx[r]];
			if (i == 0)
				first = got;
			if (got < completed[r] || got > started[r] || got != first || x->gaps[sender_idx[r]]) {
				t_note("round %d: receiver %d got %u messages (sender completed %" PRIu64 ", started %" PRIu64
				       ", receiver 0 got %u, gaps %u)",
				       r, i, got, completed[r], started[r], first, x->gaps[sender_idx[r]]);
				count_ok = 0;
			}
			total_frag += got;
		}
	}
	for (i = 0; i < R; i++) {
		const struct cl_ev *x = &logs[i].ev[cl_find_last(&logs[i], 'X')];
		if (x->nbad || x->ndup) {
			t_note("receiver %d: %" PRIu64 " bad, %" PRIu64 " duplicated: %s", i, x->nbad, x->ndup, x->text);
			clean_ok = 0;
		}
	}
	CHECK("no_partial_or_corrupt_delivery", clean_ok, "a receiver got a message of the wrong length or content");
	CHECK("delivered_counts_consistent", count_ok,
	      "receivers got fewer than the completed or more than the started messages, or differ");
	CHECK("killed_mid_send", mid_rounds >= (rounds + 1) / 2, "only %d of %d kills happened during a send",
	      mid_rounds, rounds);
	cl_finish(rs, logs, R, t0, "receiver_exit", "receiver");
	t_note("%d rounds, %d kills during a send, %" PRIu64 " complete 3-8 MiB messages checked", rounds, mid_rounds,
	       total_frag);
	printf("FIGURES: frag_kill rounds=%d mid_send=%d deliveries=%" PRIu64 "\n", rounds, mid_rounds, total_frag);
	cl_logs_free(logs, R);
	return t_done();
}
