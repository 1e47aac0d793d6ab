/* Tracking plans (spec §9), their source connections (§9.6) and the :validate verb.
 *
 * Rules are stored and returned verbatim (same keys, values and key order: clients compare
 * plans by equality). Every rule must be a valid JSON Schema (checked against the draft-04
 * or draft-07 meta-schema, its regexes and $refs); a bad rule is refused naming the event
 * and the JSON pointer of the fault. Validators are compiled once per plan version and
 * cached; validating an event allocates nothing unless it reports violations.
 *
 * Connections: a source belongs to at most one plan. Each connection is two rows in one
 * transaction — ".../tracking-plans/P/source-connections/S" (listed under the plan) and a
 * marker ".../sources/S/tracking-plan" whose primary key makes a second plan impossible and
 * which disappears with the source's subtree. */
#include "api/engine.h"
#include "api/tp_rules.h"
#include "schema/schema.h"
#include "util/json.h"
#include "util/jview.h"
#include "util/util.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_MAX_EVENTS 10000

static const char *const plan_fields[] = {"name", "display_name", "rules", "create_time", "update_time", NULL};
static const char *const plan_paths[] = {"display_name", "rules", "rules.events", "rules.global",
                                         "rules.identify", "rules.group", NULL};

static schema_meta_t *meta;
static pthread_once_t meta_once = PTHREAD_ONCE_INIT;
static char meta_dir[1024] = "data/metaschemas";

void tracking_plans_init(const char *catalog_dir)
{
    snprintf(meta_dir, sizeof meta_dir, "%s/../metaschemas", catalog_dir);
}

static void meta_load(void)
{
    schema_error_t err;
    meta = schema_meta_load(meta_dir, &err);
    if (!meta)
        log_error("tracking plans: cannot load meta-schemas from %s: %s", meta_dir, err.message);
}

static void __attribute__((destructor)) meta_unload(void) { schema_meta_free(meta); }

static bool check_rule(call *c, json_t *rule, const char *where)
{
    if (!json_is_object(rule))
        return fail(c, 400, CODE_INVALID, "%s must be a JSON Schema object", where);
    pthread_once(&meta_once, meta_load);
    if (!meta)
        return fail(c, 500, CODE_INTERNAL, "meta-schemas unavailable");
    schema_error_t err;
    if (!schema_meta_check(meta, rule, &err))
        return fail(c, 400, CODE_INVALID, "%s: invalid JSON Schema at '%s': %s", where, err.pointer, err.message);
    return true;
}

static bool check_rules(call *c, json_t *rules)
{
    if (!json_is_object(rules))
        return fail(c, 400, CODE_INVALID, "tracking_plan.rules must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(rules, k, v) {
        if (!strcmp(k, "global") || !strcmp(k, "identify") || !strcmp(k, "group")) {
            char where[64];
            snprintf(where, sizeof where, "rules.%s", k);
            if (!check_rule(c, v, where))
                return false;
        } else if (!strcmp(k, "identify_traits") || !strcmp(k, "group_traits")) {
            if (!json_is_array(v))
                return fail(c, 400, CODE_INVALID, "rules.%s must be a list", k);
        } else if (strcmp(k, "events")) {
            return fail(c, 400, CODE_INVALID, "unknown field '%s' in tracking_plan.rules", k);
        }
    }
    json_t *events = json_object_get(rules, "events");
    if (events && !json_is_array(events))
        return fail(c, 400, CODE_INVALID, "rules.events must be a list");
    if (json_array_size(events) > PLAN_MAX_EVENTS)
        return fail(c, 400, CODE_INVALID, "rules.events: at most %d event rules", PLAN_MAX_EVENTS);
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!json_is_object(e) || !name || !*name)
            return fail(c, 400, CODE_INVALID, "rules.events[%zu].name is required", i);
        json_object_foreach(e, k, v) if (strcmp(k, "name") && strcmp(k, "description") && strcmp(k, "version") &&
                                         strcmp(k, "rules"))
            return fail(c, 400, CODE_INVALID, "unknown field '%s' in rules.events[%zu]", k, i);
        json_t *ver = json_object_get(e, "version");
        if (ver && (!json_is_integer(ver) || json_integer_value(ver) < 1))
            return fail(c, 400, CODE_INVALID, "rules.events[%zu].version must be a positive integer", i);
        json_t *d = json_object_get(e, "description");
        if (d && !json_is_string(d))
            return fail(c, 400, CODE_INVALID, "rules.events[%zu].description must be a string", i);
        char where[512];
        snprintf(where, sizeof where, "rules.events[%zu] (\"%.200s\")", i, name);
        json_t *rule = json_object_get(e, "rules");
        if (rule && !check_rule(c, rule, where))
            return false;
        /* (name, version) is unique: versions of one event may coexist. */
        for (size_t j = 0; j < i; j++) {
            json_t *o = json_array_get(events, j);
            if (!strcmp(json_string_value(json_object_get(o, "name")), name) &&
                json_integer_value(json_object_get(o, "version")) == json_integer_value(ver))
                return fail(c, 400, CODE_INVALID, "%s: duplicate event name and version", where);
        }
    }
    return true;
}

