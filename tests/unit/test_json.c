/* Unit tests for src/util/json.c: shortest round-trip reals, exact 64-bit integers, string
 * escaping, compact output in key order, and the strict parser (duplicate keys, depth
 * limit, UTF-8, trailing garbage). */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/json.h"
#include "util/util.h"
#include "util/json_fast.h"

/* json_write_real(d) as a NUL-terminated heap string. */
static char *real_text(double d)
{
    buf b = {0};
    json_write_real(&b, d);
    buf_putc(&b, '\0');
    return buf_steal(&b);
}

static void check_real(double d, const char *want)
{
    char *got = real_text(d);
    if (strcmp(got, want))
        fail_msg("json_write_real(%.17g) = \"%s\", want \"%s\"", d, got, want);
    free(got);
}

static char *write_text(const json_t *v)
{
    char *s = json_to_string(v);
    assert_non_null(s);
    return s;
}

static void check_write(json_t *v, const char *want)
{
    char *got = write_text(v);
    assert_string_equal(got, want);
    free(got);
    json_decref(v);
}

/* ---- reals ---------------------------------------------------------------------------- */

static void test_real_shortest_common_values(void **state)
{
    (void)state;
    check_real(11.37, "11.37");
    check_real(0.1, "0.1");
    check_real(0.3, "0.3");
    check_real(0.1 + 0.2, "0.30000000000000004");
    check_real(1.5, "1.5");
    check_real(-2.25, "-2.25");
    check_real(3.14159, "3.14159");
    check_real(99.99, "99.99");
    check_real(1.0 / 3.0, "0.3333333333333333");
    check_real(2.0 / 3.0, "0.6666666666666666");
    check_real(123456.789, "123456.789");
}

static void test_real_integral_values_stay_reals(void **state)
{
    (void)state;
    /* "2" would read back as an integer */
    check_real(2.0, "2.0");
    check_real(0.0, "0.0");
    check_real(-0.0, "-0.0");
    check_real(-7.0, "-7.0");
    check_real(100.0, "100.0");
    char *s = real_text(1e21);
    assert_true(strpbrk(s, ".eE") != NULL);
    assert_true(strtod(s, NULL) == 1e21);
    free(s);
}

static void test_real_extremes_round_trip(void **state)
{
    (void)state;
    const double vals[] = {DBL_MAX, -DBL_MAX, DBL_MIN, 5e-324, 1e300, 1e-300, 9007199254740993.0,
                           123456789012345678.0, 1e15 + 0.3, 0.1e-5, 4.35, 2.675, 1.005, 1e23};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char *s = real_text(vals[i]);
        assert_true(strtod(s, NULL) == vals[i]);
        assert_true(strpbrk(s, ".eE") != NULL); /* always reads back as a real */
        free(s);
    }
}

static void test_real_non_finite_is_null(void **state)
{
    (void)state;
    check_real(NAN, "null");
    check_real(INFINITY, "null");
    check_real(-INFINITY, "null");
}

/* Number of significant digits in a %g-style text. */
static int sig_digits(const char *s)
{
    int n = 0, started = 0, trailing_zeros = 0;
    for (const char *p = s; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p < '0' || *p > '9')
            continue;
        if (*p != '0')
            started = 1;
        if (!started)
            continue;
        n++;
        trailing_zeros = *p == '0' ? trailing_zeros + 1 : 0;
    }
    return n - trailing_zeros;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_real_random_round_trip_and_shortest(void **state)
{
    (void)state;
    for (int i = 0; i < 200000; i++) {
        double d;
        if (i % 2) {
            uint64_t bits = rng();
            memcpy(&d, &bits, sizeof d);
            if (!isfinite(d))
                continue;
        } else { /* short decimals, like prices and percentages */
            char t[32];
            snprintf(t, sizeof t, "%lld.%02d", (long long)(rng() % 100000), (int)(rng() % 100));
            d = strtod(t, NULL);
        }
        char *s = real_text(d);
        if (strtod(s, NULL) != d)
            fail_msg("%s does not read back as %.17g", s, d);
        /* shortest: no fewer significant digits would read back exactly */
        int digits = sig_digits(s);
        if (digits > 1) {
            char shorter[400];
            snprintf(shorter, sizeof shorter, "%.*g", digits - 1, d);
            if (strtod(shorter, NULL) == d)
                fail_msg("%s is not shortest: %s also reads back", s, shorter);
        }
        free(s);
    }
}

