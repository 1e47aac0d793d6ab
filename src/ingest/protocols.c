/* protocols.c — source-level Protocols enforcement (delivery.md §2).
 *
 * protocols_compile turns a source's schema config and its connected tracking plan into an
 * immutable struct: every rule compiled once (tp_compile_rule: the same options as the
 * API's :validate, formats asserting), event rules sorted by (name, version) for a binary
 * search. protocols_apply then runs, for one event, the rows of the §2.3 table in this
 * order — the order is the contract, each step sees the event as the previous one left it:
 *
 *   page, screen, alias, no plan connected, no "type"   → untouched, never blocked (§2.1)
 *   track
 *     1  unplanned (no events[] entry of that exact name) and allow_unplanned_track_events
 *        false → block "unplanned", or "unplanned_and_schema_violation" when the event also
 *        violates rules.global. An allowed unplanned event skips 2–4 (nothing is planned).
 *     2  allow_unplanned_track_event_properties false → omit the top-level properties that
 *        are not keys of the rule's properties.properties.properties          → "omitted"
 *     3  the rule (the version named by context.protocols.event_version, else the oldest)
 *        is violated and allow_track_event_on_violations false → block "schema_violation"
 *     4  allow_track_properties_on_violations false → omit the properties the rule's
 *        violations name                                          → "omitted_on_violation"
 *     9  rules.global on the event as 1–4 left it: ALLOW records, OMIT_PROPERTIES omits
 *        the offending properties, BLOCK blocks "common_schema_violation"
 *   identify / group (rules.identify / rules.group; no rule = every trait unplanned)
 *     5/7  allow_unplanned_{identify,group}_traits false → omit unplanned traits
 *     6/8  allow_{identify,group}_traits_on_violations false → omit violating traits
 *     10/11 rules.global as in 9, with OMIT_TRAITS
 *
 * Unplanned names are removed before the rule is checked, so the rule judges the event
 * as delivered (no violations about properties already gone). The "offending" key of a
 * violation is the first segment after properties./traits. of its path; a required
 * violation names an absent key, so it removes nothing (but it still blocks in 3).
 * Omission never touches context or top-level fields. Whatever was omitted or violated is
 * recorded in context.protocols (§2.4); forwarding is the intake's job, driven by the
 * forward_* fields of the result (§2.5, §2.6).
 *
 * Hot path: the event's view (util/jview.h) is built once and serves its rule and
 * rules.global; it is rebuilt only when an omission changed the event in between. It holds
 * only the members the two rules can read (a projection computed at compile time, see
 * "what the rules can read"). Views and violation results live in per-thread scratch that
 * is reused, so a valid event allocates only the empty violations array the result hands
 * back.
 */
#include "ingest/protocols.h"

#include "api/tp_rules.h"
#include "schema/schema.h"
#include "util/buf.h"
#include "util/jview.h"
#include "util/util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VIOLATIONS 200 /* per rule and event: as :validate; a bad event is not a DoS */

typedef enum { COMMON_ALLOW, COMMON_OMIT, COMMON_BLOCK } common_t;

typedef struct proj proj;

typedef struct prule {
    const char *name;      /* borrowed from protocols.plan */
    json_int_t version;
    const json_t *doc;     /* the rule, borrowed from protocols.plan; NULL: none */
    schema_t *schema;      /* NULL: no rule, nothing to check */
    const json_t *planned; /* object whose keys are the planned names; NULL: none planned */
    proj *reads;           /* what this rule and rules.global can read of an event; NULL: all */
} prule;

struct protocols {
    bool enforce; /* a plan is connected */
    bool allow_unplanned_events, allow_unplanned_props, allow_event_on_violations, allow_props_on_violations;
    bool allow_unplanned_identify, allow_identify_on_violations, allow_unplanned_group, allow_group_on_violations;
    common_t common_track, common_identify, common_group;
    char *fwd_blocked, *fwd_violations; /* NULL: off */
    char *source_slug, *plan_id, *plan_name;
    json_t *plan;   /* our own copy: schemas and names point into it */
    prule *events;  /* sorted by (name, version) */
    size_t nevents;
    prule identify, group;
    schema_t *global;
    proj *global_reads; /* for unplanned track events: rules.global alone; NULL: all */
    size_t max_members; /* the most members any projected view of this plan holds */
};

