/*
 * total_order: concurrent multicast from every node, P processes per node
 * (CL_PROCS, default 2), each sending M messages of 64 B .. 16 KiB
 * (CL_MSGS, default 2500, scaled by CL_SCALE) and F fragmented ones of
 * 1 MiB + 1 .. 2.5 MiB (CL_FRAGS, default 3), all at once at full speed
 * (CS_ERR_TRY_AGAIN retried).
 *
 * Every process is also a receiver.  For each delivered message it checks
 * length and content against the header (cl_msg) and the per-sender sequence
 * (no loss, no duplicate, FIFO per sender), and folds (nodeid, pid, sender,
 * seq, body hash) into a running hash of its delivered stream.  Asserted:
 * every process got every message exactly once, intact, and all processes'
 * stream hashes are identical (one total order everywhere).
 */
#include "cl.h"

#define MAXS 64
#define SMALL_MAX 16384
#define FRAG_MIN (1048576 + 1)
#define FRAG_MAX (2621440)

struct res {
	uint64_t nrecv, bytes, nfrag, hash;
	uint64_t nbad, ndup, ngap;
	uint64_t sent, try_again, interrupt;
	uint64_t hash_half;   /* stream hash after half of the messages */
	int32_t err;          /* setup error */
	char why[200];
};

static int P, M, F, S;
static struct cpg_name group;

/* child state */
static uint64_t next_seq[MAXS];
static struct res R;
static uint64_t expected;

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct cl_msg m;
	char why[160];
	if (cl_msg_check(msg, len, &m, 0, why, sizeof why) != 0 || m.sender >= (uint32_t)S) {
		if (!R.nbad)
			snprintf(R.why, sizeof R.why, "bad message: %s", why);
		R.nbad++;
		return;
	}
	if (m.seq < next_seq[m.sender]) {
		if (!R.ndup && !R.nbad)
			snprintf(R.why, sizeof R.why, "duplicate: sender %u seq %" PRIu64 " (next %" PRIu64 ")",
				 m.sender, m.seq, next_seq[m.sender]);
		R.ndup++;
		return;
	}
	if (m.seq > next_seq[m.sender]) {
		if (!R.ngap && !R.nbad && !R.ndup)
			snprintf(R.why, sizeof R.why, "gap: sender %u seq %" PRIu64 " after %" PRIu64, m.sender,
				 m.seq, next_seq[m.sender]);
		R.ngap++;
	}
	next_seq[m.sender] = m.seq + 1;
	R.nrecv++;
	R.bytes += len;
	if (len > 1047552)
		R.nfrag++;
	R.hash = cl_stream_fold(R.hash, nodeid, pid, &m);
	if (R.nrecv == expected / 2)
		R.hash_half = R.hash;
}

static size_t nmembers;
static void confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *m, size_t nm,
		    const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj)
{
	nmembers = nm;
}

/* the F fragmented messages are spread over the run, at slightly different
 * places for each sender */
static int is_frag(int i, int nmsg, uint32_t me)
{
	int f;
	for (f = 0; f < F; f++) {
		int pos = (int)((long)(f + 1) * nmsg / (F + 1)) + (int)(me % 5);
		if (pos >= nmsg)
			pos = nmsg - 1 - f;
		if (i == pos)
			return 1;
	}
	return 0;
}

