/* protocols.h — source-level Protocols enforcement (delivery.md §2): a source's schema
 * config and its connected tracking plan, compiled once, applied to each event. Pure: no
 * I/O, no store; forwarding blocked events and violation events is the intake's job. */
#ifndef MANIFOLD_PROTOCOLS_H
#define MANIFOLD_PROTOCOLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct protocols protocols; /* a source's compiled enforcement: schema config + connected plan's compiled rules */

/* schema_config: the stored schema-config body of the source (JSON object as stored by the schema-config kind;
 * missing fields = their defaults);
 * plan: the stored tracking-plan body (with its "rules") the source is connected to, or NULL when not connected
 * (then nothing is enforced).
 * source_slug / plan_id / plan_name: for context.protocols.sourceId and forwarded violation events.
 * NULL on error (err filled). Neither JSON document is kept: the caller may free or change them after. */
protocols *protocols_compile(const json_t *schema_config, const json_t *plan, const char *source_slug,
                             const char *plan_id, const char *plan_name, char *err, size_t errlen);
void protocols_free(protocols *);

typedef struct protocols_result {
    bool blocked;
    const char *reason;        /* when blocked: "unplanned", "schema_violation", "common_schema_violation",
                                  "unplanned_and_schema_violation" */
    json_t *violations;        /* new reference: array of {"type","field","description"} (may be empty) */
    const char *forward_blocked_to;    /* source slug or NULL (only when blocked) */
    const char *forward_violations_to; /* source slug or NULL (only when violations non-empty) */
} protocols_result;

/* Applies delivery.md §2 to event in place (omissions, context.protocols annotations). Thread-safe for
 * concurrent calls on one protocols. The strings in *out live as long as p. Events forwarded from
 * another source (§2.5: they carry "forwardedFromProject") bypass the checks: do not pass them. */
void protocols_apply(const protocols *p, json_t *event, protocols_result *out);
void protocols_result_clear(protocols_result *);

/* delivery.md §2.6: one "Violation Generated" track event for one violation of event (new reference). */
json_t *protocols_violation_event(const protocols *p, const json_t *event, const json_t *violation,
                                  const char *server_version);

#endif
