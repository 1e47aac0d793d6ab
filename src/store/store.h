/* store — every table Manifold keeps, behind one backend-neutral interface. The SQL here
 * runs unchanged on SQLite and PostgreSQL (see db.h). Every API call runs in exactly one
 * transaction: store_begin / store_commit / store_rollback.
 *
 * Return convention for look-ups: ST_OK (found / done), ST_NOT_FOUND, ST_CONFLICT (unique
 * key taken), ST_ERROR (backend failure; already logged). */
#ifndef MANIFOLD_STORE_H
#define MANIFOLD_STORE_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "store/db.h"

enum { ST_OK = 0, ST_NOT_FOUND = 1, ST_CONFLICT = 2, ST_ERROR = -1 };

typedef struct store store;
typedef struct txn {
    store *st;
    db_conn *c;
    bool write;
    bool in_tx;
    bool grouped;      /* a savepoint inside a group-commit transaction (SQLite) */
    uint64_t gen;      /* the group it belongs to */
    bool res_changed;  /* this transaction wrote a resource: bumps the config epoch on commit */
    bool auth_changed; /* it changed who may do what (a token, a policy): caches of principals drop */
} txn;

store *store_open(const char *dsn, int readers, char *err, size_t errlen);
void store_close(store *);
const char *store_backend(store *);
/* The connection pool's gauges (obs_pool_fn's shape; arg is the store). */
void store_pool_stats(void *st, int *in_use, int *waiting, int *size);
/* Cheap round trip for /readyz. */
bool store_ping(store *);

/* Group commit (single-writer backends, i.e. SQLite): each write transaction runs as a
 * savepoint inside one shared database transaction (the open group) and leaves it at
 * once; a flusher thread commits the group and makes it durable (fsync) while the next
 * group fills, so a group holds whatever arrived during one fsync. store_commit returns
 * only once the group that holds its work is durable, so "answered" still means "on
 * disk" — unless the calling thread turned deferral on (below). A transaction that rolls
 * back undoes only its own savepoint.
 *
 * write=false on a single-statement read skips BEGIN (autocommit reads are consistent). */
int store_begin(store *, txn *t, bool write);
int store_commit(txn *t);
void store_rollback(txn *t);
/* Releases the connection of a read "transaction" opened with write=false. */
void store_end(txn *t);

/* Deferred durability, for callers that must not hold a thread while a group syncs (the
 * HTTP layer suspends the connection instead). Between store_defer_begin and
 * store_defer_end, store_commit on this thread returns as soon as its work has joined the
 * group, and the work is visible to other readers but not yet known to be on disk.
 * store_defer_end returns the group to wait for (0: nothing to wait for: no grouped
 * commit happened). store_when_durable calls fn(arg, ok) once that group is durable (ok)
 * or failed (the work is lost: answer an error); at once, in this thread, when it already
 * is settled (and then returns true), otherwise later from the flusher thread. */
void store_defer_begin(void);
uint64_t store_defer_end(void);
bool store_when_durable(store *, uint64_t gen, void (*fn)(void *arg, bool ok), void *arg);

/* Config epoch: a counter bumped whenever a committed transaction changed a resource
 * (a source, its schema config, a plan, a connection, …), once the change is visible to
 * other readers. Caches of resources (the intake's write-key cache) compare it to know
 * they may be stale. On PostgreSQL it also moves when another process on the same
 * database committed such a change (store_watch, docs/scaling.md). */
uint64_t store_config_epoch(store *);

/* ---- several processes on one database (PostgreSQL; docs/scaling.md) ----
 * A write transaction that changed a resource or an access right sends, inside the
 * transaction (so only on COMMIT), NOTIFY manifold_changes with what changed, and bumps
 * the sequence manifold_changes. Each process listens on a dedicated connection in a
 * thread of its own; while that connection is down it polls the sequence every 250 ms
 * instead and, when the listener comes back, treats everything as changed. */
enum { CHG_CONFIG = 1, CHG_AUTH = 2 };
/* Starts the watcher (PostgreSQL only; a no-op on SQLite, whose single process sees
 * every change itself). fn(ctx, what) runs in the watcher thread for every change
 * committed by another process (what: CHG_* bits), after the config epoch moved. */