static void test_real_parse_then_write(void **state)
{
    (void)state;
    const char *in[] = {"11.37", "0.1", "1e-7", "-0.5", "123.456", "1.7976931348623157e+308", "2.5e-308"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char err[256];
        json_t *v = json_parse_strict(in[i], strlen(in[i]), err, sizeof err);
        assert_non_null(v);
        assert_true(json_is_real(v));
        char *s = write_text(v);
        assert_true(strtod(s, NULL) == strtod(in[i], NULL));
        if (!strchr(in[i], 'e'))
            assert_string_equal(s, in[i]);
        free(s);
        json_decref(v);
    }
}

/* ---- integers ------------------------------------------------------------------------ */

static void test_integers_are_exact(void **state)
{
    (void)state;
    const char *in[] = {"0", "-1", "9007199254740992", "9007199254740993", "-9007199254740993",
                        "9223372036854775807", "-9223372036854775808", "12345678901234567"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char err[256];
        json_t *v = json_parse_strict(in[i], strlen(in[i]), err, sizeof err);
        assert_non_null(v);
        assert_true(json_is_integer(v));
        char *s = write_text(v);
        assert_string_equal(s, in[i]);
        free(s);
        json_decref(v);
    }
    check_write(json_integer(INT64_MAX), "9223372036854775807");
    check_write(json_integer(INT64_MIN), "-9223372036854775808");
    check_write(json_integer((1LL << 53) + 1), "9007199254740993");
}

static void test_integer_in_document_round_trips(void **state)
{
    (void)state;
    const char *doc = "{\"big\":9007199254740993,\"neg\":-9007199254740995,\"r\":11.37,\"arr\":[1,2.5,-0.0]}";
    char err[256];
    json_t *v = json_parse_strict(doc, strlen(doc), err, sizeof err);
    assert_non_null(v);
    char *s = write_text(v);
    assert_string_equal(s, doc);
    free(s);
    json_decref(v);
}

static void test_integer_overflow_is_refused(void **state)
{
    (void)state;
    char err[256];
    const char *in = "{\"n\": 9223372036854775808}";
    json_t *v = json_parse_strict(in, strlen(in), err, sizeof err);
    assert_null(v);
}

/* ---- strings --------------------------------------------------------------------------- */

