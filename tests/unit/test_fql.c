/* Unit tests for the FQL engine (src/fql). Every vector of spec/fql.md §7.1–§7.4
 * is its own test case (named after the vector), followed by lexer, parser
 * error, evaluator and robustness tests. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fql/fql.h"

static const char *E1 =
    "{\"event\": \"Button Clicked\", \"type\": \"track\","
    " \"context\": {\"library\": {\"name\": \"analytics.js\", \"version\": \"1.0\"}},"
    " \"properties\": {\"features\": [\"discounts\", \"dark-mode\"]}}";
static const char *E2 = "{\"userId\": \"abc\", \"x\": 1, \"flag\": true, \"s\": \"true\","
                        " \"nullfield\": null, \"arr\": [\"a\", \"b\"]}";
static const char *E3 = "{}";

/* Evaluates FQL text against event JSON; fails the test on a compile error. */
static int eval_on(const char *fql, const char *event_json)
{
    fql_error err;
    fql_program *p = fql_compile(fql, strlen(fql), &err);
    if (!p)
        fail_msg("compile error for <%s>: %s", fql, err.message);
    json_error_t je;
    json_t *ev = json_loads(event_json, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (!ev)
        fail_msg("bad test event: %s", je.text);
    int r = fql_eval(p, ev);
    json_decref(ev);
    fql_free(p);
    return r;
}

/* Compiles expecting failure; returns the message (static buffer). */
static const char *compile_error(const char *fql, size_t len)
{
    static fql_error err;
    fql_program *p = fql_compile(fql, len, &err);
    if (p) {
        fql_free(p);
        fail_msg("expected a compile error for <%.*s>", (int)len, fql);
    }
    return err.message;
}

/* ---- table-driven spec vectors ------------------------------------------ */

typedef struct vec {
    const char *id;
    const char *fql;
    const char *event;
    int expect; /* 1/0 = result; -1 = must not compile */
} vec;

#define V(id, fql, ev, r) {id, fql, ev, r}
static const char *ANY = "{\"type\":\"track\"}";

static const vec vectors[] = {
    /* §7.1 documented examples on E1 */
    V("D1", "event = 'Button Clicked'", NULL, 1),
    V("D2", "event = 'Screen Tapped'", NULL, 0),
    V("D3", "context.path.path = '/login'", NULL, 0),
    V("D4", "type = 'identify' or type = 'track'", NULL, 1),
    V("D5", "event = 'Button Clicked' and type = 'track'", NULL, 1),
    V("D6", "match( context.library.version, '1.*' )", NULL, 1),
    V("D7", "match( context.library.version, '2.*' )", NULL, 0),
    V("D8", "type = 'track' and ( event = 'Click' or match( event, 'Button *' ) )", NULL, 1),
    V("D9", "!contains( context.library.name, 'js' )", NULL, 0),
    V("D10", "'dark-mode' in properties.features", NULL, 1),
    V("D11", "'blink' in properties.features", NULL, 0),
    V("D12", "!( type in ['track', 'identify'] )", NULL, 0),
    /* §7.1 glob table */
    V("G1", "match('abcd', 'a*d')", "{}", 1),
    V("G2", "match('', '*')", "{}", 1),
    V("G3", "match('abc', 'ab')", "{}", 0),
    V("G4", "match('abcd', 'a??d')", "{}", 1),
    V("G5", "match('abcd', '*d')", "{}", 1),
    V("G6", "match('ab*d', 'ab\\*d')", "{}", 1),
    V("G7", "match('abCd', 'ab[cC]d')", "{}", 1),
    V("G8", "match('abcd', 'ab[a-z]d')", "{}", 1),
    V("G9", "match('abcd', 'ab[A-Z]d')", "{}", 0),
    /* §7.1 function defaults */
    V("F1 contains(null)", "contains(null, 'x')", "{}", 0),
    V("F2 length(null)", "length(null) = 0", "{}", 1),
    V("F3 lowercase(null)", "lowercase(null) = null", "{}", 1),
    V("F4 typeof(null)", "typeof(null) = 'null'", "{}", 1),
    V("F5 match(null)", "match(null, '*')", "{}", 0),
    /* §7.2 extra glob vectors: match(s, p) */
    V("X1", "match('abc', 'abc')", "{}", 1),
    V("X2", "match('abc', '*')", "{}", 1),
    V("X3", "match('abc', '*c')", "{}", 1),
    V("X4", "match('abc', '*b')", "{}", 0),
    V("X5", "match('a', 'a*')", "{}", 1),
    V("X6", "match('ab/c', 'a*')", "{}", 1),
    V("X7", "match('a/c/b', 'a*/b')", "{}", 1),
    V("X8", "match('axbxcxdxexxx/f', 'a*b*c*d*e*/f')", "{}", 1),
    V("X9", "match('axbxcxdxexxx/fff', 'a*b*c*d*e*/f')", "{}", 0),
    V("X10", "match('abxbbxdbxebxczzx', 'a*b?c*x')", "{}", 1),
    V("X11", "match('abxbbxdbxebxczzy', 'a*b?c*x')", "{}", 0),
    V("X12", "match('abcabcabc', '*a*b*c*')", "{}", 1),
    V("X13", "match('abc', 'ab[c]')", "{}", 1),
    V("X14", "match('abc', 'ab[b-d]')", "{}", 1),
    V("X15", "match('abc', 'ab[e-g]')", "{}", 0),
    V("X16", "match('abc', 'ab[^c]')", "{}", 0),
    V("X17", "match('abc', 'ab[^b-d]')", "{}", 0),
    V("X18", "match('xxx', '*x')", "{}", 1),
    V("X19", "match('x', '[!x]')", "{}", 1),
    V("X20", "match('abc', 'ab[^e-g]')", "{}", 1),
    V("X21", "match('a*b', 'a\\*b')", "{}", 1),
    V("X22", "match('a b', 'a\\ b')", "{}", 1),
    V("X23", "match('ab', 'a\\*b')", "{}", 0),
    V("X24", "match('a☺b', 'a?b')", "{}", 1),
    V("X25", "match('a☺b', 'a[^a]b')", "{}", 1),
    V("X26", "match('a☺b', 'a???b')", "{}", 0),
    V("X27", "match('α', '[a-ζ]*')", "{}", 1),
    V("X28", "match('A', '*[a-ζ]')", "{}", 0),
    V("X29", "match('a/b', 'a?b')", "{}", 1),
    V("X30", "match(']', '[\\]a]')", "{}", 1),
    V("X31", "match('-', '[x\\-]')", "{}", 1),
    V("X32", "match('z', '[x\\-]')", "{}", 0),
    V("X33", "match(']', '[]a]')", "{}", 0),
    V("X34", "match('-', '[-]')", "{}", 0),
    V("X35", "match('x', '[x-]')", "{}", 0),
    V("X36", "match('a', '[a-b-c]')", "{}", 0),
    V("X37", "match('a', '[')", "{}", 0),
    V("X38", "match('a', '[^')", "{}", 0),
    V("X39", "match('a', 'a[')", "{}", 0),
    V("X40", "match('a', '\\')", "{}", 0),
    /* §7.3 null / missing-field and typing vectors (E2 / E3) */
    V("N1", "length( userId ) > 0", "E2", 1),
    V("N2", "length( userId ) > 0", "E3", 0),
    V("N3", "length( userId ) < 1", "E3", 1),
    V("N4", "length( nullfield ) = 0", "E2", 1),
    V("N5", "contains( missing, 'x' )", "E3", 0),
    V("N6", "lowercase( missing ) = null", "E3", 1),
    V("N7", "typeof( nullfield ) = 'null'", "E2", 1),
    V("N8", "typeof( x ) = 'number'", "E2", 1),
    V("N9", "match( missing, '*' )", "E3", 0),
    V("N10", "nullfield = null", "E2", 1),
    V("N11", "missing = null", "E3", 1),
    V("N12", "missing != null", "E3", 0),
    V("N13", "x = '1'", "E2", 0),
    V("N14", "x = 1", "E2", 1),
    V("N15", "x > '0'", "E2", 0),
    V("N16", "arr = ['a', 'b']", "E2", 1),
    V("N17", "arr = ['b', 'a']", "E2", 0),
    V("N18", "flag", "E2", 1),
    V("N19", "s", "E2", 0),
    V("N20", "true and missing", "E3", 0),
    V("N21", "!missing", "E3", 1),
    V("N22", "all", "ANY", 1),
    V("N23", "'x' in missing", "E3", 0),
    V("N24", "length( 'ア' ) = 3", "E3", 1),
    /* §7.4 lexical vectors */
    V("L1 escaped space", "properties.product\\ 1.price = '19.99'",
      "{\"properties\":{\"product 1\":{\"price\":\"19.99\"}}}", 1),
    V("L2 escaped dot", "properties.first\\.name = 1",
      "{\"properties\":{\"first.name\":1,\"first\":{\"name\":2}}}", 1),
    V("L3 escaped digit", "properties.\\1st = 1", "{\"properties\":{\"1st\":1}}", 1),
    V("L4 leading digit", "properties.1st = 1", NULL, -1),
    V("L5 dash and underscore", "a.b-c.d_e = 1", "{\"a\":{\"b-c\":{\"d_e\":1}}}", 1),
    V("L6 other quote inside", "a = \"it's\"", "{\"a\":\"it's\"}", 1),
    V("L7 no escapes in strings", "a = 'it\\'s'", NULL, -1),
    V("L8 negative number", "a = -1.5", "{\"a\":-1.5}", 1),
    V("L9 plus number", "a = +1", "{\"a\":1}", 1),
    V("L10 .5", "a = .5", NULL, -1),
    V("L11 1.", "a = 1.", NULL, -1),
    V("L12 1.2.3", "a = 1.2.3", NULL, -1),
    V("L13 exponent", "a = 1.5e3", NULL, -1),
    V("L14 doc invalid example", "userId = oops\"", NULL, -1),
    V("L15 ==", "event == \"Checkout\"", NULL, -1),
    V("L16 AND", "a = 1 AND b = 2", NULL, -1),
    V("L17 TRUE is a path", "a = TRUE", "{\"a\":5,\"TRUE\":5}", 1),
    V("L18 spaced !=", "a != 1", "{\"a\":2}", 1),
    V("L19 spaced >=", "a >= 1", "{\"a\":1}", 1),
    V("L20 unspaced != (accepted)", "a!=1", "{\"a\":2}", 1),
    V("L21 unspaced > (accepted)", "a>1", "{\"a\":2}", 1),
    V("L22 unspaced <= (accepted)", "a<=1", "{\"a\":1}", 1),
    /* §3: escaped numeric segments index lists */
    V("P1 list index", "properties.products.\\0.id = 7",
      "{\"properties\":{\"products\":[{\"id\":7},{\"id\":8}]}}", 1),
    V("P2 list index 1", "properties.products.\\1.id = 8",
      "{\"properties\":{\"products\":[{\"id\":7},{\"id\":8}]}}", 1),
    V("P3 index out of range", "properties.products.\\5.id = null",
      "{\"properties\":{\"products\":[{\"id\":7}]}}", 1),
    /* §7.5 filter-level fixtures (conditions only) */
    V("FL1 identify", "type != 'track'", "{\"type\":\"identify\"}", 1),
    V("FL2 track", "type != 'track'", "{\"type\":\"track\"}", 0),
    V("FL3", "!(event = \"Session Started\" or event = \"Order Completed\")",
      "{\"event\":\"Order Completed\"}", 0),
    V("FL4", "!(event = \"Session Started\" or event = \"Order Completed\")",
      "{\"event\":\"Order Viewed\"}", 1),
};

static void run_vector(void **state)
{
    const vec *v = *state;
    if (v->expect < 0) {
        const char *msg = compile_error(v->fql, strlen(v->fql));
        assert_non_null(strstr(msg, "column"));
        return;
    }
    const char *ev = v->event ? v->event : E1;
    if (v->event && !strcmp(v->event, "E2"))
        ev = E2;
    else if (v->event && !strcmp(v->event, "E3"))
        ev = E3;
    else if (v->event && !strcmp(v->event, "ANY"))
        ev = ANY;
    assert_int_equal(eval_on(v->fql, ev), v->expect);
}

/* ---- lexer & parser errors with positions -------------------------------- */

static void assert_error(const char *fql, const char *want)
{
    const char *msg = compile_error(fql, strlen(fql));
    if (strcmp(msg, want))
        fail_msg("<%s>\n  got:  %s\n  want: %s", fql, msg, want);
}

static void test_error_messages(void **state)
{
    (void)state;
    assert_error("a = 1 )", "unexpected ')' at column 7, expected 'and', 'or' or end of input");
    assert_error("type = 'track' and (event = 'x'))",
                 "unexpected ')' at column 33, expected an operator, 'and', 'or' or end of input");
    assert_error("(a = 1", "unexpected end of input at column 7, expected 'and', 'or' or ')'");
    assert_error("a = ", "unexpected end of input at column 5, expected a value (field, string, "
                         "number, true, false, null, list, function call, '(' or '!')");
    assert_error("a = )", "unexpected ')' at column 5, expected a value (field, string, number, "
                          "true, false, null, list, function call, '(' or '!')");
    assert_error("a b", "unexpected field 'b' at column 3, expected an operator, 'and', 'or' or "
                        "end of input");
    assert_error("a = 'x", "unterminated string at column 5, expected a closing \"'\"");
    assert_error("a = \"x", "unterminated string at column 5, expected a closing '\"'");
    assert_error("event == 'x'", "unexpected '=' at column 8, use a single '=' to compare");
    assert_error("a = 1 AND b = 2",
                 "unexpected field 'AND' at column 7, keywords 'and', 'or' and 'in' are lowercase");
    assert_error("a < b < c", "unexpected '<' at column 7, expected 'and', 'or' or end of input");
    assert_error("foo(a)", "unknown function 'foo' at column 1, expected contains, length, "
                           "lowercase, uppercase, snakecase, kebabcase, titlecase, typeof or match");
    assert_error("contains(a)",
                 "wrong number of arguments to contains() at column 1, expected 2, got 1");
    assert_error("length()", "wrong number of arguments to length() at column 1, expected 1, got 0");
    assert_error("contains(a b)", "unexpected field 'b' at column 12, expected an operator, 'and', "
                                  "'or', ',' or ')'");
    assert_error("a in [b]", "unexpected field 'b' at column 7, expected a literal (string, number, "
                             "true, false or null) in a list");
    assert_error("a in ['x' 'y']", "unexpected string 'y' at column 11, expected ',' or ']'");
    assert_error("a in ['x',]", "unexpected ']' at column 11, expected a literal (string, number, "
                                "true, false or null) in a list");
    assert_error("a.", "unexpected end of input at column 3, expected a field name after '.'");
    assert_error("a = 1.2.3", "invalid number '1.2.3' at column 5, expected digits with at most "
                              "one '.' followed by digits (no exponents)");
    assert_error("a = .5", "invalid number at column 5, expected a digit before '.'");
    assert_error("a = #", "unexpected character '#' at column 5");
    assert_error("a\\", "'\\' at end of input at column 2, expected a character to escape");
    assert_error("", "empty condition at column 1, expected an expression or 'all'");
    assert_error("   \t ", "empty condition at column 1, expected an expression or 'all'");
    /* columns count characters, not bytes */
    assert_error("'ア' = 1 )", "unexpected ')' at column 9, expected 'and', 'or' or end of input");
    /* multi-line text reports the line */
    assert_error("a = 1 and\nb = )", "unexpected ')' at line 2, column 5, expected a value (field, "
                                     "string, number, true, false, null, list, function call, '(' "
                                     "or '!')");
    assert_error("lowercase(uppercase(lowercase(uppercase(lowercase(a))))) = 'x'",
                 "too many nested case functions at column 1, the limit is 4");
}

static void test_error_position_fields(void **state)
{
    (void)state;
    fql_error err;
    assert_null(fql_compile("a = 1 )", 7, &err));
    assert_int_equal(err.column, 7);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.offset, 6);
    assert_null(fql_compile(")", 1, NULL)); /* a NULL err is allowed */
}

