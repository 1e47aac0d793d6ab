/*
 * test_protocols.c — unit tests for src/ingest/protocols (delivery.md §2): the §2.7
 * vectors P1–P10, event versions, identify/group traits, the common-schema controls for
 * each type, block reasons, required violations, draft-04 vs draft-07 rules, formats, a
 * source without a plan, the §2.6 violation event, threads, and a timing of the hot path.
 * Most tests are lists of vectors (a schema config, a plan, an event and the checks on the
 * outcome) run by run_vectors; the few that need more use the same run1/run_end steps.
 * Run from the repository root (the meta-schemas are in data/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/tp_rules.h"
#include "ingest/protocols.h"
#include "schema/schema.h"

/* ----- helpers --------------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    return j;
}

#define D7 "\"$schema\": \"http://json-schema.org/draft-07/schema#\""
#define D4 "\"$schema\": \"http://json-schema.org/draft-04/schema#\""

/* Plan P of delivery.md §2.7, plus identify/group rules for the traits tests. */
static const char PLAN_P[] =
    "{\"display_name\": \"P\", \"rules\": {"
    " \"global\": {" D7 ", \"type\": \"object\", \"properties\": {"
    "   \"context\": {\"type\": \"object\", \"properties\": {\"library\": {\"type\": \"object\"}}}}},"
    " \"events\": [{\"name\": \"Order Completed\", \"version\": 1, \"rules\": {" D7 ", \"type\": \"object\","
    "   \"properties\": {\"properties\": {\"type\": \"object\", \"properties\": {"
    "     \"order_id\": {\"type\": \"string\"}, \"total\": {\"type\": \"number\"},"
    "     \"products\": {\"type\": \"array\", \"items\": {\"type\": \"object\","
    "        \"properties\": {\"price\": {\"type\": \"number\"}}}}},"
    "     \"required\": [\"order_id\"]}}}}],"
    " \"identify\": {" D7 ", \"type\": \"object\", \"properties\": {\"traits\": {\"type\": \"object\","
    "   \"properties\": {\"email\": {\"type\": \"string\", \"format\": \"email\"}, \"name\": {\"type\": \"string\"}},"
    "   \"required\": [\"email\"]}}},"
    " \"group\": {" D7 ", \"type\": \"object\", \"properties\": {\"traits\": {\"type\": \"object\","
    "   \"properties\": {\"plan\": {\"enum\": [\"free\", \"pro\"]}, \"seats\": {\"type\": \"integer\"}}}}}}}";

#define P1_EVENT                                                                                                     \
    "{\"type\": \"track\", \"event\": \"Order Completed\", \"messageId\": \"m-1\","                                  \
    " \"timestamp\": \"2026-01-02T03:04:05Z\", \"context\": {\"library\": {\"name\": \"x\"}},"                       \
    " \"properties\": {\"order_id\": 7, \"total\": 1, \"coupon\": \"x\"}}"

/* A vector's plan for a source connected to no plan (a NULL plan means plan P). */
static const char NO_PLAN[] = "(none)";

/* config NULL = the defaults ({}); plan as in a vector. */
static protocols *mk_plan(const char *config, const char *plan)
{
    json_t *c = parse(config ? config : "{}"), *pl = plan == NO_PLAN ? NULL : parse(plan ? plan : PLAN_P);
    char err[256] = "";
    protocols *p = protocols_compile(c, pl, "web", "rs_P", "Plan P", err, sizeof err);
    json_decref(c);
    json_decref(pl);
    if (!p)
        fail_msg("protocols_compile: %s", err);
    return p;
}

/* The value at a dotted path ("context.protocols.violations.0.field"), or NULL. */
static json_t *at(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = json_is_array(j) ? json_array_get(j, strtoul(k, NULL, 10)) : json_object_get(j, k);
    return j;
}

/* Whether the value at path in root is `want`: JSON text ("null" = absent or null), or "@path2",
 * the value at path2 of root (both present). If not, msg says what was found. */
static bool matches(json_t *root, const char *path, const char *want, char *msg, size_t cap)
{
    json_t *got = at(root, path), *w;
    if (want[0] == '@')
        w = json_incref(at(root, want + 1));
    else if (!strcmp(want, "null") && !got)
        return true;
    else if (!(w = json_loads(want, JSON_DECODE_ANY, NULL)))
        fail_msg("bad expectation %s", want);
    bool ok = got && w && json_equal(got, w);
    if (!ok) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
        snprintf(msg, cap, "%s: got %s, want %s", path, g ? g : "(absent)", want);
        free(g);
    }
    json_decref(w);
    return ok;
}

/* Asserts that the JSON value at path equals `want` (as in matches). */
static void expect(json_t *j, const char *path, const char *want)
{
    char msg[1024];
    if (!matches(j, path, want, msg, sizeof msg))
        fail_msg("%s", msg);
}

/* One vector: a source's schema config and plan, an event, and checks on the outcome. A check
 * is a path into the run's view and the JSON it must hold (see matches); the view is
 *   {"sent": the event as sent, "event": the event as protocols_apply left it,
 *    "protocols": that event's context.protocols (the annotation),
 *    "blocked", "reason", "violations", "nviolations" (their count),
 *    "forward_blocked_to", "forward_violations_to"}   (NULL strings absent).
 * A check without a path is no check (for checks that only some modes make). */
enum { MAX_CHECKS = 8 };
typedef struct vec {
    const char *config, *plan; /* as mk_plan takes them */
    const char *event;         /* NULL ends a list of vectors */
    struct {
        const char *path, *want;
    } checks[MAX_CHECKS];
} vec;

/* One event through one compiled protocols. */
typedef struct run {
    protocols *p;
    json_t *ev;   /* the event as changed */
    json_t *view; /* see vec */
    protocols_result r;
} run;

