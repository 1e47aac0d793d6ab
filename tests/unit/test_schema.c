/*
 * test_schema.c — unit tests for src/schema: violation records (types, paths,
 * keywords), compile errors with JSON pointers, ECMA-262 regex semantics, numbers,
 * hostile input, the meta-schema check, allocation-free validation, threads and the
 * command line. Run from the repository root (the meta-schemas are in data/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "schema/schema.h"
#include "util/jview.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
/* from <sanitizer/allocator_interface.h>, which gcc does not install */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
#endif

/* ----- helpers --------------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    return j;
}

static schema_t *compile_opts(const char *text, const schema_options_t *o)
{
    json_t *doc = parse(text);
    schema_error_t err;
    schema_t *s = schema_compile(doc, o, &err);
    json_decref(doc);
    if (!s)
        fail_msg("compile failed at '%s': %s", err.pointer, err.message);
    return s;
}

static schema_t *compile(const char *text) { return compile_opts(text, NULL); }

/* Expects compiling to fail at `pointer` with a message containing `needle`. */
static void compile_fails(const char *text, const schema_options_t *o, const char *pointer,
                          const char *needle)
{
    json_t *doc = parse(text);
    schema_error_t err;
    schema_t *s = schema_compile(doc, o, &err);
    json_decref(doc);
    if (s) {
        schema_free(s);
        fail_msg("compiled, expected an error at %s: %s", pointer, text);
    }
    if (strcmp(err.pointer, pointer) != 0 || !strstr(err.message, needle))
        fail_msg("error at '%s': '%s'; expected '%s' containing '%s'", err.pointer, err.message,
                 pointer, needle);
}

static bool valid(const schema_t *s, const char *inst)
{
    json_t *j = parse(inst);
    schema_result_t r = {0};
    bool quick = schema_validate(s, j, NULL);
    bool full = schema_validate(s, j, &r);
    assert_int_equal(quick, full);
    assert_int_equal(full, r.count == 0);
    schema_result_free(&r);
    json_decref(j);
    return full;
}

static bool ok_or_not(const char *schema, const char *inst)
{
    schema_t *s = compile(schema);
    bool v = valid(s, inst);
    schema_free(s);
    return v;
}

/* Validates and renders the violations as "Type path keyword" lines. */
static char *violations(const schema_t *s, const char *inst)
{
    json_t *j = parse(inst);
    schema_result_t r = {0};
    schema_validate(s, j, &r);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < r.count; i++) {
        const schema_violation_t *v = schema_result_item(&r, i);
        len += (size_t)snprintf(out + len, cap - len, "%s %s %s\n", schema_vtype_name(v->type),
                                v->path, v->keyword);
    }
    schema_result_free(&r);
    json_decref(j);
    return out;
}

static void expect_violations(const schema_t *s, const char *inst, const char *want)
{
    char *got = violations(s, inst);
    if (strcmp(got, want) != 0)
        fail_msg("instance %s\n got:\n%s want:\n%s", inst, got, want);
    free(got);
}

/* ----- violation records ------------------------------------------------------------------------ */

static const char *order_rule =
    "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"type\": \"object\","
    " \"properties\": {\"properties\": {\"type\": \"object\", \"additionalProperties\": false,"
    "   \"properties\": {\"order_id\": {\"type\": \"string\"}, \"total\": {\"type\": \"number\","
    "     \"minimum\": 0}, \"currency\": {\"type\": \"string\", \"pattern\": \"^[A-Z]{3}$\"},"
    "     \"status\": {\"enum\": [\"paid\", \"refunded\"]}, \"items\": {\"type\": \"array\","
    "     \"items\": {\"type\": \"object\", \"required\": [\"sku\"]}, \"maxItems\": 2}},"
    "   \"required\": [\"order_id\", \"total\"]}},"
    " \"required\": [\"properties\"]}";

static void test_violation_types_and_paths(void **state)
{
    (void)state;
    schema_t *s = compile(order_rule);
    expect_violations(s, "{\"properties\": {\"order_id\": \"A1\", \"total\": 3}}", "");
    expect_violations(s, "{\"properties\": {\"order_id\": 7, \"total\": 1, \"coupon\": \"x\"}}",
                      "Datatype-Mismatch /properties/order_id type\n"
                      "Additional-Properties /properties/coupon additionalProperties\n");
    expect_violations(s, "{\"properties\": {}}",
                      "Required-Missing /properties/order_id required\n"
                      "Required-Missing /properties/total required\n");
    expect_violations(s, "{}", "Required-Missing /properties required\n");
    expect_violations(s,
                      "{\"properties\": {\"order_id\": \"A\", \"total\": -1, \"currency\": \"usd\","
                      " \"status\": \"lost\", \"items\": [{}, {\"sku\": 1}, {}]}}",
                      "Range-Mismatch /properties/total minimum\n"
                      "Pattern-Mismatch /properties/currency pattern\n"
                      "Enum-Mismatch /properties/status enum\n"
                      "Range-Mismatch /properties/items maxItems\n"
                      "Required-Missing /properties/items/0/sku required\n"
                      "Required-Missing /properties/items/2/sku required\n");
    expect_violations(s, "[]", "Datatype-Mismatch  type\n");
    schema_free(s);
}

