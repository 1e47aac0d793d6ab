/*
 * schema.h — JSON Schema (draft-04, draft-06, draft-07) compiler and validator.
 *
 * A schema is compiled once into an immutable validator (schema_t); validating an
 * instance walks that structure and allocates nothing unless it records violations.
 * A compiled schema may be shared by any number of threads.
 *
 *     schema_error_t err;
 *     schema_t *s = schema_compile(rule, &(schema_options_t){0}, &err);
 *     if (!s) { ... err.pointer, err.message ... }
 *     schema_result_t r = {0};
 *     if (!schema_validate(s, event, &r))
 *         for (size_t i = 0; i < r.count; i++) use(schema_result_item(&r, i));
 *     schema_result_free(&r);
 *     schema_free(s);
 *
 * The library never touches the network or the file system on its own: `$ref`s to
 * other documents go through the loader callback the caller supplies.
 * See docs/json-schema.md for the design.
 */
#ifndef MANIFOLD_SCHEMA_H
#define MANIFOLD_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef enum schema_draft {
    SCHEMA_DRAFT_AUTO = 0, /* from the root's "$schema", else draft-07 */
    SCHEMA_DRAFT4 = 4,
    SCHEMA_DRAFT6 = 6,
    SCHEMA_DRAFT7 = 7,
} schema_draft_t;

/* Returns a new reference to the JSON document at `uri` (absolute, without fragment),
 * or NULL when it is unknown. Called at compile time only, at most once per URI. */
typedef json_t *(*schema_loader_fn)(const char *uri, void *ctx);

enum {
    SCHEMA_OPT_FORCE_DRAFT = 1u << 0,   /* use .draft even if "$schema" names another */
    SCHEMA_OPT_FORMAT_ASSERT = 1u << 1, /* "format" asserts (known formats only) */
};

typedef struct schema_options {
    schema_draft_t draft;    /* default draft, see SCHEMA_DRAFT_AUTO */
    unsigned flags;          /* SCHEMA_OPT_* */
    schema_loader_fn loader; /* may be NULL: remote $refs then fail to compile */
    void *loader_ctx;
    const char *base_uri;    /* retrieval URI of the document; NULL = none */
} schema_options_t;

/* Where and why compiling or checking a schema failed. `pointer` is a JSON pointer into
 * the schema document ("" is the root); for faults inside a document reached through a
 * remote $ref, the message names that document. */
typedef struct schema_error {
    char pointer[512];
    char message[256];
} schema_error_t;

typedef struct schema schema_t;

/* Compiles `doc` (an object or a boolean). Keeps a reference to it, so the document
 * must not be modified while the schema lives. NULL on error, with `err` filled
 * (`err` may be NULL). Rejects bad regexes, unresolvable $refs, malformed keywords,
 * $ref loops that never consume the instance, and nesting deeper than
 * SCHEMA_MAX_DEPTH. Validity against the meta-schema is checked by schema_meta_check. */
schema_t *schema_compile(json_t *doc, const schema_options_t *opts, schema_error_t *err);
void schema_free(schema_t *s);
schema_draft_t schema_get_draft(const schema_t *s);

/* Recursion bound for compiling and for validating (schema nodes entered at once). */
#define SCHEMA_MAX_DEPTH 512

/* ----- violations ------------------------------------------------------------------ */

typedef enum schema_vtype {
    SCHEMA_V_REQUIRED_MISSING,      /* required, dependencies (property list form) */
    SCHEMA_V_DATATYPE_MISMATCH,     /* type */
    SCHEMA_V_ADDITIONAL_PROPERTIES, /* additionalProperties: false */
    SCHEMA_V_ENUM_MISMATCH,         /* enum, const */
    SCHEMA_V_PATTERN_MISMATCH,      /* pattern, format */
    SCHEMA_V_RANGE_MISMATCH,        /* minimum .. multipleOf, min/max Length/Items/Properties */
    SCHEMA_V_SCHEMA_MISMATCH,       /* everything else */
} schema_vtype_t;

/* "Required-Missing", "Datatype-Mismatch", ... */
const char *schema_vtype_name(schema_vtype_t t);

