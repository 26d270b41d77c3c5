/*
 * flood: many senders at full speed against one slow receiver.
 * CL_SENDERS (default 4 per node on corosync, 6 on cpgd) senders, spread
 * over the nodes, multicast 256 B .. 4 KiB messages as fast as the library
 * lets them, retrying CS_ERR_TRY_AGAIN, for CL_SEND_SECS (default 8) s and
 * until one of them was throttled (at most CL_MAX_SEND_SECS, default 20 s;
 * at most CL_MAX_MSGS, default 10 000, messages each); one receiver on
 * node 1 dispatches one event at a time and sleeps CL_SLOW_MS (default 1) ms
 * after every CL_SLOW_EVERY (default 4) events, until it has everything (at
 * most CL_DRAIN_SECS, default 90, more).  The coordinator samples the VmRSS of
 * the receiver's daemon and of the receiver every 100 ms.  Asserted:
 *  - the receiver (and every sender, which receives too) gets every message
 *    that was multicast with CS_OK, exactly once, intact and in per-sender
 *    order;
 *  - flow control is visible: the senders got CS_ERR_TRY_AGAIN, and with our
 *    library cpg_flow_control_state_get reported CPG_FLOW_CONTROL_ENABLED
 *    (Debian's always reports DISABLED). Not asserted for Debian's library on
 *    corosync: its slower senders often never make corosync's totem-queue
 *    flow control engage (load-dependent; docs/reliability.md), so there
 *    the number of TRY_AGAINs is only reported;
 *  - the receiver's RSS stays under CL_RX_RSS_MIB (default 64 MiB); the
 *    daemon's RSS stays under CL_DAEMON_RSS_MIB (default: 96 MiB for cpgd,
 *    whose queues are bounded; for corosync, which queues a slow reader's
 *    events without limit (exec/ipc_glue.c), baseline + 3 x the bytes
 *    multicast, i.e. it must not exceed what the backlog explains).
 */
#include "member.h"

#define MAXS 32

struct sres {
	char type; /* 'J' joined, 'T' first TRY_AGAIN, 'D' done sending, 'X' final */
	int32_t rc;
	uint64_t sent, bytes, try_again, fc_enabled, fc_samples;
	uint64_t recv, nbad, ndup, ngap;
	char why[120];
};

struct expect {
	uint64_t sent[MAXS];
};

static struct cpg_name group;
static int NS, send_secs, slow_ms, slow_every, drain_secs;
static size_t min_len, max_len;
static int max_send_secs;
static uint64_t max_msgs;

/* shared by sender and receiver: checking of what they get */
static uint64_t next_seq[MAXS];
static struct sres R;
static int quick_check; /* senders: header only (length, sender, order), to keep their CPU for sending */
static void f_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct cl_msg m;
	char why[160];
	int bad;
	if (quick_check) {
		bad = !msg || len < sizeof m;
		if (!bad) {
			memcpy(&m, msg, sizeof m);
			bad = m.magic != CL_MAGIC || m.len != len;
		}
		snprintf(why, sizeof why, "bad header or length (%zu bytes)", len);
	} else {
		bad = cl_msg_check(msg, len, &m, 0, why, sizeof why) != 0;
	}
	if (bad || m.sender >= MAXS) {
		if (!R.nbad)
			snprintf(R.why, sizeof R.why, "%.100s", why);
		R.nbad++;
		return;
	}
	if (m.seq < next_seq[m.sender]) {
		if (!R.ndup)
			snprintf(R.why, sizeof R.why, "sender %u seq %" PRIu64 " again (next %" PRIu64 ")", m.sender,
				 m.seq, next_seq[m.sender]);
		R.ndup++;
		return;
	}
	if (m.seq > next_seq[m.sender]) {
		if (!R.ngap)
			snprintf(R.why, sizeof R.why, "sender %u: seq %" PRIu64 " after %" PRIu64, m.sender, m.seq,
				 next_seq[m.sender]);
		R.ngap += m.seq - next_seq[m.sender];
	}
	next_seq[m.sender] = m.seq + 1;
	R.recv++;
}
static size_t f_members;
static void f_confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *m, size_t nm,
		      const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj)
{
	f_members = nm;
}

