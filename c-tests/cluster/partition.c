/*
 * partition: one node is cut off the network (its veth on the bridge set
 * down) while every member multicasts (P members per node, CL_PROCS default
 * 2, one message every 4 ms each), then healed.  Asserted:
 *  - each side gets exactly one CPG confchg for the split: the other side's
 *    members left with CPG_REASON_NODEDOWN; and a totem confchg with its own
 *    nodes only;
 *  - after the heal exactly one CPG confchg on each side: the other side's
 *    members joined with CPG_REASON_NODEUP, everybody is a member again; a
 *    totem confchg listing every node;
 *  - virtual synchrony: members that go through the same two consecutive
 *    configuration changes delivered the same messages in the same order
 *    between them (per-view message count and stream hash); in particular
 *    the members of one side agree on the view that the split ended, and
 *    every member delivered the same stream after the heal;
 *  - no message is corrupted, duplicated or reordered; a member misses no
 *    message of a member that stayed on its side.
 */
#include "member.h"

static struct cl_proc ps[64];
static struct cl_log logs[64];
static int S, N, P, victim;
static size_t mark[64], mark_heal[64];

static int side(int i) { return ps[i].node == victim; }
static int on_victim(const struct cl_proc *p, void *a) { return p->node == victim; }
static int off_victim(const struct cl_proc *p, void *a) { return p->node != victim; }
static int everyone(const struct cl_proc *p, void *a) { return 1; }

/* every member has a confchg and a totem confchg with `ntm` (side-dependent) nodes since mark */
struct want_change { int split; };
static int pred_change(void *a)
{
	struct want_change *w = a;
	int i;
	for (i = 0; i < S; i++) {
		uint32_t ntm = w->split ? (side(i) ? 1u : (uint32_t)(N - 1)) : (uint32_t)N;
		if (cl_find(&logs[i], mark[i], 'C') < 0 || cl_find_totem(&logs[i], mark[i], ntm) < 0)
			return 0;
	}
	return 1;
}

/* check the single confchg each member got since mark: members = all
 * (after heal) or its side; left / joined = the other side with reason */
static int check_change(const char *name, int split)
{
	struct cpg_address surv[CL_MAXA], vict[CL_MAXA], all[CL_MAXA];
	size_t ns, nv, na;
	int i, ok = 1;
	uint32_t reason = split ? CPG_REASON_NODEDOWN : CPG_REASON_NODEUP;
	ns = cl_addrs_of(surv, ps, S, off_victim, NULL, reason);
	nv = cl_addrs_of(vict, ps, S, on_victim, NULL, reason);
	na = cl_addrs_of(all, ps, S, everyone, NULL, 0);
	for (i = 0; i < S; i++) {
		long c = cl_find(&logs[i], mark[i], 'C');
		const struct cpg_address *other = side(i) ? surv : vict;
		size_t nother = side(i) ? ns : nv;
		struct cpg_address mine[CL_MAXA];
		size_t nmine, k;
		char who[48];
		if (c < 0) {
			ok = 0;
			continue;
		}
		nmine = side(i) ? nv : ns;
		memcpy(mine, side(i) ? vict : surv, nmine * sizeof mine[0]);
		for (k = 0; k < nmine; k++)
			mine[k].reason = 0;
		snprintf(who, sizeof who, "member %d (node %d)", i, ps[i].node);
		if (split ? !cl_confchg_only(&logs[i], c, who, mine, nmine, other, nother, NULL, 0)
			  : !cl_confchg_only(&logs[i], c, who, all, na, NULL, 0, other, nother))
			ok = 0;
	}
	return CHECK(name, ok, "not every member got exactly the expected confchg (%s, reason %s)",
		     split ? "the other side left" : "the other side joined", split ? "NODEDOWN" : "NODEUP");
}

/* a view of member i: the V record at index v, bounded by the C records
 * before (start, -1 = none) and after it (end, -1 = the final view) */
