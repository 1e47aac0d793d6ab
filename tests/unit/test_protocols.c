/*
 * test_protocols.c — unit tests for src/ingest/protocols (delivery.md §2): the §2.7
 * vectors P1–P10, event versions, identify/group traits, the common-schema controls for
 * each type, block reasons, required violations, draft-04 vs draft-07 rules, formats, a
 * source without a plan, the §2.6 violation event, threads, and a timing of the hot path.
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
static const char *PLAN_P =
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

static protocols *mk_plan(const char *config, const char *plan)
{
    json_t *c = parse(config), *pl = plan ? parse(plan) : NULL;
    char err[256] = "";
    protocols *p = protocols_compile(c, pl, "web", "rs_P", "Plan P", err, sizeof err);
    json_decref(c);
    json_decref(pl);
    if (!p)
        fail_msg("protocols_compile: %s", err);
    return p;
}

static protocols *mk(const char *config) { return mk_plan(config, PLAN_P); }

/* Applies p to the event; returns the event as changed (caller frees). */
static json_t *apply(const protocols *p, const char *event, protocols_result *out)
{
    json_t *ev = parse(event);
    protocols_apply(p, ev, out);
    assert_non_null(out->violations);
    assert_true(json_is_array(out->violations));
    return ev;
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

/* Asserts that the JSON value at path equals the JSON text `want` ("null" = absent). */
static void expect(json_t *j, const char *path, const char *want)
{
    json_t *got = at(j, path);
    if (!strcmp(want, "null") && !got)
        return;
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    if (!w)
        fail_msg("bad expectation %s", want);
    if (!got || !json_equal(got, w)) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
        json_decref(w);
        fail_msg("%s: got %s, want %s", path, g ? g : "(absent)", want);
    }
    json_decref(w);
}

static void expect_str(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

/* ----- §2.7 vectors ---------------------------------------------------------------------- */

static void p1_defaults_record_violation(void **state)
{
    (void)state;
    protocols *p = mk("{}");
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    expect(ev, "properties", "{\"order_id\": 7, \"total\": 1, \"coupon\": \"x\"}");
    expect(ev, "context.protocols",
           "{\"sourceId\": \"web\", \"violations\": [{\"type\": \"Invalid Type\", \"field\": \"properties.order_id\","
           " \"description\": \"Invalid type. Expected: string, given: integer\"}]}");
    assert_true(json_equal(r.violations, at(ev, "context.protocols.violations")));
    assert_null(r.forward_blocked_to);
    assert_null(r.forward_violations_to);
    protocols_result_clear(&r);
    assert_null(r.violations);
    json_decref(ev);
    protocols_free(p);
}

static void p2_unplanned_blocked(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_unplanned_track_events\": false}");
    protocols_result r;
    /* case-sensitive: "order completed" is not "Order Completed" */
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"order completed\","
                          " \"context\": {\"library\": {}}, \"properties\": {\"a\": 1}}", &r);
    assert_true(r.blocked);
    expect_str(r.reason, "unplanned");
    assert_int_equal(json_array_size(r.violations), 0);
    expect(ev, "context.protocols", "null"); /* nothing omitted or violated: no annotation */
    assert_null(r.forward_blocked_to);
    protocols_result_clear(&r);
    json_decref(ev);
    /* the planned name passes */
    ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void p3_omit_unplanned_properties(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_unplanned_track_event_properties\": false}");
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    expect(ev, "properties", "{\"order_id\": 7, \"total\": 1}");
    expect(ev, "context.protocols.omitted", "[\"coupon\"]");
    expect(ev, "context.protocols.omitted_on_violation", "null");
    expect(ev, "context.protocols.violations.0.field", "\"properties.order_id\"");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void p4_omit_properties_on_violation(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_track_properties_on_violations\": false}");
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    expect(ev, "properties", "{\"total\": 1, \"coupon\": \"x\"}");
    expect(ev, "context.protocols.omitted_on_violation", "[\"order_id\"]");
    expect(ev, "context.protocols.omitted", "null");
    expect(ev, "context.protocols.violations.0.type", "\"Invalid Type\"");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void p5_block_on_violation(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_track_event_on_violations\": false}");
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r);
    assert_true(r.blocked);
    expect_str(r.reason, "schema_violation");
    assert_int_equal(json_array_size(r.violations), 1);
    /* the blocked event carries its violations (for forwarding, §2.5) */
    expect(ev, "context.protocols.violations.0.field", "\"properties.order_id\"");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void p6_valid_event_delivered(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_track_event_on_violations\": false, \"forwarding_violations_to\": \"violations\","
                      " \"forwarding_blocked_events_to\": \"quarantine\"}");
    protocols_result r;
    const char *text = "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": {}},"
                       " \"properties\": {\"order_id\": \"A1\"}}";
    json_t *ev = apply(p, text, &r), *orig = parse(text);
    assert_false(r.blocked);
    assert_null(r.reason);
    assert_int_equal(json_array_size(r.violations), 0);
    assert_true(json_equal(ev, orig)); /* untouched: no context.protocols */
    assert_null(r.forward_blocked_to);
    assert_null(r.forward_violations_to);
    protocols_result_clear(&r);
    json_decref(ev);
    json_decref(orig);
    protocols_free(p);
}