/* Applies c->p to v's event and runs v's checks (vector i, for the messages). */
static void run_apply(run *c, const vec *v, size_t i)
{
    c->ev = parse(v->event);
    protocols_apply(c->p, c->ev, &c->r);
    assert_non_null(c->r.violations);
    assert_true(json_is_array(c->r.violations));
    c->view = json_pack("{s:o, s:O, s:b, s:O, s:I}", "sent", parse(v->event), "event", c->ev, "blocked",
                        c->r.blocked, "violations", c->r.violations, "nviolations",
                        (json_int_t)json_array_size(c->r.violations));
    const char *strs[][2] = {{"reason", c->r.reason},
                             {"forward_blocked_to", c->r.forward_blocked_to},
                             {"forward_violations_to", c->r.forward_violations_to}};
    for (size_t k = 0; k < 3; k++)
        if (strs[k][1])
            json_object_set_new(c->view, strs[k][0], json_string(strs[k][1]));
    json_t *annotation = at(c->ev, "context.protocols");
    if (annotation)
        json_object_set(c->view, "protocols", annotation);
    char msg[1024];
    for (size_t k = 0; k < MAX_CHECKS; k++) {
        const char *path = v->checks[k].path;
        if (!path)
            continue;
        /* a misspelt key would pass every "null" check: only the view's own keys */
        char key[64];
        snprintf(key, sizeof key, " %.*s ", (int)strcspn(path, "."), path);
        if (!strstr(" sent event protocols blocked reason violations nviolations forward_blocked_to"
                    " forward_violations_to ", key))
            fail_msg("vector %zu: %s is not in the view", i, path);
        if (!matches(c->view, path, v->checks[k].want, msg, sizeof msg))
            fail_msg("vector %zu: %s", i, msg);
    }
}

/* Compiles v's config and plan, then run_apply. */
static void run1(run *c, const vec *v, size_t i)
{
    c->p = mk_plan(v->config, v->plan);
    run_apply(c, v, i);
}

static void run_end(run *c)
{
    protocols_result_clear(&c->r);
    assert_null(c->r.violations);
    json_decref(c->view);
    json_decref(c->ev);
    protocols_free(c->p);
}

static void run_vector(const vec *v, size_t i)
{
    run c;
    run1(&c, v, i);
    run_end(&c);
}

/* The test of a list of vectors (its initial state). */
static void run_vectors(void **state)
{
    const vec *v = *state;
    for (size_t i = 0; v[i].event; i++)
        run_vector(&v[i], i);
}

/* A cmocka test named after its list of vectors. */
#define VECTORS(list) {#list, run_vectors, NULL, NULL, (void *)(list)}
#define END {0}

#define NO_UNPLANNED "{\"allow_unplanned_track_events\": false}"

/* ----- §2.7 vectors ---------------------------------------------------------------------- */

static const vec p1_defaults_record_violation[] = {
    {"{}", NULL, P1_EVENT,
     {{"blocked", "false"}, {"event.properties", "{\"order_id\": 7, \"total\": 1, \"coupon\": \"x\"}"},
      {"protocols",
       "{\"sourceId\": \"web\", \"violations\": [{\"type\": \"Invalid Type\", \"field\": \"properties.order_id\","
       " \"description\": \"Invalid type. Expected: string, given: integer\"}]}"},
      {"violations", "@protocols.violations"}, {"forward_blocked_to", "null"}, {"forward_violations_to", "null"}}},
    END};

static const vec p2_unplanned_blocked[] = {
    /* case-sensitive: "order completed" is not "Order Completed" */
    {NO_UNPLANNED, NULL,
     "{\"type\": \"track\", \"event\": \"order completed\","
     " \"context\": {\"library\": {}}, \"properties\": {\"a\": 1}}",
     {{"blocked", "true"}, {"reason", "\"unplanned\""}, {"nviolations", "0"},
      {"protocols", "null"}, /* nothing omitted or violated: no annotation */
      {"forward_blocked_to", "null"}}},
    /* the planned name passes */
    {NO_UNPLANNED, NULL, P1_EVENT, {{"blocked", "false"}}},
    END};

static const vec p3_omit_unplanned_properties[] = {
    {"{\"allow_unplanned_track_event_properties\": false}", NULL, P1_EVENT,
     {{"blocked", "false"}, {"event.properties", "{\"order_id\": 7, \"total\": 1}"},
      {"protocols.omitted", "[\"coupon\"]"}, {"protocols.omitted_on_violation", "null"},
      {"protocols.violations.0.field", "\"properties.order_id\""}}},
    END};

static const vec p4_omit_properties_on_violation[] = {
    {"{\"allow_track_properties_on_violations\": false}", NULL, P1_EVENT,
     {{"blocked", "false"}, {"event.properties", "{\"total\": 1, \"coupon\": \"x\"}"},
      {"protocols.omitted_on_violation", "[\"order_id\"]"}, {"protocols.omitted", "null"},
      {"protocols.violations.0.type", "\"Invalid Type\""}}},
    END};

static const vec p5_block_on_violation[] = {
    {"{\"allow_track_event_on_violations\": false}", NULL, P1_EVENT,
     {{"blocked", "true"}, {"reason", "\"schema_violation\""}, {"nviolations", "1"},
      /* the blocked event carries its violations (for forwarding, §2.5) */
      {"protocols.violations.0.field", "\"properties.order_id\""}}},
    END};

static const vec p6_valid_event_delivered[] = {
    {"{\"allow_track_event_on_violations\": false, \"forwarding_violations_to\": \"violations\","
     " \"forwarding_blocked_events_to\": \"quarantine\"}", NULL,
     "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": {}},"
     " \"properties\": {\"order_id\": \"A1\"}}",
     {{"blocked", "false"}, {"reason", "null"}, {"nviolations", "0"},
      {"event", "@sent"}, /* untouched: no context.protocols */
      {"forward_blocked_to", "null"}, {"forward_violations_to", "null"}}},
    END};

static const vec p7_common_block[] = {
    {"{\"common_track_event_on_violations\": \"BLOCK\"}", NULL,
     "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": 5},"
     " \"properties\": {\"order_id\": \"A1\"}}",
     {{"blocked", "true"}, {"reason", "\"common_schema_violation\""},
      {"violations.0", "{\"type\": \"Invalid Type\", \"field\": \"context.library\","
                       " \"description\": \"Invalid type. Expected: object, given: integer\"}"}}},
    END};

