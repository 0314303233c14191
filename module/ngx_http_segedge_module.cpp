/*
 * ngx_http_segedge_module: identifies the visitor (anonymous cookie, issued
 * when missing; signed known-visitor cookie; aliases), subject to consent,
 * and exposes the visitor's segments, looked up in the LMDB snapshot
 * published by segsync, as nginx variables.
 *
 * This file only translates between nginx and segcore. Every call into
 * segcore is wrapped so that no C++ exception reaches nginx: on any failure
 * the request is served unpersonalised and one rate-limited line is logged.
 */

#include "module/ngx_http_segedge_module.h"

#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <vector>

#include "segcore/cacheability.h"
#include "segcore/consent.h"
#include "segcore/cookie.h"
#include "segcore/experiments.h"
#include "segcore/identity.h"
#include "segcore/keys.h"
#include "segcore/metrics.h"
#include "segcore/schema.h"
#include "segcore/segment_rules.h"
#include "segcore/set_cookie.h"
#include "segcore/signed_id.h"
#include "segcore/store.h"
#include "segcore/visitor_id.h"

static_assert(__cplusplus >= 201703L, "segedge needs C++17");

/* A Cookie header this large is abuse or a broken client, not a visitor. */
#define NGX_HTTP_SEGEDGE_MAX_COOKIE_BYTES  16384

#define NGX_HTTP_SEGEDGE_LOG_INTERVAL  60


typedef struct {
    ngx_str_t                  db;
    ngx_msec_t                 check_interval;
    segcore::Store            *store;          /* per worker */
    std::uint64_t              generation;     /* last one logged */
    ngx_http_segedge_metrics_t metrics;
    time_t                     max_staleness;
    ngx_flag_t                 stale_serve;    /* else fail open */
} ngx_http_segedge_main_conf_t;


struct ngx_http_segedge_loc_conf_s {
    ngx_flag_t                 enable;
    ngx_str_t                  cookie;

    ngx_flag_t                 cookie_issue;
    ngx_str_t                  cookie_domain;
    ngx_str_t                  cookie_path;
    time_t                     cookie_max_age;
    ngx_uint_t                 cookie_flags;       /* segcore::CookieFlag */
    ngx_str_t                  cookie_attributes;  /* "; Max-Age=...", merged */

    ngx_str_t                  known_cookie;
    segcore::KeyRing          *keys;

    ngx_http_complex_value_t  *consent;
    ngx_flag_t                 consent_gpc;

    ngx_array_t               *contexts;       /* segedge_context */
    ngx_uint_t                 segment_max;
};


/* A string directive whose value must pass a segcore syntax rule. */
typedef struct {
    ngx_conf_post_handler_pt   post_handler;
    bool                     (*valid)(std::string_view text);
    const char                *what;
} ngx_http_segedge_syntax_t;


static ngx_http_segedge_ctx_t *ngx_http_segedge_find_ctx(
    ngx_http_request_t *r);
static void ngx_http_segedge_resolve(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx);
static segcore::Snapshot *ngx_http_segedge_snapshot(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf);
static ngx_int_t ngx_http_segedge_consented(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_http_segedge_ctx_t *ctx);
static ngx_int_t ngx_http_segedge_read_cookies(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_http_segedge_ctx_t *ctx,
    segcore::VisitorClaims *claims, u_char *known_id);
static void ngx_http_segedge_verify_known(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_str_t *value,
    segcore::VisitorClaims *claims, u_char *known_id);
static void ngx_http_segedge_issue(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_http_segedge_ctx_t *ctx,
    segcore::VisitorClaims *claims);
static segcore::Snapshot *ngx_http_segedge_check_stale(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf, segcore::Snapshot *snapshot,
    ngx_http_segedge_ctx_t *ctx);
static ngx_int_t ngx_http_segedge_name_segments(ngx_http_request_t *r,
    segcore::Snapshot *snapshot, ngx_http_segedge_ctx_t *ctx, ngx_uint_t max);
static ngx_int_t ngx_http_segedge_lookup(ngx_http_request_t *r,
    segcore::Snapshot *snapshot, segcore::VisitorClaims *claims,
    ngx_http_segedge_ctx_t *ctx, ngx_uint_t read_profiles);