static void check_string(const char *s, size_t len, const char *want)
{
    buf b = {0};
    json_write_string(&b, s, len);
    buf_putc(&b, '\0');
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_string_escaping(void **state)
{
    (void)state;
    check_string("plain", 5, "\"plain\"");
    check_string("", 0, "\"\"");
    check_string("a\"b", 3, "\"a\\\"b\"");
    check_string("a\\b", 3, "\"a\\\\b\"");
    check_string("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    check_string("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    check_string("a\0b", 3, "\"a\\u0000b\"");
    check_string("/", 1, "\"/\"");        /* no need to escape */
    check_string("\x7f", 1, "\"\x7f\"");  /* DEL is legal in JSON strings */
    check_string("h\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", 12, "\"h\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80\"");
    check_string("</script>", 9, "\"</script>\"");
}

static void test_string_round_trip_through_parser(void **state)
{
    (void)state;
    char raw[128];
    size_t n = 0;
    for (int c = 1; c < 128; c++)
        raw[n++] = (char)c;
    buf b = {0};
    json_write_string(&b, raw, n);
    char err[256];
    json_t *v = json_parse_strict(b.data, b.len, err, sizeof err);
    assert_non_null(v);
    assert_int_equal(json_string_length(v), n);
    assert_memory_equal(json_string_value(v), raw, n);
    json_decref(v);
    buf_free(&b);
}

/* ---- whole documents ------------------------------------------------------------------ */

static void test_write_compact_in_key_order(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "zeta", json_true());
    json_object_set_new(o, "alpha", json_false());
    json_object_set_new(o, "mid", json_null());
    json_object_set_new(o, "arr", json_pack("[i, s, {}, []]", 1, "x"));
    json_object_set_new(o, "obj", json_pack("{s:f}", "r", 0.5));
    check_write(o, "{\"zeta\":true,\"alpha\":false,\"mid\":null,\"arr\":[1,\"x\",{},[]],\"obj\":{\"r\":0.5}}");
    check_write(json_object(), "{}");
    check_write(json_array(), "[]");
    check_write(json_string("k\"ey"), "\"k\\\"ey\"");
}

static void test_write_appends(void **state)
{
    (void)state;
    buf b = {0};
    buf_puts(&b, "x=");
    json_t *v = json_pack("[i,i]", 1, 2);
    json_write(&b, v);
    json_decref(v);
    buf_putc(&b, '\0');
    assert_string_equal(b.data, "x=[1,2]");
    buf_free(&b);
}

/* ---- strict parsing --------------------------------------------------------------------- */

static json_t *parse(const char *s, char *err, size_t errlen)
{
    err[0] = '\0';
    return json_parse_strict(s, strlen(s), err, errlen);
}

static void check_refused(const char *s)
{
    char err[256];
    json_t *v = json_parse_strict(s, strlen(s), err, sizeof err);
    if (v) {
        json_decref(v);
        fail_msg("accepted: <%s>", s);
    }
    assert_true(strlen(err) > 0);
}

/* utf8_valid (util.h), which the functions runtime checks call texts with, agrees with
 * jansson on what is UTF-8: overlong forms, surrogates, > U+10FFFF and cut sequences fail. */
static void test_utf8_valid_agrees_with_jansson(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
        "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "\x80", "a\xff" "b", "\xef\xbf\xbd",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *s = json_stringn(cases[i], strlen(cases[i]));
        assert_int_equal(utf8_valid(cases[i], strlen(cases[i])), s != NULL);
        json_decref(s);
    }
}

/* --log-format json: a message holding bytes that are not UTF-8 (a cut sequence, an
 * overlong form, a surrogate) still makes a line jansson reads, with U+FFFD in their place
 * and the rest of the message kept. */
static void test_json_log_line_replaces_bad_utf8(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(tmp), 2), 2);
    bool was_json = log_json;
    int was_level = log_level;
    log_json = true;
    log_level = LOG_INFO;
    log_info("a\xc3 b\xc0\xaf c\xed\xa0\x80 d caf\xc3\xa9 \"q\"");
    log_json = was_json;
    log_level = was_level;
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    char line[512] = {0};
    rewind(tmp);
    assert_non_null(fgets(line, sizeof line, tmp));
    fclose(tmp);
    json_error_t e;
    json_t *o = json_loads(line, 0, &e);
    assert_non_null(o);
    const char *msg = json_string_value(json_object_get(o, "msg"));
    assert_non_null(msg);
    assert_string_equal(msg, "a\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd d caf\xc3\xa9 \"q\"");
    json_decref(o);
}

static void test_parse_duplicate_keys_refused(void **state)
{
    (void)state;
    char err[256];
    assert_null(parse("{\"a\":1,\"a\":2}", err, sizeof err));
    assert_non_null(strstr(err, "duplicate"));
    check_refused("{\"a\":1,\"b\":{\"c\":1,\"c\":1}}");
    check_refused("[{\"x\":null,\"x\":null}]");
    check_refused("{\"a\":{},\"a\":{}}");
    json_t *v = parse("{\"a\":1,\"A\":2,\"a \":3}", err, sizeof err); /* distinct keys */
    assert_non_null(v);
    assert_int_equal(json_object_size(v), 3);
    json_decref(v);
}

static char *nested(int depth, const char *open, const char *inner, const char *close)
{
    size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
    char *s = malloc((size_t)depth * (lo + lc) + li + 1), *p = s;
    for (int i = 0; i < depth; i++)
        memcpy(p, open, lo), p += lo;
    memcpy(p, inner, li), p += li;
    for (int i = 0; i < depth; i++)
        memcpy(p, close, lc), p += lc;
    *p = '\0';
    return s;
}