static bool plan_create(call *c, json_t *obj, const char *name, json_t *body)
{
    (void)name;
    json_t *dn = json_object_get(obj, "display_name");
    json_t *rules = json_object_get(obj, "rules");
    json_object_set(body, "display_name", dn ? dn : json_null());
    if (rules)
        json_object_set(body, "rules", rules);
    else
        json_object_set_new(body, "rules", json_pack("{s:[], s:[], s:[]}", "events", "identify_traits", "group_traits"));
    (void)c;
    return true;
}

static bool plan_validate(call *c, json_t *body, const char *name)
{
    (void)name;
    json_t *dn = json_object_get(body, "display_name");
    if (!json_is_string(dn) || !json_string_length(dn) || json_string_length(dn) > 200)
        return fail(c, 400, CODE_INVALID, "tracking_plan.display_name is required (1 to 200 bytes)");
    return check_rules(c, json_object_get(body, "rules"));
}

static bool plan_update(call *c, json_t *body, const char *path, json_t *value, const char *name)
{
    (void)c, (void)name;
    if (!strcmp(path, "display_name")) {
        json_object_set_new(body, path, value ? json_incref(value) : json_string(""));
        return true;
    }
    if (!strcmp(path, "rules")) {
        json_object_set_new(body, "rules", value ? json_incref(value) : json_pack("{s:[]}", "events"));
        return true;
    }
    /* rules.<part> replaces only that part. */
    const char *part = path + 6;
    json_t *rules = json_object_get(body, "rules");
    if (!json_is_object(rules)) {
        rules = json_object();
        json_object_set_new(body, "rules", rules);
    }
    if (value)
        json_object_set(rules, part, value);
    else if (!strcmp(part, "events"))
        json_object_set_new(rules, part, json_array());
    else
        json_object_del(rules, part); /* an unset global/identify/group rule is omitted */
    return true;
}

static json_t *plan_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set(o, "display_name", json_object_get(body, "display_name"));
    json_t *rules = json_object_get(body, "rules");
    json_object_set(o, "rules", rules ? rules : json_object());
    json_object_set_new(o, "create_time", json_string(r->create_time));
    json_object_set_new(o, "update_time", json_string(r->update_time));
    return o;
}

static bool plan_before_delete(call *c, txn *t, const res_row *r);

/* Exported as created: its display name and rules (no secrets in a plan). */
static json_t *plan_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)c, (void)r, (void)secrets;
    json_t *rules = json_object_get(body, "rules"), *dn = json_object_get(body, "display_name");
    return json_pack("{s:O, s:o}", "display_name", dn ? dn : json_null(), "rules",
                     rules ? json_incref(rules) : json_object());
}

