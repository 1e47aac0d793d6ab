/* functions/runtime — a pool of contained Node.js workers (functions-runtime.md §11) driven by
 * one runtime thread with poll(). fnrt_invoke only queues; the runtime thread hands a call to
 * an idle worker (preferring the one that already holds the instance's warm context), reads
 * the answer, enforces the wall clock with SIGKILL, replaces dead workers and answers every
 * call exactly once. A worker runs one invocation at a time, in the order it received them.
 * So that a warm instance is not held to one process round trip per call, calls of the
 * instance a worker is already running may be sent ahead (its pipeline, PIPE_DEPTH deep):
 * they wait inside the worker and have not started, so when the running call must be
 * killed they go back to the front of the queue and run elsewhere, and killing a worker
 * still takes down only the call it was running. */
#include "functions/runtime.h"
#include "functions/contain.h"
#include "functions/frame.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/util.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define KEYS_PER_WORKER 64  /* = the worker's MAX_CONTEXTS: what it keeps warm */
#define GRACE_MS 300        /* the worker answers Timeout itself; SIGKILL only if it cannot */
#define START_TIMEOUT_MS 15000
#define ERRTAIL 4096
#define MEM_CHECK_MS 50
#define PIPE_DEPTH 16       /* calls of one instance sent to a worker before it answers the first */
#define PIPE_STALL_MS 5     /* ...only while its running call is younger than this: a slow call
                               would hold the ones behind it, which can wait for any worker instead */

/* The worker program arrives as the first frame on stdin, so the worker needs no read access
 * to the repository (it runs as nobody, under Landlock). */
static const char BOOT[] =
    "const fs=require('fs');function rd(n){const b=Buffer.alloc(n);let o=0;while(o<n){const r=fs.readSync(0,b,o,n-o);"
    "if(!r)process.exit(5);o+=r}return b}const n=rd(4).readUInt32BE(0);"
    "require('vm').runInThisContext(rd(n).toString(),{filename:'worker.js'})(require)";

typedef struct job {
    struct job *next;
    long long id;
    char *frame; /* serialized request, framed */
    size_t frame_len;
    char *key;   /* warm-context key; NULL when fresh */
    int timeout_ms;
    long long queued_at;
    fn_done done;
    void *ctx;
    /* a call that fails before reaching a worker */
    const char *pre_name, *pre_message;
} job;

enum { W_DEAD, W_STARTING, W_IDLE, W_BUSY };

typedef struct worker {
    int state;
    pid_t pid;
    int in, out, err;
    buf wb; size_t woff;    /* pending bytes to the worker */
    buf rb;                 /* bytes from the worker not yet framed */
    char errtail[ERRTAIL]; size_t errlen;
    job *cur;               /* the call it runs: the head of its pipeline (linked by next) */
    job *pipe_tail;         /* the last call sent; those after cur have not started */
    int depth;              /* calls sent and not answered, cur included */
    bool draining;          /* to be retired: takes no new call, goes once its pipeline is empty */
    long long started;      /* of the current call, or of the process while starting */
    long long deadline;
    long long respawn_at;
    long long mem_check_at;
    char *keys[KEYS_PER_WORKER]; int nkeys, keypos;
    char dir[32];           /* its working directory, removed at reap if the child could not */
    int as_gen;             /* the RLIMIT_AS calibration it was started (or adjusted) with */
    size_t as_start;        /* the RLIMIT_AS it was started with */
} worker;

struct fnrt {
    pthread_t thread;
    bool thread_ok;
    pthread_mutex_t mu;
    int wake;               /* eventfd */
    bool stop;
    job *qhead, *qtail;     /* under mu: queued by fnrt_invoke; the wake is written when it
                               turns non-empty (the thread takes all of it after every wake) */
    int qlen, qmax;
    long long next_id;
    /* runtime thread only */
    job *rhead, *rtail;     /* taken from the shared queue, waiting for a worker */
    int nworkers;
    worker w[MAX_WORKERS];
    int start_failures;
    bool available;         /* node and worker.js found */
    volatile bool broken;   /* workers keep failing to start */
    char *source; size_t source_len;
    char *config_frame;     /* JSON: policy, CPU budget */
    size_t memory_mb;
    size_t rss_cap;         /* bytes; checked every MEM_CHECK_MS while a call runs */
    bool as_calibrated;
    int as_gen;
    int timeout_ms;
    atomic_ullong n_calls, n_sent_ahead, n_requeued, n_killed; /* fnrt_stats_get */
    fn_cage cage;
    char *argv[12];
    char argbuf[2][64];
};

/* ---- small helpers ------------------------------------------------------------------------- */
static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    return (*end || n <= 0 || n > INT_MAX) ? def : (int)n;
}