void store_watch(store *, void (*fn)(void *ctx, unsigned what), void *ctx);
/* Whether the watcher currently listens (false: polling, or not PostgreSQL). */
bool store_watch_listening(store *);
/* true when several processes may share this database (PostgreSQL). */
bool store_shared(store *);
/* The global rate limit's lease: takes up to want requests (at most rate) from key's
 * token bucket in the database (burst rate, refilled at rate per second by the
 * database's clock); *granted is what it got (0: empty), *tokens what the bucket still
 * holds. PostgreSQL: one UPSERT on an unlogged table. */
int store_rate_lease(store *, long long key, int rate, int want, int *granted, double *tokens);

/* ---- meta ---- */
int store_meta_get(txn *t, const char *key, char *out, size_t outlen);
int store_meta_set(txn *t, const char *key, const char *val);

/* ---- workspaces ---- */
typedef struct ws_row {
    char id[16];
    char slug[112];
    char display_name[256];
    char create_time[32];
} ws_row;
int store_ws_get(txn *t, const char *slug_or_id, ws_row *out);
int store_ws_create(txn *t, const ws_row *w);
/* Serialises, to the end of the transaction, the changes that must see a workspace's
 * policies as a whole (removing an owner): a row lock on PostgreSQL; SQLite has a single
 * writer already. */
int store_ws_lock(txn *t, const char *slug);
/* Lists workspaces with slug > after, ascending, at most limit; returns count or ST_ERROR. */
int store_ws_list(txn *t, const char *after, int limit, ws_row *out);
int store_ws_count(txn *t);

/* ---- users ---- */
typedef struct user_row {
    char id[32];
    char email[256];
    char password_hash[160]; /* Argon2id string (crypto_pwhash_STRBYTES = 128) */
    char create_time[32];
} user_row;
int store_user_create(txn *t, const user_row *u);
int store_user_by_email(txn *t, const char *email, user_row *out);
int store_user_get(txn *t, const char *id, user_row *out);

/* ---- access tokens (only keyed hashes are stored) ---- */
typedef struct token_row {
    long long id;
    char hash[65];
    char description[512];
    char scopes[64];
    char *workspace_names; /* JSON array text, heap; free with token_row_clear */
    char user_id[32];
    char create_time[32];
} token_row;
void token_row_clear(token_row *);
int store_token_create(txn *t, token_row *tok); /* sets tok->id */
int store_token_by_hash(txn *t, const char *hash, token_row *out);
int store_token_get(txn *t, long long id, token_row *out);
/* Calls fn for each token with id > after_id, ascending, at most limit rows. */
int store_token_list(txn *t, long long after_id, int limit, int (*fn)(void *, token_row *), void *ctx);
int store_token_delete(txn *t, long long id);

/* ---- generic resources (the engine's one table) ---- */
typedef struct res_row {
    char *name, *workspace, *parent, *kind, *id, *body;
    char *ref;           /* optional secondary key a kind may set (a policy's subject, …) */
    char *view;          /* column "rendered": the public JSON made at write time (api/view.h), or NULL:
                          * written as given by insert and update, read by every look-up */
    long long version;
    char create_time[32], update_time[32];
} res_row;
void res_row_clear(res_row *);
int store_res_get(txn *t, const char *name, res_row *out);
/* The same inside a write transaction, locking the row against concurrent writers until
 * commit (PostgreSQL: FOR UPDATE, or FOR SHARE when share; SQLite's single writer needs
 * no row locks). */
int store_res_get_locked(txn *t, const char *name, res_row *out, bool share);
int store_res_get_by_id(txn *t, const char *workspace, const char *kind, const char *id, res_row *out);
int store_res_insert(txn *t, const res_row *r);
/* Updates body/version/update_time when the stored version equals expect_version. */
int store_res_update(txn *t, const res_row *r, long long expect_version);
/* Stores a view made after the fact (a List that had to render), if the row is still at
 * version: a concurrent update has written its own. */
int store_res_set_view(txn *t, const char *name, long long version, const char *view);
int store_res_delete(txn *t, const char *name);
/* Deletes every resource whose name starts with prefix + "/" (the subtree). */
int store_res_delete_tree(txn *t, const char *name);
/* Keyed range scan: children of parent of one kind with name > after, ascending. */
int store_res_list(txn *t, const char *parent, const char *kind, const char *after, int limit,
                   int (*fn)(void *, res_row *), void *ctx);
