/* Unit tests for src/app/config.c: defaults, MANIFOLD_* environment, flags (flag wins over
 * environment, environment over default), and every kind of error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app/config.h"

/* A fake environment: NAME=VALUE strings. */
static const char *const *fake_env;

static const char *env_lookup(const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = fake_env; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int parse_with(config *cfg, const char *const *envv, char *err, size_t errlen, int argc, ...)
{
    char *argv[64];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = (char *)va_arg(ap, const char *);
    va_end(ap);
    fake_env = envv;
    err[0] = '\0';
    return config_parse(cfg, argc, argv, env_lookup, err, errlen);
}

#define PARSE(cfg, envv, err, ...) \
    parse_with(cfg, envv, err, sizeof err, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), __VA_ARGS__)

static void test_defaults(void **state)
{
    (void)state;
    config c;
    char err[256];
    fake_env = NULL;
    assert_int_equal(config_parse(&c, 0, NULL, env_lookup, err, sizeof err), 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.database, "var/manifold.db");
    assert_string_equal(c.catalog, "");
    assert_string_equal(c.key_file, "");
    assert_int_equal(c.rate_limit, 60);
    assert_int_equal(c.max_body, 1048576);
    assert_int_equal(c.max_plan_body, 8388608);
    assert_string_equal(c.bootstrap_workspace, "myworkspace");
    assert_string_equal(c.bootstrap_email, "owner@example.com");
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_connections, 1024);
    assert_int_equal(c.max_per_ip, 256);
    assert_int_equal(c.idle_timeout, 30);
    assert_int_equal(c.request_timeout, 30);
    assert_int_equal(c.max_header_bytes, 32768);
    assert_int_equal(c.db_connections, 4);
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.log_format, "text");
    assert_string_equal(c.metrics, "on");
    assert_string_equal(c.access_log, "on");
    /* a NULL getenv function is allowed */
    assert_int_equal(config_parse(&c, 0, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(c.rate_limit, 60);
}

static void test_environment(void **state)
{
    (void)state;
    static const char *const envv[] = {
        "MANIFOLD_LISTEN=0.0.0.0:9000", "MANIFOLD_DATABASE=postgres://u@h/db", "MANIFOLD_RATE_LIMIT=5",
        "MANIFOLD_MAX_BODY=2048", "MANIFOLD_KEY_FILE=/etc/manifold.key", "MANIFOLD_MAX_PER_IP=7",
        "MANIFOLD_IDLE_TIMEOUT=3", "MANIFOLD_REQUEST_TIMEOUT=4", "MANIFOLD_LOG_LEVEL=debug",
        "MANIFOLD_BOOTSTRAP_WORKSPACE=acme", "MANIFOLD_THREADS=3", "MANIFOLD_MAX_HEADER_BYTES=8192",
        "MANIFOLD_DB_CONNECTIONS=2", "MANIFOLD_MAX_CONNECTIONS=99", "MANIFOLD_CATALOG=/srv/catalog",
        "MANIFOLD_BOOTSTRAP_EMAIL=boss@acme.test", "MANIFOLD_MAX_PLAN_BODY=3000000", "MANIFOLD_LOG_FORMAT=json",
        "MANIFOLD_METRICS=off", "MANIFOLD_ACCESS_LOG=off", "UNRELATED=1", NULL};
    config c;
    char err[256];
    fake_env = envv;
    assert_int_equal(config_parse(&c, 0, NULL, env_lookup, err, sizeof err), 0);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9000);
    assert_string_equal(c.database, "postgres://u@h/db");
    assert_int_equal(c.rate_limit, 5);
    assert_int_equal(c.max_body, 2048);
    assert_int_equal(c.max_plan_body, 3000000);
    assert_string_equal(c.key_file, "/etc/manifold.key");
    assert_int_equal(c.max_per_ip, 7);
    assert_int_equal(c.idle_timeout, 3);
    assert_int_equal(c.request_timeout, 4);
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.bootstrap_workspace, "acme");
    assert_string_equal(c.bootstrap_email, "boss@acme.test");
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.max_header_bytes, 8192);
    assert_int_equal(c.db_connections, 2);
    assert_int_equal(c.max_connections, 99);
    assert_string_equal(c.catalog, "/srv/catalog");
    assert_string_equal(c.log_format, "json");
    assert_string_equal(c.metrics, "off");
    assert_string_equal(c.access_log, "off");
}

static void test_empty_environment_value_is_ignored(void **state)
{
    (void)state;
    static const char *const envv[] = {"MANIFOLD_RATE_LIMIT=", "MANIFOLD_LISTEN=", NULL};
    config c;
    char err[256];
    fake_env = envv;
    assert_int_equal(config_parse(&c, 0, NULL, env_lookup, err, sizeof err), 0);
    assert_int_equal(c.rate_limit, 60);
    assert_int_equal(c.listen_port, 8080);
}