/* ---- compile ------------------------------------------------------------------------ */

static bool fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const struct {
    const char *name;
    size_t off;
} config_bools[] = {
    {"allow_unplanned_track_events", offsetof(protocols, allow_unplanned_events)},
    {"allow_unplanned_track_event_properties", offsetof(protocols, allow_unplanned_props)},
    {"allow_track_event_on_violations", offsetof(protocols, allow_event_on_violations)},
    {"allow_track_properties_on_violations", offsetof(protocols, allow_props_on_violations)},
    {"allow_unplanned_identify_traits", offsetof(protocols, allow_unplanned_identify)},
    {"allow_identify_traits_on_violations", offsetof(protocols, allow_identify_on_violations)},
    {"allow_unplanned_group_traits", offsetof(protocols, allow_unplanned_group)},
    {"allow_group_traits_on_violations", offsetof(protocols, allow_group_on_violations)},
};

static const struct {
    const char *name, *omit;
    size_t off;
} config_commons[] = {
    {"common_track_event_on_violations", "OMIT_PROPERTIES", offsetof(protocols, common_track)},
    {"common_identify_event_on_violations", "OMIT_TRAITS", offsetof(protocols, common_identify)},
    {"common_group_event_on_violations", "OMIT_TRAITS", offsetof(protocols, common_group)},
};

/* A forwarding target: "" or missing turns forwarding off (§2.5). */
static bool read_target(const json_t *sc, const char *name, char **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(sc, name);
    if (v && !json_is_string(v))
        return fail(err, errlen, "schema_config.%s must be a string", name);
    if (v && json_string_length(v))
        *out = strdup(json_string_value(v));
    return true;
}

/* Missing fields take the §7.5 defaults (all allow); a field of the wrong type is an error
 * rather than a silent default, because a default would quietly stop enforcing. */
static bool read_config(protocols *p, const json_t *sc, char *err, size_t errlen)
{
    if (sc && !json_is_object(sc))
        return fail(err, errlen, "schema config must be an object");
    for (size_t i = 0; i < sizeof config_bools / sizeof config_bools[0]; i++) {
        const json_t *v = json_object_get(sc, config_bools[i].name);
        if (v && !json_is_boolean(v))
            return fail(err, errlen, "schema_config.%s must be a boolean", config_bools[i].name);
        *(bool *)((char *)p + config_bools[i].off) = !v || json_is_true(v);
    }
    for (size_t i = 0; i < sizeof config_commons / sizeof config_commons[0]; i++) {
        const char *s = json_string_value(json_object_get(sc, config_commons[i].name));
        common_t *dst = (common_t *)(void *)((char *)p + config_commons[i].off);
        if (!json_object_get(sc, config_commons[i].name) || !strcmp(s ? s : "", "ALLOW"))
            *dst = COMMON_ALLOW;
        else if (s && !strcmp(s, config_commons[i].omit))
            *dst = COMMON_OMIT;
        else if (s && !strcmp(s, "BLOCK"))
            *dst = COMMON_BLOCK;
        else
            return fail(err, errlen, "schema_config.%s must be ALLOW, %s or BLOCK", config_commons[i].name,
                        config_commons[i].omit);
    }
    return read_target(sc, "forwarding_blocked_events_to", &p->fwd_blocked, err, errlen) &&
           read_target(sc, "forwarding_violations_to", &p->fwd_violations, err, errlen);
}

/* The planned names of a rule: the keys of properties.<container>.properties (§2.2). */
static const json_t *planned_of(const json_t *rule, const char *container)
{
    const json_t *o = json_object_get(json_object_get(json_object_get(rule, "properties"), container), "properties");
    return json_is_object(o) ? o : NULL;
}

/* An absent rule is fine (nothing to check); a present one must compile. */
static bool compile_one(json_t *rule, const char *where, schema_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!rule || json_is_null(rule))
        return true;
    schema_error_t e;
    *out = tp_compile_rule(rule, &e);
    if (*out)
        return true;
    if (!json_is_object(rule))
        return fail(err, errlen, "%s must be a JSON Schema object", where);
    return fail(err, errlen, "%s: invalid JSON Schema at '%s': %s", where, e.pointer, e.message);
}

