/* The route table: every endpoint of the API, one row each. The action column drives
 * authentication and authorisation centrally (router.c); a path with {ws} is checked
 * against the caller's workspaces before the handler runs. Adding an endpoint is adding
 * a row here. */
#include "api/engine.h"

/* Designated initialisers: the compiled fields are filled in by router_init. */
#define R(m, p, a, f) {.method = m, .pattern = p, .action = a, .fn = f}
/* An engine route: the handler is a standard method, the kind says of what. */
#define K(m, p, a, f, k) {.method = m, .pattern = p, .action = a, .fn = f, .kind = &k}
/* A route whose body is a whole tracking plan: the larger --max-plan-body applies. */
/* A route whose handler reads query parameters (for the OpenAPI document). */
#define RQ(m, p, a, f, q) {.method = m, .pattern = p, .action = a, .fn = f, .query = q}
#define PAGED "page_size page_token"
#define KP(m, p, a, f, k) {.method = m, .pattern = p, .action = a, .fn = f, .kind = &k, .body = BODY_PLAN}
#define SRC "/v1beta/workspaces/{ws}/sources"
#define DST SRC "/{src}/destinations"
#define TP "/v1beta/workspaces/{ws}/tracking-plans"
#define FN "/v1beta/workspaces/{ws}/functions"
/* A route whose body may carry function code (up to 1 MiB before JSON escaping). */
/* A file of the browser dashboard (docs/dashboard.md): public, outside the OpenAPI document. */
#define UI(p, f) {.method = "GET", .pattern = p, .action = ACT_PUBLIC, .fn = f, .asset = true}
#define RP(m, p, a, f) {.method = m, .pattern = p, .action = a, .fn = f, .body = BODY_PLAN}

