/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Extended virtual synchrony (EVS) client API, as corosync 1.4 declared it,
 * served on corosync 3 and on cpgd by mapping EVS onto CPG (docs/evs.md).
 *
 * Self-contained: it needs only libc headers and <corosync/corotypes.h>, and
 * carries the EVS_* names and hdb_handle_t that corosync 3's headers dropped.
 */

#ifndef COROSYNC_EVS_H_DEFINED
#define COROSYNC_EVS_H_DEFINED

#include <inttypes.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/uio.h>
#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The handle type of corosync's handle database (a 64-bit integer; the
 * same type corosync 3's <corosync/hdb.h> declares through libqb). */
#ifndef HDB_H_DEFINED
#ifndef COROSYNC_EVS_HDB_HANDLE_T
#define COROSYNC_EVS_HDB_HANDLE_T
typedef uint64_t hdb_handle_t;
#endif
#endif

/* Deprecated EVS spellings of the common corosync names (corosync 1.x's
 * corotypes.h had them; old EVS programs still use them). */
#ifndef evs_error_t
#define evs_error_t cs_error_t
#endif
#ifndef EVS_DISPATCH_ONE
#define EVS_DISPATCH_ONE CS_DISPATCH_ONE
#define EVS_DISPATCH_ALL CS_DISPATCH_ALL
#define EVS_DISPATCH_BLOCKING CS_DISPATCH_BLOCKING
#endif
#ifndef EVS_OK
#define EVS_OK CS_OK
#define EVS_ERR_LIBRARY CS_ERR_LIBRARY
#define EVS_ERR_TIMEOUT CS_ERR_TIMEOUT
#define EVS_ERR_TRY_AGAIN CS_ERR_TRY_AGAIN
#define EVS_ERR_INVALID_PARAM CS_ERR_INVALID_PARAM
#define EVS_ERR_NO_MEMORY CS_ERR_NO_MEMORY
#define EVS_ERR_BAD_HANDLE CS_ERR_BAD_HANDLE
#define EVS_ERR_ACCESS CS_ERR_ACCESS
#define EVS_ERR_NOT_EXIST CS_ERR_NOT_EXIST
#define EVS_ERR_EXIST CS_ERR_EXIST
#define EVS_ERR_NOT_SUPPORTED CS_ERR_NOT_SUPPORTED
#define EVS_ERR_SECURITY CS_ERR_SECURITY
#define EVS_ERR_TOO_MANY_GROUPS CS_ERR_TOO_MANY_GROUPS
#endif

/** @brief An EVS connection, valid only in the process that created it. */
typedef uint64_t evs_handle_t;

/**
 * @brief Delivery guarantee asked of evs_mcast_*(). Every message is sent
 * with agreed (total) order whatever is asked, as in corosync 1.4.
 */
typedef enum {
	EVS_TYPE_UNORDERED, /**< not implemented: sent agreed */
	EVS_TYPE_FIFO,      /**< sent agreed */
	EVS_TYPE_AGREED,    /**< one total order across all groups and senders */
	EVS_TYPE_SAFE       /**< not implemented: sent agreed */
} evs_guarantee_t;

#ifndef TOTEMIP_ADDRLEN
#define TOTEMIP_ADDRLEN (sizeof(struct in6_addr))
#endif

/** @brief A group: 32 raw bytes, compared in full (not a C string). */
struct evs_group {
	char key[32];
};

/** @brief The totem ring a configuration change belongs to. */
struct evs_ring_id {
	unsigned int nodeid;
	unsigned long long seq;
};

/**
 * @brief A message for one of the handle's groups: the sending node and
 * the payload, valid until the callback returns.
 */
typedef void (*evs_deliver_fn_t) (
	hdb_handle_t handle,
	unsigned int nodeid,
	const void *msg,
	size_t msg_len);

/**
 * @brief A change of node membership: a transitional configuration
 * (members that came along, members that left) then the regular one
 * (all members, members that joined). Arrays valid during the callback.
 */
