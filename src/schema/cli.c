/*
 * cli.c — `manifold schema validate SCHEMA.json [--format]`: validates JSON instances,
 * one per line on stdin, and prints one JSON result line per instance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

static void print_json(json_t *j)
{
    char *s = j ? json_dumps(j, 0) : NULL;
    puts(s ? s : "{\"valid\": false, \"errors\": [{\"message\": \"out of memory\"}]}");
    free(s);
    json_decref(j);
}

int schema_cli_validate(int argc, char **argv)
{
    const char *path = NULL;
    bool formats = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0) {
            formats = true;
        } else if (!path && (argv[i][0] != '-' || argv[i][1] == '\0')) {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: manifold schema validate SCHEMA.json [--format] < instances\n");
        return 64;
    }
    json_error_t je;
    /* \u0000 is legal JSON (the official test suite has it in enum/const/property names)
     * and the validator compares by length, so schemas may hold it, as instances may. */
    json_t *doc =
        json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!doc) {
        fprintf(stderr, "%s: cannot read schema: %s (line %d, column %d)\n", path, je.text,
                je.line, je.column);
        return 2;
    }
    const char *dir = getenv("MANIFOLD_METASCHEMA_DIR");
    schema_error_t err;
    schema_meta_t *meta = schema_meta_load(dir && *dir ? dir : "data/metaschemas", &err);
    if (!meta)
        fprintf(stderr, "%s: warning: meta-schemas unavailable (%s); not checked against them\n",
                path, err.message);
    if (meta && !schema_meta_check(meta, doc, &err)) {
        fprintf(stderr, "%s: invalid schema at \"%s\": %s\n", path, err.pointer, err.message);
        schema_meta_free(meta);
        json_decref(doc);
        return 2;
    }
    schema_options_t opts = {SCHEMA_DRAFT_AUTO, formats ? SCHEMA_OPT_FORMAT_ASSERT : 0u,
                             meta ? schema_meta_loader : NULL, meta, NULL};
    schema_t *s = schema_compile(doc, &opts, &err);
    if (!s) {
        fprintf(stderr, "%s: invalid schema at \"%s\": %s\n", path, err.pointer, err.message);
        schema_meta_free(meta);
        json_decref(doc);
        return 2;
    }

    int status = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    schema_result_t res = {0};
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (strspn(line, " \t") >= (size_t)len)
            continue; /* blank line */
        json_t *inst = json_loadb(line, (size_t)len,
                                  JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        if (!inst) {
            status = 1;
            print_json(json_pack("{s:b, s:[{s:s, s:s, s:s, s:s+}]}", "valid", 0, "errors", "type",
                                 "Schema-Mismatch", "path", "", "keyword", "", "message",
                                 "not valid JSON: ", je.text));
            continue;
        }
        bool ok = schema_validate(s, inst, &res);
        if (!ok)
            status = 1;
        print_json(json_pack("{s:b, s:o}", "valid", ok, "errors", schema_result_json(&res)));
        schema_result_clear(&res);
        json_decref(inst);
    }
    free(line);
    schema_result_free(&res);
    schema_free(s);
    schema_meta_free(meta);
    json_decref(doc);
    return status;
}