static void ngx_http_segedge_refresh(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf);
static void ngx_http_segedge_assign(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx);
static ngx_int_t ngx_http_segedge_experiments_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_segedge_variant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_segedge_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_segedge_set_cookie(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx);
static ngx_uint_t ngx_http_segedge_cacheable(ngx_http_request_t *r);
static void ngx_http_segedge_ctx_marker(void *data);
static ngx_int_t ngx_http_segedge_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_segedge_generation_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_segedge_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_segedge_init(ngx_conf_t *cf);
static void *ngx_http_segedge_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_segedge_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_segedge_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_segedge_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_segedge_db(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_segedge_check_interval(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_segedge_max_staleness(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_segedge_check_syntax(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_segedge_cookie_max_age(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_segedge_cookie_flags(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_segedge_merge_cookie(ngx_conf_t *cf,
    ngx_http_segedge_loc_conf_t *conf);
static char *ngx_http_segedge_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_segedge_delete_keys(void *data);
static ngx_int_t ngx_http_segedge_init_process(ngx_cycle_t *cycle);
static void ngx_http_segedge_exit_process(ngx_cycle_t *cycle);


static ngx_http_segedge_syntax_t  ngx_http_segedge_cookie_name_p =
    { ngx_http_segedge_check_syntax, segcore::is_cookie_name, "cookie name" };
/* "none" passes as a host name; the merge turns it into no Domain */
static ngx_http_segedge_syntax_t  ngx_http_segedge_cookie_domain_p =
    { ngx_http_segedge_check_syntax, segcore::is_cookie_domain,
      "cookie domain" };
static ngx_http_segedge_syntax_t  ngx_http_segedge_cookie_path_p =
    { ngx_http_segedge_check_syntax, segcore::is_cookie_path, "cookie path" };
static ngx_conf_post_handler_pt  ngx_http_segedge_cookie_max_age_p =
    ngx_http_segedge_cookie_max_age;

static ngx_conf_num_bounds_t  ngx_http_segedge_segment_max_bounds = {
    ngx_conf_check_num_bounds, 1, segcore::kMaxResolvedSegments
};

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


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

    { ngx_string("segedge_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_segedge_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_segedge_main_conf_t, metrics),
      NULL },

    { ngx_string("segedge_max_staleness"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_segedge_max_staleness,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("segedge_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_segedge_status,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_segedge_main_conf_t, metrics),
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

    { ngx_string("segedge_cookie_issue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, cookie_issue),
      NULL },

    { ngx_string("segedge_cookie_domain"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, cookie_domain),
      &ngx_http_segedge_cookie_domain_p },

    { ngx_string("segedge_cookie_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, cookie_path),
      &ngx_http_segedge_cookie_path_p },

    { ngx_string("segedge_cookie_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, cookie_max_age),
      &ngx_http_segedge_cookie_max_age_p },

    { ngx_string("segedge_cookie_flags"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_segedge_cookie_flags,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("segedge_known_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, known_cookie),
      &ngx_http_segedge_cookie_name_p },

    { ngx_string("segedge_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_segedge_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("segedge_consent"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, consent),
      NULL },

    { ngx_string("segedge_consent_gpc"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, consent_gpc),
      NULL },

    { ngx_string("segedge_context"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_segedge_context,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, contexts),
      NULL },

    { ngx_string("segedge_segment_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_loc_conf_t, segment_max),
      &ngx_http_segedge_segment_max_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_segedge_module_ctx = {
    ngx_http_segedge_add_variables,        /* preconfiguration */
    ngx_http_segedge_init,                 /* postconfiguration */

    ngx_http_segedge_create_main_conf,     /* create main configuration */
    ngx_http_segedge_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_segedge_create_loc_conf,      /* create location configuration */
    ngx_http_segedge_merge_loc_conf        /* merge location configuration */
};


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


static ngx_http_variable_t  ngx_http_segedge_vars[] = {

    { ngx_string("segedge_segments"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, segments),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_visitor"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, visitor),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_generation"), NULL,
      ngx_http_segedge_generation_variable,
      offsetof(ngx_http_segedge_ctx_t, generation),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_known"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, known),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_consent"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, consent),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_stale"), NULL, ngx_http_segedge_variable,
      offsetof(ngx_http_segedge_ctx_t, stale),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_experiments"), NULL,
      ngx_http_segedge_experiments_variable,
      offsetof(ngx_http_segedge_ctx_t, experiments),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("segedge_variant_"), NULL,
      ngx_http_segedge_variant_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

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


/* $segedge_generation, formatted when first read: most requests never are */

static ngx_int_t
ngx_http_segedge_generation_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p;
    ngx_http_segedge_ctx_t  *ctx;

    ctx = ngx_http_segedge_get_ctx(r);

    if (ctx && ctx->generation.data == NULL && ctx->snapshot_opened) {
        p = (u_char *) ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ctx->generation.len = ngx_sprintf(p, "%uL", ctx->read_generation) - p;
        ctx->generation.data = p;
    }

    return ngx_http_segedge_variable(r, v, data);
}


static ngx_int_t
ngx_http_segedge_experiments_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_segedge_ctx_t  *ctx;

    ctx = ngx_http_segedge_get_ctx(r);

    if (ctx) {
        (void) ngx_http_segedge_experiments(r, ctx);
    }

    return ngx_http_segedge_variable(r, v, data);
}


/*
 * $segedge_variant_<experiment>: the experiment's entry in the request's
 * exposure list, so every variable of a request agrees with
 * $segedge_experiments. Empty when the visitor has no variant.
 */

static ngx_int_t
ngx_http_segedge_variant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *name = (ngx_str_t *) data;
    ngx_http_segedge_ctx_t  *ctx;

    v->len = 0;
    v->data = (u_char *) "";
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    ctx = ngx_http_segedge_get_ctx(r);
    if (ctx == NULL) {
        return NGX_OK;
    }

    std::string_view id((const char *) name->data, name->len);
    id.remove_prefix(sizeof("segedge_variant_") - 1);

    ngx_str_t *experiments = ngx_http_segedge_experiments(r, ctx);

    std::string_view variant = segcore::experiments::find_variant(
        std::string_view((const char *) experiments->data, experiments->len),
        id);

    v->len = variant.size();
    v->data = (u_char *) variant.data();

    return NGX_OK;
}


/*
 * The one place a request's segments are resolved, shared by every variable
 * and by the blocks filter. The result belongs to the main request and
 * survives internal redirects, which wipe r->ctx: like realip, the ctx is
 * found again through its pool cleanup.
 */

ngx_http_segedge_ctx_t *
ngx_http_segedge_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_segedge_ctx_t       *ctx;
    ngx_http_segedge_loc_conf_t  *slcf;

    ctx = ngx_http_segedge_find_ctx(r);
    if (ctx) {
        return ctx;
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


/* The request's ctx if it was resolved already; never resolves. */

static ngx_http_segedge_ctx_t *
ngx_http_segedge_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_segedge_ctx_t  *ctx;

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

    return NULL;
}


static void
ngx_http_segedge_ctx_marker(void *data)
{
    /* nothing to free: the handler only tags the ctx for the lookup above */
}


/*
 * Consent first: without it no cookie is read or set and nothing is looked
 * up. Then the visitor's claims (anonymous cookie, issued if missing;
 * verified known cookie) go to segcore, which applies the identity rule.
 */

static void
ngx_http_segedge_resolve(ngx_http_request_t *r, ngx_http_segedge_ctx_t *ctx)
{
    u_char                        known_id[segcore::schema::kMaxVisitorIdSize];
    ngx_int_t                     rc;
    segcore::Snapshot            *snapshot;
    segcore::SegmentRules        *rules;
    segcore::VisitorClaims        claims;
    ngx_http_segedge_loc_conf_t  *slcf;
    ngx_http_segedge_main_conf_t *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_get_module_main_conf(r, ngx_http_segedge_module);
    slcf = (ngx_http_segedge_loc_conf_t *)
               ngx_http_get_module_loc_conf(r, ngx_http_segedge_module);

    ngx_str_set(&ctx->known, "0");

    snapshot = ngx_http_segedge_snapshot(r, smcf);
    snapshot = ngx_http_segedge_check_stale(r, smcf, snapshot, ctx);

    /*
     * Without consent, or with Cookie headers refused, the claims stay
     * empty: the lookup then reads no profile, only the generation.
     */

    if (ngx_http_segedge_consented(r, slcf, ctx) == NGX_OK
        && ngx_http_segedge_read_cookies(r, slcf, ctx, &claims, known_id)
           == NGX_OK
        && claims.anonymous_id.empty() && slcf->cookie_issue)
    {
        ngx_http_segedge_issue(r, slcf, ctx, &claims);
    }

    rules = snapshot ? snapshot->rules() : NULL;

    rc = ngx_http_segedge_lookup(r, snapshot, &claims, ctx,
                                 ngx_http_segedge_rules_read_profiles(rules));

    if (rc == NGX_OK) {
        rc = ngx_http_segedge_apply_rules(r, rules, ctx, slcf->contexts);
    }

    if (rc == NGX_OK && snapshot) {
        (void) ngx_http_segedge_name_segments(r, snapshot, ctx,
                                              slcf->segment_max);
    }

    if (smcf->metrics.recorder) {
        try {
            smcf->metrics.recorder->use(snapshot, ctx->snapshot_opened);
            smcf->metrics.recorder->request(ctx->stale.data[0] == '1');
            smcf->metrics.recorder->segments(ctx->segment_ids,
                                             ctx->nsegment_ids);

        } catch (const std::exception &e) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "segedge: cannot count: %s", e.what());
        }
    }

    /*
     * Bucketed on the anonymous id when there is one (so logging in keeps
     * the variant), else on the known id; without the visitor's segments no
     * variant can be targeted.
     */

    if (rc != NGX_OK) {
        return;
    }

    if (!claims.anonymous_id.empty()) {
        ctx->bucket_id.len = claims.anonymous_id.size();
        ctx->bucket_id.data = (u_char *) claims.anonymous_id.data();
        return;
    }

    /* the verified known id is on this function's stack */

    if (!claims.known_id.empty()) {
        ctx->bucket_id.data = (u_char *) ngx_pnalloc(r->pool,
                                                     claims.known_id.size());
        if (ctx->bucket_id.data == NULL) {
            return;
        }

        ctx->bucket_id.len = claims.known_id.size();
        ngx_memcpy(ctx->bucket_id.data, claims.known_id.data(),
                   claims.known_id.size());
    }
}


/*
 * With segedge_max_staleness, a snapshot built too long ago is either still
 * used and flagged ("serve") or not used at all: the request fails open.
 */

static segcore::Snapshot *
ngx_http_segedge_check_stale(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf, segcore::Snapshot *snapshot,
    ngx_http_segedge_ctx_t *ctx)
{
    time_t          age;
    u_char          what[NGX_MAX_ERROR_STR];
    static time_t   logged_at;

    ngx_str_set(&ctx->stale, "0");

    if (snapshot == NULL || smcf->max_staleness == 0) {
        return snapshot;
    }

    age = ngx_time() - (time_t) snapshot->meta().built_at;
    if (age <= smcf->max_staleness) {
        return snapshot;
    }

    ngx_str_set(&ctx->stale, "1");

    *ngx_snprintf(what, sizeof(what) - 1,
                  "snapshot generation %uL was built %T s ago, more than "
                  "segedge_max_staleness %T s",
                  (uint64_t) snapshot->meta().generation, age,
                  smcf->max_staleness) = '\0';

    if (!smcf->stale_serve) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_WARN,
                                   NGX_HTTP_SEGEDGE_FAIL_STALE,
                                   (const char *) what);
        return NULL;
    }

    if (logged_at == 0
        || ngx_time() - logged_at >= NGX_HTTP_SEGEDGE_LOG_INTERVAL)
    {
        logged_at = ngx_time();
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "segedge: %s; still serving it "
                      "(logged at most once a minute)", what);
    }

    return snapshot;
}


/* The snapshot this request is resolved against, or NULL. */

static segcore::Snapshot *
ngx_http_segedge_snapshot(ngx_http_request_t *r,
    ngx_http_segedge_main_conf_t *smcf)
{
    if (smcf->store == NULL) {
        return NULL;
    }

    ngx_http_segedge_refresh(r, smcf);

    return smcf->store->current();
}


segcore::metrics::Recorder *
ngx_http_segedge_recorder(ngx_http_request_t *r)
{
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_get_module_main_conf(r, ngx_http_segedge_module);

    return smcf->metrics.recorder;
}


void
ngx_http_segedge_worker_gauges(ngx_http_request_t *r,
    segcore::metrics::WorkerGauges *gauges)
{
    segcore::Snapshot             *snapshot;
    segcore::SnapshotUsage         usage;
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_get_module_main_conf(r, ngx_http_segedge_module);

    gauges->max_staleness = (std::uint64_t) smcf->max_staleness;

    if (smcf->store == NULL) {
        return;
    }

    ngx_http_segedge_refresh(r, smcf);

    snapshot = smcf->store->current();
    if (snapshot == NULL) {
        return;
    }

    usage = snapshot->usage();

    gauges->has_snapshot = true;
    gauges->generation = snapshot->generation();
    gauges->built_at = snapshot->meta().built_at;
    gauges->since_switch_ms = ngx_current_msec - smcf->store->switched_at_ms();
    gauges->stale = smcf->max_staleness
                    && ngx_time() - (time_t) gauges->built_at
                       > smcf->max_staleness;
    gauges->map_size = usage.map_size;
    gauges->map_used = usage.map_used;
    gauges->readers = usage.readers;
    gauges->max_readers = usage.max_readers;
}


segcore::Snapshot *
ngx_http_segedge_current_snapshot(ngx_http_request_t *r)
{
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_get_module_main_conf(r, ngx_http_segedge_module);

    return smcf->store ? smcf->store->current() : NULL;
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


static ngx_int_t
ngx_http_segedge_consented(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_http_segedge_ctx_t *ctx)
{
    ngx_str_t                          value;
    ngx_table_elt_t                   *gpc;
    segcore::Consent                   consent;
    std::optional<std::string_view>    consent_value, gpc_value;
    static ngx_str_t                   gpc_name = ngx_string("Sec-GPC");

    if (slcf->consent) {
        if (ngx_http_complex_value(r, slcf->consent, &value) != NGX_OK) {
            value.len = 0;
        }

        consent_value = std::string_view((const char *) value.data, value.len);
    }

    gpc = ngx_http_segedge_request_header(r, &gpc_name);
    if (gpc) {
        gpc_value = std::string_view((const char *) gpc->value.data,
                                     gpc->value.len);
    }

    consent = segcore::decide_consent(consent_value, gpc_value,
                                      slcf->consent_gpc);

    std::string_view text = segcore::to_string(consent);
    ctx->consent.data = (u_char *) text.data();
    ctx->consent.len = text.size();

    return consent == segcore::Consent::granted ? NGX_OK : NGX_DECLINED;
}


/*
 * Fills the claims from the anonymous cookie (only a canonical id counts)
 * and the known-visitor cookie (only a verified one counts).
 * NGX_DECLINED means the request must not be personalised.
 */

static ngx_int_t
ngx_http_segedge_read_cookies(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_http_segedge_ctx_t *ctx,
    segcore::VisitorClaims *claims, u_char *known_id)
{
    size_t             total;
    ngx_str_t          value;
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

    if (ngx_http_segedge_find_cookie(r, &slcf->cookie, &value) == NGX_OK) {

        if (segcore::is_visitor_id(std::string_view((const char *) value.data,
                                                    value.len)))
        {
            ctx->visitor = value;
            claims->anonymous_id = std::string_view((const char *) value.data,
                                                    value.len);

        } else {
            ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_INFO,
                                       NGX_HTTP_SEGEDGE_FAIL_COOKIE,
                                       "malformed visitor cookie");
        }
    }

    if (slcf->keys
        && ngx_http_segedge_find_cookie(r, &slcf->known_cookie, &value)
           == NGX_OK)
    {
        ngx_http_segedge_verify_known(r, slcf, &value, claims, known_id);
    }

    return NGX_OK;
}


/*
 * The value of the first cookie named *name over all Cookie headers.
 * NGX_DECLINED when there is none.
 */

ngx_int_t
ngx_http_segedge_find_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_uint_t         i;
    ngx_table_elt_t  **cookies;

    cookies = (ngx_table_elt_t **) r->main->headers_in.cookies.elts;

    std::string_view wanted((const char *) name->data, name->len);

    for (i = 0; i < r->main->headers_in.cookies.nelts; i++) {
        std::string_view header((const char *) cookies[i]->value.data,
                                cookies[i]->value.len);

        auto found = segcore::find_cookie(header, wanted);
        if (found) {
            value->data = (u_char *) found->data();
            value->len = found->size();
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static void
ngx_http_segedge_verify_known(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_str_t *value,
    segcore::VisitorClaims *claims, u_char *known_id)
{
    segcore::VerifiedId  verified;

    try {
        verified = segcore::verify_signed_id(
                       *slcf->keys,
                       std::string_view((const char *) value->data,
                                        value->len),
                       (std::uint64_t) ngx_time(), (char *) known_id);

    } catch (const std::exception &e) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_LOOKUP, e.what());
        return;
    }

    if (verified.check != segcore::SignedIdCheck::valid) {
        std::string_view why = segcore::to_string(verified.check);

        /* an expired cookie is routine and a forged one is the client's */

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "segedge: known-visitor cookie ignored: %*s",
                       why.size(), why.data());
        return;
    }

    claims->known_id = std::string_view((const char *) known_id,
                                        verified.size);
}


/*
 * A new anonymous id, used for this very request and sent in Set-Cookie by
 * the header filter.
 */

static void
ngx_http_segedge_issue(ngx_http_request_t *r,
    ngx_http_segedge_loc_conf_t *slcf, ngx_http_segedge_ctx_t *ctx,
    segcore::VisitorClaims *claims)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    if (!segcore::issue_visitor_id((char *) ctx->issued,
                                   (std::uint64_t) tp->sec * 1000 + tp->msec))
    {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_ISSUE,
                                   "cannot issue a visitor id: "
                                   "the CSPRNG failed");
        return;
    }

    ctx->visitor.data = ctx->issued;
    ctx->visitor.len = segcore::kVisitorIdLength;
    ctx->issuer = slcf;

    claims->anonymous_id = std::string_view((const char *) ctx->issued,
                                            segcore::kVisitorIdLength);
    claims->anonymous_is_new = true;
}


static ngx_int_t
ngx_http_segedge_lookup(ngx_http_request_t *r, segcore::Snapshot *snapshot,
    segcore::VisitorClaims *claims, ngx_http_segedge_ctx_t *ctx,
    ngx_uint_t read_profiles)
{
    std::uint32_t                 ids[segcore::kMaxResolvedSegments];
    segcore::Resolution           resolution;

    /* copies the stored profile values into the pool, for rule attributes */
    struct profile_copy : segcore::ProfileSink {
        ngx_http_request_t      *r;
        ngx_http_segedge_ctx_t  *ctx;

        void take(segcore::schema::VisitorKind, std::string_view value) override
        {
            u_char  *p;

            if (ctx->nprofiles == 2) {
                return;
            }

            p = (u_char *) ngx_pnalloc(r->pool, value.size());
            if (p == NULL) {
                return;
            }

            ngx_memcpy(p, value.data(), value.size());
            ctx->profiles[ctx->nprofiles].data = p;
            ctx->profiles[ctx->nprofiles++].len = value.size();
        }
    } copy;

    copy.r = r;
    copy.ctx = ctx;

    /* a verified cookie makes the visitor known even if the lookups fail */

    if (!claims->known_id.empty()) {
        ngx_str_set(&ctx->known, "1");
    }

    try {
        resolution = segcore::resolve_identity(snapshot, *claims, ids,
                                               read_profiles ? &copy : NULL);

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

    if (resolution.known) {
        ngx_str_set(&ctx->known, "1");
    }

    if (snapshot) {
        ctx->snapshot_opened = snapshot->meta().generation;
        ctx->read_generation = resolution.generation;
    }

    if (resolution.segments) {
        ctx->segment_ids = (uint32_t *) ngx_palloc(r->pool,
                               resolution.segments * sizeof(uint32_t));
        if (ctx->segment_ids == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->segment_ids, ids,
                   resolution.segments * sizeof(uint32_t));
        ctx->nsegment_ids = resolution.segments;
    }

    return NGX_OK;
}


/* $segedge_segments: the names of the first "max" segments, comma-separated */

static ngx_int_t
ngx_http_segedge_name_segments(ngx_http_request_t *r,
    segcore::Snapshot *snapshot, ngx_http_segedge_ctx_t *ctx, ngx_uint_t max)
{
    u_char                             *p;
    size_t                              len;
    ngx_uint_t                          i, n;
    const segcore::schema::SegmentDef  *def;

    n = ngx_min(ctx->nsegment_ids, max);

    len = 0;
    for (i = 0; i < n; i++) {
        def = snapshot->segment(ctx->segment_ids[i]);
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
        def = snapshot->segment(ctx->segment_ids[i]);
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


/*
 * Variants are assigned when first asked for, by a variable or by a block
 * with variant content: only such a request exposes the visitor to an
 * experiment and is counted, and the others skip the hashing.
 */

ngx_str_t *
ngx_http_segedge_experiments(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx)
{
    if (!ctx->experiments_assigned) {
        ctx->experiments_assigned = 1;
        ngx_http_segedge_assign(r, ctx);
    }

    return &ctx->experiments;
}


static void
ngx_http_segedge_assign(ngx_http_request_t *r, ngx_http_segedge_ctx_t *ctx)
{
    u_char                      *p;
    std::size_t                  n;
    segcore::Snapshot           *snapshot;
    segcore::metrics::Recorder  *recorder;

    segcore::experiments::Assignment
                  assigned[segcore::experiments::kMaxExperiments];

    if (ctx->bucket_id.len == 0) {
        return;
    }

    /* segment ids mean nothing in another snapshot than the one they were
       read from */

    snapshot = ngx_http_segedge_current_snapshot(r);

    if (snapshot == NULL
        || snapshot->meta().generation != ctx->snapshot_opened
        || snapshot->experiments().all().empty())
    {
        return;
    }

    const segcore::experiments::Catalogue &catalogue = snapshot->experiments();

    n = catalogue.assign_all(ctx->segment_ids, ctx->nsegment_ids,
                             std::string_view((const char *) ctx->bucket_id.data,
                                              ctx->bucket_id.len),
                             assigned);
    if (n == 0) {
        return;
    }

    p = (u_char *) ngx_pnalloc(r->pool, segcore::experiments::kMaxListSize);
    if (p == NULL) {
        return;
    }

    ctx->experiments.data = p;
    ctx->experiments.len = catalogue.exposure_list(assigned, n, (char *) p);

    recorder = ngx_http_segedge_recorder(r);

    if (recorder) {
        try {
            recorder->use(snapshot, ctx->snapshot_opened);
            recorder->exposures(assigned, n);

        } catch (const std::exception &e) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "segedge: cannot count: %s", e.what());
        }
    }
}


ngx_table_elt_t *
ngx_http_segedge_request_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header;

    part = &r->main->headers_in.headers.part;
    header = (ngx_table_elt_t *) part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            header = (ngx_table_elt_t *) part->elts;
            i = 0;
        }

        if (header[i].key.len == name->len
            && ngx_strncasecmp(header[i].key.data, name->data, name->len) == 0)
        {
            return &header[i];
        }
    }
}


/*
 * Sets the cookie of an id issued for this request, unless the response is
 * one a shared cache may store. Registered before the headers filter (see
 * config), so add_header and expires have had their say by now.
 */

static ngx_int_t
ngx_http_segedge_header_filter(ngx_http_request_t *r)
{
    ngx_http_segedge_ctx_t       *ctx;
    ngx_http_segedge_loc_conf_t  *slcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    slcf = (ngx_http_segedge_loc_conf_t *)
               ngx_http_get_module_loc_conf(r, ngx_http_segedge_module);

    /* an issuing location resolves here if no variable has yet */

    ctx = (slcf->enable && slcf->cookie_issue) ? ngx_http_segedge_get_ctx(r)
                                               : ngx_http_segedge_find_ctx(r);

    if (ctx && ctx->issuer) {
        (void) ngx_http_segedge_set_cookie(r, ctx);
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_segedge_set_cookie(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx)
{
    u_char                       *p;
    size_t                        len;
    ngx_table_elt_t              *set_cookie;
    ngx_http_segedge_loc_conf_t  *issuer;

    issuer = ctx->issuer;
    ctx->issuer = NULL;

    if (ngx_http_segedge_cacheable(r)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "segedge: no visitor cookie on a cacheable response");
        return NGX_OK;
    }

    len = issuer->cookie.len + 1 + segcore::kVisitorIdLength
          + issuer->cookie_attributes.len;

    p = (u_char *) ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    set_cookie = (ngx_table_elt_t *) ngx_list_push(&r->headers_out.headers);
    if (set_cookie == NULL) {
        return NGX_ERROR;
    }

    set_cookie->hash = 1;
#if (nginx_version >= 1023000)
    set_cookie->next = NULL;
#endif
    ngx_str_set(&set_cookie->key, "Set-Cookie");
    set_cookie->value.data = p;
    set_cookie->value.len = len;

    p = ngx_cpymem(p, issuer->cookie.data, issuer->cookie.len);
    *p++ = '=';
    p = ngx_cpymem(p, ctx->issued, segcore::kVisitorIdLength);
    ngx_memcpy(p, issuer->cookie_attributes.data,
               issuer->cookie_attributes.len);

    return NGX_OK;
}


static ngx_uint_t
ngx_http_segedge_cacheable(ngx_http_request_t *r)
{
    ngx_uint_t                   i;
    ngx_list_part_t             *part;
    ngx_table_elt_t             *header;
    segcore::SharedCacheability  cacheability;

    part = &r->headers_out.headers.part;
    header = (ngx_table_elt_t *) part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            header = (ngx_table_elt_t *) part->elts;
            i = 0;
        }

        if (header[i].hash == 0) {
            continue;
        }

        if (header[i].key.len == sizeof("Cache-Control") - 1
            && ngx_strncasecmp(header[i].key.data, (u_char *) "Cache-Control",
                               sizeof("Cache-Control") - 1) == 0)
        {
            cacheability.add_cache_control(
                std::string_view((const char *) header[i].value.data,
                                 header[i].value.len));

        } else if (header[i].key.len == sizeof("Expires") - 1
                   && ngx_strncasecmp(header[i].key.data, (u_char *) "Expires",
                                      sizeof("Expires") - 1) == 0)
        {
            cacheability.set_has_expires();
        }
    }

    return cacheability.cacheable();
}


const char  *ngx_http_segedge_failure_names[NGX_HTTP_SEGEDGE_FAIL_LAST] = {
    "db", "lookup", "cookie", "issue", "blocks", "stale"
};


void
ngx_http_segedge_fail_open(ngx_log_t *log, ngx_uint_t level,
    ngx_http_segedge_failure_e cause, const char *what)
{
    static time_t                  logged_at[NGX_HTTP_SEGEDGE_FAIL_LAST];
    ngx_http_segedge_main_conf_t  *smcf;

    /* every event counts, even when its log line is rate-limited */

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_segedge_module);
    if (smcf && smcf->metrics.recorder) {
        smcf->metrics.recorder->fail_open(cause);
    }

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
     *     smcf->metrics = { NULL, 0, NULL };
     */

    smcf->check_interval = NGX_CONF_UNSET_MSEC;
    smcf->max_staleness = NGX_CONF_UNSET;
    smcf->stale_serve = NGX_CONF_UNSET;

    return smcf;
}


static char *
ngx_http_segedge_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_segedge_main_conf_t *smcf = (ngx_http_segedge_main_conf_t *) conf;

    ngx_conf_init_msec_value(smcf->check_interval, 1000);
    ngx_conf_init_value(smcf->max_staleness, 0);
    ngx_conf_init_value(smcf->stale_serve, 1);

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
     *     slcf->cookie_domain = { 0, NULL };
     *     slcf->cookie_path = { 0, NULL };
     *     slcf->cookie_attributes = { 0, NULL };
     *     slcf->known_cookie = { 0, NULL };
     */

    slcf->enable = NGX_CONF_UNSET;
    slcf->cookie_issue = NGX_CONF_UNSET;
    slcf->cookie_max_age = NGX_CONF_UNSET;
    slcf->cookie_flags = NGX_CONF_UNSET_UINT;
    slcf->keys = (segcore::KeyRing *) NGX_CONF_UNSET_PTR;
    slcf->consent = (ngx_http_complex_value_t *) NGX_CONF_UNSET_PTR;
    slcf->consent_gpc = NGX_CONF_UNSET;
    slcf->contexts = (ngx_array_t *) NGX_CONF_UNSET_PTR;
    slcf->segment_max = NGX_CONF_UNSET_UINT;

    return slcf;
}


static char *
ngx_http_segedge_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_segedge_loc_conf_t *prev = (ngx_http_segedge_loc_conf_t *) parent;
    ngx_http_segedge_loc_conf_t *conf = (ngx_http_segedge_loc_conf_t *) child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->cookie, prev->cookie, "segedge_id");

    ngx_conf_merge_value(conf->cookie_issue, prev->cookie_issue, 0);
    ngx_conf_merge_str_value(conf->cookie_domain, prev->cookie_domain, "none");
    ngx_conf_merge_str_value(conf->cookie_path, prev->cookie_path, "/");
    ngx_conf_merge_sec_value(conf->cookie_max_age, prev->cookie_max_age,
                             (time_t) segcore::kDefaultCookieAgeSeconds);
    ngx_conf_merge_uint_value(conf->cookie_flags, prev->cookie_flags,
                              segcore::kDefaultCookieFlags);

    ngx_conf_merge_str_value(conf->known_cookie, prev->known_cookie,
                             "segedge_known");
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);

    ngx_conf_merge_ptr_value(conf->consent, prev->consent, NULL);
    ngx_conf_merge_value(conf->consent_gpc, prev->consent_gpc, 1);

    ngx_conf_merge_ptr_value(conf->contexts, prev->contexts, NULL);
    ngx_conf_merge_uint_value(conf->segment_max, prev->segment_max,
                              segcore::kMaxResolvedSegments);

    if (conf->cookie_issue) {
        return ngx_http_segedge_merge_cookie(cf, conf);
    }

    return NGX_CONF_OK;
}