static char *read_file(const char *path, size_t *len)
{
    buf b = {0};
    if (buf_read_file(&b, path) < 0)
        return NULL;
    *len = b.len;
    return b.data ? buf_steal(&b) : strdup("");
}

/* runtime/worker.js: MANIFOLD_FUNCTIONS_WORKER, beside the binary (build/, build/asan/, an
 * installed share/manifold/), then the source tree the binary was built from. */
static char *load_worker_source(size_t *len)
{
    const char *env = getenv("MANIFOLD_FUNCTIONS_WORKER");
    if (env && *env)
        return read_file(env, len);
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        const char *ups[] = {"/../runtime/worker.js", "/../../runtime/worker.js",
                             "/../share/manifold/runtime/worker.js"};
        for (size_t i = 0; i < sizeof ups / sizeof *ups; i++) {
            char cand[1200];
            snprintf(cand, sizeof cand, "%s%s", dir, ups[i]);
            char *s = read_file(cand, len);
            if (s)
                return s;
        }
    }
#ifdef MANIFOLD_RUNTIME_DIR
    return read_file(MANIFOLD_RUNTIME_DIR "/worker.js", len);
#else
    return NULL;
#endif
}

/* ---- results ------------------------------------------------------------------------------- */
static void finish_error(job *j, const char *name, const char *message, long long duration)
{
    fn_result r = {0};
    r.success = false;
    r.error_name = (char *)name;
    r.error_message = (char *)message;
    buf reason = {0};
    if (!strcmp(name, "RuntimeUnavailable"))
        buf_puts(&reason, "runtime unavailable");
    else if (!strcmp(name, "Timeout"))
        buf_printf(&reason, "Timeout: function exceeded %d ms", j->timeout_ms);
    else if (message && *message)
        buf_printf(&reason, "%s: %s", name, message);
    else
        buf_puts(&reason, name);
    r.error_reason = (char *)buf_cstr(&reason);
    r.duration_ms = duration;
    j->done(j->ctx, &r);
    buf_free(&reason);
}

static void job_free(job *j)
{
    free(j->frame);
    free(j->key);
    free(j);
}

/* The worker's answer → fn_result. The worker is not trusted: every field is checked. */
static bool finish_reply(job *j, json_t *m, long long duration, bool *retire)
{
    json_t *succ = json_object_get(m, "success");
    *retire = json_is_true(json_object_get(m, "retire"));
    fn_result r = {0};
    r.duration_ms = duration;
    json_t *logs = json_object_get(m, "logs");
    size_t nl = json_is_array(logs) ? json_array_size(logs) : 0;
    fn_log *lv = nl ? calloc(nl, sizeof *lv) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < nl && lv; i++) {
        json_t *e = json_array_get(logs, i);
        const char *msg = json_string_value(json_object_get(e, "m"));
        if (!msg)
            continue;
        lv[k].message = (char *)msg;
        lv[k].time_ms = (long long)json_integer_value(json_object_get(e, "t"));
        k++;
    }
    r.logs = lv;
    r.nlogs = k;
    r.logs_truncated = json_is_true(json_object_get(m, "logs_truncated"));
    buf reason = {0};
    if (json_is_true(succ)) {
        const char *out = json_string_value(json_object_get(m, "output"));
        r.success = true;
        r.output = (char *)(out ? out : "null");
    } else {
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *msg = json_string_value(json_object_get(m, "message"));
        if (!name || !*name)
            name = "Error";
        if (!msg)
            msg = "";
        r.error_name = (char *)name;
        r.error_message = (char *)msg;
        if (!strcmp(name, "Timeout"))
            buf_printf(&reason, "Timeout: function exceeded %d ms", j->timeout_ms);
        else if (*msg)
            buf_printf(&reason, "%s: %s", name, msg);
        else
            buf_puts(&reason, name);
        r.error_reason = (char *)buf_cstr(&reason);
    }
    j->done(j->ctx, &r);
    buf_free(&reason);
    free(lv);
    return true;
}

/* ---- workers ------------------------------------------------------------------------------- */
static void worker_forget_keys(worker *w)
{
    for (int i = 0; i < w->nkeys; i++)
        free(w->keys[i]);
    w->nkeys = w->keypos = 0;
}

static bool worker_has_key(const worker *w, const char *key)
{
    for (int i = 0; i < w->nkeys; i++)
        if (!strcmp(w->keys[i], key))
            return true;
    return false;
}

static void worker_add_key(worker *w, const char *key)
{
    if (worker_has_key(w, key))
        return;
    if (w->nkeys < KEYS_PER_WORKER) {
        w->keys[w->nkeys++] = strdup(key);
    } else {
        free(w->keys[w->keypos]);
        w->keys[w->keypos] = strdup(key);
        w->keypos = (w->keypos + 1) % KEYS_PER_WORKER;
    }
}