static void test_violation_details(void **state)
{
    (void)state;
    schema_t *s = compile("{\"properties\": {\"a/b~c\": {\"type\": [\"string\", \"null\"]}}}");
    json_t *j = parse("{\"a/b~c\": 5}");
    schema_result_t r = {0};
    assert_false(schema_validate(s, j, &r));
    assert_int_equal(r.count, 1);
    const schema_violation_t *v = schema_result_item(&r, 0);
    assert_string_equal(v->path, "/a~1b~0c");
    assert_string_equal(v->schema_path, "#/properties/a~1b~0c/type");
    assert_string_equal(v->message, "expected null or string, got integer");
    assert_null(schema_result_item(&r, 1));
    json_t *out = schema_result_json(&r);
    char *text = json_dumps(out, JSON_COMPACT);
    assert_string_equal(text, "[{\"type\":\"Datatype-Mismatch\",\"path\":\"/a~1b~0c\",\"keyword\":"
                              "\"type\",\"message\":\"expected null or string, got integer\"}]");
    free(text);
    json_decref(out);
    schema_result_free(&r);
    json_decref(j);
    schema_free(s);

    /* escaping works across the 8-byte chunks the path writer uses */
    s = compile("{\"additionalProperties\": false}");
    expect_violations(s, "{\"abcdefgh/ijklmnop~qrstuvwxyz/\": 1, \"0123456789abcdef\": 2}",
                      "Additional-Properties /abcdefgh~1ijklmnop~0qrstuvwxyz~1 additionalProperties\n"
                      "Additional-Properties /0123456789abcdef additionalProperties\n");
    schema_free(s);
}

static void test_long_messages_stay_utf8(void **state)
{
    (void)state;
    /* a long enum of multi-byte strings: its message is shortened on a character
     * boundary, so the violation still converts to JSON */
    char schema[4096] = "{\"enum\": [";
    for (int i = 0; i < 60; i++)
        strcat(schema, i ? ", \"\u00e9\u00e9\u00e9\"" : "\"\u00e9\u00e9\u00e9\"");
    strcat(schema, "], \"pattern\": \"^");
    for (int i = 0; i < 200; i++)
        strcat(schema, "\u00e9");
    strcat(schema, "$\"}");
    for (int shift = 0; shift < 3; shift++) {
        schema_t *s = compile(schema);
        json_t *j = parse("\"x\"");
        schema_result_t r = {0};
        assert_false(schema_validate(s, j, &r));
        assert_int_equal(r.count, 2);
        json_t *out = schema_result_json(&r);
        assert_non_null(out);
        json_decref(out);
        schema_result_free(&r);
        json_decref(j);
        schema_free(s);
        memmove(schema + 12, schema + 11, strlen(schema + 11) + 1); /* shift by one byte */
        schema[11] = ' ';
    }
}

static void test_all_failing_keywords_collected(void **state)
{
    (void)state;
    schema_t *s = compile("{\"type\": \"string\", \"minimum\": 5, \"multipleOf\": 2,"
                          " \"enum\": [\"a\"], \"allOf\": [{\"maximum\": 1}, {\"const\": 0}]}");
    expect_violations(s, "3",
                      "Datatype-Mismatch  type\nEnum-Mismatch  enum\nRange-Mismatch  maximum\n"
                      "Enum-Mismatch  const\nRange-Mismatch  minimum\nRange-Mismatch  multipleOf\n");
    schema_free(s);
    s = compile("{\"anyOf\": [{\"type\": \"string\"}, {\"minimum\": 10}],"
                " \"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 0}], \"not\": {\"const\": 3},"
                " \"if\": {\"type\": \"integer\"}, \"then\": {\"maximum\": 2}}");
    expect_violations(s, "3",
                      "Schema-Mismatch  anyOf\nSchema-Mismatch  oneOf\nSchema-Mismatch  not\n"
                      "Range-Mismatch  maximum\n");
    schema_free(s);
}

