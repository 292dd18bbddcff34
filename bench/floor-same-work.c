/*
 * The second floor: the same container as zookeeper's, built by the least
 * code that can build it. bench/floor.c measures how close zookeeper is to
 * the physical limit of a bare container; this one separates zookeeper's
 * own overhead from the cost of the isolation it gives.
 *
 * As zookeeper (rootless, subordinate range, -r ROOTFS -P): clone into
 * user, mount, pid, ipc and uts namespaces; newuidmap and newgidmap run
 * together; a /tmp mkdtemp mountpoint (removed at the end); in the child: a
 * network namespace with loopback up, hostname, the cgroup namespace,
 * setresuid/setresgid 0, the rootfs bound on the mountpoint, a tmpfs /dev
 * with the six device binds, devpts, shm and links, proc with docker's
 * masked and read-only paths, a read-only sysfs with its masks,
 * pivot_root, the old root detached, a new session, the twenty capabilities
 * dropped, no_new_privs, zookeeper's own seccomp program (the file build.rs
 * writes), exec. No error messages, no signal handling, no clean-up of
 * failures: a lower bound for the same work.
 *
 *   floor-same-work ROOTFS SECCOMP_BPF UID_MAP_ARGS... -- GID_MAP_ARGS...
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor-helper.h"

#define CHECK(x)                                                                                                       \
	do {                                                                                                           \
		if (x)                                                                                                 \
			_exit(3);                                                                                      \
	} while (0)

static void mask(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return;
	if (S_ISDIR(st.st_mode))
		CHECK(mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555"));
	else
		CHECK(mount("/dev/null", path, NULL, MS_BIND, NULL));
}

static void read_only(const char *path)
{
	struct statvfs vfs;
	unsigned long keep = 0;
	if (access(path, F_OK))
		return;
	CHECK(mount(path, path, NULL, MS_BIND | MS_REC, NULL));
	CHECK(statvfs(path, &vfs));
	keep |= (vfs.f_flag & ST_NOSUID) ? MS_NOSUID : 0;
	keep |= (vfs.f_flag & ST_NODEV) ? MS_NODEV : 0;
	keep |= (vfs.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0;
	keep |= (vfs.f_flag & ST_RELATIME) ? MS_RELATIME : 0;
	CHECK(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL));
}

static void container(const char *mountpoint, const char *rootfs, struct sock_fprog *filter)
{
	static const char *devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *masked[] = {"proc/asound", "proc/acpi", "proc/interrupts", "proc/kcore", "proc/keys",
				       "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug",
				       "proc/scsi", "sys/firmware", "sys/devices/virtual/powercap"};
	static const char *ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};
	static const int caps[] = {CAP_AUDIT_CONTROL, CAP_AUDIT_READ, CAP_AUDIT_WRITE, CAP_BLOCK_SUSPEND,
				   CAP_DAC_READ_SEARCH, CAP_FSETID, CAP_IPC_LOCK, CAP_MAC_ADMIN, CAP_MAC_OVERRIDE,
				   CAP_MKNOD, CAP_SETFCAP, CAP_SYSLOG, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_MODULE,
				   CAP_SYS_NICE, CAP_SYS_RAWIO, CAP_SYS_RESOURCE, CAP_SYS_TIME, CAP_WAKE_ALARM};
	struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	char path[256];
	unsigned i;
	int fd;

	CHECK(unshare(CLONE_NEWCGROUP));
	CHECK(setresgid(0, 0, 0) || setresuid(0, 0, 0));
	CHECK(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
	CHECK(mount(rootfs, mountpoint, NULL, MS_BIND | MS_REC, NULL));
	CHECK(chdir(mountpoint));
	CHECK(mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755"));
	for (i = 0; i < sizeof(devices) / sizeof(*devices); i++) {
		snprintf(path, sizeof(path), "dev/%s", devices[i]);
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
		CHECK(fd < 0);
		close(fd);
		snprintf(path + 64, sizeof(path) - 64, "/dev/%s", devices[i]);
		CHECK(mount(path + 64, path, NULL, MS_BIND, NULL));
	}
	CHECK(mkdir("dev/pts", 0755) || mkdir("dev/shm", 0755));
	CHECK(mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"));
	CHECK(mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777"));
	CHECK(symlink("pts/ptmx", "dev/ptmx") || symlink("/proc/self/fd", "dev/fd") ||
	      symlink("/proc/self/fd/0", "dev/stdin") || symlink("/proc/self/fd/1", "dev/stdout") ||
	      symlink("/proc/self/fd/2", "dev/stderr"));
	CHECK(mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	CHECK(mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	for (i = 0; i < sizeof(masked) / sizeof(*masked); i++)
		mask(masked[i]);
	for (i = 0; i < sizeof(ro) / sizeof(*ro); i++)
		read_only(ro[i]);
	CHECK(syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) || chdir("/"));
	for (i = 1; i < NSIG; i++)
		signal(i, SIG_DFL);
	CHECK(setsid() < 0);
	for (i = 0; i < sizeof(caps) / sizeof(*caps); i++)
		CHECK(prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0));
	CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
	CHECK(syscall(SYS_capget, &header, data));
	for (i = 0; i < sizeof(caps) / sizeof(*caps); i++) {
		data[caps[i] / 32].effective &= ~(1u << (caps[i] % 32));
		data[caps[i] / 32].permitted &= ~(1u << (caps[i] % 32));
		data[caps[i] / 32].inheritable &= ~(1u << (caps[i] % 32));
	}
	CHECK(syscall(SYS_capset, &header, data));
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, filter));
	execl("/bin/true", "true", (char *)NULL);
	_exit(127);
}

int main(int argc, char **argv)
{
	static struct sock_filter program[4096];
	struct sock_fprog filter = {0, program};
	struct ifreq lo;
	int go[2], ready[2], sep, status, fd, sock;
	ssize_t size;
	char byte, mountpoint[] = "/tmp/zoo-floor.XXXXXX";
	pid_t child, u, g;
	for (sep = 3; sep < argc && strcmp(argv[sep], "--"); sep++)
		;
	if (argc < 4 || sep >= argc)
		return 2;
	fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	size = fd < 0 ? -1 : read(fd, program, sizeof(program));
	if (size <= 0)
		return 2;
	close(fd);
	filter.len = size / sizeof(*program);
	if (pipe2(go, O_CLOEXEC) || pipe2(ready, O_CLOEXEC) || !mkdtemp(mountpoint))
		return 1;
	child = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD,
			NULL, NULL, NULL, 0);
	if (child == 0) {
		close(go[1]);
		close(ready[0]);
		/* Before the id maps, as zookeeper: network namespace, loopback, hostname. */
		memset(&lo, 0, sizeof(lo));
		strcpy(lo.ifr_name, "lo");
		lo.ifr_flags = IFF_UP | IFF_RUNNING;
		CHECK(unshare(CLONE_NEWNET));
		sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		CHECK(sock < 0 || ioctl(sock, SIOCSIFFLAGS, &lo));
		close(sock);
		CHECK(sethostname("zoo", 3));
		CHECK(write(ready[1], "P", 1) != 1);
		if (read(go[0], &byte, 1) != 1)
			_exit(1);
		container(mountpoint, argv[1], &filter);
	}
	close(ready[1]);
	u = helper("newuidmap", child, argv + 3, sep - 3);
	g = helper("newgidmap", child, argv + sep + 1, argc - sep - 1);
	waitpid(u, &status, 0);
	waitpid(g, &status, 0);
	if (read(ready[0], &byte, 1) != 1)
		return 1;
	if (write(go[1], "G", 1) != 1)
		return 1;
	waitpid(child, &status, 0);
	rmdir(mountpoint);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
