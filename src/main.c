/* manifold — a self-hosted Segment Config API server.
 *   manifold serve [flags]                 the API server (see `manifold serve --help`)
 *   manifold token create|list|revoke ...  manage access tokens on the database directly
 *   manifold user create ...               add a user (invites, --role, or owner if first)
 *   manifold schema validate SCHEMA.json   validate JSON lines on stdin against a schema */
#include "api/engine.h"
#include "app/admin.h"
#include "app/cli.h"
#include "app/config.h"
#include "deliver/deliver.h"
#include "store/delivery_log.h"
#include "app/function_cli.h"
#include "functions/runtime.h"
#include "ingest/intake.h"
#include "ingest/msg.h"
#include "store/delivery_metrics.h"
#include "obs/obs.h"
#include "schema/schema.h"
#include "util/util.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: manifold <command> [flags]\n"
    "  serve [flags]                       start the API server (manifold serve --help)\n"
    "  token create --workspace SLUG --scope workspace|workspace:read --description TEXT\n"
    "  token list\n"
    "  token revoke ID\n"
    "  user create --email EMAIL --password-stdin [--workspace SLUG] [--role ROLE|none]\n"
    "  schema validate SCHEMA.json         JSON instances on stdin, one per line\n"
    "  routes                              the route table as JSON (method, path, action)\n"
    "  function run|bench|info ...         run function code in the Functions runtime (--help)\n"
    "  version                             the release (also --version)\n"
    "Every command takes --database PATH|postgres://... (default var/manifold.db, or\n"
    "MANIFOLD_DATABASE) and --key-file PATH (default: beside the database).\n";

static const char *env(const char *k) { return getenv(k); }

static bool is_postgres(const char *dsn)
{
    return !strncmp(dsn, "postgres://", 11) || !strncmp(dsn, "postgresql://", 13);
}

/* var/ for the SQLite file (and its key file) is created on demand, 0700. */
static void ensure_parent_dir(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *d = dirname(tmp);
    if (strcmp(d, ".") && strcmp(d, "/"))
        mkdir(d, 0700);
}

static void default_key_file(const char *database, char *out, size_t cap)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", is_postgres(database) ? "var/x" : database);
    snprintf(out, cap, "%s/manifold.key", dirname(tmp));
}

static void default_catalog(char *out, size_t cap)
{
    /* The catalog ships in the repository next to build/: find it from the binary. */
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        const char *ups[] = {"/../data/catalog", "/../../data/catalog", "/../share/manifold/catalog"};
        for (size_t i = 0; i < 3; i++) {
            char cand[1200];
            snprintf(cand, sizeof cand, "%s%s", dir, ups[i]);
            if (access(cand, R_OK) == 0 && strlen(cand) < cap) {
                memcpy(out, cand, strlen(cand) + 1);
                return;
            }
        }
    }
    snprintf(out, cap, "data/catalog");
}

static store *open_store(const char *database, const char *key_file, int readers)
{
    char err[512], key[1024];
    if (!is_postgres(database))
        ensure_parent_dir(database);
    if (key_file && *key_file)
        snprintf(key, sizeof key, "%s", key_file);
    else
        default_key_file(database, key, sizeof key);
    ensure_parent_dir(key);
    if (auth_init(key, err, sizeof err) != 0) {
        log_error("manifold: %s", err);
        return NULL;
    }
    store *st = store_open(database, readers, err, sizeof err);
    if (!st)
        log_error("manifold: %s", err);
    return st;
}

static int write_secret_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    fchmod(fd, 0600);
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    close(fd);
    return ok ? 0 : -1;
}

/* The main listener's handler: the Config API, and the Tracking API's /v1/ paths unless
 * the intake has a listener of its own (--intake-listen; then /v1/ here is the Config
 * API's 404). */
typedef struct front {
    api *a;
    intake *in; /* NULL: the intake is not served on this listener */
} front;