#define P8_CONFIG                                                                                                    \
    "{\"allow_unplanned_track_events\": false, \"forwarding_blocked_events_to\": \"quarantine\","                    \
    " \"allow_unplanned_track_event_properties\": false}"

static const vec p8_forward_blocked[] = {
    {P8_CONFIG, NULL, "{\"type\": \"track\", \"event\": \"order completed\", \"context\": {\"library\": {}}}",
     {{"blocked", "true"}, {"forward_blocked_to", "\"quarantine\""}}},
    /* omitted properties are not a block: nothing to forward (§2.5) */
    {P8_CONFIG, NULL, P1_EVENT,
     {{"blocked", "false"}, {"protocols.omitted", "[\"coupon\"]"}, {"forward_blocked_to", "null"}}},
    /* "" turns forwarding off */
    {"{\"allow_unplanned_track_events\": false, \"forwarding_blocked_events_to\": \"\"}", NULL,
     "{\"type\": \"track\", \"event\": \"nope\"}", {{"blocked", "true"}, {"forward_blocked_to", "null"}}},
    END};

static bool base62(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", s[i]))
            return false;
    return !s[n];
}

static void p9_forward_violations(void **state)
{
    (void)state;
    static const vec v = {"{\"forwarding_violations_to\": \"violations\"}", NULL, P1_EVENT,
                          {{"blocked", "false"}, {"forward_violations_to", "\"violations\""},
                           {"forward_blocked_to", "null"}, {"nviolations", "1"}}};
    run c;
    run1(&c, &v, 0);
    protocols *p = c.p;
    json_t *ev = c.ev, *violation = json_array_get(c.r.violations, 0);
    json_object_set_new(json_object_get(ev, "context"), "app", json_pack("{s:s}", "version", "3.1"));
    json_object_set_new(ev, "sentAt", json_string("2026-01-02T03:04:06Z"));
    json_t *e = protocols_violation_event(p, ev, violation, "1.2.3");
    expect(e, "type", "\"track\"");
    expect(e, "event", "\"Violation Generated\"");
    expect(e, "userId", "\"schema-violations\"");
    expect(e, "integrations", "{}");
    expect(e, "context", "{\"app\": null, \"library\": {\"name\": \"manifold\", \"version\": \"1.2.3\"}}");
    expect(e, "forwardedFromProject", "\"web\"");
    expect(e, "properties",
           "{\"appVersion\": \"3.1\", \"eventMessageID\": \"m-1\", \"eventName\": \"Order Completed\","
           " \"eventSentAt\": \"2026-01-02T03:04:06Z\", \"eventTimestamp\": \"2026-01-02T03:04:05Z\","
           " \"eventType\": \"track\", \"sourceID\": \"web\", \"sourceName\": \"web\", \"sourceSlug\": \"web\","
           " \"trackingPlanID\": \"rs_P\", \"trackingPlanName\": \"Plan P\","
           " \"violationDescription\": \"Invalid type. Expected: string, given: integer\","
           " \"violationField\": \"properties.order_id\", \"violationType\": \"Invalid Type\"}");
    const char *mid = json_string_value(json_object_get(e, "messageId"));
    assert_non_null(mid);
    assert_int_equal(strncmp(mid, "sch-", 4), 0);
    assert_true(base62(mid + 4, 32));
    assert_true(json_is_string(json_object_get(e, "timestamp")));
    assert_true(json_is_string(json_object_get(e, "receivedAt")));
    json_t *w = protocols_violation_event(p, ev, violation, "1.2.3");
    assert_string_not_equal(mid, json_string_value(json_object_get(w, "messageId"))); /* random */
    json_decref(w);
    json_decref(e);
    /* without app version or timestamp: "" and Go's zero time */
    json_t *bare = parse("{\"type\": \"track\", \"event\": \"E\"}");
    e = protocols_violation_event(p, bare, violation, "1.2.3");
    expect(e, "properties.appVersion", "\"\"");
    expect(e, "properties.eventTimestamp", "\"0001-01-01T00:00:00Z\"");
    json_decref(e);
    json_decref(bare);
    run_end(&c);
}

static const char STRICT[] =
    "{\"allow_unplanned_track_events\": false, \"allow_unplanned_identify_traits\": false,"
    " \"allow_unplanned_group_traits\": false, \"allow_unplanned_track_event_properties\": false,"
    " \"allow_track_event_on_violations\": false, \"allow_identify_traits_on_violations\": false,"
    " \"allow_group_traits_on_violations\": false, \"allow_track_properties_on_violations\": false,"
    " \"common_track_event_on_violations\": \"BLOCK\", \"common_identify_event_on_violations\": \"BLOCK\","
    " \"common_group_event_on_violations\": \"BLOCK\", \"forwarding_blocked_events_to\": \"q\","
    " \"forwarding_violations_to\": \"v\"}";

#define UNTOUCHED {{"blocked", "false"}, {"nviolations", "0"}, {"event", "@sent"}}

static const vec p10_page_screen_alias_untouched[] = {
    {STRICT, NULL,
     "{\"type\": \"page\", \"name\": \"Home\", \"context\": {\"library\": 5}, \"properties\": {\"x\": 1}}", UNTOUCHED},
    {STRICT, NULL,
     "{\"type\": \"screen\", \"name\": \"Home\", \"context\": {\"library\": 5}, \"properties\": {\"x\": 1}}",
     UNTOUCHED},
    {STRICT, NULL, "{\"type\": \"alias\", \"previousId\": \"a\", \"context\": {\"library\": 5}}", UNTOUCHED},
    END};

/* ----- more of §2.2–§2.4 ------------------------------------------------------------------- */

static const vec no_plan_changes_nothing[] = {{STRICT, NO_PLAN, P1_EVENT, UNTOUCHED}, END};

