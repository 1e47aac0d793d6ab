/* functions/runtime — runs Segment Functions code in contained Node.js worker processes
 * (functions-runtime.md). Asynchronous: the server never blocks on a function. */
#ifndef MANIFOLD_FUNCTIONS_RUNTIME_H
#define MANIFOLD_FUNCTIONS_RUNTIME_H
#include <stdbool.h>
#include <stddef.h>

typedef enum fn_kind { FN_KIND_SOURCE, FN_KIND_DESTINATION, FN_KIND_INSERT, FN_KIND_BATCH } fn_kind;

typedef struct fn_call {
    fn_kind kind;
    const char *instance;     /* warm-context key (function instance name); ignored when fresh */
    const char *code_version; /* the warm context is recycled when this changes */
    const char *code;         /* the function's JavaScript source */
    const char *settings;     /* JSON object text (settings by name); NULL = {} */
    const char *input;        /* JSON text: SOURCE the §4.2 request payload; DESTINATION/INSERT one
                                 event; BATCH an array of events */
    bool fresh;               /* preview: a new instance (top-level code runs, cache empty), discarded after */
    int timeout_ms;           /* 0: the runtime's default (5000) */
} fn_call;

typedef struct fn_log { char *message; long long time_ms; } fn_log;

typedef struct fn_result {
    bool success;          /* handler finished without throwing, within the time limit */
    char *output;          /* JSON text; SOURCE: {"events":[...],"objects":[...]}; "null" for undefined; NULL on failure */
    char *error_name;      /* NULL on success; "ValidationError", "RetryError", "EventNotSupported",
                              "InvalidEventPayload", "DropEvent", "Timeout", "SyntaxError", "MemoryLimit",
                              "RuntimeUnavailable", or the thrown error's name */
    char *error_message;
    char *error_reason;    /* as preview shows it: "<name>: <message>", "Timeout: function exceeded 5000 ms",
                              "runtime unavailable" */
    fn_log *logs;          /* util.format text per console call, in call order, capped at 4 KB total */
    size_t nlogs;
    bool logs_truncated;
    long long duration_ms;
} fn_result;

/* Called exactly once per fnrt_invoke, from a runtime thread (possibly before fnrt_invoke
 * returns). r and everything in it is valid only during the call. */
typedef void (*fn_done)(void *ctx, const fn_result *r);

typedef struct fnrt_config {
    const char *node;        /* path of the node binary; NULL: "node" on PATH, then /usr/bin/nodejs */
    int workers;             /* worker processes; 0: 2 */
    size_t memory_mb;        /* per worker; 0: 256 */
    int timeout_ms;          /* per invocation; 0: 5000 */
} fnrt_config;

typedef struct fnrt fnrt;

/* Never NULL (except out of memory). Without Node.js every invocation answers
 * error_name "RuntimeUnavailable", error_reason "runtime unavailable". */
fnrt *fnrt_start(const fnrt_config *cfg);
void fnrt_invoke(fnrt *rt, const fn_call *call, fn_done done, void *ctx);
/* true when a Node.js worker can be started */
bool fnrt_available(fnrt *rt);
void fnrt_stop(fnrt *rt);
/* Counters since fnrt_start, for operators and tests. */
typedef struct fnrt_stats {
    unsigned long long calls;      /* answered by a worker (or by its death) */
    unsigned long long sent_ahead; /* sent to a worker that was still running a call */
    unsigned long long requeued;   /* sent ahead, taken back unstarted when the running call died */
    unsigned long long killed;     /* calls whose worker died or was killed under them */
} fnrt_stats;
void fnrt_stats_get(fnrt *rt, fnrt_stats *out);
/* What contains the workers here (Landlock ABI, seccomp, user, rlimits), or why the runtime is
 * unavailable; valid until fnrt_stop. */
const char *fnrt_describe(fnrt *rt);

#endif
