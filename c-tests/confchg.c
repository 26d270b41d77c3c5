/*
 * confchg: membership change callbacks with exact member / left / joined
 * lists, seen by an observer process (this one) while child processes:
 *   A joins (JOIN 1), B joins, A leaves (LEAVE 2), A finalizes after leaving
 *   (no further event), B is SIGKILLed (PROCDOWN 5), C joins and calls
 *   cpg_finalize without leaving (PROCDOWN 5), D joins and exits without
 *   finalizing (PROCDOWN 5); finally the observer leaves.
 * Also checks the joiner's own view (A's first confchg lists A and the observer).
 */
#include "tap.h"

static struct cpg_name g;
static uint32_t P;

/* ------------------------------------------------------------ child side */

struct kid { pid_t pid; int cmd; int rsp; };

static void child_loop(int cmd, int rsp)
{
	cpg_handle_t h = 0;
	struct t_rec r;
	int have = 0;
	alarm(40);
	for (;;) {
		char c;
		int32_t res = -1;
		if (t_read_all(cmd, &c, 1, 30000) < 0)
			_exit(3);
		switch (c) {
		case 'i': res = t_init(&h, &r); have = res == CS_OK; break;
		case 'j': res = cpg_join(h, &g); break;
		case 'l': res = cpg_leave(h, &g); break;
		case 'f': res = cpg_finalize(h); break;
		case 'v': {
			/* own view: first confchg must be the join with the observer */
			struct t_ev *e;
			res = 0;
			if (have && t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000)) {
				e = &r.ev[0];
				if (e->type == T_EV_CONFCHG && e->nm == 2 && e->nj == 1 && e->nl == 0 &&
				    e->joined[0].pid == (uint32_t)getpid() && e->joined[0].reason == CPG_REASON_JOIN &&
				    ((e->members[0].pid == P && e->members[1].pid == (uint32_t)getpid()) ||
				     (e->members[1].pid == P && e->members[0].pid == (uint32_t)getpid())))
					res = 1;
			}
			break;
		}
		case 'x': _exit(0);
		}
		if (t_write_all(rsp, &res, sizeof res) < 0)
			_exit(4);
	}
}

