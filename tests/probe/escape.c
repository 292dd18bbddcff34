/*
 * The escape attempts of `zoo-probe escape`: each tries one facility that
 * SPEC.md 3.5 denies, by raw system call, in a child process of its own (so
 * that no attempt changes the next), and prints one line:
 *
 *     <attempt> reached        the kernel acted on the call
 *     <attempt> blocked <err>  refused with EPERM or ENOSYS
 *
 * "reached" counts a call the kernel processed even if it then failed for
 * an unrelated reason (request_key's ENOKEY): what matters is that nothing
 * stopped it on the way in. Run in a scratch directory it may write to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/perf_event.h>

#define SUID 04755
#define SGID 02755

/* Each attempt returns 0 when it reached the kernel's action, else an errno. */
static int result(long ret)
{
	return ret < 0 ? errno : 0;
}

/* Creation calls succeed by returning a file: did it keep its set-id bit? */
static int kept_setid(int fd)
{
	struct stat st;
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) < 0)
		return errno;
	return (st.st_mode & (S_ISUID | S_ISGID)) ? 0 : EPERM;
}

static int plain_file(const char *name)
{
	int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0755);
	if (fd >= 0)
		close(fd);
	return fd;
}

static int try_chmod(void) { plain_file("f1"); return result(syscall(SYS_chmod, "f1", SUID)); }
static int try_chmod_sgid(void) { plain_file("f2"); return result(syscall(SYS_chmod, "f2", SGID)); }
static int try_fchmod(void) { int fd = open("f3", O_CREAT | O_RDWR, 0755); return result(syscall(SYS_fchmod, fd, SUID)); }
static int try_fchmodat(void) { plain_file("f4"); return result(syscall(SYS_fchmodat, AT_FDCWD, "f4", SUID, 0)); }
static int try_fchmodat2(void) { plain_file("f5"); return result(syscall(452, AT_FDCWD, "f5", SUID, 0)); }
static int try_open_creat(void) { return kept_setid(syscall(SYS_open, "f6", O_CREAT | O_RDWR, SUID)); }
static int try_openat_creat(void) { return kept_setid(syscall(SYS_openat, AT_FDCWD, "f7", O_CREAT | O_RDWR, SGID)); }
static int try_openat_tmpfile(void) { return kept_setid(syscall(SYS_openat, AT_FDCWD, ".", O_TMPFILE | O_RDWR, SUID)); }
static int try_creat(void) { return kept_setid(syscall(SYS_creat, "f8", SUID)); }
static int try_mknod(void) { return result(syscall(SYS_mknod, "f9", S_IFREG | SUID, 0)); }
static int try_mknodat(void) { return result(syscall(SYS_mknodat, AT_FDCWD, "f10", S_IFREG | SGID, 0)); }

static int try_openat2(void)
{
	struct { uint64_t flags, mode, resolve; } how = { O_CREAT | O_RDWR, SUID, 0 };
	return kept_setid(syscall(437, AT_FDCWD, "f11", &how, sizeof(how)));
}

static int try_io_uring(void)
{
	char params[120] = { 0 }; /* struct io_uring_params */
	return result(syscall(425, 1, params));
}

/* 32-bit system calls through int 0x80 use another table and arch. */
static long int80(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	if (ret < 0 && ret > -4096) {
		errno = -ret;
		return -1;
	}
	return ret;
}

static char low_string[32]; /* int 0x80 passes 32-bit pointers: static data is below 4 GiB */

static int try_int80_chmod(void)
{
	plain_file("f12");
	strcpy(low_string, "f12");
	return result(int80(15 /* chmod */, (long)(uintptr_t)low_string, SUID, 0));
}

static int try_int80_unshare(void) { return result(int80(310 /* unshare */, CLONE_NEWUSER, 0, 0)); }
static int try_unshare(void) { return result(syscall(SYS_unshare, CLONE_NEWUSER)); }

static int try_clone(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return result(pid);
}

static int try_clone3(void)
{
	uint64_t args[11] = { 0 }; /* struct clone_args */
	long pid;
	args[0] = CLONE_NEWUSER;
	args[4] = SIGCHLD; /* exit_signal */
	pid = syscall(435, args, 88);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return result(pid);
}

/* TIOCSTI on our own controlling terminal, which needs no privilege. */
static int own_tty(void)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		return -1;
	setsid();
	slave = open(ptsname(master), O_RDWR); /* becomes the controlling tty */
	if (slave >= 0)
		ioctl(slave, TIOCSCTTY, 0);
	return slave;
}

static int try_tiocsti(void)
{
	char c = 'x';
	int tty = own_tty();
	if (tty < 0)
		return errno;
	return result(syscall(SYS_ioctl, tty, TIOCSTI, &c));
}

static int try_tiocsti_high_bits(void)
{
	char c = 'x';
	int tty = own_tty();
	if (tty < 0)
		return errno;
	return result(syscall(SYS_ioctl, tty, (1UL << 32) | TIOCSTI, &c));
}

