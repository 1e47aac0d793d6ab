/* Unit tests for destination filters (src/filters): the action vectors of
 * spec/fql.md §7.5, sampling properties (§6.2), validation messages, ordering,
 * fail-closed behaviour and the preview contract (config-api.md §10.6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filters/filters.h"
#include "filters/filters_int.h"

static const char *B =
    "{\"userId\": \"u1\","
    " \"context\": {\"ip\": \"1.2.3.4\", \"library\": {\"name\": \"a\"}},"
    " \"properties\": {\"email\": \"e\", \"name\": \"n\", \"products\": [{\"id\": 1, \"price\": 2},"
    " {\"id\": 3, \"price\": 4}]},"
    " \"traits\": {\"email\": \"t\"}}";

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad JSON in test: %s: %s", je.text, text);
    return j;
}

static dest_filter *filter_with(const char *cond, const char *actions_json)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"if\": \"%s\", \"actions\": %s, \"enabled\": true}", cond,
             actions_json);
    json_t *obj = js(buf);
    dest_filter_error err;
    dest_filter *f = dest_filter_compile(obj, &err);
    json_decref(obj);
    if (!f)
        fail_msg("compile failed: %s", err.message);
    return f;
}

/* Applies one filter with `action` (if "all") to event B and compares the
 * result with `expect` (JSON) or expects a drop when expect is NULL. */
static void check_action(const char *action, const char *expect_json)
{
    char acts[1024];
    snprintf(acts, sizeof acts, "[%s]", action);
    dest_filter *f = filter_with("all", acts);
    json_t *ev = js(B);
    json_t *orig = json_deep_copy(ev);
    json_t *out = dest_filters_apply(&f, 1, ev, false);
    if (!expect_json) {
        assert_null(out);
    } else {
        json_t *want = js(expect_json);
        if (!json_equal(out, want)) {
            char *got = json_dumps(out, JSON_SORT_KEYS);
            fail_msg("action %s\n got %s\n want %s", action, got, expect_json);
        }
        json_decref(want);
    }
    assert_true(json_equal(ev, orig)); /* the input event is never modified */
    json_decref(out);
    json_decref(orig);
    json_decref(ev);
    dest_filter_free(f);
}

/* ---- §7.5 action vectors ------------------------------------------------- */

static void test_A1_drop(void **s)
{
    (void)s;
    check_action("{\"type\":\"drop_event\"}", NULL);
}

static void test_A2_blacklist(void **s)
{
    (void)s;
    check_action("{\"type\":\"blacklist_fields\",\"fields\":{\"properties\":{\"fields\":[\"email\"]},"
                 "\"context\":{\"fields\":[\"ip\"]}}}",
                 "{\"userId\": \"u1\", \"context\": {\"library\": {\"name\": \"a\"}},"
                 " \"properties\": {\"name\": \"n\", \"products\": [{\"id\": 1, \"price\": 2},"
                 " {\"id\": 3, \"price\": 4}]}, \"traits\": {\"email\": \"t\"}}");
}

static void test_A3_blacklist_top_level(void **s)
{
    (void)s;
    check_action("{\"type\":\"blacklist_fields\",\"fields\":{\"\":{\"fields\":[\"userId\"]}}}",
                 "{\"context\": {\"ip\": \"1.2.3.4\", \"library\": {\"name\": \"a\"}},"
                 " \"properties\": {\"email\": \"e\", \"name\": \"n\", \"products\": [{\"id\": 1, "
                 "\"price\": 2}, {\"id\": 3, \"price\": 4}]}, \"traits\": {\"email\": \"t\"}}");
}

static void test_A4_blacklist_in_list(void **s)
{
    (void)s;
    check_action("{\"type\":\"blacklist_fields\",\"fields\":{\"properties.products\":{\"fields\":"
                 "[\"price\"]}}}",
                 "{\"userId\": \"u1\", \"context\": {\"ip\": \"1.2.3.4\", \"library\": {\"name\": "
                 "\"a\"}}, \"properties\": {\"email\": \"e\", \"name\": \"n\", \"products\": "
                 "[{\"id\": 1}, {\"id\": 3}]}, \"traits\": {\"email\": \"t\"}}");
}

static void test_A5_whitelist(void **s)
{
    (void)s;
    check_action("{\"type\":\"whitelist_fields\",\"fields\":{\"properties\":{\"fields\":[\"name\"]}}}",
                 "{\"userId\": \"u1\", \"context\": {\"ip\": \"1.2.3.4\", \"library\": {\"name\": "
                 "\"a\"}}, \"properties\": {\"name\": \"n\"}, \"traits\": {\"email\": \"t\"}}");
}