static const char PLAN_VERSIONS[] =
    "{\"rules\": {\"events\": ["
    " {\"name\": \"Signed Up\", \"version\": 2, \"rules\": {" D7 ", \"properties\": {\"properties\": {"
    "   \"properties\": {\"plan\": {\"type\": \"integer\"}, \"v2only\": {}}}}}},"
    " {\"name\": \"Signed Up\", \"version\": 1, \"rules\": {" D7 ", \"properties\": {\"properties\": {"
    "   \"properties\": {\"plan\": {\"type\": \"string\"}}}}}},"
    " {\"name\": \"Aardvark\", \"rules\": {" D7 "}},"
    " {\"name\": \"Zebra\", \"rules\": {" D7 "}}]}}";

#define VERSIONED(event, ...) {NO_UNPLANNED, PLAN_VERSIONS, event, __VA_ARGS__}
#define NVIOL(n) {{"nviolations", #n}}
#define BLOCKED(b) {{"blocked", #b}}

static const vec event_versions[] = {
    /* no event_version: the oldest (v1, listed second) wants a string */
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1}}", NVIOL(1)),
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": \"a\"}}", NVIOL(0)),
    /* event_version 2 picks v2 */
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1},"
              " \"context\": {\"protocols\": {\"event_version\": 2}}}", NVIOL(0)),
    /* a version that does not exist, or not an integer: the oldest */
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1},"
              " \"context\": {\"protocols\": {\"event_version\": 7}}}", NVIOL(1)),
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1},"
              " \"context\": {\"protocols\": {\"event_version\": \"2\"}}}", NVIOL(1)),
    /* the binary search finds the first and last names too; others are unplanned */
    VERSIONED("{\"type\": \"track\", \"event\": \"Aardvark\"}", BLOCKED(false)),
    VERSIONED("{\"type\": \"track\", \"event\": \"Zebra\"}", BLOCKED(false)),
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\"}", BLOCKED(false)),
    VERSIONED("{\"type\": \"track\", \"event\": \"Mongoose\"}", BLOCKED(true)),
    VERSIONED("{\"type\": \"track\", \"event\": \"A\"}", BLOCKED(true)),
    VERSIONED("{\"type\": \"track\", \"event\": \"Zz\"}", BLOCKED(true)),
    /* a violation on v2: the annotation keeps event_version, drops other stale keys */
    VERSIONED("{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": \"a\"},"
              " \"context\": {\"protocols\": {\"event_version\": 2, \"omitted\": [\"forged\"]}}}",
              {{"protocols.event_version", "2"}, {"protocols.omitted", "null"},
               {"protocols.violations.0.field", "\"properties.plan\""}}),
    /* planned names come from the selected version: v2 plans v2only */
    {"{\"allow_unplanned_track_event_properties\": false}", PLAN_VERSIONS,
     "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1, \"v2only\": 1},"
     " \"context\": {\"protocols\": {\"event_version\": 2}}}",
     {{"event.properties", "{\"plan\": 1, \"v2only\": 1}"}}},
    {"{\"allow_unplanned_track_event_properties\": false}", PLAN_VERSIONS,
     "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": \"a\", \"v2only\": 1}}",
     {{"event.properties", "{\"plan\": \"a\"}"}, {"protocols.omitted", "[\"v2only\"]"}}},
    END};

#define IDENTIFY_EVENT                                                                                               \
    "{\"type\": \"identify\", \"userId\": \"u\", \"context\": {\"library\": {}, \"traits\": {\"x\": 1}},"            \
    " \"traits\": {\"email\": \"not an email\", \"name\": \"Ann\", \"age\": 3}}"

static const vec identify_traits[] = {
    /* defaults: the format violation is recorded (formats assert), nothing removed */
    {"{}", NULL, IDENTIFY_EVENT,
     {{"event.traits", "{\"email\": \"not an email\", \"name\": \"Ann\", \"age\": 3}"},
      {"protocols.violations.0.type", "\"Invalid Value\""}, {"protocols.violations.0.field", "\"traits.email\""}}},
    /* unplanned traits omitted (never context.traits) */
    {"{\"allow_unplanned_identify_traits\": false}", NULL, IDENTIFY_EVENT,
     {{"event.traits", "{\"email\": \"not an email\", \"name\": \"Ann\"}"},
      {"event.context.traits", "{\"x\": 1}"}, {"protocols.omitted", "[\"age\"]"}, {"blocked", "false"}}},
    /* violating traits omitted */
    {"{\"allow_identify_traits_on_violations\": false}", NULL, IDENTIFY_EVENT,
     {{"event.traits", "{\"name\": \"Ann\", \"age\": 3}"}, {"protocols.omitted_on_violation", "[\"email\"]"},
      {"blocked", "false"}}},
    /* the group settings do not apply to identify */
    {"{\"allow_unplanned_group_traits\": false, \"allow_group_traits_on_violations\": false}", NULL, IDENTIFY_EVENT,
     {{"event.traits", "{\"email\": \"not an email\", \"name\": \"Ann\", \"age\": 3}"}}},
    END};

#define GROUP_EVENT                                                                                                  \
    "{\"type\": \"group\", \"groupId\": \"g\", \"context\": {\"library\": {}},"                                     \
    " \"traits\": {\"plan\": \"gold\", \"seats\": 3, \"industry\": \"x\"}}"

static const vec group_traits[] = {
    {"{\"allow_unplanned_group_traits\": false, \"allow_group_traits_on_violations\": false}", NULL, GROUP_EVENT,
     {{"event.traits", "{\"seats\": 3}"}, {"protocols.omitted", "[\"industry\"]"},
      {"protocols.omitted_on_violation", "[\"plan\"]"},
      {"protocols.violations.0.type", "\"Invalid Value\""}}}, /* enum */
    /* no group rule at all: every trait is unplanned */
    {"{\"allow_unplanned_group_traits\": false}", "{\"rules\": {\"events\": []}}", GROUP_EVENT,
     {{"event.traits", "{}"}, {"protocols.omitted", "[\"plan\", \"seats\", \"industry\"]"}}},
    END};