static int f_join(struct cl_proc *self, cpg_handle_t *h, int *fd)
{
	cpg_model_v1_data_t md = { CPG_MODEL_V1, f_deliver, f_confchg, NULL, 0 };
	memset(&R, 0, sizeof R);
	R.type = 'J';
	R.rc = cl_init(h, &md, 20000);
	if (R.rc == CS_OK)
		R.rc = cl_join(*h, &group, 10000);
	if (R.rc == CS_OK)
		cpg_fd_get(*h, fd);
	cl_report(self, &R, sizeof R);
	return R.rc == CS_OK;
}

/* wait for 'G' while dispatching; 0 if the coordinator went away */
static int f_wait_go(struct cl_proc *self, cpg_handle_t h, int fd)
{
	int c;
	while ((c = cl_heard(self, 0)) != 'G') {
		if (c == 'q' || c == 'Q')
			return 0;
		cl_dispatch(h, fd, 20);
	}
	return 1;
}

static int sender_main(struct cl_proc *self, void *arg)
{
	cpg_handle_t h;
	int fd, c;
	unsigned char *buf = malloc(max_len);
	uint64_t seq = 0, rnd = (uint64_t)self->idx * 7919 + 1;
	int64_t end;
	quick_check = 1;
	if (!buf || !f_join(self, &h, &fd) || !f_wait_go(self, h, fd))
		return 1;
	end = t_now_ms() + (int64_t)max_send_secs * 1000 + 5000;
	while (t_now_ms() < end && R.sent < max_msgs && cl_heard(self, 0) != 'S') {
		struct iovec iov;
		size_t len;
		cs_error_t rc;
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		len = min_len + (size_t)((rnd >> 33) % (max_len - min_len + 1));
		cl_msg_make(buf, len, (uint32_t)self->idx, seq);
		iov.iov_base = buf;
		iov.iov_len = len;
		rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		if (rc == CS_OK) {
			seq++;
			R.sent++;
			R.bytes += len;
		} else if (rc == CS_ERR_TRY_AGAIN) {
			cpg_flow_control_state_t st = CPG_FLOW_CONTROL_DISABLED;
			if (!R.try_again++) {
				R.type = 'T';
				cl_report(self, &R, sizeof R);
			}
			R.fc_samples++;
			if (cpg_flow_control_state_get(h, &st) == CS_OK && st == CPG_FLOW_CONTROL_ENABLED)
				R.fc_enabled++;
			if (cl_dispatch(h, fd, 1) != CS_OK)
				break;
			continue;
		} else {
			snprintf(R.why, sizeof R.why, "cpg_mcast_joined: %s", t_err(rc));
			R.rc = rc;
			break;
		}
		if (cl_dispatch(h, fd, 0) != CS_OK)
			break;
	}
	R.type = 'D';
	cl_report(self, &R, sizeof R);
	/* keep receiving until told to stop */
	end = t_now_ms() + (int64_t)(drain_secs + 30) * 1000;
	while ((c = cl_heard(self, 0)) != 'Q' && c != 'q' && t_now_ms() < end)
		cl_dispatch(h, fd, 20);
	R.type = 'X';
	cl_report(self, &R, sizeof R);
	cpg_finalize(h);
	return 0;
}

static int receiver_main(struct cl_proc *self, void *arg)
{
	cpg_handle_t h;
	int fd, i, have_expect = 0;
	struct expect ex;
	uint64_t want = 0;
	int64_t end;
	if (!f_join(self, &h, &fd))
		return 1;
	/* the coordinator says go once every sender has joined */
	if (!f_wait_go(self, h, fd))
		return 1;
	end = t_now_ms() + (int64_t)(max_send_secs + drain_secs) * 1000;
	while (t_now_ms() < end) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { self->down[0], POLLIN, 0 } };
		int k;
		if (!have_expect && poll(&pf[1], 1, 0) == 1) {
			if (t_read_all(self->down[0], &ex, sizeof ex, 2000) != 0)
				break;
			have_expect = 1;
			for (i = 0; i < MAXS; i++)
				want += ex.sent[i];
		}
		if (have_expect && R.recv + R.nbad + R.ndup >= want)
			break;
		if (poll(pf, 1, 100) <= 0)
			continue;
		/* slow: one event per call, a nap every slow_every events */
		for (k = 0; k < slow_every; k++) {
			cs_error_t rc = cpg_dispatch(h, CS_DISPATCH_ONE_NONBLOCKING);
			if (rc == CS_ERR_TRY_AGAIN)
				break;
			if (rc != CS_OK) {
				R.rc = rc;
				snprintf(R.why, sizeof R.why, "cpg_dispatch: %s", t_err(rc));
				goto out;
			}
		}
		t_sleep_ms(slow_ms);
	}