static void test_object_keywords(void **state)
{
    (void)state;
    schema_t *s = compile("{\"dependencies\": {\"a\": [\"b\", \"c\"], \"d\": {\"required\": [\"e\"]}},"
                          " \"propertyNames\": {\"maxLength\": 3}, \"minProperties\": 5,"
                          " \"patternProperties\": {\"^x\": {\"type\": \"integer\"}},"
                          " \"additionalProperties\": {\"type\": \"string\"}}");
    expect_violations(s, "{\"a\": \"1\", \"d\": \"2\", \"xy\": \"no\", \"long\": 1}",
                      "Range-Mismatch  minProperties\nDatatype-Mismatch /xy type\n"
                      "Datatype-Mismatch /long type\nRequired-Missing /b dependencies\n"
                      "Required-Missing /c dependencies\nRequired-Missing /e required\n"
                      "Schema-Mismatch /long propertyNames\n");
    schema_free(s);
}

static void test_array_keywords(void **state)
{
    (void)state;
    schema_t *s = compile("{\"items\": [{\"type\": \"integer\"}], \"additionalItems\": false,"
                          " \"uniqueItems\": true, \"contains\": {\"type\": \"string\"}}");
    expect_violations(s, "[1, 1]",
                      "Schema-Mismatch  additionalItems\nSchema-Mismatch  uniqueItems\n"
                      "Schema-Mismatch  contains\n");
    schema_free(s);
    /* uniqueItems on a long array uses hashing, with JSON Schema equality */
    char buf[20000];
    size_t n = (size_t)sprintf(buf, "[");
    for (int i = 0; i < 2000; i++)
        n += (size_t)sprintf(buf + n, "%s%d", i ? "," : "", i);
    strcpy(buf + n, ",{\"a\":[1.0]},{\"a\":[1]}]");
    s = compile("{\"uniqueItems\": true}");
    expect_violations(s, buf, "Schema-Mismatch  uniqueItems\n");
    buf[n] = ']';
    buf[n + 1] = '\0';
    assert_true(valid(s, buf));
    schema_free(s);
}

static void test_result_limit(void **state)
{
    (void)state;
    schema_t *s = compile("{\"additionalProperties\": false}");
    json_t *j = parse("{\"a\": 1, \"b\": 2, \"c\": 3}");
    schema_result_t r = {.limit = 2};
    assert_false(schema_validate(s, j, &r));
    assert_int_equal(r.count, 2);
    assert_true(r.truncated);
    schema_result_clear(&r);
    assert_int_equal(r.count, 0);
    schema_result_free(&r);
    json_decref(j);
    schema_free(s);
}

/* ----- numbers and strings ------------------------------------------------------------------------- */

static void test_numbers(void **state)
{
    (void)state;
    assert_true(ok_or_not("{\"multipleOf\": 0.01}", "19.99"));
    assert_true(ok_or_not("{\"multipleOf\": 0.1}", "0.3"));
    assert_false(ok_or_not("{\"multipleOf\": 0.01}", "19.995"));
    assert_true(ok_or_not("{\"multipleOf\": 0.5}", "1e308"));
    assert_false(ok_or_not("{\"multipleOf\": 0.123456789}", "1e308"));
    assert_true(ok_or_not("{\"multipleOf\": 3}", "-9223372036854775806"));
    assert_true(ok_or_not("{\"multipleOf\": 1}", "-9223372036854775808"));
    /* exact integer/real comparison beyond 2^53 */
    assert_false(ok_or_not("{\"minimum\": 9007199254740993}", "9007199254740992.0"));
    assert_true(ok_or_not("{\"maximum\": 9007199254740992.0}", "9007199254740992"));
    assert_false(ok_or_not("{\"exclusiveMaximum\": 9223372036854775807}", "9.3e18"));
    assert_true(ok_or_not("{\"minimum\": -1e300}", "-9223372036854775808"));
    assert_true(ok_or_not("{\"const\": 1}", "1.0"));
    assert_false(ok_or_not("{\"enum\": [1]}", "true"));
    /* 1.0 is an integer from draft-06 on, not in draft-04 */
    assert_true(ok_or_not("{\"type\": \"integer\"}", "1.0"));
    assert_false(ok_or_not("{\"$schema\": \"http://json-schema.org/draft-04/schema#\","
                           " \"type\": \"integer\"}",
                           "1.0"));
    /* draft-04 boolean exclusiveMinimum */
    assert_false(ok_or_not("{\"$schema\": \"http://json-schema.org/draft-04/schema#\","
                           " \"minimum\": 0, \"exclusiveMinimum\": true}",
                           "0"));
}

static void test_string_lengths_in_code_points(void **state)
{
    (void)state;
    schema_t *s = compile("{\"minLength\": 2, \"maxLength\": 2}");
    assert_true(valid(s, "\"\\ud83d\\udca9\\ud83d\\udca9\""));
    assert_true(valid(s, "\"\\u00e9\\u00e9\""));
    assert_false(valid(s, "\"\\ud83d\\udca9\""));
    assert_false(valid(s, "\"abc\""));
    assert_true(valid(s, "\"a\\u0000\""));
    schema_free(s);
}