static void test_A6_whitelist_empty(void **s)
{
    (void)s;
    check_action("{\"type\":\"whitelist_fields\",\"fields\":{\"properties\":{\"fields\":[]}}}",
                 "{\"userId\": \"u1\", \"context\": {\"ip\": \"1.2.3.4\", \"library\": {\"name\": "
                 "\"a\"}}, \"properties\": {}, \"traits\": {\"email\": \"t\"}}");
}

static void test_A7_whitelist_missing(void **s)
{
    (void)s;
    check_action("{\"type\":\"whitelist_fields\",\"fields\":{\"missing\":{\"fields\":[\"a\"]}}}", B);
}

static void test_A8_sample_zero(void **s)
{
    (void)s;
    check_action("{\"type\":\"sample_event\",\"percent\":0}", NULL);
    check_action("{\"type\":\"sample_event\",\"percent\":0,\"path\":\"userId\"}", NULL);
}

static void test_A9_sample_one(void **s)
{
    (void)s;
    check_action("{\"type\":\"sample_event\",\"percent\":1}", B);
    check_action("{\"type\":\"sample_event\",\"percent\":1,\"path\":\"userId\"}", B);
}

static void test_A10_whitelist_in_list(void **s)
{
    (void)s;
    check_action("{\"type\":\"whitelist_fields\",\"fields\":{\"properties.products\":{\"fields\":"
                 "[\"id\"]}}}",
                 "{\"userId\": \"u1\", \"context\": {\"ip\": \"1.2.3.4\", \"library\": {\"name\": "
                 "\"a\"}}, \"properties\": {\"email\": \"e\", \"name\": \"n\", \"products\": "
                 "[{\"id\": 1}, {\"id\": 3}]}, \"traits\": {\"email\": \"t\"}}");
}

static void test_field_names_are_keys_not_paths(void **s)
{
    (void)s;
    /* "client.ip" in context is a key literally named client.ip */
    dest_filter *f = filter_with("all", "[{\"type\":\"blacklist_fields\",\"fields\":{\"context\":"
                                        "{\"fields\":[\"client.ip\"]}}}]");
    json_t *ev = js("{\"context\":{\"client.ip\":1,\"client\":{\"ip\":2}}}");
    json_t *out = dest_filters_apply(&f, 1, ev, false);
    json_t *want = js("{\"context\":{\"client\":{\"ip\":2}}}");
    assert_true(json_equal(out, want));
    json_decref(want);
    json_decref(out);
    dest_filter_free(f);
    /* deeper objects are named by path; '\' escapes a dot in a key */
    f = filter_with("all", "[{\"type\":\"blacklist_fields\",\"fields\":{\"context.client\":"
                           "{\"fields\":[\"ip\"]},\"a\\\\.b\":{\"fields\":[\"x\"]}}}]");
    json_decref(ev);
    ev = js("{\"context\":{\"client\":{\"ip\":2,\"port\":3}},\"a.b\":{\"x\":1,\"y\":2}}");
    out = dest_filters_apply(&f, 1, ev, false);
    want = js("{\"context\":{\"client\":{\"port\":3}},\"a.b\":{\"y\":2}}");
    if (!json_equal(out, want))
        fail_msg("got %s", json_dumps(out, JSON_SORT_KEYS));
    json_decref(want);
    json_decref(out);
    json_decref(ev);
    dest_filter_free(f);
}

static void test_filter_level_vectors(void **s)
{
    (void)s;
    dest_filter *f = filter_with("type != 'track'", "[{\"type\":\"drop_event\"}]");
    json_t *identify = js("{\"type\":\"identify\"}"), *track = js("{\"type\":\"track\"}");
    assert_null(dest_filters_apply(&f, 1, identify, false));
    json_t *out = dest_filters_apply(&f, 1, track, false);
    assert_ptr_equal(out, track); /* unchanged events are passed through, not copied */
    json_decref(out);
    dest_filter_free(f);
    f = filter_with("!(event = \\\"Session Started\\\" or event = \\\"Order Completed\\\")",
                    "[{\"type\":\"drop_event\"}]");
    const char *evs[] = {"{\"event\":\"Session Started\"}", "{\"event\":\"Order Completed\"}",
                         "{\"event\":\"Order Viewed\"}", "{}"};
    for (int i = 0; i < 4; i++) {
        json_t *ev = js(evs[i]);
        out = dest_filters_apply(&f, 1, ev, false);
        if (i < 2)
            assert_non_null(out);
        else
            assert_null(out);
        json_decref(out);
        json_decref(ev);
    }
    dest_filter_free(f);
    json_decref(identify);
    json_decref(track);
}

