/* workspace_doc — the canonical workspace document shared by export and import
 * (docs/export-import.md): which kinds it holds, in which order, how a resource's
 * workspace-relative name is checked, and the canonical serialisation.
 *
 * A section is one kind: its key in the document ("destinations"), the kind descriptor,
 * and the shape of its names relative to the workspace ("sources/<id>/destinations/<id>",
 * written "*" in the table). The table's order is the dependency order of the import:
 * functions and tracking plans before the sources that use them, sources before their
 * schema configs and destinations, destinations before filters; deletes run backwards. */
#ifndef MANIFOLD_WORKSPACE_DOC_H
#define MANIFOLD_WORKSPACE_DOC_H
#include "api/engine.h"

#define WS_DOC_VERSION 1

typedef struct doc_section {
    const char *key;
    const kind *k;
    const char *const *shape; /* segments, NULL-terminated: literal collections and "*" ids */
} doc_section;

extern const doc_section doc_sections[];
extern const size_t doc_nsections;

/* Is rel ("sources/js/destinations/webhooks") a name of the section's shape with ids a
 * client may write? On failure writes why into why. */
bool doc_name_ok(const doc_section *s, const char *rel, char *why, size_t cap);

/* The section's resources in the workspace, read through t, as {rel name → exported
 * object (without "name")}. NULL after fail(). */
json_t *doc_current(call *c, txn *t, const doc_section *s, bool secrets);

/* The whole document of the call's workspace (read through t). NULL after fail(). */
json_t *doc_build(call *c, txn *t, bool secrets);

/* The canonical serialisation is json_write_sorted (util/json.h): compact, every object's
 * keys sorted. */

#endif
