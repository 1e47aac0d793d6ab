/*
 * test_schema_suite.c — runs the official JSON-Schema-Test-Suite (draft-07 and draft-04)
 * against src/schema. Run from the repository root.
 *
 * Required tests (the .json files of tests/<draft>) must all pass; optional ones
 * (tests/<draft>/optional and its format folder) are counted and reported only, with
 * "format" asserting for optional/format. Remote $refs (http://localhost:1234/...) are served from the
 * suite's remotes/ folder and the meta-schemas from data/metaschemas: no network.
 * Every test is validated twice, in quick mode and collecting violations, and the two
 * answers must agree. SCHEMA_SUITE_VERBOSE=1 also lists failing optional tests.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

#define SUITE "tests/data/json-schema-test-suite"
#define REMOTE "http://localhost:1234/"

typedef struct counts {
    int pass, total;
} counts_t;

static schema_meta_t *meta;
static bool verbose;

static json_t *loader(const char *uri, void *ctx)
{
    (void)ctx;
    if (strncmp(uri, REMOTE, strlen(REMOTE)) == 0) {
        char path[1024];
        snprintf(path, sizeof path, "%s/remotes/%s", SUITE, uri + strlen(REMOTE));
        return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    }
    return schema_meta_loader(uri, meta);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.json names in dir; returns the count. */
static int list_json(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    int n = 0, cap = 0;
    *out = NULL;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = realloc(*out, (size_t)cap * sizeof **out);
        }
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*out, (size_t)n, sizeof **out, cmp_str);
    return n;
}

static void run_file(const char *path, schema_draft_t draft, bool formats, bool required,
                     counts_t *c)
{
    json_error_t je;
    json_t *cases = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!cases) /* bignum.json: integers beyond 64 bits only parse as reals */
        cases = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (!cases) {
        printf("  cannot parse %s: %s\n", path, je.text);
        c->total++;
        return;
    }
    size_t i;
    json_t *tc;
    json_array_foreach(cases, i, tc) {
        json_t *schema = json_object_get(tc, "schema");
        schema_options_t opts = {draft, SCHEMA_OPT_FORCE_DRAFT | (formats ? SCHEMA_OPT_FORMAT_ASSERT : 0u),
                                 loader, NULL, NULL};
        schema_error_t err;
        schema_t *s = schema_compile(schema, &opts, &err);
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(tc, "tests"), k, t) {
            c->total++;
            bool expect = json_is_true(json_object_get(t, "valid"));
            json_t *data = json_object_get(t, "data");
            const char *why = NULL;
            if (!s) {
                why = err.message;
            } else {
                schema_result_t r = {0};
                bool quick = schema_validate(s, data, NULL);
                bool full = schema_validate(s, data, &r);
                if (quick != full || full != (r.count == 0))
                    why = "quick and collecting modes disagree";
                else if (full != expect)
                    why = expect ? "rejected a valid instance" : "accepted an invalid instance";
                if (why && (required || verbose) && r.count)
                    printf("    first violation: %s %s: %s\n", schema_result_item(&r, 0)->path,
                           schema_result_item(&r, 0)->keyword, schema_result_item(&r, 0)->message);
                schema_result_free(&r);
            }
            if (!why) {
                c->pass++;
            } else if (required || verbose) {
                printf("  FAIL %s: %s / %s: %s\n", path,
                       json_string_value(json_object_get(tc, "description")),
                       json_string_value(json_object_get(t, "description")), why);
            }
        }
        schema_free(s);
    }
    json_decref(cases);
}

static void run_dir(const char *dir, schema_draft_t draft, bool formats, bool required,
                    counts_t *c)
{
    char **names;
    int n = list_json(dir, &names);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        run_file(path, draft, formats, required, c);
        free(names[i]);
    }
    free(names);
}

int main(void)
{
    verbose = getenv("SCHEMA_SUITE_VERBOSE") && *getenv("SCHEMA_SUITE_VERBOSE") == '1';
    schema_error_t err;
    meta = schema_meta_load("data/metaschemas", &err);
    if (!meta) {
        printf("schema suite: cannot load meta-schemas: %s (run from the repository root)\n",
               err.message);
        return 1;
    }
    static const struct {
        const char *name;
        schema_draft_t draft;
    } drafts[] = {{"draft7", SCHEMA_DRAFT7}, {"draft4", SCHEMA_DRAFT4}};
    int failed = 0;
    for (size_t d = 0; d < sizeof drafts / sizeof drafts[0]; d++) {
        counts_t req = {0}, opt = {0}, fmt = {0};
        char dir[512];
        snprintf(dir, sizeof dir, "%s/tests/%s", SUITE, drafts[d].name);
        run_dir(dir, drafts[d].draft, false, true, &req);
        snprintf(dir, sizeof dir, "%s/tests/%s/optional", SUITE, drafts[d].name);
        run_dir(dir, drafts[d].draft, false, false, &opt);
        snprintf(dir, sizeof dir, "%s/tests/%s/optional/format", SUITE, drafts[d].name);
        run_dir(dir, drafts[d].draft, true, false, &fmt);
        printf("schema suite: %s %d/%d required passed, optional %d/%d, optional format %d/%d\n",
               drafts[d].name, req.pass, req.total, opt.pass, opt.total, fmt.pass, fmt.total);
        if (req.total == 0 || req.pass != req.total)
            failed = 1;
    }
    schema_meta_free(meta);
    return failed;
}
