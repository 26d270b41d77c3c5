/*
 * daemon_restart: the daemon of one node (corosync in the cluster, or cpgd)
 * is SIGKILLed while its clients multicast at full speed, then restarted.
 * CL_PROCS (default 4) members on the loaded node, one observer on every
 * other node.  Asserted:
 *  - every member on the loaded node gets CS_ERR_LIBRARY (from
 *    cpg_dispatch or cpg_mcast_joined) within 5 s of the kill, and a
 *    multicast after that also CS_ERR_LIBRARY (Debian's library: possibly
 *    CS_ERR_TRY_AGAIN, see cl_mcast_after_death_ok) -- nothing hangs;
 *  - after cpg_finalize nothing of the member is left in /dev/shm (our
 *    library; Debian's leaves empty directories, reported);
 *  - the observers on the other nodes see the node's members leave
 *    (CPG_REASON_NODEDOWN);
 *  - after the restart a new cpg_initialize + cpg_join works in every member
 *    (within 20 s), and their new messages reach every member;
 *  - no message is corrupted, duplicated or reordered, before or after.
 */
#include "member.h"

static struct cl_proc ps[64];
static struct cl_log logs[64];
static int S, N, P, loaded;
static size_t mark[64];

static int on_loaded(const struct cl_proc *p, void *a) { return p->node == loaded; }