static void worker_drain_err(worker *w)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = read(w->err, tmp, sizeof tmp);
        if (n <= 0)
            break;
        /* keep the last ERRTAIL bytes */
        if ((size_t)n >= ERRTAIL) {
            memcpy(w->errtail, tmp + n - ERRTAIL, ERRTAIL);
            w->errlen = ERRTAIL;
        } else {
            if (w->errlen + (size_t)n > ERRTAIL) {
                size_t drop = w->errlen + (size_t)n - ERRTAIL;
                memmove(w->errtail, w->errtail + drop, w->errlen - drop);
                w->errlen -= drop;
            }
            memcpy(w->errtail + w->errlen, tmp, (size_t)n);
            w->errlen += (size_t)n;
        }
    }
}

static bool errtail_has(const worker *w, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= w->errlen; i++)
        if (!memcmp(w->errtail + i, needle, n))
            return true;
    return false;
}

static void worker_start(fnrt *rt, worker *w, long long now)
{
    int in, out, err;
    pid_t pid = cage_spawn(&rt->cage, rt->argv, &in, &out, &err, w->dir);
    if (pid < 0) {
        rt->start_failures++;
        w->respawn_at = now + 1000;
        return;
    }
    w->pid = pid;
    w->as_gen = rt->as_gen;
    w->as_start = rt->cage.as_bytes;
    w->in = in;
    w->out = out;
    w->err = err;
    w->state = W_STARTING;
    w->started = now;
    w->deadline = now + START_TIMEOUT_MS;
    w->errlen = 0;
    w->woff = 0;
    w->wb.len = 0;
    w->rb.len = 0;
    frame_put(&w->wb, rt->source, rt->source_len);
    frame_put(&w->wb, rt->config_frame, strlen(rt->config_frame));
}

/* Kills (if needed) and reaps the worker; returns its wait status. */
static int worker_reap(worker *w)
{
    int status = 0;
    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
        while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (w->dir[0])
            rmdir(w->dir); /* normally gone already */
        w->dir[0] = '\0';
    }
    worker_drain_err(w);
    if (w->in >= 0)
        close(w->in);
    if (w->out >= 0)
        close(w->out);
    if (w->err >= 0)
        close(w->err);
    w->in = w->out = w->err = -1;
    w->pid = 0;
    w->state = W_DEAD;
    worker_forget_keys(w);
    return status;
}

/* Calls taken back from a worker's pipeline go first in the queue, in their order. */
static void requeue_front(fnrt *rt, job *chain)
{
    if (!chain)
        return;
    int n = 1;
    job *last = chain;
    while (last->next)
        last = last->next, n++;
    last->next = rt->rhead;
    if (!rt->rhead)
        rt->rtail = last;
    rt->rhead = chain;
    atomic_fetch_add(&rt->n_requeued, (unsigned long long)n);
    pthread_mutex_lock(&rt->mu);
    rt->qlen += n;
    pthread_mutex_unlock(&rt->mu);
}

/* The worker is gone or must go. why: NULL (it died by itself), "Timeout", "retire". */
static void worker_down(fnrt *rt, worker *w, const char *why, long long now)
{
    int was = w->state;
    job *j = w->cur;
    job *rest = j ? j->next : NULL; /* sent ahead, not started: they run elsewhere */
    w->cur = w->pipe_tail = NULL;
    w->depth = 0;
    w->draining = false;
    requeue_front(rt, rest);
    int status = worker_reap(w);
    if (was == W_STARTING) {
        rt->start_failures++;
        /* a worker that cannot start: say why once (its stderr holds no function output yet) */
        if (w->errlen) {
            char line[512];
            size_t n = w->errlen < sizeof line - 1 ? w->errlen : sizeof line - 1;
            memcpy(line, w->errtail + w->errlen - n, n);
            line[n] = '\0';
            for (char *p = line; *p; p++)
                if (*p == '\n')
                    *p = ' ';
            log_warn("functions: a worker failed to start: %s", line);
        }
        long long backoff = 100LL << (rt->start_failures < 6 ? rt->start_failures : 6);
        w->respawn_at = now + backoff;
        if (rt->start_failures >= 3)
            rt->broken = true;
    } else {
        w->respawn_at = now;
    }
    if (!j)
        return;
    atomic_fetch_add(&rt->n_calls, 1);
    atomic_fetch_add(&rt->n_killed, 1);
    long long dur = now - w->started;
    if (why && !strcmp(why, "Timeout")) {
        finish_error(j, "Timeout", "function exceeded the time limit", dur);
    } else if (why && !strcmp(why, "MemoryLimit")) {
        finish_error(j, "MemoryLimit", "function exceeded the memory limit (resident memory over the cap)", dur);
    } else if (errtail_has(w, "out of memory") || errtail_has(w, "OOM") || errtail_has(w, "Allocation failed") ||
               errtail_has(w, "heap limit") || errtail_has(w, "Last few GCs")) {
        finish_error(j, "MemoryLimit", "function exceeded the memory limit (the worker ran out of memory)", dur);
    } else {
        char msg[128];
        if (WIFSIGNALED(status))
            snprintf(msg, sizeof msg, "the function's worker process died (signal %d)", WTERMSIG(status));
        else
            snprintf(msg, sizeof msg, "the function's worker process exited (status %d)", WEXITSTATUS(status));
        /* SIGSEGV/SIGABRT/SIGKILL from the kernel here are nearly always the address-space cap */
        if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT ||
                                    WTERMSIG(status) == SIGBUS || WTERMSIG(status) == SIGTRAP))
            finish_error(j, "MemoryLimit", msg, dur);
        else
            finish_error(j, "WorkerCrashed", msg, dur);
    }
    job_free(j);
}