/* rules.global with one check per container, for rows 9–11. */
static const char PLAN_GLOBAL[] =
    "{\"rules\": {\"global\": {" D4 ", \"properties\": {"
    "   \"context\": {\"properties\": {\"library\": {\"type\": \"object\"}}},"
    "   \"properties\": {\"properties\": {\"price\": {\"type\": \"number\"}}},"
    "   \"traits\": {\"properties\": {\"age\": {\"type\": \"integer\"}}}}},"
    " \"events\": [{\"name\": \"Bought\", \"rules\": {" D4 "}}]}}";

static void common_controls_each_type(void **state)
{
    (void)state;
    static const struct {
        const char *field, *omit, *event;
        const char *container, *left; /* container after OMIT */
    } cases[] = {
        {"common_track_event_on_violations", "OMIT_PROPERTIES",
         "{\"type\": \"track\", \"event\": \"Bought\", \"properties\": {\"price\": \"1\", \"n\": 1}}", "properties",
         "{\"n\": 1}"},
        /* an unplanned (allowed) track event is still checked against rules.global */
        {"common_track_event_on_violations", "OMIT_PROPERTIES",
         "{\"type\": \"track\", \"event\": \"Other\", \"properties\": {\"price\": \"1\", \"n\": 1}}", "properties",
         "{\"n\": 1}"},
        {"common_identify_event_on_violations", "OMIT_TRAITS",
         "{\"type\": \"identify\", \"traits\": {\"age\": \"1\", \"n\": 1}}", "traits", "{\"n\": 1}"},
        {"common_group_event_on_violations", "OMIT_TRAITS",
         "{\"type\": \"group\", \"traits\": {\"age\": 1.5, \"n\": 1}}", "traits", "{\"n\": 1}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *modes[] = {"ALLOW", cases[i].omit, "BLOCK"};
        char container[32], sent[32];
        snprintf(container, sizeof container, "event.%s", cases[i].container);
        snprintf(sent, sizeof sent, "@sent.%s", cases[i].container);
        for (int m = 0; m < 3; m++) {
            char config[160];
            snprintf(config, sizeof config, "{\"%s\": \"%s\"}", cases[i].field, modes[m]);
            /* BLOCK (m 2) blocks with the reason; OMIT (m 1) removes the offending key; ALLOW and
             * BLOCK leave the container as sent */
            const vec v = {config, PLAN_GLOBAL, cases[i].event,
                           {{"nviolations", "1"},
                            {"blocked", m == 2 ? "true" : "false"},
                            {m == 2 ? "reason" : NULL, "\"common_schema_violation\""},
                            {container, m == 1 ? cases[i].left : sent},
                            {m == 1 ? "protocols.omitted_on_violation" : NULL,
                             strcmp(cases[i].container, "traits") ? "[\"price\"]" : "[\"age\"]"}}};
            run_vector(&v, i * 3 + (size_t)m);
        }
    }
}

static const vec omission_never_touches_context[] = {
    {"{\"common_track_event_on_violations\": \"OMIT_PROPERTIES\", \"allow_track_properties_on_violations\": false}",
     PLAN_GLOBAL,
     "{\"type\": \"track\", \"event\": \"Bought\", \"context\": {\"library\": 5}, \"properties\": {\"library\": 1}}",
     {{"blocked", "false"}, {"event.context.library", "5"}, {"event.properties", "{\"library\": 1}"},
      {"protocols.omitted_on_violation", "null"}, {"protocols.violations.0.field", "\"context.library\""}}},
    END};

static const vec unplanned_and_schema_violation[] = {
    {"{\"allow_unplanned_track_events\": false, \"forwarding_violations_to\": \"v\"}", NULL,
     "{\"type\": \"track\", \"event\": \"Nope\", \"context\": {\"library\": \"js\"}}",
     {{"blocked", "true"}, {"reason", "\"unplanned_and_schema_violation\""},
      {"protocols.violations.0.field", "\"context.library\""}, {"forward_violations_to", "\"v\""}}},
    END};

#define NO_ORDER_ID                                                                                                  \
    "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": {}},"                          \
    " \"properties\": {\"total\": 1}}"

static const vec required_violations_remove_nothing[] = {
    {"{\"allow_track_properties_on_violations\": false}", NULL, NO_ORDER_ID,
     {{"blocked", "false"}, {"event.properties", "{\"total\": 1}"}, {"protocols.omitted_on_violation", "null"},
      {"violations.0", "{\"type\": \"Required\", \"field\": \"properties.order_id\","
                       " \"description\": \"properties.order_id is required\"}"}}},
    /* but a required violation is a violation: it blocks under row 3 */
    {"{\"allow_track_event_on_violations\": false}", NULL, NO_ORDER_ID,
     {{"blocked", "true"}, {"reason", "\"schema_violation\""}}},
    END};

static const vec nested_violation_offends_top_level_key[] = {
    {"{\"allow_track_properties_on_violations\": false}", NULL,
     "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": {}},"
     " \"properties\": {\"order_id\": \"A\", \"products\": [{\"price\": 1}, {\"price\": \"2\"}]}}",
     {{"violations.0.field", "\"properties.products[1].price\""}, {"event.properties", "{\"order_id\": \"A\"}"},
      {"protocols.omitted_on_violation", "[\"products\"]"}}},
    END};

/* Each control sees the event as the previous one left it: unplanned properties are gone
 * before the rule (additionalProperties: false) and rules.global judge the event. */
static const char PLAN_LEFT[] =
    "{\"rules\": {\"global\": {" D7 ", \"properties\": {\"properties\": {\"properties\": {"
    "   \"coupon\": {\"type\": \"number\"}, \"total\": {\"type\": \"number\"}}}}},"
    " \"events\": [{\"name\": \"E\", \"rules\": {" D7 ", \"properties\": {\"properties\": {"
    "   \"additionalProperties\": false, \"properties\": {\"total\": {}, \"id\": {\"type\": \"string\"}}}}}}]}}";
#define LEFT_EVENT                                                                                                   \
    "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"total\": \"t\", \"id\": 1, \"coupon\": \"x\"}}"