int store_res_count(txn *t, const char *parent, const char *kind);
/* Every resource of a kind with this secondary key (e.g. all policies of one subject). */
int store_res_list_ref(txn *t, const char *kind, const char *ref, int (*fn)(void *, res_row *), void *ctx);
/* Rows of a kind whose ref is NULL: written before the kind had a secondary key
 * (engine_backfill_refs gives them one). */
int store_res_list_noref(txn *t, const char *kind, int (*fn)(void *, res_row *), void *ctx);
int store_res_set_ref(txn *t, const char *name, const char *ref);
/* Every resource of a kind in a workspace, by name, after `after`. */
int store_res_list_ws(txn *t, const char *workspace, const char *kind, const char *after, int limit,
                      int (*fn)(void *, res_row *), void *ctx);

/* ---- audit trail ---- */
typedef struct audit_row {
    long long id;
    const char *workspace, *time, *actor, *access_token, *action, *resource, *before, *after, *request_id;
    long long time_ms;
} audit_row;
int store_audit_add(txn *t, const audit_row *a);
/* Newest first: id < before_id (0 = from the newest), optional resource prefix and
 * [start_ms, end_ms) window (0 = unbounded). */
int store_audit_list(txn *t, const char *workspace, long long before_id, const char *prefix, long long start_ms,
                     long long end_ms, int limit, int (*fn)(void *, const audit_row *), void *ctx);

/* ---- idempotency keys ---- */
/* Claims key for this request: ST_OK when the key was free (a placeholder row is written,
 * so a concurrent request with the same key waits on it), ST_CONFLICT when a row exists. */
int store_idem_claim(txn *t, const char *key, const char *req_hash, long long create_ms);
int store_idem_get(txn *t, const char *key, char *req_hash, int *status, char **body, long long *create_ms);
int store_idem_put(txn *t, const char *key, const char *req_hash, int status, const char *body, long long create_ms);

/* ---- intake (the Tracking API's durable event log, docs/intake.md) ---- */
/* Claims a messageId for dedup_ms from now: ST_OK when it is new (or its earlier claim
 * has expired), ST_CONFLICT when it is a duplicate. */
int store_dedup_claim(txn *t, const char *message_id, long long now_ms, long long dedup_ms);
/* One step of the sweep that removes expired claims: looks at up to limit claims after
 * cursor (in key order; "" is the start), deletes the expired ones among them, and moves
 * cursor (cap bytes) to the last claim looked at, or back to "" at the end of the table.
 * Claims have no expiry index (it cost an insert per event); sweeping at least twice as
 * many claims as were made keeps the table within about twice the live ones. */
int store_dedup_prune(txn *t, long long now_ms, int limit, char *cursor, size_t cap);
int store_event_add(txn *t, const char *source, long long received_ms, const char *message_id, const char *type,
                    const char *status, const char *violations, const char *event);
typedef struct intake_counts {
    long long received, accepted, blocked, duplicate, rejected;
} intake_counts;
/* Adds d to the source's lifetime counters. Counters are sharded (shard 0..15) so that
 * concurrent transactions on PostgreSQL do not all wait on one row lock. */
int store_counts_add(txn *t, const char *source, int shard, const intake_counts *d);
int store_reason_add(txn *t, const char *source, const char *reason, long long n);
int store_counts_get(txn *t, const char *source, intake_counts *out);
int store_reasons_list(txn *t, const char *source, int (*fn)(void *, const char *reason, long long n), void *ctx);
typedef struct event_row {
    long long id, received_ms;
    const char *message_id, *type, *status, *violations, *event;
} event_row;
/* Newest first by received_ms (then id), among id >= min_id, after the event before_id
 * (0: from the newest). */
int store_events_list(txn *t, const char *source, long long before_id, long long min_id, int limit,
                      int (*fn)(void *, const event_row *), void *ctx);
/* The id of the source's n-th newest event (n >= 1), ST_NOT_FOUND when it has fewer. */
int store_events_nth_id(txn *t, const char *source, int n, long long *id);

#endif