static void front_handle(request *req, response *resp, void *ctx)
{
    front *f = ctx;
    if (f->in && intake_owns(req))
        intake_handle(req, resp, f->in);
    else
        api_handle(req, resp, f->a);
}

/* The HTTP layer's per-request body limit on the main listener: the intake's for its
 * paths (never below what the intake itself accepts, compressed bodies included), the
 * route table's otherwise. */
static size_t front_body_limit(const request *req, void *ctx)
{
    front *f = ctx;
    if (f->in && intake_owns(req))
        return intake_body_limit(req, f->in);
    return api_body_limit(req, f->a);
}

/* Another process on the same PostgreSQL committed a change (the store's watcher
 * thread; the config epoch has moved already): who may do what is re-read. */
static void remote_change(void *ctx, unsigned what)
{
    (void)ctx;
    if (what & CHG_AUTH)
        auth_forget_all();
}

static int cmd_serve(int argc, char **argv)
{
    config cfg;
    char err[512];
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(config_usage, stdout);
            return 0;
        }
    if (config_parse(&cfg, argc, argv, env, err, sizeof err) != 0) {
        fprintf(stderr, "manifold serve: %s\n%s", err, config_usage);
        return 2;
    }
    log_level = !strcmp(cfg.log_level, "error") ? LOG_ERROR : !strcmp(cfg.log_level, "warn") ? LOG_WARN
              : !strcmp(cfg.log_level, "debug") ? LOG_DEBUG : LOG_INFO;
    log_json = !strcmp(cfg.log_format, "json");
    obs_access_log = !strcmp(cfg.access_log, "on");
    obs_init();
    if (!cfg.catalog[0])
        default_catalog(cfg.catalog, sizeof cfg.catalog);
    if (!cfg.threads) {
        /* A write waiting for its group commit is a suspended connection, not a blocked
         * thread (http/durable.h), so on SQLite a handler only blocks for CPU work and the
         * writer slot: 2 per core is best, and more threads only contend for that slot
         * (measured: intake batches 36-40k -> 43-49k events/s, durable creates at 256
         * connections 6.2k -> 8.8k/s, workspace GETs 76k -> 99k/s with 16 -> 4 threads on
         * 2 cores; docs/benchmarks-intake.md). On PostgreSQL every statement is a network
         * round trip that holds the thread: 8 per core keep the CPUs busy meanwhile. */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = (is_postgres(cfg.database) ? 8 : 2) * (n > 0 ? (unsigned)n : 2);
    }

    /* Signals are taken synchronously by the main thread; workers never see them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    catalog *cat = catalog_load(cfg.catalog, err, sizeof err);
    tracking_plans_init(cfg.catalog); /* the meta-schemas ship beside the catalog */
    if (!cat) {
        log_error("manifold: %s", err);
        return 1;
    }
    store *st = open_store(cfg.database, cfg.key_file, cfg.db_connections);
    if (!st) {
        catalog_free(cat);
        return 1;
    }
    char token[TOKEN_TEXT_MAX];
    int boot = admin_bootstrap(st, cfg.bootstrap_workspace, cfg.bootstrap_email, token);
    if (boot < 0) {
        log_error("manifold: bootstrap failed");
        store_close(st);
        catalog_free(cat);
        return 1;
    }
    if (engine_backfill_refs(st, &kind_source) != ST_OK) {
        log_error("manifold: could not index the write keys of existing sources");
        store_close(st);
        catalog_free(cat);
        return 1;
    }
    if (store_dl_init(st) != ST_OK) {
        fprintf(stderr, "manifold: the delivery tables could not be created\n");
        store_close(st);
        catalog_free(cat);
        return 1;
    }
    /* Several processes may share this database: hear about their changes, and count
     * the rate limit per token across all of them (docs/scaling.md). */
    store_watch(st, remote_change, NULL);
    if (store_shared(st))
        ratelimit_share(st);
    /* One Functions runtime for the process: preview (API) and source-function webhooks
     * (intake) run their code in its workers. */
    fnrt_config fc = {.node = cfg.functions_node[0] ? cfg.functions_node : NULL,
                      .workers = cfg.functions_workers, .memory_mb = (size_t)cfg.functions_memory_mb};
    fnrt *rt = fnrt_start(&fc);
    if (!fnrt_available(rt))
        log_warn("functions: %s: function previews and webhooks answer \"runtime unavailable\"", fnrt_describe(rt));
    else
        log_info("functions: %s", fnrt_describe(rt));
    obs_pool_fn(store_pool_stats, st);
    api *a = api_new(st, cat, cfg.rate_limit);
    api_set_body_limits(a, cfg.max_body, cfg.max_plan_body);
    a->metrics = !strcmp(cfg.metrics, "on");
    a->debugger_events = cfg.debugger_events;
    a->functions = rt;
    a->max_functions = cfg.functions_per_workspace;
    intake_config ic = {.strict_write_keys = cfg.strict_write_keys, .backlog = cfg.intake_backlog,
                        .dedup_ms = 24LL * 3600 * 1000, .server_version = MANIFOLD_VERSION,
                        .functions = rt};
    intake *in = intake_new(st, &ic);
    bool own_intake = cfg.intake_listen_host[0] != '\0';
    front fr = {.a = a, .in = own_intake ? NULL : in};
    http_config hc = {
        .host = cfg.listen_host, .port = cfg.listen_port, .max_body = cfg.max_body,
        .body_limit = front_body_limit,
        .max_connections = cfg.max_connections, .max_per_ip = cfg.max_per_ip,
        .idle_timeout_s = cfg.idle_timeout, .request_deadline_s = cfg.request_timeout,
        .threads = cfg.threads, .max_header_bytes = cfg.max_header_bytes,
        .on_answer = obs_http_answer,
    };
    /* The token file exists before the port answers, so whoever waits for the server can
     * read it as soon as it is up. */
    char token_path[1100] = "";
    bool token_saved = false;
    if (boot == 1) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", is_postgres(cfg.database) ? "var/x" : cfg.database);
        snprintf(token_path, sizeof token_path, "%s/bootstrap-token", dirname(tmp));
        ensure_parent_dir(token_path); /* with PostgreSQL nothing else may have made ./var */
        token_saved = write_secret_file(token_path, token) == 0;
    }
    /* Delivery starts before the listeners, so a bad MANIFOLD_OUTBOUND_* or
     * MANIFOLD_RETRY_* value stops the server before it ever answers. */
    deliver *dv = NULL;
    if (cfg.delivery && !(dv = deliver_start(st, cat, rt, err, sizeof err))) {
        fprintf(stderr, "manifold: delivery: %s\n", err);
        intake_free(in);
        api_free(a);
        fnrt_stop(rt);
        store_close(st);
        catalog_free(cat);
        return 1;
    }
    http_server *srv = http_start(&hc, front_handle, &fr, err, sizeof err);
    http_server *isrv = NULL;
    if (srv && own_intake) {
        http_config ihc = hc;
        ihc.host = cfg.intake_listen_host;
        ihc.port = cfg.intake_listen_port;
        ihc.body_limit = intake_body_limit;
        isrv = http_start(&ihc, intake_handle, in, err, sizeof err);
        if (!isrv) {
            http_stop(srv);
            srv = NULL;
        }
    }
    if (!srv) {
        log_error("manifold: %s", err);
        deliver_stop(dv);
        intake_free(in);
        api_free(a);
        fnrt_stop(rt);
        store_close(st);
        catalog_free(cat);
        return 1;
    }
    int port = http_port(srv);
    if (boot == 1 && log_json) {
        /* A log pipeline keeps what it reads: the token is named only by its file, unless
         * the file could not be written (then this line is the only copy). */
        if (token_saved)
            log_info("created workspace '%s' and an owner access token; the token was written to %s (mode 0600)",
                     cfg.bootstrap_workspace, token_path);
        else
            log_info("created workspace '%s' and an owner access token (shown once): %s", cfg.bootstrap_workspace,
                     token);
        memset(token, 0, sizeof token);
    } else if (boot == 1) {
        fprintf(stderr,
                "\nManifold created workspace '%s' and an owner access token (shown once):\n\n"
                "    %s\n\n%s%s%s"
                "Try it:\n    curl -H 'Authorization: Bearer %s' http://%s:%d/v1beta/workspaces\n\n",
                cfg.bootstrap_workspace, token, token_saved ? "It was also written to " : "",
                token_saved ? token_path : "", token_saved ? " (mode 0600).\n\n" : "", token, cfg.listen_host, port);
        memset(token, 0, sizeof token);
    }
    log_info("manifold listening on %s:%d (database: %s, %u threads, rate limit %d/s per token)",
             cfg.listen_host, port, store_backend(st), cfg.threads, cfg.rate_limit);
    if (isrv)
        log_info("tracking API listening on %s:%d", cfg.intake_listen_host, http_port(isrv));
    fflush(stderr);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("received %s: draining in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_stop(isrv);
    http_stop(srv);
    deliver_stop(dv);
    intake_quiesce(in); /* no source-function retry starts or runs any more */
    fnrt_stop(rt);      /* after the listeners and retries: no invocation is pending */
    intake_free(in);
    api_free(a);
    ratelimit_share(NULL);
    store_close(st);
    catalog_free(cat);
    auth_shutdown();
    log_info("stopped");
    return 0;
}