/* ---- what the rules can read (the view is built of that only) ----------------------- */

/* Building the view of a whole event costs more than validating it (a 1 KB event: the
 * view ~1 µs of ~1.1 µs), yet a rule reads only the members its "properties" and
 * "required" name wherever a node has nothing else that reads an object's members: the
 * event rule reads "properties", rules.global a few keys of "context". So at compile time
 * each rule pair (event rule + rules.global) gets a projection — a tree of member names —
 * and the view is built of those members only, with the ordinary full view (jview_add)
 * below any node the projection cannot bound. The validator sees the same values at the
 * same paths, so the verdicts are identical; test_protocols checks that against
 * validating the whole event. */
struct proj {
    size_t n;
    struct proj_key {
        const char *key; /* borrowed from protocols.plan */
        uint32_t len, hash;
        uint64_t head;
        proj *child; /* what can be read of the member's value; NULL: all of it */
    } *keys;
};

#define PROJ_MAX_DEPTH 32
/* Projected objects stay below jview's index threshold so they need no key index; a
 * node reading more members than that is viewed whole (it is most of the object anyway). */
#define PROJ_MAX_KEYS (JVIEW_INDEX_MIN - 1)

static void proj_free(proj *pj)
{
    if (!pj)
        return;
    for (size_t i = 0; i < pj->n; i++)
        proj_free(pj->keys[i].child);
    free(pj->keys);
    free(pj);
}

/* Keywords that, on an object instance, read nothing but the members "properties" and
 * "required" name: the ones of other instance types (no-ops on an object) and annotations.
 * Anything else — additionalProperties, patternProperties, enum, allOf, $ref, …, or a
 * keyword this list does not know — makes the node read the whole object. */
static bool bounded_keyword(const char *k)
{
    static const char *const ok[] = {
        "properties", "required", "type", "$schema", "$id", "id", "definitions", "format", "pattern",
        "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "items", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains", "description", "title",
        "labels", "$comment", "examples", "default", "readOnly", "writeOnly", NULL};
    for (const char *const *o = ok; *o; o++)
        if (!strcmp(k, *o))
            return true;
    return false;
}

static bool bounded_node(const json_t *s)
{
    const char *k;
    const json_t *v;
    if (!json_is_object(s))
        return false;
    json_object_foreach((json_t *)s, k, v) if (!bounded_keyword(k)) return false;
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    return (!props || json_is_object(props)) && (!req || json_is_array(req));
}

/* The entry for key in pj, added (reading nothing yet: an empty projection) if missing. */
static struct proj_key *proj_key_get(proj *pj, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < pj->n; i++)
        if (pj->keys[i].len == len && !memcmp(pj->keys[i].key, key, len))
            return &pj->keys[i];
    struct proj_key *keys = realloc(pj->keys, (pj->n + 1) * sizeof *keys);
    proj *child = calloc(1, sizeof *child);
    if (!keys || !child || len > UINT32_MAX) {
        if (keys)
            pj->keys = keys;
        free(child);
        return NULL;
    }
    pj->keys = keys;
    struct proj_key *e = &keys[pj->n++];
    e->key = key;
    e->len = (uint32_t)len;
    e->head = jview_key_head(key, len);
    e->hash = jview_key_hash(e->head, len);
    e->child = child;
    return e;
}

/* Adds to *pp what schema s can read of an object instance. *pp NULL means "all of it"
 * already; a node that cannot be bounded turns it into that. */
static void proj_merge(proj **pp, const json_t *s, unsigned depth)
{
    if (!*pp)
        return;
    if (depth >= PROJ_MAX_DEPTH || !bounded_node(s))
        goto all;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(s, "properties"), k, v) {
        struct proj_key *e = proj_key_get(*pp, k);
        if (!e)
            goto all;
        proj_merge(&e->child, v, depth + 1);
    }
    size_t i;
    json_array_foreach(json_object_get(s, "required"), i, v) { /* presence only: the value is not read */
        if (json_is_string(v) && !proj_key_get(*pp, json_string_value(v)))
            goto all;
    }
    if ((*pp)->n <= PROJ_MAX_KEYS)
        return;
all:
    proj_free(*pp);
    *pp = NULL;
}

