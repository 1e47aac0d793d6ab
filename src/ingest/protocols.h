/* protocols — source-level Protocols enforcement (delivery.md §2) as a pure module: a
 * source's schema config and its connected plan's rules compiled once, applied to one
 * event at a time. The intake (intake.c) compiles it when it loads a source into its
 * cache and applies it to track, identify and group events. */
#ifndef MANIFOLD_PROTOCOLS_H
#define MANIFOLD_PROTOCOLS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct protocols protocols;            /* a source's compiled enforcement: schema config + connected plan's compiled rules */
/* schema_config: the stored schema-config body of the source (JSON object as stored by kind_schema_config);
 * plan: the stored tracking-plan body (with its "rules") the source is connected to, or NULL when not connected.
 * source_slug / plan_id / plan_name: for context.protocols.sourceId and forwarded violation events. NULL on error (err filled). */
protocols *protocols_compile(const json_t *schema_config, const json_t *plan, const char *source_slug,
                             const char *plan_id, const char *plan_name, char *err, size_t errlen);
void protocols_free(protocols *);
typedef struct protocols_result {
    bool blocked;
    const char *reason;        /* when blocked: "unplanned", "schema_violation", "common_schema_violation", "unplanned_and_schema_violation" */
    json_t *violations;        /* new reference: array of {"type","field","description"} (may be empty) */
    const char *forward_blocked_to;    /* source slug or NULL (only when blocked) */
    const char *forward_violations_to; /* source slug or NULL (only when violations non-empty) */
} protocols_result;
/* Applies delivery.md §2 to event in place (omissions, context.protocols annotations). */
void protocols_apply(const protocols *p, json_t *event, protocols_result *out);
void protocols_result_clear(protocols_result *);
/* delivery.md §2.6: one "Violation Generated" track event for violation i of event (new reference). */
json_t *protocols_violation_event(const protocols *p, const json_t *event, const json_t *violation, const char *server_version);

#endif
