/* TEMPORARY: a minimal store_dm_* until branch deliv-metrics (which owns the §11 storage)
 * is merged; removed by that merge. One row per (destination, metric, minute). */
#include "store/delivery_metrics.h"
#include "store/store_int.h"
#include <stdio.h>
#include <string.h>

static int ensure(txn *t)
{
    return store_run_(t, "CREATE TABLE IF NOT EXISTS dm_stub (destination TEXT NOT NULL, metric TEXT NOT NULL, "
                         "minute BIGINT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (destination, metric, minute))",
                      0, NULL, NULL, NULL, NULL);
}

int store_dm_add(txn *t, const char *destination, const char *metric, long long at_ms, long long n)
{
    char m[24], v[24];
    snprintf(m, sizeof m, "%lld", at_ms / 60000 * 60000);
    snprintf(v, sizeof v, "%lld", n);
    const char *p[] = {destination, metric, m, v};
    int rc = ensure(t);
    return rc ? rc : store_run_(t, "INSERT INTO dm_stub (destination, metric, minute, n) VALUES (?, ?, ?, ?) "
                                   "ON CONFLICT (destination, metric, minute) DO UPDATE SET n = dm_stub.n + excluded.n",
                                4, p, NULL, NULL, NULL);
}

int store_dm_latency(txn *t, const char *destination, long long at_ms, long long latency_ms)
{
    char name[48];
    snprintf(name, sizeof name, "latency_%lld", latency_ms);
    return store_dm_add(t, destination, name, at_ms, 1);
}

int store_dm_delete(txn *t, const char *destination)
{
    const char *p[] = {destination};
    int rc = ensure(t);
    return rc ? rc : store_run_(t, "DELETE FROM dm_stub WHERE destination = ?", 1, p, NULL, NULL, NULL);
}