static void p7_common_block(void **state)
{
    (void)state;
    protocols *p = mk("{\"common_track_event_on_violations\": \"BLOCK\"}");
    protocols_result r;
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": 5},"
                          " \"properties\": {\"order_id\": \"A1\"}}", &r);
    assert_true(r.blocked);
    expect_str(r.reason, "common_schema_violation");
    expect(r.violations, "0",
           "{\"type\": \"Invalid Type\", \"field\": \"context.library\","
           " \"description\": \"Invalid type. Expected: object, given: integer\"}");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void p8_forward_blocked(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_unplanned_track_events\": false, \"forwarding_blocked_events_to\": \"quarantine\","
                      " \"allow_unplanned_track_event_properties\": false}");
    protocols_result r;
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"order completed\", \"context\": {\"library\": {}}}", &r);
    assert_true(r.blocked);
    expect_str(r.forward_blocked_to, "quarantine");
    protocols_result_clear(&r);
    json_decref(ev);
    /* omitted properties are not a block: nothing to forward (§2.5) */
    ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    expect(ev, "context.protocols.omitted", "[\"coupon\"]");
    assert_null(r.forward_blocked_to);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* "" turns forwarding off */
    p = mk("{\"allow_unplanned_track_events\": false, \"forwarding_blocked_events_to\": \"\"}");
    ev = apply(p, "{\"type\": \"track\", \"event\": \"nope\"}", &r);
    assert_true(r.blocked);
    assert_null(r.forward_blocked_to);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

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
    protocols *p = mk("{\"forwarding_violations_to\": \"violations\"}");
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    expect_str(r.forward_violations_to, "violations");
    assert_null(r.forward_blocked_to);
    assert_int_equal(json_array_size(r.violations), 1);
    json_object_set_new(json_object_get(ev, "context"), "app", json_pack("{s:s}", "version", "3.1"));
    json_object_set_new(ev, "sentAt", json_string("2026-01-02T03:04:06Z"));
    json_t *v = protocols_violation_event(p, ev, json_array_get(r.violations, 0), "1.2.3");
    expect(v, "type", "\"track\"");
    expect(v, "event", "\"Violation Generated\"");
    expect(v, "userId", "\"schema-violations\"");
    expect(v, "integrations", "{}");
    expect(v, "context", "{\"app\": null, \"library\": {\"name\": \"manifold\", \"version\": \"1.2.3\"}}");
    expect(v, "forwardedFromProject", "\"web\"");
    expect(v, "properties",
           "{\"appVersion\": \"3.1\", \"eventMessageID\": \"m-1\", \"eventName\": \"Order Completed\","
           " \"eventSentAt\": \"2026-01-02T03:04:06Z\", \"eventTimestamp\": \"2026-01-02T03:04:05Z\","
           " \"eventType\": \"track\", \"sourceID\": \"web\", \"sourceName\": \"web\", \"sourceSlug\": \"web\","
           " \"trackingPlanID\": \"rs_P\", \"trackingPlanName\": \"Plan P\","
           " \"violationDescription\": \"Invalid type. Expected: string, given: integer\","
           " \"violationField\": \"properties.order_id\", \"violationType\": \"Invalid Type\"}");
    const char *mid = json_string_value(json_object_get(v, "messageId"));
    assert_non_null(mid);
    assert_int_equal(strncmp(mid, "sch-", 4), 0);
    assert_true(base62(mid + 4, 32));
    assert_true(json_is_string(json_object_get(v, "timestamp")));
    assert_true(json_is_string(json_object_get(v, "receivedAt")));
    json_t *w = protocols_violation_event(p, ev, json_array_get(r.violations, 0), "1.2.3");
    assert_string_not_equal(mid, json_string_value(json_object_get(w, "messageId"))); /* random */
    json_decref(w);
    json_decref(v);
    /* without app version or timestamp: "" and Go's zero time */
    json_t *bare = parse("{\"type\": \"track\", \"event\": \"E\"}");
    v = protocols_violation_event(p, bare, json_array_get(r.violations, 0), "1.2.3");
    expect(v, "properties.appVersion", "\"\"");
    expect(v, "properties.eventTimestamp", "\"0001-01-01T00:00:00Z\"");
    json_decref(v);
    json_decref(bare);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static const char *STRICT =
    "{\"allow_unplanned_track_events\": false, \"allow_unplanned_identify_traits\": false,"
    " \"allow_unplanned_group_traits\": false, \"allow_unplanned_track_event_properties\": false,"
    " \"allow_track_event_on_violations\": false, \"allow_identify_traits_on_violations\": false,"
    " \"allow_group_traits_on_violations\": false, \"allow_track_properties_on_violations\": false,"
    " \"common_track_event_on_violations\": \"BLOCK\", \"common_identify_event_on_violations\": \"BLOCK\","
    " \"common_group_event_on_violations\": \"BLOCK\", \"forwarding_blocked_events_to\": \"q\","
    " \"forwarding_violations_to\": \"v\"}";

