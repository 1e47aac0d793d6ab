/*
 * test_jview.c — unit tests for src/util/jview: every JSON type, key heads and hashes,
 * the key index of big objects (collisions, absent keys), long keys and keys with NUL
 * bytes, the nesting limit, and memory reuse across resets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jview.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static void test_types(void **state)
{
    (void)state;
    json_t *j = parse("{\"n\": null, \"t\": true, \"f\": false, \"i\": -42, \"big\": 9223372036854775807,"
                      " \"r\": 1.5, \"one\": 1.0, \"s\": \"h\\u00e9\", \"a\": [1, \"x\", []], \"o\": {}}");
    jview_doc_t *d = jview_doc_new();
    const jview_t *v = jview_add(d, j);
    assert_non_null(v);
    assert_int_equal(v->type, JV_OBJ);
    assert_int_equal(v->n, 10);
    /* members in document order */
    static const char *const keys[] = {"n", "t", "f", "i", "big", "r", "one", "s", "a", "o"};
    for (int i = 0; i < 10; i++)
        assert_string_equal(v->u.m[i].key, keys[i]);
    assert_int_equal(jview_get(v, "n", 1)->type, JV_NULL);
    assert_int_equal(jview_get(v, "t", 1)->type, JV_TRUE);
    assert_int_equal(jview_get(v, "f", 1)->type, JV_FALSE);
    assert_int_equal(jview_get(v, "i", 1)->u.i, -42);
    assert_true(jview_get(v, "big", 3)->u.i == 9223372036854775807LL);
    assert_true(jview_get(v, "r", 1)->type == JV_REAL && !jview_get(v, "r", 1)->integral);
    assert_true(jview_get(v, "one", 3)->type == JV_REAL && jview_get(v, "one", 3)->integral);
    const jview_t *s = jview_get(v, "s", 1);
    assert_int_equal(s->type, JV_STR);
    assert_int_equal(s->n, 3); /* bytes, not code points */
    assert_memory_equal(s->u.s, "h\xc3\xa9", 3);
    const jview_t *a = jview_get(v, "a", 1);
    assert_int_equal(a->type, JV_ARR);
    assert_int_equal(a->n, 3);
    assert_int_equal(a->u.a[0].u.i, 1);
    assert_int_equal(a->u.a[1].type, JV_STR);
    assert_int_equal(a->u.a[2].type, JV_ARR);
    assert_int_equal(a->u.a[2].n, 0);
    assert_int_equal(jview_get(v, "o", 1)->n, 0);
    assert_null(jview_get(v, "x", 1));
    assert_null(jview_get(v, "", 0));
    assert_null(jview_get(a, "n", 1)); /* not an object */
    jview_doc_free(d);
    json_decref(j);
}

/* Keys of one length whose first 8 bytes agree differ only past the head. */
static void test_long_and_odd_keys(void **state)
{
    (void)state;
    json_t *j = json_object();
    json_object_set_new(j, "abcdefgh_one", json_integer(1));
    json_object_set_new(j, "abcdefgh_two", json_integer(2));
    json_object_set_new(j, "abcdefgh", json_integer(3));
    json_object_set_new(j, "abcdefg", json_integer(4));
    json_object_setn_new(j, "a\0b", 3, json_integer(5));
    json_object_setn_new(j, "a\0c", 3, json_integer(6));
    json_object_set_new(j, "", json_integer(7));
    char big[300];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_object_set_new(j, big, json_integer(8));
    big[150] = 'K';
    json_object_set_new(j, big, json_integer(9));
    jview_doc_t *d = jview_doc_new();
    const jview_t *v = jview_add(d, j);
    assert_non_null(v);
    assert_int_equal(jview_get(v, "abcdefgh_one", 12)->u.i, 1);
    assert_int_equal(jview_get(v, "abcdefgh_two", 12)->u.i, 2);
    assert_null(jview_get(v, "abcdefgh_thr", 12));
    assert_int_equal(jview_get(v, "abcdefgh", 8)->u.i, 3);
    assert_int_equal(jview_get(v, "abcdefg", 7)->u.i, 4);
    assert_null(jview_get(v, "abcdef", 6));
    assert_int_equal(jview_get(v, "a\0b", 3)->u.i, 5);
    assert_int_equal(jview_get(v, "a\0c", 3)->u.i, 6);
    assert_null(jview_get(v, "a", 1)); /* a prefix up to the NUL is another key */
    assert_int_equal(jview_get(v, "", 0)->u.i, 7);
    assert_int_equal(jview_get(v, big, strlen(big))->u.i, 9);
    big[150] = 'k';
    assert_int_equal(jview_get(v, big, strlen(big))->u.i, 8);
    big[298] = 'x';
    assert_null(jview_get(v, big, strlen(big)));
    jview_doc_free(d);
    json_decref(j);
}

