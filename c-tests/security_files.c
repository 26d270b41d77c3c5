/*
 * security_files: the connection files a server creates in /dev/shm, checked
 * while the client is connected (libqb: files 0600, given to the client by a
 * root daemon):
 *  - root client: its connection directory /dev/shm/qb-<daemon pid>-<client
 *    pid>-* exists, grants nothing to others, and holds only regular files,
 *    each mode 0600 and owned by root
 *  - a client running as nobody (admitted by the test configurations of both
 *    servers): the same, the files owned by nobody, and not readable by a
 *    third user (no permission bit for group or others)
 *  - after cpg_finalize the directory is gone (bounded wait)
 */
#include "tap.h"
#include <dirent.h>
#include <grp.h>
#include <pwd.h>

/* Checks the one connection directory of process `pid`; `who` names the case. */
static void check_dir(const char *who, pid_t pid, uid_t uid)
{
	char pat[128], name[160], path[512];
	glob_t gl;
	struct stat sd;
	DIR *d;
	struct dirent *e;
	int files = 0, bad = 0;
	const char *dpid = getenv("CPG_TEST_DAEMON_PID");
	char detail[256] = "";

	snprintf(pat, sizeof pat, "/dev/shm/qb-%s-%d-*", dpid && *dpid ? dpid : "*", (int)pid);
	if (glob(pat, 0, NULL, &gl) != 0 || gl.gl_pathc != 1) {
		snprintf(name, sizeof name, "%s_one_directory", who);
		t_fail(name, "%zu entries match %s", (size_t)(gl.gl_pathc), pat);
		globfree(&gl);
		return;
	}
	snprintf(name, sizeof name, "%s_directory_private", who);
	CHECK(name, stat(gl.gl_pathv[0], &sd) == 0 && S_ISDIR(sd.st_mode) && (sd.st_mode & 07) == 0,
	      "%s: mode %o", gl.gl_pathv[0], (unsigned)sd.st_mode);
	d = opendir(gl.gl_pathv[0]);
	while (d && (e = readdir(d))) {
		struct stat s;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", gl.gl_pathv[0], e->d_name);
		files++;
		if (lstat(path, &s) != 0 || !S_ISREG(s.st_mode) || (s.st_mode & 07777) != 0600 || s.st_uid != uid) {
			bad++;
			snprintf(detail, sizeof detail, "%s: mode %o owner %u (want 0600, %u)", e->d_name,
				 (unsigned)s.st_mode, (unsigned)s.st_uid, (unsigned)uid);
		}
	}
	if (d)
		closedir(d);
	snprintf(name, sizeof name, "%s_files_0600_owned", who);
	CHECK(name, files > 0 && bad == 0, "%d of %d files: %s", bad, files, files ? detail : "no files");
	t_note("%s: %s holds %d files", who, gl.gl_pathv[0], files);
	globfree(&gl);
}

static int count_dirs(pid_t pid)
{
	char pat[96];
	const char *dpid = getenv("CPG_TEST_DAEMON_PID");
	snprintf(pat, sizeof pat, "/dev/shm/qb-%s-%d-*", dpid && *dpid ? dpid : "*", (int)pid);
	return t_shm_count(pat, NULL);
}

static void check_gone(const char *who, pid_t pid)
{
	char name[96];
	int k, n = 0;
	for (k = 0; k < 50; k++) {
		n = count_dirs(pid);
		if (!n)
			break;
		t_sleep_ms(100);
	}
	snprintf(name, sizeof name, "%s_removed_after_finalize", who);
	CHECK(name, n == 0, "%d directories left", n);
}

int main(int argc, char **argv)
{
	cpg_handle_t h;
	struct passwd *pw;
	int up[2], down[2];
	pid_t c;
	char x;

	(void)argc;
	t_start(argv[0], 60);
	if (getuid() != 0)
		t_skip_all("must run as root to switch users");

	REQUIRE_RC("root_initialize", cpg_initialize(&h, NULL), CS_OK);
	check_dir("root", getpid(), 0);
	CHECK_RC("root_finalize", cpg_finalize(h), CS_OK);
	check_gone("root", getpid());

	pw = getpwnam("nobody");
	if (!pw) {
		t_note("no user nobody: second half skipped");
		return t_done();
	}
	if (pipe(up) < 0 || pipe(down) < 0)
		return 1;
	c = t_fork();
	if (c == 0) {
		int32_t rc;
		close(up[0]);
		close(down[1]);
		alarm(30);
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(5);
		rc = cpg_initialize(&h, NULL);
		(void)t_write_all(up[1], &rc, sizeof rc);
		(void)t_read_all(down[0], &x, 1, 20000);
		if (rc == CS_OK)
			cpg_finalize(h);
		(void)t_write_all(up[1], "f", 1);
		(void)t_read_all(down[0], &x, 1, 20000);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	{
		int32_t rc = -1;
		int st;
		REQUIRE("nobody_report", t_read_all(up[0], &rc, sizeof rc, 15000) == 0, "no report from the child");
		CHECK("nobody_initialize", rc == CS_OK, "cpg_initialize as nobody returned %s", t_err((cs_error_t)rc));
		if (rc == CS_OK)
			check_dir("nobody", c, pw->pw_uid);
		(void)t_write_all(down[1], "x", 1);
		CHECK("nobody_finalized", t_read_all(up[0], &x, 1, 15000) == 0, "child did not finalize");
		if (rc == CS_OK)
			check_gone("nobody", c);
		(void)t_write_all(down[1], "x", 1);
		st = t_wait_child(c, 10000);
		CHECK("nobody_exit", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	}
	return t_done();
}