const kind kind_tracking_plan = {
    .name = "tracking_plan",
    .collection = "tracking-plans",
    .list_key = "tracking_plans",
    .id_mode = ID_GENERATED,
    .id_prefix = "rs_",
    .fields = plan_fields,
    .mask_paths = plan_paths,
    .create = plan_create,
    .update = plan_update,
    .validate = plan_validate,
    .render = plan_render,
    .before_delete = plan_before_delete,
    .export = plan_export,
};

/* ---- compiled plans ---------------------------------------------------------------- */

typedef struct compiled_event {
    const char *name; /* borrowed from doc */
    json_int_t version;
    schema_t *rule;   /* NULL: no rule, anything goes */
} compiled_event;

typedef struct compiled_plan {
    char *name;
    long long version;
    int refs;
    json_t *doc;      /* the stored body the schemas point into */
    schema_t *global, *identify, *group;
    bool has_identify, has_group;
    compiled_event *events;
    size_t nevents;
} compiled_plan;

#define PLAN_CACHE 32
static compiled_plan *plan_cache[PLAN_CACHE];
static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;

static void plan_release(compiled_plan *p)
{
    pthread_mutex_lock(&plan_mu);
    int left = --p->refs;
    pthread_mutex_unlock(&plan_mu);
    if (left)
        return;
    schema_free(p->global);
    schema_free(p->identify);
    schema_free(p->group);
    for (size_t i = 0; i < p->nevents; i++)
        schema_free(p->events[i].rule);
    free(p->events);
    json_decref(p->doc);
    free(p->name);
    free(p);
}

static void __attribute__((destructor)) plan_cache_free(void)
{
    for (int i = 0; i < PLAN_CACHE; i++)
        if (plan_cache[i])
            plan_release(plan_cache[i]), plan_cache[i] = NULL;
}

schema_t *tp_compile_rule(json_t *rule, schema_error_t *err)
{
    if (err)
        err->pointer[0] = err->message[0] = '\0';
    if (!json_is_object(rule))
        return NULL;
    pthread_once(&meta_once, meta_load);
    /* Known formats assert, as Segment's validator (ajv with ajv-formats) does: a rule's
     * "format": "email" is a check, not an annotation (delivery.md §2.4: Invalid Value). */
    schema_options_t o = {.flags = SCHEMA_OPT_FORMAT_ASSERT,
                          .loader = schema_meta_loader,
                          .loader_ctx = meta};
    return schema_compile(rule, &o, err);
}

static compiled_plan *plan_compiled(const res_row *r)
{
    pthread_mutex_lock(&plan_mu);
    for (int i = 0; i < PLAN_CACHE; i++) {
        compiled_plan *p = plan_cache[i];
        if (p && !strcmp(p->name, r->name) && p->version == r->version) {
            p->refs++;
            pthread_mutex_unlock(&plan_mu);
            return p;
        }
    }
    pthread_mutex_unlock(&plan_mu);

    compiled_plan *p = calloc(1, sizeof *p);
    p->name = strdup(r->name);
    p->version = r->version;
    p->refs = 2; /* the cache's and the caller's */
    p->doc = json_loads(r->body, 0, NULL);
    json_t *rules = json_object_get(p->doc, "rules");
    p->global = tp_compile_rule(json_object_get(rules, "global"), NULL);
    p->has_identify = json_is_object(json_object_get(rules, "identify"));
    p->has_group = json_is_object(json_object_get(rules, "group"));
    p->identify = tp_compile_rule(json_object_get(rules, "identify"), NULL);
    p->group = tp_compile_rule(json_object_get(rules, "group"), NULL);
    json_t *events = json_object_get(rules, "events");
    p->nevents = json_array_size(events);
    p->events = calloc(p->nevents ? p->nevents : 1, sizeof *p->events);
    for (size_t i = 0; i < p->nevents; i++) {
        json_t *e = json_array_get(events, i);
        p->events[i].name = json_string_value(json_object_get(e, "name"));
        json_t *v = json_object_get(e, "version");
        p->events[i].version = v ? json_integer_value(v) : 1;
        p->events[i].rule = tp_compile_rule(json_object_get(e, "rules"), NULL);
    }
    pthread_mutex_lock(&plan_mu);
    /* Replace the stale version of this plan, else the slot after the last one used. */
    static int next;
    int slot = -1;
    for (int i = 0; i < PLAN_CACHE && slot < 0; i++)
        if (plan_cache[i] && !strcmp(plan_cache[i]->name, r->name))
            slot = i;
    if (slot < 0)
        slot = next++ % PLAN_CACHE;
    compiled_plan *old = plan_cache[slot];
    plan_cache[slot] = p;
    pthread_mutex_unlock(&plan_mu);
    if (old)
        plan_release(old);
    return p;
}

