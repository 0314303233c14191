/*
 * ngx_http_segedge_module: exposes the visitor's segments, looked up in the
 * LMDB snapshot published by segsync, as nginx variables.
 *
 * This file only translates between nginx and segcore. Every call into
 * segcore is wrapped so that no C++ exception reaches nginx: on any failure
 * the request is served unpersonalised and one rate-limited line is logged.
 */

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <exception>
#include <new>
#include <string_view>

#include "segcore/cookie.h"
#include "segcore/schema.h"
#include "segcore/store.h"

static_assert(__cplusplus >= 201703L, "segedge needs C++17");

/* A Cookie header this large is abuse or a broken client, not a visitor. */
#define NGX_HTTP_SEGEDGE_MAX_COOKIE_BYTES  16384

/* Fail-open causes, each logged at most once per interval per worker. */
enum ngx_http_segedge_failure_e {
    NGX_HTTP_SEGEDGE_FAIL_DB = 0,
    NGX_HTTP_SEGEDGE_FAIL_LOOKUP,
    NGX_HTTP_SEGEDGE_FAIL_COOKIE,
    NGX_HTTP_SEGEDGE_FAIL_LAST
};

#define NGX_HTTP_SEGEDGE_LOG_INTERVAL  60


typedef struct {
    ngx_str_t                  db;
    ngx_msec_t                 check_interval;
    segcore::Store            *store;          /* per worker */
    std::uint64_t              generation;     /* last one logged */
} ngx_http_segedge_main_conf_t;


typedef struct {
    ngx_flag_t                 enable;
    ngx_str_t                  cookie;
} ngx_http_segedge_loc_conf_t;


typedef struct {
    ngx_str_t                  segments;
    ngx_str_t                  visitor;
    ngx_str_t                  generation;
} ngx_http_segedge_ctx_t;


static ngx_http_segedge_ctx_t *ngx_http_segedge_get_ctx(ngx_http_request_t *r);
static void ngx_http_segedge_resolve(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx);
static ngx_int_t ngx_http_segedge_find_visitor(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *visitor);
static ngx_int_t ngx_http_segedge_lookup(ngx_http_request_t *r,
    segcore::Snapshot *snapshot, ngx_http_segedge_ctx_t *ctx);
static void ngx_http_segedge_refresh(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf);
static void ngx_http_segedge_fail_open(ngx_log_t *log, ngx_uint_t level,
    ngx_http_segedge_failure_e cause, const char *what);
static void ngx_http_segedge_ctx_marker(void *data);
static ngx_int_t ngx_http_segedge_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_segedge_add_variables(ngx_conf_t *cf);
static void *ngx_http_segedge_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_segedge_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_segedge_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_segedge_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_segedge_db(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_segedge_check_interval(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_segedge_cookie_name(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_segedge_init_process(ngx_cycle_t *cycle);
static void ngx_http_segedge_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_segedge_cookie_name_p =
    ngx_http_segedge_cookie_name;


static ngx_command_t  ngx_http_segedge_commands[] = {

    { ngx_string("segedge_db"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_segedge_db,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("segedge_db_check_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_segedge_check_interval,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_segedge_main_conf_t, check_interval),
      NULL },

    { ngx_string("segedge"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, enable),
      NULL },

    { ngx_string("segedge_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, cookie),
      &ngx_http_segedge_cookie_name_p },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_segedge_module_ctx = {
    ngx_http_segedge_add_variables,        /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_segedge_create_main_conf,     /* create main configuration */
    ngx_http_segedge_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_segedge_create_loc_conf,      /* create location configuration */
    ngx_http_segedge_merge_loc_conf        /* merge location configuration */
};


extern "C" {

ngx_module_t  ngx_http_segedge_module = {
    NGX_MODULE_V1,
    &ngx_http_segedge_module_ctx,          /* module context */
    ngx_http_segedge_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_segedge_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_segedge_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};

}


static ngx_http_variable_t  ngx_http_segedge_vars[] = {

    { ngx_string("segedge_segments"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, segments),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_visitor"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, visitor),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_generation"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, generation),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_segedge_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *value;
    ngx_http_segedge_ctx_t  *ctx;

    ctx = ngx_http_segedge_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    value = (ngx_str_t *) ((char *) ctx + data);

    v->len = value->len;
    v->data = value->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The one place a request's segments are resolved, shared by every variable
 * (and later by the filters). The result belongs to the main request and
 * survives internal redirects, which wipe r->ctx: like realip, the ctx is
 * found again through its pool cleanup.
 */

static ngx_http_segedge_ctx_t *
ngx_http_segedge_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_segedge_ctx_t       *ctx;
    ngx_http_segedge_loc_conf_t  *slcf;

    ctx = (ngx_http_segedge_ctx_t *)
              ngx_http_get_module_ctx(r->main, ngx_http_segedge_module);
    if (ctx) {
        return ctx;
    }

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_segedge_ctx_marker) {
            ctx = (ngx_http_segedge_ctx_t *) cln->data;
            ngx_http_set_ctx(r->main, ctx, ngx_http_segedge_module);
            return ctx;
        }
    }

    slcf = (ngx_http_segedge_loc_conf_t *)
               ngx_http_get_module_loc_conf(r, ngx_http_segedge_module);
    if (!slcf->enable) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->main->pool, sizeof(ngx_http_segedge_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = (ngx_http_segedge_ctx_t *) cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_segedge_ctx_t));
    cln->handler = ngx_http_segedge_ctx_marker;

    ngx_http_segedge_resolve(r, ctx);

    ngx_http_set_ctx(r->main, ctx, ngx_http_segedge_module);

    return ctx;
}


static void
ngx_http_segedge_ctx_marker(void *data)
{
    /* nothing to free: the handler only tags the ctx for the lookup above */
}


static void
ngx_http_segedge_resolve(ngx_http_request_t *r, ngx_http_segedge_ctx_t *ctx)
{
    segcore::Snapshot             *snapshot;
    ngx_http_segedge_loc_conf_t   *slcf;
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_get_module_main_conf(r, ngx_http_segedge_module);
    slcf = (ngx_http_segedge_loc_conf_t *)
               ngx_http_get_module_loc_conf(r, ngx_http_segedge_module);

    if (smcf->store == NULL) {
        return;
    }

    ngx_http_segedge_refresh(r, smcf);

    if (ngx_http_segedge_find_visitor(r, &slcf->cookie, &ctx->visitor)
        != NGX_OK)
    {
        return;
    }

    snapshot = smcf->store->current();
    if (snapshot == NULL) {
        return;
    }

    (void) ngx_http_segedge_lookup(r, snapshot, ctx);
}


static void
ngx_http_segedge_refresh(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf)
{
    segcore::Snapshot  *snapshot;

    try {
        std::string error = smcf->store->refresh(ngx_current_msec);

        if (!error.empty()) {
            ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                       NGX_HTTP_SEGEDGE_FAIL_DB,
                                       error.c_str());
        }

    } catch (const std::exception &e) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_DB, e.what());
    } catch (...) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_DB, "unknown error");
    }

    snapshot = smcf->store->current();

    if (snapshot && snapshot->meta().generation != smcf->generation) {
        smcf->generation = snapshot->meta().generation;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "segedge: using snapshot generation %uL",
                      (uint64_t) smcf->generation);
    }
}


