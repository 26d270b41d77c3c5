/*
 * sec_probe: prints "rc=<cs_error_t>" for one cpg_initialize (then
 * finalizes on success) and exits 0; used by c-tests/security.sh, which
 * runs it as various users against servers run as various users.
 */
#include <corosync/cpg.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	cpg_handle_t h;
	cs_error_t rc;
	alarm(10);
	rc = cpg_initialize(&h, NULL);
	printf("rc=%d\n", (int)rc);
	if (rc == CS_OK)
		cpg_finalize(h);
	return 0;
}
