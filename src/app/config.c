#include "app/config.h"
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char config_usage[] =
    "usage: manifold serve [flags]   (each flag also as MANIFOLD_<FLAG>, e.g. MANIFOLD_LISTEN)\n"
    "  --listen HOST:PORT           address to serve on (default 127.0.0.1:8080)\n"
    "  --database PATH|postgres://  SQLite file or PostgreSQL URL (default var/manifold.db)\n"
    "  --catalog DIR                catalog JSON directory (default: data/catalog of the install)\n"
    "  --key-file PATH              32-byte server key for token hashes (default: beside the database)\n"
    "  --rate-limit N               requests per second per token, 0 disables (default 60)\n"
    "  --max-body BYTES             largest request body (default 1048576)\n"
    "  --max-plan-body BYTES        largest tracking-plan create/update body (default 8388608)\n"
    "  --bootstrap-workspace SLUG   workspace created on first start (default myworkspace)\n"
    "  --bootstrap-email EMAIL      owner user created on first start (default owner@example.com)\n"
    "  --threads N                  HTTP worker threads (default: 2 per CPU on SQLite, 8 on PostgreSQL)\n"
    "  --max-connections N          open connections in total (default 1024)\n"
    "  --max-per-ip N               open connections per client address (default 256)\n"
    "  --idle-timeout SECONDS       close connections idle this long (default 30)\n"
    "  --request-timeout SECONDS    deadline for one whole request (default 30)\n"
    "  --max-header-bytes BYTES     per-connection header buffer; larger headers get 431 (default 32768)\n"
    "  --db-connections N           database reader connections (default 4)\n"
    "  --log-level LEVEL            error|warn|info|debug (default info)\n"
    "  --log-format FORMAT          text|json: json writes one JSON object per line (default text)\n"
    "  --access-log on|off          one log line per answered request, at info (default on)\n"
    "  --metrics on|off             serve GET /metrics, Prometheus text format, no token (default on)\n"
    "  --intake-listen HOST:PORT    serve the Tracking API (/v1/track, /v1/batch, ...) on its own listener\n"
    "                               (default: on --listen, beside the Config API)\n"
    "  --strict-write-keys          unknown write keys get 401 instead of Segment's 200\n"
    "  --intake-backlog N           Tracking API requests in progress before 503 + Retry-After (default 4096)\n"
    "  --debugger-events N          events per source the debugger API shows (default 1000)\n"
    "  --delivery 0|1               deliver events to cloud-mode destinations (default 1); retries and the\n"
    "                               outbound policy: MANIFOLD_RETRY_* and MANIFOLD_OUTBOUND_* (docs/delivery.md)\n"
    "  --functions-node PATH        Node.js binary that runs Functions code (default: node on PATH)\n"
    "  --functions-workers N        Node.js worker processes for Functions (default 2)\n"
    "  --functions-memory-mb N      memory limit per Functions worker (default 256)\n"
    "  --functions-per-workspace N  functions a workspace may have, 0 for no limit (default 25)\n";

typedef enum { T_STR, T_INT, T_SIZE, T_UINT, T_HOSTPORT, T_BOOL } ftype;

typedef struct flag {
    const char *name;
    ftype type;
    size_t off, cap;
    long long min, max;
    size_t port_off; /* T_HOSTPORT: where the port goes (the host goes to off) */
} flag;

#define F(n, t, field, lo, hi) {n, t, offsetof(config, field), sizeof(((config *)0)->field), lo, hi, 0}
#define HP(n, host, port) {n, T_HOSTPORT, offsetof(config, host), sizeof(((config *)0)->host), 0, 0, offsetof(config, port)}
static const flag flags[] = {
    HP("listen", listen_host, listen_port),
    F("database", T_STR, database, 0, 0),
    F("catalog", T_STR, catalog, 0, 0),
    F("key-file", T_STR, key_file, 0, 0),
    F("rate-limit", T_INT, rate_limit, 0, 1000000000),
    F("max-body", T_SIZE, max_body, 1024, 1LL << 30),
    F("max-plan-body", T_SIZE, max_plan_body, 1024, 1LL << 30),
    F("bootstrap-workspace", T_STR, bootstrap_workspace, 0, 0),
    F("bootstrap-email", T_STR, bootstrap_email, 0, 0),
    F("threads", T_UINT, threads, 1, 256),
    F("max-connections", T_UINT, max_connections, 1, 1000000),
    F("max-per-ip", T_UINT, max_per_ip, 1, 1000000),
    F("idle-timeout", T_UINT, idle_timeout, 1, 86400),
    F("request-timeout", T_UINT, request_timeout, 1, 86400),
    F("max-header-bytes", T_SIZE, max_header_bytes, 4096, 1 << 24),
    F("db-connections", T_INT, db_connections, 1, 256),
    F("log-level", T_STR, log_level, 0, 0),
    F("log-format", T_STR, log_format, 0, 0),
    F("access-log", T_STR, access_log, 0, 0),
    F("metrics", T_STR, metrics, 0, 0),
    HP("intake-listen", intake_listen_host, intake_listen_port),
    F("strict-write-keys", T_BOOL, strict_write_keys, 0, 1),
    F("intake-backlog", T_INT, intake_backlog, 1, 10000000),
    F("debugger-events", T_INT, debugger_events, 1, 1000000),
    F("delivery", T_INT, delivery, 0, 1),
    F("functions-node", T_STR, functions_node, 0, 0),
    F("functions-workers", T_INT, functions_workers, 1, 256),
    F("functions-memory-mb", T_INT, functions_memory_mb, 16, 65536),
    F("functions-per-workspace", T_INT, functions_per_workspace, 0, 1000000),
};

