/* db — the backend-neutral SQL driver interface, shaped like SQLite's VFS: a driver is a
 * struct of function pointers plus an opaque connection. Everything above this layer
 * (store.c) writes one set of SQL with '?' placeholders; a driver adapts it ($1.. for
 * PostgreSQL). All parameters and results travel as text; NULL means SQL NULL.
 *
 * Concurrency: a db_pool hands out connections. Drivers that allow only one writer at a
 * time (SQLite) get a dedicated writer connection guarded by a mutex in our code, so
 * writers queue in-process instead of busy-waiting on the database lock. */
#ifndef MANIFOLD_DB_H
#define MANIFOLD_DB_H
#include <stdbool.h>
#include <stddef.h>

typedef struct db_conn db_conn;

enum db_rc {
    DB_OK = 0,
    DB_CONSTRAINT = 1, /* unique / primary key violation */
    DB_ERROR = 2,      /* anything else: connection lost, syntax, disk full */
};

/* Called once per result row. vals[i] is NULL for SQL NULL. Return non-zero to stop. */
typedef int (*db_row_fn)(void *ctx, int ncol, char *const *vals, const size_t *lens);

typedef struct db_driver {
    const char *name;
    bool single_writer;
    /* DDL that differs per backend; executed as one script inside a transaction. */
    const char *schema_sql;
    int  (*open)(const char *dsn, db_conn **out, char *err, size_t errlen);
    void (*close)(db_conn *);
    /* Runs one statement. rows (may be NULL) receives result rows; *changes (may be NULL)
     * the number of rows inserted/updated/deleted. sql must be a string with static
     * storage duration: drivers cache prepared statements by its address. */
    int  (*exec)(db_conn *, const char *sql, int nparams, const char *const *params,
                 db_row_fn rows, void *ctx, long *changes);
    /* Runs a multi-statement script without parameters (migrations). */
    int  (*script)(db_conn *, const char *sql);
    int  (*begin)(db_conn *, bool write);
    int  (*commit)(db_conn *);
    int  (*rollback)(db_conn *);
    /* Optional: makes every transaction committed so far on this connection durable, for
     * drivers whose commit does not (SQLite with synchronous=NORMAL: fdatasync of the
     * WAL). It must not use the connection's handle otherwise: it runs while another
     * thread uses the connection. */
    int  (*sync)(db_conn *);
    /* Optional, called by the thread that calls sync: log maintenance (SQLite: a WAL
     * checkpoint once it has grown). in_slot: right after a commit, before any other
     * transaction begins (keep it short); otherwise concurrently with the writer. */
    int  (*checkpoint)(db_conn *, bool in_slot);
    /* Optional: one statement run inside a write transaction just before its COMMIT when
     * it changed something other processes cache: one parameter, the change's payload
     * (drivers shared by several processes: PostgreSQL's NOTIFY). */
    const char *notify_sql;
    /* The last error message on this connection (never contains parameter values). */
    const char *(*errmsg)(db_conn *);
} db_driver;

extern const db_driver db_sqlite;
extern const db_driver db_postgres;

/* Picks the driver for a --database value: postgres:// or postgresql:// → PostgreSQL,
 * anything else is a SQLite file path. */
const db_driver *db_driver_for(const char *dsn);

typedef struct db_pool db_pool;

db_pool *db_pool_open(const char *dsn, int size, char *err, size_t errlen);
void db_pool_close(db_pool *);
const db_driver *db_pool_driver(db_pool *);
/* Borrows a connection; write=true gives the writer connection on single-writer drivers. */
db_conn *db_acquire(db_pool *, bool write);
void db_release(db_pool *, db_conn *, bool write);
/* For the metrics: connections handed out now, threads waiting for one, pool size. */
void db_pool_stats(db_pool *, int *in_use, int *waiting, int *size);

#endif
