/*
 * One OCI container's life as conmon and containerd's shim drive it, for
 * the OCI lifecycle benchmark (bench/oci.sh): `RUNTIME [--root ROOT] create
 * --bundle BUNDLE --pid-file PIDFILE ID`, `start ID`, wait for the
 * container's first process to exit, `delete ID`. Like those callers, this
 * program is a child subreaper: `create` exits leaving the container's
 * first process, which is reparented here and waited for as a child.
 * Exits 0 only if every verb and the container's command exit 0.
 *
 *   lifecycle RUNTIME ROOT BUNDLE ID
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("lifecycle: fork");
        exit(1);
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        perror("lifecycle: exec");
        _exit(127);
    }
    int status;
    /* The verb's own pid: an earlier container's orphan never matches. */
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "lifecycle: %s %s failed (status %d)\n", argv[0], argv[3], status);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: lifecycle RUNTIME ROOT BUNDLE ID\n");
        return 2;
    }
    char *runtime = argv[1], *root = argv[2], *bundle = argv[3], *id = argv[4];
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("lifecycle: PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    char pid_file[4096];
    snprintf(pid_file, sizeof pid_file, "%s/%s.pid", root, id);
    char *create[] = {runtime, "--root", root, "create", "--bundle", bundle, "--pid-file", pid_file, id, NULL};
    run(create);
    char text[32] = {0};
    int fd = open(pid_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, text, sizeof text - 1) <= 0) {
        perror("lifecycle: reading the pid file");
        return 1;
    }
    close(fd);
    unlink(pid_file);
    pid_t init = (pid_t)atoi(text);
    char *start[] = {runtime, "--root", root, "start", id, NULL};
    run(start);
    int status;
    if (waitpid(init, &status, 0) != init || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "lifecycle: the container's process %d did not exit 0 (status %d)\n", init, status);
        return 1;
    }
    char *delete[] = {runtime, "--root", root, "delete", id, NULL};
    run(delete);
    return 0;
}
