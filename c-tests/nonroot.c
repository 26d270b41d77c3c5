/*
 * nonroot: clients that are not root (pacemaker's daemons run as hacluster).
 * The harness's corosync.conf admits the user "nobody" (uidgid { uid: nobody }).
 *  - a process running as nobody:nogroup initializes, joins, multicasts a small
 *    and a fragmented (1.5 MiB) message that it and a root observer receive
 *    intact, gets nodeid 1, membership, and finalizes with CS_OK; the
 *    observer sees its JOIN and PROCDOWN confchgs
 *  - a process running as uid/gid 65533 (not admitted) gets CS_ERR_ACCESS,
 *    and nothing of it remains in /dev/shm
 */
#include "tap.h"
#include <grp.h>
#include <pwd.h>

static struct cpg_name g;

static int drop(uid_t u, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(u) < 0)
		return -1;
	return 0;
}

#define BIG (1536 * 1024)

/* result codes written back: init, join, local_get, nodeid, self small ok, self big ok, finalize */
static void nobody_child(uid_t u, gid_t gid, int wfd, int rfd)
{
	int32_t res[7] = { -1, -1, -1, -1, 0, 0, -1 };
	cpg_handle_t h;
	struct t_rec r;
	uint32_t nodeid = 0;
	unsigned char *big;
	struct iovec iov;
	char c;
	alarm(30);
	if (drop(u, gid) < 0)
		_exit(5);
	res[0] = t_init(&h, &r);
	if (res[0] == CS_OK) {
		res[1] = cpg_join(h, &g);
		res[2] = cpg_local_get(h, &nodeid);
		res[3] = (int32_t)nodeid;
		t_wait_members(h, &r, &g, 2, 5000);
		iov.iov_base = "small";
		iov.iov_len = 5;
		cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		big = malloc(BIG);
		t_fill(big, BIG, 77);
		iov.iov_base = big;
		iov.iov_len = BIG;
		cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		if (t_wait_events(h, &r, T_EV_DELIVER, 2, 10000)) {
			size_t i, k = 0;
			for (i = 0; i < r.n; i++) {
				if (r.ev[i].type != T_EV_DELIVER)
					continue;
				if (k == 0)
					res[4] = r.ev[i].len == 5 && memcmp(r.ev[i].head, "small", 5) == 0;
				else if (k == 1)
					res[5] = r.ev[i].len == BIG && r.ev[i].hash == t_fnv(big, BIG, T_FNV_INIT);
				k++;
			}
		}
		/* wait for the parent to have seen the messages */
		(void)t_write_all(wfd, "m", 1);
		(void)t_read_all(rfd, &c, 1, 10000);
		res[6] = cpg_finalize(h);
	}
	(void)t_write_all(wfd, res, sizeof res);
	_exit(0);
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	struct passwd *pw;
	int up[2], down[2];
	pid_t c;
	int32_t res[7];
	char x;
	unsigned char *big;

	(void)argc;
	t_start(argv[0], 60);
	if (getuid() != 0)
		t_skip_all("must run as root to switch users");
	pw = getpwnam("nobody");
	if (!pw)
		t_skip_all("no user nobody");
	t_name(&g, "nonroot-%d", (int)getpid());
	big = malloc(BIG);
	t_fill(big, BIG, 77);

	REQUIRE_RC("observer_initialize", t_init(&h, &r), CS_OK);
	REQUIRE_RC("observer_join", cpg_join(h, &g), CS_OK);
	t_wait_events(h, &r, T_EV_CONFCHG, 1, 5000);

	if (pipe(up) < 0 || pipe(down) < 0)
		return 1;
	c = t_fork();
	if (c == 0) {
		close(up[0]);
		close(down[1]);
		nobody_child(pw->pw_uid, pw->pw_gid, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	{
		struct cpg_address m[2] = { { 1, (uint32_t)getpid(), 0 }, { 1, (uint32_t)c, 0 } };
		struct cpg_address j[1] = { { 1, (uint32_t)c, CPG_REASON_JOIN } };
		if (t_wait_members(h, &r, &g, 2, 5000))
			t_check_confchg("observer_sees_nobody_join", t_last(&r, T_EV_CONFCHG), m, 2, NULL, 0, j, 1);
		else
			t_fail("observer_sees_nobody_join", "no confchg with 2 members");
	}
	if (t_read_all(up[0], &x, 1, 20000) == 0) {
		t_wait_events(h, &r, T_EV_DELIVER, 2, 10000);
		{
			size_t i, k = 0;
			int ok_small = 0, ok_big = 0;
			for (i = 0; i < r.n; i++) {
				if (r.ev[i].type != T_EV_DELIVER)
					continue;
				if (k == 0)
					ok_small = r.ev[i].len == 5 && r.ev[i].pid == (uint32_t)c;
				else if (k == 1)
					ok_big = r.ev[i].len == BIG && r.ev[i].hash == t_fnv(big, BIG, T_FNV_INIT);
				k++;
			}
			CHECK("observer_receives_small", ok_small, "small message from nobody missing or wrong");
			CHECK("observer_receives_fragmented", ok_big, "fragmented message from nobody missing or wrong");
		}
	}
	(void)!write(down[1], "f", 1);
	if (t_read_all(up[0], res, sizeof res, 20000) < 0) {
		t_fail("nobody_report", "no report from the nobody process");
	} else {
		CHECK("nobody_initialize", res[0] == CS_OK, "cpg_initialize as nobody returned %s", t_err((cs_error_t)res[0]));
		if (res[0] == CS_OK) {
			CHECK("nobody_join", res[1] == CS_OK, "returned %s", t_err((cs_error_t)res[1]));
			CHECK("nobody_local_get", res[2] == CS_OK && res[3] == 1, "returned %s, nodeid %d",
			      t_err((cs_error_t)res[2]), res[3]);
			CHECK("nobody_self_small", res[4] == 1, "own small message missing or wrong");
			CHECK("nobody_self_fragmented", res[5] == 1, "own fragmented message missing or wrong");
			CHECK("nobody_finalize", res[6] == CS_OK, "returned %s", t_err((cs_error_t)res[6]));
		}
	}
	{
		struct cpg_address m[1] = { { 1, (uint32_t)getpid(), 0 } };
		struct cpg_address l[1] = { { 1, (uint32_t)c, CPG_REASON_PROCDOWN } };
		if (t_wait_members(h, &r, &g, 1, 5000))
			t_check_confchg("observer_sees_nobody_procdown", t_last(&r, T_EV_CONFCHG), m, 1, l, 1, NULL, 0);
		else
			t_fail("observer_sees_nobody_procdown", "no confchg");
	}
	{
		int st = t_wait_child(c, 10000);
		CHECK("nobody_exit", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	}
	close(up[0]);
	close(down[1]);

	/* a user the daemon does not admit */
	if (pipe(up) < 0)
		return 1;
	c = t_fork();
	if (c == 0) {
		cpg_handle_t hh;
		int32_t rc;
		close(up[0]);
		alarm(20);
		if (drop(65533, 65533) < 0)
			_exit(5);
		rc = cpg_initialize(&hh, NULL);
		(void)t_write_all(up[1], &rc, sizeof rc);
		_exit(0);
	}
	close(up[1]);
	{
		int32_t rc = -1;
		char pat[128];
		int st, n = 0, k;
		CHECK("unadmitted_user_access", t_read_all(up[0], &rc, sizeof rc, 15000) == 0 && rc == CS_ERR_ACCESS,
		      "cpg_initialize as uid 65533 returned %s", t_err((cs_error_t)rc));
		st = t_wait_child(c, 10000);
		CHECK("unadmitted_exit", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
		snprintf(pat, sizeof pat, "/dev/shm/qb-*-%d-*", (int)c);
		for (k = 0; k < 20; k++) {
			n = t_shm_count(pat, NULL);
			if (!n)
				break;
			t_sleep_ms(100);
		}
		CHECK("unadmitted_nothing_in_shm", n == 0, "%d %s entries left", n, pat);
		close(up[0]);
	}
	CHECK_RC("observer_finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	free(big);
	return t_done();
}