static void worker_flush(worker *w)
{
    while (w->woff < w->wb.len) {
        ssize_t n = write(w->in, w->wb.data + w->woff, w->wb.len - w->woff);
        if (n > 0) {
            w->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return; /* EAGAIN: POLLOUT later; EPIPE: the read side notices the death */
        }
    }
    w->wb.len = 0;
    w->woff = 0;
}

/* Resident memory of the worker: V8's heap limit and RLIMIT_AS catch most of it, but memory
 * that is written to (Buffers filled with data) is stopped here, before the box swaps. */
static size_t worker_rss(const worker *w)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)w->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long size = 0, rss = 0;
    int n = fscanf(f, "%lu %lu", &size, &rss);
    fclose(f);
    return n == 2 ? (size_t)rss * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* The worker's clock starts for its next call (now: when the previous answer came). */
static void worker_run_next(worker *w, long long now)
{
    w->started = now;
    w->deadline = now + w->cur->timeout_ms + GRACE_MS;
    w->mem_check_at = now + MEM_CHECK_MS;
}

/* Queues the call's frame for the worker (written by worker_flush after the dispatch). */
static void worker_assign(fnrt *rt, worker *w, job *j, long long now)
{
    j->next = NULL;
    if (w->cur) {
        w->pipe_tail->next = j;
        atomic_fetch_add(&rt->n_sent_ahead, 1);
    } else {
        w->cur = j;
        w->state = W_BUSY;
        worker_run_next(w, now);
    }
    w->pipe_tail = j;
    w->depth++;
    buf_append(&w->wb, j->frame, j->frame_len);
    if (j->key)
        worker_add_key(w, j->key);
}

/* A busy worker that may take j ahead of its answer: it runs j's instance and nothing else,
 * has room, is not being retired, and its running call is young. The least deep wins. */
static worker *pipeline_for(fnrt *rt, const job *j, long long now)
{
    worker *best = NULL;
    for (int i = 0; i < rt->nworkers && j->key; i++) {
        worker *w = &rt->w[i];
        if (w->state != W_BUSY || w->draining || w->as_gen != rt->as_gen || w->depth >= PIPE_DEPTH ||
            now - w->started > PIPE_STALL_MS || !w->pipe_tail->key || strcmp(w->pipe_tail->key, j->key))
            continue;
        if (!best || w->depth < best->depth)
            best = w;
    }
    return best;
}

/* Once node has started, its own address-space reservations are known (they differ between
 * Node versions: ~650 MiB on 20, ~250 MiB on 18): RLIMIT_AS becomes that plus the memory
 * limit plus room for the thread pool, so that a 512 MiB Buffer fails on every version.
 * The worker's limit is lowered in place when the kernel lets us (its owner, or root with
 * CAP_SYS_RESOURCE); otherwise every worker started before this calibration is replaced as
 * soon as it is idle, and later ones start with the calibrated limit. */
static void worker_calibrate_as(fnrt *rt, worker *w)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)w->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    unsigned long pages = 0;
    int n = fscanf(f, "%lu", &pages);
    fclose(f);
    if (n != 1 || !pages)
        return;
    size_t want = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE) + ((rt->memory_mb + 64) << 20);
    if (want + (64 << 20) >= w->as_start) {
        w->as_gen = rt->as_gen; /* the limit it started with is close enough */
        return;
    }
    struct rlimit rl = {want, want};
    if (prlimit(w->pid, RLIMIT_AS, &rl, NULL) == 0) {
        w->as_gen = rt->as_gen;
        w->as_start = want;
        return;
    }
    if (rt->as_calibrated)
        return; /* this worker predates the calibration: replaced when idle */
    rt->as_calibrated = true;
    rt->cage.as_bytes = want;
    rt->as_gen++;
    log_debug("functions: RLIMIT_AS calibrated to %zu MiB (node reserves %lu pages)", want >> 20, pages);
}