/* What rule a and rule b (either may be NULL: absent) can read of an event; NULL: all. */
static proj *proj_for(const json_t *a, const json_t *b)
{
    proj *pj = calloc(1, sizeof *pj);
    if (a)
        proj_merge(&pj, a, 0);
    if (b)
        proj_merge(&pj, b, 0);
    return pj;
}

/* Members the projected objects of pj hold at most: the scratch buffer's size for it. */
static size_t proj_members(const proj *pj)
{
    size_t n = pj ? pj->n : 0;
    for (size_t i = 0; pj && i < pj->n; i++)
        n += proj_members(pj->keys[i].child);
    return n;
}

static int prule_cmp(const void *a, const void *b)
{
    const prule *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->version > y->version) - (x->version < y->version);
}

static bool compile_events(protocols *p, json_t *events, char *err, size_t errlen)
{
    if (events && !json_is_array(events))
        return fail(err, errlen, "rules.events must be a list");
    p->nevents = json_array_size(events);
    p->events = calloc(p->nevents ? p->nevents : 1, sizeof *p->events);
    if (!p->events)
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < p->nevents; i++) {
        json_t *e = json_array_get(events, i), *rule = json_object_get(e, "rules");
        prule *r = &p->events[i];
        r->name = json_string_value(json_object_get(e, "name"));
        if (!r->name)
            return fail(err, errlen, "rules.events[%zu].name must be a string", i);
        json_t *v = json_object_get(e, "version");
        r->version = json_is_integer(v) ? json_integer_value(v) : 1; /* as the API's :validate */
        r->doc = json_is_null(rule) ? NULL : rule;
        r->planned = planned_of(rule, "properties");
        char where[64];
        snprintf(where, sizeof where, "rules.events[%zu]", i);
        if (!compile_one(rule, where, &r->schema, err, errlen))
            return false;
    }
    qsort(p->events, p->nevents, sizeof *p->events, prule_cmp);
    return true;
}

/* The projections of every rule pair, and the scratch room the largest one needs.
 * Schemas that compiled are objects; absent ones read nothing. */
static void compile_reads(protocols *p, const json_t *global, const json_t *id, const json_t *grp)
{
    p->global_reads = proj_for(global, NULL);
    p->identify.reads = proj_for(p->identify.schema ? id : NULL, global);
    p->group.reads = proj_for(p->group.schema ? grp : NULL, global);
    size_t m = proj_members(p->global_reads);
    p->max_members = m > proj_members(p->identify.reads) ? m : proj_members(p->identify.reads);
    if ((m = proj_members(p->group.reads)) > p->max_members)
        p->max_members = m;
    for (size_t i = 0; i < p->nevents; i++) {
        p->events[i].reads = proj_for(p->events[i].schema ? p->events[i].doc : NULL, global);
        if ((m = proj_members(p->events[i].reads)) > p->max_members)
            p->max_members = m;
    }
}

static bool compile_plan(protocols *p, const json_t *plan, char *err, size_t errlen)
{
    /* A deep copy: compiled schemas point into their documents, which the caller may free. */
    p->plan = json_deep_copy(plan);
    if (!p->plan)
        return fail(err, errlen, "tracking plan must be a JSON object");
    json_t *rules = json_object_get(p->plan, "rules");
    if (rules && !json_is_object(rules))
        return fail(err, errlen, "tracking plan rules must be an object");
    json_t *id = json_object_get(rules, "identify"), *grp = json_object_get(rules, "group");
    json_t *global = json_object_get(rules, "global");
    p->identify.planned = planned_of(id, "traits");
    p->group.planned = planned_of(grp, "traits");
    if (!compile_one(global, "rules.global", &p->global, err, errlen) ||
        !compile_one(id, "rules.identify", &p->identify.schema, err, errlen) ||
        !compile_one(grp, "rules.group", &p->group.schema, err, errlen) ||
        !compile_events(p, json_object_get(rules, "events"), err, errlen))
        return false;
    compile_reads(p, p->global ? global : NULL, id, grp);
    return true;
}