/* ---- sampling (§6.2 properties) ------------------------------------------ */

static bool kept(dest_filter *f, const char *uid)
{
    json_t *ev = json_pack("{s:s}", "userId", uid);
    json_t *out = dest_filters_apply(&f, 1, ev, false);
    bool k = out != NULL;
    json_decref(out);
    json_decref(ev);
    return k;
}

static dest_filter *sampler(double pct, const char *path)
{
    char a[256];
    if (path)
        snprintf(a, sizeof a, "[{\"type\":\"sample_event\",\"percent\":%g,\"path\":\"%s\"}]", pct,
                 path);
    else
        snprintf(a, sizeof a, "[{\"type\":\"sample_event\",\"percent\":%g}]", pct);
    return filter_with("all", a);
}

static void test_sample_deterministic_monotone_fraction(void **s)
{
    (void)s;
    const double pcts[] = {0.1, 0.3, 0.5, 0.9};
    dest_filter *fs[4];
    for (int p = 0; p < 4; p++)
        fs[p] = sampler(pcts[p], "userId");
    int count[4] = {0};
    for (int i = 0; i < 2000; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "user-%d", i);
        bool prev = false;
        for (int p = 0; p < 4; p++) {
            bool k = kept(fs[p], uid);
            assert_int_equal(k, kept(fs[p], uid)); /* same value, same decision */
            if (prev)
                assert_true(k); /* raising percent never drops a kept value */
            prev = k;
            count[p] += k;
        }
    }
    for (int p = 0; p < 4; p++) {
        double frac = count[p] / 2000.0;
        if (frac < pcts[p] - 0.05 || frac > pcts[p] + 0.05)
            fail_msg("percent %.1f kept %.3f", pcts[p], frac);
        dest_filter_free(fs[p]);
    }
    /* a missing path value is hashed as null: all or nothing, consistently */
    dest_filter *f = sampler(0.5, "missing.path");
    json_t *a = js("{\"userId\":\"x\"}"), *b = js("{\"userId\":\"y\"}");
    json_t *ra = dest_filters_apply(&f, 1, a, false), *rb = dest_filters_apply(&f, 1, b, false);
    assert_int_equal(ra != NULL, rb != NULL);
    json_decref(ra);
    json_decref(rb);
    json_decref(a);
    json_decref(b);
    dest_filter_free(f);
}

static void test_sample_random(void **s)
{
    (void)s;
    dest_filter *f = sampler(0.3, NULL);
    int k = 0;
    for (int i = 0; i < 4000; i++)
        k += kept(f, "same-user");
    assert_in_range(k, 4000 * 0.25, 4000 * 0.35);
    dest_filter_free(f);
    f = sampler(0.3, ""); /* "" path means random too */
    k = 0;
    for (int i = 0; i < 4000; i++)
        k += kept(f, "same-user");
    assert_in_range(k, 4000 * 0.25, 4000 * 0.35);
    dest_filter_free(f);
}

/* ---- multiple filters, order, enabled, fail closed ----------------------- */