/* Handles one frame from the worker; false when the worker broke the protocol. */
static bool worker_frame(fnrt *rt, worker *w, const char *p, size_t n, long long now)
{
    char err[160];
    json_t *m = json_parse_strict(p, n, err, sizeof err);
    if (!json_is_object(m)) {
        json_decref(m);
        return false;
    }
    if (json_is_true(json_object_get(m, "ready"))) {
        if (w->state == W_STARTING) {
            worker_calibrate_as(rt, w);
            w->state = W_IDLE;
            rt->start_failures = 0;
            rt->broken = false;
        }
        json_decref(m);
        return true;
    }
    job *j = w->cur;
    if (w->state != W_BUSY || !j || json_integer_value(json_object_get(m, "id")) != j->id) {
        json_decref(m);
        return true; /* a late answer to a call already answered: ignored */
    }
    bool retire = false;
    long long duration = now - w->started;
    w->cur = j->next;
    w->depth--;
    if (w->cur) {
        worker_run_next(w, now);
    } else {
        w->pipe_tail = NULL;
        w->state = W_IDLE;
    }
    atomic_fetch_add(&rt->n_calls, 1);
    finish_reply(j, m, duration, &retire);
    job_free(j);
    json_decref(m);
    if (retire)
        w->draining = true; /* the calls sent ahead may have started: let them finish */
    if (w->draining && w->state == W_IDLE)
        worker_down(rt, w, "retire", now);
    return true;
}