/*
 * Sets *visitor to the first well-formed id in the cookie named *name, or
 * leaves it empty. NGX_DECLINED means the request must not be personalised.
 */

static ngx_int_t
ngx_http_segedge_find_visitor(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *visitor)
{
    size_t             total;
    ngx_uint_t         i;
    ngx_table_elt_t  **cookies;

    cookies = (ngx_table_elt_t **) r->main->headers_in.cookies.elts;

    total = 0;
    for (i = 0; i < r->main->headers_in.cookies.nelts; i++) {
        total += cookies[i]->value.len;
    }

    /* client-caused, so logged at "info" like nginx's own client errors */

    if (total > NGX_HTTP_SEGEDGE_MAX_COOKIE_BYTES) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_INFO,
                                   NGX_HTTP_SEGEDGE_FAIL_COOKIE,
                                   "Cookie headers over 16 KB");
        return NGX_DECLINED;
    }

    std::string_view wanted((const char *) name->data, name->len);

    for (i = 0; i < r->main->headers_in.cookies.nelts; i++) {
        std::string_view header((const char *) cookies[i]->value.data,
                                cookies[i]->value.len);

        auto value = segcore::find_cookie(header, wanted);
        if (!value) {
            continue;
        }

        if (!segcore::is_visitor_id(*value)) {
            ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_INFO,
                                       NGX_HTTP_SEGEDGE_FAIL_COOKIE,
                                       "malformed visitor cookie");
            break;
        }

        visitor->data = (u_char *) value->data();
        visitor->len = value->size();
        break;
    }

    return NGX_OK;
}


/*
 * The segments and the generation come from one read transaction, so
 * $segedge_generation names the batch the segments were read from, also
 * when segsync applies deltas in place.
 */

