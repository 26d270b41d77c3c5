/*
 * node_kill: one node's corosync is SIGKILLed under a joined group, then
 * restarted.  P members per node (CL_PROCS, default 2), model v1 with the
 * totem confchg callback.  Asserted:
 *  - the survivors get exactly one CPG confchg: left = every member of the
 *    dead node with reason CPG_REASON_NODEDOWN, members = the survivors,
 *    joined = none; then a totem confchg without the dead node (CPG confchg
 *    first);
 *  - the members on the dead node get CS_ERR_LIBRARY from cpg_dispatch and
 *    cpg_mcast_joined within 5 s; after cpg_finalize nothing of theirs is
 *    left in /dev/shm (our library; Debian's leaves empty directories);
 *  - after the restart the survivors get a totem confchg with every node
 *    again; the dead node's members initialize and join anew, everybody sees
 *    them join (CPG_REASON_JOIN) and the totem confchg of the rejoined
 *    members lists every node; one message from every member reaches every
 *    member.
 */
#include "member.h"

static struct cl_proc ps[64];
static struct cl_log logs[64];
static int S, N, P, victim;
static size_t mark[64];

static int on_victim(const struct cl_proc *p, void *a) { return p->node == victim; }
static int off_victim(const struct cl_proc *p, void *a) { return p->node != victim; }
static int everyone(const struct cl_proc *p, void *a) { return 1; }