protocols *protocols_compile(const json_t *schema_config, const json_t *plan, const char *source_slug,
                             const char *plan_id, const char *plan_name, char *err, size_t errlen)
{
    protocols *p = calloc(1, sizeof *p);
    if (!p) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    p->source_slug = strdup(source_slug ? source_slug : "");
    p->plan_id = strdup(plan_id ? plan_id : "");
    p->plan_name = strdup(plan_name ? plan_name : "");
    p->enforce = plan != NULL;
    if (!p->source_slug || !p->plan_id || !p->plan_name) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    if (!read_config(p, schema_config, err, errlen) || (plan && !compile_plan(p, plan, err, errlen)))
        goto bad;
    return p;
bad:
    protocols_free(p);
    return NULL;
}

void protocols_free(protocols *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nevents; i++) {
        schema_free(p->events[i].schema);
        proj_free(p->events[i].reads);
    }
    free(p->events);
    proj_free(p->global_reads);
    proj_free(p->identify.reads);
    proj_free(p->group.reads);
    schema_free(p->global);
    schema_free(p->identify.schema);
    schema_free(p->group.schema);
    json_decref(p->plan);
    free(p->fwd_blocked);
    free(p->fwd_violations);
    free(p->source_slug);
    free(p->plan_id);
    free(p->plan_name);
    free(p);
}

/* ---- per-thread scratch ------------------------------------------------------------- */

/* A view document and a violation result per thread, reused across events: both stop
 * allocating once grown, and no lock is needed for concurrent protocols_apply calls. */