static const char *database_of(int argc, char **argv)
{
    const char *d = cli_opt(argc, argv, "--database");
    if (!d)
        d = getenv("MANIFOLD_DATABASE");
    return d && *d ? d : "var/manifold.db";
}

static const char *keyfile_of(int argc, char **argv)
{
    const char *k = cli_opt(argc, argv, "--key-file");
    return k ? k : getenv("MANIFOLD_KEY_FILE");
}

static int print_token(void *ctx, token_row *r)
{
    (void)ctx;
    printf("%lld\t%s\t%s\t%s\t%s\n", r->id, r->scopes, r->workspace_names, r->create_time, r->description);
    return 0;
}

static int cmd_token(int argc, char **argv)
{
    if (argc < 1) {
        fputs(usage, stderr);
        return 2;
    }
    store *st = open_store(database_of(argc, argv), keyfile_of(argc, argv), 1);
    if (!st)
        return 1;
    int rc = 0;
    if (!strcmp(argv[0], "create")) {
        const char *ws = cli_opt(argc, argv, "--workspace");
        const char *scope = cli_opt(argc, argv, "--scope");
        const char *desc = cli_opt(argc, argv, "--description");
        if (!scope)
            scope = "workspace";
        if (!ws || !desc || (strcmp(scope, "workspace") && strcmp(scope, "workspace:read"))) {
            fprintf(stderr, "manifold token create: needs --workspace SLUG --description TEXT "
                            "[--scope workspace|workspace:read]\n");
            rc = 2;
        } else {
            char tok[TOKEN_TEXT_MAX];
            int r = admin_token_create(st, ws, scope, desc, NULL, tok);
            if (r == ST_OK) {
                printf("%s\n", tok);
            } else {
                fprintf(stderr, "manifold token create: %s\n",
                        r == ST_NOT_FOUND ? "no such workspace" : "database error");
                rc = 1;
            }
            memset(tok, 0, sizeof tok);
        }
    } else if (!strcmp(argv[0], "list")) {
        txn t;
        store_begin(st, &t, false);
        printf("ID\tSCOPES\tWORKSPACES\tCREATED\tDESCRIPTION\n");
        long long after = 0;
        rc = store_token_list(&t, after, 1000000, print_token, NULL) == ST_OK ? 0 : 1;
        store_end(&t);
    } else if (!strcmp(argv[0], "revoke") && argc >= 2) {
        char *end;
        long long id = strtoll(argv[1], &end, 10);
        txn t;
        int r = *end || id <= 0 ? ST_NOT_FOUND : store_begin(st, &t, true);
        if (r == ST_OK) {
            r = store_token_delete(&t, id);
            if (r == ST_OK)
                r = store_commit(&t);
            else
                store_rollback(&t);
        }
        if (r != ST_OK) {
            fprintf(stderr, "manifold token revoke: %s\n", r == ST_NOT_FOUND ? "no such token" : "database error");
            rc = 1;
        } else {
            fprintf(stderr, "revoked access-tokens/%lld\n", id);
        }
    } else {
        fputs(usage, stderr);
        rc = 2;
    }
    store_close(st);
    auth_shutdown();
    return rc;
}

