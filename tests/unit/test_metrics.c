/* Unit tests for src/obs/metrics.c: sharded counters sum exactly across threads, histograms
 * bucket and sum as Prometheus expects (cumulative, +Inf = count), label values are escaped,
 * gauge callbacks and signed gauge deltas, and the exposition text's shape. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "obs/metrics.h"

#include <cmocka.h>

static metric *shared;

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        metric_add(shared, 1);
    return NULL;
}

static void test_counter_sums_every_thread(void **state)
{
    (void)state;
    metric_family *f = metrics_family("t_adds_total", "adds", METRIC_COUNTER, NULL, 0);
    shared = metrics_series(f, 0);
    assert_non_null(shared);
    pthread_t th[12];
    for (int i = 0; i < 12; i++)
        pthread_create(&th[i], NULL, adder, NULL);
    for (int i = 0; i < 12; i++)
        pthread_join(th[i], NULL);
    assert_true(metric_value(shared) == 1200000.0);
    /* the same name and labels give the same family and series */
    assert_ptr_equal(metrics_family("t_adds_total", "other help", METRIC_COUNTER, NULL, 0), f);
    assert_ptr_equal(metrics_series(f, 0), shared);
}

static void test_histogram(void **state)
{
    (void)state;
    static const double b[] = {0.1, 1, 10};
    metric_family *f = metrics_family("t_seconds", "durations", METRIC_HISTOGRAM, b, 3);
    metric *m = metrics_series(f, 1, "route", "/a/{b}");
    metric_observe(m, 0.05);
    metric_observe(m, 0.1); /* le is inclusive */
    metric_observe(m, 0.5);
    metric_observe(m, 20);
    buf out = {0};
    metrics_render(&out);
    const char *t = buf_cstr(&out);
    assert_non_null(strstr(t, "# TYPE t_seconds histogram\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"/a/{b}\",le=\"0.1\"} 2\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"/a/{b}\",le=\"1\"} 3\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"/a/{b}\",le=\"10\"} 3\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{route=\"/a/{b}\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(t, "t_seconds_sum{route=\"/a/{b}\"} 20.65\n"));
    assert_non_null(strstr(t, "t_seconds_count{route=\"/a/{b}\"} 4\n"));
    buf_free(&out);
}

static double seven(void *arg) { return *(double *)arg; }

static void test_gauges_and_escaping(void **state)
{
    (void)state;
    metric_family *f = metrics_family("t_gauge", "a \\ help\nline", METRIC_GAUGE, NULL, 0);
    metric *g = metrics_series(f, 1, "v", "q\"b\\n\nx");
    metric_gauge_add(g, 5);
    metric_gauge_add(g, -8);
    assert_true(metric_value(g) == -3.0);
    static double v = 7.25;
    metric *c = metrics_series(f, 1, "v", "cb");
    metric_gauge_fn(c, seven, &v);
    buf out = {0};
    metrics_render(&out);
    const char *t = buf_cstr(&out);
    assert_non_null(strstr(t, "# HELP t_gauge a \\\\ help\\nline\n"));
    assert_non_null(strstr(t, "t_gauge{v=\"q\\\"b\\\\n\\nx\"} -3\n"));
    assert_non_null(strstr(t, "t_gauge{v=\"cb\"} 7.25\n"));
    buf_free(&out);
}

static void test_null_series_are_ignored(void **state)
{
    (void)state;
    metric_add(NULL, 1);
    metric_observe(NULL, 1);
    metric_gauge_add(NULL, 1);
    metric_gauge_fn(NULL, seven, NULL);
    assert_true(metric_value(NULL) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_sums_every_thread),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_gauges_and_escaping),
        cmocka_unit_test(test_null_series_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