static void worker_read(fnrt *rt, worker *w, long long now)
{
    char tmp[65536];
    for (;;) {
        ssize_t n = read(w->out, tmp, sizeof tmp);
        if (n > 0) {
            buf_append(&w->rb, tmp, (size_t)n);
            size_t off = 0;
            for (;;) {
                const char *p;
                size_t plen;
                ssize_t used = frame_next(w->rb.data + off, w->rb.len - off, FRAME_MAX, &p, &plen);
                if (used < 0 || (used > 0 && !worker_frame(rt, w, p, plen, now))) {
                    worker_down(rt, w, NULL, now);
                    return;
                }
                if (used == 0)
                    break;
                off += (size_t)used;
                if (w->state == W_DEAD)
                    return;
            }
            if (off) {
                memmove(w->rb.data, w->rb.data + off, w->rb.len - off);
                w->rb.len -= off;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        worker_down(rt, w, NULL, now); /* EOF or error: the worker is gone */
        return;
    }
}

/* ---- scheduling ---------------------------------------------------------------------------- */
static void take_queued(fnrt *rt)
{
    pthread_mutex_lock(&rt->mu);
    if (rt->qhead) {
        if (rt->rtail)
            rt->rtail->next = rt->qhead;
        else
            rt->rhead = rt->qhead;
        rt->rtail = rt->qtail;
        rt->qhead = rt->qtail = NULL;
    }
    pthread_mutex_unlock(&rt->mu);
}

static void dequeued(fnrt *rt)
{
    pthread_mutex_lock(&rt->mu);
    rt->qlen--;
    pthread_mutex_unlock(&rt->mu);
}

/* How long a call may wait for a worker: long enough to ride out a worker being killed and
 * replaced behind another call's time limit, short enough that a stuck pool answers. */
static long long queue_limit(const job *j) { return 2LL * j->timeout_ms + 5000; }

static void dispatch(fnrt *rt, long long now)
{
    job **pp = &rt->rhead, *prev = NULL;
    while (*pp) {
        job *j = *pp;
        const char *fail = NULL, *fail_msg = NULL;
        worker *pick = NULL;
        if (j->pre_name) {
            fail = j->pre_name;
            fail_msg = j->pre_message;
        } else if (!rt->available || rt->broken) {
            fail = "RuntimeUnavailable";
            fail_msg = "runtime unavailable";
        } else if (now - j->queued_at > queue_limit(j)) {
            fail = "Timeout";
            fail_msg = "the call waited in the queue past its time limit";
        } else {
            for (int i = 0; i < rt->nworkers && j->key; i++)
                if (rt->w[i].state == W_IDLE && worker_has_key(&rt->w[i], j->key)) {
                    pick = &rt->w[i];
                    break;
                }
            for (int i = 0; i < rt->nworkers && !pick; i++)
                if (rt->w[i].state == W_IDLE)
                    pick = &rt->w[i];
            if (!pick)
                pick = pipeline_for(rt, j, now);
            if (!pick)
                return; /* FIFO: nothing behind the head overtakes it */
        }
        *pp = j->next;
        if (rt->rtail == j)
            rt->rtail = prev;
        j->next = NULL;
        dequeued(rt);
        if (fail) {
            finish_error(j, fail, fail_msg, now - j->queued_at);
            job_free(j);
        } else {
            worker_assign(rt, pick, j, now);
        }
    }
}

static void *runtime_main(void *arg)
{
    fnrt *rt = arg;
    /* A worker that dies while we write to it must give EPIPE, not kill the server (or the
     * CLI) with SIGPIPE: blocked in this thread, the signal stays pending and harmless. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    struct pollfd pfd[1 + 3 * MAX_WORKERS];
    worker *who[1 + 3 * MAX_WORKERS];
    int what[1 + 3 * MAX_WORKERS];
    for (;;) {
        long long now = mono_ms();
        take_queued(rt);
        pthread_mutex_lock(&rt->mu);
        bool stop = rt->stop;
        pthread_mutex_unlock(&rt->mu);
        if (stop)
            break;
        if (rt->available)
            for (int i = 0; i < rt->nworkers; i++) {
                worker *w = &rt->w[i];
                if (w->state == W_DEAD && now >= w->respawn_at)
                    worker_start(rt, w, now);
                else if ((w->state == W_BUSY || w->state == W_STARTING) && now >= w->deadline)
                    worker_down(rt, w, w->state == W_BUSY ? "Timeout" : NULL, now);
                else if (w->state == W_IDLE && w->as_gen != rt->as_gen)
                    worker_down(rt, w, "retire", now); /* started with the uncalibrated limit */
                else if (w->state == W_BUSY && now >= w->mem_check_at) {
                    w->mem_check_at = now + MEM_CHECK_MS;
                    if (worker_rss(w) > rt->rss_cap)
                        worker_down(rt, w, "MemoryLimit", now);
                }
            }
        dispatch(rt, now);
        for (int i = 0; i < rt->nworkers; i++)
            if (rt->w[i].state != W_DEAD && rt->w[i].woff < rt->w[i].wb.len)
                worker_flush(&rt->w[i]);
        int n = 0;
        long long wait = 1000;
        pfd[n] = (struct pollfd){.fd = rt->wake, .events = POLLIN};
        who[n] = NULL;
        what[n++] = 0;
        for (int i = 0; i < rt->nworkers; i++) {
            worker *w = &rt->w[i];
            if (w->state == W_DEAD) {
                if (rt->available && w->respawn_at - now < wait)
                    wait = w->respawn_at - now;
                continue;
            }
            pfd[n] = (struct pollfd){.fd = w->out, .events = POLLIN};
            who[n] = w;
            what[n++] = 1;
            pfd[n] = (struct pollfd){.fd = w->err, .events = POLLIN};
            who[n] = w;
            what[n++] = 2;
            if (w->woff < w->wb.len) {
                pfd[n] = (struct pollfd){.fd = w->in, .events = POLLOUT};
                who[n] = w;
                what[n++] = 3;
            }
            if ((w->state == W_BUSY || w->state == W_STARTING) && w->deadline - now < wait)
                wait = w->deadline - now;
            if (w->state == W_BUSY && w->mem_check_at - now < wait)
                wait = w->mem_check_at - now;
        }
        for (job *j = rt->rhead; j; j = j->next)
            if (j->queued_at + queue_limit(j) - now < wait)
                wait = j->queued_at + queue_limit(j) - now;
        if (wait < 0)
            wait = 0;
        int rc = poll(pfd, (nfds_t)n, (int)wait);
        if (rc < 0 && errno != EINTR)
            break;
        now = mono_ms();
        if (rc > 0 && (pfd[0].revents & POLLIN)) {
            uint64_t v;
            if (read(rt->wake, &v, sizeof v) < 0) { /* nothing to do: level-triggered */ }
        }
        for (int i = 1; i < n && rc > 0; i++) {
            worker *w = who[i];
            if (!pfd[i].revents || w->state == W_DEAD)
                continue;
            if (what[i] == 1)
                worker_read(rt, w, now);
            else if (what[i] == 2)
                worker_drain_err(w);
            else if (what[i] == 3)
                worker_flush(w);
        }
    }
    /* stopping: every call still here gets its answer, every worker goes */
    long long now = mono_ms();
    for (int i = 0; i < rt->nworkers; i++) {
        worker *w = &rt->w[i];
        while (w->cur) {
            job *j = w->cur;
            w->cur = j->next;
            finish_error(j, "RuntimeUnavailable", "the runtime stopped", now - w->started);
            job_free(j);
        }
        if (w->state != W_DEAD)
            worker_reap(w);
        buf_free(&w->wb);
        buf_free(&w->rb);
    }
    take_queued(rt);
    while (rt->rhead) {
        job *j = rt->rhead;
        rt->rhead = j->next;
        finish_error(j, "RuntimeUnavailable", "the runtime stopped", 0);
        job_free(j);
    }
    return NULL;
}