static int cmd_user(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "create")) {
        fputs(usage, stderr);
        return 2;
    }
    const char *email = cli_opt(argc, argv, "--email");
    const char *ws = cli_opt(argc, argv, "--workspace");
    if (!ws)
        ws = getenv("MANIFOLD_BOOTSTRAP_WORKSPACE");
    if (!ws)
        ws = "myworkspace";
    if (!email || !strchr(email, '@') || !cli_flag(argc, argv, "--password-stdin")) {
        fprintf(stderr, "manifold user create: needs --email EMAIL --password-stdin [--workspace SLUG] [--role ROLE|none]\n");
        return 2;
    }
    char pw[1024];
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "manifold user create: no password on stdin\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (strlen(pw) < 8) {
        fprintf(stderr, "manifold user create: the password must have at least 8 characters\n");
        return 2;
    }
    store *st = open_store(database_of(argc, argv), keyfile_of(argc, argv), 1);
    if (!st)
        return 1;
    char id[32];
    const char *role = cli_opt(argc, argv, "--role");
    if (role && !strcmp(role, "none"))
        role = "";
    bool no_access = false;
    int r = admin_user_create(st, email, pw, ws, role, id, &no_access);
    memset(pw, 0, sizeof pw);
    store_close(st);
    auth_shutdown();
    if (r != ST_OK) {
        fprintf(stderr, "manifold user create: %s\n",
                r == ST_CONFLICT ? "a user with this e-mail exists" : r == ST_NOT_FOUND ? "no such workspace or role" : "database error");
        return 1;
    }
    if (no_access)
        fprintf(stderr,
                "manifold user create: users/%s has no access to workspace %s (it already has an "
                "owner): grant it with --role ROLE, an invite, or a policy made by an owner\n",
                id, ws);
    printf("users/%s\n", id);
    return 0;
}