static void test_order_and_enabled(void **s)
{
    (void)s;
    json_t *ev = js(B);
    dest_filter *fs[3];
    fs[0] = filter_with("all", "[{\"type\":\"whitelist_fields\",\"fields\":{\"properties\":"
                               "{\"fields\":[\"email\",\"name\"]}}}]");
    fs[1] = filter_with("userId = 'u1'", "[{\"type\":\"blacklist_fields\",\"fields\":"
                                         "{\"properties\":{\"fields\":[\"email\"]}}}]");
    /* conditions see the event as received, whatever the filter order */
    fs[2] = filter_with("properties.email = 'e'", "[{\"type\":\"blacklist_fields\",\"fields\":"
                                                  "{\"traits\":{\"fields\":[\"email\"]}}}]");
    json_t *out = dest_filters_apply(fs, 3, ev, false);
    json_t *want = js("{\"userId\": \"u1\", \"context\": {\"ip\": \"1.2.3.4\", \"library\": "
                      "{\"name\": \"a\"}}, \"properties\": {\"name\": \"n\"}, \"traits\": {}}");
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    /* a drop anywhere wins over field actions */
    dest_filter *d = filter_with("all", "[{\"type\":\"drop_event\"}]");
    dest_filter *with_drop[2] = {fs[0], d};
    assert_null(dest_filters_apply(with_drop, 2, ev, false));
    /* disabled filters are skipped unless asked (preview) */
    json_t *dis = js("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}],\"enabled\":false}");
    dest_filter *df = dest_filter_compile(dis, NULL);
    assert_false(dest_filter_enabled(df));
    out = dest_filters_apply(&df, 1, ev, false);
    assert_ptr_equal(out, ev);
    json_decref(out);
    assert_null(dest_filters_apply(&df, 1, ev, true));
    dest_filter_free(df);
    json_decref(dis);
    /* no filters, NULL entries */
    out = dest_filters_apply(NULL, 0, ev, false);
    assert_ptr_equal(out, ev);
    json_decref(out);
    assert_null(dest_filters_apply(fs, 1, NULL, false));
    for (int i = 0; i < 3; i++)
        dest_filter_free(fs[i]);
    dest_filter_free(d);
    json_decref(ev);
}

static void test_many_filters(void **s)
{
    (void)s;
    enum { N = 40 }; /* more than the on-stack match array */
    dest_filter *fs[N];
    for (int i = 0; i < N; i++) {
        char c[64];
        snprintf(c, sizeof c, "n = %d", i);
        fs[i] = filter_with(c, "[{\"type\":\"blacklist_fields\",\"fields\":{\"\":{\"fields\":"
                               "[\"secret\"]}}}]");
    }
    json_t *ev = js("{\"n\":39,\"secret\":1,\"keep\":2}");
    json_t *out = dest_filters_apply(fs, N, ev, false);
    json_t *want = js("{\"n\":39,\"keep\":2}");
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    json_decref(ev);
    for (int i = 0; i < N; i++)
        dest_filter_free(fs[i]);
}

static void test_stored_broken_filter_fails_closed(void **s)
{
    (void)s;
    json_t *bad = js("{\"if\": \"a = )\", \"actions\": [{\"type\":\"drop_event\"}], \"enabled\": true}");
    assert_null(dest_filter_compile(bad, NULL));
    dest_filter *f = dest_filter_compile_stored(bad);
    assert_non_null(f);
    assert_true(dest_filter_broken(f));
    json_t *ev = js("{\"type\":\"track\"}");
    assert_null(dest_filters_apply(&f, 1, ev, false));
    dest_filter_free(f);
    json_decref(bad);
    /* broken but disabled: ignored */
    bad = js("{\"if\": 5, \"actions\": [], \"enabled\": false}");
    f = dest_filter_compile_stored(bad);
    json_t *out = dest_filters_apply(&f, 1, ev, false);
    assert_ptr_equal(out, ev);
    json_decref(out);
    dest_filter_free(f);
    json_decref(bad);
    /* a good stored filter compiles normally */
    json_t *good = js("{\"if\": \"all\", \"actions\": [{\"type\":\"drop_event\"}], \"enabled\": true}");
    f = dest_filter_compile_stored(good);
    assert_false(dest_filter_broken(f));
    dest_filter_free(f);
    json_decref(good);
    json_decref(ev);
}

/* ---- validation messages & aliases --------------------------------------- */

static void expect_invalid(const char *filter_json, const char *want)
{
    json_t *obj = js(filter_json);
    dest_filter_error err;
    dest_filter *f = dest_filter_compile(obj, &err);
    json_decref(obj);
    if (f) {
        dest_filter_free(f);
        fail_msg("expected invalid: %s", filter_json);
    }
    if (strcmp(err.message, want))
        fail_msg("%s\n  got:  %s\n  want: %s", filter_json, err.message, want);
}

