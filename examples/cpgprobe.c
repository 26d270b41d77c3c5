/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Exits 0 when a CPG server accepts a connection. */
#include <corosync/cpg.h>
int main(void)
{
	cpg_handle_t h;
	if (cpg_initialize(&h, NULL) != CS_OK)
		return 1;
	cpg_finalize(h);
	return 0;
}