static const vec controls_see_the_event_as_left[] = {
    /* all allowed: additionalProperties, id's type and both global types are violations */
    {"{}", PLAN_LEFT, LEFT_EVENT, {{"nviolations", "4"}}},
    /* coupon omitted first: neither the rule nor global complains about it any more;
     * then id omitted on violation before global runs: global sees only total */
    {"{\"allow_unplanned_track_event_properties\": false, \"allow_track_properties_on_violations\": false,"
     " \"common_track_event_on_violations\": \"OMIT_PROPERTIES\"}",
     PLAN_LEFT, LEFT_EVENT,
     {{"event.properties", "{}"}, {"protocols.omitted", "[\"coupon\"]"},
      {"protocols.omitted_on_violation", "[\"id\", \"total\"]"}, {"violations.0.field", "\"properties.id\""},
      {"violations.1.field", "\"properties.total\""}, {"nviolations", "2"}}},
    END};

#define PLAN_DRAFT(schema, exclusive_maximum)                                                                        \
    "{\"rules\": {\"events\": [{\"name\": \"E\", \"rules\": {" schema ", \"properties\": {\"properties\": {"          \
    "\"properties\": {\"qty\": {\"type\": \"integer\"},"                                                             \
    " \"pct\": {\"maximum\": 100, \"exclusiveMaximum\": " exclusive_maximum "}}}}}}]}}"

/* A vector of draft04_and_draft07: an event E with these properties has n violations. */
#define DRAFT(schema, exclusive_maximum, properties, n)                                                              \
    {"{}", PLAN_DRAFT(schema, exclusive_maximum),                                                                    \
     "{\"type\": \"track\", \"event\": \"E\", \"properties\": " properties "}", NVIOL(n)}

static const vec draft04_and_draft07[] = {
    /* draft-04: 1.0 is not an integer; exclusiveMaximum is a boolean */
    DRAFT(D4, "true", "{\"qty\": 1.0}", 1),
    DRAFT(D4, "true", "{\"pct\": 100}", 1),
    DRAFT(D4, "true", "{\"qty\": 1, \"pct\": 99}", 0),
    /* draft-07: 1.0 is an integer; exclusiveMaximum is a number */
    DRAFT(D7, "100", "{\"qty\": 1.0}", 0),
    DRAFT(D7, "100", "{\"pct\": 100}", 1),
    END};

static const vec formats_assert[] = {
    {"{\"allow_track_properties_on_violations\": false}",
     "{\"rules\": {\"events\": [{\"name\": \"E\", \"rules\": {" D7 ", \"properties\": {"
     " \"properties\": {\"properties\": {\"at\": {\"type\": \"string\", \"format\": \"date-time\"},"
     " \"ip\": {\"format\": \"ipv4\"}}}}}}]}}",
     "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"at\": \"yesterday\", \"ip\": \"10.0.0.1\"}}",
     {{"nviolations", "1"}, {"violations.0.type", "\"Invalid Value\""}, {"violations.0.field", "\"properties.at\""},
      {"event.properties", "{\"ip\": \"10.0.0.1\"}"}}},
    END};