/* delivery.md §2.2: the events[] entry with this exact name; the version named by
 * context.protocols.event_version, else the oldest. */
static const compiled_event *event_rule(const compiled_plan *p, const char *name, const json_t *ev)
{
    json_t *want = json_object_get(json_object_get(json_object_get(ev, "context"), "protocols"), "event_version");
    const compiled_event *oldest = NULL;
    for (size_t i = 0; i < p->nevents; i++) {
        const compiled_event *e = &p->events[i];
        if (!e->name || strcmp(e->name, name))
            continue;
        if (json_is_integer(want) && json_integer_value(want) == e->version)
            return e;
        if (!oldest || e->version < oldest->version)
            oldest = e;
    }
    return oldest;
}

/* `view` is the event's (NULL if it could not be built: schema_validate then reports
 * why). One view serves the event's rule and the global rule. */
static void add_violations(json_t *list, const schema_t *s, const json_t *ev, const jview_t *view)
{
    if (!s)
        return;
    schema_result_t res = {.limit = 200};
    if (!(view ? schema_validate_view(s, view, &res) : schema_validate(s, ev, &res))) {
        json_t *arr = schema_result_json(&res);
        json_array_extend(list, arr);
        json_decref(arr);
    }
    schema_result_free(&res);
}

static json_t *check_event(const compiled_plan *p, size_t index, const json_t *ev,
                           const jview_t *view)
{
    json_t *out = json_object();
    json_t *violations = json_array();
    json_object_set_new(out, "index", json_integer((json_int_t)index));
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev)) {
        json_object_set_new(out, "event", json_null());
        json_object_set_new(out, "planned", json_false());
        json_array_append_new(violations, json_pack("{s:s, s:s, s:s, s:s}", "type", "Schema-Mismatch", "path", "",
                                                    "keyword", "type", "message", "an event must be a JSON object"));
    } else if (!type || !strcmp(type, "track")) {
        const char *name = json_string_value(json_object_get(ev, "event"));
        json_object_set_new(out, "event", name ? json_string(name) : json_null());
        const compiled_event *e = name ? event_rule(p, name, ev) : NULL;
        json_object_set_new(out, "planned", json_boolean(e != NULL));
        if (!e)
            json_array_append_new(violations,
                                  json_pack("{s:s, s:s, s:s, s:s+}", "type", "Unplanned-Event", "path", "/event",
                                            "keyword", "events", "message", "event is not in the tracking plan: ",
                                            name ? name : "(no event name)"));
        else
            add_violations(violations, e->rule, ev, view);
        add_violations(violations, p->global, ev, view);
    } else if (!strcmp(type, "identify") || !strcmp(type, "group")) {
        bool is_id = type[0] == 'i';
        json_object_set_new(out, "event", json_string(type));
        json_object_set_new(out, "planned", json_boolean(is_id ? p->has_identify : p->has_group));
        add_violations(violations, is_id ? p->identify : p->group, ev, view);
        add_violations(violations, p->global, ev, view);
    } else { /* page, screen, alias: never checked (delivery.md §2.1) */
        json_object_set_new(out, "event", json_string(type));
        json_object_set_new(out, "planned", json_true());
    }
    json_object_set_new(out, "valid", json_boolean(json_array_size(violations) == 0));
    json_object_set_new(out, "violations", violations);
    return out;
}

