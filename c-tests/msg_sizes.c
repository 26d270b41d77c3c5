/*
 * msg_sizes: messages of 0 B, 1 B, 64 KiB, 1047552 B (largest unfragmented),
 * 1047553 B and 1 MiB (fragmented), 8 MiB (fragmented, one iovec) and
 * 8 MiB + 5 in three iovecs are delivered intact -- exact length and content
 * hash, in send order -- to the sender itself and to another process.
 */
#include "tap.h"

struct msgspec { size_t size; int niov; };
static const struct msgspec specs[] = {
	{ 0, 1 }, { 1, 1 }, { 65536, 1 }, { 1047552, 1 }, { 1047553, 1 },
	{ 1048576, 1 }, { 8388608, 1 }, { 8388613, 3 },
};
#define NSPEC (sizeof specs / sizeof specs[0])

static struct cpg_name g;
static uint64_t want_hash[NSPEC];

struct result { uint64_t len, hash; uint32_t pid; };

static unsigned char *make(size_t i)
{
	unsigned char *b = malloc(specs[i].size ? specs[i].size : 1);
	if (!b)
		abort();
	t_fill(b, specs[i].size, 1000 + i);
	return b;
}

static int receiver(int wfd, int rfd)
{
	cpg_handle_t h;
	struct t_rec r;
	size_t i, k;
	char c;
	alarm(80);
	if (t_init(&h, &r) != CS_OK || cpg_join(h, &g) != CS_OK)
		return 2;
	/* tell the parent we joined, then receive everything */
	if (t_write_all(wfd, "j", 1) < 0)
		return 3;
	t_wait_events(h, &r, T_EV_DELIVER, NSPEC, 60000);
	for (i = 0, k = 0; i < NSPEC; i++) {
		struct result res = { 0, 0, 0 };
		while (k < r.n && r.ev[k].type != T_EV_DELIVER)
			k++;
		if (k < r.n) {
			res.len = r.ev[k].len;
			res.hash = r.ev[k].hash;
			res.pid = r.ev[k].pid;
			k++;
		} else {
			res.len = UINT64_MAX;
		}
		if (t_write_all(wfd, &res, sizeof res) < 0)
			return 4;
	}
	/* wait for the parent before leaving */
	(void)t_read_all(rfd, &c, 1, 30000);
	cpg_finalize(h);
	return 0;
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct t_rec r;
	int up[2], down[2];
	pid_t child;
	size_t i, k;
	char name[96], c;
	int tryagain = 0;

	(void)argc;
	t_start(argv[0], 100);
	t_name(&g, "msg_sizes-%d", (int)getpid());
	for (i = 0; i < NSPEC; i++) {
		unsigned char *b = make(i);
		want_hash[i] = t_fnv(b, specs[i].size, T_FNV_INIT);
		free(b);
	}
	if (pipe(up) < 0 || pipe(down) < 0)
		return 1;
	child = t_fork();
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		_exit(receiver(up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);

	REQUIRE_RC("initialize", t_init(&h, &r), CS_OK);
	REQUIRE("receiver_joined", t_read_all(up[0], &c, 1, 10000) == 0, "receiver did not join");
	REQUIRE_RC("join", cpg_join(h, &g), CS_OK);
	REQUIRE("both_members", t_wait_members(h, &r, &g, 2, 5000), "no confchg with 2 members");

	for (i = 0; i < NSPEC; i++) {
		unsigned char *b = make(i);
		struct iovec iov[3];
		int niov = specs[i].niov;
		cs_error_t rc;
		int64_t end = t_now_ms() + 20000;
		if (niov == 1) {
			iov[0].iov_base = b;
			iov[0].iov_len = specs[i].size;
		} else {
			iov[0].iov_base = b;
			iov[0].iov_len = 3000000;
			iov[1].iov_base = b + 3000000;
			iov[1].iov_len = 1;
			iov[2].iov_base = b + 3000001;
			iov[2].iov_len = specs[i].size - 3000001;
		}
		for (;;) {
			rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, iov, (unsigned)niov);
			if (rc != CS_ERR_TRY_AGAIN || t_now_ms() > end)
				break;
			tryagain++;
			t_drain(h, 20);
		}
		snprintf(name, sizeof name, "mcast_%zu_bytes_%d_iov", specs[i].size, niov);
		CHECK(name, rc == CS_OK, "cpg_mcast_joined returned %s", t_err(rc));
		free(b);
		/* dispatch our own copy before sending the next one */
		t_wait_events(h, &r, T_EV_DELIVER, i + 1, 20000);
	}
	if (tryagain)
		t_note("cpg_mcast_joined returned CS_ERR_TRY_AGAIN %d times (retried)", tryagain);

	/* self delivery */
	for (i = 0, k = 0; i < NSPEC; i++) {
		while (k < r.n && r.ev[k].type != T_EV_DELIVER)
			k++;
		snprintf(name, sizeof name, "self_%zu_bytes", specs[i].size);
		if (k >= r.n) {
			t_fail(name, "not delivered");
			continue;
		}
		CHECK(name, r.ev[k].len == specs[i].size && r.ev[k].hash == want_hash[i] && !r.ev[k].msg_null &&
				    r.ev[k].pid == (uint32_t)getpid() && r.ev[k].nodeid == 1,
		      "got len %zu (want %zu), content %s, sender {%u,%u}", r.ev[k].len, specs[i].size,
		      r.ev[k].hash == want_hash[i] ? "ok" : "differs", r.ev[k].nodeid, r.ev[k].pid);
		k++;
	}
	CHECK("self_no_extra_deliveries", r.ndeliver == NSPEC, "%zu deliveries", r.ndeliver);

	/* the other process */
	for (i = 0; i < NSPEC; i++) {
		struct result res;
		snprintf(name, sizeof name, "other_%zu_bytes", specs[i].size);
		if (t_read_all(up[0], &res, sizeof res, 60000) < 0) {
			t_fail(name, "no report from the receiver");
			break;
		}
		if (res.len == UINT64_MAX) {
			t_fail(name, "not delivered to the other process");
			continue;
		}
		CHECK(name, res.len == specs[i].size && res.hash == want_hash[i] && res.pid == (uint32_t)getpid(),
		      "got len %" PRIu64 " (want %zu), content %s, sender pid %u", res.len, specs[i].size,
		      res.hash == want_hash[i] ? "ok" : "differs", res.pid);
	}
	(void)!write(down[1], "x", 1);
	{
		int st = t_wait_child(child, 20000);
		char why[64];
		t_fmt_status(why, sizeof why, st);
		CHECK("receiver_exit", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", why);
	}
	CHECK_RC("finalize", cpg_finalize(h), CS_OK);
	t_rec_free(&r);
	return t_done();
}