static int try_keyctl(void) { return result(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -2 /* process */, 1)); }
static int try_add_key(void) { return result(syscall(SYS_add_key, "user", "zoo", "x", 1, -2)); }

static int try_request_key(void)
{
	int err = result(syscall(SYS_request_key, "user", "zoo-nothing", NULL, -2));
	return err == ENOKEY ? 0 : err;
}

static int try_ptrace(void) { return result(syscall(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0)); }

static int try_process_vm_readv(void)
{
	char src[8] = "secret", dst[8];
	struct iovec local = { dst, sizeof(dst) }, remote = { src, sizeof(src) };
	return result(syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
}

static int try_process_vm_writev(void)
{
	char src[8] = "x", dst[8];
	struct iovec local = { src, sizeof(src) }, remote = { dst, sizeof(dst) };
	return result(syscall(SYS_process_vm_writev, getpid(), &local, 1, &remote, 1, 0));
}

static int try_pidfd_getfd(void)
{
	long pidfd = syscall(434 /* pidfd_open */, getpid(), 0);
	if (pidfd < 0)
		return errno;
	return result(syscall(438, pidfd, 0, 0));
}

static int try_process_madvise(void)
{
	static char page[4096] __attribute__((aligned(4096)));
	struct iovec iov = { page, sizeof(page) };
	long pidfd = syscall(434, getpid(), 0);
	if (pidfd < 0)
		return errno;
	return result(syscall(440, pidfd, &iov, 1, 20 /* MADV_COLD */, 0));
}

static int try_kcmp(void) { return result(syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0)); }

static void *one_page(void)
{
	return mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static int try_mbind(void) { return result(syscall(SYS_mbind, one_page(), 4096, 0 /* MPOL_DEFAULT */, NULL, 0, 0)); }
static int try_set_mempolicy(void) { return result(syscall(SYS_set_mempolicy, 0, NULL, 0)); }

static int try_migrate_pages(void)
{
	unsigned long nodes = 1;
	return result(syscall(SYS_migrate_pages, 0, 8 * sizeof(nodes), &nodes, &nodes));
}

static int try_move_pages(void) { return result(syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0)); }

static int try_set_mempolicy_home_node(void)
{
	int err = result(syscall(450, one_page(), 4096, 0, 0));
	return err == EPERM || err == ENOSYS ? err : 0; /* EINVAL without a bind policy: reached */
}

static int try_userfaultfd(void) { return result(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */)); }

static int try_perf_event_open(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	return result(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

static const struct {
	const char *name;
	int (*attempt)(void);
} attempts[] = {
	{ "chmod-setuid", try_chmod },
	{ "chmod-setgid", try_chmod_sgid },
	{ "fchmod-setuid", try_fchmod },
	{ "fchmodat-setuid", try_fchmodat },
	{ "fchmodat2-setuid", try_fchmodat2 },
	{ "open-creat-setuid", try_open_creat },
	{ "openat-creat-setgid", try_openat_creat },
	{ "openat-tmpfile-setuid", try_openat_tmpfile },
	{ "openat2-creat-setuid", try_openat2 },
	{ "creat-setuid", try_creat },
	{ "mknod-setuid", try_mknod },
	{ "mknodat-setgid", try_mknodat },
	{ "io_uring_setup", try_io_uring },
	{ "int80-chmod-setuid", try_int80_chmod },
	{ "unshare-newuser", try_unshare },
	{ "clone-newuser", try_clone },
	{ "clone3-newuser", try_clone3 },
	{ "int80-unshare-newuser", try_int80_unshare },
	{ "ioctl-tiocsti", try_tiocsti },
	{ "ioctl-tiocsti-high-bits", try_tiocsti_high_bits },
	{ "keyctl", try_keyctl },
	{ "add_key", try_add_key },
	{ "request_key", try_request_key },
	{ "ptrace", try_ptrace },
	{ "process_vm_readv", try_process_vm_readv },
	{ "process_vm_writev", try_process_vm_writev },
	{ "pidfd_getfd", try_pidfd_getfd },
	{ "process_madvise", try_process_madvise },
	{ "kcmp", try_kcmp },
	{ "mbind", try_mbind },
	{ "migrate_pages", try_migrate_pages },
	{ "move_pages", try_move_pages },
	{ "set_mempolicy", try_set_mempolicy },
	{ "set_mempolicy_home_node", try_set_mempolicy_home_node },
	{ "userfaultfd", try_userfaultfd },
	{ "perf_event_open", try_perf_event_open },
};

int escape(void)
{
	size_t i;
	for (i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		int status = 0, err;
		pid_t pid;
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(attempts[i].attempt());
		waitpid(pid, &status, 0);
		err = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
		if (err == 0)
			printf("%s reached\n", attempts[i].name);
		else
			printf("%s blocked %s\n", attempts[i].name, err == 255 ? "crashed" : strerrorname_np(err) ? strerrorname_np(err) : "?");
	}
	return 0;
}