static void p10_page_screen_alias_untouched(void **state)
{
    (void)state;
    protocols *p = mk(STRICT);
    const char *texts[] = {
        "{\"type\": \"page\", \"name\": \"Home\", \"context\": {\"library\": 5}, \"properties\": {\"x\": 1}}",
        "{\"type\": \"screen\", \"name\": \"Home\", \"context\": {\"library\": 5}, \"properties\": {\"x\": 1}}",
        "{\"type\": \"alias\", \"previousId\": \"a\", \"context\": {\"library\": 5}}",
    };
    for (size_t i = 0; i < 3; i++) {
        protocols_result r;
        json_t *ev = apply(p, texts[i], &r), *orig = parse(texts[i]);
        assert_false(r.blocked);
        assert_int_equal(json_array_size(r.violations), 0);
        assert_true(json_equal(ev, orig));
        protocols_result_clear(&r);
        json_decref(ev);
        json_decref(orig);
    }
    protocols_free(p);
}

/* ----- more of §2.2–§2.4 ------------------------------------------------------------------- */

static void no_plan_changes_nothing(void **state)
{
    (void)state;
    protocols *p = mk_plan(STRICT, NULL);
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r), *orig = parse(P1_EVENT);
    assert_false(r.blocked);
    assert_int_equal(json_array_size(r.violations), 0);
    assert_true(json_equal(ev, orig));
    protocols_result_clear(&r);
    json_decref(ev);
    json_decref(orig);
    protocols_free(p);
}