/* manifold metrics add — writes Event Delivery Metrics counters straight into the
 * database, as the delivery engine does (store/delivery_metrics.h), in one transaction.
 * Not in the usage text: it exists for tests and for repairing counters by hand
 * (docs/metrics.md).
 *   --destination NAME --at RFC3339 (--metric M [--n N] | --latency MS[,MS...])
 *   --stdin: lines "count DEST METRIC RFC3339 N" or "latency DEST RFC3339 MS" */
static bool ms_of(const char *at, long long *ms)
{
    int64_t us;
    if (!ingest_parse_time(at, &us))
        return false;
    *ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
    return true;
}

static bool integer(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return *s && !*end && !errno;
}

/* Through a batch (one upsert per distinct row), as the engine is expected to write. */
static int metrics_stdin(txn *t)
{
    char line[4096];
    int no = 0;
    dm_batch *b = dm_batch_new();
    while (fgets(line, sizeof line, stdin)) {
        no++;
        char op[16], dest[1024], a[256], x[64], y[64];
        int k = sscanf(line, "%15s %1023s %255s %63s %63s", op, dest, a, x, y);
        long long at, v;
        if (k <= 0)
            continue;
        if (k == 5 && !strcmp(op, "count") && ms_of(x, &at) && integer(y, &v))
            dm_batch_add(b, dest, a, at, v);
        else if (k == 4 && !strcmp(op, "latency") && ms_of(a, &at) && integer(x, &v))
            dm_batch_latency(b, dest, at, v);
        else {
            fprintf(stderr, "manifold metrics add: stdin line %d: want \"count DEST METRIC RFC3339 N\" or "
                            "\"latency DEST RFC3339 MS\"\n", no);
            dm_batch_free(b);
            return ST_CONFLICT;
        }
    }
    int rc = store_dm_flush(t, b);
    dm_batch_free(b);
    return rc;
}

