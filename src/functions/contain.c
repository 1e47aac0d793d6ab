/* functions/contain — the process cage of a Functions worker. Everything that can be decided
 * before fork() is (the Landlock ruleset, the seccomp program, the user); the child between
 * fork() and execve() only makes system calls, because the server is multi-threaded. */
#include "functions/contain.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- Landlock ------------------------------------------------------------------------------ */
/* Spelled out here so that an older linux/landlock.h (Debian 12 knows ABI 2) still builds a
 * ruleset for a newer kernel. */
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_TRUNCATE (1ULL << 14)
#define LL_FS_IOCTL_DEV (1ULL << 15)
#define LL_NET_BIND_TCP (1ULL << 0)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

struct ll_attr { uint64_t fs, net, scoped; };
struct ll_path { uint64_t allowed; int32_t parent_fd; } __attribute__((packed));

static uint64_t ll_fs_handled(int abi)
{
    uint64_t m = (1ULL << 13) - 1; /* ABI 1: EXECUTE … MAKE_SYM */
    if (abi >= 2)
        m |= 1ULL << 13; /* REFER */
    if (abi >= 3)
        m |= LL_FS_TRUNCATE;
    if (abi >= 5)
        m |= LL_FS_IOCTL_DEV;
    return m;
}

static void ll_allow(int rfd, const char *path, uint64_t access)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return; /* paths that do not exist here are simply not granted */
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
    struct ll_path rule = {.allowed = access, .parent_fd = fd};
    syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    close(fd);
}

/* What node needs to start and to resolve and reach hosts: its libraries, name-service and
 * TLS configuration, time zones, /dev/null and the random devices. Nothing is writable;
 * the server's database, key file and working directories are not reachable. */
static int ll_prepare(const char *node, int *abi_out)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return -1;
    if (abi > 6)
        abi = 6;
    struct ll_attr attr = {.fs = ll_fs_handled((int)abi)};
    size_t size = sizeof(uint64_t);
    if (abi >= 4) {
        attr.net = LL_NET_BIND_TCP; /* no rule: the worker may not listen */
        size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    int rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (rfd < 0)
        return -1;
    const uint64_t ro = LL_FS_READ_FILE | LL_FS_READ_DIR;
    const uint64_t rox = ro | LL_FS_EXECUTE;
    const char *libs[] = {"/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/usr/share/zoneinfo",
                          "/usr/share/ca-certificates", "/usr/share/icu", "/usr/local/lib"};
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++)
        ll_allow(rfd, libs[i], rox);
    const char *etc[] = {"/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/localtime", "/etc/resolv.conf",
                         "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services",
                         "/etc/protocols", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/dev/urandom",
                         "/dev/random"};
    for (size_t i = 0; i < sizeof etc / sizeof *etc; i++)
        ll_allow(rfd, etc[i], ro);
    ll_allow(rfd, "/dev/null", LL_FS_READ_FILE | LL_FS_WRITE_FILE);
    /* The node binary itself, wherever it lives (/usr/bin/node, /usr/local/bin/node, …). */
    char real[1024];
    if (realpath(node, real))
        ll_allow(rfd, real, LL_FS_READ_FILE | LL_FS_EXECUTE);
    ll_allow(rfd, node, LL_FS_READ_FILE | LL_FS_EXECUTE);
    *abi_out = (int)abi;
    return rfd;
}

/* ---- seccomp --------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#define SC_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SC_ARCH AUDIT_ARCH_AARCH64
#endif

#define SC_MAX 160
typedef struct { struct sock_filter f[SC_MAX]; int n; } sc_prog;

static void sc_add(sc_prog *p, struct sock_filter s)
{
    if (p->n < SC_MAX)
        p->f[p->n++] = s;
}
#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * 8)
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + (i) * 8 + 4)
#define RET_ERRNO(e) STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
#define RET_ALLOW STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define LOAD_NR STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))

/* "if nr == N: return errno E" */
static void sc_deny(sc_prog *p, long nr, int e)
{
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1));
    sc_add(p, RET_ERRNO(e));
}

#ifdef SC_ARCH
/* Node needs none of these once it runs: no new processes (threads only), no execve but the
 * one that starts node (matched by the address of its path in this very address space, which
 * execve replaces), no tracing, no signals to other processes, no namespaces, mounts, BPF,
 * keyrings, modules or io_uring, and sockets only for IP (plus netlink, which getaddrinfo
 * uses) — so not the PostgreSQL or any other Unix socket. */