out:
	/* every sender's count must match exactly */
	if (have_expect)
		for (i = 0; i < MAXS; i++)
			if (next_seq[i] != ex.sent[i] && !R.why[0])
				snprintf(R.why, sizeof R.why, "sender %d: got up to seq %" PRIu64 ", it sent %" PRIu64, i,
					 next_seq[i], ex.sent[i]);
	R.type = 'X';
	R.fc_samples = want;
	cl_report(self, &R, sizeof R);
	cl_heard(self, 10000); /* 'Q' */
	cpg_finalize(h);
	return 0;
}

/* corosync's count of flow-control switches for the CPG connections of all
 * nodes (cumulative per connection; the senders are still connected) */
static uint64_t fc_switches(int n)
{
	uint64_t sum = 0;
	int k;
	for (k = 1; k <= n; k++) {
		char r[64];
		if (cl_ctl(r, sizeof r, "fcstats %d", k) == 0)
			sum += (uint64_t)atoll(r + 2);
	}
	return sum;
}

/* CL_SENDER_NODES: "spread" (round robin over the nodes) or a node number */
static int sender_node(int i, int n)
{
	const char *e = getenv("CL_SENDER_NODES");
	if (e && *e && strcmp(e, "spread") != 0) {
		int k = atoi(e);
		return k >= 1 && k <= n ? k : 1;
	}
	return 1 + i % n;
}

static long env_int(const char *name, long def)
{
	const char *e = getenv(name);
	return e && *e ? atol(e) : def;
}

