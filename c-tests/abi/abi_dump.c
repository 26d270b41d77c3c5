/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * abi_dump: print the ABI/API facts of <corosync/corotypes.h> and
 * <corosync/cpg.h>, one per line, in a fixed order.  check.sh builds this
 * once against our headers and once against the system headers and diffs
 * the output.  Build with -std=gnu11 (uses _Generic, _Alignof, typeof).
 */
#include <inttypes.h>   /* the CS_PRI_* macros need PRI* (upstream does not include it) */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <corosync/cpg.h>

/* Name of the (promoted) C type of an expression. */
#define TNAME(x) _Generic((x),                                    \
	_Bool: "_Bool",                                           \
	char: "char",                                             \
	signed char: "signed char",                               \
	unsigned char: "unsigned char",                           \
	short: "short",                                           \
	unsigned short: "unsigned short",                         \
	int: "int",                                               \
	unsigned int: "unsigned int",                             \
	long: "long",                                             \
	unsigned long: "unsigned long",                           \
	long long: "long long",                                   \
	unsigned long long: "unsigned long long",                 \
	float: "float",                                           \
	double: "double",                                         \
	char *: "char *",                                         \
	const char *: "const char *",                             \
	default: "other")

#define STR_(x) #x
#define XSTR(x) STR_(x)

/* Integer value of an expression printed exactly, whatever its sign. */
static void print_int(const char *kind, const char *name, int neg,
		      unsigned long long mag, const char *type, const char *expansion)
{
	printf("%s %s = %s%llu type=%s", kind, name, neg ? "-" : "", mag, type);
	if (expansion)
		printf(" expands_to=[%s]", expansion);
	putchar('\n');
}

#define INTVAL(kind, name, expr, expansion)                                   \
	print_int(kind, name, (expr) < 0,                                     \
		  (expr) < 0 ? 0ULL - (unsigned long long)(expr)              \
			     : (unsigned long long)(expr),                    \
		  TNAME(expr), expansion)

/* Object-like integer macro: value, type and token expansion. */
#define MACRO_INT(m) INTVAL("macro", #m, (m), XSTR(m))
/* Enumeration constant: value and type (int in C). */
#define ENUMC(c) INTVAL("enum", #c, (c), NULL)
/* String macro: contents and token expansion. */
#define MACRO_STR(m) printf("macro %s = \"%s\" expands_to=[%s]\n", #m, m, XSTR(m))

/* Scalar type: size, alignment, signedness. */
#define SCALAR(T)                                                             \
	printf("type %s size=%zu align=%zu signed=%d\n", #T, sizeof(T),       \
	       (size_t)_Alignof(T), (int)((T)-1 < (T)0))