typedef struct scratch {
    jview_doc_t *doc;
    schema_result_t res;
    jview_t root;            /* the projected view of the event */
    jview_member_t *members; /* the projected objects' members */
    size_t cap, used;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local scratch *my_scratch;

static void scratch_free(void *v)
{
    scratch *s = v;
    jview_doc_free(s->doc);
    schema_result_free(&s->res);
    free(s->members);
    free(s);
}

static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

static scratch *scratch_get(void)
{
    if (my_scratch)
        return my_scratch;
    pthread_once(&scratch_once, scratch_key_init);
    scratch *s = calloc(1, sizeof *s);
    if (!s || !(s->doc = jview_doc_new())) {
        /* As buf.h: a process that cannot allocate this cannot enforce anything. */
        log_error("protocols: out of memory");
        abort();
    }
    s->res.limit = MAX_VIOLATIONS;
    pthread_setspecific(scratch_key, s); /* frees it at thread exit */
    return my_scratch = s;
}

/* ---- apply -------------------------------------------------------------------------- */

typedef struct run {
    const protocols *p;
    json_t *event;
    const char *container;   /* "properties" (track) or "traits" */
    scratch *sc;
    const proj *reads;       /* what the rules of this event can read; NULL: all */
    const jview_t *view;     /* of the event as it is now; NULL: build before use */
    json_t *violations;      /* public records; NULL until the first */
    json_t *omitted, *omitted_on_violation; /* NULL until the first */
    json_t *offenders;       /* keys named by the last check's violations; NULL: none */
} run;

static size_t nviol(const run *r) { return json_array_size(r->violations); }

/* "expected integer, got number" → "Invalid type. Expected: integer, given: number". */
static void describe_type(const char *msg, buf *d)
{
    const char *got = strstr(msg, ", got ");
    if (strncmp(msg, "expected ", 9) || !got) {
        buf_puts(d, msg);
        return;
    }
    buf_printf(d, "Invalid type. Expected: %.*s, given: %s", (int)(got - msg - 9), msg + 9, got + 6);
}

/* One §2.4 record. Keyword → type: required → Required, type → Invalid Type, the rest
 * (enum, const, pattern, format, minimum, additionalProperties, …) → Invalid Value. */
static json_t *record(const schema_violation_t *v, const char *field)
{
    const char *type = "Invalid Value";
    buf d = {0};
    if (!strcmp(v->keyword, "required")) {
        type = "Required";
        buf_printf(&d, "%s is required", field);
    } else if (!strcmp(v->keyword, "type")) {
        type = "Invalid Type";
        describe_type(v->message, &d);
    } else {
        buf_printf(&d, "%s%s%s", field, *field ? " " : "", v->message);
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", type, "field", field, "description", buf_cstr(&d));
    buf_free(&d);
    return o;
}

/* Turns a violation's JSON pointer into Segment's field notation
 * ("/properties/products/0/price" → "properties.products[0].price"), walking the event to
 * tell array indices from numeric keys, and yields the offending key: the segment after
 * `container` when the path goes through it. */
static void field_of(const json_t *ev, const char *path, size_t n, const char *container, buf *field, buf *key)
{
    const json_t *cur = ev;
    buf seg = {0};
    bool in_container = false;
    for (size_t i = 0, depth = 0; i < n && path[i] == '/'; depth++) {
        seg.len = 0;
        for (i++; i < n && path[i] != '/'; i++) {
            char c = path[i];
            if (c == '~' && i + 1 < n && (path[i + 1] == '0' || path[i + 1] == '1'))
                c = path[++i] == '0' ? '~' : '/';
            buf_putc(&seg, c);
        }
        const char *s = buf_cstr(&seg);
        if (json_is_array(cur)) {
            buf_printf(field, "[%s]", s);
            cur = json_array_get(cur, strtoul(s, NULL, 10));
        } else {
            if (field->len)
                buf_putc(field, '.');
            buf_append(field, s, seg.len);
            cur = json_is_object(cur) ? json_object_getn(cur, s, seg.len) : NULL;
        }
        if (depth == 0)
            in_container = !strcmp(s, container);
        else if (depth == 1 && in_container)
            buf_append(key, s, seg.len);
    }
    buf_cstr(field);
    buf_free(&seg);
}

/* Appends the violations of `res` as public records, and remembers the keys they name
 * (except for required: the key is absent, there is nothing to remove). */
static void collect(run *r, schema_result_t *res)
{
    if (!r->violations)
        r->violations = json_array();
    for (size_t i = 0; i < res->count; i++) {
        const schema_violation_t *v = schema_result_item(res, i);
        if (!v)
            continue;
        buf field = {0}, key = {0};
        field_of(r->event, v->path, v->path_len, r->container, &field, &key);
        json_array_append_new(r->violations, record(v, buf_cstr(&field)));
        if (key.len && strcmp(v->keyword, "required")) {
            if (!r->offenders)
                r->offenders = json_array();
            json_array_append_new(r->offenders, json_stringn(key.data, key.len));
        }
        buf_free(&field);
        buf_free(&key);
    }
}

/* The view of j restricted to what pj can read (pj NULL: all of j), into *out. */
static bool proj_build(scratch *sc, const proj *pj, const json_t *j, jview_t *out)
{
    if (!pj || !json_is_object(j)) {
        const jview_t *v = jview_add(sc->doc, j);
        if (v)
            *out = *v; /* a copy of the handle: what it points to stays in sc->doc */
        return v != NULL;
    }
    jview_member_t *m = sc->members + sc->used;
    uint32_t n = 0;
    sc->used += pj->n; /* room reserved by view_of: cap >= the plan's max_members */
    for (size_t i = 0; i < pj->n; i++) {
        const struct proj_key *e = &pj->keys[i];
        const json_t *v = json_object_getn(j, e->key, e->len);
        if (!v)
            continue; /* absent: "required" reports it, as on the full view */
        m[n] = (jview_member_t){.head = e->head, .key = e->key, .keylen = e->len, .hash = e->hash};
        if (!proj_build(sc, e->child, v, &m[n].v))
            return false;
        n++;
    }
    *out = (jview_t){.type = JV_OBJ, .n = n, .u.m = m};
    return true;
}

/* The view of the event as it is now: projected when the rules allow, else whole. NULL
 * when memory runs out (check then validates the jansson event directly). */
static const jview_t *view_of(run *r)
{
    scratch *sc = r->sc;
    if (!r->reads)
        return jview_add(sc->doc, r->event);
    if (sc->cap < r->p->max_members) {
        jview_member_t *m = realloc(sc->members, r->p->max_members * sizeof *m);
        if (!m)
            return NULL;
        sc->members = m;
        sc->cap = r->p->max_members;
    }
    sc->used = 0;
    return proj_build(sc, r->reads, r->event, &sc->root) ? &sc->root : NULL;
}

/* Validates the event as it is now against s, recording its violations. */
static void check(run *r, const schema_t *s)
{
    json_decref(r->offenders);
    r->offenders = NULL;
    if (!s)
        return;
    if (!r->view)
        r->view = view_of(r);
    schema_result_t *res = &r->sc->res;
    bool ok = r->view ? schema_validate_view(s, r->view, res) : schema_validate(s, r->event, res);
    if (!ok)
        collect(r, res); /* reads the records: before the event changes */
    schema_result_clear(res);
}

/* The event changed: its view is stale. No result points into it any more (check clears). */
static void changed(run *r)
{
    r->view = NULL;
    jview_doc_reset(r->sc->doc);
}

/* Removes key from the container and lists it in *list; false if it was not there. */
static bool omit(run *r, const char *key, json_t **list)
{
    json_t *c = json_object_get(r->event, r->container);
    if (!json_is_object(c) || !json_object_get(c, key))
        return false;
    json_t *name = json_string(key); /* before the delete: key may be the member's own */
    json_object_del(c, key);
    if (!*list)
        *list = json_array();
    json_array_append_new(*list, name);
    changed(r);
    return true;
}

static void omit_unplanned(run *r, const json_t *planned)
{
    json_t *c = json_object_get(r->event, r->container), *v;
    const char *k;
    void *tmp;
    if (!json_is_object(c))
        return;
    json_object_foreach_safe(c, tmp, k, v) {
        if (!planned || !json_object_get(planned, k))
            omit(r, k, &r->omitted);
    }
}

static void omit_offenders(run *r)
{
    size_t i;
    json_t *k;
    json_array_foreach(r->offenders, i, k) omit(r, json_string_value(k), &r->omitted_on_violation);
}

static void block(protocols_result *out, const char *reason)
{
    out->blocked = true;
    out->reason = reason;
}

/* Rows 9–11: rules.global on the event as the standard controls left it. */
static void common(run *r, common_t mode, protocols_result *out)
{
    size_t before = nviol(r);
    check(r, r->p->global);
    if (nviol(r) == before || mode == COMMON_ALLOW)
        return;
    if (mode == COMMON_BLOCK)
        block(out, "common_schema_violation");
    else
        omit_offenders(r);
}

/* §2.2: the events[] entry of this exact name; the version named by
 * context.protocols.event_version, else the oldest. Binary search: plans hold up to
 * 10,000 event rules and this runs for every track event. */
static const prule *find_event(const protocols *p, const json_t *ev)
{
    const char *name = json_string_value(json_object_get(ev, "event"));
    if (!name)
        return NULL;
    size_t lo = 0, hi = p->nevents;
    while (lo < hi) { /* first entry whose name is >= name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(p->events[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->nevents || strcmp(p->events[lo].name, name))
        return NULL;
    const json_t *want = json_object_get(json_object_get(json_object_get(ev, "context"), "protocols"), "event_version");
    if (json_is_integer(want))
        for (size_t i = lo; i < p->nevents && !strcmp(p->events[i].name, name); i++)
            if (p->events[i].version == json_integer_value(want))
                return &p->events[i];
    return &p->events[lo]; /* sorted by version: the oldest */
}

static void enforce_track(run *r, protocols_result *out)
{
    const protocols *p = r->p;
    r->container = "properties";
    const prule *rule = find_event(p, r->event);
    r->reads = rule ? rule->reads : p->global_reads;
    if (!rule && p->allow_unplanned_events) { /* nothing planned: only rules.global */
        common(r, p->common_track, out);
        return;
    }
    if (!rule) { /* row 1; the reason tells whether rules.global was violated too */
        check(r, p->global);
        block(out, nviol(r) ? "unplanned_and_schema_violation" : "unplanned");
        return;
    }
    if (!p->allow_unplanned_props) /* row 2 */
        omit_unplanned(r, rule->planned);
    check(r, rule->schema);
    if (nviol(r) && !p->allow_event_on_violations) { /* row 3 */
        check(r, p->global); /* recorded for the forwarded copy */
        block(out, "schema_violation");
        return;
    }
    if (nviol(r) && !p->allow_props_on_violations) /* row 4 */
        omit_offenders(r);
    common(r, p->common_track, out);
}

/* Rows 5–8 and 10–11. No rule at all: every trait is unplanned (planned NULL). */
static void enforce_traits(run *r, const prule *rule, bool allow_unplanned, bool allow_on_violations, common_t mode,
                           protocols_result *out)
{
    r->container = "traits";
    r->reads = rule->reads;
    if (!allow_unplanned)
        omit_unplanned(r, rule->planned);
    check(r, rule->schema);
    if (nviol(r) && !allow_on_violations)
        omit_offenders(r);
    common(r, mode, out);
}

static void set_list(json_t *o, const char *key, json_t *list)
{
    if (list)
        json_object_set(o, key, list);
}

/* §2.4: context.protocols = {omitted, omitted_on_violation, sourceId, violations}, the
 * lists only when non-empty, an existing event_version kept. A context that is not an
 * object is left alone: replacing it would lose the sender's data. */
static void annotate(run *r)
{
    if (!r->violations && !r->omitted && !r->omitted_on_violation)
        return;
    json_t *ctx = json_object_get(r->event, "context");
    if (!ctx) {
        ctx = json_object();
        json_object_set_new(r->event, "context", ctx);
    }
    if (!json_is_object(ctx))
        return;
    json_t *pr = json_object();
    set_list(pr, "omitted", r->omitted);
    set_list(pr, "omitted_on_violation", r->omitted_on_violation);
    json_object_set_new(pr, "sourceId", json_string(r->p->source_slug));
    set_list(pr, "violations", r->violations);
    json_t *old = json_object_get(ctx, "protocols");
    json_t *ver = json_object_get(old, "event_version");
    if (ver)
        json_object_set(pr, "event_version", ver);
    json_object_set_new(ctx, "protocols", pr);
}

void protocols_apply(const protocols *p, json_t *event, protocols_result *out)
{
    *out = (protocols_result){0};
    run r = {.p = p, .event = event};
    const char *type = json_string_value(json_object_get(event, "type"));
    if (p->enforce && type) {
        r.sc = scratch_get();
        if (!strcmp(type, "track"))
            enforce_track(&r, out);
        else if (!strcmp(type, "identify"))
            enforce_traits(&r, &p->identify, p->allow_unplanned_identify, p->allow_identify_on_violations,
                           p->common_identify, out);
        else if (!strcmp(type, "group"))
            enforce_traits(&r, &p->group, p->allow_unplanned_group, p->allow_group_on_violations,
                           p->common_group, out);
        jview_doc_reset(r.sc->doc);
        annotate(&r);
    }
    /* A copy: the event's own list may be changed downstream (insert functions). */
    out->violations = r.violations ? json_deep_copy(r.violations) : json_array();
    if (out->blocked)
        out->forward_blocked_to = p->fwd_blocked;
    if (json_array_size(out->violations))
        out->forward_violations_to = p->fwd_violations;
    json_decref(r.violations);
    json_decref(r.omitted);
    json_decref(r.omitted_on_violation);
    json_decref(r.offenders);
}

void protocols_result_clear(protocols_result *res)
{
    if (!res)
        return;
    json_decref(res->violations);
    *res = (protocols_result){0};
}

/* ---- §2.6 violation events ---------------------------------------------------------- */

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

json_t *protocols_violation_event(const protocols *p, const json_t *event, const json_t *violation,
                                  const char *server_version)
{
    char mid[4 + 32 + 1] = "sch-", now[32];
    random_alnum(mid + 4, 32);
    rfc3339(now_ms(), now);
    const json_t *app = json_object_get(json_object_get(event, "context"), "app");
    const char *slug = p->source_slug;
    /* eventTimestamp: Segment shows Go's zero time for an event without one. */
    json_t *props = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "appVersion",
        str_or(app, "version", ""), "eventMessageID", str_or(event, "messageId", ""), "eventName",
        str_or(event, "event", ""), "eventSentAt", str_or(event, "sentAt", ""), "eventTimestamp",
        str_or(event, "timestamp", "0001-01-01T00:00:00Z"), "eventType", str_or(event, "type", ""), "sourceID", slug,
        "sourceName", slug, "sourceSlug", slug, "trackingPlanID", p->plan_id, "trackingPlanName", p->plan_name,
        "violationDescription", str_or(violation, "description", ""), "violationField",
        str_or(violation, "field", ""), "violationType", str_or(violation, "type", ""));
    return json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:n, s:{s:s, s:s}}, s:o, s:s, s:s, s:s}", "type", "track",
                     "event", "Violation Generated", "userId", "schema-violations", "messageId", mid, "integrations",
                     "context", "app", "library", "name", "manifold", "version",
                     server_version ? server_version : "", "properties", props, "receivedAt", now, "timestamp",
                     now, "forwardedFromProject", slug);
}