typedef struct schema_violation {
    schema_vtype_t type;
    const char *keyword; /* static string: "required", "type", ..., "false" for a false schema */
    const char *path;    /* instance location, a JSON pointer; for required and
                            additionalProperties it names the property itself */
    size_t path_len;     /* strlen(path) unless an object key contains NUL */
    const char *schema_path; /* keyword location: "#/properties/x/type" or "uri#/..." */
    const char *message; /* English, one line */
} schema_violation_t;

/* Zero-initialise before first use. `limit` (0 = none) caps the number of recorded
 * violations; `truncated` tells that some were dropped (limit or out of memory).
 * Recording a violation formats nothing: schema_result_item() builds its strings when
 * it is first read, from the schema and the instance it points into — so read the
 * violations before freeing or changing either. The strings then live in storage owned
 * by the result, valid until schema_result_clear/free; a result that is cleared and
 * reused stops allocating once its buffers have grown to the largest set seen. */
typedef struct schema_result {
    size_t count, limit;
    bool truncated;
    struct schema_store *store; /* private */
} schema_result_t;

/* Violation i (< count), formatted on first use; NULL when out of memory. The pointer
 * and its strings stay valid until the result is validated into again, cleared or
 * freed. */
const schema_violation_t *schema_result_item(schema_result_t *res, size_t i);

/* Validates `instance`. With `res` NULL it only answers valid/invalid (and stops at the
 * first failure); otherwise it appends every violation to `res`. Thread-safe.
 * It builds a view of the instance first (util/jview.h): in `res`, where it stays until
 * the result is cleared or freed (violations point into it), or in memory kept per
 * thread when `res` is NULL. */
bool schema_validate(const schema_t *s, const json_t *instance, schema_result_t *res);

/* The same on a view already built: the fast path for checking one event against
 * several schemas (its rule and the global rule), or the same event many times.
 * Allocates nothing unless it records violations. */
struct jview;
bool schema_validate_view(const schema_t *s, const struct jview *instance,
                          schema_result_t *res);

void schema_result_clear(schema_result_t *res); /* drops the items, keeps the buffers */
void schema_result_free(schema_result_t *res);

/* {"type", "path", "keyword", "message"} — the shape the API emits. */
json_t *schema_violation_json(const schema_violation_t *v);
json_t *schema_result_json(schema_result_t *res); /* array of the above */

/* ----- meta-schema check ------------------------------------------------------------ */

typedef struct schema_meta schema_meta_t;

/* Loads and compiles DIR/draft-04-schema.json and DIR/draft-07-schema.json
 * (the repository ships them in data/metaschemas). */
schema_meta_t *schema_meta_load(const char *dir, schema_error_t *err);
void schema_meta_free(schema_meta_t *m);

/* A schema_loader_fn (ctx = the schema_meta_t) that serves the draft-04/06/07
 * meta-schema URIs, so that schemas may $ref them. draft-06 is served as draft-07. */
json_t *schema_meta_loader(const char *uri, void *meta);

/* Checks that `schema` is a usable schema: valid against the meta-schema of its
 * "$schema" (draft-04, or draft-07 for draft-06/07 and when absent; any other value is
 * an error at "/$schema"), with valid ECMA-262 regexes, and compilable (every $ref
 * resolves, through schema_meta_loader). On failure `err->pointer` names the offending
 * location inside `schema`. */
bool schema_meta_check(const schema_meta_t *m, json_t *schema, schema_error_t *err);

/* ----- command line ----------------------------------------------------------------- */

/* `manifold schema validate SCHEMA.json [--format]`: main.c calls this with argv[0]
 * being the SCHEMA argument (argc counts from there). Reads JSON instances from stdin,
 * one per line (blank lines skipped), and prints one line per instance:
 *     {"valid": true|false, "errors": [{"type", "path", "keyword", "message"}, ...]}
 * The schema is checked against the meta-schemas found in $MANIFOLD_METASCHEMA_DIR
 * (default data/metaschemas) when present. `--format` makes "format" assert.
 * Returns the exit status: 0 all valid, 1 some invalid (or not JSON), 2 the schema is
 * unreadable or invalid (message on stderr), 64 usage. */
int schema_cli_validate(int argc, char **argv);

#endif
