/*
 * The floor for zookeeper's start-up benchmark: the least a program can do
 * for the same container. clone() into user, mount, pid, net, ipc, uts and
 * cgroup namespaces; the parent runs newuidmap and newgidmap together (the
 * caller's subordinate range, as zookeeper maps it); the child binds the
 * rootfs, mounts proc, pivot_roots, detaches the old root and execs
 * /bin/true. No error reporting, no cleanup beyond waiting: a lower bound.
 *
 *   floor ROOTFS UID_MAP_ARGS... -- GID_MAP_ARGS...   (newuidmap's triplets)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor-helper.h"

int main(int argc, char **argv)
{
	int go[2], sep, status;
	char byte;
	const char *rootfs = argv[1];
	pid_t child, u, g;
	for (sep = 2; sep < argc && strcmp(argv[sep], "--"); sep++)
		;
	if (argc < 3 || sep >= argc)
		return 2;
	if (pipe2(go, O_CLOEXEC))
		return 1;
	child = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
				    CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD, NULL, NULL, NULL, 0);
	if (child == 0) {
		close(go[1]);
		if (read(go[0], &byte, 1) != 1)
			_exit(1);
		if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) ||
		    chdir(rootfs) || mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ||
		    syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) || chdir("/"))
			_exit(3);
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	u = helper("newuidmap", child, argv + 2, sep - 2);
	g = helper("newgidmap", child, argv + sep + 1, argc - sep - 1);
	waitpid(u, &status, 0);
	waitpid(g, &status, 0);
	if (write(go[1], "G", 1) != 1)
		return 1;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