static char *plan_name_of(call *c)
{
    buf b = {0};
    buf_printf(&b, "workspaces/%s/tracking-plans/%s", c->ws.slug, call_param(c, "plan"));
    return buf_steal(&b);
}

static int load_plan(call *c, txn *t, const char *name, res_row *r)
{
    /* Writers hold the plan (FOR SHARE) so a concurrent delete of it waits or wins cleanly. */
    int rc = t->in_tx ? store_res_get_locked(t, name, r, true) : store_res_get(t, name, r);
    if (rc == ST_OK && strcmp(r->kind, "tracking_plan"))
        rc = ST_NOT_FOUND, res_row_clear(r);
    if (rc != ST_OK)
        fail_store(c, rc, "tracking plan");
    return rc;
}

/* POST .../tracking-plans/{plan}:validate — beyond Segment: check events against a plan. */
void h_plan_validate(call *c)
{
    if (c->req->body.len > 500 * 1024)
        return (void)fail(c, 400, CODE_INVALID, "events: at most 500 KB per request");
    static const char *const top[] = {"events", NULL};
    json_t *body = call_body(c);
    if (!body || !check_fields(c, body, NULL, top))
        return;
    json_t *events = json_object_get(body, "events");
    if (!json_is_array(events))
        return (void)fail(c, 400, CODE_INVALID, "events must be a list of events");
    char *name = plan_name_of(c);
    txn t;
    res_row r = {0};
    store_begin(c->api->st, &t, false);
    int rc = load_plan(c, &t, name, &r);
    store_end(&t);
    free(name);
    if (rc != ST_OK)
        return;
    compiled_plan *p = plan_compiled(&r);
    res_row_clear(&r);
    json_t *results = json_array();
    jview_doc_t *views = jview_doc_new();
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const jview_t *view = views ? jview_add(views, ev) : NULL;
        json_array_append_new(results, check_event(p, i, ev, view));
        if (views)
            jview_doc_reset(views);
    }
    jview_doc_free(views);
    plan_release(p);
    reply(c, json_pack("{s:o}", "results", results));
}

/* ---- source connections ------------------------------------------------------------ */

static json_t *conn_json(const char *source_name, const char *plan_id)
{
    return json_pack("{s:s, s:s}", "source_name", source_name, "tracking_plan_id", plan_id);
}

