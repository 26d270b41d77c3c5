/*
 * c-tests/tap.h -- tiny shared helpers for the libcpg C test programs.
 *
 * Output: one "PASS: <prog>/<check>" or "FAIL: <prog>/<check>: <reason>" line
 * per check; t_done() returns the exit status (0 all passed, 1 any failure).
 * A program that cannot run at all prints "SKIP: <prog>: <reason>" and exits
 * with T_EXIT_SKIP (77).  Every blocking wait is bounded: t_start() arms an
 * alarm() watchdog, and the helpers below only wait with poll() timeouts.
 *
 * Only the public <corosync/cpg.h> API is used.  Header-only (static
 * functions); each test program is one .c file.
 */
#ifndef CPG_C_TESTS_TAP_H
#define CPG_C_TESTS_TAP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <corosync/cpg.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-function"

#define T_EXIT_SKIP 77

static const char *t_prog = "test";
static int t_npass, t_nfail;

/* ---------------------------------------------------------------- output */

static void t_pass(const char *check)
{
	printf("PASS: %s/%s\n", t_prog, check);
	fflush(stdout);
	t_npass++;
}

static void t_fail(const char *check, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void t_fail(const char *check, const char *fmt, ...)
{
	va_list ap;
	printf("FAIL: %s/%s: ", t_prog, check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	t_nfail++;
}

static void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void t_note(const char *fmt, ...)
{
	va_list ap;
	printf("# %s: ", t_prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void t_skip_all(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void t_skip_all(const char *fmt, ...)
{
	va_list ap;
	printf("SKIP: %s: ", t_prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(T_EXIT_SKIP);
}

static const char *t_err(cs_error_t e)
{
	static char buf[8][32];
	static int i;
	switch ((int)e) {
	case 0: return "0(!)";
	case CS_OK: return "CS_OK";
	case CS_ERR_LIBRARY: return "CS_ERR_LIBRARY";
	case CS_ERR_VERSION: return "CS_ERR_VERSION";
	case CS_ERR_INIT: return "CS_ERR_INIT";
	case CS_ERR_TIMEOUT: return "CS_ERR_TIMEOUT";
	case CS_ERR_TRY_AGAIN: return "CS_ERR_TRY_AGAIN";
	case CS_ERR_INVALID_PARAM: return "CS_ERR_INVALID_PARAM";
	case CS_ERR_NO_MEMORY: return "CS_ERR_NO_MEMORY";
	case CS_ERR_BAD_HANDLE: return "CS_ERR_BAD_HANDLE";
	case CS_ERR_BUSY: return "CS_ERR_BUSY";
	case CS_ERR_ACCESS: return "CS_ERR_ACCESS";
	case CS_ERR_NOT_EXIST: return "CS_ERR_NOT_EXIST";
	case CS_ERR_NAME_TOO_LONG: return "CS_ERR_NAME_TOO_LONG";
	case CS_ERR_EXIST: return "CS_ERR_EXIST";
	case CS_ERR_NO_SPACE: return "CS_ERR_NO_SPACE";
	case CS_ERR_INTERRUPT: return "CS_ERR_INTERRUPT";
	case CS_ERR_NO_RESOURCES: return "CS_ERR_NO_RESOURCES";
	case CS_ERR_NOT_SUPPORTED: return "CS_ERR_NOT_SUPPORTED";
	case CS_ERR_MESSAGE_ERROR: return "CS_ERR_MESSAGE_ERROR";
	case CS_ERR_TOO_BIG: return "CS_ERR_TOO_BIG";
	case CS_ERR_NO_SECTIONS: return "CS_ERR_NO_SECTIONS";
	default:
		i = (i + 1) % 8;
		snprintf(buf[i], sizeof buf[i], "cs_error %d", (int)e);
		return buf[i];
	}
}

/* CHECK(name, cond, fmt, ...): PASS if cond, else FAIL with the message. */
#define CHECK(name, cond, ...)                                                 \
	({                                                                     \
		int t__ok = !!(cond);                                          \
		if (t__ok)                                                     \
			t_pass(name);                                          \
		else                                                           \
			t_fail(name, __VA_ARGS__);                             \
		t__ok;                                                         \
	})

/* CHECK_RC(name, expr, want): evaluates expr (a cs_error_t) once. */
#define CHECK_RC(name, expr, want)                                             \
	({                                                                     \
		cs_error_t t__got = (expr);                                    \
		cs_error_t t__want = (want);                                   \
		if (t__got == t__want)                                         \
			t_pass(name);                                          \
		else                                                           \
			t_fail(name, "%s returned %s, expected %s", #expr,     \
			       t_err(t__got), t_err(t__want));                 \
		t__got == t__want;                                             \
	})

/* REQUIRE: like CHECK_RC but ends the program (failure) when it does not hold */
#define REQUIRE_RC(name, expr, want)                                           \
	do {                                                                   \
		if (!CHECK_RC(name, expr, want)) {                             \
			t_note("cannot continue after %s", name);              \
			exit(1);                                               \
		}                                                              \
	} while (0)
#define REQUIRE(name, cond, ...)                                               \
	do {                                                                   \
		if (cond) {                                                    \
			t_pass(name);                                          \
		} else {                                                       \
			t_fail(name, __VA_ARGS__);                             \
			t_note("cannot continue after %s", name);              \
			exit(1);                                               \
		}                                                              \
	} while (0)

static int t_done(void)
{
	printf("# %s: %d passed, %d failed\n", t_prog, t_npass, t_nfail);
	fflush(stdout);
	return t_nfail ? 1 : 0;
}

/* ---------------------------------------------------------------- watchdog */

static void t_alarm_handler(int sig)
{
	char buf[160];
	int n;
	(void)sig;
	n = snprintf(buf, sizeof buf, "FAIL: %s/watchdog: test did not finish in time (pid %d)\n",
		     t_prog, (int)getpid());
	if (write(1, buf, (size_t)n) < 0) { /* nothing to do */ }
	_exit(1);
}

/* CPG_TEST_SLOW=N (set by c-tests/valgrind.sh): the program runs under a
 * tool that makes it N times slower; watchdogs stretch by that factor. */
static unsigned t_slow(void)
{
	const char *e = getenv("CPG_TEST_SLOW");
	int n = e ? atoi(e) : 1;
	return n < 1 ? 1 : n > 20 ? 20 : (unsigned)n;
}

/* the watchdog t_start() arms: `seconds`, stretched under a slow tool */
static unsigned t_watchdog_s;

/* t_start(argv0, seconds): names the program and arms the watchdog. */
static void t_start(const char *argv0, unsigned seconds)
{
	const char *s = strrchr(argv0, '/');
	t_prog = s ? s + 1 : argv0;
	seconds *= t_slow();
	t_watchdog_s = seconds;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, t_alarm_handler);
	signal(SIGPIPE, SIG_IGN);
	alarm(seconds);
}

static int64_t t_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void t_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- library */

/* path of the libcpg that was loaded (dladdr on cpg_initialize) */
static const char *t_lib_path(void)
{
	static char path[512];
	Dl_info info;
	if (path[0])
		return path;
	if (dladdr((void *)cpg_initialize, &info) && info.dli_fname) {
		char *r = realpath(info.dli_fname, NULL);
		snprintf(path, sizeof path, "%s", r ? r : info.dli_fname);
		free(r);
	} else {
		snprintf(path, sizeof path, "?");
	}
	return path;
}

/* 1 when running with the system (original) libcpg.  CPG_TEST_LIB=system|ours
 * (set by run.sh) wins; otherwise decided by the loaded file's directory. */
static int t_lib_is_system(void)
{
	const char *e = getenv("CPG_TEST_LIB");
	if (e && *e)
		return strcmp(e, "system") == 0;
	return strncmp(t_lib_path(), "/usr/lib/", 9) == 0 || strncmp(t_lib_path(), "/lib/", 5) == 0;
}

/* ours-only programs: skip with the system library unless CPG_TEST_FORCE=1
 * (useful to see how the original behaves: crashes are contained and
 * reported as failures) */
static void t_ours_only(void)
{
	const char *f = getenv("CPG_TEST_FORCE");
	if (t_lib_is_system() && !(f && *f == '1'))
		t_skip_all("ours-only: the original library crashes or hangs here (set CPG_TEST_FORCE=1 to run anyway)");
}

/* ---------------------------------------------------------------- names */

static void t_name(struct cpg_name *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void t_name(struct cpg_name *n, const char *fmt, ...)
{
	va_list ap;
	char buf[CPG_MAX_NAME_LENGTH + 1];
	int len;
	memset(n, 0, sizeof *n);
	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (len > CPG_MAX_NAME_LENGTH)
		len = CPG_MAX_NAME_LENGTH;
	memcpy(n->value, buf, (size_t)len);
	n->length = (uint32_t)len;
}

static int t_name_eq(const struct cpg_name *a, const struct cpg_name *b)
{
	return a->length == b->length && a->length <= CPG_MAX_NAME_LENGTH &&
	       memcmp(a->value, b->value, a->length) == 0;
}

/* ---------------------------------------------------------------- hashing */

static uint64_t t_fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;
	size_t i;
	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}
#define T_FNV_INIT 14695981039346656037ULL

/* deterministic pseudo-random fill */
static void t_fill(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
	size_t i;
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

/* ---------------------------------------------------------------- recorder */

enum { T_EV_DELIVER = 1, T_EV_CONFCHG = 2, T_EV_TOTEM = 3 };

#define T_MAXADDR 64
struct t_ev {
	int type;
	cpg_handle_t handle;
	struct cpg_name group;
	/* deliver */
	uint32_t nodeid, pid;
	size_t len;
	uint64_t hash;           /* FNV of the whole payload */
	unsigned char head[64];  /* first bytes of the payload */
	int msg_null;            /* msg pointer was NULL */
	/* confchg */
	struct cpg_address members[T_MAXADDR], left[T_MAXADDR], joined[T_MAXADDR];
	size_t nm, nl, nj;
	/* totem */
	struct cpg_ring_id ring;
	uint32_t tmembers[T_MAXADDR];
	uint32_t ntm;
};

struct t_rec {
	cpg_handle_t handle;
	struct t_ev *ev;
	size_t n, cap;
	size_t ndeliver, nconfchg, ntotem;
	/* optional hook run inside every callback (after recording) */
	void (*hook)(struct t_rec *r, struct t_ev *e);
	void *user;
};

#define T_MAXREC 32
static struct t_rec *t_recs[T_MAXREC];

static void t_rec_attach(struct t_rec *r, cpg_handle_t h)
{
	int i;
	r->handle = h;
	for (i = 0; i < T_MAXREC; i++)
		if (!t_recs[i]) {
			t_recs[i] = r;
			return;
		}
	fprintf(stderr, "t_rec_attach: too many recorders\n");
	abort();
}

static void t_rec_detach(struct t_rec *r)
{
	int i;
	for (i = 0; i < T_MAXREC; i++)
		if (t_recs[i] == r)
			t_recs[i] = NULL;
}

static struct t_rec *t_rec_find(cpg_handle_t h)
{
	int i;
	for (i = 0; i < T_MAXREC; i++)
		if (t_recs[i] && t_recs[i]->handle == h)
			return t_recs[i];
	return NULL;
}

static void t_rec_free(struct t_rec *r)
{
	t_rec_detach(r);
	free(r->ev);
	memset(r, 0, sizeof *r);
}

static struct t_ev *t_rec_new(cpg_handle_t h, int type, const struct cpg_name *g)
{
	struct t_rec *r = t_rec_find(h);
	struct t_ev *e;
	if (!r) {
		printf("# unexpected callback type %d for unknown handle %" PRIx64 "\n", type, h);
		return NULL;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
		if (!r->ev)
			abort();
	}
	e = &r->ev[r->n++];
	memset(e, 0, sizeof *e);
	e->type = type;
	e->handle = h;
	if (g)
		e->group = *g;
	return e;
}

static void t_rec_done(cpg_handle_t h, struct t_ev *e)
{
	struct t_rec *r = t_rec_find(h);
	if (!r)
		return;
	if (e->type == T_EV_DELIVER)
		r->ndeliver++;
	else if (e->type == T_EV_CONFCHG)
		r->nconfchg++;
	else
		r->ntotem++;
	if (r->hook)
		r->hook(r, e);
}

static void t_deliver_cb(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid,
			 uint32_t pid, void *msg, size_t len)
{
	struct t_ev *e = t_rec_new(h, T_EV_DELIVER, g);
	if (!e)
		return;
	e->nodeid = nodeid;
	e->pid = pid;
	e->len = len;
	e->msg_null = msg == NULL;
	if (msg) {
		e->hash = t_fnv(msg, len, T_FNV_INIT);
		memcpy(e->head, msg, len < sizeof e->head ? len : sizeof e->head);
	}
	t_rec_done(h, e);
}

static void t_copy_addrs(struct cpg_address *dst, size_t *n, const struct cpg_address *src, size_t cnt)
{
	size_t i;
	*n = cnt;
	for (i = 0; i < cnt && i < T_MAXADDR; i++)
		dst[i] = src[i];
}

static void t_confchg_cb(cpg_handle_t h, const struct cpg_name *g,
			 const struct cpg_address *m, size_t nm,
			 const struct cpg_address *l, size_t nl,
			 const struct cpg_address *j, size_t nj)
{
	struct t_ev *e = t_rec_new(h, T_EV_CONFCHG, g);
	if (!e)
		return;
	t_copy_addrs(e->members, &e->nm, m, nm);
	t_copy_addrs(e->left, &e->nl, l, nl);
	t_copy_addrs(e->joined, &e->nj, j, nj);
	t_rec_done(h, e);
}

static void t_totem_cb(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t *list)
{
	struct t_ev *e = t_rec_new(h, T_EV_TOTEM, NULL);
	uint32_t i;
	if (!e)
		return;
	e->ring = ring;
	e->ntm = n;
	for (i = 0; i < n && i < T_MAXADDR; i++)
		e->tmembers[i] = list[i];
	t_rec_done(h, e);
}

static cpg_callbacks_t t_callbacks = { t_deliver_cb, t_confchg_cb };

/* cpg_initialize with the recorder callbacks; retries TRY_AGAIN for up to 5 s
 * (allowed by the daemon right after start-up).  Returns the last result. */
static cs_error_t t_init(cpg_handle_t *h, struct t_rec *r)
{
	cs_error_t rc;
	int64_t end = t_now_ms() + 5000;
	memset(r, 0, sizeof *r);
	for (;;) {
		rc = cpg_initialize(h, &t_callbacks);
		if (rc != CS_ERR_TRY_AGAIN || t_now_ms() > end)
			break;
		t_sleep_ms(50);
	}
	if (rc == CS_OK)
		t_rec_attach(r, *h);
	return rc;
}

/* ---------------------------------------------------------------- pumping */

static int t_fd(cpg_handle_t h)
{
	int fd = -1;
	if (cpg_fd_get(h, &fd) != CS_OK)
		return -1;
	return fd;
}

/* Dispatch (CS_DISPATCH_ALL) whenever the fd is readable until pred(arg)
 * holds or timeout_ms passes.  Returns 1 if pred held.  Stops early (returns
 * 0) when dispatch reports an error other than CS_OK / TRY_AGAIN. */
static int t_pump(cpg_handle_t h, int timeout_ms, int (*pred)(void *), void *arg)
{
	int64_t end = t_now_ms() + timeout_ms;
	int fd = t_fd(h);
	if (fd < 0)
		return pred && pred(arg);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left;
		cs_error_t rc;
		if (pred && pred(arg))
			return 1;
		left = end - t_now_ms();
		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)(left > 100 ? 100 : left)) < 0 && errno != EINTR)
			return 0;
		rc = cpg_dispatch(h, CS_DISPATCH_ALL);
		if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
			t_note("t_pump: cpg_dispatch returned %s", t_err(rc));
			return pred && pred(arg);
		}
	}
}

/* predicate helpers on recorders */
struct t_until { struct t_rec *r; size_t want; int type; };
static int t_pred_count(void *a)
{
	struct t_until *u = a;
	size_t have = u->type == T_EV_DELIVER ? u->r->ndeliver
		    : u->type == T_EV_CONFCHG ? u->r->nconfchg
		    : u->type == T_EV_TOTEM   ? u->r->ntotem
		    : u->r->n;
	return have >= u->want;
}

/* pump until the recorder has at least `want` events of `type` (0 = any) */
static int t_wait_events(cpg_handle_t h, struct t_rec *r, int type, size_t want, int timeout_ms)
{
	struct t_until u = { r, want, type };
	return t_pump(h, timeout_ms, t_pred_count, &u);
}

/* pump for a fixed time (drains everything that arrives meanwhile) */
static void t_drain(cpg_handle_t h, int ms)
{
	t_pump(h, ms, NULL, NULL);
}

/* wait until the handle's confchg shows `nmembers` members in group g */
struct t_members_until { struct t_rec *r; const struct cpg_name *g; size_t n; };
static int t_pred_members(void *a)
{
	struct t_members_until *u = a;
	size_t i;
	for (i = u->r->n; i > 0; i--) {
		struct t_ev *e = &u->r->ev[i - 1];
		if (e->type == T_EV_CONFCHG && t_name_eq(&e->group, u->g))
			return e->nm == u->n;
	}
	return 0;
}
static int t_wait_members(cpg_handle_t h, struct t_rec *r, const struct cpg_name *g, size_t n, int timeout_ms)
{
	struct t_members_until u = { r, g, n };
	return t_pump(h, timeout_ms, t_pred_members, &u);
}

/* last event of a type (NULL if none) */
static struct t_ev *t_last(struct t_rec *r, int type)
{
	size_t i;
	for (i = r->n; i > 0; i--)
		if (!type || r->ev[i - 1].type == type)
			return &r->ev[i - 1];
	return NULL;
}

/* ------------------------------------------------------- address lists */

static int t_addr_cmp(const void *a, const void *b)
{
	const struct cpg_address *x = a, *y = b;
	if (x->nodeid != y->nodeid)
		return x->nodeid < y->nodeid ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->reason != y->reason)
		return x->reason < y->reason ? -1 : 1;
	return 0;
}

