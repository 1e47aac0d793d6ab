/* The watcher: how one process hears about changes committed by the others on the same
 * PostgreSQL database (docs/scaling.md).
 *
 * Writers send NOTIFY manifold_changes inside their transaction (store_commit), so a
 * notification exists only for a committed change and arrives after it is visible. This
 * thread LISTENs on a dedicated libpq connection (application_name manifold-watch) and
 * calls apply() for every payload whose origin is another process.
 *
 * Fallback: while that connection is down (the server restarted, a proxy cut it, an
 * operator terminated it) the thread polls the change counter (sequence manifold_changes,
 * bumped by the same statement as the NOTIFY) every 250 ms through the pool and treats a
 * moved counter as "everything changed". nextval is not transactional: the counter moves
 * just before its transaction's COMMIT, so a moved counter invalidates twice, now and at
 * the next poll, when that COMMIT is long done. It tries to listen again every second;
 * once it listens, everything is treated as changed (notifications sent while it was not
 * listening are lost).
 *
 * MANIFOLD_WATCH=poll in the environment never listens (the fallback alone; tests and
 * poolers that do not pass LISTEN/NOTIFY, e.g. PgBouncer in transaction mode). */
#include "store/store_int.h"
#include "util/util.h"
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 250
#define RETRY_MS 1000
#define SWEEP_MS 10000

struct watcher {
    store *st;
    char *dsn;
    char origin[48];
    void (*apply)(void *arg, unsigned what);
    void *arg;
    bool poll_only;
    atomic_bool stop;
    atomic_bool listening;
    pthread_t thread;
};

static PGconn *listen_connect(watcher *w)
{
    /* dbname is expanded as the whole connection string or URI; application_name lets an
     * operator find (and a test terminate) the connection. */
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {w->dsn, "manifold-watch", "5", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        return NULL;
    }
    PGresult *r = PQexec(pg, "LISTEN manifold_changes");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok || PQsetnonblocking(pg, 1) != 0) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* "<origin> <what>" → what, or 0 when it is ours (already applied at commit). */
static unsigned payload_what(watcher *w, const char *payload)
{
    const char *sp = strchr(payload, ' ');
    if (!sp)
        return CHG_CONFIG | CHG_AUTH; /* not ours to read: assume the worst */
    if ((size_t)(sp - payload) == strlen(w->origin) && !memcmp(payload, w->origin, (size_t)(sp - payload)))
        return 0;
    unsigned what = (unsigned)strtoul(sp + 1, NULL, 10);
    return what ? what : CHG_CONFIG | CHG_AUTH;
}

static void *watch_main(void *arg)
{
    watcher *w = arg;
    PGconn *pg = NULL;
    int64_t next_try = 0, next_sweep = mono_ms() + SWEEP_MS;
    long long seen = -1;
    bool again = false, was_down = false;
    if (store_change_counter(w->st, &seen) != ST_OK)
        seen = -1;
    while (!atomic_load(&w->stop)) {
        int64_t now = mono_ms();
        if (now >= next_sweep) {
            store_rate_sweep(w->st); /* the global rate limit's idle buckets */
            next_sweep = now + SWEEP_MS;
        }
        if (!pg && !w->poll_only && now >= next_try) {
            pg = listen_connect(w);
            next_try = now + RETRY_MS;
            if (pg) {
                if (was_down)
                    log_info("watch: listening for other processes' changes again");
                atomic_store(&w->listening, true);
                was_down = false;
                w->apply(w->arg, CHG_CONFIG | CHG_AUTH); /* whatever was missed meanwhile */
            } else if (!was_down) {
                log_warn("watch: cannot LISTEN on the database; polling its change counter every %d ms", TICK_MS);
                was_down = true;
            }
        }
        if (!pg) {
            /* The fallback: poll the change counter. */
            long long n;
            if (store_change_counter(w->st, &n) == ST_OK) {
                if (n != seen || again) {
                    again = n != seen; /* once more at the next tick: see the top */
                    seen = n;
                    w->apply(w->arg, CHG_CONFIG | CHG_AUTH);
                }
            }
            struct timespec ts = {0, TICK_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int pr = poll(&pfd, 1, TICK_MS);
        if (pr < 0)
            continue;
        if (pr > 0 && !PQconsumeInput(pg)) {
            log_warn("watch: the LISTEN connection was lost: %s", PQerrorMessage(pg));
            PQfinish(pg);
            pg = NULL;
            atomic_store(&w->listening, false);
            was_down = true;
            next_try = 0; /* try again at once, poll meanwhile */
            store_change_counter(w->st, &seen);
            w->apply(w->arg, CHG_CONFIG | CHG_AUTH);
            continue;
        }
        unsigned what = 0;
        PGnotify *n;
        while ((n = PQnotifies(pg))) {
            what |= payload_what(w, n->extra);
            PQfreemem(n);
        }
        if (what)
            w->apply(w->arg, what);
    }
    if (pg)
        PQfinish(pg);
    return NULL;
}

watcher *watcher_start(store *st, const char *dsn, const char *origin, void (*apply)(void *arg, unsigned what), void *arg)
{
    watcher *w = calloc(1, sizeof *w);
    w->st = st;
    w->dsn = strdup(dsn);
    snprintf(w->origin, sizeof w->origin, "%s", origin);
    w->apply = apply;
    w->arg = arg;
    const char *mode = getenv("MANIFOLD_WATCH");
    w->poll_only = mode && !strcmp(mode, "poll");
    atomic_init(&w->stop, false);
    atomic_init(&w->listening, false);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        free(w->dsn);
        free(w);
        return NULL;
    }
    return w;
}

void watcher_stop(watcher *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free(w->dsn);
    free(w);
}

bool watcher_listening(watcher *w) { return atomic_load(&w->listening); }
