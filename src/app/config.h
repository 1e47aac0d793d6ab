/* config — `manifold serve` settings from flags and MANIFOLD_* environment variables.
 * A flag wins over the environment, the environment over the default. Every flag
 * --some-name has the variable MANIFOLD_SOME_NAME. */
#ifndef MANIFOLD_CONFIG_H
#define MANIFOLD_CONFIG_H
#include <stddef.h>

typedef struct config {
    char listen_host[64];
    int listen_port;
    char database[1024];
    char catalog[1024];
    char key_file[1024];
    int rate_limit;            /* requests per second per token; 0 disables */
    size_t max_body;
    size_t max_plan_body;      /* tracking-plan routes (the larger of the two applies) */
    char bootstrap_workspace[112];
    char bootstrap_email[256];
    unsigned threads;
    unsigned max_connections;
    unsigned max_per_ip;
    unsigned idle_timeout;     /* seconds */
    unsigned request_timeout;  /* seconds, whole request */
    size_t max_header_bytes;
    int db_connections;
    char log_level[16];
    char log_format[8];        /* text | json */
    char metrics[8];           /* on | off: GET /metrics */
    char access_log[8];        /* on | off: one line per answered request */
    char intake_listen_host[64]; /* "" unless --intake-listen: the intake's own listener */
    int intake_listen_port;
    int strict_write_keys;     /* unknown write keys get 401 instead of 200 */
    int intake_backlog;        /* intake requests in flight or waiting for durability */
    int debugger_events;       /* events per source the debugger API shows */
    int delivery;              /* 1: run the delivery engine (docs/delivery.md); 0: store only */
    char functions_node[1024]; /* "" : node on PATH (functions/runtime.h) */
    int functions_workers;     /* Node.js worker processes; 0: the runtime's default */
    int functions_memory_mb;   /* per worker; 0: the runtime's default */
    int functions_per_workspace; /* 0: unlimited */
} config;

/* Fills defaults, then the environment (via getenv_fn, usually getenv), then argv.
 * Returns 0, or -1 with a message in err. Unknown flags are errors. */
int config_parse(config *cfg, int argc, char **argv, const char *(*getenv_fn)(const char *),
                 char *err, size_t errlen);
/* The usage text for `manifold serve --help`. */
extern const char config_usage[];

#endif
