/*
 * evs_api: the libevs entry points one by one -- return codes, limits and
 * argument checks (corosync 1.4's, and ours where 1.4 would crash), the
 * startup configuration change and evs_membership_get.
 */
#include "evs_tap.h"

/* Largest message the mapping carries: 1 MiB - 1024 bytes, encoded as a
 * 16-byte header, 32 bytes per group key, then the payload. */
#define MAX_ENCODED (1048576 - 1024)

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 60);
	struct e_rec *r = e_rec_new();
	evs_handle_t h;
	e_init_or_skip(&h, r);
	t_pass("initialize");

	/* membership before any dispatch (1.4's test programs rely on it) */
	unsigned int local = 0, members[64];
	size_t n = 64;
	CHECK_RC("membership_get", evs_membership_get(h, &local, members, &n), CS_OK);
	CHECK("membership_get/self_listed", n >= 1 && local != 0,
	      "n=%zu local=%u", n, local);
	int self_in = 0;
	for (size_t i = 0; i < n; i++)
		self_in |= members[i] == local;
	CHECK("membership_get/contains_local", self_in, "local node %u not in the list", local);
	size_t zero = 0;
	unsigned int local2 = 0;
	CHECK_RC("membership_get/capacity_0", evs_membership_get(h, &local2, members, &zero), CS_OK);
	CHECK("membership_get/capacity_0_writes_0", zero == 0 && local2 == local, "n=%zu local=%u", zero,
	      local2);
	size_t n3 = 64;
	CHECK_RC("membership_get/null_outputs", evs_membership_get(h, NULL, NULL, &n3), CS_OK);
	CHECK_RC("membership_get/null_entries", evs_membership_get(h, &local2, members, NULL),
		 CS_ERR_INVALID_PARAM);

	/* the startup configuration change comes first */
	CHECK("startup_confchg", e_wait(h, r, E_CONFCHG, 1, 5000), "no configuration change in 5 s");
	if (r->nconfchg >= 1) {
		struct e_ev *c = &r->ev[0];
		CHECK("startup_confchg/first_event", c->type == E_CONFCHG, "first event is a delivery");
		CHECK("startup_confchg/members", e_ids_eq(c->members, c->nmembers, members, n),
		      "members differ from evs_membership_get (%zu vs %zu)", c->nmembers, n);
		CHECK("startup_confchg/joined_is_members", e_ids_eq(c->joined, c->njoined, members, n),
		      "joined list differs from the member list");
		CHECK("startup_confchg/left_empty", c->nleft == 0, "left has %zu", c->nleft);
		CHECK("startup_confchg/ring_id", c->have_ring, "ring id pointer is NULL");
	}

	/* nothing pending: ALL returns at once, ONE_NONBLOCKING says TRY_AGAIN */
	int64_t t0 = t_now_ms();
	CHECK_RC("dispatch_all_idle", evs_dispatch(h, CS_DISPATCH_ALL), CS_OK);
	CHECK("dispatch_all_idle/prompt", t_now_ms() - t0 < 1000, "took %lld ms", (long long)(t_now_ms() - t0));
	CHECK_RC("dispatch_one_nonblocking_idle", evs_dispatch(h, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
	CHECK_RC("dispatch_bad_flags", evs_dispatch(h, (cs_dispatch_flags_t)0), CS_ERR_INVALID_PARAM);
	CHECK_RC("dispatch_bad_flags_5", evs_dispatch(h, (cs_dispatch_flags_t)5), CS_ERR_INVALID_PARAM);

	/* context and descriptor */
	void *ctx = NULL;
	CHECK_RC("context_get", evs_context_get(h, &ctx), CS_OK);
	CHECK("context_get/value", ctx == r, "context %p, set %p", ctx, (void *)r);
	CHECK_RC("context_get/null", evs_context_get(h, NULL), CS_ERR_INVALID_PARAM);
	int fd = -1, fd2 = -2;
	CHECK_RC("fd_get", evs_fd_get(h, &fd), CS_OK);
	CHECK_RC("fd_get/again", evs_fd_get(h, &fd2), CS_OK);
	CHECK("fd_get/stable", fd >= 0 && fd == fd2, "fd %d then %d", fd, fd2);
	CHECK_RC("fd_get/null", evs_fd_get(h, NULL), CS_ERR_INVALID_PARAM);

	/* join limits: 50 per call, not cumulative */
	struct evs_group many[51];
	for (int i = 0; i < 51; i++) {
		char name[32];
		snprintf(name, sizeof name, "evs_api-%d", i);
		many[i] = e_group(name);
	}
	CHECK_RC("join_51", evs_join(h, many, 51), CS_ERR_TOO_MANY_GROUPS);
	CHECK_RC("join_50", evs_join(h, many, 50), CS_OK);
	CHECK_RC("join_50_more", evs_join(h, many, 50), CS_OK);
	CHECK_RC("join_0", evs_join(h, NULL, 0), CS_OK);
	CHECK_RC("join_null", evs_join(h, NULL, 1), CS_ERR_INVALID_PARAM);
	CHECK_RC("leave_null", evs_leave(h, NULL, 1), CS_ERR_INVALID_PARAM);
	/* each key is joined twice now: two leaves of the 50 succeed, a third fails */
	CHECK_RC("leave_50", evs_leave(h, many, 50), CS_OK);
	CHECK_RC("leave_50_again", evs_leave(h, many, 50), CS_OK);
	CHECK_RC("leave_not_joined", evs_leave(h, many, 1), CS_ERR_NOT_EXIST);

	/* leave stops at the first key not joined; earlier keys stay left */
	struct evs_group k2 = e_group("evs_api-k2"), k3 = e_group("evs_api-k3"), kx = e_group("evs_api-kx");
	struct evs_group both[2] = { k2, k3 };
	CHECK_RC("join_k2_k3", evs_join(h, both, 2), CS_OK);
	struct evs_group partial[3] = { k2, kx, k3 };
	CHECK_RC("leave_partial", evs_leave(h, partial, 3), CS_ERR_NOT_EXIST);
	CHECK_RC("leave_partial/k2_gone", evs_leave(h, &k2, 1), CS_ERR_NOT_EXIST);
	CHECK_RC("leave_partial/k3_kept", evs_leave(h, &k3, 1), CS_OK);

	/* guarantee values: 0..3 accepted, others refused */
	char byte = 'x';
	struct iovec iov = { &byte, 1 };
	for (int g = 0; g <= 3; g++)
		CHECK_RC("mcast_groups/guarantee_0_3", evs_mcast_groups(h, (evs_guarantee_t)g, &k2, 1, &iov, 1), CS_OK);
	CHECK_RC("mcast_groups/guarantee_4", evs_mcast_groups(h, (evs_guarantee_t)4, &k2, 1, &iov, 1),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("mcast_joined/guarantee_99", evs_mcast_joined(h, (evs_guarantee_t)99, &iov, 1),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("mcast_groups/null_iovec", evs_mcast_groups(h, EVS_TYPE_AGREED, &k2, 1, NULL, 1),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("mcast_groups/null_groups", evs_mcast_groups(h, EVS_TYPE_AGREED, NULL, 1, &iov, 1),
		 CS_ERR_INVALID_PARAM);
	struct iovec nullbuf = { NULL, 10 };
	CHECK_RC("mcast_joined/null_buffer", evs_mcast_joined(h, EVS_TYPE_AGREED, &nullbuf, 1),
		 CS_ERR_INVALID_PARAM);
	CHECK_RC("mcast_groups/zero_groups", evs_mcast_groups(h, EVS_TYPE_AGREED, NULL, 0, &iov, 1), CS_OK);
	CHECK_RC("mcast_joined/nothing_joined", evs_mcast_joined(h, EVS_TYPE_AGREED, &iov, 1), CS_OK);

	/* more than 1.4's 62/63 iovec entries work */
	struct iovec many_iov[200];
	for (int i = 0; i < 200; i++) {
		many_iov[i].iov_base = &byte;
		many_iov[i].iov_len = 1;
	}
	CHECK_RC("mcast_groups/200_iovecs", evs_mcast_groups(h, EVS_TYPE_AGREED, &k2, 1, many_iov, 200), CS_OK);

	/* size limit: exactly the maximum payload, then one byte more */
	size_t max1 = MAX_ENCODED - 16 - 32;
	char *big = calloc(1, max1 + 1);
	struct iovec bigv = { big, max1 };
	CHECK_RC("mcast_groups/max_payload", e_send_groups(h, &k2, 1, big, max1), CS_OK);
	bigv.iov_len = max1 + 1;
	CHECK_RC("mcast_groups/max_plus_1", evs_mcast_groups(h, EVS_TYPE_AGREED, &k2, 1, &bigv, 1),
		 CS_ERR_INVALID_PARAM);
	struct evs_group two[2] = { k2, k3 };
	bigv.iov_len = max1 - 31;
	CHECK_RC("mcast_groups/max_two_groups_plus_1", evs_mcast_groups(h, EVS_TYPE_AGREED, two, 2, &bigv, 1),
		 CS_ERR_INVALID_PARAM);
	free(big);

	/* none of the messages above was for a group this handle joined */
	e_pump(h, 300, NULL, NULL);
	CHECK("no_delivery_to_unjoined", r->ndeliver == 0, "%zu deliveries", r->ndeliver);

	/* after finalize every call says BAD_HANDLE */
	CHECK_RC("finalize", evs_finalize(h), CS_OK);
	CHECK_RC("after_finalize/finalize", evs_finalize(h), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/dispatch", evs_dispatch(h, CS_DISPATCH_ALL), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/fd_get", evs_fd_get(h, &fd), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/context_get", evs_context_get(h, &ctx), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/context_set", evs_context_set(h, NULL), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/join", evs_join(h, &k2, 1), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/leave", evs_leave(h, &k2, 1), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/mcast_joined", evs_mcast_joined(h, EVS_TYPE_AGREED, &iov, 1), CS_ERR_BAD_HANDLE);
	CHECK_RC("after_finalize/mcast_groups", evs_mcast_groups(h, EVS_TYPE_AGREED, &k2, 1, &iov, 1),
		 CS_ERR_BAD_HANDLE);
	n = 64;
	CHECK_RC("after_finalize/membership_get", evs_membership_get(h, &local, members, &n), CS_ERR_BAD_HANDLE);
	CHECK_RC("bad_handle/zero", evs_fd_get(0, &fd), CS_ERR_BAD_HANDLE);
	CHECK_RC("bad_handle/forged", evs_fd_get(0xffffffff00000000ULL, &fd), CS_ERR_BAD_HANDLE);
	CHECK_RC("initialize/null_handle", evs_initialize(NULL, &e_callbacks), CS_ERR_INVALID_PARAM);

	/* NULL callbacks: events are consumed silently */
	evs_handle_t h2;
	CHECK_RC("initialize/null_callbacks", evs_initialize(&h2, NULL), CS_OK);
	CHECK_RC("null_callbacks/join", evs_join(h2, &k2, 1), CS_OK);
	CHECK_RC("null_callbacks/send", e_send_groups(h2, &k2, 1, "x", 1), CS_OK);
	CHECK_RC("null_callbacks/dispatch_one", evs_dispatch(h2, CS_DISPATCH_ONE), CS_OK);
	CHECK_RC("null_callbacks/dispatch_one_more", evs_dispatch(h2, CS_DISPATCH_ONE), CS_OK);
	CHECK_RC("null_callbacks/finalize", evs_finalize(h2), CS_OK);

	e_rec_free(r);
	return t_done();
}