static void compile_errors(void **state)
{
    (void)state;
    static const struct {
        const char *config, *plan, *needle;
    } bad[] = {
        {"{\"common_track_event_on_violations\": \"OMIT_TRAITS\"}", "{}", "common_track_event_on_violations"},
        {"{\"allow_unplanned_track_events\": \"no\"}", "{}", "allow_unplanned_track_events"},
        {"{\"forwarding_violations_to\": 5}", "{}", "forwarding_violations_to"},
        {"[]", "{}", "schema config"},
        {"{}", "{\"rules\": {\"events\": [{\"name\": \"E\", \"rules\": {\"type\": \"strng\"}}]}}",
         "rules.events[0]: invalid JSON Schema at '/type'"},
        {"{}", "{\"rules\": {\"global\": {\"pattern\": \"(\"}}}", "rules.global"},
        {"{}", "{\"rules\": {\"identify\": 5}}", "rules.identify must be a JSON Schema object"},
        {"{}", "{\"rules\": {\"events\": [{\"rules\": {}}]}}", "rules.events[0].name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *c = parse(bad[i].config), *pl = parse(bad[i].plan);
        char err[256] = "";
        protocols *p = protocols_compile(c, pl, "web", "rs_P", "P", err, sizeof err);
        json_decref(c);
        json_decref(pl);
        if (p || !strstr(err, bad[i].needle))
            fail_msg("case %zu: compiled=%d err='%s', want '%s'", i, p != NULL, err, bad[i].needle);
    }
    /* a NULL schema config means the defaults */
    json_t *pl = parse(PLAN_P);
    run c = {.p = protocols_compile(NULL, pl, NULL, NULL, NULL, NULL, 0)};
    json_decref(pl); /* the plan is copied: freeing it must not matter */
    assert_non_null(c.p);
    static const vec v = {NULL, NULL, P1_EVENT,
                          {{"blocked", "false"}, {"protocols.sourceId", "\"\""}, {"nviolations", "1"}}};
    run_apply(&c, &v, 0);
    run_end(&c);
}

/* ----- the projected view: the same verdicts as the whole event ------------------------------ */

/* Fields ("a.b.c") of s's violations on the whole event, as a newline-joined list. */
static void expected_fields(json_t *rule, const json_t *ev, char *out, size_t cap)
{
    if (!rule)
        return;
    schema_error_t err;
    schema_t *s = tp_compile_rule(rule, &err);
    if (!s)
        fail_msg("rule does not compile: %s", err.message);
    schema_result_t res = {0};
    schema_validate(s, ev, &res);
    for (size_t i = 0; i < res.count; i++) {
        const char *path = schema_result_item(&res, i)->path;
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s\n", *path ? path + 1 : "");
        for (char *c = out + len; *c; c++)
            *c = *c == '/' ? '.' : *c;
    }
    schema_result_free(&res);
    schema_free(s);
}

static void projected_view_same_verdicts(void **state)
{
    (void)state;
    /* rules.global variants: bounded ones (projected) and each keyword that forces the whole
     * object at its node */
    static const char *const globals[] = {
        "{\"properties\": {\"context\": {\"type\": \"object\", \"required\": [\"ip\"], \"properties\": {"
        "  \"library\": {\"type\": \"object\", \"required\": [\"name\"], \"properties\": {\"name\": {\"type\": \"string\"}}}}},"
        "  \"userId\": {\"type\": \"string\", \"minLength\": 2}}}",
        "{\"additionalProperties\": false, \"properties\": {\"type\": {}, \"event\": {}, \"context\": {},"
        "  \"properties\": {}}}",
        "{\"properties\": {\"context\": {\"properties\": {\"library\": {\"enum\": [{\"name\": \"x\"}]}}}}}",
        "{\"properties\": {\"context\": {\"minProperties\": 3}}}",
        "{\"properties\": {\"context\": {\"patternProperties\": {\"^i\": {\"type\": \"string\"}}}}}",
        "{\"properties\": {\"context\": {\"dependencies\": {\"ip\": [\"locale\"]}}}}",
        "{\"definitions\": {\"lib\": {\"required\": [\"version\"]}},"
        "  \"properties\": {\"context\": {\"properties\": {\"library\": {\"$ref\": \"#/definitions/lib\"}}}}}",
        "{\"properties\": {\"context\": {\"properties\": {\"a\": {}, \"b\": {}, \"c\": {}, \"d\": {}, \"e\": {},"
        "  \"f\": {}, \"g\": {}, \"ip\": {\"type\": \"integer\"}}}}}",
        "{\"properties\": {\"context\": {\"allOf\": [{\"required\": [\"locale\"]}]}}}",
        "{\"properties\": {\"context\": {\"x-unknown\": 1, \"properties\": {\"ip\": {\"type\": \"integer\"}}}}}",
        "{\"properties\": {\"properties\": {\"properties\": {\"items\": {\"items\": {\"properties\": {"
        "  \"price\": {\"type\": \"number\"}}, \"required\": [\"sku\"]}}}}}}",
    };
    static const char *const rules[] = {
        NULL,
        "{\"properties\": {\"properties\": {\"required\": [\"id\"], \"properties\": {\"id\": {\"type\": \"string\"},"
        "  \"n\": {\"type\": \"object\", \"properties\": {\"m\": {\"type\": \"integer\"}}}}}}}",
    };
    static const char *const events[] = {
        "{\"type\": \"track\", \"event\": \"E\", \"userId\": \"u\", \"context\": {\"library\": {\"name\": \"x\"},"
        "  \"ip\": \"1.2.3.4\", \"locale\": \"en\"}, \"properties\": {\"id\": \"a\", \"n\": {\"m\": 1}}}",
        "{\"type\": \"track\", \"event\": \"E\", \"userId\": 5, \"context\": {\"library\": {\"name\": 1, \"version\": 2},"
        "  \"ip\": 4, \"extra\": true}, \"properties\": {\"id\": 1, \"n\": {\"m\": \"x\"}}, \"sentAt\": 1}",
        "{\"type\": \"track\", \"event\": \"E\", \"context\": 5, \"properties\": [1]}",
        "{\"type\": \"track\", \"event\": \"E\", \"context\": {\"library\": {}}, \"properties\": {\"items\": "
        "  [{\"sku\": \"a\", \"price\": 1}, {\"price\": \"x\"}]}}",
        "{\"type\": \"track\", \"event\": \"E\"}",
    };
    for (size_t g = 0; g < sizeof globals / sizeof globals[0]; g++)
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            json_t *gj = parse(globals[g]), *rj = rules[r] ? parse(rules[r]) : NULL;
            json_t *plan = json_pack("{s:{s:O, s:[{s:s, s:O*}]}}", "rules", "global", gj, "events", "name", "E",
                                     "rules", rj);
            char err[256];
            protocols *p = protocols_compile(NULL, plan, "web", "rs", "P", err, sizeof err);
            if (!p)
                fail_msg("global %zu rule %zu: %s", g, r, err);
            for (size_t e = 0; e < sizeof events / sizeof events[0]; e++) {
                json_t *ev = parse(events[e]);
                char want[2048] = "", got[2048] = "";
                expected_fields(rj, ev, want, sizeof want);
                expected_fields(gj, ev, want, sizeof want);
                protocols_result res;
                protocols_apply(p, ev, &res);
                size_t i;
                json_t *v;
                json_array_foreach(res.violations, i, v) {
                    /* the API's field notation writes indices as [n]: back to dots */
                    size_t len = strlen(got);
                    for (const char *c = json_string_value(json_object_get(v, "field")); *c && len + 2 < sizeof got; c++)
                        if (*c != ']')
                            got[len++] = *c == '[' ? '.' : *c;
                    got[len++] = '\n';
                    got[len] = '\0';
                }
                if (strcmp(want, got))
                    fail_msg("global %zu rule %zu event %zu:\nwant\n%sgot\n%s", g, r, e, want, got);
                protocols_result_clear(&res);
                json_decref(ev);
            }
            protocols_free(p);
            json_decref(plan);
            json_decref(gj);
            json_decref(rj);
        }
}

/* ----- threads ------------------------------------------------------------------------------- */

