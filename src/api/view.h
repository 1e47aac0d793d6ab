/* view — a resource's public JSON, rendered when the resource is written and stored beside
 * its body, so that List writes a page by concatenating stored bytes instead of parsing and
 * re-serialising every body (docs/architecture.md, "List without re-parsing").
 *
 * A stored view is only a cache, tagged with what it was rendered from: the render epoch
 * (what rendering depends on besides the row: the render code's revision, the catalog, the
 * server key) and a stamp of the row (a keyless hash of its version, body, parent and
 * timestamps). Stored text: "<epoch>:<stamp>\n<json>". A view that is missing or carries
 * another epoch or stamp is ignored and the reader renders, so a row changed behind the
 * engine's back (an older binary, an operator's UPDATE) is never served stale. */
#ifndef MANIFOLD_VIEW_H
#define MANIFOLD_VIEW_H
#include <stddef.h>
#include "store/store.h"
#include "util/buf.h"

/* The stamp of r: 16 hex digits and a NUL. */
void view_stamp(const res_row *r, char out[17]);
/* Appends the stored form of json (len bytes), rendered at epoch from row r, to out. */
void view_make(buf *out, const char *epoch, const res_row *r, const char *json, size_t len);
/* The JSON inside r->view, or NULL when there is none or it was made under another epoch
 * or from another state of the row (stale: render instead). *len receives its length. */
const char *view_json(const res_row *r, const char *epoch, size_t *len);

#endif