static ngx_int_t
ngx_http_segedge_lookup(ngx_http_request_t *r, segcore::Snapshot *snapshot,
    ngx_http_segedge_ctx_t *ctx)
{
    u_char                       *p;
    size_t                        len;
    std::size_t                   i, n;
    std::uint32_t                 ids[segcore::schema::kMaxSegmentsPerProfile];
    segcore::LookupResult         found;
    const segcore::schema::SegmentDef  *def;

    try {
        if (ctx->visitor.len) {
            found = snapshot->lookup(segcore::schema::VisitorKind::anonymous,
                                     std::string_view(
                                         (const char *) ctx->visitor.data,
                                         ctx->visitor.len),
                                     ids,
                                     segcore::schema::kMaxSegmentsPerProfile);

        } else {
            found.generation = snapshot->generation();
        }

    } catch (const std::exception &e) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_LOOKUP, e.what());
        return NGX_ERROR;
    } catch (...) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_LOOKUP,
                                   "unknown error");
        return NGX_ERROR;
    }

    ctx->generation.data = (u_char *) ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (ctx->generation.data == NULL) {
        return NGX_ERROR;
    }

    ctx->generation.len = ngx_sprintf(ctx->generation.data, "%uL",
                                      (uint64_t) found.generation)
                          - ctx->generation.data;

    n = found.segments;

    len = 0;
    for (i = 0; i < n; i++) {
        def = snapshot->segment(ids[i]);
        if (def) {
            len += def->name.size() + 1;
        }
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = (u_char *) ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->segments.data = p;

    for (i = 0; i < n; i++) {
        def = snapshot->segment(ids[i]);
        if (def == NULL) {
            continue;
        }

        if (p != ctx->segments.data) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, def->name.data(), def->name.size());
    }

    ctx->segments.len = p - ctx->segments.data;

    return NGX_OK;
}


static void
ngx_http_segedge_fail_open(ngx_log_t *log, ngx_uint_t level,
    ngx_http_segedge_failure_e cause, const char *what)
{
    static time_t  logged_at[NGX_HTTP_SEGEDGE_FAIL_LAST];

    if (logged_at[cause]
        && ngx_time() - logged_at[cause] < NGX_HTTP_SEGEDGE_LOG_INTERVAL)
    {
        return;
    }

    logged_at[cause] = ngx_time();

    ngx_log_error(level, log, 0,
                  "segedge: %s; serving unpersonalised responses "
                  "(logged at most once a minute)", what);
}


static ngx_int_t
ngx_http_segedge_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_segedge_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_segedge_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_pcalloc(cf->pool, sizeof(ngx_http_segedge_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->db = { 0, NULL };
     *     smcf->store = NULL;
     *     smcf->generation = 0;
     */

    smcf->check_interval = NGX_CONF_UNSET_MSEC;

    return smcf;
}


static char *
ngx_http_segedge_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_segedge_main_conf_t *smcf = (ngx_http_segedge_main_conf_t *) conf;

    ngx_conf_init_msec_value(smcf->check_interval, 1000);

    return NGX_CONF_OK;
}


static void *
ngx_http_segedge_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_segedge_loc_conf_t  *slcf;

    slcf = (ngx_http_segedge_loc_conf_t *)
               ngx_pcalloc(cf->pool, sizeof(ngx_http_segedge_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->cookie = { 0, NULL };
     */

    slcf->enable = NGX_CONF_UNSET;

    return slcf;
}


static char *
ngx_http_segedge_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_segedge_loc_conf_t *prev = (ngx_http_segedge_loc_conf_t *) parent;
    ngx_http_segedge_loc_conf_t *conf = (ngx_http_segedge_loc_conf_t *) child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->cookie, prev->cookie, "segedge_id");

    return NGX_CONF_OK;
}


static char *
ngx_http_segedge_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_segedge_main_conf_t *smcf = (ngx_http_segedge_main_conf_t *) conf;

    ngx_str_t  *value;

    if (smcf->db.data) {
        return (char *) "is duplicate";
    }

    value = (ngx_str_t *) cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid database path \"%V\"", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    smcf->db = value[1];

    if (ngx_conf_full_name(cf->cycle, &smcf->db, 0) != NGX_OK) {
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_segedge_check_interval(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_segedge_main_conf_t *smcf = (ngx_http_segedge_main_conf_t *) conf;

    ngx_str_t  *value;

    if (smcf->check_interval != NGX_CONF_UNSET_MSEC) {
        return (char *) "is duplicate";
    }

    value = (ngx_str_t *) cf->args->elts;

    smcf->check_interval = ngx_parse_time(&value[1], 0);

    if (smcf->check_interval == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid interval \"%V\"", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_segedge_cookie_name(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = (ngx_str_t *) data;

    if (!segcore::is_cookie_name(std::string_view((const char *) name->data,
                                                  name->len)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid cookie name \"%V\"", name);
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * LMDB environments must not be opened before fork(), so each worker opens
 * its own here. A failure leaves the worker serving unpersonalised content;
 * the store retries on later requests.
 */

static ngx_int_t
ngx_http_segedge_init_process(ngx_cycle_t *cycle)
{
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_cycle_get_module_main_conf(cycle,
                                                   ngx_http_segedge_module);
    if (smcf == NULL || smcf->db.len == 0) {
        return NGX_OK;
    }

    try {
        smcf->store = new segcore::Store(
            std::string((const char *) smcf->db.data, smcf->db.len),
            smcf->check_interval);

    } catch (const std::exception &e) {
        ngx_http_segedge_fail_open(cycle->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_DB, e.what());
    }

    return NGX_OK;
}


static void
ngx_http_segedge_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_cycle_get_module_main_conf(cycle,
                                                   ngx_http_segedge_module);
    if (smcf) {
        delete smcf->store;
        smcf->store = NULL;
    }
}