/* ---- public interface ---------------------------------------------------------------------- */
fnrt *fnrt_start(const fnrt_config *cfg)
{
    fnrt_config none = {0};
    if (!cfg)
        cfg = &none;
    fnrt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    pthread_mutex_init(&rt->mu, NULL);
    rt->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rt->nworkers = cfg->workers > 0 ? cfg->workers : env_int("MANIFOLD_FUNCTION_WORKERS", 2);
    if (rt->nworkers > MAX_WORKERS)
        rt->nworkers = MAX_WORKERS;
    rt->memory_mb = cfg->memory_mb ? cfg->memory_mb : (size_t)env_int("MANIFOLD_FUNCTION_MEMORY_MB", 256);
    rt->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : env_int("MANIFOLD_FUNCTION_TIMEOUT_MS", 5000);
    rt->qmax = env_int("MANIFOLD_FUNCTION_QUEUE", 1000);
    rt->cage.landlock_fd = -1;
    for (int i = 0; i < MAX_WORKERS; i++)
        rt->w[i].in = rt->w[i].out = rt->w[i].err = -1;

    char node[1024];
    if (cage_find_node(cfg->node, node, sizeof node)) {
        rt->source = load_worker_source(&rt->source_len);
        if (!rt->source)
            log_warn("functions: runtime/worker.js not found (set MANIFOLD_FUNCTIONS_WORKER); functions are unavailable");
    } else {
        log_warn("functions: no Node.js found (install Debian's nodejs); functions are unavailable");
    }
    if (rt->source) {
        rt->available = true;
        /* V8 reserves address space far beyond what it uses (code range, heap cages, thread
         * stacks): RLIMIT_AS = that base + the heap limit with room for Buffers and code. */
        size_t base_mb = (size_t)env_int("MANIFOLD_FUNCTION_AS_BASE_MB", 700);
        unsigned cpu_s = (unsigned)env_int("MANIFOLD_FUNCTION_CPU_SECONDS", 300);
        /* memory_mb caps the whole worker's resident memory (node itself is ~50 MiB of it) */
        rt->rss_cap = rt->memory_mb << 20;
        cage_prepare(&rt->cage, node, (base_mb + rt->memory_mb) << 20, cpu_s);
        json_t *c = json_pack("{s:s, s:s, s:s, s:I}", "op", "config", "deny",
                              getenv("MANIFOLD_OUTBOUND_DENY") ? getenv("MANIFOLD_OUTBOUND_DENY") : "", "allow",
                              getenv("MANIFOLD_OUTBOUND_ALLOW") ? getenv("MANIFOLD_OUTBOUND_ALLOW") : "",
                              "cpuBudgetMs", (json_int_t)cpu_s * 1000);
        rt->config_frame = json_dumps(c, JSON_COMPACT);
        json_decref(c);
        snprintf(rt->argbuf[0], sizeof rt->argbuf[0], "--max-old-space-size=%zu",
                 rt->memory_mb * 3 / 4 > 16 ? rt->memory_mb * 3 / 4 : 16);
        int a = 0;
        rt->argv[a++] = rt->cage.node;
        rt->argv[a++] = rt->argbuf[0];
        rt->argv[a++] = (char *)"--v8-pool-size=1";
        rt->argv[a++] = (char *)"--frozen-intrinsics";
        rt->argv[a++] = (char *)"--disallow-code-generation-from-strings";
        rt->argv[a++] = (char *)"--no-warnings";
        rt->argv[a++] = (char *)"-e";
        rt->argv[a++] = (char *)BOOT;
        rt->argv[a] = NULL;
        log_info("functions: %d worker(s), %zu MiB, %d ms; cage: %s", rt->nworkers, rt->memory_mb, rt->timeout_ms,
                 rt->cage.report);
    }
    rt->thread_ok = pthread_create(&rt->thread, NULL, runtime_main, rt) == 0;
    return rt;
}

