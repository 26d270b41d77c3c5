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

/* every member's latest confchg shows `want` members */
static int pred_members(void *a)
{
	int i;
	uint32_t want = *(uint32_t *)a;
	for (i = 0; i < S; i++) {
		long c = cl_find_last(&logs[i], 'C');
		if (c < 0 || logs[i].ev[c].nm != want)
			return 0;
	}
	return 1;
}

/* after the kill: survivors have a confchg and a totem confchg, victims finalized */
static int pred_after_kill(void *a)
{
	int i;
	for (i = 0; i < S; i++) {
		if (ps[i].node == victim) {
			if (cl_find(&logs[i], mark[i], 'F') < 0)
				return 0;
		} else if (cl_find(&logs[i], mark[i], 'C') < 0 || cl_find(&logs[i], mark[i], 'T') < 0) {
			return 0;
		}
	}
	return 1;
}

/* survivors saw a totem confchg listing all N nodes */
static int pred_totem_full(void *a)
{
	int i;
	for (i = 0; i < S; i++) {
		long t;
		if (ps[i].node == victim)
			continue;
		for (t = cl_find(&logs[i], mark[i], 'T'); t >= 0; t = cl_find(&logs[i], (size_t)t + 1, 'T'))
			if (logs[i].ev[t].ntm == (uint32_t)N)
				break;
		if (t < 0)
			return 0;
	}
	return 1;
}

static int pred_all_x(void *a)
{
	int i;
	for (i = 0; i < S; i++)
		if (cl_find(&logs[i], mark[i], 'X') < 0)
			return 0;
	return 1;
}

static int totem_has_nodes(const struct cl_ev *e, int n, int except)
{
	int k;
	uint32_t i;
	if (e->ntm != (uint32_t)(except ? n - 1 : n))
		return 0;
	for (k = 1; k <= n; k++) {
		int found = 0;
		if (k == except)
			continue;
		for (i = 0; i < e->ntm; i++)
			found |= e->tm[i] == (uint32_t)k;
		if (!found)
			return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct cl_member_cfg cfg;
	struct cpg_address want_left[CL_MAXA], want_members[CL_MAXA], all[CL_MAXA];
	size_t nwl, nwm, nall;
	int i, ok, ok2, ok3;
	uint32_t want;
	int64_t t0, t_kill, t_detect = 0, t_restart;
	char reply[128], buf[1400];

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
		if (cl_spawn(&ps[i], 1 + i / P, i, cl_member_main, &cfg) != 0) {
			t_fail("spawn", "fork: %s", strerror(errno));
			cl_reap(ps, i, 0);
			return t_done();
		}
	want = (uint32_t)S;
	ok = cl_until(ps, logs, S, 30000, pred_members, &want);
	if (!ok)
		cl_dump_logs(ps, logs, S, t0);
	REQUIRE("all_joined", ok, "not every member saw %d members in 30 s", S);
	ok = 1;
	for (i = 0; i < S; i++) {
		long t = cl_find(&logs[i], 0, 'T');
		ok &= t >= 0 && totem_has_nodes(&logs[i].ev[t], N, 0);
	}
	CHECK("initial_totem_conf", ok, "a member's initial totem confchg does not list nodes 1..%d", N);

	/* ---- kill the victim's daemon */
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	t_kill = t_now_ms();
	REQUIRE("kill", cl_ctl(reply, sizeof reply, "kill %d", victim) == 0, "driver: %s", reply);
	ok = cl_until(ps, logs, S, 20000, pred_after_kill, NULL);
	CHECK("events_after_kill", ok, "not every member saw the node leave / its daemon die within 20 s");
	nwl = cl_addrs_of(want_left, ps, S, on_victim, NULL, CPG_REASON_NODEDOWN);
	nwm = cl_addrs_of(want_members, ps, S, off_victim, NULL, 0);
	ok = ok2 = ok3 = 1;
	for (i = 0; i < S; i++) {
		long c, c2, t;
		if (ps[i].node == victim)
			continue;
		c = cl_find(&logs[i], mark[i], 'C');
		t = cl_find(&logs[i], mark[i], 'T');
		if (c < 0 || t < 0) {
			ok = 0;
			continue;
		}
		if (!cl_list_eq(logs[i].ev[c].l, logs[i].ev[c].nl, want_left, nwl) ||
		    !cl_list_eq(logs[i].ev[c].m, logs[i].ev[c].nm, want_members, nwm) || logs[i].ev[c].nj != 0) {
			cl_fmt_ev(buf, sizeof buf, &logs[i].ev[c]);
			t_note("member %d: %s", i, buf);
			ok = 0;
		}
		c2 = cl_find(&logs[i], (size_t)c + 1, 'C');
		if (c2 >= 0) {
			cl_fmt_ev(buf, sizeof buf, &logs[i].ev[c2]);
			t_note("member %d: a second confchg: %s", i, buf);
			ok = 0;
		}
		if (!totem_has_nodes(&logs[i].ev[t], N, victim)) {
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
	want = (uint32_t)S;
	ok = cl_until(ps, logs, S, 20000, pred_members, &want);
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
			ok3 &= t >= 0 && totem_has_nodes(&logs[i].ev[t], N, 0);
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
	cl_until(ps, logs, S, 10000, pred_all_x, NULL);
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
	cl_reap(ps, S, 10000);
	for (i = 0; i < S; i++)
		if (!cl_exited_ok(&ps[i]))
			t_fail("member_exit", "member %d did not exit cleanly", i);
	if (t_nfail)
		cl_dump_logs(ps, logs, S, t0);
	printf("FIGURES: node_kill members=%d detect_ms=%" PRId64 "\n", S, t_detect);
	cl_logs_free(logs, S);
	return t_done();
}
