/* `manifold function …` — runs function code through the real runtime (src/functions/), for
 * users trying code locally, for the black-box tests and for the benchmark:
 *   manifold function run --type source|destination|insert --code FILE [--settings JSON]
 *                         [--input FILE|-] [--jsonl] [--instance NAME] [--workers N]
 *                         [--timeout-ms N] [--memory-mb N] [--stats]
 *   manifold function bench [--seconds S] [--workers N] [--concurrency C]
 *   manifold function info
 * `run` prints the preview-shaped result (config-api.md §13.6) as JSON; with --jsonl every
 * input line is one invocation, all submitted at once, answered one JSON line each in order. */
#include "app/function_cli.h"
#include "app/cli.h"
#include "functions/contain.h"
#include "functions/runtime.h"
#include "util/buf.h"
#include "util/util.h"
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: manifold function run --type source|destination|insert --code FILE [--settings JSON]\n"
    "                             [--input FILE|-] [--jsonl] [--instance NAME] [--workers N]\n"
    "                             [--timeout-ms N] [--memory-mb N] [--stats]\n"
    "       manifold function bench [--seconds S] [--workers N] [--concurrency C]\n"
    "       manifold function info\n"
    "       manifold function sandbox-exec --script FILE   (runs FILE as plain Node.js code, with\n"
    "                             require, inside the workers' cage: what escaped code could do)\n"
    "A destination or insert input that is a JSON array runs onBatch. Without --instance every\n"
    "invocation is a fresh instance (as preview); with it they share one warm instance.\n"
    "--stats prints the runtime's counters (calls, sent_ahead, requeued, killed) as JSON on stderr.\n";

static char *slurp(const char *path)
{
    buf b = {0};
    if (buf_read_file(&b, path) < 0)
        return NULL;
    return b.data ? buf_steal(&b) : strdup("");
}

/* ---- collecting answers from the runtime thread ------------------------------------------ */
typedef struct slot {
    json_t *result; /* preview-shaped */
    bool done;
} slot;

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
} waiter;

typedef struct call_ctx { waiter *w; slot *s; } call_ctx;

static void created_at(long long ms, char out[40])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 16, ".%03dZ", (int)(ms % 1000));
}

static json_t *preview_json(const fn_result *r)
{
    json_t *logs = json_array();
    for (size_t i = 0; i < r->nlogs; i++) {
        char ts[40];
        created_at(r->logs[i].time_ms, ts);
        json_array_append_new(logs, json_pack("{s:s, s:s}", "message", r->logs[i].message, "created_at", ts));
    }
    json_t *inv = json_pack("{s:b, s:s, s:o}", "success", r->success, "output", r->success && r->output ? r->output : "",
                            "error_reason", r->error_reason ? json_string(r->error_reason) : json_null());
    if (r->error_name)
        json_object_set_new(inv, "error_name", json_string(r->error_name));
    if (r->error_message)
        json_object_set_new(inv, "error_message", json_string(r->error_message));
    return json_pack("{s:o, s:o, s:b, s:I}", "invoke", inv, "logs", logs, "logs_truncated", r->logs_truncated,
                     "duration_ms", (json_int_t)r->duration_ms);
}

static void on_done(void *ctx, const fn_result *r)
{
    call_ctx *c = ctx;
    json_t *j = preview_json(r);
    pthread_mutex_lock(&c->w->mu);
    c->s->result = j;
    c->s->done = true;
    c->w->pending--;
    pthread_cond_signal(&c->w->cv);
    pthread_mutex_unlock(&c->w->mu);
    free(c);
}