void fnrt_invoke(fnrt *rt, const fn_call *call, fn_done done, void *ctx)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        fn_result r = {.error_name = (char *)"RuntimeUnavailable", .error_message = (char *)"out of memory",
                       .error_reason = (char *)"runtime unavailable"};
        done(ctx, &r);
        return;
    }
    j->done = done;
    j->ctx = ctx;
    j->timeout_ms = call->timeout_ms > 0 ? call->timeout_ms : rt->timeout_ms;
    j->queued_at = mono_ms();
    static const char *const kinds[] = {"source", "destination", "insert", "batch"};
    const char *kind = (unsigned)call->kind < 4 ? kinds[call->kind] : "destination";
    bool fresh = call->fresh || !call->instance;
    pthread_mutex_lock(&rt->mu);
    j->id = ++rt->next_id;
    bool full = rt->qlen >= rt->qmax;
    if (!full)
        rt->qlen++;
    pthread_mutex_unlock(&rt->mu);
    if (!fresh) {
        buf k = {0};
        buf_printf(&k, "%s\x1f%s", call->instance, call->code_version ? call->code_version : "");
        j->key = buf_steal(&k);
    }
    /* The frame is written directly (not through jansson): it is the hot path of every call. */
    const char *code = call->code ? call->code : "", *input = call->input ? call->input : "null";
    const char *settings = call->settings ? call->settings : "{}";
    size_t lc = strlen(code), li = strlen(input), ls = strlen(settings);
    if (full) {
        j->pre_name = "Timeout";
        j->pre_message = "the runtime's queue is full";
    } else if (!utf8_valid(code, lc)) {
        j->pre_name = "SyntaxError";
        j->pre_message = "the code is not valid UTF-8";
    } else if (!utf8_valid(input, li) || !utf8_valid(settings, ls)) {
        j->pre_name = "InvalidEventPayload";
        j->pre_message = "the input or settings are not valid UTF-8";
    } else if (j->key && !utf8_valid(j->key, strlen(j->key))) {
        j->pre_name = "InvalidEventPayload";
        j->pre_message = "the call could not be encoded";
    } else {
        buf f = {0};
        buf_reserve(&f, lc + li + ls + 160);
        size_t at = frame_open(&f);
        buf_printf(&f, "{\"op\":\"invoke\",\"id\":%lld,\"kind\":\"%s\",\"fresh\":%s,\"timeout_ms\":%d,\"key\":", j->id,
                   kind, fresh ? "true" : "false", j->timeout_ms);
        if (j->key)
            json_write_string(&f, j->key, strlen(j->key));
        else
            buf_puts(&f, "null");
        buf_puts(&f, ",\"code\":");
        json_write_string(&f, code, lc);
        buf_puts(&f, ",\"input\":");
        json_write_string(&f, input, li);
        buf_puts(&f, ",\"settings\":");
        json_write_string(&f, settings, ls);
        buf_putc(&f, '}');
        frame_close(&f, at);
        j->frame_len = f.len;
        j->frame = buf_steal(&f);
    }
    if (!rt->thread_ok) {
        finish_error(j, "RuntimeUnavailable", "the runtime thread did not start", 0);
        job_free(j);
        return;
    }
    if (full) {
        /* counted nowhere: answer at once, from the runtime thread like every other answer */
        pthread_mutex_lock(&rt->mu);
        rt->qlen++;
        pthread_mutex_unlock(&rt->mu);
    }
    pthread_mutex_lock(&rt->mu);
    bool was_empty = !rt->qhead;
    if (rt->qtail)
        rt->qtail->next = j;
    else
        rt->qhead = j;
    rt->qtail = j;
    pthread_mutex_unlock(&rt->mu);
    uint64_t one = 1;
    if (was_empty && write(rt->wake, &one, sizeof one) < 0) { /* saturated: the thread is awake */ }
}

const char *fnrt_describe(fnrt *rt)
{
    if (!rt || !rt->available)
        return "unavailable: no Node.js or no runtime/worker.js";
    return rt->cage.report;
}

void fnrt_stats_get(fnrt *rt, fnrt_stats *out)
{
    *out = (fnrt_stats){atomic_load(&rt->n_calls), atomic_load(&rt->n_sent_ahead), atomic_load(&rt->n_requeued),
                        atomic_load(&rt->n_killed)};
}

bool fnrt_available(fnrt *rt) { return rt && rt->available && !rt->broken; }

void fnrt_stop(fnrt *rt)
{
    if (!rt)
        return;
    pthread_mutex_lock(&rt->mu);
    rt->stop = true;
    pthread_mutex_unlock(&rt->mu);
    uint64_t one = 1;
    if (write(rt->wake, &one, sizeof one) < 0) { /* see fnrt_invoke */ }
    if (rt->thread_ok)
        pthread_join(rt->thread, NULL);
    close(rt->wake);
    cage_release(&rt->cage);
    for (int i = 0; i < MAX_WORKERS; i++)
        worker_forget_keys(&rt->w[i]);
    free(rt->source);
    free(rt->config_frame);
    pthread_mutex_destroy(&rt->mu);
    free(rt);
}