static struct kid spawn(void)
{
	struct kid k;
	int a[2], b[2];
	if (pipe(a) < 0 || pipe(b) < 0)
		exit(1);
	k.pid = t_fork();
	if (k.pid == 0) {
		close(a[1]);
		close(b[0]);
		child_loop(a[0], b[1]);
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	k.cmd = a[1];
	k.rsp = b[0];
	return k;
}

static int32_t ask(struct kid *k, char c)
{
	int32_t res = -1;
	if (t_write_all(k->cmd, &c, 1) < 0 || t_read_all(k->rsp, &res, sizeof res, 15000) < 0)
		return -1;
	return res;
}

static void reap(struct kid *k, const char *check, int expect_sig)
{
	int st = t_wait_child(k->pid, 10000);
	char why[64];
	close(k->cmd);
	close(k->rsp);
	t_fmt_status(why, sizeof why, st);
	if (expect_sig)
		CHECK(check, st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == expect_sig, "%s", why);
	else
		CHECK(check, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", why);
}

/* ------------------------------------------------------------ observer */

static cpg_handle_t h;
static struct t_rec r;

/* wait for the next confchg after `seen` and check it */
static void expect(const char *check, size_t *seen,
		   const struct cpg_address *m, size_t nm, const struct cpg_address *l, size_t nl,
		   const struct cpg_address *j, size_t nj)
{
	if (!t_wait_events(h, &r, T_EV_CONFCHG, *seen + 1, 5000)) {
		t_fail(check, "no confchg within 5 s");
		return;
	}
	(*seen)++;
	{
		size_t i, k = 0;
		for (i = 0; i < r.n; i++)
			if (r.ev[i].type == T_EV_CONFCHG && ++k == *seen)
				break;
		if (!t_name_eq(&r.ev[i].group, &g))
			t_fail(check, "confchg for another group");
		else
			t_check_confchg(check, &r.ev[i], m, nm, l, nl, j, nj);
	}
}

#define A(pid, reason) { 1, (uint32_t)(pid), (reason) }

int main(int argc, char **argv)
{
	size_t seen = 0;
	struct kid ka, kb, kc, kd;
	uint32_t a, b, c, d;

	(void)argc;
	t_start(argv[0], 90);
	P = (uint32_t)getpid();
	t_name(&g, "confchg-%d", (int)P);
	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	{
		struct cpg_address m[] = { A(P, 0) }, j[] = { A(P, CPG_REASON_JOIN) };
		expect("observer_join", &seen, m, 1, NULL, 0, j, 1);
	}

	ka = spawn();
	a = (uint32_t)ka.pid;
	CHECK("a_initialize", ask(&ka, 'i') == CS_OK, "child A cpg_initialize failed");
	CHECK("a_join_rc", ask(&ka, 'j') == CS_OK, "child A cpg_join failed");
	{
		struct cpg_address m[] = { A(P, 0), A(a, 0) }, j[] = { A(a, CPG_REASON_JOIN) };
		expect("a_join_confchg", &seen, m, 2, NULL, 0, j, 1);
	}
	CHECK("a_own_view", ask(&ka, 'v') == 1, "A's own join confchg did not list {observer, A} with A joined");

	kb = spawn();
	b = (uint32_t)kb.pid;
	CHECK("b_initialize", ask(&kb, 'i') == CS_OK, "child B cpg_initialize failed");
	CHECK("b_join_rc", ask(&kb, 'j') == CS_OK, "child B cpg_join failed");
	{
		struct cpg_address m[] = { A(P, 0), A(a, 0), A(b, 0) }, j[] = { A(b, CPG_REASON_JOIN) };
		expect("b_join_confchg", &seen, m, 3, NULL, 0, j, 1);
	}

	CHECK("a_leave_rc", ask(&ka, 'l') == CS_OK, "child A cpg_leave failed");
	{
		struct cpg_address m[] = { A(P, 0), A(b, 0) }, l[] = { A(a, CPG_REASON_LEAVE) };
		expect("a_leave_confchg", &seen, m, 2, l, 1, NULL, 0);
	}
	CHECK("a_finalize_rc", ask(&ka, 'f') == CS_OK, "child A cpg_finalize failed");
	ask(&ka, 'x');
	reap(&ka, "a_exit", 0);
	t_drain(h, 300);
	CHECK("no_event_after_left_member_finalized", r.nconfchg == seen, "%zu unexpected confchg events",
	      r.nconfchg - seen);

	kill(kb.pid, SIGKILL);
	{
		struct cpg_address m[] = { A(P, 0) }, l[] = { A(b, CPG_REASON_PROCDOWN) };
		expect("b_sigkill_procdown_confchg", &seen, m, 1, l, 1, NULL, 0);
	}
	reap(&kb, "b_killed", SIGKILL);

	kc = spawn();
	c = (uint32_t)kc.pid;
	CHECK("c_initialize", ask(&kc, 'i') == CS_OK, "child C cpg_initialize failed");
	CHECK("c_join_rc", ask(&kc, 'j') == CS_OK, "child C cpg_join failed");
	{
		struct cpg_address m[] = { A(P, 0), A(c, 0) }, j[] = { A(c, CPG_REASON_JOIN) };
		expect("c_join_confchg", &seen, m, 2, NULL, 0, j, 1);
	}
	CHECK("c_finalize_rc", ask(&kc, 'f') == CS_OK, "child C cpg_finalize failed");
	{
		struct cpg_address m[] = { A(P, 0) }, l[] = { A(c, CPG_REASON_PROCDOWN) };
		expect("c_finalize_procdown_confchg", &seen, m, 1, l, 1, NULL, 0);
	}
	ask(&kc, 'x');
	reap(&kc, "c_exit", 0);

	kd = spawn();
	d = (uint32_t)kd.pid;
	CHECK("d_initialize", ask(&kd, 'i') == CS_OK, "child D cpg_initialize failed");
	CHECK("d_join_rc", ask(&kd, 'j') == CS_OK, "child D cpg_join failed");
	{
		struct cpg_address m[] = { A(P, 0), A(d, 0) }, j[] = { A(d, CPG_REASON_JOIN) };
		expect("d_join_confchg", &seen, m, 2, NULL, 0, j, 1);
	}
	ask(&kd, 'x');
	{
		struct cpg_address m[] = { A(P, 0) }, l[] = { A(d, CPG_REASON_PROCDOWN) };
		expect("d_exit_procdown_confchg", &seen, m, 1, l, 1, NULL, 0);
	}
	reap(&kd, "d_exit", 0);

	CHECK_RC("leave", cpg_leave(h, &g), CS_OK);
	{
		struct cpg_address l[] = { A(P, CPG_REASON_LEAVE) };
		expect("observer_leave_confchg", &seen, NULL, 0, l, 1, NULL, 0);
	}
	t_drain(h, 200);
	CHECK("no_extra_confchg", r.nconfchg == seen, "%zu confchg events, expected %zu", r.nconfchg, seen);
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	return t_done();
}