/* Objects from JVIEW_INDEX_MIN members up are found through their index: every key,
 * and no absent one, at every size around the thresholds and well beyond. */
static void test_index(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 8, 9, 15, 16, 17, 100, 1000, 5000};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        size_t n = sizes[t];
        json_t *j = json_object();
        char k[32];
        for (size_t i = 0; i < n; i++) {
            /* same length, first and last bytes: only the middle tells them apart */
            snprintf(k, sizeof k, "k%06zuk", i);
            json_object_set_new(j, k, json_integer((json_int_t)i));
        }
        jview_doc_t *d = jview_doc_new();
        const jview_t *v = jview_add(d, j);
        assert_non_null(v);
        assert_int_equal(v->n, n);
        for (size_t i = 0; i < n; i++) {
            snprintf(k, sizeof k, "k%06zuk", i);
            const jview_t *x = jview_get(v, k, strlen(k));
            assert_non_null(x);
            assert_int_equal(x->u.i, (long long)i);
            assert_string_equal(v->u.m[i].key, k); /* document order kept */
        }
        for (size_t i = n; i < n + 50; i++) {
            snprintf(k, sizeof k, "k%06zuk", i);
            assert_null(jview_get(v, k, strlen(k)));
        }
        jview_doc_free(d);
        json_decref(j);
    }
}

static void test_depth_limit(void **state)
{
    (void)state;
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < JVIEW_MAX_DEPTH + 5; i++) {
        json_t *next = i % 2 ? json_array() : json_object();
        if (json_is_array(cur))
            json_array_append_new(cur, next);
        else
            json_object_set_new(cur, "x", next);
        cur = next;
    }
    jview_doc_t *d = jview_doc_new();
    assert_null(jview_add(d, root));
    /* the document stays usable */
    json_t *ok = parse("[1, 2]");
    const jview_t *v = jview_add(d, ok);
    assert_non_null(v);
    assert_int_equal(v->n, 2);
    jview_doc_free(d);
    json_decref(ok);
    json_decref(root);
    assert_null(jview_add(d = jview_doc_new(), NULL));
    jview_doc_free(d);
}

/* Views added earlier stay valid while more are added; a reset reuses the memory. */
static void test_reuse(void **state)
{
    (void)state;
    json_t *small = parse("{\"a\": [1, 2, 3], \"b\": \"text\"}");
    json_t *big = json_array();
    for (int i = 0; i < 5000; i++)
        json_array_append_new(big, json_pack("{s:i, s:s}", "id", i, "name", "item"));
    jview_doc_t *d = jview_doc_new();
    const jview_t *first = jview_add(d, small);
    const jview_t *second = jview_add(d, big); /* needs blocks beyond the first */
    assert_non_null(first);
    assert_non_null(second);
    assert_int_equal(jview_get(first, "a", 1)->u.a[2].u.i, 3);
    assert_int_equal(jview_get(&second->u.a[4999], "id", 2)->u.i, 4999);
    for (int round = 0; round < 3; round++) {
        jview_doc_reset(d);
        const jview_t *again = jview_add(d, big);
        assert_non_null(again);
        assert_int_equal(jview_get(&again->u.a[1234], "id", 2)->u.i, 1234);
        assert_int_equal(jview_get(jview_add(d, small), "b", 1)->n, 4);
    }
    jview_doc_free(d);
    jview_doc_free(NULL);
    json_decref(small);
    json_decref(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_long_and_odd_keys),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