static const char *PLAN_VERSIONS =
    "{\"rules\": {\"events\": ["
    " {\"name\": \"Signed Up\", \"version\": 2, \"rules\": {" D7 ", \"properties\": {\"properties\": {"
    "   \"properties\": {\"plan\": {\"type\": \"integer\"}, \"v2only\": {}}}}}},"
    " {\"name\": \"Signed Up\", \"version\": 1, \"rules\": {" D7 ", \"properties\": {\"properties\": {"
    "   \"properties\": {\"plan\": {\"type\": \"string\"}}}}}},"
    " {\"name\": \"Aardvark\", \"rules\": {" D7 "}},"
    " {\"name\": \"Zebra\", \"rules\": {" D7 "}}]}}";

static size_t nviol(const protocols *p, const char *event)
{
    protocols_result r;
    json_t *ev = apply(p, event, &r);
    size_t n = json_array_size(r.violations);
    protocols_result_clear(&r);
    json_decref(ev);
    return n;
}

static void event_versions(void **state)
{
    (void)state;
    protocols *p = mk_plan("{\"allow_unplanned_track_events\": false}", PLAN_VERSIONS);
    /* no event_version: the oldest (v1, listed second) wants a string */
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1}}"), 1);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": \"a\"}}"), 0);
    /* event_version 2 picks v2 */
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1},"
                              " \"context\": {\"protocols\": {\"event_version\": 2}}}"), 0);
    /* a version that does not exist, or not an integer: the oldest */
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1},"
                              " \"context\": {\"protocols\": {\"event_version\": 7}}}"), 1);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1},"
                              " \"context\": {\"protocols\": {\"event_version\": \"2\"}}}"), 1);
    /* the binary search finds the first and last names too; others are unplanned */
    protocols_result r;
    const char *names[] = {"Aardvark", "Zebra", "Signed Up", "Mongoose", "A", "Zz"};
    for (size_t i = 0; i < 6; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\": \"track\", \"event\": \"%s\"}", names[i]);
        json_t *ev = apply(p, text, &r);
        assert_int_equal(r.blocked, i >= 3);
        protocols_result_clear(&r);
        json_decref(ev);
    }
    /* a violation on v2: the annotation keeps event_version, drops other stale keys */
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": \"a\"},"
                          " \"context\": {\"protocols\": {\"event_version\": 2, \"omitted\": [\"forged\"]}}}", &r);
    expect(ev, "context.protocols.event_version", "2");
    expect(ev, "context.protocols.omitted", "null");
    expect(ev, "context.protocols.violations.0.field", "\"properties.plan\"");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* planned names come from the selected version: v2 plans v2only */
    p = mk_plan("{\"allow_unplanned_track_event_properties\": false}", PLAN_VERSIONS);
    ev = apply(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": 1, \"v2only\": 1},"
                  " \"context\": {\"protocols\": {\"event_version\": 2}}}", &r);
    expect(ev, "properties", "{\"plan\": 1, \"v2only\": 1}");
    protocols_result_clear(&r);
    json_decref(ev);
    ev = apply(p, "{\"type\": \"track\", \"event\": \"Signed Up\", \"properties\": {\"plan\": \"a\", \"v2only\": 1}}", &r);
    expect(ev, "properties", "{\"plan\": \"a\"}");
    expect(ev, "context.protocols.omitted", "[\"v2only\"]");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void identify_traits(void **state)
{
    (void)state;
    const char *text = "{\"type\": \"identify\", \"userId\": \"u\", \"context\": {\"library\": {}, \"traits\": {\"x\": 1}},"
                       " \"traits\": {\"email\": \"not an email\", \"name\": \"Ann\", \"age\": 3}}";
    protocols_result r;
    /* defaults: the format violation is recorded (formats assert), nothing removed */
    protocols *p = mk("{}");
    json_t *ev = apply(p, text, &r);
    expect(ev, "traits", "{\"email\": \"not an email\", \"name\": \"Ann\", \"age\": 3}");
    expect(ev, "context.protocols.violations.0.type", "\"Invalid Value\"");
    expect(ev, "context.protocols.violations.0.field", "\"traits.email\"");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* unplanned traits omitted (never context.traits) */
    p = mk("{\"allow_unplanned_identify_traits\": false}");
    ev = apply(p, text, &r);
    expect(ev, "traits", "{\"email\": \"not an email\", \"name\": \"Ann\"}");
    expect(ev, "context.traits", "{\"x\": 1}");
    expect(ev, "context.protocols.omitted", "[\"age\"]");
    assert_false(r.blocked);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* violating traits omitted */
    p = mk("{\"allow_identify_traits_on_violations\": false}");
    ev = apply(p, text, &r);
    expect(ev, "traits", "{\"name\": \"Ann\", \"age\": 3}");
    expect(ev, "context.protocols.omitted_on_violation", "[\"email\"]");
    assert_false(r.blocked);
    protocols_result_clear(&r);
    json_decref(ev);
    /* the group settings do not apply to identify */
    protocols_free(p);
    p = mk("{\"allow_unplanned_group_traits\": false, \"allow_group_traits_on_violations\": false}");
    ev = apply(p, text, &r);
    expect(ev, "traits", "{\"email\": \"not an email\", \"name\": \"Ann\", \"age\": 3}");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void group_traits(void **state)
{
    (void)state;
    const char *text = "{\"type\": \"group\", \"groupId\": \"g\", \"context\": {\"library\": {}},"
                       " \"traits\": {\"plan\": \"gold\", \"seats\": 3, \"industry\": \"x\"}}";
    protocols_result r;
    protocols *p = mk("{\"allow_unplanned_group_traits\": false, \"allow_group_traits_on_violations\": false}");
    json_t *ev = apply(p, text, &r);
    expect(ev, "traits", "{\"seats\": 3}");
    expect(ev, "context.protocols.omitted", "[\"industry\"]");
    expect(ev, "context.protocols.omitted_on_violation", "[\"plan\"]");
    expect(ev, "context.protocols.violations.0.type", "\"Invalid Value\""); /* enum */
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* no group rule at all: every trait is unplanned */
    p = mk_plan("{\"allow_unplanned_group_traits\": false}", "{\"rules\": {\"events\": []}}");
    ev = apply(p, text, &r);
    expect(ev, "traits", "{}");
    expect(ev, "context.protocols.omitted", "[\"plan\", \"seats\", \"industry\"]");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

/* rules.global with one check per container, for rows 9–11. */
static const char *PLAN_GLOBAL =
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
        for (int m = 0; m < 3; m++) {
            char config[160];
            snprintf(config, sizeof config, "{\"%s\": \"%s\"}", cases[i].field, modes[m]);
            protocols *p = mk_plan(config, PLAN_GLOBAL);
            protocols_result r;
            json_t *ev = apply(p, cases[i].event, &r), *orig = parse(cases[i].event);
            assert_int_equal(json_array_size(r.violations), 1);
            assert_int_equal(r.blocked, m == 2);
            if (m == 2)
                expect_str(r.reason, "common_schema_violation");
            if (m == 1) {
                expect(ev, cases[i].container, cases[i].left);
                expect(json_object_get(ev, "context"), "protocols.omitted_on_violation",
                       strcmp(cases[i].container, "traits") ? "[\"price\"]" : "[\"age\"]");
            } else {
                assert_true(json_equal(json_object_get(ev, cases[i].container),
                                       json_object_get(orig, cases[i].container)));
            }
            protocols_result_clear(&r);
            json_decref(ev);
            json_decref(orig);
            protocols_free(p);
        }
    }
}