/* ----- regexes ------------------------------------------------------------------------------------- */

static bool re_ok(const char *pattern_json, const char *inst)
{
    char schema[512];
    snprintf(schema, sizeof schema, "{\"pattern\": %s}", pattern_json);
    return ok_or_not(schema, inst);
}

static void test_ecma_regex(void **state)
{
    (void)state;
    assert_false(re_ok("\"^abc$\"", "\"abc\\n\""));
    assert_true(re_ok("\"^abc$\"", "\"abc\""));
    assert_false(re_ok("\"^\\\\d$\"", "\"\\u0660\""));
    assert_true(re_ok("\"^\\\\s$\"", "\"\\u00a0\""));
    assert_true(re_ok("\"^\\\\s$\"", "\"\\ufeff\""));
    assert_false(re_ok("\"^\\\\S$\"", "\"\\u2003\""));
    assert_true(re_ok("\"^[\\\\S]$\"", "\"x\""));
    assert_false(re_ok("\"^[^\\\\s]$\"", "\"\\u2028\""));
    assert_false(re_ok("\"^.$\"", "\"\\u2028\""));
    assert_true(re_ok("\"^.$\"", "\"\\ud83d\\udca9\""));
    assert_false(re_ok("\"^\\\\w$\"", "\"\\u00e9\""));
    assert_true(re_ok("\"^\\\\p{Letter}+$\"", "\"\\u00e9t\\u00e9\""));
    assert_true(re_ok("\"^\\\\u00e9\\\\x41\\\\u{1F4A9}$\"", "\"\\u00e9A\\ud83d\\udca9\""));
    assert_true(re_ok("\"^\\\\ud83d\\\\udca9$\"", "\"\\ud83d\\udca9\""));
    assert_true(re_ok("\"^[^]$\"", "\"\\n\""));
    assert_false(re_ok("\"[]\"", "\"a\""));
    assert_true(re_ok("\"^[[:a]+$\"", "\"[:a\""));
    assert_true(re_ok("\"(?<y>a)\\\\k<y>\"", "\"aa\""));
    assert_true(re_ok("\"^\\\\cJ$\"", "\"\\n\""));
    assert_true(re_ok("\"^a\\\\u0000b$\"", "\"a\\u0000b\""));
    /* not ECMA-262: rejected at compile time with the keyword's pointer */
    const char *bad[] = {"(?i)a", "\\\\a", "(*UTF)a", "(?R)", "a\\\\z", "\\\\Qa\\\\E",
                         "(?#x)", "[a", "(a", "a{2,1}", "\\\\p{Nope}", "\\\\1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char schema[256];
        snprintf(schema, sizeof schema, "{\"properties\": {\"p\": {\"pattern\": \"%s\"}}}", bad[i]);
        compile_fails(schema, NULL, "/properties/p/pattern", "invalid regular expression");
    }
    compile_fails("{\"patternProperties\": {\"(\": true}}", NULL, "/patternProperties/(",
                  "invalid regular expression");
}

static void test_regex_backtracking_is_bounded(void **state)
{
    (void)state;
    schema_t *s = compile("{\"pattern\": \"^(a+)+$\"}");
    char inst[20000];
    inst[0] = '"';
    memset(inst + 1, 'a', 10000);
    strcpy(inst + 10001, "!\"");
    clock_t t0 = clock();
    expect_violations(s, inst, "Pattern-Mismatch  pattern\n");
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
    schema_free(s);
}

/* ----- $ref ---------------------------------------------------------------------------------------- */

static json_t *test_loader(const char *uri, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    if (strcmp(uri, "https://example.com/money.json") == 0)
        return parse("{\"definitions\": {\"amount\": {\"type\": \"number\", \"minimum\": 0}}}");
    return NULL;
}