static void sc_build(sc_prog *p, const char *exec_path, pid_t self)
{
    uint64_t ptr = (uint64_t)(uintptr_t)exec_path;
    p->n = 0;
    sc_add(p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SC_ARCH, 1, 0));
    sc_add(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    sc_add(p, LOAD_NR);
#ifdef __x86_64__
    /* the x32 ABI would be a second numbering of the same calls */
    sc_add(p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
    sc_add(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
    /* execve: only with the path pointer of the exec below */
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execve, 0, 6));
    sc_add(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ptr, 0, 3));
    sc_add(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(0)));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ptr >> 32), 0, 1));
    sc_add(p, RET_ALLOW);
    sc_add(p, RET_ERRNO(EPERM));
    /* clone: threads only */
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4));
    sc_add(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
    sc_add(p, JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1));
    sc_add(p, RET_ALLOW);
    sc_add(p, RET_ERRNO(EPERM));
    /* tgkill: this process's own threads (V8 and abort() use it) */
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 0, 4));
    sc_add(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self, 0, 1));
    sc_add(p, RET_ALLOW);
    sc_add(p, RET_ERRNO(EPERM));
    /* socket: IPv4, IPv6, netlink */
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 6));
    sc_add(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 2, 0));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 1, 0));
    sc_add(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 1));
    sc_add(p, RET_ALLOW);
    sc_add(p, RET_ERRNO(EACCES));
    /* clone3 cannot be inspected (its flags are in memory): ENOSYS makes glibc use clone */
    sc_deny(p, SYS_clone3, ENOSYS);
    sc_deny(p, SYS_io_uring_setup, ENOSYS);
    const long denied[] = {
#ifdef SYS_fork
        SYS_fork,
#endif
#ifdef SYS_vfork
        SYS_vfork,
#endif
        SYS_execveat, SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kill, SYS_tkill,
        SYS_pidfd_send_signal, SYS_pidfd_getfd, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_unshare,
        SYS_setns, SYS_bpf, SYS_perf_event_open, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_userfaultfd,
        SYS_kexec_load, SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_reboot, SYS_swapon, SYS_swapoff,
        SYS_acct, SYS_io_uring_enter, SYS_io_uring_register, SYS_open_by_handle_at, SYS_name_to_handle_at,
        SYS_fanotify_init, SYS_quotactl, SYS_syslog, SYS_move_mount, SYS_fsopen, SYS_fsmount, SYS_fsconfig,
        SYS_open_tree, SYS_mknodat, SYS_personality, SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid,
        SYS_setresuid, SYS_setresgid, SYS_setgroups,
#ifdef SYS_mknod
        SYS_mknod,
#endif
    };
    for (size_t i = 0; i < sizeof denied / sizeof *denied; i++)
        sc_deny(p, denied[i], EPERM);
    sc_add(p, RET_ALLOW);
}
#endif

bool cage_find_node(const char *want, char *out, size_t cap)
{
    if (want && *want) {
        if (strchr(want, '/')) {
            if (access(want, X_OK))
                return false;
            snprintf(out, cap, "%s", want);
            return true;
        }
    }
    const char *name = want && *want ? want : "node";
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path);
    bool found = false;
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", d, name);
        found = access(out, X_OK) == 0;
    }
    free(copy);
    if (!found && !(want && *want)) {
        snprintf(out, cap, "/usr/bin/nodejs");
        found = access(out, X_OK) == 0;
    }
    return found;
}

/* ---- prepare / spawn ------------------------------------------------------------------------- */
void cage_prepare(fn_cage *c, const char *node, size_t as_bytes, unsigned cpu_seconds)
{
    memset(c, 0, sizeof *c);
    snprintf(c->node, sizeof c->node, "%s", node);
    c->as_bytes = as_bytes;
    c->cpu_seconds = cpu_seconds;
    c->landlock_fd = ll_prepare(node, &c->landlock_abi);
    const char *sc = getenv("MANIFOLD_FUNCTION_SECCOMP");
#ifdef SC_ARCH
    c->seccomp = !(sc && !strcmp(sc, "0"));
#else
    (void)sc;
    c->seccomp = false;
#endif
    if (geteuid() == 0) {
        c->drop_user = true;
        c->uid = 65534;
        c->gid = 65534;
        struct passwd pw, *res = NULL;
        char tmp[1024];
        if (getpwnam_r("nobody", &pw, tmp, sizeof tmp, &res) == 0 && res) {
            c->uid = res->pw_uid;
            c->gid = res->pw_gid;
        }
    }
    char ll[32] = "no landlock";
    if (c->landlock_fd >= 0)
        snprintf(ll, sizeof ll, "landlock abi %d", c->landlock_abi);
    snprintf(c->report, sizeof c->report, "%s, %s, %s, rlimits (AS %zu MiB, CPU %u s, NPROC, FSIZE 0, NOFILE 256)", ll,
             c->seccomp ? "seccomp" : "no seccomp", c->drop_user ? "uid nobody" : "server's uid", as_bytes >> 20,
             cpu_seconds);
}