static void test_flags_both_forms(void **state)
{
    (void)state;
    config c;
    char err[256];
    assert_int_equal(PARSE(&c, NULL, err, "--listen", "127.0.0.1:0", "--rate-limit=0", "--max-body", "4096",
                           "--max-plan-body=5000000", "--database=/tmp/x.db", "--threads", "1", "--log-level=error", "--idle-timeout", "1"),
                     0);
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(c.rate_limit, 0);
    assert_int_equal(c.max_body, 4096);
    assert_int_equal(c.max_plan_body, 5000000);
    assert_string_equal(c.database, "/tmp/x.db");
    assert_int_equal(c.threads, 1);
    assert_string_equal(c.log_level, "error");
    assert_int_equal(c.idle_timeout, 1);
}

static void test_flag_wins_over_environment(void **state)
{
    (void)state;
    static const char *const envv[] = {"MANIFOLD_RATE_LIMIT=5", "MANIFOLD_LISTEN=10.0.0.1:1", NULL};
    config c;
    char err[256];
    assert_int_equal(PARSE(&c, envv, err, "--rate-limit", "7"), 0);
    assert_int_equal(c.rate_limit, 7);
    assert_string_equal(c.listen_host, "10.0.0.1"); /* env still applies to other settings */
    assert_int_equal(c.listen_port, 1);
    /* the last of repeated flags wins */
    assert_int_equal(PARSE(&c, envv, err, "--rate-limit", "7", "--rate-limit=9"), 0);
    assert_int_equal(c.rate_limit, 9);
}

static void test_listen_forms(void **state)
{
    (void)state;
    config c;
    char err[256];
    assert_int_equal(PARSE(&c, NULL, err, "--listen", "[::1]:8443"), 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 8443);
    assert_int_equal(PARSE(&c, NULL, err, "--listen", "0.0.0.0:65535"), 0);
    assert_int_equal(c.listen_port, 65535);
    assert_int_equal(PARSE(&c, NULL, err, "--listen", "localhost:80"), 0); /* resolved later */
    assert_string_equal(c.listen_host, "localhost");
    const char *bad[] = {"8080", ":8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x",
                         "127.0.0.1", "", "[::1]", "h:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (PARSE(&c, NULL, err, "--listen", bad[i]) == 0)
            fail_msg("--listen '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "listen"));
    }
    char longhost[200];
    memset(longhost, 'h', 100);
    snprintf(longhost + 100, sizeof longhost - 100, ":80");
    assert_int_not_equal(PARSE(&c, NULL, err, "--listen", longhost), 0);
}

static void check_error(const char *contains, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = (char *)va_arg(ap, const char *);
    va_end(ap);
    config c;
    char err[256] = "";
    fake_env = NULL;
    if (config_parse(&c, argc, argv, env_lookup, err, sizeof err) == 0)
        fail_msg("accepted: %s %s", argc ? argv[0] : "", argc > 1 ? argv[1] : "");
    if (contains && !strstr(err, contains))
        fail_msg("error '%s' does not mention '%s'", err, contains);
}

static void test_flag_errors(void **state)
{
    (void)state;
    check_error("unknown flag", 1, "--no-such-flag");
    check_error("unknown flag", 2, "--rate", "5");          /* no prefix matching */
    check_error("unknown flag", 2, "--rate-limits", "5");
    check_error("unexpected argument", 1, "serve");
    check_error("unexpected argument", 2, "-r", "5");
    check_error("needs a value", 1, "--rate-limit");
    check_error("needs a value", 1, "--database");
    check_error("rate-limit", 2, "--rate-limit", "-1");
    check_error("rate-limit", 2, "--rate-limit", "abc");
    check_error("rate-limit", 2, "--rate-limit", "5x");
    check_error("rate-limit", 2, "--rate-limit", "");
    check_error("rate-limit", 2, "--rate-limit", "99999999999999999999999");
    check_error("max-body", 2, "--max-body", "1023");
    check_error("max-body", 2, "--max-body", "2147483648");
    check_error("max-plan-body", 2, "--max-plan-body", "1023");
    check_error("max-plan-body", 2, "--max-plan-body", "2147483648");
    check_error("threads", 2, "--threads", "0");
    check_error("threads", 2, "--threads", "257");
    check_error("max-connections", 2, "--max-connections", "0");
    check_error("max-per-ip", 2, "--max-per-ip", "0");
    check_error("idle-timeout", 2, "--idle-timeout", "0");
    check_error("request-timeout", 2, "--request-timeout", "86401");
    check_error("max-header-bytes", 2, "--max-header-bytes", "100");
    check_error("db-connections", 2, "--db-connections", "0");
    check_error("log-level", 2, "--log-level", "loud");
    check_error("log-format", 2, "--log-format", "xml");
    check_error("metrics", 2, "--metrics", "yes");
    check_error("access-log", 2, "--access-log", "1");
    check_error("database", 2, "--database", "");
    check_error(NULL, 2, "--threads", "-1");
}

static void test_environment_errors_name_the_variable(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"MANIFOLD_RATE_LIMIT=fast", "MANIFOLD_RATE_LIMIT"},
        {"MANIFOLD_LISTEN=nowhere", "MANIFOLD_LISTEN"},
        {"MANIFOLD_MAX_BODY=1", "MANIFOLD_MAX_BODY"},
        {"MANIFOLD_THREADS=1000", "MANIFOLD_THREADS"},
        {"MANIFOLD_LOG_LEVEL=verbose", "log-level"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *envv[] = {cases[i][0], NULL};
        config c;
        char err[256] = "";
        fake_env = envv;
        if (config_parse(&c, 0, NULL, env_lookup, err, sizeof err) == 0)
            fail_msg("accepted %s", cases[i][0]);
        if (!strstr(err, cases[i][1]))
            fail_msg("error '%s' does not name %s", err, cases[i][1]);
    }
}