static void test_refs(void **state)
{
    (void)state;
    int calls = 0;
    schema_options_t o = {.loader = test_loader, .loader_ctx = &calls};
    schema_t *s = compile_opts("{\"properties\": {\"a\": {\"$ref\": \"https://example.com/money.json#/definitions/amount\"},"
                               " \"b\": {\"$ref\": \"https://example.com/money.json#/definitions/amount\"}}}",
                               &o);
    assert_int_equal(calls, 1);
    expect_violations(s, "{\"a\": -1, \"b\": \"x\"}",
                      "Range-Mismatch /a minimum\nDatatype-Mismatch /b type\n");
    json_t *j = parse("{\"a\": -1}");
    schema_result_t r = {0};
    schema_validate(s, j, &r);
    assert_string_equal(schema_result_item(&r, 0)->schema_path,
                        "https://example.com/money.json#/definitions/amount/minimum");
    schema_result_free(&r);
    json_decref(j);
    schema_free(s);

    compile_fails("{\"properties\": {\"x\": {\"$ref\": \"https://example.com/none.json\"}}}", &o,
                  "/properties/x/$ref", "cannot resolve $ref");
    compile_fails("{\"properties\": {\"x\": {\"$ref\": \"#/definitions/missing\"}}}", NULL,
                  "/properties/x/$ref", "cannot resolve");
    /* recursion through properties is fine; pure self-reference is not */
    s = compile("{\"properties\": {\"child\": {\"$ref\": \"#\"}}, \"required\": [\"v\"]}");
    expect_violations(s, "{\"v\": 1, \"child\": {\"v\": 2, \"child\": {}}}",
                      "Required-Missing /child/child/v required\n");
    schema_free(s);
    compile_fails("{\"$ref\": \"#\"}", NULL, "/$ref", "circular");
    compile_fails("{\"definitions\": {\"a\": {\"$ref\": \"#/definitions/b\"},"
                  " \"b\": {\"anyOf\": [{\"type\": \"string\"}, {\"$ref\": \"#/definitions/a\"}]}},"
                  " \"$ref\": \"#/definitions/a\"}",
                  NULL, "/definitions/b/anyOf/1/$ref", "circular");
}

static void test_segment_draft4_ids(void **state)
{
    (void)state;
    /* Segment's draft-04 plans carry JSON-pointer-like ids; refs must still resolve. */
    schema_t *s = compile(
        "{\"$schema\": \"http://json-schema.org/draft-04/schema#\", \"type\": \"object\","
        " \"definitions\": {\"name\": {\"type\": \"string\"}},"
        " \"properties\": {\"properties\": {\"id\": \"/properties/properties\", \"type\": \"object\","
        "   \"properties\": {\"username\": {\"id\": \"/properties/properties/properties/username\","
        "     \"$ref\": \"#/definitions/name\"}}, \"required\": [\"username\"]}}}");
    expect_violations(s, "{\"properties\": {\"username\": 5}}",
                      "Datatype-Mismatch /properties/username type\n");
    assert_int_equal(schema_get_draft(s), SCHEMA_DRAFT4);
    schema_free(s);
}

/* ----- hostile input --------------------------------------------------------------------------------- */

