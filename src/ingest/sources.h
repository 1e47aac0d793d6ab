/* sources — write key → source, for the intake: an in-memory cache in front of the
 * resources table, holding each source's compiled Protocols enforcement (compiled when
 * the entry is loaded, never per event).
 *
 * Freshness: every entry carries the store's config epoch (store_config_epoch) from when
 * it was loaded; any committed change to a resource in this process bumps the epoch, so
 * the next event reloads (a new source's key works at once, a deleted source's key is
 * unknown at once, a schema-config, connection or plan change applies to the next
 * event). Changes committed by other processes on the same PostgreSQL database bump it
 * too, a few milliseconds later (the store's watcher: LISTEN/NOTIFY, docs/scaling.md);
 * an entry is also re-checked once it is older than the TTL (one second), which bounds
 * how long a process may act on an old configuration even if that signal is lost. */
#ifndef MANIFOLD_INGEST_SOURCES_H
#define MANIFOLD_INGEST_SOURCES_H
#include "ingest/protocols.h"
#include "store/store.h"
#include <stdatomic.h>

typedef struct src_info {
    atomic_int refs;
    char *name;       /* "workspaces/w/sources/s" (the event log's key) */
    char *ws;         /* workspace slug */
    char *slug;
    protocols *prot;  /* NULL when the source is not connected to a tracking plan */
} src_info;

typedef struct src_cache src_cache;

src_cache *src_cache_new(store *st, int ttl_ms);
void src_cache_free(src_cache *);
/* ST_OK with *out (a reference: src_release it), ST_NOT_FOUND, or ST_ERROR. */
int src_cache_get(src_cache *, const char *write_key, src_info **out);
void src_release(src_info *);

#endif