static void omission_never_touches_context(void **state)
{
    (void)state;
    protocols *p = mk_plan("{\"common_track_event_on_violations\": \"OMIT_PROPERTIES\","
                           " \"allow_track_properties_on_violations\": false}", PLAN_GLOBAL);
    protocols_result r;
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"Bought\", \"context\": {\"library\": 5},"
                          " \"properties\": {\"library\": 1}}", &r);
    assert_false(r.blocked);
    expect(ev, "context.library", "5");
    expect(ev, "properties", "{\"library\": 1}");
    expect(ev, "context.protocols.omitted_on_violation", "null");
    expect(ev, "context.protocols.violations.0.field", "\"context.library\"");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void unplanned_and_schema_violation(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_unplanned_track_events\": false, \"forwarding_violations_to\": \"v\"}");
    protocols_result r;
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"Nope\", \"context\": {\"library\": \"js\"}}", &r);
    assert_true(r.blocked);
    expect_str(r.reason, "unplanned_and_schema_violation");
    expect(ev, "context.protocols.violations.0.field", "\"context.library\"");
    expect_str(r.forward_violations_to, "v");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void required_violations_remove_nothing(void **state)
{
    (void)state;
    const char *text = "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": {}},"
                       " \"properties\": {\"total\": 1}}";
    protocols *p = mk("{\"allow_track_properties_on_violations\": false}");
    protocols_result r;
    json_t *ev = apply(p, text, &r);
    assert_false(r.blocked);
    expect(ev, "properties", "{\"total\": 1}");
    expect(ev, "context.protocols.omitted_on_violation", "null");
    expect(r.violations, "0",
           "{\"type\": \"Required\", \"field\": \"properties.order_id\","
           " \"description\": \"properties.order_id is required\"}");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* but a required violation is a violation: it blocks under row 3 */
    p = mk("{\"allow_track_event_on_violations\": false}");
    ev = apply(p, text, &r);
    assert_true(r.blocked);
    expect_str(r.reason, "schema_violation");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void nested_violation_offends_top_level_key(void **state)
{
    (void)state;
    protocols *p = mk("{\"allow_track_properties_on_violations\": false}");
    protocols_result r;
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"Order Completed\", \"context\": {\"library\": {}},"
                          " \"properties\": {\"order_id\": \"A\", \"products\": [{\"price\": 1}, {\"price\": \"2\"}]}}",
                       &r);
    expect(r.violations, "0.field", "\"properties.products[1].price\"");
    expect(ev, "properties", "{\"order_id\": \"A\"}");
    expect(ev, "context.protocols.omitted_on_violation", "[\"products\"]");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