typedef void (*evs_confchg_fn_t) (
	hdb_handle_t handle,
	const unsigned int *member_list, size_t member_list_entries,
	const unsigned int *left_list, size_t left_list_entries,
	const unsigned int *joined_list, size_t joined_list_entries,
	const struct evs_ring_id *ring_id);

typedef struct {
	evs_deliver_fn_t evs_deliver_fn;
	evs_confchg_fn_t evs_confchg_fn;
} evs_callbacks_t;

/**
 * @brief Opens an EVS handle. Its first event is a configuration change
 * describing the current membership.
 * @return CS_OK; CS_ERR_TRY_AGAIN when no CPG server answers;
 * CS_ERR_SECURITY when the server refuses us; CS_ERR_INVALID_PARAM for a
 * NULL handle.
 */
cs_error_t evs_initialize (
	evs_handle_t *handle,
	evs_callbacks_t *callbacks);

/** @brief Closes the handle; a thread blocked in its dispatch returns. */
cs_error_t evs_finalize (
	evs_handle_t handle);

/**
 * @brief A descriptor to poll for input: readable while the handle may
 * have events to dispatch. Owned by the library; closed by evs_finalize.
 */
cs_error_t evs_fd_get (
	evs_handle_t handle,
	int *fd);

/** @brief The application pointer stored with evs_context_set (NULL at first). */
cs_error_t evs_context_get (
	evs_handle_t handle,
	void **context);

/** @brief Stores an application pointer with the handle. */
cs_error_t evs_context_set (
	evs_handle_t handle,
	void *context);

/**
 * @brief Runs callbacks on this thread: CS_DISPATCH_ONE waits for and runs
 * one, CS_DISPATCH_ALL runs what is pending, CS_DISPATCH_BLOCKING runs them
 * until the handle is finalized (CS_OK) or the server is lost
 * (CS_ERR_LIBRARY).
 */
cs_error_t evs_dispatch (
	evs_handle_t handle,
	cs_dispatch_flags_t dispatch_types);

/**
 * @brief Adds groups to the handle's joined list (at most 50 per call:
 * CS_ERR_TOO_MANY_GROUPS beyond, with nothing joined). Joining a group
 * twice keeps two entries.
 */
cs_error_t evs_join (
	evs_handle_t handle,
	const struct evs_group *groups,
	size_t group_cnt);

/**
 * @brief Removes one joined entry per listed group, in order; stops with
 * CS_ERR_NOT_EXIST at the first group not joined.
 */
cs_error_t evs_leave (
	evs_handle_t handle,
	const struct evs_group *groups,
	size_t group_cnt);

/**
 * @brief Sends the gathered buffers to every process joined to one of this
 * handle's groups (the sender included); each receiver gets one copy.
 * @return CS_OK; CS_ERR_TRY_AGAIN under flow control (retry);
 * CS_ERR_INVALID_PARAM when the message is too large.
 */
cs_error_t evs_mcast_joined (
	evs_handle_t handle,
	evs_guarantee_t guarantee,
	const struct iovec *iovec,
	unsigned int iov_len);

/** @brief Like evs_mcast_joined, to the listed groups (no join needed). */
cs_error_t evs_mcast_groups (
	evs_handle_t handle,
	evs_guarantee_t guarantee,
	const struct evs_group *groups,
	size_t group_cnt,
	const struct iovec *iovec,
	unsigned int iov_len);

/**
 * @brief This node's id and the current node membership.
 * *member_list_entries is the capacity of member_list on entry and the
 * number of ids written on return; local_nodeid and member_list may be NULL.
 */
cs_error_t evs_membership_get (
	evs_handle_t handle,
	unsigned int *local_nodeid,
	unsigned int *member_list,
	size_t *member_list_entries);

#ifdef __cplusplus
}
#endif

#endif /* COROSYNC_EVS_H_DEFINED */
