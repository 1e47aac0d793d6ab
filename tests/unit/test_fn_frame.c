/* Unit tests for src/functions/frame.c — the length-prefixed JSON framing on the worker pipes
 * (functions-runtime.md §11): big-endian length, partial frames wait for more bytes, several
 * frames in one read, an announced length over the cap is refused (a broken worker), and an
 * empty payload is a frame. Also the runtime without Node.js: RuntimeUnavailable, answered
 * exactly once from the runtime thread. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/frame.h"
#include "functions/runtime.h"

#include <cmocka.h>

static void test_put_layout(void **state)
{
    (void)state;
    buf b = {0};
    frame_put(&b, "{\"a\":1}", 7);
    assert_int_equal(b.len, 11);
    assert_memory_equal(b.data, "\0\0\0\7{\"a\":1}", 11);
    buf_free(&b);
    frame_put(&b, "", 0);
    assert_int_equal(b.len, 4);
    const char *p = NULL;
    size_t n = 99;
    assert_int_equal(frame_next(b.data, b.len, FRAME_MAX, &p, &n), 4);
    assert_int_equal(n, 0);
    buf_free(&b);
}

static void test_open_close_in_place(void **state)
{
    (void)state;
    buf b = {0};
    buf_puts(&b, "xy"); /* a frame written after other bytes */
    size_t at = frame_open(&b);
    buf_puts(&b, "{\"op\":\"invoke\"}");
    frame_close(&b, at);
    assert_int_equal(b.len, 2 + 4 + 15);
    const char *p = NULL;
    size_t n = 0;
    assert_int_equal(frame_next(b.data + 2, b.len - 2, FRAME_MAX, &p, &n), 19);
    assert_int_equal(n, 15);
    assert_memory_equal(p, "{\"op\":\"invoke\"}", 15);
    buf_free(&b);
}

static void test_partial_and_many(void **state)
{
    (void)state;
    buf b = {0};
    char big[70000];
    memset(big, 'x', sizeof big);
    frame_put(&b, "one", 3);
    frame_put(&b, big, sizeof big); /* length needs three bytes: 0x00 0x01 0x11 0x70 */
    frame_put(&b, "three", 5);
    const char *p;
    size_t n;
    /* every proper prefix of the first frame is incomplete */
    for (size_t cut = 0; cut < 7; cut++)
        assert_int_equal(frame_next(b.data, cut, FRAME_MAX, &p, &n), 0);
    size_t off = 0;
    ssize_t used = frame_next(b.data, b.len, FRAME_MAX, &p, &n);
    assert_int_equal(used, 7);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "one", 3);
    off += (size_t)used;
    assert_int_equal(frame_next(b.data + off, 4 + sizeof big - 1, FRAME_MAX, &p, &n), 0);
    used = frame_next(b.data + off, b.len - off, FRAME_MAX, &p, &n);
    assert_int_equal(used, 4 + (ssize_t)sizeof big);
    assert_int_equal(n, sizeof big);
    assert_int_equal(p[0], 'x');
    assert_int_equal(p[sizeof big - 1], 'x');
    off += (size_t)used;
    used = frame_next(b.data + off, b.len - off, FRAME_MAX, &p, &n);
    assert_int_equal(used, 9);
    assert_memory_equal(p, "three", 5);
    off += (size_t)used;
    assert_int_equal(off, b.len);
    buf_free(&b);
}

static void test_too_large(void **state)
{
    (void)state;
    const char hdr[4] = {(char)0x7f, (char)0xff, (char)0xff, (char)0xff};
    const char *p;
    size_t n;
    assert_int_equal(frame_next(hdr, 4, FRAME_MAX, &p, &n), -1);
    const char small[4] = {0, 0, 1, 0}; /* 256 bytes announced */
    assert_int_equal(frame_next(small, 4, 255, &p, &n), -1);
    assert_int_equal(frame_next(small, 4, 256, &p, &n), 0);
}

typedef struct answer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    char name[64], reason[64];
    bool success;
} answer;

static void on_done(void *ctx, const fn_result *r)
{
    answer *a = ctx;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    a->success = r->success;
    snprintf(a->name, sizeof a->name, "%s", r->error_name ? r->error_name : "");
    snprintf(a->reason, sizeof a->reason, "%s", r->error_reason ? r->error_reason : "");
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void test_no_node_is_unavailable(void **state)
{
    (void)state;
    fnrt_config cfg = {.node = "/nonexistent/node"};
    fnrt *rt = fnrt_start(&cfg);
    assert_non_null(rt);
    assert_false(fnrt_available(rt));
    answer a = {.calls = 0};
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    fn_call call = {.kind = FN_KIND_DESTINATION, .code = "async function onTrack(){}", .input = "{\"type\":\"track\"}",
                    .fresh = true};
    fnrt_invoke(rt, &call, on_done, &a);
    pthread_mutex_lock(&a.mu);
    while (a.calls == 0)
        pthread_cond_wait(&a.cv, &a.mu);
    pthread_mutex_unlock(&a.mu);
    fnrt_stop(rt);
    assert_int_equal(a.calls, 1);
    assert_false(a.success);
    assert_string_equal(a.name, "RuntimeUnavailable");
    assert_string_equal(a.reason, "runtime unavailable");
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_layout),
        cmocka_unit_test(test_open_close_in_place),
        cmocka_unit_test(test_partial_and_many),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_no_node_is_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