int main(int argc, char **argv)
{
	struct cl_proc ps[MAXS + 1];
	struct sres res[MAXS + 1], rx;
	struct expect ex;
	int N = cl_nodes(), i, ok;
	pid_t dpid;
	long rss_d0, rss_d_max = 0, rss_r_max = 0, rx_bound, d_bound;
	uint64_t sent = 0, bytes = 0, tries = 0, fc_en = 0, fc_samples = 0, daemon_fc = 0;
	int64_t t0, t_sent, t_fin, t_throttle = -1;
	struct cl_proc *rxp;
	char c;

	t_start(argv[0], 240);
	NS = (int)env_int("CL_SENDERS", cl_is_cpgd() ? 6 : 4 * N);
	send_secs = (int)env_int("CL_SEND_SECS", 8);
	slow_ms = (int)env_int("CL_SLOW_MS", 1);
	slow_every = (int)env_int("CL_SLOW_EVERY", 4);
	drain_secs = (int)env_int("CL_DRAIN_SECS", 90);
	max_msgs = (uint64_t)env_int("CL_MAX_MSGS", 10000);
	max_send_secs = (int)env_int("CL_MAX_SEND_SECS", 20);
	rx_bound = env_int("CL_RX_RSS_MIB", 64) * 1024;
	min_len = (size_t)env_int("CL_MIN_LEN", 256);
	max_len = (size_t)env_int("CL_MAX_LEN", 4096);
	if (min_len < sizeof(struct cl_msg) || max_len < min_len || max_len > 1000000)
		t_skip_all("bad CL_MIN_LEN / CL_MAX_LEN");
	if (NS < 1 || NS > MAXS)
		t_skip_all("CL_SENDERS must be 1..%d", MAXS);
	t_name(&group, "cl-flood-%d", (int)getpid());
	dpid = cl_daemon_pid(1);
	REQUIRE("daemon_pid", dpid > 0, "no daemon pid for node 1");
	rss_d0 = cl_rss_kib(dpid);
	d_bound = env_int("CL_DAEMON_RSS_MIB", 0) * 1024;
	t_note("%d senders on %d node(s), %zu..%zu bytes, %d s at full speed; receiver on node 1 sleeps %d ms every %d events;"
	       " daemon %d RSS %ld KiB before",
	       NS, N, min_len, max_len, send_secs, slow_ms, slow_every, (int)dpid, rss_d0);

	/* the receiver first (index NS), then the senders round-robin over the nodes */
	rxp = &ps[NS];
	if (cl_spawn(rxp, 1, NS, receiver_main, NULL) != 0)
		t_skip_all("fork failed");
	for (i = 0; i < NS; i++)
		if (cl_spawn(&ps[i], sender_node(i, N), i, sender_main, NULL) != 0) {
			t_fail("spawn", "fork: %s", strerror(errno));
			cl_reap(ps, NS + 1, 0);
			return t_done();
		}
	ok = 1;
	for (i = 0; i <= NS; i++)
		if (cl_hear(&ps[i], &res[i], sizeof res[i], 30000) != 0 || res[i].type != 'J' || res[i].rc != CS_OK)
			ok = 0;
	if (!ok) {
		cl_reap(ps, NS + 1, 5000);
		REQUIRE("all_joined", 0, "a member did not join");
	}
	t_sleep_ms(500); /* let every join confchg settle */
	t_pass("all_joined");
	t0 = t_now_ms();
	for (i = 0; i <= NS; i++)
		cl_tell(&ps[i], 'G');

	/* sending phase: sample memory, collect the senders' 'D' reports */
	{
		int got = 0, stopped = 0, throttled = 0;
		int64_t end = t0 + (int64_t)(max_send_secs + 20) * 1000;
		int done[MAXS] = { 0 };
		while (got < NS && t_now_ms() < end) {
			long r;
			int64_t now = t_now_ms();
			/* corosync's flow control is about its totem queue, not about
			 * slow readers, and how soon it engages depends on the load:
			 * keep the senders going (up to max_send_secs) until one of
			 * them was throttled */
			if (!stopped && now - t0 >= (int64_t)send_secs * 1000 &&
			    (throttled || now - t0 >= (int64_t)max_send_secs * 1000)) {
				stopped = 1;
				for (i = 0; i < NS; i++)
					cl_tell(&ps[i], 'S');
			}
			for (i = 0; i < NS; i++) {
				struct pollfd pf = { ps[i].up[0], POLLIN, 0 };
				if (!done[i] && poll(&pf, 1, 0) == 1) {
					if (cl_hear(&ps[i], &res[i], sizeof res[i], 2000) != 0)
						continue;
					if (res[i].type == 'T' && !throttled++)
						t_throttle = t_now_ms() - t0;
					if (res[i].type == 'D') {
						done[i] = 1;
						got++;
					}
				}
			}
			if ((r = cl_rss_kib(dpid)) > rss_d_max)
				rss_d_max = r;
			if ((r = cl_rss_kib(rxp->pid)) > rss_r_max)
				rss_r_max = r;
			t_sleep_ms(100);
		}
		REQUIRE("senders_done", got == NS, "%d of %d senders reported", got, NS);
	}
	t_sent = t_now_ms();
	/* corosync's own view: how often it switched flow control on/off for
	 * the CPG connections of each node (the senders are still connected) */
	if (!cl_is_cpgd())
		daemon_fc = fc_switches(N);
	memset(&ex, 0, sizeof ex);
	for (i = 0; i < NS; i++) {
		ex.sent[i] = res[i].sent;
		sent += res[i].sent;
		bytes += res[i].bytes;
		tries += res[i].try_again;
		fc_en += res[i].fc_enabled;
		fc_samples += res[i].fc_samples;
		if (res[i].rc != CS_OK)
			t_fail("sender_error", "sender %d: %s", i, res[i].why);
	}
	t_write_all(rxp->down[1], &ex, sizeof ex);
	/* drain phase: the receiver works through the backlog */
	ok = 0;
	{
		int64_t end = t_now_ms() + (int64_t)(drain_secs + 10) * 1000;
		while (t_now_ms() < end) {
			struct pollfd pf = { rxp->up[0], POLLIN, 0 };
			long r;
			if (poll(&pf, 1, 100) == 1) {
				ok = cl_hear(rxp, &rx, sizeof rx, 2000) == 0 && rx.type == 'X';
				break;
			}
			if ((r = cl_rss_kib(dpid)) > rss_d_max)
				rss_d_max = r;
			if ((r = cl_rss_kib(rxp->pid)) > rss_r_max)
				rss_r_max = r;
		}
	}
	t_fin = t_now_ms();
	for (i = 0; i <= NS; i++)
		cl_tell(&ps[i], 'Q');
	for (i = 0; i < NS; i++)
		if (cl_hear(&ps[i], &res[i], sizeof res[i], 20000) != 0 || res[i].type != 'X')
			res[i].type = 0;
	cl_reap(ps, NS + 1, 15000);

	REQUIRE("receiver_report", ok, "the receiver did not finish within the drain time");
	CHECK("receiver_got_everything", rx.recv == sent && !rx.nbad && !rx.ndup && !rx.ngap && rx.rc == CS_OK,
	      "receiver: %" PRIu64 " of %" PRIu64 " messages, %" PRIu64 " bad, %" PRIu64 " duplicates, %" PRIu64
	      " missing: %s",
	      rx.recv, sent, rx.nbad, rx.ndup, rx.ngap, rx.why);
	ok = 1;
	for (i = 0; i < NS; i++)
		if (res[i].type != 'X' || res[i].recv != sent || res[i].nbad || res[i].ndup || res[i].ngap) {
			t_note("sender %d (node %d): received %" PRIu64 " of %" PRIu64 ", %" PRIu64 " bad, %" PRIu64
			       " dup, %" PRIu64 " missing %s",
			       i, ps[i].node, res[i].recv, sent, res[i].nbad, res[i].ndup, res[i].ngap, res[i].why);
			ok = 0;
		}
	CHECK("senders_got_everything", ok, "a sender (also a receiver) missed, duplicated or reordered messages");
	for (i = 0; i <= NS; i++)
		if (!cl_exited_ok(&ps[i]))
			t_fail("member_exit", "member %d did not exit cleanly", i);
	if (!cl_is_cpgd())
		t_note("corosync switched flow control on/off %" PRIu64 " times for the CPG connections (its stats)",
		       daemon_fc);
	t_note("first sender throttled %" PRId64 " ms into the run", t_throttle);
	if (cl_is_cpgd() || !t_lib_is_system())
		CHECK("flow_control_try_again", tries > 0, "no sender ever got CS_ERR_TRY_AGAIN");
	else
		t_note("senders got CS_ERR_TRY_AGAIN %" PRIu64 " times (not asserted: Debian's library on corosync)",
		       tries);
	if (!t_lib_is_system())
		CHECK("flow_control_state_enabled", fc_en > 0,
		      "cpg_flow_control_state_get never reported CPG_FLOW_CONTROL_ENABLED after a TRY_AGAIN (%" PRIu64
		      " samples)",
		      fc_samples);
	CHECK("receiver_rss_bounded", rss_r_max < rx_bound, "receiver VmRSS reached %ld KiB (bound %ld KiB)", rss_r_max,
	      rx_bound);
	if (!d_bound)
		d_bound = cl_is_cpgd() ? 96 * 1024 : rss_d0 + (long)(3 * bytes / 1024) + 64 * 1024;
	CHECK("daemon_rss_bounded", rss_d_max < d_bound, "daemon VmRSS reached %ld KiB (bound %ld KiB)", rss_d_max,
	      d_bound);
	t_note("%" PRIu64 " messages (%.1f MiB) multicast in %.1f s (%.0f msg/s), %" PRIu64 " TRY_AGAIN, %" PRIu64
	       " with state ENABLED; receiver done %.1f s after the senders",
	       sent, (double)bytes / 1048576.0, (double)(t_sent - t0) / 1000.0,
	       (double)sent * 1000.0 / (double)(t_sent - t0 + 1), tries, fc_en, (double)(t_fin - t_sent) / 1000.0);
	t_note("VmRSS max: daemon %ld KiB (before %ld KiB, bound %ld), receiver %ld KiB (bound %ld)", rss_d_max, rss_d0,
	       d_bound, rss_r_max, rx_bound);
	printf("FIGURES: flood senders=%d sent=%" PRIu64 " mib=%.1f send_secs=%.1f drain_secs=%.1f try_again=%" PRIu64
	       " fc_enabled=%" PRIu64 " daemon_rss_kib_before=%ld daemon_rss_kib_max=%ld receiver_rss_kib_max=%ld"
	       " deliveries=%" PRIu64 " daemon_fc_switches=%" PRIu64 "\n",
	       NS, sent, (double)bytes / 1048576.0, (double)(t_sent - t0) / 1000.0,
	       (double)(t_fin - t_sent) / 1000.0, tries, fc_en, rss_d0, rss_d_max, rss_r_max,
	       rx.recv * (uint64_t)(NS + 1), daemon_fc);
	(void)c;
	return t_done();
}
