/*
 * zoo-probe: a tiny static program the tests run inside containers, for what
 * busybox cannot do. Built by the test harness with `cc -static`.
 *
 *   zoo-probe segv          die of a real SIGSEGV (a fault reaches even pid 1)
 *   zoo-probe fds           list open descriptors, one per line
 *   zoo-probe zombies MS    after MS milliseconds, count zombie processes in /proc
 *   zoo-probe escape        try every facility SPEC.md 3.5 denies (escape.c)
 *   zoo-probe pty           open a pty pair from /dev/ptmx and pass a line through it
 *   zoo-probe alloc MB      allocate and touch MB mebibytes, then print "allocated"
 *   zoo-probe spin MS       busy-loop for MS ms of wall time, print the CPU ms it got
 *   zoo-probe forks N       try to start N processes that wait; print how many started
 *   zoo-probe udp-recv PORT print the first UDP datagram that arrives on PORT
 *   zoo-probe orphan        leave a process that is orphaned, then ends 50 ms later
 *   zoo-probe proc1         try to reach pid 1's descriptors, memory, binary ... (attack.c)
 *   zoo-probe host-inodes P...  try chmod, chown, utimes on each path (attack.c)
 *   zoo-probe ioprio        print this process's I/O priority: "class C level L"
 *   zoo-probe mempolicy     print this thread's memory policy: "mode M nodes 0xMASK"
 *   zoo-probe reach PID...  try to reach, from this container, the user namespace above its
 *                           own and each host PID (a keeper, another container): print
 *                           "parent: ERRNO" (NS_GET_PARENT on its own user namespace),
 *                           then per pid "PID kill: ERRNO ns: ERRNO pidfd: ERRNO ptrace: ERRNO"
 *   zoo-probe tty-attack    try to change, on 0, 1 and 2, what a terminal lets its
 *                           holder change (modes, size, exclusive use, line
 *                           discipline); print each result, then every open
 *                           descriptor as "fd N DEV:INO TARGET"
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int escape(void);
int proc1(void);
int host_inodes(int count, char **paths);

static void report(char *out, size_t size, int fd, const char *what, int result)
{
	size_t used = strlen(out);
	snprintf(out + used, size - used, "fd %d %s: %s\n", fd, what, result == 0 ? "ok" : strerror(errno));
}

/* Everything a holder of the caller's terminal could do to it, on 0, 1 and 2.
 * The results are printed at the end: a changed line discipline would swallow
 * them. */