static int cmd_metrics(int argc, char **argv)
{
    const char *dest = cli_opt(argc, argv, "--destination"), *metric = cli_opt(argc, argv, "--metric");
    const char *at = cli_opt(argc, argv, "--at"), *n = cli_opt(argc, argv, "--n"), *lat = cli_opt(argc, argv, "--latency");
    bool from_stdin = cli_flag(argc, argv, "--stdin");
    long long at_ms = 0, count = 1;
    bool ok = argc >= 1 && !strcmp(argv[0], "add");
    if (ok && !from_stdin)
        ok = dest && at && ms_of(at, &at_ms) && !metric != !lat && (!n || (metric && integer(n, &count)));
    if (!ok) {
        fprintf(stderr, "usage: manifold metrics add --destination NAME --at RFC3339 "
                        "(--metric M [--n N] | --latency MS[,MS...])\n"
                        "       manifold metrics add --stdin   (lines: count DEST METRIC RFC3339 N | "
                        "latency DEST RFC3339 MS)\n");
        return 2;
    }
    store *st = open_store(database_of(argc, argv), keyfile_of(argc, argv), 1);
    if (!st)
        return 1;
    txn t = {0};
    int rc = store_begin(st, &t, true);
    if (rc == ST_OK && from_stdin)
        rc = metrics_stdin(&t);
    else if (rc == ST_OK && metric)
        rc = store_dm_add(&t, dest, metric, at_ms, count);
    for (const char *p = from_stdin ? NULL : lat; rc == ST_OK && p && *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end && *end != ',')) {
            fprintf(stderr, "manifold metrics add: --latency takes milliseconds, comma-separated\n");
            rc = ST_CONFLICT;
            break;
        }
        rc = store_dm_latency(&t, dest, at_ms, v);
        p = *end ? end + 1 : end;
    }
    if (rc == ST_OK)
        rc = store_commit(&t);
    else
        store_rollback(&t); /* no-op when nothing was begun */
    store_close(st);
    auth_shutdown();
    if (rc == ST_CONFLICT)
        return 2; /* bad input, already said */
    if (rc != ST_OK) {
        fprintf(stderr, "manifold metrics add: database error\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("manifold %s\n", MANIFOLD_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(argv[1], "token"))
        return cmd_token(argc - 2, argv + 2);
    if (!strcmp(argv[1], "user"))
        return cmd_user(argc - 2, argv + 2);
    if (!strcmp(argv[1], "metrics"))
        return cmd_metrics(argc - 2, argv + 2);
    if (!strcmp(argv[1], "routes")) {
        /* The route table is the source of truth for docs and the access-matrix test. */
        static const char *const actions[] = {"public", "token_create", "read", "write"};
        json_t *arr = json_array();
        for (size_t i = 0; i < api_nroutes; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "method", api_routes[i].method, "path",
                                                 api_routes[i].pattern, "action", actions[api_routes[i].action]));
        char *s = json_dumps(arr, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(arr);
        return 0;
    }
    if (!strcmp(argv[1], "function"))
        return function_cli(argc - 2, argv + 2);
    if (!strcmp(argv[1], "schema") && argc >= 3 && !strcmp(argv[2], "validate"))
        return schema_cli_validate(argc - 3, argv + 3);
    fprintf(stderr, "manifold: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