/* The Set-Cookie attributes, built once per location that issues ids. */

static char *
ngx_http_segedge_merge_cookie(ngx_conf_t *cf, ngx_http_segedge_loc_conf_t *conf)
{
    std::string                 error, text;
    segcore::CookieAttributes   attributes;

    attributes.domain = std::string_view((const char *) conf->cookie_domain.data,
                                         conf->cookie_domain.len);
    if (attributes.domain == "none") {
        attributes.domain = {};
    }

    attributes.path = std::string_view((const char *) conf->cookie_path.data,
                                       conf->cookie_path.len);
    attributes.max_age = (std::uint64_t) conf->cookie_max_age;
    attributes.flags = (unsigned) conf->cookie_flags;

    try {
        error = segcore::check_cookie_prefix(
                    std::string_view((const char *) conf->cookie.data,
                                     conf->cookie.len),
                    attributes);
        text = segcore::set_cookie_attributes(attributes);

    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", e.what());
        return (char *) NGX_CONF_ERROR;
    }

    if (!error.empty()) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", error.c_str());
        return (char *) NGX_CONF_ERROR;
    }

    conf->cookie_attributes.len = text.size();
    conf->cookie_attributes.data = (u_char *) ngx_pnalloc(cf->pool, text.size());
    if (conf->cookie_attributes.data == NULL) {
        return (char *) NGX_CONF_ERROR;
    }

    ngx_memcpy(conf->cookie_attributes.data, text.data(), text.size());

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
ngx_http_segedge_max_staleness(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_segedge_main_conf_t *smcf = (ngx_http_segedge_main_conf_t *) conf;

    ngx_str_t  *value;

    if (smcf->max_staleness != NGX_CONF_UNSET) {
        return (char *) "is duplicate";
    }

    value = (ngx_str_t *) cf->args->elts;

    smcf->max_staleness = ngx_parse_time(&value[1], 1);

    if (smcf->max_staleness == (time_t) NGX_ERROR
        || smcf->max_staleness == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid staleness \"%V\"", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2
        || ngx_strcmp(value[2].data, "serve") == 0)
    {
        smcf->stale_serve = 1;

    } else if (ngx_strcmp(value[2].data, "default") == 0) {
        smcf->stale_serve = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stale mode \"%V\", "
                           "it must be \"serve\" or \"default\"",
                           &value[2]);
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_segedge_check_syntax(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_segedge_syntax_t *syntax = (ngx_http_segedge_syntax_t *) post;

    ngx_str_t  *value = (ngx_str_t *) data;

    if (!syntax->valid(std::string_view((const char *) value->data,
                                        value->len)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s \"%V\"", syntax->what, value);
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_segedge_cookie_max_age(ngx_conf_t *cf, void *post, void *data)
{
    time_t     *max_age = (time_t *) data;
    ngx_str_t  *value;

    value = (ngx_str_t *) cf->args->elts;

    if (*max_age <= 0
        || (std::uint64_t) *max_age > segcore::kMaxCookieAgeSeconds)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cookie max age \"%V\" must be more than 0 "
                           "and at most 400d", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_segedge_cookie_flags(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_segedge_loc_conf_t *slcf = (ngx_http_segedge_loc_conf_t *) conf;

    ngx_str_t                        *value;
    ngx_uint_t                        i;
    segcore::CookieFlagsResult        result;
    std::vector<std::string_view>     tokens;

    if (slcf->cookie_flags != NGX_CONF_UNSET_UINT) {
        return (char *) "is duplicate";
    }

    value = (ngx_str_t *) cf->args->elts;

    try {
        for (i = 1; i < cf->args->nelts; i++) {
            tokens.emplace_back((const char *) value[i].data, value[i].len);
        }

        result = segcore::parse_cookie_flags(tokens);

    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", e.what());
        return (char *) NGX_CONF_ERROR;
    }

    if (!result.error.empty()) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", result.error.c_str());
        return (char *) NGX_CONF_ERROR;
    }

    slcf->cookie_flags = result.flags;

    return NGX_CONF_OK;
}


/*
 * Keys are read when the configuration is loaded (by the master, before
 * fork), so the key file can be readable by root only; a changed file takes
 * effect on reload. A bad file fails the configuration, naming file and line.
 */

static char *
ngx_http_segedge_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_segedge_loc_conf_t *slcf = (ngx_http_segedge_loc_conf_t *) conf;

    ngx_str_t           *value, path;
    ngx_pool_cleanup_t  *cln;

    if (slcf->keys != NGX_CONF_UNSET_PTR) {
        return (char *) "is duplicate";
    }

    value = (ngx_str_t *) cf->args->elts;
    path = value[1];

    if (path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key file path \"%V\"", &path);
        return (char *) NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return (char *) NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return (char *) NGX_CONF_ERROR;
    }

    try {
        slcf->keys = new segcore::KeyRing(segcore::KeyRing::load(
                         std::string((const char *) path.data, path.len)));

    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", e.what());
        return (char *) NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_segedge_delete_keys;
    cln->data = slcf->keys;

    return NGX_CONF_OK;
}


static void
ngx_http_segedge_delete_keys(void *data)
{
    delete (segcore::KeyRing *) data;
}


static ngx_int_t
ngx_http_segedge_init(ngx_conf_t *cf)
{
    ngx_http_segedge_main_conf_t  *smcf;

    smcf = (ngx_http_segedge_main_conf_t *)
               ngx_http_conf_get_module_main_conf(cf, ngx_http_segedge_module);

    if (smcf->metrics.served && smcf->metrics.shm_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"segedge_status\" needs \"segedge_metrics_zone\"");
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_segedge_header_filter;

    return NGX_OK;
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
    if (smcf == NULL) {
        return NGX_OK;
    }

    if (ngx_http_segedge_metrics_init_process(cycle, &smcf->metrics)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (smcf->db.len == 0) {
        return NGX_OK;
    }

    try {
        smcf->store = new segcore::Store(
            std::string((const char *) smcf->db.data, smcf->db.len),
            smcf->check_interval);

        std::string error = smcf->store->refresh(ngx_current_msec);

        if (!error.empty()) {
            ngx_http_segedge_fail_open(cycle->log, NGX_LOG_ERR,
                                       NGX_HTTP_SEGEDGE_FAIL_DB,
                                       error.c_str());
        }

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
        ngx_http_segedge_metrics_exit_process(&smcf->metrics);
    }
}