static void test_hostile_input(void **state)
{
    (void)state;
    /* NUL bytes: reported, never treated as the end of the text */
    const char nul[] = "a = 1\0 or b";
    assert_string_equal(compile_error(nul, sizeof nul - 1), "unexpected character U+0000 at column 6");
    /* a NUL inside a string literal is just a character */
    fql_program *p = fql_compile("a = 'x\0y'", 9, NULL);
    assert_non_null(p);
    json_t *ev = json_pack("{s:s%}", "a", "x\0y", (size_t)3);
    assert_int_equal(fql_eval(p, ev), 1);
    json_decref(ev);
    fql_free(p);
    /* invalid UTF-8 */
    assert_string_equal(compile_error("a = \xff", 5), "invalid UTF-8 byte 0xFF at column 5");
    /* deep nesting is bounded */
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "a");
    assert_non_null(strstr(compile_error(deep, strlen(deep)), "nested too deeply"));
    memset(deep, '!', 300);
    strcpy(deep + 300, "a");
    assert_non_null(strstr(compile_error(deep, strlen(deep)), "nested too deeply"));
    /* 64 levels are fine */
    char ok[200];
    memset(ok, '(', 60);
    strcpy(ok + 60, "a = 1");
    memset(ok + 65, ')', 60);
    ok[125] = '\0';
    assert_int_equal(eval_on(ok, "{\"a\":1}"), 1);
    /* huge input */
    size_t n = FQL_MAX_SOURCE + 10;
    char *big = malloc(n);
    memset(big, 'a', n);
    assert_string_equal(compile_error(big, n),
                        "FQL text too long (100010 bytes) at column 1, the limit is 100000 bytes");
    /* a long but legal string literal and a long or-chain */
    big[0] = 'a', big[1] = ' ', big[2] = '=', big[3] = ' ', big[4] = '\'';
    memset(big + 5, 'x', 90000);
    big[90005] = '\'';
    p = fql_compile(big, 90006, NULL);
    assert_non_null(p);
    fql_free(p);
    size_t o = 0;
    for (int i = 0; i < 5000; i++)
        o += (size_t)sprintf(big + o, "%sa = %d", i ? " or " : "", i);
    p = fql_compile(big, o, NULL);
    assert_non_null(p);
    ev = json_pack("{s:i}", "a", 4999);
    assert_int_equal(fql_eval(p, ev), 1);
    json_decref(ev);
    fql_free(p);
    free(big);
    /* long number */
    char num[600] = "a = ";
    memset(num + 4, '9', 500);
    num[504] = '\0';
    assert_string_equal(compile_error(num, strlen(num)),
                        "number too long at column 5, expected at most 400 characters");
}

