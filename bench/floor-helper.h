/*
 * Shared by the two floors: runs newuidmap or newgidmap for `child` with
 * the given triplets, without waiting (the caller waits for both at once).
 */
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

static pid_t helper(const char *tool, pid_t child, char **triplets, int n)
{
	char pid[16], *argv[64];
	int i;
	pid_t p = fork();
	if (p)
		return p;
	snprintf(pid, sizeof(pid), "%d", child);
	argv[0] = (char *)tool;
	argv[1] = pid;
	for (i = 0; i < n && i < 60; i++)
		argv[i + 2] = triplets[i];
	argv[i + 2] = NULL;
	execvp(tool, argv);
	_exit(127);
}
