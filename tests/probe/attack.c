/*
 * The attacks of `zoo-probe proc1` and `zoo-probe host-inodes`, tried from
 * inside a container. Each prints one line:
 *
 *     <attempt> reached        the kernel let it through
 *     <attempt> blocked <err>  refused
 *
 * proc1: what a container process gets of its pid 1 through /proc. Under
 * --init, pid 1 is zookeeper's own code (forked from the supervisor, never
 * exec'd): its descriptors, environment, memory, working directory, root
 * and binary are the host's if the kernel lets the container reach them.
 * It also prints `cmdline <text>` (readable by anyone, by the kernel's
 * rules), for the test to check for host paths.
 *
 * host-inodes PATH...: chmod, chown and utimes on each path, each with the
 * values the file already has, so that an attack that gets through leaves
 * the host's file as it was (but for its ctime); and a touch to now, which
 * the kernel allows anyone who may write the file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void verdict(const char *attempt, int err)
{
	if (err == 0)
		printf("%s reached\n", attempt);
	else
		printf("%s blocked %s\n", attempt, strerrorname_np(err) ? strerrorname_np(err) : "?");
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int try_read(const char *path)
{
	char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = read(fd, buf, sizeof buf);
	int err = n < 0 ? errno : 0;
	close(fd);
	return err;
}

static int try_readlink(const char *path)
{
	char buf[4096];
	return readlink(path, buf, sizeof buf) < 0 ? errno : 0;
}

/*
 * A directory whose entries lead somewhere: reached when one of them can be
 * read as a link or opened (a listing of bare numbers gives nothing away).
 */
static int try_entries(const char *path)
{
	DIR *dir = opendir(path);
	if (!dir)
		return errno;
	struct dirent *entry;
	int err = ENOENT;
	while ((entry = readdir(dir)) != NULL) {
		char target[4096];
		if (entry->d_name[0] == '.')
			continue;
		if (readlinkat(dirfd(dir), entry->d_name, target, sizeof target) >= 0) {
			err = 0;
			break;
		}
		int fd = openat(dirfd(dir), entry->d_name, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			err = 0;
			break;
		}
		err = errno;
	}
	closedir(dir);
	return err;
}

/* Any descriptor of pid 1's, reached through /proc/1/fd/N. */
static int try_any_fd(void)
{
	char path[64];
	int last = EBADF;
	for (int n = 0; n < 256; n++) {
		snprintf(path, sizeof path, "/proc/1/fd/%d", n);
		int err = try_open(path, O_PATH);
		if (err == 0)
			return 0;
		if (err != ENOENT)
			last = err;
	}
	return last;
}

int proc1(void)
{
	verdict("fd-list", try_entries("/proc/1/fd"));
	verdict("fd-open", try_any_fd());
	verdict("fdinfo-list", try_entries("/proc/1/fdinfo"));
	verdict("environ", try_read("/proc/1/environ"));
	verdict("mem-read", try_open("/proc/1/mem", O_RDONLY));
	verdict("mem-write", try_open("/proc/1/mem", O_RDWR));
	verdict("cwd", try_readlink("/proc/1/cwd"));
	verdict("cwd-parent", try_open("/proc/1/cwd/..", O_PATH));
	verdict("root", try_readlink("/proc/1/root"));
	verdict("root-open", try_open("/proc/1/root/", O_PATH));
	verdict("exe", try_readlink("/proc/1/exe"));
	verdict("exe-read", try_open("/proc/1/exe", O_RDONLY));
	verdict("exe-write", try_open("/proc/1/exe", O_WRONLY));
	verdict("exe-path", try_open("/proc/1/exe", O_PATH));
	verdict("map-files", try_entries("/proc/1/map_files"));
	verdict("maps", try_read("/proc/1/maps"));
	verdict("auxv", try_read("/proc/1/auxv"));
	verdict("ns-mnt", try_open("/proc/1/ns/mnt", O_RDONLY));

	char text[4096];
	int fd = open("/proc/1/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	for (ssize_t i = 0; i < n; i++)
		if (text[i] == '\0' || text[i] == '\n')
			text[i] = ' ';
	text[n] = '\0';
	printf("cmdline %s\n", text);
	return 0;
}

int host_inodes(int count, char **paths)
{
	char attempt[512];
	for (int i = 0; i < count; i++) {
		const char *path = paths[i];
		struct stat st;
		if (lstat(path, &st) < 0) {
			snprintf(attempt, sizeof attempt, "stat:%s", path);
			verdict(attempt, errno);
			continue;
		}
		snprintf(attempt, sizeof attempt, "chmod:%s", path);
		verdict(attempt, chmod(path, st.st_mode & 07777) < 0 ? errno : 0);
		snprintf(attempt, sizeof attempt, "chown:%s", path);
		verdict(attempt, chown(path, st.st_uid, st.st_gid) < 0 ? errno : 0);
		struct timespec times[2] = { st.st_atim, st.st_mtim };
		snprintf(attempt, sizeof attempt, "utimes:%s", path);
		verdict(attempt, utimensat(AT_FDCWD, path, times, 0) < 0 ? errno : 0);
		/* To now: allowed to anyone who may write the file (0666 devices). */
		snprintf(attempt, sizeof attempt, "touch:%s", path);
		verdict(attempt, utimensat(AT_FDCWD, path, NULL, 0) < 0 ? errno : 0);
	}
	return 0;
}
