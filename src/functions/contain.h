/* functions/contain — starts one Node.js worker process in a cage (functions-runtime.md §11,
 * docs/functions-runtime.md): empty environment (two fixed malloc/libuv tuning variables), only the three pipe fds, an empty deleted
 * working directory, rlimits, an unprivileged user when started as root, an IPC namespace,
 * a Landlock file-system (and TCP-bind, signal) domain and a seccomp filter against new
 * processes, execve, ptrace, kernel-admin calls and non-IP sockets. Whatever the kernel
 * refuses is left out and reported, never fatal. */
#ifndef MANIFOLD_FUNCTIONS_CONTAIN_H
#define MANIFOLD_FUNCTIONS_CONTAIN_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct fn_cage {
    char node[1024];        /* absolute path of the node binary */
    size_t as_bytes;        /* RLIMIT_AS */
    unsigned cpu_seconds;   /* RLIMIT_CPU (soft; hard = soft + 5) */
    int landlock_fd;        /* a prepared ruleset, -1 when Landlock is unavailable */
    int landlock_abi;
    bool drop_user;         /* running as root: become uid/gid below */
    uid_t uid;
    gid_t gid;
    bool seccomp;           /* install the filter (off only for diagnosis: MANIFOLD_FUNCTION_SECCOMP=0) */
    char report[256];       /* what the cage consists of, for logs and `manifold function info` */
} fn_cage;

/* The node binary: want (a path, or a name looked up on PATH); NULL: "node" on PATH, then
 * /usr/bin/nodejs. */
bool cage_find_node(const char *want, char *out, size_t cap);

/* Fills c for the node binary; never fails (missing features are reported in c->report). */
void cage_prepare(fn_cage *c, const char *node, size_t as_bytes, unsigned cpu_seconds);
void cage_release(fn_cage *c);

/* Starts node with argv (argv[0] is ignored: c->node is executed). On success returns the pid
 * and sets *in (the worker's stdin, write end), *out (its stdout) and *err (its stderr), all
 * O_CLOEXEC and non-blocking on this side; -1 on failure. dir receives the path of the
 * worker's (empty) working directory: the child removes it once inside; the caller removes
 * it after reaping the child, in case the child was killed before it could. */
pid_t cage_spawn(const fn_cage *c, char *const argv[], int *in, int *out, int *err, char dir[32]);

#endif
