/*
 * evs_abi: the binary interface of our <corosync/evs.h> against corosync
 * 1.4's (spec evs.md §1.3-1.4): sizes, alignments, offsets, enum and macro
 * values are printed and compared with evs_abi.expected; every function's
 * exact type is asserted at compile time.
 */
#include <corosync/evs.h>
#include <stddef.h>
#include <stdio.h>

#define SAME(f, type) _Static_assert(__builtin_types_compatible_p(__typeof__(&f), type), #f " has the 1.4 type")

SAME(evs_initialize, cs_error_t (*)(evs_handle_t *, evs_callbacks_t *));
SAME(evs_finalize, cs_error_t (*)(evs_handle_t));
SAME(evs_fd_get, cs_error_t (*)(evs_handle_t, int *));
SAME(evs_context_get, cs_error_t (*)(evs_handle_t, void **));
SAME(evs_context_set, cs_error_t (*)(evs_handle_t, void *));
SAME(evs_dispatch, cs_error_t (*)(evs_handle_t, cs_dispatch_flags_t));
SAME(evs_join, cs_error_t (*)(evs_handle_t, const struct evs_group *, size_t));
SAME(evs_leave, cs_error_t (*)(evs_handle_t, const struct evs_group *, size_t));
SAME(evs_mcast_joined, cs_error_t (*)(evs_handle_t, evs_guarantee_t, const struct iovec *, unsigned int));
SAME(evs_mcast_groups, cs_error_t (*)(evs_handle_t, evs_guarantee_t, const struct evs_group *, size_t,
				      const struct iovec *, unsigned int));
SAME(evs_membership_get, cs_error_t (*)(evs_handle_t, unsigned int *, unsigned int *, size_t *));
_Static_assert(__builtin_types_compatible_p(evs_deliver_fn_t,
					    void (*)(hdb_handle_t, unsigned int, const void *, size_t)),
	       "evs_deliver_fn_t");
_Static_assert(__builtin_types_compatible_p(evs_confchg_fn_t,
					    void (*)(hdb_handle_t, const unsigned int *, size_t, const unsigned int *,
						     size_t, const unsigned int *, size_t,
						     const struct evs_ring_id *)),
	       "evs_confchg_fn_t");
_Static_assert(__builtin_types_compatible_p(evs_handle_t, uint64_t), "evs_handle_t");
_Static_assert(__builtin_types_compatible_p(hdb_handle_t, uint64_t), "hdb_handle_t");
_Static_assert(__builtin_types_compatible_p(evs_error_t, cs_error_t), "evs_error_t");

#define P(x) printf("%s %ld\n", #x, (long)(x))

int main(void)
{
	P(sizeof(evs_handle_t));
	P(sizeof(hdb_handle_t));
	P(sizeof(evs_guarantee_t));
	P(sizeof(struct evs_group));
	P(_Alignof(struct evs_group));
	P(offsetof(struct evs_group, key));
	P(sizeof(struct evs_ring_id));
	P(_Alignof(struct evs_ring_id));
	P(offsetof(struct evs_ring_id, nodeid));
	P(offsetof(struct evs_ring_id, seq));
	P(sizeof(evs_callbacks_t));
	P(offsetof(evs_callbacks_t, evs_deliver_fn));
	P(offsetof(evs_callbacks_t, evs_confchg_fn));
	P(EVS_TYPE_UNORDERED);
	P(EVS_TYPE_FIFO);
	P(EVS_TYPE_AGREED);
	P(EVS_TYPE_SAFE);
	P(TOTEMIP_ADDRLEN);
	P(EVS_DISPATCH_ONE);
	P(EVS_DISPATCH_ALL);
	P(EVS_DISPATCH_BLOCKING);
	P(EVS_OK);
	P(EVS_ERR_LIBRARY);
	P(EVS_ERR_TIMEOUT);
	P(EVS_ERR_TRY_AGAIN);
	P(EVS_ERR_INVALID_PARAM);
	P(EVS_ERR_NO_MEMORY);
	P(EVS_ERR_BAD_HANDLE);
	P(EVS_ERR_ACCESS);
	P(EVS_ERR_NOT_EXIST);
	P(EVS_ERR_EXIST);
	P(EVS_ERR_NOT_SUPPORTED);
	P(EVS_ERR_SECURITY);
	P(EVS_ERR_TOO_MANY_GROUPS);
	return 0;
}