/* Aggregate type: size, alignment. */
#define AGG(T)                                                                \
	printf("type %s size=%zu align=%zu\n", #T, sizeof(T), (size_t)_Alignof(T))
/* Struct member: offset, size, alignment and compatibility with the
 * expected type (spelled out below, independently of the header). */
#define FIELD(T, f, EXP)                                                      \
	printf("field %s.%s offset=%zu size=%zu align=%zu is_%s=%d\n", #T, #f, \
	       offsetof(T, f), sizeof(((T *)0)->f),                           \
	       (size_t)_Alignof(__typeof__(((T *)0)->f)), #EXP,               \
	       __builtin_types_compatible_p(__typeof__(((T *)0)->f), EXP))
/* Typedef compatibility with an independently spelled type. */
#define COMPAT(T, EXP)                                                        \
	printf("compat %s is_%s=%d\n", #T, #EXP, __builtin_types_compatible_p(T, EXP))

/* Expected types, written from the documented API rather than the header. */
typedef uint8_t exp_u8_256[256];
typedef char exp_char_128[128];
typedef void (*exp_deliver_fn)(cpg_handle_t, const struct cpg_name *,
			       uint32_t, uint32_t, void *, size_t);
typedef void (*exp_confchg_fn)(cpg_handle_t, const struct cpg_name *,
			       const struct cpg_address *, size_t,
			       const struct cpg_address *, size_t,
			       const struct cpg_address *, size_t);
typedef void (*exp_totem_confchg_fn)(cpg_handle_t, struct cpg_ring_id,
				     uint32_t, const uint32_t *);
typedef uint64_t (*exp_timestamp_fn)(void);
typedef cs_error_t (*exp_int_to_cs_fn)(int);
typedef const char *(*exp_strerror_fn)(cs_error_t);

int main(void)
{
	char buf[128];

	/* ---- types ---- */
	SCALAR(cs_time_t);
	AGG(cs_name_t);
	AGG(cs_version_t);
	SCALAR(cs_dispatch_flags_t);
	SCALAR(cs_error_t);
	SCALAR(cpg_handle_t);
	SCALAR(cpg_iteration_handle_t);
	SCALAR(cpg_guarantee_t);
	SCALAR(cpg_flow_control_state_t);
	SCALAR(cpg_reason_t);
	SCALAR(cpg_iteration_type_t);
	SCALAR(cpg_model_t);
	AGG(struct cpg_address);
	AGG(struct cpg_name);
	AGG(struct cpg_iteration_description_t);
	AGG(struct cpg_ring_id);
	AGG(cpg_callbacks_t);
	AGG(cpg_model_data_t);
	AGG(cpg_model_v1_data_t);
	AGG(cpg_deliver_fn_t);
	AGG(cpg_confchg_fn_t);
	AGG(cpg_totem_confchg_fn_t);

	/* ---- typedef identities ---- */
	COMPAT(cs_time_t, int64_t);
	COMPAT(cpg_handle_t, uint64_t);
	COMPAT(cpg_iteration_handle_t, uint64_t);
	COMPAT(cpg_deliver_fn_t, exp_deliver_fn);
	COMPAT(cpg_confchg_fn_t, exp_confchg_fn);
	COMPAT(cpg_totem_confchg_fn_t, exp_totem_confchg_fn);
	COMPAT(__typeof__(&cs_timestamp_get), exp_timestamp_fn);
	COMPAT(__typeof__(&qb_to_cs_error), exp_int_to_cs_fn);
	COMPAT(__typeof__(&hdb_error_to_cs), exp_int_to_cs_fn);
	COMPAT(__typeof__(&cs_strerror), exp_strerror_fn);

	/* ---- struct members ---- */
	FIELD(cs_name_t, length, uint16_t);
	FIELD(cs_name_t, value, exp_u8_256);
	FIELD(cs_version_t, releaseCode, char);
	FIELD(cs_version_t, majorVersion, unsigned char);
	FIELD(cs_version_t, minorVersion, unsigned char);
	FIELD(struct cpg_address, nodeid, uint32_t);
	FIELD(struct cpg_address, pid, uint32_t);
	FIELD(struct cpg_address, reason, uint32_t);
	FIELD(struct cpg_name, length, uint32_t);
	FIELD(struct cpg_name, value, exp_char_128);
	FIELD(struct cpg_iteration_description_t, group, struct cpg_name);
	FIELD(struct cpg_iteration_description_t, nodeid, uint32_t);
	FIELD(struct cpg_iteration_description_t, pid, uint32_t);
	FIELD(struct cpg_ring_id, nodeid, uint32_t);
	FIELD(struct cpg_ring_id, seq, uint64_t);
	FIELD(cpg_callbacks_t, cpg_deliver_fn, exp_deliver_fn);
	FIELD(cpg_callbacks_t, cpg_confchg_fn, exp_confchg_fn);
	FIELD(cpg_model_data_t, model, cpg_model_t);
	FIELD(cpg_model_v1_data_t, model, cpg_model_t);
	FIELD(cpg_model_v1_data_t, cpg_deliver_fn, exp_deliver_fn);
	FIELD(cpg_model_v1_data_t, cpg_confchg_fn, exp_confchg_fn);
	FIELD(cpg_model_v1_data_t, cpg_totem_confchg_fn, exp_totem_confchg_fn);
	FIELD(cpg_model_v1_data_t, flags, unsigned int);

	/* ---- enum constants ---- */
	ENUMC(CS_DISPATCH_ONE);
	ENUMC(CS_DISPATCH_ALL);
	ENUMC(CS_DISPATCH_BLOCKING);
	ENUMC(CS_DISPATCH_ONE_NONBLOCKING);

	ENUMC(CS_OK);
	ENUMC(CS_ERR_LIBRARY);
	ENUMC(CS_ERR_VERSION);
	ENUMC(CS_ERR_INIT);
	ENUMC(CS_ERR_TIMEOUT);
	ENUMC(CS_ERR_TRY_AGAIN);
	ENUMC(CS_ERR_INVALID_PARAM);
	ENUMC(CS_ERR_NO_MEMORY);
	ENUMC(CS_ERR_BAD_HANDLE);
	ENUMC(CS_ERR_BUSY);
	ENUMC(CS_ERR_ACCESS);
	ENUMC(CS_ERR_NOT_EXIST);
	ENUMC(CS_ERR_NAME_TOO_LONG);
	ENUMC(CS_ERR_EXIST);
	ENUMC(CS_ERR_NO_SPACE);
	ENUMC(CS_ERR_INTERRUPT);
	ENUMC(CS_ERR_NAME_NOT_FOUND);
	ENUMC(CS_ERR_NO_RESOURCES);
	ENUMC(CS_ERR_NOT_SUPPORTED);
	ENUMC(CS_ERR_BAD_OPERATION);
	ENUMC(CS_ERR_FAILED_OPERATION);
	ENUMC(CS_ERR_MESSAGE_ERROR);
	ENUMC(CS_ERR_QUEUE_FULL);
	ENUMC(CS_ERR_QUEUE_NOT_AVAILABLE);
	ENUMC(CS_ERR_BAD_FLAGS);
	ENUMC(CS_ERR_TOO_BIG);
	ENUMC(CS_ERR_NO_SECTIONS);
	ENUMC(CS_ERR_CONTEXT_NOT_FOUND);
	ENUMC(CS_ERR_TOO_MANY_GROUPS);
	ENUMC(CS_ERR_SECURITY);

	ENUMC(CPG_TYPE_UNORDERED);
	ENUMC(CPG_TYPE_FIFO);
	ENUMC(CPG_TYPE_AGREED);
	ENUMC(CPG_TYPE_SAFE);

	ENUMC(CPG_FLOW_CONTROL_DISABLED);
	ENUMC(CPG_FLOW_CONTROL_ENABLED);

	ENUMC(CPG_REASON_UNDEFINED);
	ENUMC(CPG_REASON_JOIN);
	ENUMC(CPG_REASON_LEAVE);
	ENUMC(CPG_REASON_NODEDOWN);
	ENUMC(CPG_REASON_NODEUP);
	ENUMC(CPG_REASON_PROCDOWN);

	ENUMC(CPG_ITERATION_NAME_ONLY);
	ENUMC(CPG_ITERATION_ONE_GROUP);
	ENUMC(CPG_ITERATION_ALL);

	ENUMC(CPG_MODEL_V1);

	/* ---- macros ---- */
	MACRO_INT(CS_FALSE);
	MACRO_INT(CS_TRUE);
	MACRO_INT(CS_MAX_NAME_LENGTH);
	MACRO_INT(CS_TIME_END);
	MACRO_INT(CS_TRACK_CURRENT);
	MACRO_INT(CS_TRACK_CHANGES);
	MACRO_INT(CS_TRACK_CHANGES_ONLY);
	MACRO_INT(CS_IPC_TIMEOUT_MS);
	MACRO_INT(CS_TIME_MS_IN_SEC);
	MACRO_INT(CS_TIME_US_IN_SEC);
	MACRO_INT(CS_TIME_NS_IN_SEC);
	MACRO_INT(CS_TIME_US_IN_MSEC);
	MACRO_INT(CS_TIME_NS_IN_MSEC);
	MACRO_INT(CS_TIME_NS_IN_USEC);
	MACRO_INT(CPG_MAX_NAME_LENGTH);
	MACRO_INT(CPG_MEMBERS_MAX);
	MACRO_INT(CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF);

	/* CS_MAX is function-like: check behaviour, result type, expansion. */
	INTVAL("macro", "CS_MAX(3, 7)", CS_MAX(3, 7), NULL);
	INTVAL("macro", "CS_MAX(-5, 2u)", CS_MAX(-5, 2u), NULL);
	INTVAL("macro", "CS_MAX(9ULL, 1)", CS_MAX(9ULL, 1), NULL);
	printf("macro CS_MAX(1, 2.5) = %g type=%s\n", CS_MAX(1, 2.5), TNAME(CS_MAX(1, 2.5)));
	printf("macro CS_MAX(a, b) expands_to=[%s]\n", XSTR(CS_MAX(a, b)));

	MACRO_STR(CS_PRI_NODE_ID);
	MACRO_STR(CS_PRI_NODE_ID_PADDED);
	MACRO_STR(CS_PRI_RING_ID_SEQ);
	MACRO_STR(CS_PRI_RING_ID);
	snprintf(buf, sizeof(buf), "[" CS_PRI_NODE_ID "][" CS_PRI_NODE_ID_PADDED "][" CS_PRI_RING_ID_SEQ "][" CS_PRI_RING_ID "]",
		 (uint32_t)4000000000u, (uint32_t)42u, (uint64_t)0xdeadbeefcafeULL,
		 (uint32_t)0xabcu, (uint64_t)0x1234ULL);
	printf("format CS_PRI_* = %s\n", buf);

	/* cs_timestamp_get must exist as a callable inline returning uint64_t. */
	printf("func cs_timestamp_get nonzero=%d type=%s\n",
	       cs_timestamp_get() != 0, TNAME(cs_timestamp_get()));

	return 0;
}