/* ---- evaluator ----------------------------------------------------------- */

static void test_eval_semantics(void **state)
{
    (void)state;
    const char *ev = "{\"o\":{\"a\":1,\"b\":[1,2]},\"p\":{\"b\":[1,2.0],\"a\":1.0},"
                     "\"n\":2,\"r\":2.5,\"s\":\"Hello World\",\"u\":\"ÀÉÎ ΣΑΣ\",\"t\":true,"
                     "\"l\":[1,\"x\",null,true,[1]],\"e\":[],\"z\":\"\"}";
    /* deep equality: key order ignored, 1 = 1.0 */
    assert_int_equal(eval_on("o = p", ev), 1);
    assert_int_equal(eval_on("o != p", ev), 0);
    assert_int_equal(eval_on("o = l", ev), 0);
    assert_int_equal(eval_on("n = 2.0", ev), 1);
    assert_int_equal(eval_on("l = [1, 'x', null, true]", ev), 0);
    assert_int_equal(eval_on("e = []", ev), 1);
    assert_int_equal(eval_on("null in l", ev), 1);
    assert_int_equal(eval_on("'x' in l", ev), 1);
    assert_int_equal(eval_on("2 in l", ev), 0);
    assert_int_equal(eval_on("n in [1, 2, 3]", ev), 1);
    assert_int_equal(eval_on("'x' in 'xyz'", ev), 0); /* right side not a list */
    /* numeric comparisons only between numbers */
    assert_int_equal(eval_on("r > n and r >= 2.5 and r <= 2.5 and n < r", ev), 1);
    assert_int_equal(eval_on("s > 1 or s < 1 or t > 0", ev), 0);
    assert_int_equal(eval_on("length(o) > 0 or length(o) < 1 or length(o) = length(o)", ev), 0);
    assert_int_equal(eval_on("length(l) = 5 and length(e) = 0 and length(z) = 0", ev), 1);
    assert_int_equal(eval_on("length(s) = 11", ev), 1);
    /* typeof */
    assert_int_equal(eval_on("typeof(o) = 'object' and typeof(l) = 'list' and typeof(t) = 'bool'"
                             " and typeof(s) = 'string' and typeof(n) = 'number'"
                             " and typeof(missing) = 'null' and typeof([1]) = 'list'",
                             ev),
                     1);
    assert_int_equal(eval_on("typeof(typeof(n)) = 'string'", ev), 1);
    /* string functions (lazy transforms) */
    assert_int_equal(eval_on("lowercase(s) = 'hello world'", ev), 1);
    assert_int_equal(eval_on("uppercase(s) = 'HELLO WORLD'", ev), 1);
    assert_int_equal(eval_on("lowercase(u) = 'àéî σασ'", ev), 1);
    assert_int_equal(eval_on("uppercase(lowercase(u)) = u", ev), 1);
    assert_int_equal(eval_on("length(lowercase(u)) = length(u)", ev), 1);
    assert_int_equal(eval_on("snakecase(s) = 'Hello_World'", ev), 1);
    assert_int_equal(eval_on("kebabcase(lowercase(s)) = 'hello-world'", ev), 1);
    assert_int_equal(eval_on("titlecase('the big  dog') = 'The Big  Dog'", ev), 1);
    assert_int_equal(eval_on("contains(lowercase(s), 'o w')", ev), 1);
    assert_int_equal(eval_on("contains(lowercase(s), 'O W')", ev), 0);
    assert_int_equal(eval_on("contains(s, lowercase('WORLD'))", ev), 0);
    assert_int_equal(eval_on("contains(uppercase(s), uppercase('world'))", ev), 1);
    assert_int_equal(eval_on("match(lowercase(s), 'hello *')", ev), 1);
    assert_int_equal(eval_on("match(s, lowercase('HELLO*'))", ev), 0);
    assert_int_equal(eval_on("lowercase(n) = null and uppercase(l) = null", ev), 1);
    assert_int_equal(eval_on("lowercase(s) = s", ev), 0);
    /* patterns from the event are validated at run time */
    assert_int_equal(eval_on("match('abc', p) or match('[', p)", "{\"p\":\"[\"}"), 0);
    assert_int_equal(eval_on("match('abc', p) and !match('abd', p)", "{\"p\":\"a*[c]\"}"), 1);
    assert_int_equal(eval_on("match(s, s)", "{\"s\":\"a\\\\\"}"), 0); /* s = a + dangling escape */
    /* contains edge cases */
    assert_int_equal(eval_on("contains(s, '')", ev), 1);
    assert_int_equal(eval_on("contains(z, '')", ev), 1);
    assert_int_equal(eval_on("contains(s, 'World')", ev), 1);
    assert_int_equal(eval_on("contains(n, '2')", ev), 0);
    /* logic */
    assert_int_equal(eval_on("t and !missing and (n = 2 or missing)", ev), 1);
    assert_int_equal(eval_on("!t or !(n = 2)", ev), 0);
    assert_int_equal(eval_on("(n = 2) = true", ev), 1);
    assert_int_equal(eval_on("(s and t) = false", ev), 1);
    assert_int_equal(eval_on("!!t", ev), 1);
    assert_int_equal(eval_on("! (n = 3)", ev), 1);
    /* statements that are not booleans are false */
    assert_int_equal(eval_on("true", ev), 1);
    assert_int_equal(eval_on("false", ev), 0);
    assert_int_equal(eval_on("null", ev), 0);
    assert_int_equal(eval_on("lowercase(s)", ev), 0);
    assert_int_equal(eval_on("'true'", ev), 0);
    assert_int_equal(eval_on("n", ev), 0);
    /* "all" is only special alone */
    assert_int_equal(eval_on("all = 1", "{\"all\":1}"), 1);
    /* walking through scalars and lists without index gives null */
    assert_int_equal(eval_on("s.x = null and l.x = null and n.\\0 = null", ev), 1);
    /* non-object events have no fields */
    assert_int_equal(eval_on("a = null", "[1,2]"), 1);
    assert_int_equal(eval_on("a = null", "\"str\""), 1);
}

