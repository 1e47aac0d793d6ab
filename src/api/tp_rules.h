/* tp_rules.h — the one way to compile a tracking-plan rule, shared by the API's
 * :validate cache (kind_tracking_plan.c) and the data plane (ingest/protocols.c), so an
 * event is judged by the same options everywhere: known formats assert (as Segment's
 * ajv-formats does) and the meta-schemas are served to rules that $ref them. */
#ifndef MANIFOLD_TP_RULES_H
#define MANIFOLD_TP_RULES_H

#include <jansson.h>

#include "schema/schema.h"

/* Compiles one rule (rules.global/identify/group or rules.events[].rules). NULL when
 * `rule` is not an object (then err->message is empty) or does not compile (err filled;
 * err may be NULL). The schema keeps a reference to `rule`: do not modify it after. */
schema_t *tp_compile_rule(json_t *rule, schema_error_t *err);

#endif
