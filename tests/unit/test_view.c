/* Unit tests for src/api/view.c: a stored view is served only for the epoch and the state
 * of the row it was made from (version, body, parent, timestamps), its JSON comes back
 * byte for byte, and a missing or malformed view is never served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/view.h"

#include <cmocka.h>

static const char json[] = "{\"name\":\"w/s\",\"display_name\":\"a\\nb\",\"labels\":{}}";

static res_row row(void)
{
    res_row r = {.name = "workspaces/w/sources/s", .parent = "workspaces/w", .body = "{\"display_name\":\"a\\nb\"}",
                 .version = 7};
    strcpy(r.create_time, "2026-01-01T00:00:00Z");
    strcpy(r.update_time, "2026-01-02T00:00:00Z");
    return r;
}

/* r with a view made from r itself under epoch. */
static res_row with_view(const char *epoch)
{
    res_row r = row();
    buf b = {0};
    view_make(&b, epoch, &r, json, strlen(json));
    r.view = buf_steal(&b);
    return r;
}

static void test_round_trip(void **state)
{
    (void)state;
    res_row r = with_view("0123456789abcdef");
    size_t len = 0;
    const char *got = view_json(&r, "0123456789abcdef", &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(json));
    assert_memory_equal(got, json, len);
    free(r.view);
}

/* Any change to what a render reads makes the view stale: a row written behind the
 * engine's back (an older binary, an UPDATE by hand) is rendered, not served stale. */
static void test_changed_row_is_stale(void **state)
{
    (void)state;
    res_row r = with_view("e1");
    size_t len;
    res_row x = r;
    x.version = 8;
    assert_null(view_json(&x, "e1", &len));
    x = r;
    x.body = "{\"display_name\":\"a\\nc\"}";
    assert_null(view_json(&x, "e1", &len));
    x = r;
    x.parent = "workspaces/v";
    assert_null(view_json(&x, "e1", &len));
    x = r;
    x.update_time[18] = '1';
    assert_null(view_json(&x, "e1", &len));
    x = r;
    x.create_time[18] = '1';
    assert_null(view_json(&x, "e1", &len));
    assert_non_null(view_json(&r, "e1", &len));
    free(r.view);
}

static void test_other_epoch_is_stale(void **state)
{
    (void)state;
    res_row r = with_view("abc");
    size_t len;
    assert_null(view_json(&r, "abd", &len));
    assert_null(view_json(&r, "ab", &len));   /* a prefix of the stored epoch */
    assert_null(view_json(&r, "abcd", &len)); /* the stored epoch is a prefix */
    assert_non_null(view_json(&r, "abc", &len));
    free(r.view);
}

static void test_missing_or_malformed(void **state)
{
    (void)state;
    res_row r = row();
    size_t len;
    char stamp[17], good[64];
    view_stamp(&r, stamp);
    assert_int_equal(strlen(stamp), 16);
    const char *bad[] = {NULL, "", "e:", "{\"a\":1}", "e:0000000000000000\n{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r.view = (char *)bad[i];
        assert_null(view_json(&r, "e", &len));
    }
    snprintf(good, sizeof good, "e:%s", stamp); /* the right header but no newline */
    r.view = good;
    assert_null(view_json(&r, "e", &len));
    snprintf(good, sizeof good, "e:%s\n", stamp);
    assert_non_null(view_json(&r, "e", &len));
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_changed_row_is_stale),
        cmocka_unit_test(test_other_epoch_is_stale),
        cmocka_unit_test(test_missing_or_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