/* survivors saw a totem confchg listing all N nodes */
static int pred_totem_full(void *a)
{
	int i;
	for (i = 0; i < S; i++)
		if (ps[i].node != victim && cl_find_totem(&logs[i], mark[i], (uint32_t)N) < 0)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	struct cl_member_cfg cfg;
	int nodes[CL_MAXA];
	struct cpg_address want_left[CL_MAXA], want_members[CL_MAXA], all[CL_MAXA];
	size_t nwl, nwm, nall;
	int i, ok, ok2, ok3;
	int64_t t0, t_kill, t_detect = 0, t_restart;
	char reply[128], buf[1400], who[32];

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
	t_name(&cfg.group, "cl-nodekill-%d", (int)getpid());
	cfg.min_len = 64;
	cfg.max_len = 512;
	t0 = t_now_ms();
	for (i = 0; i < S; i++)
		nodes[i] = 1 + i / P;
	cl_start_members(ps, logs, S, nodes, &cfg, t0);
	ok = 1;
	for (i = 0; i < S; i++) {
		long t = cl_find(&logs[i], 0, 'T');
		ok &= t >= 0 && cl_totem_has_nodes(&logs[i].ev[t], N, 0);
	}
	CHECK("initial_totem_conf", ok, "a member's initial totem confchg does not list nodes 1..%d", N);

	/* ---- kill the victim's daemon */
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	t_kill = t_now_ms();
	REQUIRE("kill", cl_ctl(reply, sizeof reply, "kill %d", victim) == 0, "driver: %s", reply);
	ok = cl_until_after_kill(ps, logs, S, 20000, mark, victim, 1);
	CHECK("events_after_kill", ok, "not every member saw the node leave / its daemon die within 20 s");
	nwl = cl_addrs_of(want_left, ps, S, on_victim, NULL, CPG_REASON_NODEDOWN);
	nwm = cl_addrs_of(want_members, ps, S, off_victim, NULL, 0);
	ok = ok2 = ok3 = 1;
	for (i = 0; i < S; i++) {
		long c, t;
		if (ps[i].node == victim)
			continue;
		c = cl_find(&logs[i], mark[i], 'C');
		t = cl_find(&logs[i], mark[i], 'T');
		if (c < 0 || t < 0) {
			ok = 0;
			continue;
		}
		snprintf(who, sizeof who, "member %d", i);
		if (!cl_confchg_only(&logs[i], c, who, want_members, nwm, want_left, nwl, NULL, 0))
			ok = 0;
		if (!cl_totem_has_nodes(&logs[i].ev[t], N, victim)) {
			cl_fmt_ev(buf, sizeof buf, &logs[i].ev[t]);
			t_note("member %d: %s", i, buf);
			ok2 = 0;
		}
		if (t < c)
			ok3 = 0;
		if (logs[i].ev[c].t_ms - t_kill > t_detect)
			t_detect = logs[i].ev[c].t_ms - t_kill;
	}
	CHECK("survivors_confchg_nodedown", ok,
	      "survivors did not get exactly one confchg with the dead node's members left (NODEDOWN)");
	CHECK("survivors_totem_without_node", ok2, "the survivors' totem confchg does not list exactly the live nodes");
	CHECK("cpg_confchg_before_totem", ok3, "a survivor got the totem confchg before the CPG confchg");
	t_note("survivors saw the NODEDOWN confchg %" PRId64 " ms after the SIGKILL", t_detect);
	ok = ok2 = ok3 = 1;
	for (i = 0; i < S; i++) {
		long e, e2, f;
		if (ps[i].node != victim)
			continue;
		e = cl_find(&logs[i], mark[i], 'E');
		e2 = e >= 0 ? cl_find(&logs[i], (size_t)e + 1, 'E') : -1;
		f = cl_find(&logs[i], mark[i], 'F');
		if (e < 0 || logs[i].ev[e].rc != CS_ERR_LIBRARY || logs[i].ev[e].t_ms - t_kill > 5000 || e2 < 0 ||
		    !cl_mcast_after_death_ok(&logs[i].ev[e2], i)) {
			ok = 0;
			if (e >= 0)
				t_note("member %d: %s after %" PRId64 " ms", i, logs[i].ev[e].text,
				       logs[i].ev[e].t_ms - t_kill);
		}
		if (f < 0)
			continue;
		if (logs[i].ev[f].shm_left) {
			long nt = cl_find(&logs[i], mark[i], 'N');
			cl_fmt_ev(buf, sizeof buf, &logs[i].ev[f]);
			t_note("member %d: %s; %s", i, buf, nt >= 0 ? logs[i].ev[nt].text : "");
			if (t_lib_is_system())
				t_note("member %d: Debian's library left %" PRIu64 " empty /dev/shm directories (libqb)", i,
				       logs[i].ev[f].shm_left);
			else
				ok2 = 0;
		}
	}
	CHECK("dead_node_members_get_library_error", ok,
	      "members on the killed node did not get CS_ERR_LIBRARY (dispatch, then mcast) within 5 s");
	CHECK("dead_node_members_no_shm_left", ok2, "our library left /dev/shm entries after cpg_finalize");

	/* ---- restart it: the totem membership is whole again, then the members rejoin */
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	t_restart = t_now_ms();
	REQUIRE("restart", cl_ctl(reply, sizeof reply, "start %d", victim) == 0, "driver: %s", reply);
	ok = cl_until(ps, logs, S, 20000, pred_totem_full, NULL);
	CHECK("survivors_totem_with_node", ok, "the survivors got no totem confchg listing all %d nodes in 20 s", N);
	t_note("totem confchg with node %d back %" PRId64 " ms after the restart request", victim,
	       t_now_ms() - t_restart);
	for (i = 0; i < S; i++)
		if (ps[i].node == victim)
			cl_tell(&ps[i], 'I');
	ok = cl_until_members(ps, logs, S, 20000, (uint32_t)S);
	CHECK("rejoined", ok, "not every member saw %d members after the rejoin", S);
	/* survivors: one join confchg per rejoined member, reason JOIN; no NODEUP */
	nall = cl_addrs_of(all, ps, S, everyone, NULL, 0);
	ok = ok2 = ok3 = 1;
	for (i = 0; i < S; i++) {
		long c, t;
		size_t njoined = 0;
		if (ps[i].node == victim) {
			long j = cl_find(&logs[i], mark[i], 'J');
			ok2 &= j >= 0 && logs[i].ev[j].rc == CS_OK;
			t = cl_find(&logs[i], mark[i], 'T');
			ok3 &= t >= 0 && cl_totem_has_nodes(&logs[i].ev[t], N, 0);
			continue;
		}
		for (c = cl_find(&logs[i], mark[i], 'C'); c >= 0; c = cl_find(&logs[i], (size_t)c + 1, 'C')) {
			const struct cl_ev *e = &logs[i].ev[c];
			if (e->nl != 0 || e->nj != 1 || e->j[0].reason != CPG_REASON_JOIN ||
			    e->j[0].nodeid != (uint32_t)victim) {
				cl_fmt_ev(buf, sizeof buf, e);
				t_note("member %d: unexpected %s", i, buf);
				ok = 0;
			}
			njoined++;
		}
		if (njoined != (size_t)P)
			ok = 0;
		c = cl_find_last(&logs[i], 'C');
		if (c < 0 || !cl_list_eq(logs[i].ev[c].m, logs[i].ev[c].nm, all, nall))
			ok = 0;
	}
	CHECK("rejoin_confchg_join", ok, "survivors did not see the %d restarted members join (CPG_REASON_JOIN)", P);
	CHECK("rejoin_init_ok", ok2, "a member could not initialize/join after the restart");
	CHECK("rejoin_initial_totem", ok3, "a rejoined member's initial totem confchg does not list every node");

	/* ---- one message from everybody reaches everybody */
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'M');
	cl_collect(ps, logs, S, 1500);
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'Q');
	cl_until_all(ps, logs, S, 10000, mark, 'X');
	ok = 1;
	for (i = 0; i < S; i++) {
		long x = cl_find(&logs[i], mark[i], 'X');
		int s;
		if (x < 0) {
			ok = 0;
			continue;
		}
		for (s = 0; s < S; s++)
			if (logs[i].ev[x].recv[s] != 1 || logs[i].ev[x].gaps[s])
				ok = 0;
		if (logs[i].ev[x].nbad || logs[i].ev[x].ndup)
			ok = 0;
	}
	CHECK("messages_after_restart", ok, "not every member got exactly one message from every member");
	cl_finish(ps, logs, S, t0, "member_exit", "member");
	printf("FIGURES: node_kill members=%d detect_ms=%" PRId64 "\n", S, t_detect);
	cl_logs_free(logs, S);
	return t_done();
}
