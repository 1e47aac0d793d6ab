/* workspace_import — the checks of an import document that need no database, apart from
 * the handler (h_ws_import, engine.h) so that the fuzz target can drive them. */
#ifndef MANIFOLD_WORKSPACE_IMPORT_H
#define MANIFOLD_WORKSPACE_IMPORT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Is doc a well-formed import document for workspace ws_slug: known top-level fields,
 * version 1, the workspace's slug, each section a list of objects with a valid
 * workspace-relative name of its kind's shape, no duplicate names, and only fields the
 * kind accepts? On failure writes why (a message for a 400 body). Never reads the store. */
bool import_check(const json_t *doc, const char *ws_slug, char *why, size_t cap);

#endif
