/*
 * zoo-probe: a tiny static program the tests run inside containers, for what
 * busybox cannot do. Built by the test harness with `cc -static`.
 *
 *   zoo-probe segv          die of a real SIGSEGV (a fault reaches even pid 1)
 *   zoo-probe fds           list open descriptors, one per line
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: zoo-probe segv|fds\n");
		return 2;
	}
	if (strcmp(argv[1], "segv") == 0) {
		volatile uintptr_t nowhere = 8; /* volatile: the compiler cannot see the fault coming */
		*(volatile int *)nowhere = 1;
		return 3;
	}
	if (strcmp(argv[1], "fds") == 0) {
		DIR *dir = opendir("/proc/self/fd");
		struct dirent *entry;
		if (!dir) {
			perror("opendir /proc/self/fd");
			return 1;
		}
		while ((entry = readdir(dir)) != NULL)
			if (entry->d_name[0] != '.' && atoi(entry->d_name) != dirfd(dir))
				printf("%s\n", entry->d_name);
		closedir(dir);
		return 0;
	}
	fprintf(stderr, "zoo-probe: unknown test %s\n", argv[1]);
	return 2;
}