/* Connects one source inside t. Returns the connection object or NULL after fail(). */
static json_t *connect_source(call *c, txn *t, const res_row *plan, json_t *sv)
{
    const char *sn = json_string_value(sv);
    if (!sn || !*sn) {
        fail(c, 400, CODE_INVALID, "source_name must be a source name");
        return NULL;
    }
    char prefix[160];
    snprintf(prefix, sizeof prefix, "workspaces/%s/sources/", c->ws.slug);
    const char *slug = strchr(sn, '/') ? (!strncmp(sn, prefix, strlen(prefix)) ? sn + strlen(prefix) : NULL) : sn;
    if (!slug || !valid_slug(slug)) {
        fail(c, 400, CODE_INVALID, "source_name '%s' must be %s<slug>", sn, prefix);
        return NULL;
    }
    buf src = {0}, link = {0}, conn = {0};
    buf_printf(&src, "%s%s", prefix, slug);
    buf_printf(&link, "%s/tracking-plan", src.data);
    buf_printf(&conn, "%s/source-connections/%s", plan->name, slug);
    res_row s = {0};
    json_t *out = NULL;
    int rc = store_res_get_locked(t, src.data, &s, true); /* against a concurrent source delete */
    if (rc == ST_OK && strcmp(s.kind, "source"))
        rc = ST_NOT_FOUND;
    if (rc != ST_OK) {
        fail_store(c, rc, "source");
        goto out;
    }
    json_t *lb = json_pack("{s:s}", "tracking_plan", plan->name);
    json_t *cb = json_pack("{s:s}", "source_name", src.data);
    res_row l = {.name = link.data, .workspace = c->ws.slug, .parent = src.data, .kind = "tp_link",
                 .id = "tracking-plan", .body = json_to_string(lb), .version = 1};
    res_row k = {.name = conn.data, .workspace = c->ws.slug, .parent = plan->name, .kind = "source_connection",
                 .id = (char *)slug, .body = json_to_string(cb), .version = 1};
    json_decref(lb);
    json_decref(cb);
    rfc3339(now_ms(), l.create_time);
    memcpy(l.update_time, l.create_time, sizeof l.create_time);
    memcpy(k.create_time, l.create_time, sizeof l.create_time);
    memcpy(k.update_time, l.create_time, sizeof l.create_time);
    rc = store_res_insert(t, &l);
    if (rc == ST_OK)
        rc = store_res_insert(t, &k);
    free(l.body);
    free(k.body);
    if (rc == ST_CONFLICT)
        fail(c, 409, CODE_EXISTS, "source '%s' is already connected to a tracking plan", slug);
    else if (rc != ST_OK)
        fail_store(c, rc, "connection");
    else {
        out = conn_json(src.data, strrchr(plan->name, '/') + 1);
        if (!audit(c, t, "source_connection.create", conn.data, NULL, out)) {
            json_decref(out);
            out = NULL;
        }
    }
out:
    res_row_clear(&s);
    buf_free(&src);
    buf_free(&link);
    buf_free(&conn);
    return out;
}

/* Shared by single and batch create: one transaction, all or nothing. */
static void conn_create(call *c, bool batch)
{
    static const char *const one[] = {"source_name", NULL};
    static const char *const many[] = {"source_names", NULL};
    json_t *body = call_body(c);
    if (!body || !check_fields(c, body, NULL, batch ? many : one))
        return;
    json_t *names = batch ? json_object_get(body, "source_names") : NULL;
    if (batch && (!json_is_array(names) || !json_array_size(names) || json_array_size(names) > 1000))
        return (void)fail(c, 400, CODE_INVALID, "source_names must list 1 to 1000 source names");
    char *pname = plan_name_of(c);
    txn t;
    res_row plan = {0};
    json_t *conns = json_array();
    if (store_begin(c->api->st, &t, true) != ST_OK) {
        fail_store(c, ST_ERROR, "connection");
        goto out;
    }
    if (load_plan(c, &t, pname, &plan) != ST_OK)
        goto rollback;
    if (batch) {
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v) {
            json_t *cj = connect_source(c, &t, &plan, v);
            if (!cj)
                goto rollback;
            json_array_append_new(conns, cj);
        }
    } else {
        json_t *cj = connect_source(c, &t, &plan, json_object_get(body, "source_name"));
        if (!cj)
            goto rollback;
        json_array_append_new(conns, cj);
    }
    if (store_commit(&t) != ST_OK) {
        fail_store(c, ST_ERROR, "connection");
        goto out;
    }
    reply(c, batch ? json_pack("{s:O}", "connections", conns) : json_incref(json_array_get(conns, 0)));
    goto out;
rollback:
    store_rollback(&t);
out:
    json_decref(conns);
    res_row_clear(&plan);
    free(pname);
}

void h_conn_create(call *c) { conn_create(c, false); }
void h_conn_batch(call *c) { conn_create(c, true); }

/* Listing and deleting connections are the engine's standard methods on this kind; only
 * creating differs from the engine's shape ({"source_name"} and the batch verb). */
static json_t *conn_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    const char *pid = strstr(r->parent, "/tracking-plans/");
    return conn_json(json_string_value(json_object_get(body, "source_name")) ?: "", pid ? pid + 16 : "");
}