static int tty_attack(void)
{
	static char out[4096];
	int fd;
	DIR *dir;
	struct dirent *entry;
	for (fd = 0; fd <= 2; fd++) {
		struct termios modes = { 0 };
		struct winsize size = { .ws_row = 3, .ws_col = 7 };
		int null_ldisc = 27 /* N_NULL */, plain_ldisc = 0 /* N_TTY */;
		if (tcgetattr(fd, &modes) == 0) {
			cfmakeraw(&modes);
			modes.c_lflag &= ~(ECHO | ICANON);
		}
		report(out, sizeof(out), fd, "tcsetattr", tcsetattr(fd, TCSANOW, &modes));
		report(out, sizeof(out), fd, "TIOCSWINSZ", ioctl(fd, TIOCSWINSZ, &size));
		report(out, sizeof(out), fd, "TIOCEXCL", ioctl(fd, TIOCEXCL));
		/* Put back at once when it works, or nothing more could be read. */
		if (ioctl(fd, TIOCSETD, &null_ldisc) == 0) {
			ioctl(fd, TIOCSETD, &plain_ldisc);
			report(out, sizeof(out), fd, "TIOCSETD", 0);
		} else {
			report(out, sizeof(out), fd, "TIOCSETD", -1);
		}
	}
	fputs(out, stdout);
	dir = opendir("/proc/self/fd");
	if (!dir) {
		perror("opendir /proc/self/fd");
		return 1;
	}
	while ((entry = readdir(dir)) != NULL) {
		struct stat st;
		char target[256] = { 0 };
		int n = atoi(entry->d_name);
		if (entry->d_name[0] == '.' || n == dirfd(dir) || fstat(n, &st) != 0)
			continue;
		snprintf(out, sizeof(out), "/proc/self/fd/%d", n);
		if (readlink(out, target, sizeof(target) - 1) < 0)
			strcpy(target, "?");
		printf("fd %d %llu:%llu %s\n", n, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		       target);
	}
	closedir(dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: zoo-probe segv|fds\n");
		return 2;
	}
	if (strcmp(argv[1], "ioprio") == 0) {
		/* IOPRIO_WHO_PROCESS, this process. */
		long prio = syscall(SYS_ioprio_get, 1, 0);
		if (prio < 0) {
			perror("ioprio_get");
			return 1;
		}
		printf("class %ld level %ld\n", prio >> 13, prio & 0x1fff);
		return 0;
	}
	if (strcmp(argv[1], "mempolicy") == 0) {
		int mode = -1;
		unsigned long mask[16] = { 0 };
		if (syscall(SYS_get_mempolicy, &mode, mask, sizeof(mask) * 8, NULL, 0UL) != 0) {
			perror("get_mempolicy");
			return 1;
		}
		printf("mode %d nodes 0x%lx\n", mode, mask[0]);
		return 0;
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
	if (strcmp(argv[1], "reach") == 0) {
		int own = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
		int parent = ioctl(own, _IO(0xb7, 0x2) /* NS_GET_PARENT */);
		printf("parent: %s\n", parent >= 0 ? "REACHED" : strerrorname_np(errno));
		for (int i = 2; i < argc; i++) {
			char path[64];
			int pid = atoi(argv[i]);
			long killed = kill(pid, 0);
			const char *kill_result = killed == 0 ? "REACHED" : strerrorname_np(errno);
			snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
			int ns = open(path, O_RDONLY | O_CLOEXEC);
			const char *ns_result = ns >= 0 ? "REACHED" : strerrorname_np(errno);
			long pidfd = syscall(SYS_pidfd_open, pid, 0);
			const char *pidfd_result = pidfd >= 0 ? "REACHED" : strerrorname_np(errno);
			long traced = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, pid, 0, 0);
			printf("%d kill: %s ns: %s pidfd: %s ptrace: %s\n", pid, kill_result, ns_result, pidfd_result,
			       traced == 0 ? "REACHED" : strerrorname_np(errno));
		}
		return 0;
	}
	if (strcmp(argv[1], "proc1") == 0)
		return proc1();
	if (strcmp(argv[1], "host-inodes") == 0)
		return host_inodes(argc - 2, argv + 2);
	if (strcmp(argv[1], "escape") == 0)
		return escape();
	if (strcmp(argv[1], "tty-attack") == 0)
		return tty_attack();
	if (strcmp(argv[1], "pty") == 0) {
		char line[16] = { 0 };
		int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
			perror("posix_openpt");
			return 1;
		}
		slave = open(ptsname(master), O_RDWR | O_NOCTTY);
		if (slave < 0 || write(master, "hello\n", 6) != 6 || read(slave, line, sizeof(line) - 1) <= 0) {
			perror(ptsname(master));
			return 1;
		}
		printf("%s %s", ptsname(master), line);
		return 0;
	}
	if (strcmp(argv[1], "alloc") == 0 && argc == 3) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		char *p = malloc(bytes);
		size_t i;
		if (!p)
			return 1;
		for (i = 0; i < bytes; i += 4096)
			p[i] = 1;
		printf("allocated\n");
		return 0;
	}
	if (strcmp(argv[1], "spin") == 0 && argc == 3) {
		struct timespec start, now, cpu;
		long ms = atol(argv[2]);
		clock_gettime(CLOCK_MONOTONIC, &start);
		do
			clock_gettime(CLOCK_MONOTONIC, &now);
		while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
		printf("%ld\n", cpu.tv_sec * 1000 + cpu.tv_nsec / 1000000);
		return 0;
	}
	if (strcmp(argv[1], "forks") == 0 && argc == 3) {
		int wanted = atoi(argv[2]), started = 0, i, hold[2];
		if (pipe(hold) < 0)
			return 1;
		for (i = 0; i < wanted; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				char c;
				close(hold[1]);
				read(hold[0], &c, 1); /* until the parent is done counting */
				_exit(0);
			}
			if (pid > 0)
				started++;
		}
		close(hold[1]);
		while (wait(NULL) > 0)
			;
		printf("%d\n", started);
		return 0;
	}
	if (strcmp(argv[1], "udp-recv") == 0 && argc == 3) {
		struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
		char datagram[512];
		ssize_t n;
		int sock = socket(AF_INET, SOCK_DGRAM, 0);
		if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			perror("udp-recv");
			return 1;
		}
		printf("listening\n");
		fflush(stdout);
		n = recv(sock, datagram, sizeof(datagram), 0);
		if (n < 0)
			return 1;
		fwrite(datagram, 1, n, stdout);
		return 0;
	}
	if (strcmp(argv[1], "orphan") == 0) {
		pid_t child = fork();
		if (child == 0) {
			if (fork() == 0) {
				struct timespec pause = { 0, 50 * 1000000L };
				nanosleep(&pause, NULL);
			}
			_exit(0);
		}
		waitpid(child, NULL, 0);
		return 0;
	}
	if (strcmp(argv[1], "zombies") == 0 && argc == 3) {
		long ms = atol(argv[2]);
		struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
		DIR *dir;
		struct dirent *entry;
		int zombies = 0;
		nanosleep(&pause, NULL);
		dir = opendir("/proc");
		if (!dir) {
			perror("opendir /proc");
			return 1;
		}
		while ((entry = readdir(dir)) != NULL) {
			char path[64], state = 0;
			FILE *stat;
			if (atoi(entry->d_name) <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/stat", atoi(entry->d_name));
			stat = fopen(path, "r");
			/* pid (comm) state: comm has no ')' for our processes */
			if (stat && fscanf(stat, "%*d (%*[^)]) %c", &state) == 1 && state == 'Z')
				zombies++;
			if (stat)
				fclose(stat);
		}
		closedir(dir);
		printf("%d\n", zombies);
		return 0;
	}
	fprintf(stderr, "zoo-probe: unknown test %s\n", argv[1]);
	return 2;
}