int main(int argc, char **argv)
{
	struct cl_member_cfg cfg;
	int nodes[CL_MAXA];
	int i, s, ok, ok2, ok3;
	int64_t t0, t_kill, worst = 0, t_back = 0;
	char reply[128], buf[1400];
	long ysnap[64];
	uint64_t sent_before = 0, delivered = 0, after_min = UINT64_MAX;

	t_start(argv[0], 200);
	N = cl_nodes();
	P = getenv("CL_PROCS") ? atoi(getenv("CL_PROCS")) : 4;
	loaded = N >= 2 ? 2 : 1;
	S = P + (N - 1);
	if (S > CL_MAXA)
		t_skip_all("too many members");
	memset(&cfg, 0, sizeof cfg);
	t_name(&cfg.group, "cl-restart-%d", (int)getpid());
	cfg.interval_ms = 0;
	cfg.min_len = 64;
	cfg.max_len = 8192;
	t0 = t_now_ms();
	for (i = 0; i < S; i++) {
		/* members 0..P-1 on the loaded node, then one per other node */
		int node = i < P ? loaded : 0;
		if (!node) {
			int k = i - P + 1; /* 1..N-1 */
			node = k >= loaded ? k + 1 : k;
		}
		nodes[i] = node;
	}
	cl_start_members(ps, logs, S, nodes, &cfg, t0);
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'G');
	cl_collect(ps, logs, S, 1500);

	/* ---- kill the loaded node's daemon under load */
	for (i = 0; i < S; i++) {
		mark[i] = logs[i].n;
		cl_tell(&ps[i], 'Y');
	}
	cl_until_all(ps, logs, S, 5000, mark, 'Y');
	for (i = 0; i < S; i++) {
		long y = cl_find(&logs[i], mark[i], 'Y');
		if (y >= 0)
			sent_before += logs[i].ev[y].nsent;
	}
	t_note("%" PRIu64 " messages multicast in 1.5 s before the kill", sent_before);
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	t_kill = t_now_ms();
	REQUIRE("kill", cl_ctl(reply, sizeof reply, "kill %d", loaded) == 0, "driver: %s", reply);
	ok = cl_until_after_kill(ps, logs, S, 20000, mark, loaded, 0);
	CHECK("events_after_kill", ok, "not every member saw the daemon die / the node leave within 20 s");
	ok = ok2 = ok3 = 1;
	for (i = 0; i < S; i++) {
		long e, e2, f, c;
		if (ps[i].node != loaded) {
			struct cpg_address wl[CL_MAXA];
			size_t nwl = cl_addrs_of(wl, ps, S, on_loaded, NULL, CPG_REASON_NODEDOWN);
			c = cl_find(&logs[i], mark[i], 'C');
			if (c < 0 || !cl_list_eq(logs[i].ev[c].l, logs[i].ev[c].nl, wl, nwl)) {
				if (c >= 0) {
					cl_fmt_ev(buf, sizeof buf, &logs[i].ev[c]);
					t_note("observer %d: %s", i, buf);
				}
				ok3 = 0;
			}
			continue;
		}
		e = cl_find(&logs[i], mark[i], 'E');
		e2 = e >= 0 ? cl_find(&logs[i], (size_t)e + 1, 'E') : -1;
		f = cl_find(&logs[i], mark[i], 'F');
		if (e < 0 || logs[i].ev[e].rc != CS_ERR_LIBRARY || e2 < 0 || !cl_mcast_after_death_ok(&logs[i].ev[e2], i) ||
		    logs[i].ev[e].t_ms - t_kill > 5000) {
			if (e >= 0) {
				cl_fmt_ev(buf, sizeof buf, &logs[i].ev[e]);
				t_note("member %d: %s after %" PRId64 " ms", i, buf, logs[i].ev[e].t_ms - t_kill);
			}
			ok = 0;
		}
		if (e >= 0 && logs[i].ev[e].t_ms - t_kill > worst)
			worst = logs[i].ev[e].t_ms - t_kill;
		if (f >= 0 && logs[i].ev[f].shm_left) {
			cl_fmt_ev(buf, sizeof buf, &logs[i].ev[f]);
			if (t_lib_is_system()) {
				t_note("member %d: Debian's library: %s (libqb leaves empty directories)", i, buf);
			} else {
				t_note("member %d: %s", i, buf);
				ok2 = 0;
			}
		}
	}
	CHECK("library_error_within_5s", ok, "a member did not get CS_ERR_LIBRARY (then again from mcast) within 5 s");
	CHECK("no_shm_left", ok2, "our library left /dev/shm entries after cpg_finalize");
	if (N >= 2)
		CHECK("observers_see_nodedown", ok3, "observers did not see the node's members leave with NODEDOWN");
	t_note("every member on the node had CS_ERR_LIBRARY %" PRId64 " ms after the kill", worst);

	/* ---- restart, initialize anew, traffic again */
	for (i = 0; i < S; i++)
		mark[i] = logs[i].n;
	REQUIRE("restart", cl_ctl(reply, sizeof reply, "start %d", loaded) == 0, "driver: %s", reply);
	if (N >= 2)
		cl_ctl(reply, sizeof reply, "wait %d 30", N);
	t_back = t_now_ms();
	for (i = 0; i < S; i++)
		if (ps[i].node == loaded)
			cl_tell(&ps[i], 'I');
	ok = cl_until_node(ps, logs, S, 25000, mark, loaded, 'J');
	ok2 = 1;
	for (i = 0; i < S && ok; i++) {
		long j = ps[i].node == loaded ? cl_find(&logs[i], mark[i], 'J') : -1;
		if (j >= 0 && logs[i].ev[j].rc != CS_OK) {
			cl_fmt_ev(buf, sizeof buf, &logs[i].ev[j]);
			t_note("member %d: %s", i, buf);
			ok2 = 0;
		}
	}
	CHECK("new_initialize_works", ok && ok2, "cpg_initialize/cpg_join after the restart failed or took > 25 s");
	ok = cl_until_members(ps, logs, S, 20000, (uint32_t)S);
	CHECK("group_whole_again", ok, "not every member saw %d members after the restart", S);
	t_note("group whole again %" PRId64 " ms after the restart", t_now_ms() - t_back);
	for (i = 0; i < S; i++) {
		mark[i] = logs[i].n;
		cl_tell(&ps[i], 'Y');
	}
	cl_until_all(ps, logs, S, 5000, mark, 'Y');
	for (i = 0; i < S; i++)
		ysnap[i] = cl_find(&logs[i], mark[i], 'Y');
	cl_collect(ps, logs, S, 1500);
	for (i = 0; i < S; i++)
		cl_tell(&ps[i], 'S');
	cl_collect(ps, logs, S, 1000);
	for (i = 0; i < S; i++) {
		mark[i] = logs[i].n;
		cl_tell(&ps[i], 'Q');
	}
	REQUIRE("reports", cl_until_all(ps, logs, S, 15000, mark, 'X'), "not every member reported");
	ok = ok2 = 1;
	for (i = 0; i < S; i++) {
		const struct cl_ev *x = &logs[i].ev[cl_find(&logs[i], mark[i], 'X')];
		const struct cl_ev *y = ysnap[i] >= 0 ? &logs[i].ev[ysnap[i]] : NULL;
		if (x->nbad || x->ndup) {
			t_note("member %d: %" PRIu64 " bad, %" PRIu64 " duplicated/reordered: %s", i, x->nbad, x->ndup,
			       x->text);
			ok = 0;
		}
		for (s = 0; s < S; s++) {
			uint64_t after = y ? x->recv[s] - y->recv[s] : 0;
			delivered += x->recv[s];
			if (ps[s].node != loaded)
				continue;
			if (after < after_min)
				after_min = after;
			if (!after) {
				t_note("member %d got no message from restarted member %d after the restart", i, s);
				ok2 = 0;
			}
		}
	}
	CHECK("no_corruption_duplicate_reorder", ok, "corrupted, duplicated or reordered messages");
	CHECK("traffic_after_restart", ok2, "messages of the restarted members did not reach every member");
	cl_finish(ps, logs, S, t0, "member_exit", "member");
	t_note("%" PRIu64 " deliveries checked", delivered);
	printf("FIGURES: daemon_restart members=%d sent_before_kill=%" PRIu64 " error_within_ms=%" PRId64
	       " deliveries=%" PRIu64 "\n",
	       S, sent_before, worst, delivered);
	cl_logs_free(logs, S);
	return t_done();
}