static void *worker(void *arg)
{
    const protocols *p = arg;
    for (int i = 0; i < 300; i++) {
        protocols_result r;
        json_t *ev = parse(P1_EVENT);
        protocols_apply(p, ev, &r);
        /* P3 + P4 config: coupon (unplanned) and order_id (violating) both omitted */
        json_t *props = json_object_get(ev, "properties");
        bool ok = !r.blocked && json_array_size(r.violations) == 1 && json_object_size(props) == 1 &&
                  json_object_get(props, "total");
        protocols_result_clear(&r);
        json_decref(ev);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

static void concurrent_apply(void **state)
{
    (void)state;
    protocols *p = mk_plan("{\"allow_unplanned_track_event_properties\": false,"
                           " \"allow_track_properties_on_violations\": false}", NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, p), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    protocols_free(p);
}

/* ----- timing -------------------------------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* A typical planned track event (analytics.js shape, ~1 KB) against a typical rule and
 * rules.global, default config: the intake's hot path. Prints ns/event. */
static void timing_typical_event(void **state)
{
    (void)state;
    const char *plan =
        "{\"rules\": {\"global\": {" D7 ", \"type\": \"object\", \"properties\": {\"context\": {\"type\": \"object\","
        "   \"properties\": {\"library\": {\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\"},"
        "   \"version\": {\"type\": \"string\"}}, \"required\": [\"name\"]}, \"ip\": {\"type\": \"string\"}}},"
        "   \"userId\": {\"type\": [\"string\", \"null\"]}}},"
        " \"events\": [{\"name\": \"Product Viewed\", \"version\": 1, \"rules\": {" D7 ", \"type\": \"object\","
        "   \"properties\": {\"properties\": {\"type\": \"object\", \"required\": [\"product_id\"], \"properties\": {"
        "   \"product_id\": {\"type\": \"string\"}, \"sku\": {\"type\": \"string\", \"pattern\": \"^[A-Z0-9-]+$\"},"
        "   \"category\": {\"type\": \"string\"}, \"name\": {\"type\": \"string\"},"
        "   \"brand\": {\"type\": \"string\"}, \"variant\": {\"type\": \"string\"},"
        "   \"price\": {\"type\": \"number\", \"minimum\": 0}, \"quantity\": {\"type\": \"integer\", \"minimum\": 1},"
        "   \"currency\": {\"enum\": [\"USD\", \"EUR\", \"GBP\"]}, \"position\": {\"type\": \"integer\"},"
        "   \"url\": {\"type\": \"string\"}, \"image_url\": {\"type\": \"string\"}}}}}}]}}";
    const char *event =
        "{\"type\": \"track\", \"event\": \"Product Viewed\", \"userId\": \"u-12345\", \"anonymousId\": "
        "\"507f191e810c19729de860ea\", \"messageId\": \"ajs-next-1a2b3c4d5e6f\", \"timestamp\": "
        "\"2026-01-02T03:04:05.678Z\", \"sentAt\": \"2026-01-02T03:04:05.700Z\", \"context\": {\"library\": "
        "{\"name\": \"analytics.js\", \"version\": \"next-1.70.0\"}, \"ip\": \"203.0.113.9\", \"locale\": \"en-US\", "
        "\"userAgent\": \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0 "
        "Safari/605.1.15\", \"page\": {\"path\": \"/p/123\", \"referrer\": \"https://www.example.com/\", \"search\": "
        "\"\", \"title\": \"Product 123\", \"url\": \"https://shop.example.com/p/123\"}, \"campaign\": {\"name\": "
        "\"spring\", \"source\": \"newsletter\"}}, \"properties\": {\"product_id\": \"507f1f77bcf86cd799439011\", "
        "\"sku\": \"G-32\", \"category\": \"Games\", \"name\": \"Monopoly: 3rd Edition\", \"brand\": \"Hasbro\", "
        "\"variant\": \"200 pieces\", \"price\": 18.99, \"quantity\": 1, \"currency\": \"USD\", \"position\": 3, "
        "\"url\": \"https://www.example.com/product/path\", \"image_url\": \"https://www.example.com/product/path.jpg\"}, "
        "\"integrations\": {}}";
    protocols *p = mk_plan("{}", plan);
    json_t *ev = parse(event);
    /* The machine is shared: report the fastest of several batches (the least disturbed). */
    enum { BATCHES = 15, N = 2000 };
    protocols_result r;
    double best = 1e18;
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_ns();
        for (int i = 0; i < N; i++) {
            protocols_apply(p, ev, &r);
            if (r.blocked || json_array_size(r.violations))
                fail_msg("typical event: blocked or violated");
            protocols_result_clear(&r);
        }
        double ns = (now_ns() - t0) / N;
        best = ns < best ? ns : best;
    }
    print_message("protocols_apply, typical valid track event (%zu bytes): %.0f ns/event\n", strlen(event), best);
    /* the same event with one violation (recorded and annotated): the slow path */
    json_object_set_new(json_object_get(ev, "properties"), "price", json_string("18.99"));
    json_t *copy = json_deep_copy(ev);
    best = 1e18;
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_ns();
        for (int i = 0; i < N / 4; i++) {
            json_t *e = json_deep_copy(copy);
            protocols_apply(p, e, &r);
            if (json_array_size(r.violations) != 1)
                fail_msg("typical event with a violation: %zu violations", json_array_size(r.violations));
            protocols_result_clear(&r);
            json_decref(e);
        }
        double ns = (now_ns() - t0) / (N / 4);
        best = ns < best ? ns : best;
    }
    print_message("protocols_apply, same event with one violation (incl. a deep copy of the event): %.0f ns/event\n",
                  best);
    json_decref(copy);
    json_decref(ev);
    protocols_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        VECTORS(p1_defaults_record_violation),
        VECTORS(p2_unplanned_blocked),
        VECTORS(p3_omit_unplanned_properties),
        VECTORS(p4_omit_properties_on_violation),
        VECTORS(p5_block_on_violation),
        VECTORS(p6_valid_event_delivered),
        VECTORS(p7_common_block),
        VECTORS(p8_forward_blocked),
        cmocka_unit_test(p9_forward_violations),
        VECTORS(p10_page_screen_alias_untouched),
        VECTORS(no_plan_changes_nothing),
        VECTORS(event_versions),
        VECTORS(identify_traits),
        VECTORS(group_traits),
        cmocka_unit_test(common_controls_each_type),
        VECTORS(omission_never_touches_context),
        VECTORS(unplanned_and_schema_violation),
        VECTORS(required_violations_remove_nothing),
        VECTORS(nested_violation_offends_top_level_key),
        VECTORS(controls_see_the_event_as_left),
        VECTORS(draft04_and_draft07),
        VECTORS(formats_assert),
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(projected_view_same_verdicts),
        cmocka_unit_test(concurrent_apply),
        cmocka_unit_test(timing_typical_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
