/*
 * cpg_probe: exit 0 when cpg_initialize succeeds (the server accepts
 * clients), 1 otherwise.  Used by run.sh as the readiness probe for servers
 * that are not corosync (whose readiness is read from its log).
 */
#include <corosync/cpg.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	cpg_handle_t h;
	cs_error_t rc;
	alarm(5);
	rc = cpg_initialize(&h, NULL);
	if (rc != CS_OK) {
		fprintf(stderr, "cpg_probe: cpg_initialize returned %d\n", (int)rc);
		return 1;
	}
	cpg_finalize(h);
	return 0;
}