static void t_fmt_addrs(char *buf, size_t bufsz, const struct cpg_address *a, size_t n)
{
	size_t i, off = 0;
	off += (size_t)snprintf(buf + off, bufsz - off, "[");
	for (i = 0; i < n && i < T_MAXADDR && off < bufsz; i++)
		off += (size_t)snprintf(buf + off, bufsz - off, "%s{%u,%u,%u}", i ? " " : "",
					a[i].nodeid, a[i].pid, a[i].reason);
	if (off < bufsz)
		snprintf(buf + off, bufsz - off, "]");
}

/* compare an address list with an expected one as multisets (order-free);
 * on mismatch writes a description into why. */
static int t_addrs_match(const struct cpg_address *got, size_t ngot,
			 const struct cpg_address *want, size_t nwant, char *why, size_t whysz)
{
	struct cpg_address a[T_MAXADDR], b[T_MAXADDR];
	char s1[512], s2[512];
	if (ngot == nwant && ngot <= T_MAXADDR) {
		memcpy(a, got, ngot * sizeof *a);
		memcpy(b, want, nwant * sizeof *b);
		qsort(a, ngot, sizeof *a, t_addr_cmp);
		qsort(b, nwant, sizeof *b, t_addr_cmp);
		if (memcmp(a, b, ngot * sizeof *a) == 0)
			return 1;
	}
	t_fmt_addrs(s1, sizeof s1, got, ngot);
	t_fmt_addrs(s2, sizeof s2, want, nwant);
	snprintf(why, whysz, "got %s want %s", s1, s2);
	return 0;
}

