/* engine — the one implementation of the standard methods (List, Get, Create, Update,
 * Delete) for every resource kind, after the Kubernetes generic registry: a kind is a
 * descriptor plus small hooks (validate and build the stored body, apply an update path,
 * render), and the engine owns names, ids, update masks, versions/ETags, If-Match, dry
 * runs (?validate_only=true), idempotent creates, cascades and the single transaction
 * every call runs in.
 *
 * Storage: one row per resource in `resources`, keyed by its full name
 * ("workspaces/w/sources/s/destinations/d"); children live under their parent's name, so
 * deleting a resource deletes its subtree with one range delete. */
#ifndef MANIFOLD_ENGINE_H
#define MANIFOLD_ENGINE_H
#include "api/call.h"

typedef enum id_mode {
    ID_FROM_NAME,   /* the client sends the full name; its last segment is the id (sources, destinations) */
    ID_GENERATED,   /* the server makes prefix + KSUID (filters, tracking plans) */
    ID_SINGLETON,   /* exactly one, named by the collection segment (schema-config) */
} id_mode;

typedef struct kind kind;
struct kind {
    const char *name;        /* "destination": the body wrapper key and the noun in errors */
    const char *collection;  /* "destinations": the name segment */
    const char *list_key;    /* "destinations": the list response key */
    id_mode id_mode;
    const char *id_prefix;   /* ID_GENERATED: "df_" */
    int max_per_parent;      /* 0: unlimited */
    const char *const *fields;     /* keys accepted inside the resource object */
    const char *const *mask_paths; /* update-mask paths, without the "<name>." prefix */

    /* Create: validate obj (the client's resource object) and fill body, the stored form.
     * name is the new resource's full name. Return false after fail(). */
    bool (*create)(call *c, json_t *obj, const char *name, json_t *body);
    /* Update one mask path. value is NULL when the path is listed without a value (reset
     * to the zero value). NULL hook: the generic set/reset of body[path]. */
    bool (*update)(call *c, json_t *body, const char *path, json_t *value, const char *name);
    /* Whole-resource checks after create or update (e.g. required settings on enable). */
    bool (*validate)(call *c, json_t *body, const char *name);
    /* Builds the response object. */
    json_t *(*render)(call *c, const res_row *r, json_t *body);
    /* Extra work inside the create transaction (e.g. a source's schema-config). */
    bool (*after_create)(call *c, txn *t, const res_row *r);
    /* Extra work inside the delete transaction, before the subtree goes. */
    bool (*before_delete)(call *c, txn *t, const res_row *r);
    /* The parent is not a stored resource (policies live under built-in roles): checks it
     * instead of the generic existence check. */
    bool (*parent_ok)(call *c, const char *parent);
    /* Runs after a create or delete has committed (e.g. drop cached policies). */
    void (*after_commit)(call *c);
    /* The secondary key stored with the row (store_res_list_ref), or NULL. */
    const char *(*ref)(json_t *body);

    /* Keys accepted beside the wrapper and "update_mask" at the top of a create/update
     * body (a function's "type"), or NULL. */
    const char *const *top_fields;
    /* ID_GENERATED kinds whose id prefix depends on the request (sfnc_ / dfnc_): returns
     * the prefix for this create, or NULL after fail(). req is the whole request body. */
    const char *(*id_prefix_for)(call *c, json_t *req, json_t *obj);
    /* List only the ids starting with the prefix this returns (functions by ?type=);
     * NULL after fail(). NULL hook: every child. */
    const char *(*list_prefix)(call *c);
    /* List items when they are not Get's full form (functions without code): renders the
     * stored view. NULL: render. */
    json_t *(*render_item)(call *c, const res_row *r, json_t *body);
    /* True when r's rendering reads other resources (a function-backed source shows its
     * function's settings): List renders it every time instead of splicing a view. */
    bool (*live)(const res_row *r);
    /* Update-mask spellings: another accepted prefix besides "<name>." (the collection
     * "functions."), and alias pairs {alias, path, …, NULL} ("displayname" → "display_name"). */
    const char *mask_prefix_alt;
    const char *const *mask_aliases;
    /* The limit of children per parent when it is configurable (functions per workspace);
     * overrides max_per_parent; 0: unlimited. */
    int (*max_children)(call *c);