static int member(struct cl_proc *self, void *arg)
{
	cpg_model_v1_data_t md = { CPG_MODEL_V1, deliver, confchg, NULL, 0 };
	cpg_handle_t h;
	int fd, i, c;
	cs_error_t rc;
	unsigned char *buf;
	uint32_t me = (uint32_t)self->idx;
	uint64_t rnd = 0x1234 + me;
	int nmsg = M + F;
	int64_t end;
	char ready = 'R';

	memset(&R, 0, sizeof R);
	R.hash = T_FNV_INIT;
	expected = (uint64_t)S * (uint64_t)nmsg;
	buf = malloc(FRAG_MAX);
	if (!buf)
		return 2;
	if ((rc = cl_init(&h, &md, 20000)) != CS_OK) {
		R.err = 1;
		snprintf(R.why, sizeof R.why, "cpg_model_initialize: %s", t_err(rc));
		goto report;
	}
	cpg_fd_get(h, &fd);
	if ((rc = cl_join(h, &group, 10000)) != CS_OK) {
		R.err = 1;
		snprintf(R.why, sizeof R.why, "cpg_join: %s", t_err(rc));
		goto report;
	}
	end = t_now_ms() + 30000;
	while (nmembers < (size_t)S && t_now_ms() < end)
		if ((rc = cl_dispatch(h, fd, 100)) != CS_OK)
			break;
	if (nmembers != (size_t)S) {
		R.err = 1;
		snprintf(R.why, sizeof R.why, "saw %zu of %d members join", nmembers, S);
		goto report;
	}
	cl_report(self, &ready, 1);
	/* wait for "go", dispatching meanwhile */
	end = t_now_ms() + 60000;
	while ((c = cl_heard(self, 0)) != 'G') {
		if (c == 'q' || t_now_ms() > end) {
			R.err = 1;
			snprintf(R.why, sizeof R.why, "no go from the coordinator");
			goto report;
		}
		cl_dispatch(h, fd, 20);
	}

	for (i = 0; i < nmsg; i++) {
		size_t len;
		struct iovec iov;
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		if (is_frag(i, nmsg, me))
			len = FRAG_MIN + (size_t)((rnd >> 20) % (FRAG_MAX - FRAG_MIN));
		else
			len = sizeof(struct cl_msg) + (size_t)((rnd >> 33) % (SMALL_MAX - sizeof(struct cl_msg)));
		cl_msg_make(buf, len, me, (uint64_t)i);
		iov.iov_base = buf;
		iov.iov_len = len;
		end = t_now_ms() + 60000;
		for (;;) {
			rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
			if (rc == CS_OK)
				break;
			if (rc == CS_ERR_TRY_AGAIN)
				R.try_again++;
			else if (rc == CS_ERR_INTERRUPT)
				R.interrupt++;
			else
				break;
			if (t_now_ms() > end)
				break;
			cl_dispatch(h, fd, 1);
		}
		if (rc != CS_OK) {
			R.err = 1;
			snprintf(R.why, sizeof R.why, "cpg_mcast_joined(seq %d, %zu bytes): %s", i, len, t_err(rc));
			goto report;
		}
		R.sent++;
		if ((rc = cl_dispatch(h, fd, 0)) != CS_OK) {
			R.err = 1;
			snprintf(R.why, sizeof R.why, "cpg_dispatch: %s", t_err(rc));
			goto report;
		}
	}
	end = t_now_ms() + 90000;
	while (R.nrecv + R.nbad < expected && t_now_ms() < end)
		if ((rc = cl_dispatch(h, fd, 100)) != CS_OK)
			break;
report:
	cl_report(self, "D", 1);
	cl_report(self, &R, sizeof R);
	/* stay joined (duplicates would still be counted, not reported) until told to quit */
	end = t_now_ms() + 120000;
	while ((c = cl_heard(self, 0)) != 'Q' && c != 'q' && t_now_ms() < end)
		cl_dispatch(h, fd, 20);
	cpg_finalize(h);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct cl_proc ps[MAXS];
	struct res rs[MAXS];
	int got[MAXS] = { 0 };
	int n = cl_nodes(), i, k, nready = 0;
	int64_t t0, t_go, t_end;
	char c;
	uint64_t total = 0, bytes = 0, frags = 0, tries = 0, intr = 0;
	int all_ok = 1, same = 1;

	t_start(argv[0], 240);
	P = getenv("CL_PROCS") ? atoi(getenv("CL_PROCS")) : 2;
	M = (int)cl_scaled(getenv("CL_MSGS") ? atoi(getenv("CL_MSGS")) : 2500);
	F = getenv("CL_FRAGS") ? atoi(getenv("CL_FRAGS")) : 3;
	S = n * P;
	if (S > MAXS || S < 1)
		t_skip_all("too many processes (%d)", S);
	t_name(&group, "cl-order-%d", (int)getpid());
	t_note("%d nodes x %d processes, %d small + %d fragmented messages each, library %s", n, P, M, F,
	       t_lib_path());
	t0 = t_now_ms();
	for (k = 0; k < S; k++)
		if (cl_spawn(&ps[k], 1 + k / P, k, member, NULL) != 0) {
			t_fail("spawn", "fork: %s", strerror(errno));
			cl_reap(ps, k, 0);
			return t_done();
		}
	/* everybody joined and saw everybody: go */
	for (k = 0; k < S; k++) {
		if (cl_hear(&ps[k], &c, 1, 40000) != 0)
			break;
		if (c != 'R') {
			/* 'D' + an error report */
			cl_hear(&ps[k], &rs[k], sizeof rs[k], 1000);
			t_fail("setup", "member %d (node %d): %s", k, ps[k].node, rs[k].why);
			got[k] = 1;
			break;
		}
		nready++;
	}
	REQUIRE("all_joined", nready == S, "%d of %d members ready", nready, S);
	t_go = t_now_ms();
	t_note("all %d members joined in %" PRId64 " ms", S, t_go - t0);
	for (k = 0; k < S; k++)
		cl_tell(&ps[k], 'G');
	for (k = 0; k < S; k++) {
		if (cl_hear(&ps[k], &c, 1, 150000) == 0 && c == 'D' &&
		    cl_hear(&ps[k], &rs[k], sizeof rs[k], 5000) == 0)
			got[k] = 1;
	}
	t_end = t_now_ms();
	for (k = 0; k < S; k++)
		cl_tell(&ps[k], 'Q');
	cl_reap(ps, S, 20000);

	for (k = 0; k < S; k++) {
		char name[64];
		uint64_t want = (uint64_t)S * (uint64_t)(M + F);
		snprintf(name, sizeof name, "member%d_node%d", k, ps[k].node);
		if (!got[k]) {
			t_fail(name, "no report (%s)", cl_exited_ok(&ps[k]) ? "exited" : "crashed or hung");
			all_ok = 0;
			continue;
		}
		if (!CHECK(name, !rs[k].err && rs[k].nrecv == want && !rs[k].nbad && !rs[k].ndup && !rs[k].ngap &&
					 cl_exited_ok(&ps[k]),
			   "received %" PRIu64 "/%" PRIu64 ", %" PRIu64 " bad, %" PRIu64 " duplicates, %" PRIu64
			   " gaps%s: %s",
			   rs[k].nrecv, want, rs[k].nbad, rs[k].ndup, rs[k].ngap,
			   cl_exited_ok(&ps[k]) ? "" : ", bad exit", rs[k].why))
			all_ok = 0;
		total += rs[k].nrecv;
		bytes += rs[k].bytes;
		frags += rs[k].nfrag;
		tries += rs[k].try_again;
		intr += rs[k].interrupt;
	}
	for (k = 1; k < S; k++)
		if (got[k] && got[0] && (rs[k].hash != rs[0].hash || rs[k].hash_half != rs[0].hash_half)) {
			same = 0;
			t_note("member %d: stream hash %016" PRIx64 " (half %016" PRIx64 "), member 0: %016" PRIx64
			       " (half %016" PRIx64 ")",
			       k, rs[k].hash, rs[k].hash_half, rs[0].hash, rs[0].hash_half);
		}
	CHECK("same_total_order", all_ok && same, "the delivered streams differ between members");
	i = 0;
	t_note("%d senders, %" PRIu64 " deliveries checked (%" PRIu64 " fragmented), %.1f MiB delivered in %.1f s,"
	       " %" PRIu64 " TRY_AGAIN, %" PRIu64 " INTERRUPT; stream hash %016" PRIx64,
	       S, total, frags, (double)bytes / 1048576.0, (double)(t_end - t_go) / 1000.0, tries, intr,
	       got[0] ? rs[0].hash : 0);
	printf("FIGURES: total_order senders=%d deliveries=%" PRIu64 " fragmented=%" PRIu64 " mib=%.1f secs=%.1f"
	       " try_again=%" PRIu64 "\n",
	       S, total, frags, (double)bytes / 1048576.0, (double)(t_end - t_go) / 1000.0, tries);
	(void)i;
	return t_done();
}