static void wait_all(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void submit(fnrt *rt, waiter *w, slot *s, const fn_call *call)
{
    call_ctx *c = malloc(sizeof *c);
    c->w = w;
    c->s = s;
    pthread_mutex_lock(&w->mu);
    w->pending++;
    pthread_mutex_unlock(&w->mu);
    fnrt_invoke(rt, call, on_done, c);
}

static fnrt_config config_from(int argc, char **argv)
{
    fnrt_config cfg = {0};
    const char *v;
    if ((v = cli_opt(argc, argv, "--workers")))
        cfg.workers = atoi(v);
    if ((v = cli_opt(argc, argv, "--memory-mb")))
        cfg.memory_mb = (size_t)atol(v);
    if ((v = cli_opt(argc, argv, "--timeout-ms")))
        cfg.timeout_ms = atoi(v);
    cfg.node = cli_opt(argc, argv, "--node");
    return cfg;
}

static bool is_array_text(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '[';
}

static int cmd_run(int argc, char **argv)
{
    const char *type = cli_opt(argc, argv, "--type");
    const char *code_path = cli_opt(argc, argv, "--code");
    const char *input_path = cli_opt(argc, argv, "--input");
    const char *settings = cli_opt(argc, argv, "--settings");
    const char *instance = cli_opt(argc, argv, "--instance");
    if (!type || !code_path) {
        fputs(usage, stderr);
        return 2;
    }
    fn_kind kind;
    if (!strcmp(type, "source"))
        kind = FN_KIND_SOURCE;
    else if (!strcmp(type, "destination"))
        kind = FN_KIND_DESTINATION;
    else if (!strcmp(type, "insert"))
        kind = FN_KIND_INSERT;
    else if (!strcmp(type, "batch"))
        kind = FN_KIND_BATCH;
    else {
        fprintf(stderr, "manifold function run: --type must be source, destination or insert\n");
        return 2;
    }
    char *code = slurp(code_path);
    if (!code) {
        fprintf(stderr, "manifold function run: cannot read %s\n", code_path);
        return 2;
    }
    char *input = slurp(input_path ? input_path : "-");
    if (!input) {
        fprintf(stderr, "manifold function run: cannot read %s\n", input_path);
        free(code);
        return 2;
    }
    /* the inputs: the whole text, or one per non-empty line */
    size_t n = 0, cap = 16;
    char **inputs = malloc(cap * sizeof *inputs);
    if (cli_flag(argc, argv, "--jsonl")) {
        for (char *save = NULL, *line = strtok_r(input, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (!*line || !strcmp(line, "\r"))
                continue;
            if (n == cap)
                inputs = realloc(inputs, (cap *= 2) * sizeof *inputs);
            inputs[n++] = line;
        }
    } else {
        inputs[n++] = input;
    }
    fnrt_config cfg = config_from(argc, argv);
    fnrt *rt = fnrt_start(&cfg);
    slot *slots = calloc(n ? n : 1, sizeof *slots);
    waiter w = {.pending = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    for (size_t i = 0; i < n; i++) {
        fn_call call = {
            .kind = kind,
            .instance = instance,
            .code_version = "1",
            .code = code,
            .settings = settings,
            .input = inputs[i],
            .fresh = instance == NULL,
        };
        if ((kind == FN_KIND_DESTINATION || kind == FN_KIND_INSERT) && is_array_text(inputs[i]))
            call.kind = FN_KIND_BATCH;
        submit(rt, &w, &slots[i], &call);
    }
    wait_all(&w);
    if (cli_flag(argc, argv, "--stats")) {
        fnrt_stats st;
        fnrt_stats_get(rt, &st);
        fprintf(stderr, "{\"calls\":%llu,\"sent_ahead\":%llu,\"requeued\":%llu,\"killed\":%llu}\n", st.calls,
                st.sent_ahead, st.requeued, st.killed);
    }
    fnrt_stop(rt);
    for (size_t i = 0; i < n; i++) {
        char *s = json_dumps(slots[i].result, JSON_COMPACT | (n == 1 ? JSON_INDENT(2) : 0));
        puts(s);
        free(s);
        json_decref(slots[i].result);
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    free(slots);
    free(inputs);
    free(input);
    free(code);
    return 0;
}

/* ---- bench: warm invocations per second and cold starts ------------------------------------ */
typedef struct bench_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long long done, failed, inflight;
    fnrt *rt;
    const fn_call *refill; /* warm phase: the call each answer submits again, until end_ms */
    long long end_ms;
} bench_state;

/* In the warm phase every answer submits the next call itself (the runtime allows that from
 * its callback), so `conc` calls stay in flight without a thread hand-off per call: what is
 * measured is the runtime, not this driver. */
static void bench_done(void *ctx, const fn_result *r)
{
    bench_state *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->done++;
    if (!r->success)
        b->failed++;
    bool again = b->refill && mono_ms() < b->end_ms;
    if (!again) {
        b->inflight--;
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (again)
        fnrt_invoke(b->rt, b->refill, bench_done, b);
}

static const char bench_code[] = "async function onTrack(event, settings) { return { ok: true, n: event.properties.n } }";
static const char bench_event[] = "{\"type\":\"track\",\"event\":\"Bench\",\"userId\":\"u\",\"properties\":{\"n\":1}}";

static int cmd_bench(int argc, char **argv)
{
    double seconds = cli_opt(argc, argv, "--seconds") ? atof(cli_opt(argc, argv, "--seconds")) : 3.0;
    int conc = cli_opt(argc, argv, "--concurrency") ? atoi(cli_opt(argc, argv, "--concurrency")) : 32;
    if (conc < 1)
        conc = 1;
    fnrt_config cfg = config_from(argc, argv);
    /* cold start: a new runtime, its first worker ready, first invocation answered */
    long long t0 = mono_ms();
    fnrt *rt = fnrt_start(&cfg);
    if (!fnrt_available(rt)) {
        fprintf(stderr, "manifold function bench: the runtime is unavailable (no Node.js?)\n");
        fnrt_stop(rt);
        return 1;
    }
    bench_state b = {0};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    fn_call call = {.kind = FN_KIND_DESTINATION, .instance = "bench", .code_version = "1", .code = bench_code,
                    .input = bench_event};
    b.inflight = 1;
    fnrt_invoke(rt, &call, bench_done, &b);
    pthread_mutex_lock(&b.mu);
    while (b.inflight)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    long long cold_process = mono_ms() - t0;
    /* cold instance: a fresh context (top-level code) on an already running worker */
    long long fresh_total = 0;
    int fresh_n = 10;
    for (int i = 0; i < fresh_n; i++) {
        fn_call f = call;
        f.fresh = true;
        long long s = mono_ms();
        b.inflight = 1;
        fnrt_invoke(rt, &f, bench_done, &b);
        pthread_mutex_lock(&b.mu);
        while (b.inflight)
            pthread_cond_wait(&b.cv, &b.mu);
        pthread_mutex_unlock(&b.mu);
        fresh_total += mono_ms() - s;
    }
    /* warm: keep `conc` calls in flight for `seconds` */
    long long start = mono_ms();
    pthread_mutex_lock(&b.mu);
    b.done = b.failed = 0;
    b.rt = rt;
    b.refill = &call;
    b.end_ms = start + (long long)(seconds * 1000);
    b.inflight = conc;
    pthread_mutex_unlock(&b.mu);
    for (int i = 0; i < conc; i++)
        fnrt_invoke(rt, &call, bench_done, &b);
    pthread_mutex_lock(&b.mu);
    while (b.inflight)
        pthread_cond_wait(&b.cv, &b.mu);
    long long done = b.done, failed = b.failed;
    pthread_mutex_unlock(&b.mu);
    long long elapsed = mono_ms() - start;
    fnrt_stop(rt);
    printf("{\"warm_invocations\": %lld, \"failed\": %lld, \"seconds\": %.3f, \"warm_per_second\": %.0f, "
           "\"cold_start_process_ms\": %lld, \"cold_start_instance_ms\": %.1f, \"concurrency\": %d}\n",
           done, failed, elapsed / 1000.0, elapsed ? done * 1000.0 / elapsed : 0.0, cold_process,
           (double)fresh_total / fresh_n, conc);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return failed ? 1 : 0;
}

static int cmd_info(int argc, char **argv)
{
    fnrt_config cfg = config_from(argc, argv);
    fnrt *rt = fnrt_start(&cfg);
    json_t *o = json_pack("{s:b, s:s}", "available", fnrt_available(rt), "cage", fnrt_describe(rt));
    fnrt_stop(rt);
    char *s = json_dumps(o, JSON_INDENT(2));
    puts(s);
    free(s);
    json_decref(o);
    return 0;
}

/* Runs a script with full Node.js powers inside the same cage as a worker, so that tests and
 * operators can see what code that escaped its vm context could do here. Prints the script's
 * stdout and stderr; the exit status is the script's. */
static int cmd_sandbox_exec(int argc, char **argv)
{
    const char *path = cli_opt(argc, argv, "--script");
    char *script = path ? slurp(path) : NULL;
    if (!script) {
        fputs(usage, stderr);
        return 2;
    }
    char node[1024];
    if (!cage_find_node(cli_opt(argc, argv, "--node"), node, sizeof node)) {
        fprintf(stderr, "manifold function sandbox-exec: no Node.js\n");
        free(script);
        return 1;
    }
    fn_cage c;
    size_t mem = cli_opt(argc, argv, "--memory-mb") ? (size_t)atol(cli_opt(argc, argv, "--memory-mb")) : 256;
    cage_prepare(&c, node, (700 + mem) << 20, 60);
    char heap[64];
    snprintf(heap, sizeof heap, "--max-old-space-size=%zu", mem);
    char *av[] = {c.node, heap, (char *)"--v8-pool-size=1", (char *)"--no-warnings", (char *)"-e", script, NULL};
    int in, out, err;
    char dir[32];
    pid_t pid = cage_spawn(&c, av, &in, &out, &err, dir);
    cage_release(&c);
    free(script);
    if (pid < 0) {
        fprintf(stderr, "manifold function sandbox-exec: spawn failed\n");
        return 1;
    }
    close(in);
    struct pollfd p[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
    int open_fds = 2;
    while (open_fds) {
        if (poll(p, 2, 30000) <= 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char tmp[4096];
            ssize_t n = read(p[i].fd, tmp, sizeof tmp);
            if (n > 0) {
                fwrite(tmp, 1, (size_t)n, i ? stderr : stdout);
            } else if (n == 0 || (n < 0 && errno != EAGAIN)) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    rmdir(dir);
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    fflush(stdout);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int function_cli(int argc, char **argv)
{
    /* stdout is the result; only warnings (a worker that cannot start) go to stderr */
    log_level = cli_flag(argc, argv, "--verbose") ? LOG_DEBUG : LOG_WARN;
    if (argc >= 1 && !strcmp(argv[0], "run"))
        return cmd_run(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "sandbox-exec"))
        return cmd_sandbox_exec(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "info"))
        return cmd_info(argc - 1, argv + 1);
    fputs(usage, argc >= 1 && !strcmp(argv[0], "--help") ? stdout : stderr);
    return argc >= 1 && !strcmp(argv[0], "--help") ? 0 : 2;
}
