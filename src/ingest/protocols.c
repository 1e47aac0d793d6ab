/* PLACEHOLDER — replaced at merge by the real Protocols module (branch of the engineer
 * writing src/ingest/protocols.c). It compiles to an object that allows every event, adds
 * no annotation and reports no violation, so the intake can be built and tested against
 * the interface of protocols.h before the real module lands. Do not extend it. */
#include "ingest/protocols.h"
#include <stdlib.h>

struct protocols {
    int unused;
};

protocols *protocols_compile(const json_t *schema_config, const json_t *plan, const char *source_slug,
                             const char *plan_id, const char *plan_name, char *err, size_t errlen)
{
    (void)schema_config, (void)plan, (void)source_slug, (void)plan_id, (void)plan_name, (void)err, (void)errlen;
    return calloc(1, sizeof(protocols));
}

void protocols_free(protocols *p) { free(p); }

void protocols_apply(const protocols *p, json_t *event, protocols_result *out)
{
    (void)p, (void)event;
    *out = (protocols_result){0};
}

void protocols_result_clear(protocols_result *r)
{
    json_decref(r->violations);
    *r = (protocols_result){0};
}

json_t *protocols_violation_event(const protocols *p, const json_t *event, const json_t *violation,
                                  const char *server_version)
{
    (void)p, (void)event, (void)violation, (void)server_version;
    return NULL;
}
