/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Common corosync client types, error codes and helpers (corosync 3 API). */

#ifndef COROTYPES_H_DEFINED
#define COROTYPES_H_DEFINED

/*
 * These four are part of the public contract: existing programs may rely
 * on them being pulled in.  Note that <inttypes.h> is deliberately NOT
 * included, exactly like the upstream header; callers that expand the
 * CS_PRI_* macros must include it themselves.
 */
#include <stdint.h>
#include <errno.h>
#include <time.h>
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Signed 64-bit time value (nanoseconds unless stated otherwise).
 */
typedef int64_t cs_time_t;

#define CS_FALSE 0
#define CS_TRUE !CS_FALSE
#define CS_MAX_NAME_LENGTH 256
#define CS_TIME_END    ((cs_time_t)0x7FFFFFFFFFFFFFFFULL)
#define CS_MAX(x, y) (((x) > (y)) ? (x) : (y))

/* printf() conversion helpers; they need PRI* from <inttypes.h>. */
#define CS_PRI_NODE_ID		"%" PRIu32
#define CS_PRI_NODE_ID_PADDED	"%10" PRIu32
#define CS_PRI_RING_ID_SEQ	"%" PRIx64
#define CS_PRI_RING_ID		"%" PRIx32 ".%" PRIx64

/**
 * @brief Length-prefixed name (not necessarily NUL terminated).
 */
typedef struct {
   uint16_t length;
   uint8_t value[CS_MAX_NAME_LENGTH];
} cs_name_t;

/**
 * @brief Interface version triple (release code letter, major, minor).
 */
typedef struct {
   char releaseCode;
   unsigned char majorVersion;
   unsigned char minorVersion;
} cs_version_t;

/**
 * @brief How much work a *_dispatch() call performs before returning.
 */
typedef enum {
	CS_DISPATCH_ONE = 1,            /**< handle one pending event, block if none */
	CS_DISPATCH_ALL = 2,            /**< handle all pending events, do not block */
	CS_DISPATCH_BLOCKING = 3,       /**< keep handling events until finalized */
	CS_DISPATCH_ONE_NONBLOCKING = 4 /**< handle at most one event, do not block */
} cs_dispatch_flags_t;

/* Tracking flags used by services that report changes. */
#define CS_TRACK_CURRENT 0x01
#define CS_TRACK_CHANGES 0x02
#define CS_TRACK_CHANGES_ONLY 0x04

/**
 * @brief Result code returned by every corosync client call.
 *
 * CS_OK is 1 (not 0).  The value 29 is intentionally unassigned.
 */
typedef enum {
   CS_OK = 1,
   CS_ERR_LIBRARY = 2,
   CS_ERR_VERSION = 3,
   CS_ERR_INIT = 4,
   CS_ERR_TIMEOUT = 5,
   CS_ERR_TRY_AGAIN = 6,
   CS_ERR_INVALID_PARAM = 7,
   CS_ERR_NO_MEMORY = 8,
   CS_ERR_BAD_HANDLE = 9,
   CS_ERR_BUSY = 10,
   CS_ERR_ACCESS = 11,
   CS_ERR_NOT_EXIST = 12,
   CS_ERR_NAME_TOO_LONG = 13,
   CS_ERR_EXIST = 14,
   CS_ERR_NO_SPACE = 15,
   CS_ERR_INTERRUPT = 16,
   CS_ERR_NAME_NOT_FOUND = 17,
   CS_ERR_NO_RESOURCES = 18,
   CS_ERR_NOT_SUPPORTED = 19,
   CS_ERR_BAD_OPERATION = 20,
   CS_ERR_FAILED_OPERATION = 21,
   CS_ERR_MESSAGE_ERROR = 22,
   CS_ERR_QUEUE_FULL = 23,
   CS_ERR_QUEUE_NOT_AVAILABLE = 24,
   CS_ERR_BAD_FLAGS = 25,
   CS_ERR_TOO_BIG = 26,
   CS_ERR_NO_SECTIONS = 27,
   CS_ERR_CONTEXT_NOT_FOUND = 28,
   CS_ERR_TOO_MANY_GROUPS = 30,
   CS_ERR_SECURITY = 100
} cs_error_t;

/* IPC timeout in milliseconds; -1 waits forever. */
#define CS_IPC_TIMEOUT_MS -1

/* Unit conversion constants (all unsigned long long). */
#define CS_TIME_MS_IN_SEC   1000ULL
#define CS_TIME_US_IN_SEC   1000000ULL
#define CS_TIME_NS_IN_SEC   1000000000ULL
#define CS_TIME_US_IN_MSEC  1000ULL
#define CS_TIME_NS_IN_MSEC  1000000ULL
#define CS_TIME_NS_IN_USEC  1000ULL

/**
 * @brief Current time in nanoseconds.
 *
 * Uses the monotonic clock when _POSIX_MONOTONIC_CLOCK is visible at the
 * point of inclusion (i.e. <unistd.h> was included first), otherwise falls
 * back to wall-clock time from gettimeofday().
 *
 * @return timestamp in nanoseconds
 */
static inline uint64_t cs_timestamp_get(void)
{
	uint64_t result;

#if defined _POSIX_MONOTONIC_CLOCK && _POSIX_MONOTONIC_CLOCK >= 0
	struct timespec ts;

	clock_gettime (CLOCK_MONOTONIC, &ts);
	result = (ts.tv_sec * CS_TIME_NS_IN_SEC) + (uint64_t)ts.tv_nsec;
#else
	struct timeval time_from_epoch;

	gettimeofday (&time_from_epoch, 0);
	result = ((time_from_epoch.tv_sec * CS_TIME_NS_IN_SEC) +
		(time_from_epoch.tv_usec * CS_TIME_NS_IN_USEC));
#endif

	return result;
}

/**
 * @brief Translate a libqb style result (0 or negative errno) to cs_error_t.
 * @param result value returned by a libqb call
 * @return the matching CS_* code (CS_OK for non-negative input)
 */
cs_error_t qb_to_cs_error (int result);

/**
 * @brief Human readable description of an error code.
 * @param err code to describe
 * @return pointer to a static string; never NULL
 */
const char * cs_strerror(cs_error_t err);

/**
 * @brief Translate a handle-database result (0 or -errno) to cs_error_t.
 * @param res value returned by an hdb_* call
 * @return the matching CS_* code
 */
cs_error_t hdb_error_to_cs (int res);

#ifdef __cplusplus
}
#endif

#endif /* COROTYPES_H_DEFINED */