static void test_parse_depth_limit(void **state)
{
    (void)state;
    char err[256];
    const int ok_depths[] = {1, 10, 32, 60};
    for (size_t i = 0; i < sizeof ok_depths / sizeof ok_depths[0]; i++) {
        char *s = nested(ok_depths[i], "[", "1", "]");
        json_t *v = parse(s, err, sizeof err);
        if (!v)
            fail_msg("depth %d refused: %s", ok_depths[i], err);
        json_decref(v);
        free(s);
        s = nested(ok_depths[i], "{\"k\":", "1", "}");
        v = parse(s, err, sizeof err);
        assert_non_null(v);
        json_decref(v);
        free(s);
    }
    const int bad_depths[] = {70, 100, 1000, 100000};
    for (size_t i = 0; i < sizeof bad_depths / sizeof bad_depths[0]; i++) {
        char *s = nested(bad_depths[i], "[", "", "]");
        assert_null(parse(s, err, sizeof err));
        free(s);
        s = nested(bad_depths[i], "{\"k\":", "null", "}");
        assert_null(parse(s, err, sizeof err));
        free(s);
    }
}

static void test_parse_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{'a':1}", "{a:1}", "nul", "tru", "01", ".5", "1.",
        "+1", "NaN", "Infinity", "-Infinity", "{} x", "{}{}", "[] []", "\"unterminated", "\"\\x41\"",
        "\"tab\there\"", "\"\\ud800\"", "\"\\udc00\"", "\"nul\\u0000\"", "// c\n{}", "/* c */ {}",
        "\xef\xbb\xbf{}", "{\"a\" 1}", "[1 2]", "0x10", "1e", "-", "\"\xff\"", "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"", "\"\xe2\x82\"", "\"\xf4\x90\x80\x80\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_refused(bad[i]);
}

static void test_parse_accepts_valid(void **state)
{
    (void)state;
    const char *good[] = {"{}", "[]", " {\"a\" : [1, 2.5, \"x\", true, false, null]} \n", "\"s\"", "5", "null",
                          "{\"\\u00e9\":\"\\ud83d\\ude00\"}", "{\"k\":\"h\xc3\xa9\"}", "-0", "1E+2", "1e-2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char err[256];
        json_t *v = json_parse_strict(good[i], strlen(good[i]), err, sizeof err);
        if (!v)
            fail_msg("refused <%s>: %s", good[i], err);
        json_decref(v);
    }
}

static void test_parse_uses_length_not_nul(void **state)
{
    (void)state;
    char err[256];
    const char doc[] = "{\"a\":1}\0garbage";
    json_t *v = json_parse_strict(doc, 7, err, sizeof err);
    assert_non_null(v);
    json_decref(v);
    assert_null(json_parse_strict(doc, sizeof doc - 1, err, sizeof err));
    assert_null(json_parse_strict("{\"a\":12}", 6, err, sizeof err)); /* truncated */
}