/* Each control sees the event as the previous one left it: unplanned properties are gone
 * before the rule (additionalProperties: false) and rules.global judge the event. */
static void controls_see_the_event_as_left(void **state)
{
    (void)state;
    const char *plan =
        "{\"rules\": {\"global\": {" D7 ", \"properties\": {\"properties\": {\"properties\": {"
        "   \"coupon\": {\"type\": \"number\"}, \"total\": {\"type\": \"number\"}}}}},"
        " \"events\": [{\"name\": \"E\", \"rules\": {" D7 ", \"properties\": {\"properties\": {"
        "   \"additionalProperties\": false, \"properties\": {\"total\": {}, \"id\": {\"type\": \"string\"}}}}}}]}}";
    const char *text = "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"total\": \"t\", \"id\": 1, \"coupon\": \"x\"}}";
    protocols_result r;
    /* all allowed: additionalProperties, id's type and both global types are violations */
    protocols *p = mk_plan("{}", plan);
    json_t *ev = apply(p, text, &r);
    assert_int_equal(json_array_size(r.violations), 4);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
    /* coupon omitted first: neither the rule nor global complains about it any more;
     * then id omitted on violation before global runs: global sees only total */
    p = mk_plan("{\"allow_unplanned_track_event_properties\": false, \"allow_track_properties_on_violations\": false,"
                " \"common_track_event_on_violations\": \"OMIT_PROPERTIES\"}", plan);
    ev = apply(p, text, &r);
    expect(ev, "properties", "{}");
    expect(ev, "context.protocols.omitted", "[\"coupon\"]");
    expect(ev, "context.protocols.omitted_on_violation", "[\"id\", \"total\"]");
    expect(r.violations, "0.field", "\"properties.id\"");
    expect(r.violations, "1.field", "\"properties.total\"");
    assert_int_equal(json_array_size(r.violations), 2);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

static void draft04_and_draft07(void **state)
{
    (void)state;
    const char *fmt = "{\"rules\": {\"events\": [{\"name\": \"E\", \"rules\": {%s, \"properties\": {\"properties\": {"
                      "\"properties\": {\"qty\": {\"type\": \"integer\"},"
                      " \"pct\": {\"maximum\": 100, \"exclusiveMaximum\": %s}}}}}}]}}";
    char plan[512];
    /* draft-04: 1.0 is not an integer; exclusiveMaximum is a boolean */
    snprintf(plan, sizeof plan, fmt, D4, "true");
    protocols *p = mk_plan("{}", plan);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"qty\": 1.0}}"), 1);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"pct\": 100}}"), 1);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"qty\": 1, \"pct\": 99}}"), 0);
    protocols_free(p);
    /* draft-07: 1.0 is an integer; exclusiveMaximum is a number */
    snprintf(plan, sizeof plan, fmt, D7, "100");
    p = mk_plan("{}", plan);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"qty\": 1.0}}"), 0);
    assert_int_equal(nviol(p, "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"pct\": 100}}"), 1);
    protocols_free(p);
}