static void test_validation_messages(void **s)
{
    (void)s;
    expect_invalid("[]", "filter: must be an object");
    expect_invalid("{\"actions\":[{\"type\":\"drop_event\"}]}",
                   "if: is required (an FQL condition, or \"all\")");
    expect_invalid("{\"if\":1,\"actions\":[{\"type\":\"drop_event\"}]}", "if: must be a string");
    expect_invalid("{\"if\":\"type = 'track' and (event = 'x'))\",\"actions\":[{\"type\":\"drop_event\"}]}",
                   "if: unexpected ')' at column 33, expected an operator, 'and', 'or' or end of input");
    expect_invalid("{\"if\":\"all\"}", "actions: is required");
    expect_invalid("{\"if\":\"all\",\"actions\":{}}", "actions: must be a list of actions");
    expect_invalid("{\"if\":\"all\",\"actions\":[]}", "actions: must contain at least one action");
    expect_invalid("{\"if\":\"all\",\"actions\":[1]}", "actions[0]: must be an object");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"},{}]}",
                   "actions[1].type: is required");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":7}]}", "actions[0].type: must be a string");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"explode\"}]}",
                   "actions[0].type: unknown action type 'explode' (expected drop_event, "
                   "sample_event, whitelist_fields or blacklist_fields)");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"sample_event\"}]}",
                   "actions[0].percent: is required");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"sample_event\",\"percent\":1.5}]}",
                   "actions[0].percent: must be a number between 0 and 1");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"sample_event\",\"percent\":\"0.5\"}]}",
                   "actions[0].percent: must be a number between 0 and 1");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"sample_event\",\"percent\":0.5,"
                   "\"path\":3}]}",
                   "actions[0].path: must be a string");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"sample_event\",\"percent\":0.5,"
                   "\"path\":\"a\\\\\"}]}",
                   "actions[0].path: '\\' at the end escapes nothing");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"whitelist_fields\"}]}",
                   "actions[0].fields: is required");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"whitelist_fields\",\"fields\":[]}]}",
                   "actions[0].fields: must be an object mapping a path to {\"fields\": [...]}");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"blacklist_fields\",\"fields\":"
                   "{\"properties\":\"x\"}}]}",
                   "actions[0].fields.properties: must be an object with a \"fields\" list");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"blacklist_fields\",\"fields\":"
                   "{\"properties\":{\"fields\":\"x\"}}}]}",
                   "actions[0].fields.properties.fields: must be a list of strings");
    expect_invalid("{\"if\":\"all\",\"actions\":[{\"type\":\"blacklist_fields\",\"fields\":"
                   "{\"properties\":{\"fields\":[\"a\",2]}}}]}",
                   "actions[0].fields.properties.fields[1]: must be a string");
    expect_invalid("{\"if\":\"all\",\"enabled\":\"yes\",\"actions\":[{\"type\":\"drop_event\"}]}",
                   "enabled: must be a boolean");
    expect_invalid("{\"if\":\"a = 'x\\u0000\",\"actions\":[{\"type\":\"drop_event\"}]}",
                   "if: unterminated string at column 5, expected a closing \"'\"");
}

static void test_aliases_and_canonical_form(void **s)
{
    (void)s;
    json_t *obj = js("{\"if\":\"all\",\"actions\":["
                     "{\"type\":\"blocklist_fields\",\"fields\":{\"properties\":{\"field\":[\"a\"]}}},"
                     "{\"type\":\"allowlist_fields\",\"fields\":{\"context\":[\"ip\"],\"traits\":{}}},"
                     "{\"type\":\"sample_event\",\"percent\":0.25,\"path\":\"userId\",\"extra\":1}]}");
    dest_filter_error err;
    dest_filter *f = dest_filter_compile(obj, &err);
    if (!f)
        fail_msg("%s", err.message);
    json_t *want = js("[{\"type\":\"blacklist_fields\",\"fields\":{\"properties\":{\"fields\":[\"a\"]}}},"
                      "{\"type\":\"whitelist_fields\",\"fields\":{\"context\":{\"fields\":[\"ip\"]},"
                      "\"traits\":{\"fields\":[]}}},"
                      "{\"type\":\"sample_event\",\"percent\":0.25,\"path\":\"userId\"}]");
    assert_true(json_equal(dest_filter_actions(f), want));
    assert_false(dest_filter_enabled(f)); /* absent = false */
    json_t *ev = js("{\"properties\":{\"a\":1,\"b\":2},\"context\":{\"ip\":1,\"x\":2},"
                    "\"traits\":{\"t\":1},\"userId\":\"u\"}");
    json_t *out = dest_filters_apply(&f, 1, ev, true);
    if (out) { /* the sample may drop it; when kept, fields were applied */
        json_t *w = js("{\"properties\":{\"b\":2},\"context\":{\"ip\":1},\"traits\":{},\"userId\":\"u\"}");
        assert_true(json_equal(out, w));
        json_decref(w);
        json_decref(out);
    }
    json_decref(ev);
    json_decref(want);
    dest_filter_free(f);
    json_decref(obj);
}

