/* Destination filters (spec/config-api.md §10, spec/fql.md §6).
 *
 * A filter object {"if": FQL, "actions": [...], "enabled": bool, ...} is
 * validated and compiled once (dest_filter_compile); a destination's filters
 * are then applied to each event with dest_filters_apply, which evaluates the
 * compiled FQL and runs the actions. dest_filter_preview implements
 * POST /v1beta/filters/preview.
 *
 * Validation messages name the offending field and are meant to be sent as the
 * API's 400 error text unchanged, e.g.
 *     if: unexpected ')' at column 17, expected 'and', 'or' or end of input
 *     actions[0].percent: must be a number between 0 and 1
 * Title, description and name are the API layer's business, not checked here. */
#ifndef MANIFOLD_FILTERS_H
#define MANIFOLD_FILTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define DEST_FILTER_MAX_ACTIONS 64
#define DEST_FILTER_PREVIEW_MAX_INPUT 65536 /* bytes; 2x Segment's 32 KB event cap */

typedef struct dest_filter dest_filter;

typedef struct dest_filter_error {
    char message[320];
} dest_filter_error;

/* Validates and compiles a filter object. Accepted input aliases: action types
 * blocklist_fields / allowlist_fields, the inner key "field" for "fields", and
 * a bare list ({"properties": ["a"]}) for {"properties": {"fields": ["a"]}}.
 * Returns NULL with `err` filled in when the object is invalid. */
dest_filter *dest_filter_compile(const json_t *filter, dest_filter_error *err);

/* For filters read back from storage: never NULL (except out of memory). A
 * stored filter that no longer compiles is kept as a "broken" filter that, when
 * enabled, drops every event (fail closed: a broken PII filter must not leak). */
dest_filter *dest_filter_compile_stored(const json_t *filter);

void dest_filter_free(dest_filter *f);

bool dest_filter_enabled(const dest_filter *f); /* "enabled" (absent = false) */
bool dest_filter_broken(const dest_filter *f);

/* The actions in canonical wire form (blacklist_fields/whitelist_fields,
 * {"fields": [...]} objects): what the API should store and echo. Borrowed
 * reference, valid while `f` lives. */
const json_t *dest_filter_actions(const dest_filter *f);

/* Applies a destination's filters to `event` (not modified):
 *   every filter's "if" is evaluated against the event as received; then, over
 *   the matching filters, sample_event decisions, then drop_event, then
 *   blacklist_fields, then whitelist_fields (the documented order).
 * Returns a new reference to the resulting event — `event` itself (incref'ed)
 * when nothing changed, otherwise a modified deep copy — or NULL when the event
 * is dropped (also on out of memory: fail closed). Disabled filters are
 * skipped unless `include_disabled` (preview). */
json_t *dest_filters_apply(dest_filter *const *filters, size_t n, const json_t *event,
                           bool include_disabled);

/* POST /v1beta/filters/preview. `request` is the parsed request body
 * {"filter": {...}, "input": "<event JSON text>"}. Returns the response object
 * {"input", "output", "diff"} (spec/config-api.md §10.6), or NULL with a 400
 * message in `err` ("filter.if: ...", "input: invalid JSON: ..."). */
json_t *dest_filter_preview(const json_t *request, dest_filter_error *err);

#endif