route api_routes[] = {
    R("GET", "/healthz", ACT_PUBLIC, h_healthz),
    R("GET", "/readyz", ACT_PUBLIC, h_readyz),
    /* for operators (docs/operations.md): Prometheus metrics (--metrics off: 404) and the
     * OpenAPI document generated from this table */
    R("GET", "/metrics", ACT_PUBLIC, h_metrics),
    R("GET", "/v1beta/openapi.json", ACT_PUBLIC, h_openapi),
    /* the browser dashboard; its pages call the API below with the user's own token */
    UI("/", h_ui_root),
    UI("/ui", h_ui_asset),
    UI("/ui/{file}", h_ui_asset),

    /* §3 access tokens */
    R("POST", "/v1beta/access-tokens", ACT_TOKEN_CREATE, h_token_create),
    RQ("GET", "/v1beta/access-tokens", ACT_WRITE, h_token_list, PAGED),
    R("GET", "/v1beta/access-tokens/{n}", ACT_WRITE, h_token_get),
    R("DELETE", "/v1beta/access-tokens/{n}", ACT_WRITE, h_token_delete),

    /* §4, §5 catalogs */
    RQ("GET", "/v1beta/catalog/sources", ACT_READ, h_catsrc_list, PAGED),
    R("GET", "/v1beta/catalog/sources/{slug}", ACT_READ, h_catsrc_get),
    RQ("GET", "/v1beta/catalog/destinations", ACT_READ, h_catdst_list, PAGED),
    R("GET", "/v1beta/catalog/destinations/{slug}", ACT_READ, h_catdst_get),

    /* §6 workspaces */
    RQ("GET", "/v1beta/workspaces", ACT_READ, h_ws_list, PAGED),
    /* workspace export / import (beyond Segment, docs/export-import.md): they act on every
     * area of the workspace (whole_ws); include_secrets makes the export a write. Before
     * GET {ws}, whose {ws} would also take "w:export". */
    {.method = "GET", .pattern = "/v1beta/workspaces/{ws}:export", .action = ACT_READ, .fn = h_ws_export,
     .query = "include_secrets", .whole_ws = true, .elevate = "include_secrets"},
    {.method = "POST", .pattern = "/v1beta/workspaces/{ws}:import", .action = ACT_WRITE, .fn = h_ws_import,
     .query = "validate_only", .whole_ws = true, .body = BODY_PLAN},
    R("GET", "/v1beta/workspaces/{ws}", ACT_READ, h_ws_get),

    /* §7 sources and schema config */
    K("GET", SRC, ACT_READ, engine_list, kind_source),
    K("POST", SRC, ACT_WRITE, engine_create, kind_source),
    K("GET", SRC "/{src}", ACT_READ, engine_get, kind_source),
    K("DELETE", SRC "/{src}", ACT_WRITE, engine_delete, kind_source),
    K("GET", SRC "/{src}/schema-config", ACT_READ, engine_get, kind_schema_config),
    K("PATCH", SRC "/{src}/schema-config", ACT_WRITE, engine_update, kind_schema_config),
    /* the source debugger (beyond Segment): what the Tracking API stored for the source */
    RQ("GET", SRC "/{src}/events", ACT_READ, h_events_list, PAGED),
    R("GET", SRC "/{src}/events:summary", ACT_READ, h_events_summary),

    /* §8 destinations */
    K("GET", DST, ACT_READ, engine_list, kind_destination),
    K("POST", DST, ACT_WRITE, engine_create, kind_destination),
    K("GET", DST "/{dest}", ACT_READ, engine_get, kind_destination),
    K("PATCH", DST "/{dest}", ACT_WRITE, engine_update, kind_destination),
    K("DELETE", DST "/{dest}", ACT_WRITE, engine_delete, kind_destination),

    /* §11 Event Delivery Metrics (read-only; cloud-mode destinations) */
    R("GET", DST "/{dest}/metrics", ACT_READ, h_metrics_list),
    R("GET", DST "/{dest}/metrics/{metric}", ACT_READ, h_metrics_get),
    R("GET", DST "/{dest}/metrics:batchGet", ACT_READ, h_metrics_batch_get),
    R("GET", DST "/{dest}/metrics:getSummary", ACT_READ, h_metrics_summary),
    R("GET", "/v1beta/workspaces/{ws}/event-delivery-metrics:batchGetSummary", ACT_READ, h_metrics_batch_summary),

    /* §10 destination filters */
    K("GET", DST "/{dest}/filters", ACT_READ, engine_list, kind_filter),
    K("POST", DST "/{dest}/filters", ACT_WRITE, engine_create, kind_filter),
    K("GET", DST "/{dest}/filters/{filter}", ACT_READ, engine_get, kind_filter),
    K("PATCH", DST "/{dest}/filters/{filter}", ACT_WRITE, engine_update, kind_filter),
    K("DELETE", DST "/{dest}/filters/{filter}", ACT_WRITE, engine_delete, kind_filter),
    R("POST", "/v1beta/filters/preview", ACT_READ, h_filter_preview),
    /* §12 IAM, and the audit trail (beyond Segment) */
    RQ("GET", "/v1beta/workspaces/{ws}/roles", ACT_READ, h_roles_list, PAGED),
    K("GET", "/v1beta/workspaces/{ws}/roles/{role}/policies", ACT_READ, engine_list, kind_policy),
    K("POST", "/v1beta/workspaces/{ws}/roles/{role}/policies", ACT_WRITE, engine_create, kind_policy),
    K("DELETE", "/v1beta/workspaces/{ws}/roles/{role}/policies/{policy}", ACT_WRITE, engine_delete, kind_policy),
    K("GET", "/v1beta/workspaces/{ws}/invites", ACT_READ, engine_list, kind_invite),
    K("POST", "/v1beta/workspaces/{ws}/invites", ACT_WRITE, engine_create, kind_invite),
    K("DELETE", "/v1beta/workspaces/{ws}/invites/{invite}", ACT_WRITE, engine_delete, kind_invite),
    RQ("GET", "/v1beta/workspaces/{ws}/users", ACT_READ, h_users_list, PAGED),
    R("DELETE", "/v1beta/workspaces/{ws}/users/{user}", ACT_WRITE, h_user_delete),
    RQ("GET", "/v1beta/workspaces/{ws}/audit-events", ACT_READ, h_audit_list, PAGED " start_time end_time resource"),

    /* §9 tracking plans, source connections, and :validate (beyond Segment) */
    K("GET", TP, ACT_READ, engine_list, kind_tracking_plan),
    KP("POST", TP, ACT_WRITE, engine_create, kind_tracking_plan),
    K("GET", TP "/{plan}", ACT_READ, engine_get, kind_tracking_plan),
    KP("PUT", TP "/{plan}", ACT_WRITE, engine_update, kind_tracking_plan),
    KP("PATCH", TP "/{plan}", ACT_WRITE, engine_update, kind_tracking_plan),
    K("DELETE", TP "/{plan}", ACT_WRITE, engine_delete, kind_tracking_plan),
    /* events to check, at most 500 KB (h_plan_validate): the ordinary limit covers it */
    R("POST", TP "/{plan}:validate", ACT_READ, h_plan_validate),
    K("GET", TP "/{plan}/source-connections", ACT_READ, engine_list, kind_source_connection),
    R("POST", TP "/{plan}/source-connections", ACT_WRITE, h_conn_create),
    R("POST", TP "/{plan}/source-connections:batchCreateConnections", ACT_WRITE, h_conn_batch),
    K("DELETE", TP "/{plan}/source-connections/{src}", ACT_WRITE, engine_delete, kind_source_connection),
    R("POST", "/v1beta/filters:preview", ACT_READ, h_filter_preview),

    /* §13 functions; preview runs code but changes nothing: a read (spec §2, #57) */
    K("GET", FN, ACT_READ, engine_list, kind_function),
    KP("POST", FN, ACT_WRITE, engine_create, kind_function),
    RP("POST", FN "/preview", ACT_READ, h_fn_preview),
    K("GET", FN "/{fn}", ACT_READ, engine_get, kind_function),
    KP("PATCH", FN "/{fn}", ACT_WRITE, engine_update, kind_function),
    K("DELETE", FN "/{fn}", ACT_WRITE, engine_delete, kind_function),
    K("POST", FN "/{fn}/deploy", ACT_WRITE, h_fn_deploy, kind_function),
    K("GET", FN "/{fn}/is-latest-version", ACT_READ, h_fn_is_latest, kind_function),
};

const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