static void test_string_length_limits(void **state)
{
    (void)state;
    config c;
    char err[256];
    char big[2048];
    memset(big, 'd', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_not_equal(PARSE(&c, NULL, err, "--database", big), 0);
    big[sizeof c.database - 1] = '\0'; /* exactly the largest that fits */
    assert_int_equal(PARSE(&c, NULL, err, "--database", big), 0);
    assert_int_equal(strlen(c.database), sizeof c.database - 1);
    char ws[200];
    memset(ws, 'w', sizeof ws - 1);
    ws[sizeof ws - 1] = '\0';
    assert_int_not_equal(PARSE(&c, NULL, err, "--bootstrap-workspace", ws), 0);
}

static void test_error_buffer_is_bounded(void **state)
{
    (void)state;
    config c;
    char err[16];
    memset(err, 'x', sizeof err);
    char *argv[] = {"--rate-limit", "this-is-a-very-long-bad-value-for-the-flag"};
    fake_env = NULL;
    assert_int_not_equal(config_parse(&c, 2, argv, env_lookup, err, sizeof err), 0);
    assert_non_null(memchr(err, '\0', sizeof err));
}

/* The Functions flags (docs/functions.md): defaults, environment, flags, bounds. */
static void test_functions_flags(void **state)
{
    (void)state;
    config c;
    char err[256];
    fake_env = NULL;
    assert_int_equal(config_parse(&c, 0, NULL, env_lookup, err, sizeof err), 0);
    assert_string_equal(c.functions_node, "");
    assert_int_equal(c.functions_workers, 0);
    assert_int_equal(c.functions_memory_mb, 0);
    assert_int_equal(c.functions_per_workspace, 25);
    const char *const envv[] = {"MANIFOLD_FUNCTIONS_NODE=/opt/node/bin/node", "MANIFOLD_FUNCTIONS_PER_WORKSPACE=0", NULL};
    assert_int_equal(PARSE(&c, envv, err, "--functions-workers", "4", "--functions-memory-mb=512"), 0);
    assert_string_equal(c.functions_node, "/opt/node/bin/node");
    assert_int_equal(c.functions_per_workspace, 0);
    assert_int_equal(c.functions_workers, 4);
    assert_int_equal(c.functions_memory_mb, 512);
    check_error("functions-workers", 2, "--functions-workers", "0");
    check_error("functions-memory-mb", 2, "--functions-memory-mb", "8");
    check_error("functions-per-workspace", 2, "--functions-per-workspace", "-1");
    check_error("functions-node", 2, "--functions-node", "");
}

static void test_usage_mentions_every_flag(void **state)
{
    (void)state;
    const char *flags[] = {"--listen", "--database", "--catalog", "--key-file", "--rate-limit", "--max-body",
                           "--max-plan-body", "--bootstrap-workspace", "--bootstrap-email", "--threads", "--max-connections",
                           "--max-per-ip", "--idle-timeout", "--request-timeout", "--max-header-bytes",
                           "--db-connections", "--log-level"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(config_usage, flags[i]))
            fail_msg("usage does not mention %s", flags[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_empty_environment_value_is_ignored),
        cmocka_unit_test(test_flags_both_forms),
        cmocka_unit_test(test_flag_wins_over_environment),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_environment_errors_name_the_variable),
        cmocka_unit_test(test_string_length_limits),
        cmocka_unit_test(test_error_buffer_is_bounded),
        cmocka_unit_test(test_functions_flags),
        cmocka_unit_test(test_usage_mentions_every_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