static void test_deep_nesting(void **state)
{
    (void)state;
    /* schema nesting beyond the bound: a clear error, no stack overflow */
    size_t depth = 1000, cap = depth * 20 + 100, n = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(buf + n, "{\"not\":");
    n += (size_t)sprintf(buf + n, "{}");
    for (size_t i = 0; i < depth; i++)
        buf[n++] = '}';
    buf[n] = '\0';
    json_t *doc = parse(buf);
    schema_error_t err;
    assert_null(schema_compile(doc, NULL, &err));
    assert_non_null(strstr(err.message, "nested deeper"));
    json_decref(doc);

    /* a deep instance against a recursive schema: a violation, no crash */
    schema_t *s = compile("{\"items\": {\"$ref\": \"#\"}}");
    n = 0;
    for (size_t i = 0; i < depth; i++)
        buf[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        buf[n++] = ']';
    buf[n] = '\0';
    expect_violations(s, "[[[]]]", "");
    char *got = violations(s, buf);
    assert_non_null(strstr(got, "Schema-Mismatch"));
    free(got);
    schema_free(s);
    free(buf);
}

static void test_malformed_schemas(void **state)
{
    (void)state;
    compile_fails("{\"properties\": {\"a\": {\"type\": \"strng\"}}}", NULL, "/properties/a/type",
                  "unknown type");
    compile_fails("{\"properties\": {\"a\": []}}", NULL, "/properties/a", "object or a boolean");
    compile_fails("{\"minLength\": -1}", NULL, "/minLength", "non-negative integer");
    compile_fails("{\"multipleOf\": 0}", NULL, "/multipleOf", "greater than 0");
    compile_fails("{\"required\": [\"a\", 1]}", NULL, "/required/1", "string");
    compile_fails("{\"allOf\": []}", NULL, "/allOf", "non-empty");
    compile_fails("{\"items\": [{\"maximum\": \"x\"}]}", NULL, "/items/0/maximum", "number");
    compile_fails("5", NULL, "", "object or a boolean");
    /* huge numbers are fine */
    assert_true(ok_or_not("{\"maxLength\": 1e300, \"maximum\": 1.7976931348623157e308}", "\"x\""));
    /* booleans */
    assert_false(ok_or_not("false", "1"));
    assert_true(ok_or_not("true", "1"));
}

/* ----- meta-schema check ------------------------------------------------------------------------------ */

static void meta_fails(schema_meta_t *m, const char *schema, const char *pointer)
{
    json_t *j = parse(schema);
    schema_error_t err;
    bool ok = schema_meta_check(m, j, &err);
    json_decref(j);
    if (ok)
        fail_msg("meta check passed: %s", schema);
    if (strcmp(err.pointer, pointer) != 0)
        fail_msg("meta check failed at '%s' (%s), expected '%s'", err.pointer, err.message,
                 pointer);
}

static void test_meta_check(void **state)
{
    (void)state;
    schema_error_t err;
    schema_meta_t *m = schema_meta_load("data/metaschemas", &err);
    if (!m)
        fail_msg("%s", err.message);
    json_t *good = parse(order_rule);
    assert_true(schema_meta_check(m, good, &err));
    json_decref(good);
    good = parse("{\"$schema\": \"http://json-schema.org/draft-04/schema#\","
                 " \"properties\": {\"a\": {\"id\": \"/properties/a\", \"labels\": {\"x\": 1}}},"
                 " \"$ref\": \"http://json-schema.org/draft-04/schema#\"}");
    assert_true(schema_meta_check(m, good, &err));
    json_decref(good);

    meta_fails(m, "{\"properties\": {\"properties\": {\"properties\": {\"x\": {\"type\": \"strng\"}}}}}",
               "/properties/properties/properties/x/type");
    meta_fails(m, "{\"properties\": {\"a\": {\"title\": 5}}}", "/properties/a/title");
    meta_fails(m, "{\"definitions\": {\"d\": {\"pattern\": \"(\"}}}", "/definitions/d/pattern");
    meta_fails(m, "{\"$schema\": \"http://json-schema.org/draft-04/schema#\", \"required\": []}",
               "/required");
    meta_fails(m, "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"exclusiveMinimum\": true}",
               "/exclusiveMinimum");
    meta_fails(m, "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\"}", "/$schema");
    meta_fails(m, "{\"properties\": {\"a\": {\"$ref\": \"#/nowhere\"}}}", "/properties/a/$ref");
    schema_meta_free(m);
}

/* ----- no allocation while validating ------------------------------------------------------------------- */

#ifdef HAVE_ASAN
static volatile long n_alloc;
static void on_malloc(const volatile void *p, size_t size)
{
    (void)p;
    (void)size;
    n_alloc++;
}
static void on_free(const volatile void *p) { (void)p; }
#endif

static void test_validation_allocates_nothing(void **state)
{
    (void)state;
#ifdef HAVE_ASAN
    schema_t *s = compile(order_rule);
    schema_t *s2 = compile("{\"patternProperties\": {\"^[a-z]+$\": {\"format\": \"email\"}},"
                           " \"propertyNames\": {\"pattern\": \"^[a-z]\"}, \"uniqueItems\": true,"
                           " \"oneOf\": [{\"type\": \"object\"}, {\"type\": \"array\"}]}");
    json_t *ok = parse("{\"properties\": {\"order_id\": \"A1\", \"total\": 3, \"currency\": \"EUR\","
                       " \"items\": [{\"sku\": \"x\"}]}}");
    json_t *ok2 = parse("{\"abc\": \"x@example.com\", \"def\": 1}");
    json_t *bad = parse("{\"properties\": {\"order_id\": 1, \"total\": \"x\", \"currency\": \"e\","
                        " \"items\": [{}, {}, {}], \"extra\": true}}");
    schema_result_t r = {0};
    assert_true(schema_validate(s, ok, &r)); /* first call: per-thread regex match data */
    assert_true(schema_validate(s2, ok2, &r));
    assert_false(schema_validate(s, bad, &r)); /* grows the result's buffers once */
    assert_int_equal(r.count, 8);
    schema_result_clear(&r);
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    n_alloc = 0;
    for (int i = 0; i < 100; i++) {
        schema_validate(s, ok, &r);
        schema_validate(s, ok, NULL);
        schema_validate(s2, ok2, &r);
        /* a reused result records violations without allocating either */
        schema_validate(s, bad, &r);
        schema_result_clear(&r);
    }
    long seen = n_alloc;
    __sanitizer_install_malloc_and_free_hooks(NULL, NULL);
    assert_int_equal(seen, 0);
    schema_result_free(&r);
    json_decref(ok);
    json_decref(ok2);
    json_decref(bad);
    schema_free(s);
    schema_free(s2);
#else
    skip();
#endif
}

/* ----- threads --------------------------------------------------------------------------------------------- */

typedef struct job {
    const schema_t *s;
    int failures;
} job_t;

static void *worker(void *arg)
{
    job_t *job = arg;
    json_t *good = json_loads("{\"code\": \"ABC-123\"}", 0, NULL);
    json_t *bad = json_loads("{\"code\": \"abc\"}", 0, NULL);
    for (int i = 0; i < 2000; i++) {
        schema_result_t r = {0};
        if (!schema_validate(job->s, good, &r) || schema_validate(job->s, bad, &r) || r.count != 1)
            job->failures++;
        schema_result_free(&r);
    }
    json_decref(good);
    json_decref(bad);
    return NULL;
}

/* Violations are recorded as references and formatted when read: they must read the
 * same however many instances share the result, whether read once or twice, whether
 * validated from jansson or from a view built by the caller. */
static void test_result_records(void **state)
{
    (void)state;
    schema_t *s = compile("{\"properties\": {\"a\": {\"type\": \"string\"},"
                          " \"list\": {\"uniqueItems\": true}}, \"required\": [\"b\"]}");
    json_t *one = parse("{\"a\": 1, \"b\": true}");
    json_t *two = parse("{\"a\": \"x\", \"list\": [1, 2, 1]}");
    schema_result_t r = {0};
    assert_false(schema_validate(s, one, &r));
    assert_false(schema_validate(s, two, &r)); /* appended to the same result */
    assert_int_equal(r.count, 3);
    const schema_violation_t *v0 = schema_result_item(&r, 0), *v1 = schema_result_item(&r, 1);
    assert_string_equal(v0->path, "/a");
    assert_string_equal(v0->message, "expected string, got integer");
    assert_string_equal(v0->keyword, "type");
    assert_int_equal(v0->type, SCHEMA_V_DATATYPE_MISMATCH);
    assert_string_equal(v1->path, "/list");
    assert_string_equal(v1->message, "must not contain equal items (items 0 and 2)");
    assert_string_equal(schema_result_item(&r, 2)->path, "/b");
    assert_ptr_equal(schema_result_item(&r, 0), v0); /* formatted once */
    assert_string_equal(v0->path, "/a");
    assert_null(schema_result_item(&r, 3));
    schema_result_clear(&r);
    assert_int_equal(r.count, 0);
    assert_null(schema_result_item(&r, 0));

    /* the same through a view the caller builds, read after more validations */
    jview_doc_t *d = jview_doc_new();
    const jview_t *v = jview_add(d, two);
    json_t *three = parse("{\"a\": \"x\"}");
    assert_false(schema_validate_view(s, v, &r));
    assert_false(schema_validate(s, three, &r));
    assert_int_equal(r.count, 3);
    assert_string_equal(schema_result_item(&r, 0)->path, "/list");
    assert_string_equal(schema_result_item(&r, 1)->path, "/b");
    assert_string_equal(schema_result_item(&r, 1)->message, "required property \"b\" is missing");
    assert_string_equal(schema_result_item(&r, 2)->path, "/b");
    assert_false(schema_validate_view(s, v, NULL));
    assert_true(schema_validate_view(s, jview_get(v, "a", 1), NULL)); /* not an object */

    /* a limit truncates */
    schema_result_free(&r);
    r.limit = 1;
    assert_false(schema_validate(s, two, &r)); /* two violations */
    assert_int_equal(r.count, 1);
    assert_true(r.truncated);
    schema_result_free(&r);
    jview_doc_free(d);
    json_decref(one);
    json_decref(two);
    json_decref(three);
    schema_free(s);
}

/* A recursive schema on a deep instance stops at SCHEMA_MAX_DEPTH with a violation,
 * through objects (where the depth is counted) and through arrays; an instance too
 * deep for a view is refused the same way. */
static void test_nesting_limits(void **state)
{
    (void)state;
    schema_t *objs = compile("{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#\"}}}");
    schema_t *arrs = compile("{\"items\": {\"$ref\": \"#\"}}");
    for (int deep = 0; deep < 2; deep++) {
        int levels = deep ? 1000 : 100;
        json_t *o = json_object(), *a = json_array();
        json_t *co = o, *ca = a;
        for (int i = 0; i < levels; i++) {
            json_t *no = json_object(), *na = json_array();
            json_object_set_new(co, "a", no);
            json_array_append_new(ca, na);
            co = no;
            ca = na;
        }
        schema_result_t r = {0};
        assert_int_equal(schema_validate(objs, o, &r), !deep);
        assert_int_equal(schema_validate(objs, o, NULL), !deep);
        if (deep) {
            assert_int_equal(r.count, 1);
            assert_string_equal(schema_result_item(&r, 0)->keyword, "$ref");
            assert_non_null(strstr(schema_result_item(&r, 0)->message, "nested too deep"));
        }
        schema_result_clear(&r);
        assert_int_equal(schema_validate(arrs, a, &r), !deep);
        assert_int_equal(r.count, deep ? 1 : 0);
        schema_result_free(&r);
        json_decref(o);
        json_decref(a);
    }
    /* deeper than a view can hold (jansson's own parser stops at 2048 as well) */
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < JVIEW_MAX_DEPTH + 1; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    schema_result_t r = {0};
    assert_false(schema_validate(arrs, root, &r));
    assert_int_equal(r.count, 1);
    assert_non_null(strstr(schema_result_item(&r, 0)->message, "cannot be validated"));
    assert_false(schema_validate(arrs, root, NULL));
    schema_result_free(&r);
    json_decref(root);
    schema_free(objs);
    schema_free(arrs);
}

static void test_threads(void **state)
{
    (void)state;
    schema_t *s = compile("{\"properties\": {\"code\": {\"pattern\": \"^[A-Z]{3}-\\\\d+$\"}}}");
    pthread_t t[4];
    job_t jobs[4] = {{s, 0}, {s, 0}, {s, 0}, {s, 0}};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    schema_free(s);
}

/* ----- command line ---------------------------------------------------------------------------------------- */

/* Runs schema_cli_validate(schema file, stdin = input) in a child; returns its exit
 * status and its stdout in `out`. */
static int run_cli(const char *schema_text, const char *input, char *out, size_t outlen)
{
    char spath[] = "/tmp/test_schema_cli_XXXXXX";
    int fd = mkstemp(spath);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, schema_text, strlen(schema_text)), (ssize_t)strlen(schema_text));
    close(fd);
    int in[2], outp[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(outp), 0);
    fflush(stdout); /* or the child would flush the parent's buffered output too */
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[1]);
        close(outp[0]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        char *argv[] = {spath, NULL};
        int rc = schema_cli_validate(1, argv);
        fflush(stdout);
        _exit(rc);
    }
    close(in[0]);
    close(outp[1]);
    assert_int_equal(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < outlen && (k = read(outp[0], out + n, outlen - n - 1)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(outp[0]);
    int status;
    waitpid(pid, &status, 0);
    unlink(spath);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(void **state)
{
    (void)state;
    char out[4096];
    const char *schema = "{\"type\": \"object\", \"required\": [\"a\"]}";
    assert_int_equal(run_cli(schema, "{\"a\": 1}\n\n{\"a\": 2}\n", out, sizeof out), 0);
    assert_string_equal(out, "{\"valid\": true, \"errors\": []}\n{\"valid\": true, \"errors\": []}\n");
    assert_int_equal(run_cli(schema, "{\"a\": 1}\n{}\n", out, sizeof out), 1);
    assert_string_equal(out, "{\"valid\": true, \"errors\": []}\n"
                             "{\"valid\": false, \"errors\": [{\"type\": \"Required-Missing\", "
                             "\"path\": \"/a\", \"keyword\": \"required\", \"message\": "
                             "\"required property \\\"a\\\" is missing\"}]}\n");
    assert_int_equal(run_cli(schema, "not json\n", out, sizeof out), 1);
    assert_non_null(strstr(out, "\"valid\": false"));
    assert_int_equal(run_cli("{\"type\": \"strng\"}", "{}\n", out, sizeof out), 2);
    assert_int_equal(run_cli("{\"minLength\": -1", "{}\n", out, sizeof out), 2);
    /* \u0000 may be in the schema as in the instances; compared by length */
    assert_int_equal(run_cli("{\"const\": \"a\\u0000b\"}", "\"a\\u0000b\"\n\"a\"\n", out, sizeof out), 1);
    assert_true(!strncmp(out, "{\"valid\": true, \"errors\": []}\n{\"valid\": false", 45));
    char *none[] = {NULL};
    assert_int_equal(schema_cli_validate(0, none), 64);
}

int main(void)
{
    setenv("MANIFOLD_METASCHEMA_DIR", "data/metaschemas", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_violation_types_and_paths),
        cmocka_unit_test(test_violation_details),
        cmocka_unit_test(test_all_failing_keywords_collected),
        cmocka_unit_test(test_long_messages_stay_utf8),
        cmocka_unit_test(test_object_keywords),
        cmocka_unit_test(test_array_keywords),
        cmocka_unit_test(test_result_limit),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_string_lengths_in_code_points),
        cmocka_unit_test(test_ecma_regex),
        cmocka_unit_test(test_regex_backtracking_is_bounded),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_segment_draft4_ids),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_malformed_schemas),
        cmocka_unit_test(test_meta_check),
        cmocka_unit_test(test_validation_allocates_nothing),
        cmocka_unit_test(test_result_records),
        cmocka_unit_test(test_nesting_limits),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