static void test_eval_keys_with_nul_and_unicode(void **state)
{
    (void)state;
    json_t *ev = json_object();
    json_object_setn_new(ev, "k\0ey", 4, json_integer(1));
    json_object_set_new(ev, "ключ", json_integer(2));
    static const char src[] = "k\\\0ey = 1 and ключ = 2";
    fql_program *p = fql_compile(src, sizeof src - 1, NULL);
    assert_non_null(p);
    assert_int_equal(fql_eval(p, ev), 1);
    fql_free(p);
    json_decref(ev);
}

/* Shared paths are looked up once per evaluation (fql_path slots); results
 * must be the same as without sharing, including past the 64 slots. */
static void test_shared_paths(void **state)
{
    (void)state;
    const char *f = "context.page.path = '/a' and context.page.url = 'u' and "
                    "context.library.name = 'x' and typeof(context) = 'object'";
    assert_int_equal(eval_on(f, "{\"context\":{\"page\":{\"path\":\"/a\",\"url\":\"u\"},"
                                "\"library\":{\"name\":\"x\"}}}"), 1);
    assert_int_equal(eval_on(f, "{\"context\":{\"page\":{\"path\":\"/a\",\"url\":\"v\"},"
                                "\"library\":{\"name\":\"x\"}}}"), 0);
    assert_int_equal(eval_on("a.b.c = null and a.b.d = null and a.b = null and a = null", "{}"), 1);
    assert_int_equal(eval_on("a.b.c = 1 or a.b.d = 2 or a.e = 3", "{\"a\":{\"b\":5,\"e\":3}}"), 1);
    assert_int_equal(eval_on("l.\\1.x = 2 and l.\\0.x = 1 and l.\\1 = l.\\1",
                             "{\"l\":[{\"x\":1},{\"x\":2}]}"), 1);
    /* 80 distinct paths, each used twice: more than the slots */
    char *src = malloc(8000);
    size_t o = 0;
    for (int i = 0; i < 80; i++)
        o += (size_t)sprintf(src + o, "%sp%d.v = 0 or p%d.v = 1", i ? " or " : "", i, i);
    assert_int_equal(eval_on(src, "{\"p79\":{\"v\":1}}"), 1);
    assert_int_equal(eval_on(src, "{\"p0\":{\"v\":0}}"), 1);
    assert_int_equal(eval_on(src, "{\"p40\":{\"v\":1}}"), 1);
    assert_int_equal(eval_on(src, "{\"p40\":{\"v\":2},\"p80\":{\"v\":1}}"), 0);
    free(src);
    /* the dump shows the fused lookups */
    fql_program *p = fql_compile("event = 'a' or event = 'b'", 26, NULL);
    char *d = fql_program_dump(p);
    assert_non_null(strstr(d, "1 paths"));
    free(d);
    fql_free(p);
}