struct view { long v, start, end; };
static size_t views_of(int i, struct view *out, size_t max)
{
	size_t k, n = 0;
	long last_c = -1;
	for (k = 0; k < logs[i].n && n < max; k++) {
		if (logs[i].ev[k].type == 'C')
			last_c = (long)k;
		if (logs[i].ev[k].type == 'V') {
			long next = cl_find(&logs[i], k + 1, 'C');
			out[n].v = (long)k;
			out[n].start = last_c;
			/* a V is followed by its C at once, except the final one */
			out[n].end = (next == (long)k + 1) ? next : -1;
			n++;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	struct cl_member_cfg cfg;
	int nodes[CL_MAXA];
	static struct view vs[64][256];
	size_t nv[64];
	int i, j, ok, ok2;
	int64_t t0, t_split, t_heal;
	int64_t d_split = 0, d_heal = 0;
	long compared = 0, compared_split = 0, mismatches = 0;
	uint64_t delivered = 0;
	char reply[128], b1[1400];
	struct want_change wc;

	t_start(argv[0], 200);
	N = cl_nodes();
	P = getenv("CL_PROCS") ? atoi(getenv("CL_PROCS")) : 2;
	S = N * P;
	victim = N;
	if (N < 2)
		t_skip_all("needs a cluster of at least 2 nodes");
	if (S > CL_MAXA)
		t_skip_all("too many members");
	memset(&cfg, 0, sizeof cfg);
	t_name(&cfg.group, "cl-partition-%d", (int)getpid());
	cfg.interval_ms = 4;
	cfg.min_len = 64;
	cfg.max_len = 2048;
	t0 = t_now_ms();
	for (i = 0; i < S; i++)
		nodes[i] = 1 + i / P;
	cl_start_members(ps, logs, S, nodes, &cfg, t0);
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'G');
	cl_collect(ps, logs, S, 1500);

	/* ---- split */
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	t_split = t_now_ms();
	REQUIRE("partition", cl_ctl(reply, sizeof reply, "partition %d", victim) == 0, "driver: %s", reply);
	wc.split = 1;
	ok = cl_until(ps, logs, S, 25000, pred_change, &wc);
	CHECK("split_seen", ok, "not every member saw a confchg and a totem confchg of its side within 25 s");
	for (i = 0; i < S; i++) {
		long c = cl_find(&logs[i], mark[i], 'C');
		if (c >= 0 && logs[i].ev[c].t_ms - t_split > d_split)
			d_split = logs[i].ev[c].t_ms - t_split;
	}
	check_change("split_confchg_nodedown", 1);
	t_note("split seen by every member %" PRId64 " ms after the link went down", d_split);
	cl_collect(ps, logs, S, 1500);

	/* ---- heal */
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	t_heal = t_now_ms();
	REQUIRE("heal", cl_ctl(reply, sizeof reply, "heal %d", victim) == 0, "driver: %s", reply);
	memcpy(mark_heal, mark, sizeof mark);
	wc.split = 0;
	ok = cl_until(ps, logs, S, 25000, pred_change, &wc);
	CHECK("merge_seen", ok, "not every member saw a confchg and a totem confchg with every node within 25 s");
	for (i = 0; i < S; i++) {
		long c = cl_find(&logs[i], mark[i], 'C');
		if (c >= 0 && logs[i].ev[c].t_ms - t_heal > d_heal)
			d_heal = logs[i].ev[c].t_ms - t_heal;
	}
	check_change("merge_confchg_nodeup", 0);
	t_note("merge seen by every member %" PRId64 " ms after the link came back", d_heal);
	cl_collect(ps, logs, S, 1500);

	/* ---- stop, drain, report */
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'S');
	cl_collect(ps, logs, S, 1500);
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'Q');
	ok = cl_until_all(ps, logs, S, 15000, mark, 'X');
	REQUIRE("reports", ok, "not every member reported");

	/* ---- virtual synchrony */
	for (i = 0; i < S; i++)
		nv[i] = views_of(i, vs[i], 256);
	for (i = 0; i < S; i++)
		for (j = i + 1; j < S; j++) {
			size_t a, b;
			for (a = 0; a < nv[i]; a++) {
				const struct view *x = &vs[i][a];
				if (x->start < 0 || x->end < 0)
					continue;
				for (b = 0; b < nv[j]; b++) {
					const struct view *y = &vs[j][b];
					const struct cl_ev *vx, *vy;
					if (y->start < 0 || y->end < 0 ||
					    !cl_confchg_eq(&logs[i].ev[x->start], &logs[j].ev[y->start]) ||
					    !cl_confchg_eq(&logs[i].ev[x->end], &logs[j].ev[y->end]))
						continue;
					vx = &logs[i].ev[x->v];
					vy = &logs[j].ev[y->v];
					compared++;
					if (logs[i].ev[x->end].nl && logs[i].ev[x->end].l[0].reason == CPG_REASON_NODEDOWN)
						compared_split++;
					if (vx->count != vy->count || vx->hash != vy->hash) {
						mismatches++;
						cl_fmt_ev(b1, sizeof b1, &logs[i].ev[x->end]);
						t_note("members %d and %d moved together to (%s) but delivered %" PRIu64
						       " / %" PRIu64 " messages (hash %016" PRIx64 " / %016" PRIx64 ")",
						       i, j, b1, vx->count, vy->count, vx->hash, vy->hash);
					}
				}
			}
		}
	CHECK("virtual_synchrony", mismatches == 0 && compared_split >= (long)(P * (P - 1) / 2 + (S - P) * (S - P - 1) / 2),
	      "%ld of %ld view pairs differ; %ld pairs ended by the split compared", mismatches, compared,
	      compared_split);
	t_note("%ld view pairs compared (%ld ended by the split), %ld differ", compared, compared_split, mismatches);
	/* the view the merge started (until the members quit): one identical
	 * stream everywhere */
	ok = 1;
	{
		const struct cl_ev *f0 = NULL;
		for (i = 0; i < S; i++) {
			long c = cl_find(&logs[i], mark_heal[i], 'C');
			long v = c >= 0 ? cl_find(&logs[i], (size_t)c + 1, 'V') : -1;
			const struct cl_ev *fi = v >= 0 ? &logs[i].ev[v] : NULL;
			if (!fi) {
				ok = 0;
				continue;
			}
			if (!f0)
				f0 = fi;
			if (fi->count != f0->count || fi->hash != f0->hash || !fi->count) {
				t_note("member %d: view after the merge %" PRIu64 " messages hash %016" PRIx64
				       ", member 0: %" PRIu64 " hash %016" PRIx64,
				       i, fi->count, fi->hash, f0->count, f0->hash);
				ok = 0;
			}
		}
	}
	CHECK("same_stream_after_merge", ok, "the members' streams after the merge differ");

	/* ---- loss, duplicates, order */
	ok = ok2 = 1;
	for (i = 0; i < S; i++) {
		const struct cl_ev *x = &logs[i].ev[cl_find(&logs[i], mark[i], 'X')];
		int s;
		if (x->nbad || x->ndup) {
			t_note("member %d: %" PRIu64 " bad, %" PRIu64 " duplicated/reordered: %s", i, x->nbad, x->ndup,
			       x->text);
			ok = 0;
		}
		for (s = 0; s < S; s++) {
			delivered += x->recv[s];
			if (side(s) == side(i) && x->gaps[s]) {
				t_note("member %d missed %u messages of member %d (same side)", i, x->gaps[s], s);
				ok2 = 0;
			}
		}
	}
	CHECK("no_corruption_duplicate_reorder", ok, "corrupted, duplicated or reordered messages");
	CHECK("no_loss_within_a_side", ok2, "a member missed messages of a member of its own side");
	cl_finish(ps, logs, S, t0, "member_exit", "member");
	t_note("%" PRIu64 " deliveries checked", delivered);
	printf("FIGURES: partition members=%d deliveries=%" PRIu64 " split_ms=%" PRId64 " merge_ms=%" PRId64
	       " view_pairs=%ld\n",
	       S, delivered, d_split, d_heal, compared);
	cl_logs_free(logs, S);
	return t_done();
}