/* The source's marker goes with its connection. */
static bool conn_before_delete(call *c, txn *t, const res_row *r)
{
    json_t *body = json_loads(r->body, 0, NULL);
    const char *src = json_string_value(json_object_get(body, "source_name"));
    buf link = {0};
    buf_printf(&link, "%s/tracking-plan", src ? src : "");
    int rc = store_res_delete(t, link.data);
    buf_free(&link);
    json_decref(body);
    return rc == ST_OK || rc == ST_NOT_FOUND || fail_store(c, rc, "connection");
}

bool tp_connect(call *c, txn *t, const char *plan_name, const char *source_name)
{
    res_row plan = {0};
    bool ok = false;
    if (load_plan(c, t, plan_name, &plan) == ST_OK) {
        json_t *sv = json_string(source_name);
        json_t *cj = connect_source(c, t, &plan, sv);
        ok = cj != NULL;
        json_decref(cj);
        json_decref(sv);
    }
    res_row_clear(&plan);
    return ok;
}

/* A connection is all name: ".../tracking-plans/P/source-connections/S". */
static json_t *conn_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)c, (void)r, (void)body, (void)secrets;
    return json_object();
}

static bool conn_import_create(call *c, txn *t, const char *name, json_t *obj)
{
    (void)obj;
    const char *cut = strstr(name, "/source-connections/");
    if (!cut)
        return fail(c, 400, CODE_INVALID, "%s is not a source connection", name);
    char *plan = strndup(name, (size_t)(cut - name));
    bool ok = tp_connect(c, t, plan, cut + 20);
    free(plan);
    return ok;
}

static const char *const conn_fields[] = {"source_name", NULL};
static const char *const conn_paths[] = {NULL};

const kind kind_source_connection = {
    .name = "source_connection",
    .collection = "source-connections",
    .list_key = "connections",
    .id_mode = ID_FROM_NAME,
    .fields = conn_fields,
    .mask_paths = conn_paths,
    .render = conn_render,
    .before_delete = conn_before_delete,
    .export = conn_export,
    .import_create = conn_import_create,
};

/* ---- cascades across the two trees ------------------------------------------------- */

static int unlink_one(void *ctx, res_row *r)
{
    txn *t = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    const char *src = json_string_value(json_object_get(body, "source_name"));
    if (src) {
        buf link = {0};
        buf_printf(&link, "%s/tracking-plan", src);
        store_res_delete(t, link.data);
        buf_free(&link);
    }
    json_decref(body);
    return 0;
}

/* Deleting a plan removes the sources' markers; its connection rows go with its subtree. */
static bool plan_before_delete(call *c, txn *t, const res_row *r)
{
    int rc = store_res_list(t, r->name, "source_connection", "", 1 << 30, unlink_one, t);
    return rc == ST_OK || fail_store(c, rc, "connections");
}

/* Deleting a source removes its connection row under the plan (its marker goes with the
 * source's subtree). */
bool tp_source_deleted(call *c, txn *t, const res_row *source)
{
    buf link = {0};
    buf_printf(&link, "%s/tracking-plan", source->name);
    res_row l = {0};
    int rc = store_res_get(t, link.data, &l);
    buf_free(&link);
    if (rc == ST_NOT_FOUND)
        return true;
    if (rc != ST_OK)
        return fail_store(c, rc, "connection");
    json_t *body = json_loads(l.body, 0, NULL);
    const char *plan = json_string_value(json_object_get(body, "tracking_plan"));
    buf conn = {0};
    buf_printf(&conn, "%s/source-connections/%s", plan ? plan : "", strrchr(source->name, '/') + 1);
    rc = store_res_delete(t, conn.data);
    buf_free(&conn);
    json_decref(body);
    res_row_clear(&l);
    return rc == ST_OK || rc == ST_NOT_FOUND || fail_store(c, rc, "connection");
}
