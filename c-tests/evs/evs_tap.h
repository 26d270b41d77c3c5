/*
 * c-tests/evs/evs_tap.h -- helpers for the libevs C tests, on top of tap.h.
 *
 * A recorder (struct e_rec) remembers what a handle's callbacks received:
 * deliveries (node id, length, FNV hash, the first bytes, alignment) and
 * configuration changes (the three lists and the ring id).  The callbacks
 * find their recorder through evs_context_get.  Every wait is bounded.
 */
#ifndef EVS_C_TESTS_TAP_H
#define EVS_C_TESTS_TAP_H

#include "tap.h"
#include <corosync/evs.h>

#define E_DELIVER 1
#define E_CONFCHG 2
#define E_MAXEV 100000
#define E_HEAD 64
#define E_MAXNODES 16

struct e_ev {
	int type;
	unsigned int nodeid;
	size_t len;
	uint64_t hash;
	int aligned;
	unsigned char head[E_HEAD];
	unsigned int members[E_MAXNODES], left[E_MAXNODES], joined[E_MAXNODES];
	size_t nmembers, nleft, njoined;
	int have_ring;
	struct evs_ring_id ring;
};

struct e_rec {
	struct e_ev *ev;
	size_t n;
	size_t ndeliver, nconfchg;
	evs_handle_t handle;
	int finalize_in_callback; /* finalize the handle from the next callback */
	cs_error_t finalize_rc;
};

static struct e_rec *e_rec_new(void)
{
	struct e_rec *r = calloc(1, sizeof(*r));
	if (r)
		r->ev = calloc(E_MAXEV, sizeof(struct e_ev));
	if (!r || !r->ev) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return r;
}

static void e_rec_free(struct e_rec *r)
{
	if (r) {
		free(r->ev);
		free(r);
	}
}

static struct e_rec *e_rec_of(hdb_handle_t h)
{
	void *ctx = NULL;
	if (evs_context_get(h, &ctx) != CS_OK)
		return NULL;
	return ctx;
}

static struct e_ev *e_rec_push(struct e_rec *r, int type)
{
	if (r->n >= E_MAXEV)
		return NULL;
	struct e_ev *e = &r->ev[r->n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	return e;
}

static void e_after(struct e_rec *r)
{
	if (r->finalize_in_callback) {
		r->finalize_in_callback = 0;
		r->finalize_rc = evs_finalize(r->handle);
	}
}

static void e_deliver_cb(hdb_handle_t h, unsigned int nodeid, const void *msg, size_t len)
{
	struct e_rec *r = e_rec_of(h);
	if (!r)
		return;
	r->ndeliver++;
	struct e_ev *e = e_rec_push(r, E_DELIVER);
	if (e) {
		e->nodeid = nodeid;
		e->len = len;
		e->hash = t_fnv(msg, len, T_FNV_INIT);
		e->aligned = ((uintptr_t)msg % 8) == 0;
		memcpy(e->head, msg, len < E_HEAD ? len : E_HEAD);
	}
	e_after(r);
}

static void e_copy_ids(unsigned int *dst, size_t *n, const unsigned int *src, size_t cnt)
{
	*n = cnt;
	for (size_t i = 0; i < cnt && i < E_MAXNODES; i++)
		dst[i] = src[i];
}

static void e_confchg_cb(hdb_handle_t h, const unsigned int *m, size_t nm, const unsigned int *l,
			 size_t nl, const unsigned int *j, size_t nj, const struct evs_ring_id *ring)
{
	struct e_rec *r = e_rec_of(h);
	if (!r)
		return;
	r->nconfchg++;
	struct e_ev *e = e_rec_push(r, E_CONFCHG);
	if (e) {
		e_copy_ids(e->members, &e->nmembers, m, nm);
		e_copy_ids(e->left, &e->nleft, l, nl);
		e_copy_ids(e->joined, &e->njoined, j, nj);
		if (ring) {
			e->have_ring = 1;
			e->ring = *ring;
		}
	}
	e_after(r);
}

static evs_callbacks_t e_callbacks = { e_deliver_cb, e_confchg_cb };

/* Initialize a handle whose callbacks record into r; skip the whole test
 * when no server answers. */
static cs_error_t e_init(evs_handle_t *h, struct e_rec *r)
{
	cs_error_t rc = evs_initialize(h, &e_callbacks);
	if (rc != CS_OK)
		return rc;
	r->handle = *h;
	evs_context_set(*h, r);
	return CS_OK;
}

static void e_init_or_skip(evs_handle_t *h, struct e_rec *r)
{
	cs_error_t rc = e_init(h, r);
	if (rc != CS_OK)
		t_skip_all("evs_initialize: %s (no CPG server?)", t_err(rc));
}

/* Dispatch (ALL) whenever the handle's descriptor is readable, until
 * pred(arg) holds or timeout_ms passes. 1 if pred held. */
static int e_pump(evs_handle_t h, int timeout_ms, int (*pred)(void *), void *arg)
{
	int fd = -1;
	if (evs_fd_get(h, &fd) != CS_OK)
		return 0;
	int64_t end = t_now_ms() + timeout_ms;
	for (;;) {
		if (pred && pred(arg))
			return 1;
		int64_t left = end - t_now_ms();
		if (left <= 0)
			return pred ? pred(arg) : 1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, (int)(left < 50 ? left : 50));
		if (n > 0 && evs_dispatch(h, CS_DISPATCH_ALL) != CS_OK)
			return pred ? pred(arg) : 0;
	}
}

struct e_count_arg {
	struct e_rec *r;
	size_t want;
	int type;
};

static int e_pred_count(void *a)
{
	struct e_count_arg *c = a;
	size_t have = c->type == E_DELIVER ? c->r->ndeliver : c->r->nconfchg;
	return have >= c->want;
}

static int e_wait(evs_handle_t h, struct e_rec *r, int type, size_t want, int timeout_ms)
{
	struct e_count_arg c = { r, want, type };
	return e_pump(h, timeout_ms, e_pred_count, &c);
}

/* Send with TRY_AGAIN retried (bounded), dispatching h meanwhile. */
static cs_error_t e_send_groups(evs_handle_t h, const struct evs_group *g, size_t ng, const void *buf,
				size_t len)
{
	struct iovec iov = { (void *)buf, len };
	int64_t end = t_now_ms() + 20000;
	for (;;) {
		cs_error_t rc = g ? evs_mcast_groups(h, EVS_TYPE_AGREED, g, ng, &iov, 1)
				  : evs_mcast_joined(h, EVS_TYPE_AGREED, &iov, 1);
		if (rc != CS_ERR_TRY_AGAIN || t_now_ms() > end)
			return rc;
		evs_dispatch(h, CS_DISPATCH_ALL);
		t_sleep_ms(1);
	}
}

static struct evs_group e_group(const char *name)
{
	struct evs_group g;
	memset(&g, 0, sizeof(g));
	strncpy(g.key, name, sizeof(g.key));
	return g;
}

static int e_ids_eq(const unsigned int *a, size_t na, const unsigned int *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na && i < E_MAXNODES; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

#endif