void cage_release(fn_cage *c)
{
    if (c->landlock_fd >= 0)
        close(c->landlock_fd);
    c->landlock_fd = -1;
}

static void child_fail(const char *what)
{
    /* write(2) only: this runs between fork() and execve() */
    char msg[160];
    size_t n = 0;
    const char *pre = "manifold worker cage: ";
    for (const char *s = pre; *s && n < sizeof msg - 2; s++)
        msg[n++] = *s;
    for (const char *s = what; *s && n < sizeof msg - 2; s++)
        msg[n++] = *s;
    msg[n++] = '\n';
    if (write(2, msg, n) < 0) { /* nothing left to tell */ }
    _exit(127);
}

static void set_limit(int res, rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {soft, hard};
    setrlimit(res, &rl);
}

pid_t cage_spawn(const fn_cage *c, char *const argv[], int *in, int *out, int *err, char dir_out[32])
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))
        goto fail;
    char dir[] = "/tmp/manifold-fn-XXXXXX";
    if (!mkdtemp(dir))
        goto fail;
    snprintf(dir_out, 32, "%s", dir);
    /* Nothing of the server's environment. Two fixed tuning variables only, read by glibc and
     * libuv at start-up (the worker deletes them before any function code runs): one malloc
     * arena and two pool threads keep node's address-space reservations — which RLIMIT_AS
     * counts — near 650 MiB instead of 870. */
    char *const envp[] = {(char *)"MALLOC_ARENA_MAX=1", (char *)"UV_THREADPOOL_SIZE=2", NULL};
    const char *exec_path = c->node;
    pid_t pid = fork();
    if (pid < 0) {
        rmdir(dir);
        goto fail;
    }
    if (pid == 0) {
        /* Child: from here on, system calls only. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setsid();
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0)
            child_fail("dup2");
        int keep = c->landlock_fd;
        /* no inherited descriptors but 0, 1, 2 (and the ruleset until it is applied) */
        if (keep >= 3) {
            if (keep > 3)
                syscall(SYS_close_range, 3, keep - 1, 0);
            syscall(SYS_close_range, keep + 1, ~0U, 0);
        } else {
            syscall(SYS_close_range, 3, ~0U, 0);
        }
        if (chdir(dir) < 0)
            child_fail("chdir");
        rmdir(dir); /* an empty working directory that no longer exists anywhere */
        if (geteuid() == 0)
            unshare(CLONE_NEWIPC | CLONE_NEWUTS);
        set_limit(RLIMIT_AS, c->as_bytes, c->as_bytes);
        set_limit(RLIMIT_CPU, c->cpu_seconds, c->cpu_seconds + 5);
        set_limit(RLIMIT_FSIZE, 0, 0);
        set_limit(RLIMIT_NOFILE, 256, 256);
        set_limit(RLIMIT_CORE, 0, 0);
        if (c->drop_user) {
            set_limit(RLIMIT_NPROC, 512, 512);
            if (setgroups(0, NULL) || setgid(c->gid) || setuid(c->uid))
                child_fail("setuid");
            if (setuid(0) == 0)
                child_fail("could regain root");
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
            child_fail("no_new_privs");
        if (keep >= 0) {
            if (syscall(SYS_landlock_restrict_self, keep, 0))
                child_fail("landlock");
            close(keep);
        }
#ifdef SC_ARCH
        if (c->seccomp) {
            sc_prog p;
            sc_build(&p, exec_path, getpid());
            struct sock_fprog prog = {.len = (unsigned short)p.n, .filter = p.f};
            if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
                child_fail("seccomp");
        }
#endif
        execve(exec_path, argv, envp);
        child_fail("execve");
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    fcntl(pout[0], F_SETFL, O_NONBLOCK);
    fcntl(perr[0], F_SETFL, O_NONBLOCK);
    *in = pin[1];
    *out = pout[0];
    *err = perr[0];
    return pid;
fail:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    return -1;
}