/* Reference glob for '*', '?' and literals: plain recursion, obviously right. */
static bool ref_glob(const char *s, const char *p)
{
    if (!*p)
        return !*s;
    if (*p == '*')
        return ref_glob(s, p + 1) || (*s && ref_glob(s + 1, p));
    return *s && (*p == '?' || *p == *s) && ref_glob(s + 1, p + 1);
}

static void test_randomized_against_reference(void **state)
{
    (void)state;
    srand(42);
    for (int it = 0; it < 20000; it++) {
        char h[24], n[8], src[96];
        int hl = rand() % 14, nl = rand() % 6;
        for (int i = 0; i < hl; i++)
            h[i] = "ab"[rand() % 2];
        h[hl] = '\0';
        for (int i = 0; i < nl; i++)
            n[i] = "ab*?"[rand() % 4];
        n[nl] = '\0';
        /* match against the reference glob */
        int k = snprintf(src, sizeof src, "match('%s', '%s')", h, n);
        fql_program *p = fql_compile(src, (size_t)k, NULL);
        assert_non_null(p);
        if (fql_eval(p, NULL) != ref_glob(h, n))
            fail_msg("%s", src);
        fql_free(p);
        /* contains against strstr (the pattern used as plain text) */
        k = snprintf(src, sizeof src, "contains('%s', '%s')", h, n);
        p = fql_compile(src, (size_t)k, NULL);
        if (fql_eval(p, NULL) != (strstr(h, n) != NULL))
            fail_msg("%s", src);
        fql_free(p);
        /* and through the lazy-transform path: uppercase both sides */
        k = snprintf(src, sizeof src, "contains(uppercase('%s'), uppercase('%s'))", h, n);
        p = fql_compile(src, (size_t)k, NULL);
        if (fql_eval(p, NULL) != (strstr(h, n) != NULL))
            fail_msg("%s", src);
        fql_free(p);
    }
}