/* ---- preview (§10.6) ----------------------------------------------------- */

static json_t *preview(const char *filter_json, const char *input, dest_filter_error *err)
{
    json_t *req = json_pack("{s:o,s:s}", "filter", js(filter_json), "input", input);
    json_t *r = dest_filter_preview(req, err);
    json_decref(req);
    return r;
}

static void test_preview_spec_vector(void **s)
{
    (void)s;
    const char *input = "{ \"userId\": \"6592\", \"properties\": { \"name\": \"Bob Smith\", "
                        "\"age\": \"40\", \"order\": \"129\" } }";
    dest_filter_error err;
    json_t *r = preview("{\"if\": \"all\", \"actions\": [{\"type\": \"blacklist_fields\", "
                        "\"fields\": {\"properties\": {\"fields\": [\"name\", \"age\"]}}}], "
                        "\"enabled\": true}",
                        input, &err);
    if (!r)
        fail_msg("%s", err.message);
    assert_string_equal(json_string_value(json_object_get(r, "input")), input);
    json_t *out = js(json_string_value(json_object_get(r, "output")));
    json_t *want = js("{\"properties\":{ \"order\": \"129\" },\"userId\":\"6592\"}");
    assert_true(json_equal(out, want));
    assert_string_equal(json_string_value(json_object_get(r, "output")),
                        "{\"properties\":{\"order\":\"129\"},\"userId\":\"6592\"}");
    assert_string_equal(json_string_value(json_object_get(r, "diff")),
                        " {\n \t\"properties\": {\n-\t\t\"age\": \"40\",\n-\t\t\"name\": \"Bob Smith\",\n"
                        " \t\t\"order\": \"129\"\n \t},\n \t\"userId\": \"6592\"\n }");
    assert_int_equal(json_object_size(r), 3);
    json_decref(out);
    json_decref(want);
    json_decref(r);
}

static void test_preview_drop_nomatch_disabled(void **s)
{
    (void)s;
    dest_filter_error err;
    /* dropped: output "null", all input lines '-', then "+null" */
    json_t *r = preview("{\"if\":\"type = 'track'\",\"actions\":[{\"type\":\"drop_event\"}],"
                        "\"enabled\":false}",
                        "{\"type\":\"track\",\"a\":[1,{}]}", &err);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "output")), "null");
    assert_string_equal(json_string_value(json_object_get(r, "diff")),
                        "-{\n-\t\"a\": [\n-\t\t1,\n-\t\t{}\n-\t],\n-\t\"type\": \"track\"\n-}\n+null");
    json_decref(r);
    /* not matching: output is the input re-serialised (sorted, compact) */
    r = preview("{\"if\":\"type = 'page'\",\"actions\":[{\"type\":\"drop_event\"}]}",
                "{\"type\":\"track\",\"b\":1.50,\"a\":1E+2,\"c\":0.1}", &err);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "output")),
                        "{\"a\":100,\"b\":1.5,\"c\":0.1,\"type\":\"track\"}");
    assert_string_equal(json_string_value(json_object_get(r, "diff")),
                        " {\n \t\"a\": 100,\n \t\"b\": 1.5,\n \t\"c\": 0.1,\n \t\"type\": \"track\"\n }");
    json_decref(r);
    /* an object emptied by a whitelist */
    r = preview("{\"if\":\"all\",\"actions\":[{\"type\":\"whitelist_fields\",\"fields\":"
                "{\"properties\":{\"fields\":[]}}}]}",
                "{\"properties\":{\"a\":1}}", &err);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "diff")),
                        " {\n-\t\"properties\": {\n-\t\t\"a\": 1\n-\t}\n+\t\"properties\": {}\n }");
    json_decref(r);
}