    /* Workspace export/import (workspace_export.c, workspace_import.c). The resource as
     * the canonical document holds it: the fields a create accepts, without its name, read
     * from the stored body; write-only values are EXPORT_REDACTED unless secrets. NULL:
     * the kind is not exported. */
    json_t *(*export)(call *c, const res_row *r, json_t *body, bool secrets);
    /* Creates the resource inside t when that is not the engine's create (a source
     * connection); false after fail(). NULL: engine_create_in. */
    bool (*import_create)(call *c, txn *t, const char *name, json_t *obj);
};

/* What an exported write-only value reads as (secrets are not asked for). */
#define EXPORT_REDACTED "<redacted>"

/* Route handlers: the route's kind field says which kind. */
void engine_list(call *c);
void engine_get(call *c);
void engine_create(call *c);
void engine_update(call *c);
void engine_delete(call *c);

/* The cores of Create, Update and Delete, for callers that make several changes in one
 * transaction (the workspace import) as well as for the HTTP methods: each works inside
 * t (open for writing), runs every hook of the kind exactly as the HTTP method does
 * (validation, after_create, before_delete, cascades, dropped policies), writes the
 * audit entry, and reports a failure through fail() without answering anything else.
 * The caller commits, and then runs k->after_commit (and auth_forget_all when *dropped).
 *
 * Create: name is the new resource's full name, parent its parent's, obj the client's
 * resource object; stored (an empty object) receives the stored body and r the row
 * (r->body and r->view are heap strings the caller frees; r->name and r->parent borrow
 * name and parent). */
bool engine_create_in(call *c, txn *t, const kind *k, const char *parent, const char *name, json_t *obj,
                      json_t *stored, res_row *r);
/* Update: applies each update-mask path of paths (a JSON array of bare paths) from obj.
 * 1 done (*stored_out, if given, receives the new body), 0 failed, -1 lost a race with a
 * concurrent writer (nothing written; retry in a new transaction). r: res_row_clear it.
 * if_matched: check the request's If-Match header against the stored version.
 * replace: a field given as a list or object is reset before it is set, so that a merging
 * update (a destination's config) ends up holding exactly the given value (the import). */
int engine_update_in(call *c, txn *t, const kind *k, const char *name, json_t *obj, json_t *paths, bool if_matched,
                     bool replace, res_row *r, json_t **stored_out);
/* Delete: the resource and its subtree. */
bool engine_delete_in(call *c, txn *t, const kind *k, const char *name, bool if_matched, bool *dropped);
/* ?validate_only= (or validateOnly): *out; false after fail() on a bad value. */
bool engine_validate_only(call *c, bool *out);

/* Builds the resource name addressed by the request path (from the segment after
 * "/v1beta/"), with {ws} replaced by the canonical slug. drop_last removes the last
 * segment (collection paths give the parent's name). Heap string. */
char *engine_path_name(call *c, int drop_last);

/* A custom verb that changes one resource (a function's deploy): the engine loads the
 * resource addressed by the path without its last drop_last segments (locked, If-Match
 * checked), lets apply change the stored body (false after fail()), stores it as a new
 * version with its view, audits it as "<kind>.<verb>", and answers {}. */
void engine_apply(call *c, int drop_last, const char *verb, bool (*apply)(call *c, json_t *body));
/* Reads the resource addressed by the path without its last drop_last segments: ST_OK
 * with *r filled in and *body parsed (decref it), or the failure already answered. */
int engine_load(call *c, int drop_last, res_row *r, json_t **body);
/* Start-up: gives rows of kind k written before it had a ref hook their secondary key. */
int engine_backfill_refs(store *st, const kind *k);

/* The kinds. */
extern const kind kind_source, kind_destination, kind_schema_config, kind_filter, kind_tracking_plan,
    kind_policy, kind_invite, kind_source_connection, kind_function;