static void test_program_api(void **state)
{
    (void)state;
    assert_int_equal(fql_eval(NULL, NULL), FQL_ERROR);
    fql_program *p = fql_compile("all", 3, NULL);
    assert_true(fql_matches_all(p));
    assert_int_equal(fql_eval(p, NULL), 1);
    char *d = fql_program_dump(p);
    assert_string_equal(d, "ALL\n");
    free(d);
    fql_free(p);
    p = fql_compile(" true ", 6, NULL);
    assert_true(fql_matches_all(p));
    fql_free(p);
    p = fql_compile("event = 'x' and length(userId) > 0", 34, NULL);
    assert_false(fql_matches_all(p));
    d = fql_program_dump(p);
    assert_non_null(strstr(d, "EQ_PC    event = 'x'"));
    assert_non_null(strstr(d, "LENGTH"));
    free(d);
    fql_free(p);
    fql_free(NULL);
    assert_null(fql_program_dump(NULL));
}

/* Evaluating must not touch the heap (DESIGN.md §5). mallinfo2 is only
 * meaningful with glibc's allocator; under ASan it reads zero and the check
 * passes trivially, which is fine: the -O2 build runs it for real. */
static void test_eval_allocates_nothing(void **state)
{
    (void)state;
    const char *src = "lowercase(event) = 'button clicked' and contains(titlecase(event), 'C')"
                      " and match(uppercase(event), 'BUTTON*') and 'dark-mode' in "
                      "properties.features and length(snakecase(event)) > 3 and "
                      "context = context";
    fql_program *p = fql_compile(src, strlen(src), NULL);
    assert_non_null(p);
    json_t *ev = json_loads(E1, 0, NULL);
    struct mallinfo2 before = mallinfo2();
    int r = 0;
    for (int i = 0; i < 1000; i++)
        r += fql_eval(p, ev);
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(r, 1000);
    assert_int_equal(before.uordblks, after.uordblks);
    assert_int_equal(before.hblkhd, after.hblkhd);
    json_decref(ev);
    fql_free(p);
}