static void test_parse_error_message_has_position(void **state)
{
    (void)state;
    char err[256];
    assert_null(parse("{\n  \"a\": ?\n}", err, sizeof err));
    assert_non_null(strstr(err, "line 2"));
    /* a tiny error buffer is not overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    assert_null(json_parse_strict("[", 1, small, sizeof small));
    assert_true(memchr(small, '\0', sizeof small) != NULL);
}

/* The fast reader (util/json_fast.c) must take what events and requests are made of, and
 * give back exactly jansson's value, kinds included (1 stays an integer, 1.0 a real). */
static void assert_same_as_jansson(const char *in, size_t n)
{
    json_t *fast = json_fast_parse(in, n);
    if (!fast)
        fail_msg("the fast reader gave up on: %s", in);
    json_t *ref = json_loadb(in, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(ref);
    assert_true(json_equal(fast, ref));
    char *a = json_dumps(fast, JSON_ENCODE_ANY), *b = json_dumps(ref, JSON_ENCODE_ANY);
    assert_string_equal(a, b); /* same kinds and same key order */
    free(a), free(b);
    json_decref(fast), json_decref(ref);
}

static void test_fast_reader_matches_jansson(void **state)
{
    (void)state;
    const char *in[] = {
        "{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u1\",\"properties\":{\"total\":39.95,"
        "\"products\":[{\"sku\":\"A-1\",\"price\":19.5,\"quantity\":2}],\"coupon\":null,\"gift\":false},"
        "\"context\":{\"ip\":\"8.8.8.8\",\"library\":{\"name\":\"analytics.js\",\"version\":\"2.11.1\"}},"
        "\"timestamp\":\"2026-12-05T10:00:00.000Z\",\"messageId\":\"m-1\"}",
        "\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "[0,-0,1,-1,9223372036854775807,-9223372036854775808,1.0,1.5e3,-2E-2,0.1,1e308,2.5E+10]",
        "{\"\":1,\"k\\u00e9y\":\"v\",\"a\":{}, \"b\":[] ,\"c\":[[],{}]}",
        " \t\r\n{ \"a\" : [ 1 , 2 ] } \n",
        "true", "false", "null", "42", "\"\"",
        "{\"long key with an escape \\n that needs the heap, longer than the 128-byte key buffer of the reader"
        " so that it takes the other branch ...............................\":\"and a value\\twith escapes\"}",
    };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        assert_same_as_jansson(in[i], strlen(in[i]));
    /* 64 levels deep is allowed (root at depth 0, the innermost value at 64). */
    char deep[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(deep, "[");
    strcat(deep, "1");
    for (int i = 0; i < 64; i++)
        strcat(deep, "]");
    assert_same_as_jansson(deep, strlen(deep));
}

/* Errors and rarities are jansson's: the fast reader must give up on them. */
static void test_fast_reader_gives_up(void **state)
{
    (void)state;
    const char *in[] = {
        "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1,\"a\":2}", "01", "-", "+1", ".5", "1.", "1e",
        "1e400", "-1e400", "1e-400", "9223372036854775808", "-9223372036854775809", "\"\\u0000\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\x\"", "\"a\nb\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "\"abc", "truex", "nul", "1 2", "{} x", "\xef\xbb\xbf{}", "[1]\x00",
    };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        size_t n = strlen(in[i]) + (i == sizeof in / sizeof *in - 1); /* the last one has a NUL inside */
        json_t *v = json_fast_parse(in[i], n);
        if (v)
            fail_msg("the fast reader accepted input #%zu: %s", i, in[i]);
    }
    char deep[200] = ""; /* the 1 at depth 65 */
    for (int i = 0; i < 65; i++)
        strcat(deep, "[");
    strcat(deep, "1");
    for (int i = 0; i < 65; i++)
        strcat(deep, "]");
    assert_null(json_fast_parse(deep, strlen(deep)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_shortest_common_values),
        cmocka_unit_test(test_real_integral_values_stay_reals),
        cmocka_unit_test(test_real_extremes_round_trip),
        cmocka_unit_test(test_real_non_finite_is_null),
        cmocka_unit_test(test_real_random_round_trip_and_shortest),
        cmocka_unit_test(test_real_parse_then_write),
        cmocka_unit_test(test_integers_are_exact),
        cmocka_unit_test(test_integer_in_document_round_trips),
        cmocka_unit_test(test_integer_overflow_is_refused),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_string_round_trip_through_parser),
        cmocka_unit_test(test_write_compact_in_key_order),
        cmocka_unit_test(test_write_appends),
        cmocka_unit_test(test_utf8_valid_agrees_with_jansson),
        cmocka_unit_test(test_json_log_line_replaces_bad_utf8),
        cmocka_unit_test(test_parse_duplicate_keys_refused),
        cmocka_unit_test(test_parse_depth_limit),
        cmocka_unit_test(test_parse_rejects_malformed),
        cmocka_unit_test(test_parse_accepts_valid),
        cmocka_unit_test(test_parse_uses_length_not_nul),
        cmocka_unit_test(test_parse_error_message_has_position),
        cmocka_unit_test(test_fast_reader_matches_jansson),
        cmocka_unit_test(test_fast_reader_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
