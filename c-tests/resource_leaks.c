/*
 * resource_leaks: 150 rounds of initialize / join / mcast / dispatch /
 * finalize (plus 50 initialize / finalize without join) leave no file
 * descriptor open and no /dev/shm entry of this process behind, and
 * 20 handles open at once all work independently.
 */
#include "tap.h"
#include <dirent.h>

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	int fds0, fds1, i, bad = 0, n = 0, k;
	char pat[128];
	struct cpg_name g;

	(void)argc;
	t_start(argv[0], 90);
	fds0 = count_fds();
	for (i = 0; i < 150 && !bad; i++) {
		cpg_handle_t h;
		struct t_rec r;
		struct iovec iov = { "leak", 4 };
		t_name(&g, "resource_leaks-%d-%d", (int)getpid(), i);
		if (t_init(&h, &r) != CS_OK || cpg_join(h, &g) != CS_OK ||
		    cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1) != CS_OK ||
		    !t_wait_events(h, &r, T_EV_DELIVER, 1, 5000) || cpg_finalize(h) != CS_OK)
			bad = i + 1;
		t_rec_free(&r);
	}
	CHECK("rounds_with_join", bad == 0, "round %d failed", bad - 1);
	for (i = 0; i < 50 && !bad; i++) {
		cpg_handle_t h;
		if (cpg_initialize(&h, NULL) != CS_OK || cpg_finalize(h) != CS_OK)
			bad = i + 1;
	}
	CHECK("rounds_without_join", bad == 0, "round %d failed", bad - 1);
	fds1 = count_fds();
	CHECK("no_fd_leak", fds1 == fds0, "%d fds open before, %d after", fds0, fds1);
	snprintf(pat, sizeof pat, "/dev/shm/qb-*-%d-*", (int)getpid());
	for (k = 0; k < 30; k++) {
		n = t_shm_count(pat, NULL);
		if (!n)
			break;
		t_sleep_ms(100);
	}
	CHECK("no_shm_leftovers", n == 0, "%d %s entries left", n, pat);

	/* many handles at once */
	{
		cpg_handle_t hs[20];
		struct t_rec rs[20];
		int ok = 1;
		for (i = 0; i < 20; i++) {
			t_name(&g, "resource_leaks-many-%d-%d", (int)getpid(), i);
			if (t_init(&hs[i], &rs[i]) != CS_OK || cpg_join(hs[i], &g) != CS_OK)
				ok = 0;
		}
		for (i = 0; i < 20 && ok; i++) {
			char buf[16];
			struct iovec iov = { buf, 0 };
			iov.iov_len = (size_t)snprintf(buf, sizeof buf, "h%d", i);
			if (cpg_mcast_joined(hs[i], CPG_TYPE_AGREED, &iov, 1) != CS_OK)
				ok = 0;
		}
		for (i = 0; i < 20 && ok; i++) {
			char buf[16];
			int len = snprintf(buf, sizeof buf, "h%d", i);
			struct t_ev *e;
			if (!t_wait_events(hs[i], &rs[i], T_EV_DELIVER, 1, 5000)) {
				ok = 0;
				break;
			}
			e = t_last(&rs[i], T_EV_DELIVER);
			if (rs[i].ndeliver != 1 || e->len != (size_t)len || memcmp(e->head, buf, (size_t)len) != 0)
				ok = 0;
		}
		CHECK("twenty_handles_independent", ok, "a handle missed its own message or got another's");
		for (i = 0; i < 20; i++) {
			cpg_finalize(hs[i]);
			t_rec_free(&rs[i]);
		}
	}
	return t_done();
}