static void formats_assert(void **state)
{
    (void)state;
    const char *plan = "{\"rules\": {\"events\": [{\"name\": \"E\", \"rules\": {" D7 ", \"properties\": {"
                       " \"properties\": {\"properties\": {\"at\": {\"type\": \"string\", \"format\": \"date-time\"},"
                       " \"ip\": {\"format\": \"ipv4\"}}}}}}]}}";
    protocols *p = mk_plan("{\"allow_track_properties_on_violations\": false}", plan);
    protocols_result r;
    json_t *ev = apply(p, "{\"type\": \"track\", \"event\": \"E\", \"properties\": {\"at\": \"yesterday\","
                          " \"ip\": \"10.0.0.1\"}}", &r);
    assert_int_equal(json_array_size(r.violations), 1);
    expect(r.violations, "0.type", "\"Invalid Value\"");
    expect(r.violations, "0.field", "\"properties.at\"");
    expect(ev, "properties", "{\"ip\": \"10.0.0.1\"}");
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
}

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
    protocols *p = protocols_compile(NULL, pl, NULL, NULL, NULL, NULL, 0);
    json_decref(pl); /* the plan is copied: freeing it must not matter */
    assert_non_null(p);
    protocols_result r;
    json_t *ev = apply(p, P1_EVENT, &r);
    assert_false(r.blocked);
    expect(ev, "context.protocols.sourceId", "\"\"");
    assert_int_equal(json_array_size(r.violations), 1);
    protocols_result_clear(&r);
    json_decref(ev);
    protocols_free(p);
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
    protocols *p = mk("{\"allow_unplanned_track_event_properties\": false,"
                      " \"allow_track_properties_on_violations\": false}");
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
        cmocka_unit_test(p1_defaults_record_violation),
        cmocka_unit_test(p2_unplanned_blocked),
        cmocka_unit_test(p3_omit_unplanned_properties),
        cmocka_unit_test(p4_omit_properties_on_violation),
        cmocka_unit_test(p5_block_on_violation),
        cmocka_unit_test(p6_valid_event_delivered),
        cmocka_unit_test(p7_common_block),
        cmocka_unit_test(p8_forward_blocked),
        cmocka_unit_test(p9_forward_violations),
        cmocka_unit_test(p10_page_screen_alias_untouched),
        cmocka_unit_test(no_plan_changes_nothing),
        cmocka_unit_test(event_versions),
        cmocka_unit_test(identify_traits),
        cmocka_unit_test(group_traits),
        cmocka_unit_test(common_controls_each_type),
        cmocka_unit_test(omission_never_touches_context),
        cmocka_unit_test(unplanned_and_schema_violation),
        cmocka_unit_test(required_violations_remove_nothing),
        cmocka_unit_test(nested_violation_offends_top_level_key),
        cmocka_unit_test(controls_see_the_event_as_left),
        cmocka_unit_test(draft04_and_draft07),
        cmocka_unit_test(formats_assert),
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(projected_view_same_verdicts),
        cmocka_unit_test(concurrent_apply),
        cmocka_unit_test(timing_typical_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
