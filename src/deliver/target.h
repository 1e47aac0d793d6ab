/* target — a destination type's driver, after Fluent Bit's output plugins: it builds the
 * request(s) for one attempt and reports one classified result; the engine owns queues,
 * retries, outcomes and metrics for every type. A destination-function target plugs in
 * as another driver whose send invokes the functions runtime and maps its result with
 * delivery.md §8 (nothing about HTTP is assumed by the engine). */
#ifndef MANIFOLD_DELIVER_TARGET_H
#define MANIFOLD_DELIVER_TARGET_H
#include "deliver/outbound.h"
#include "functions/runtime.h"
#include <jansson.h>
#include <stdbool.h>

typedef struct dattempt dattempt;

/* What a destination-function instance runs (delivery.md §8), read with its configuration. */
typedef struct dfunction {
    fnrt *rt;
    const char *instance;   /* the destination's name: the warm-context key */
    const char *version;    /* "<function>@<deployed_version>": a code change recycles the context */
    const char *code;       /* the deployed code; NULL: the function is gone */
    const char *settings;   /* {name: value} JSON text; NULL: a required setting has no value */
} dfunction;
typedef void (*dattempt_done)(dattempt *a, const out_result *r);

struct dattempt {
    const char *body;       /* the frozen payload: identical bytes on every attempt */
    size_t len;
    const json_t *config;   /* the destination's settings at this attempt (borrowed for send only) */
    const dfunction *fn;    /* a function instance's (borrowed for send only), else NULL */
    dattempt_done done;     /* called exactly once, maybe from inside send */
};

typedef struct target_driver {
    const char *slug;       /* catalog slug it serves */
    bool all_types;         /* deliver every event type whatever the catalog's "methods" say */
    /* Starts one attempt. Requests go through o; the driver reports with a->done. */
    void (*send)(outbound *o, dattempt *a);
} target_driver;

extern const target_driver target_webhooks;
/* Destination functions: the event goes to the Functions runtime, not over HTTP. */
extern const target_driver target_function;

/* The driver for a catalog slug, or NULL (no integration: events are filtered
 * NO_INTEGRATION). */
const target_driver *target_for(const char *slug);

/* Webhooks §6.1: hooks beyond this are refused when the destination is saved. */
#define WEBHOOKS_MAX_HOOKS 5

#endif
