/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Closed Process Group (CPG) client API, compatible with corosync 3 libcpg.so.4. */

#ifndef COROSYNC_CPG_H_DEFINED
#define COROSYNC_CPG_H_DEFINED

/* <netinet/in.h> is part of the contract (it also provides struct iovec). */
#include <netinet/in.h>
#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @addtogroup cpg_corosync
 *
 * @{
 */

/**
 * @brief Opaque handle identifying one CPG connection.
 */
typedef uint64_t cpg_handle_t;

/**
 * @brief Opaque handle identifying one group/member iteration.
 */
typedef uint64_t cpg_iteration_handle_t;

/**
 * @brief Delivery ordering requested when multicasting.
 *
 * All values currently result in agreed (total) ordering.
 */
typedef enum {
	CPG_TYPE_UNORDERED, /**< treated as agreed */
	CPG_TYPE_FIFO,      /**< treated as agreed */
	CPG_TYPE_AGREED,    /**< totally ordered delivery */
	CPG_TYPE_SAFE       /**< treated as agreed */
} cpg_guarantee_t;

/**
 * @brief Whether the sender is currently being throttled.
 */
typedef enum {
	CPG_FLOW_CONTROL_DISABLED, /**< sending is fine */
	CPG_FLOW_CONTROL_ENABLED   /**< back off; the outgoing queue is congested */
} cpg_flow_control_state_t;

/**
 * @brief Why a member appears in a join/leave list of a confchg callback.
 */
typedef enum {
	CPG_REASON_UNDEFINED = 0,
	CPG_REASON_JOIN = 1,     /**< process called cpg_join() */
	CPG_REASON_LEAVE = 2,    /**< process called cpg_leave() */
	CPG_REASON_NODEDOWN = 3, /**< the member's node left the cluster */
	CPG_REASON_NODEUP = 4,   /**< the member's node joined the cluster */
	CPG_REASON_PROCDOWN = 5  /**< process exited or lost its connection */
} cpg_reason_t;

/**
 * @brief What cpg_iteration_initialize() should walk over.
 */
typedef enum {
	CPG_ITERATION_NAME_ONLY = 1, /**< group names only */
	CPG_ITERATION_ONE_GROUP = 2, /**< members of one named group */
	CPG_ITERATION_ALL = 3,       /**< members of every group */
} cpg_iteration_type_t;

/**
 * @brief Selects the layout of the model data passed at initialization.
 */
typedef enum {
	CPG_MODEL_V1 = 1, /**< cpg_model_v1_data_t */
} cpg_model_t;

/**
 * @brief One group member (node id + process id) and, in change lists,
 * the cpg_reason_t value explaining the change.
 */
struct cpg_address {
	uint32_t nodeid;
	uint32_t pid;
	uint32_t reason;
};

#define CPG_MAX_NAME_LENGTH 128

/**
 * @brief Group name; @c length bytes of @c value are significant.
 */
struct cpg_name {
	uint32_t length;
	char value[CPG_MAX_NAME_LENGTH];
};

#define CPG_MEMBERS_MAX 128

/**
 * @brief One record produced by cpg_iteration_next().
 */
struct cpg_iteration_description_t {
	struct cpg_name group;
	uint32_t nodeid;
	uint32_t pid;
};

/**
 * @brief Totem ring identifier (representative node id + sequence).
 */
struct cpg_ring_id {
	uint32_t nodeid;
	uint64_t seq;
};

/**
 * @brief Called for every message delivered to a joined group.
 *
 * @c msg is writable on purpose so the receiver can convert it in place.
 */
typedef void (*cpg_deliver_fn_t) (
	cpg_handle_t handle,
	const struct cpg_name *group_name,
	uint32_t nodeid,
	uint32_t pid,
	void *msg,
	size_t msg_len);

/**
 * @brief Called when the membership of a joined group changes.
 */
typedef void (*cpg_confchg_fn_t) (
	cpg_handle_t handle,
	const struct cpg_name *group_name,
	const struct cpg_address *member_list, size_t member_list_entries,
	const struct cpg_address *left_list, size_t left_list_entries,
	const struct cpg_address *joined_list, size_t joined_list_entries);

/**
 * @brief Called when the totem (whole-cluster) membership changes.
 */
typedef void (*cpg_totem_confchg_fn_t) (
	cpg_handle_t handle,
	struct cpg_ring_id ring_id,
	uint32_t member_list_entries,
	const uint32_t *member_list);

/**
 * @brief Callback set used by cpg_initialize().
 */
typedef struct {
	cpg_deliver_fn_t cpg_deliver_fn;
	cpg_confchg_fn_t cpg_confchg_fn;
} cpg_callbacks_t;

/**
 * @brief Common header of every model data structure.
 */
typedef struct {
	cpg_model_t model;
} cpg_model_data_t;

/* cpg_model_v1_data_t.flags: report the current totem membership right away. */
#define CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF 0x01

/**
 * @brief Model data for CPG_MODEL_V1.
 */
typedef struct {
	cpg_model_t model;
	cpg_deliver_fn_t cpg_deliver_fn;
	cpg_confchg_fn_t cpg_confchg_fn;
	cpg_totem_confchg_fn_t cpg_totem_confchg_fn;
	unsigned int flags;
} cpg_model_v1_data_t;

/** @} */

/**
 * @brief Open a CPG connection using the classic callback set.
 * @param handle receives the new handle
 * @param callbacks deliver/confchg callbacks (copied; may be released after)
 * @return CS_OK, or e.g. CS_ERR_LIBRARY / CS_ERR_NO_MEMORY / CS_ERR_TRY_AGAIN
 */
cs_error_t cpg_initialize (
	cpg_handle_t *handle,
	cpg_callbacks_t *callbacks);

/**
 * @brief Open a CPG connection described by a model structure.
 * @param handle receives the new handle
 * @param model which model @p model_data follows (CPG_MODEL_V1)
 * @param model_data model-specific callbacks and flags (copied)
 * @param context opaque user pointer, see cpg_context_get()
 * @return CS_OK, CS_ERR_INVALID_PARAM for an unknown model, or a connect error
 */
cs_error_t cpg_model_initialize (
	cpg_handle_t *handle,
	cpg_model_t model,
	cpg_model_data_t *model_data,
	void *context);

/**
 * @brief Close a connection and release its handle.
 * @param handle connection to close
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_finalize (
	cpg_handle_t handle);

/**
 * @brief Obtain a file descriptor that becomes readable when events wait.
 *
 * The handle itself is not a descriptor.
 *
 * @param handle connection
 * @param fd receives the descriptor (owned by the library)
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_fd_get (
	cpg_handle_t handle,
	int *fd);

/**
 * @brief Largest message size that is sent without fragmentation.
 * @param handle connection
 * @param size receives the size in bytes
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_max_atomic_msgsize_get (
	cpg_handle_t handle,
	uint32_t *size);

/**
 * @brief Read the user context pointer attached to a handle.
 * @param handle connection
 * @param context receives the pointer
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_context_get (
	cpg_handle_t handle,
	void **context);

/**
 * @brief Attach a user context pointer to a handle.
 * @param handle connection
 * @param context pointer to store
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_context_set (
	cpg_handle_t handle,
	void *context);

/**
 * @brief Run callbacks for pending messages and membership changes.
 * @param handle connection
 * @param dispatch_types one of the CS_DISPATCH_* modes
 * @return CS_OK, CS_ERR_BAD_HANDLE, CS_ERR_TRY_AGAIN, or a connection error
 */
cs_error_t cpg_dispatch (
	cpg_handle_t handle,
	cs_dispatch_flags_t dispatch_types);

/**
 * @brief Become a member of a group.
 *
 * Messages sent with cpg_mcast_joined() go to this group, and messages
 * sent to it are delivered through cpg_dispatch().
 *
 * @param handle connection
 * @param group group to join
 * @return CS_OK, CS_ERR_NAME_TOO_LONG, CS_ERR_EXIST, CS_ERR_TRY_AGAIN, ...
 */
cs_error_t cpg_join (
	cpg_handle_t handle,
	const struct cpg_name *group);

/**
 * @brief Stop being a member of a group.
 * @param handle connection
 * @param group group to leave
 * @return CS_OK, CS_ERR_NAME_TOO_LONG, CS_ERR_NOT_EXIST, CS_ERR_TRY_AGAIN, ...
 */
cs_error_t cpg_leave (
	cpg_handle_t handle,
	const struct cpg_name *group);

/**
 * @brief Send a message to the group joined on this handle.
 * @param handle connection
 * @param guarantee requested ordering (all are delivered as agreed)
 * @param iovec message fragments, concatenated in order
 * @param iov_len number of entries in @p iovec
 * @return CS_OK, CS_ERR_TRY_AGAIN (queue full), CS_ERR_BAD_HANDLE, ...
 */
cs_error_t cpg_mcast_joined (
	cpg_handle_t handle,
	cpg_guarantee_t guarantee,
	const struct iovec *iovec,
	unsigned int iov_len);

/**
 * @brief Query the current members of a group.
 * @param handle connection
 * @param groupName group to query
 * @param member_list array receiving the members
 * @param member_list_entries in: capacity of @p member_list; out: count
 * @return CS_OK, CS_ERR_BAD_HANDLE, CS_ERR_NAME_TOO_LONG, ...
 */
cs_error_t cpg_membership_get (
	cpg_handle_t handle,
	struct cpg_name *groupName,
	struct cpg_address *member_list,
	int *member_list_entries);

/**
 * @brief Node id of the local node.
 * @param handle connection
 * @param local_nodeid receives the node id
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_local_get (
	cpg_handle_t handle,
	unsigned int *local_nodeid);

/**
 * @brief Whether outgoing messages are currently being throttled.
 * @param handle connection
 * @param flow_control_enabled receives the state
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_flow_control_state_get (
	cpg_handle_t handle,
	cpg_flow_control_state_t *flow_control_enabled);

/**
 * @brief Allocate a buffer for zero-copy sending.
 * @param handle connection
 * @param size usable size requested
 * @param buffer receives the buffer
 * @return CS_OK, CS_ERR_BAD_HANDLE or CS_ERR_NO_MEMORY
 */
cs_error_t cpg_zcb_alloc (
	cpg_handle_t handle,
	size_t size,
	void **buffer);

/**
 * @brief Release a buffer from cpg_zcb_alloc().
 * @param handle connection
 * @param buffer buffer to release
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_zcb_free (
	cpg_handle_t handle,
	void *buffer);

/**
 * @brief Send a buffer obtained from cpg_zcb_alloc() to the joined group.
 * @param handle connection
 * @param guarantee requested ordering
 * @param msg buffer from cpg_zcb_alloc()
 * @param msg_len bytes of @p msg to send
 * @return same codes as cpg_mcast_joined()
 */
cs_error_t cpg_zcb_mcast_joined (
	cpg_handle_t handle,
	cpg_guarantee_t guarantee,
	void *msg,
	size_t msg_len);

/**
 * @brief Start iterating over groups and/or their members.
 * @param handle connection
 * @param iteration_type what to iterate over
 * @param group group name, only used with CPG_ITERATION_ONE_GROUP
 * @param cpg_iteration_handle receives the iteration handle
 * @return CS_OK, CS_ERR_INVALID_PARAM, CS_ERR_BAD_HANDLE, ...
 */
cs_error_t cpg_iteration_initialize(
	cpg_handle_t handle,
	cpg_iteration_type_t iteration_type,
	const struct cpg_name *group,
	cpg_iteration_handle_t *cpg_iteration_handle);

/**
 * @brief Fetch the next record of an iteration.
 * @param handle iteration handle
 * @param description receives the record
 * @return CS_OK, CS_ERR_NO_SECTIONS at the end, CS_ERR_BAD_HANDLE, ...
 */
cs_error_t cpg_iteration_next(
	cpg_iteration_handle_t handle,
	struct cpg_iteration_description_t *description);

/**
 * @brief End an iteration and release its handle.
 * @param handle iteration handle
 * @return CS_OK or CS_ERR_BAD_HANDLE
 */
cs_error_t cpg_iteration_finalize (
	cpg_iteration_handle_t handle);

#ifdef __cplusplus
}
#endif

#endif /* COROSYNC_CPG_H_DEFINED */