static int set(config *cfg, const flag *f, const char *v, const char *src, char *err, size_t errlen)
{
    char *p = (char *)cfg + f->off;
    if (f->type == T_STR) {
        if (strlen(v) >= f->cap || !*v) {
            snprintf(err, errlen, "%s: value for %s must be 1 to %zu bytes", src, f->name, f->cap - 1);
            return -1;
        }
        memcpy(p, v, strlen(v) + 1);
        return 0;
    }
    if (f->type == T_HOSTPORT) {
        const char *colon = strrchr(v, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        size_t hl = colon ? (size_t)(colon - v) : 0;
        if (!colon || *end || colon[1] == '\0' || port < 0 || port > 65535 || hl == 0 || hl >= f->cap) {
            snprintf(err, errlen, "%s: --%s wants HOST:PORT, got '%s'", src, f->name, v);
            return -1;
        }
        /* [::1]:8080 → ::1 */
        const char *h = v;
        if (h[0] == '[' && colon[-1] == ']')
            h++, hl -= 2;
        memcpy(p, h, hl);
        p[hl] = '\0';
        *(int *)((char *)cfg + f->port_off) = (int)port;
        return 0;
    }
    if (f->type == T_BOOL) {
        bool yes = !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes");
        if (!yes && strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "no")) {
            snprintf(err, errlen, "%s: %s must be true or false, got '%s'", src, f->name, v);
            return -1;
        }
        *(int *)p = yes;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || end == v || n < f->min || n > f->max) {
        snprintf(err, errlen, "%s: %s must be an integer from %lld to %lld, got '%s'", src, f->name, f->min, f->max, v);
        return -1;
    }
    if (f->type == T_INT)
        *(int *)p = (int)n;
    else if (f->type == T_UINT)
        *(unsigned *)p = (unsigned)n;
    else
        *(size_t *)p = (size_t)n;
    return 0;
}

int config_parse(config *cfg, int argc, char **argv, const char *(*getenv_fn)(const char *),
                 char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    snprintf(cfg->database, sizeof cfg->database, "var/manifold.db");
    cfg->rate_limit = 60;
    cfg->max_body = 1 << 20;
    /* A 2,000-rule tracking plan is 1.5-3 MB of JSON. */
    cfg->max_plan_body = 8 << 20;
    snprintf(cfg->bootstrap_workspace, sizeof cfg->bootstrap_workspace, "myworkspace");
    snprintf(cfg->bootstrap_email, sizeof cfg->bootstrap_email, "owner@example.com");
    cfg->threads = 0; /* 0: number of CPUs, resolved by the caller */
    cfg->max_connections = 1024;
    cfg->max_per_ip = 256;
    cfg->idle_timeout = 30;
    cfg->request_timeout = 30;
    /* libmicrohttpd zeroes this much per request on keep-alive connections: keep it small. */
    cfg->max_header_bytes = 32768;
    cfg->db_connections = 4;
    cfg->delivery = 1;
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    snprintf(cfg->log_format, sizeof cfg->log_format, "text");
    snprintf(cfg->access_log, sizeof cfg->access_log, "on");
    snprintf(cfg->metrics, sizeof cfg->metrics, "on");
    cfg->intake_backlog = 4096;
    cfg->debugger_events = 1000;
    cfg->functions_per_workspace = 25;

    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char var[64] = "MANIFOLD_";
        size_t k = 9;
        for (const char *s = flags[i].name; *s && k < sizeof var - 1; s++)
            var[k++] = *s == '-' ? '_' : (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
        var[k] = '\0';
        const char *v = getenv_fn ? getenv_fn(var) : NULL;
        if (v && *v && set(cfg, &flags[i], v, var, err, errlen))
            return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const flag *f = NULL;
        for (size_t j = 0; j < sizeof flags / sizeof flags[0]; j++)
            if (strlen(flags[j].name) == n && !strncmp(flags[j].name, a, n))
                f = &flags[j];
        if (!f) {
            snprintf(err, errlen, "unknown flag '%s'", argv[i]);
            return -1;
        }
        /* A boolean flag alone means true; it never takes the next argument. */
        const char *v = eq ? eq + 1 : f->type == T_BOOL ? "true" : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            snprintf(err, errlen, "flag --%s needs a value", f->name);
            return -1;
        }
        if (set(cfg, f, v, "flag", err, errlen))
            return -1;
    }
    if (strcmp(cfg->log_level, "error") && strcmp(cfg->log_level, "warn") && strcmp(cfg->log_level, "info") &&
        strcmp(cfg->log_level, "debug")) {
        snprintf(err, errlen, "--log-level must be error, warn, info or debug");
        return -1;
    }
    if (strcmp(cfg->log_format, "text") && strcmp(cfg->log_format, "json")) {
        snprintf(err, errlen, "--log-format must be text or json");
        return -1;
    }
    if (strcmp(cfg->metrics, "on") && strcmp(cfg->metrics, "off")) {
        snprintf(err, errlen, "--metrics must be on or off");
        return -1;
    }
    if (strcmp(cfg->access_log, "on") && strcmp(cfg->access_log, "off")) {
        snprintf(err, errlen, "--access-log must be on or off");
        return -1;
    }
    return 0;
}