static void test_preview_errors(void **s)
{
    (void)s;
    dest_filter_error err;
    assert_null(preview("{\"if\":\"a = \",\"actions\":[{\"type\":\"drop_event\"}]}", "{}", &err));
    assert_string_equal(err.message,
                        "filter.if: unexpected end of input at column 5, expected a value (field, "
                        "string, number, true, false, null, list, function call, '(' or '!')");
    assert_null(preview("{\"if\":\"all\",\"actions\":[{\"type\":\"x\"}]}", "{}", &err));
    assert_non_null(strstr(err.message, "filter.actions[0].type: unknown action type 'x'"));
    assert_null(preview("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]}", "{\"a\":", &err));
    assert_string_equal(err.message,
                        "input: invalid JSON: unexpected token near end of file at line 1, column 5");
    assert_null(preview("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]}", "[1]", &err));
    assert_string_equal(err.message, "input: must be a JSON object (the event)");
    assert_null(preview("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]}",
                        "{\"a\":\"\\ud800\"}", &err));
    assert_non_null(strstr(err.message, "input: invalid JSON:"));
    /* invalid UTF-8 in the input: the message itself must stay valid UTF-8 */
    json_t *bad = json_pack("{s:o,s:o}", "filter",
                            js("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]}"),
                            "input", json_stringn_nocheck("{\"a\":\"\xff\xfe\"}", 10));
    assert_null(dest_filter_preview(bad, &err));
    json_t *msg = json_string(err.message);
    assert_non_null(msg);
    assert_non_null(strstr(err.message, "input: invalid JSON:"));
    json_decref(msg);
    json_decref(bad);
    assert_null(preview("7", "{}", &err));
    assert_string_equal(err.message, "filter: must be an object");

    json_t *req = js("{\"input\":\"{}\"}");
    assert_null(dest_filter_preview(req, &err));
    assert_string_equal(err.message, "filter: is required");
    json_decref(req);
    req = js("{\"filter\":{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]}}");
    assert_null(dest_filter_preview(req, &err));
    assert_string_equal(err.message, "input: is required (the event as a JSON-encoded string)");
    json_decref(req);
    req = js("{\"filter\":{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]},\"input\":{}}");
    assert_null(dest_filter_preview(req, &err));
    assert_string_equal(err.message, "input: must be a string (the event as a JSON-encoded string)");
    json_decref(req);
    assert_null(dest_filter_preview(NULL, &err));

    size_t n = DEST_FILTER_PREVIEW_MAX_INPUT + 100;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_null(preview("{\"if\":\"all\",\"actions\":[{\"type\":\"drop_event\"}]}", big, &err));
    assert_string_equal(err.message,
                        "input: event too large for preview (65636 bytes, the limit is 65536)");
    free(big);
}

static void test_preview_hostile_values(void **s)
{
    (void)s;
    dest_filter_error err;
    /* NUL and control characters, U+2028, big integers, deep nesting */
    json_t *r = preview("{\"if\":\"all\",\"actions\":[{\"type\":\"blacklist_fields\",\"fields\":"
                        "{\"\":{\"fields\":[\"x\"]}}}]}",
                        "{\"s\":\"a\\u0000b\\u0001\\u2028\\\"\\\\/\",\"big\":18446744073709551615,"
                        "\"x\":1,\"d\":[[[[[[[[[[{}]]]]]]]]]]}",
                        &err);
    if (!r)
        fail_msg("%s", err.message);
    assert_string_equal(json_string_value(json_object_get(r, "output")),
                        "{\"big\":18446744073709552000,\"d\":[[[[[[[[[[{}]]]]]]]]]],"
                        "\"s\":\"a\\u0000b\\u0001\\u2028\\\"\\\\/\"}");
    json_decref(r);
}

/* ---- internals: diff, writer, md5 ---------------------------------------- */

static size_t lcs_len(const char **a, size_t n, const char **b, size_t m)
{
    size_t *dp = calloc((n + 1) * (m + 1), sizeof *dp);
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            dp[i * (m + 1) + j] = !strcmp(a[i], b[j]) ? 1 + dp[(i + 1) * (m + 1) + j + 1]
                                  : dp[(i + 1) * (m + 1) + j] > dp[i * (m + 1) + j + 1]
                                      ? dp[(i + 1) * (m + 1) + j]
                                      : dp[i * (m + 1) + j + 1];
    size_t r = dp[0];
    free(dp);
    return r;
}