static void test_deep_event_equality_bounded(void **state)
{
    (void)state;
    /* Two 3000-level nested lists: equality gives up (false) instead of
     * recursing without bound. */
    json_t *a = json_array(), *b = json_array();
    json_t *ca = a, *cb = b;
    for (int i = 0; i < 3000; i++) {
        json_t *na = json_array(), *nb = json_array();
        json_array_append_new(ca, na);
        json_array_append_new(cb, nb);
        ca = na, cb = nb;
    }
    json_t *ev = json_pack("{s:o,s:o}", "a", a, "b", b);
    fql_program *p = fql_compile("a = b", 5, NULL);
    assert_int_equal(fql_eval(p, ev), 0);
    fql_free(p);
    p = fql_compile("a = a", 5, NULL);
    assert_int_equal(fql_eval(p, ev), 0);
    fql_free(p);
    json_decref(ev);
}

int main(void)
{
    size_t nv = sizeof vectors / sizeof vectors[0];
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_error_position_fields),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_eval_semantics),
        cmocka_unit_test(test_eval_keys_with_nul_and_unicode),
        cmocka_unit_test(test_shared_paths),
        cmocka_unit_test(test_randomized_against_reference),
        cmocka_unit_test(test_program_api),
        cmocka_unit_test(test_eval_allocates_nothing),
        cmocka_unit_test(test_deep_event_equality_bounded),
    };
    size_t nf = sizeof fixed / sizeof fixed[0];
    struct CMUnitTest *tests = calloc(nv + nf, sizeof *tests);
    char (*names)[160] = calloc(nv, sizeof *names);
    for (size_t i = 0; i < nv; i++) {
        snprintf(names[i], sizeof names[i], "%s: %s", vectors[i].id, vectors[i].fql);
        tests[i] = (struct CMUnitTest){.name = names[i], .test_func = run_vector,
                                       .initial_state = (void *)&vectors[i]};
    }
    memcpy(tests + nv, fixed, sizeof fixed);
    int failed = _cmocka_run_group_tests("fql", tests, nv + nf, NULL, NULL);
    free(tests);
    free(names);
    return failed ? 1 : 0;
}