void tracking_plans_init(const char *catalog_dir);
bool tp_source_deleted(call *c, txn *t, const res_row *source);
void h_conn_create(call *c), h_conn_batch(call *c);
void h_plan_validate(call *c);
/* Connects the source named source_name to the plan, inside t, audited; false after fail(). */
bool tp_connect(call *c, txn *t, const char *plan_name, const char *source_name);
/* workspace_export.c, workspace_import.c: GET .../workspaces/{ws}:export, POST ...:import */
void h_ws_export(call *c), h_ws_import(call *c);
void h_filter_preview(call *c);
/* kind_function.c: §13 custom verbs; fn_preview.c: §13.6 */
void h_fn_deploy(call *c), h_fn_is_latest(call *c), h_fn_preview(call *c);
/* The type a create or preview names (?type=, body "type", function.type): "SOURCE" or
 * "DESTINATION", or NULL after fail(). */
const char *fn_request_type(call *c, json_t *req, json_t *obj);
/* Does v fit a function setting of type (string, boolean, text-map, array)? */
bool fn_value_fits(const char *type, const json_t *v);
/* The function that catalog id names in the call's workspace (a source function when
 * source, else a destination function): ST_OK with its name and stored body (free and
 * decref them), ST_NOT_FOUND, ST_ERROR. t may be NULL (a read of its own). */
int fn_by_catalog_id(call *c, txn *t, bool source, const char *catalog_id, char **name, json_t **body);
/* events.c — the source debugger (beyond Segment) */
void h_events_list(call *c), h_events_summary(call *c);
/* metrics.c — Event Delivery Metrics (§11) */
void h_metrics_list(call *c), h_metrics_get(call *c), h_metrics_batch_get(call *c), h_metrics_summary(call *c),
    h_metrics_batch_summary(call *c);

/* Helpers for kinds. */
bool valid_slug(const char *s);
json_t *zero_like(const json_t *v);
/* obj["a"]["b"] for path "a.b" (update-mask paths name nested fields). */
json_t *json_dotted(json_t *obj, const char *path);
/* Write-only settings (destination passwords, sensitive function settings) read back as
 * this mask plus a secret_version: a keyed hash of the setting's full name and value. */
#define SECRET_MASK "********"
json_t *secret_version(const char *setting_name, const json_t *v);

/* iam.c — built-in roles, the authorisation decision, the audit trail. */
typedef struct role_def {
    const char *id, *display_name, *description;
    unsigned read, write; /* area bit masks (AREA_*) */
} role_def;
const role_def *iam_role(const char *id_or_name);
/* May principal p perform action on the resource named target ("workspaces/w/…")? */
bool iam_allows(const principal *p, route_action action, const char *target);
/* May p perform action on every area of the workspace (sources, tracking plans, functions,
 * IAM)? Today only a workspace owner's policy on the workspace itself grants that. */
bool iam_allows_workspace(const principal *p, route_action action, const char *ws_slug);
/* Grants role on resource to subject ("users/<id>") inside t (bootstrap, admin, invites). */
int iam_grant(txn *t, const char *ws_slug, const char *role, const char *subject, const char *resource);
/* Deleting resource `name` drops, in the same transaction, the policies that name it or
 * anything under it (each audited as its DELETE): a later resource of the same name must
 * not inherit them. False on a store error (the call has failed); *dropped says whether
 * any went, and then the caller forgets cached grants once it has committed. */
bool iam_drop_policies_on(call *c, txn *t, const char *name, bool *dropped);
/* The same for open invites: their grants on `name` or under it go (the invite is
 * updated, or deleted when none is left), each audited. False on a store error. */
bool iam_drop_invite_grants_on(call *c, txn *t, const char *name);
/* Counts the workspace-owner policies on the workspace itself, under the workspace's row
 * lock (PostgreSQL), so that a concurrent count waits for this transaction. */
int iam_count_owners(txn *t, const char *ws_slug, int *owners);
/* Turns the open invites for email into policies of user_id, inside t; *accepted counts them. */
int iam_accept_invites(txn *t, const char *email, const char *user_id, int *accepted);
/* Records one mutation in the audit trail, in the caller's transaction. before/after are
 * rendered resources (secrets already masked) or NULL. */
bool audit(call *c, txn *t, const char *action, const char *resource, json_t *before, json_t *after);
void h_roles_list(call *), h_users_list(call *), h_user_delete(call *), h_audit_list(call *);

#endif