static void test_diff_is_minimal_and_consistent(void **s)
{
    (void)s;
    static const char *alpha[] = {"a", "b", "c", "d"};
    srand(12345);
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)(rand() % 12) + 1, m = (size_t)(rand() % 12) + 1;
        const char *a[12], *b[12];
        df_buf ta = {0}, tb = {0}, out = {0};
        for (size_t i = 0; i < n; i++) {
            a[i] = alpha[rand() % 4];
            if (i)
                df__putc(&ta, '\n');
            df__put(&ta, a[i], 1);
        }
        for (size_t i = 0; i < m; i++) {
            b[i] = alpha[rand() % 4];
            if (i)
                df__putc(&tb, '\n');
            df__put(&tb, b[i], 1);
        }
        assert_true(df__line_diff(ta.p, ta.len, tb.p, tb.len, &out));
        /* replaying the script must give back both sides, with n+m-2*LCS edits */
        size_t edits = 0, ia = 0, ib = 0;
        for (char *line = out.p; line; ) {
            char *nl = strchr(line, '\n');
            char op = line[0], c = line[1];
            if (op != '+') {
                assert_true(ia < n && a[ia][0] == c);
                ia++;
            }
            if (op != '-') {
                assert_true(ib < m && b[ib][0] == c);
                ib++;
            }
            edits += op != ' ';
            line = nl ? nl + 1 : NULL;
        }
        assert_int_equal(ia, n);
        assert_int_equal(ib, m);
        assert_int_equal(edits, n + m - 2 * lcs_len(a, n, b, m));
        df__buf_free(&ta);
        df__buf_free(&tb);
        df__buf_free(&out);
    }
}

static void test_json_writer_numbers(void **s)
{
    (void)s;
    static const struct { double d; const char *want; } cases[] = {
        {0.1, "0.1"}, {1.5, "1.5"}, {42.0, "42"}, {100.0, "100"}, {-2.25, "-2.25"},
        {1e21, "1e+21"}, {1e20, "100000000000000000000"}, {1e-7, "1e-7"}, {1e-6, "0.000001"},
        {123456.789, "123456.789"}, {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {0.30000000000000004, "0.30000000000000004"}, {-0.0, "-0"}, {3.0e-5, "0.00003"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        df_buf b = {0};
        json_t *r = json_real(cases[i].d);
        df__json_write(&b, r, -1);
        assert_string_equal(b.p, cases[i].want);
        json_decref(r);
        df__buf_free(&b);
    }
    df_buf b = {0};
    json_t *v = js("{\"b\":[1,true,null,\"x\"],\"a\":{},\"\":[]}");
    df__json_write(&b, v, 0);
    assert_string_equal(b.p, "{\n\t\"\": [],\n\t\"a\": {},\n\t\"b\": [\n\t\t1,\n\t\ttrue,\n\t\tnull,\n\t\t\"x\"\n\t]\n}");
    df__buf_free(&b);
    json_decref(v);
}

static void test_md5(void **s)
{
    (void)s;
    static const struct { const char *in, *hex; } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        df_md5 m;
        unsigned char d[16];
        char hex[33];
        df__md5_init(&m);
        for (const char *p = v[i].in; *p; p++) /* byte at a time: exercises buffering */
            df__md5_update(&m, p, 1);
        df__md5_final(&m, d);
        for (int k = 0; k < 16; k++)
            sprintf(hex + 2 * k, "%02x", d[k]);
        assert_string_equal(hex, v[i].hex);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_A1_drop),
        cmocka_unit_test(test_A2_blacklist),
        cmocka_unit_test(test_A3_blacklist_top_level),
        cmocka_unit_test(test_A4_blacklist_in_list),
        cmocka_unit_test(test_A5_whitelist),
        cmocka_unit_test(test_A6_whitelist_empty),
        cmocka_unit_test(test_A7_whitelist_missing),
        cmocka_unit_test(test_A8_sample_zero),
        cmocka_unit_test(test_A9_sample_one),
        cmocka_unit_test(test_A10_whitelist_in_list),
        cmocka_unit_test(test_field_names_are_keys_not_paths),
        cmocka_unit_test(test_filter_level_vectors),
        cmocka_unit_test(test_sample_deterministic_monotone_fraction),
        cmocka_unit_test(test_sample_random),
        cmocka_unit_test(test_order_and_enabled),
        cmocka_unit_test(test_many_filters),
        cmocka_unit_test(test_stored_broken_filter_fails_closed),
        cmocka_unit_test(test_validation_messages),
        cmocka_unit_test(test_aliases_and_canonical_form),
        cmocka_unit_test(test_preview_spec_vector),
        cmocka_unit_test(test_preview_drop_nomatch_disabled),
        cmocka_unit_test(test_preview_errors),
        cmocka_unit_test(test_preview_hostile_values),
        cmocka_unit_test(test_diff_is_minimal_and_consistent),
        cmocka_unit_test(test_json_writer_numbers),
        cmocka_unit_test(test_md5),
    };
    return cmocka_run_group_tests_name("filters", tests, NULL, NULL) ? 1 : 0;
}