/* check a confchg event's three lists */
static int t_check_confchg(const char *check, const struct t_ev *e,
			   const struct cpg_address *m, size_t nm,
			   const struct cpg_address *l, size_t nl,
			   const struct cpg_address *j, size_t nj)
{
	char why[1200];
	if (!e || e->type != T_EV_CONFCHG) {
		t_fail(check, "no confchg event");
		return 0;
	}
	if (!t_addrs_match(e->members, e->nm, m, nm, why, sizeof why)) {
		t_fail(check, "member list: %s", why);
		return 0;
	}
	if (!t_addrs_match(e->left, e->nl, l, nl, why, sizeof why)) {
		t_fail(check, "left list: %s", why);
		return 0;
	}
	if (!t_addrs_match(e->joined, e->nj, j, nj, why, sizeof why)) {
		t_fail(check, "joined list: %s", why);
		return 0;
	}
	t_pass(check);
	return 1;
}

/* ---------------------------------------------------------------- processes */

/* fork a child that dies with its parent; returns pid (0 in child) */
static pid_t t_fork(void)
{
	pid_t parent = getpid();
	pid_t p;
	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	return p;
}

/* write all / read all with a poll timeout; return 0 on success */
static int t_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int t_read_all(int fd, void *buf, size_t n, int timeout_ms)
{
	char *p = buf;
	int64_t end = t_now_ms() + timeout_ms;
	while (n) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int64_t left = end - t_now_ms();
		ssize_t r;
		if (left <= 0)
			return -1;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* wait for a child with a timeout; returns the wait status or -1 (and kills it) */
static int t_wait_child(pid_t pid, int timeout_ms)
{
	int64_t end = t_now_ms() + timeout_ms;
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		if (t_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		t_sleep_ms(10);
	}
}

static void t_fmt_status(char *buf, size_t n, int st)
{
	if (st == -1)
		snprintf(buf, n, "timed out (killed)");
	else if (WIFEXITED(st))
		snprintf(buf, n, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, n, "status 0x%x", st);
}

/* run fn(arg, res) in a child (t_fork, alarm after alarm_s seconds) so that a
 * crash fails only that check: fn fills the n values of res (or _exits), the
 * child sends them to the parent.  Returns 1 if they arrived within
 * timeout_ms; else fails check ("no result: child <how it ended>"), 0. */
static int t_isolated(const char *check, void (*fn)(void *arg, int32_t *res), void *arg, int32_t *res, size_t n,
		      unsigned alarm_s, int timeout_ms)
{
	int pfd[2], st, got;
	char why[64];
	pid_t c;
	if (pipe(pfd) < 0)
		exit(1);
	c = t_fork();
	if (c == 0) {
		close(pfd[0]);
		alarm(alarm_s * t_slow());
		fn(arg, res);
		(void)!write(pfd[1], res, n * sizeof res[0]);
		_exit(0);
	}
	close(pfd[1]);
	got = t_read_all(pfd[0], res, n * sizeof res[0], timeout_ms) == 0;
	close(pfd[0]);
	st = t_wait_child(c, 10000);
	t_fmt_status(why, sizeof why, st);
	if (!got)
		t_fail(check, "no result: child %s", why);
	return got;
}

/* ---------------------------------------------------------------- harness */

/* Ask the harness (run.sh) to do something to the daemon: "kill9" or "start".
 * The harness exports CPG_TEST_CTL=<dir> holding fifos "req" and "ack".
 * Returns 0 on success (ack "ok ..."), -1 otherwise; the ack text (e.g. the
 * daemon pid) is copied to reply. */
static int t_harness_available(void)
{
	const char *d = getenv("CPG_TEST_CTL");
	return d && *d;
}

static int t_harness(const char *cmd, char *reply, size_t replysz, int timeout_ms)
{
	const char *d = getenv("CPG_TEST_CTL");
	char req[512], ack[512], line[256];
	int rfd, afd;
	size_t off = 0;
	int64_t end = t_now_ms() + timeout_ms;
	if (!d || !*d)
		return -1;
	snprintf(req, sizeof req, "%s/req", d);
	snprintf(ack, sizeof ack, "%s/ack", d);
	afd = open(ack, O_RDWR | O_CLOEXEC);
	rfd = open(req, O_RDWR | O_CLOEXEC);
	if (afd < 0 || rfd < 0) {
		if (afd >= 0) close(afd);
		if (rfd >= 0) close(rfd);
		return -1;
	}
	snprintf(line, sizeof line, "%s\n", cmd);
	if (t_write_all(rfd, line, strlen(line)) < 0) {
		close(rfd);
		close(afd);
		return -1;
	}
	close(rfd);
	memset(line, 0, sizeof line);
	while (off < sizeof line - 1) {
		struct pollfd pf = { afd, POLLIN, 0 };
		int64_t left = end - t_now_ms();
		ssize_t r;
		if (left <= 0)
			break;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		r = read(afd, line + off, 1);
		if (r <= 0)
			break;
		if (line[off] == '\n') {
			line[off] = 0;
			close(afd);
			if (reply)
				snprintf(reply, replysz, "%s", line);
			return strncmp(line, "ok", 2) == 0 ? 0 : -1;
		}
		off++;
	}
	close(afd);
	return -1;
}

/* pid of the daemon the harness started (CPG_TEST_DAEMON_PID), or 0 */
static pid_t t_daemon_pid(void)
{
	const char *e = getenv("CPG_TEST_DAEMON_PID");
	return e ? (pid_t)atoi(e) : 0;
}

/* count /dev/shm entries matching a glob pattern; optionally count the
 * entries that are non-empty directories (or regular files) */
static int t_shm_count(const char *pattern, int *nonempty)
{
	glob_t g;
	size_t i;
	int n = 0;
	if (nonempty)
		*nonempty = 0;
	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	for (i = 0; i < g.gl_pathc; i++) {
		struct stat st;
		n++;
		if (nonempty && stat(g.gl_pathv[i], &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				char sub[1024];
				glob_t g2;
				snprintf(sub, sizeof sub, "%s/*", g.gl_pathv[i]);
				if (glob(sub, 0, NULL, &g2) == 0) {
					if (g2.gl_pathc)
						(*nonempty)++;
					globfree(&g2);
				}
			} else {
				(*nonempty)++;
			}
		}
	}
	globfree(&g);
	return n;
}

#endif /* CPG_C_TESTS_TAP_H */
