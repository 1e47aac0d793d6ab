/* Connection pool: readers share N connections; single-writer backends get one extra
 * writer connection behind a mutex (writers queue here, not in SQLite's busy handler). */
#include "store/db.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct db_pool {
    const db_driver *drv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int size;
    db_conn **conns;
    bool *busy;
    db_conn *writer;          /* only for single-writer drivers */
    pthread_mutex_t writer_mu;
    /* For the metrics (db_pool_stats): connections handed out, threads waiting for one. */
    atomic_int in_use, waiting;
};

const db_driver *db_driver_for(const char *dsn)
{
    if (!strncmp(dsn, "postgres://", 11) || !strncmp(dsn, "postgresql://", 13))
        return &db_postgres;
    return &db_sqlite;
}

db_pool *db_pool_open(const char *dsn, int size, char *err, size_t errlen)
{
    db_pool *p = calloc(1, sizeof *p);
    p->drv = db_driver_for(dsn);
    p->size = size < 1 ? 1 : size;
    p->conns = calloc((size_t)p->size, sizeof *p->conns);
    p->busy = calloc((size_t)p->size, sizeof *p->busy);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->writer_mu, NULL);
    if (p->drv->single_writer && p->drv->open(dsn, &p->writer, err, errlen) != DB_OK)
        goto fail;
    for (int i = 0; i < p->size; i++)
        if (p->drv->open(dsn, &p->conns[i], err, errlen) != DB_OK)
            goto fail;
    return p;
fail:
    db_pool_close(p);
    return NULL;
}

void db_pool_close(db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i])
            p->drv->close(p->conns[i]);
    if (p->writer)
        p->drv->close(p->writer);
    free(p->conns);
    free(p->busy);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->writer_mu);
    free(p);
}

const db_driver *db_pool_driver(db_pool *p) { return p->drv; }

db_conn *db_acquire(db_pool *p, bool write)
{
    if (write && p->writer) {
        if (pthread_mutex_trylock(&p->writer_mu)) {
            atomic_fetch_add_explicit(&p->waiting, 1, memory_order_relaxed);
            pthread_mutex_lock(&p->writer_mu);
            atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&p->in_use, 1, memory_order_relaxed);
        return p->writer;
    }
    pthread_mutex_lock(&p->mu);
    bool counted = false;
    for (;;) {
        for (int i = 0; i < p->size; i++) {
            if (!p->busy[i]) {
                p->busy[i] = true;
                if (counted)
                    atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&p->in_use, 1, memory_order_relaxed);
                pthread_mutex_unlock(&p->mu);
                return p->conns[i];
            }
        }
        if (!counted)
            atomic_fetch_add_explicit(&p->waiting, 1, memory_order_relaxed), counted = true;
        pthread_cond_wait(&p->cv, &p->mu);
    }
}

void db_pool_stats(db_pool *p, int *in_use, int *waiting, int *size)
{
    *in_use = atomic_load_explicit(&p->in_use, memory_order_relaxed);
    *waiting = atomic_load_explicit(&p->waiting, memory_order_relaxed);
    *size = p->size + (p->writer ? 1 : 0);
}

void db_release(db_pool *p, db_conn *c, bool write)
{
    atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
    if (write && p->writer) {
        pthread_mutex_unlock(&p->writer_mu);
        return;
    }
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size; i++)
        if (p->conns[i] == c)
            p->busy[i] = false;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
