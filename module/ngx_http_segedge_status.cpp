/*
 * The metrics zone (segedge_metrics_zone) and the status handler
 * (segedge_status) of ngx_http_segedge_module. The counters, their layout
 * and their rendering are segcore's (segcore/metrics.h); this file only
 * finds them a shared zone and serves them.
 */

#include "module/ngx_http_segedge_module.h"

#include <exception>
#include <new>
#include <string>

#include "segcore/metrics.h"


static ngx_int_t ngx_http_segedge_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_segedge_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_segedge_status_render(ngx_http_request_t *r,
    segcore::metrics::Zone *zone, ngx_uint_t json, std::string *text);


/* room for nginx's slab pool header next to the Zone */
#define NGX_HTTP_SEGEDGE_ZONE_SLACK  (64 * 1024)


char *
ngx_http_segedge_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_segedge_metrics_t *metrics =
        (ngx_http_segedge_metrics_t *) ((char *) conf + cmd->offset);

    ssize_t     size, min;
    ngx_str_t  *value;

    if (metrics->shm_zone) {
        return (char *) "is duplicate";
    }

    value = (ngx_str_t *) cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone name \"%V\"", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    size = ngx_parse_size(&value[2]);
    min = sizeof(segcore::metrics::Zone) + NGX_HTTP_SEGEDGE_ZONE_SLACK;

    if (size == NGX_ERROR || size < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\", it must be at least "
                           "%uzk", &value[2], (size_t) (min + 1023) / 1024);
        return (char *) NGX_CONF_ERROR;
    }

    metrics->shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                              &ngx_http_segedge_module);
    if (metrics->shm_zone == NULL) {
        return (char *) NGX_CONF_ERROR;
    }

    if (metrics->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already in use", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    metrics->shm_zone->init = ngx_http_segedge_metrics_init_zone;
    metrics->shm_zone->data = (void *) 1;

    return NGX_CONF_OK;
}


/*
 * On reload nginx hands over the old zone's data when name and size are
 * unchanged, and the counters carry on (unless a module upgrade changed
 * their layout, which changes the magic); otherwise they start from zero.
 */

static ngx_int_t
ngx_http_segedge_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t         *shpool;
    segcore::metrics::Zone  *zone;

    if (data && segcore::metrics::valid(*(segcore::metrics::Zone *) data)) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    zone = (segcore::metrics::Zone *)
               ngx_slab_calloc(shpool, sizeof(segcore::metrics::Zone));
    if (zone == NULL) {
        return NGX_ERROR;
    }

    segcore::metrics::init(*zone, (std::uint64_t) ngx_time());

    shm_zone->data = zone;

    return NGX_OK;
}


ngx_int_t
ngx_http_segedge_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_segedge_metrics_t *metrics)
{
    if (metrics->shm_zone == NULL) {
        return NGX_OK;
    }

    metrics->recorder = new (std::nothrow) segcore::metrics::Recorder(
                            (segcore::metrics::Zone *) metrics->shm_zone->data);

    return metrics->recorder ? NGX_OK : NGX_ERROR;
}


void
ngx_http_segedge_metrics_exit_process(ngx_http_segedge_metrics_t *metrics)
{
    delete metrics->recorder;
    metrics->recorder = NULL;
}


char *
ngx_http_segedge_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_segedge_metrics_t *metrics =
        (ngx_http_segedge_metrics_t *) ((char *) conf + cmd->offset);

    ngx_http_core_loc_conf_t  *clcf;

    metrics->served = 1;

    clcf = (ngx_http_core_loc_conf_t *)
               ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_segedge_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_segedge_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    format;
    ngx_buf_t                   *b;
    ngx_uint_t                   json;
    ngx_chain_t                  out;
    std::string                  text;
    segcore::metrics::Recorder  *recorder;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* never NULL: the configuration has a zone, checked at startup */
    recorder = ngx_http_segedge_recorder(r);
    if (recorder == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json = ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
           && format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0;

    if (ngx_http_segedge_status_render(r, recorder->zone(), json, &text)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = text.size();

    if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    } else {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, text.size() ? text.size() : 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->pos, text.data(), text.size());
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_segedge_status_render(ngx_http_request_t *r,
    segcore::metrics::Zone *zone, ngx_uint_t json, std::string *text)
{
    ngx_uint_t                     i;
    segcore::metrics::RenderInput  in;

    try {
        in.zone = zone;
        in.now = (std::uint64_t) ngx_time();

        for (i = 0; i < NGX_HTTP_SEGEDGE_FAIL_LAST; i++) {
            in.fail_causes.emplace_back(ngx_http_segedge_failure_names[i]);
        }

        ngx_http_segedge_worker_gauges(r, &in.gauges);

        *text = json ? segcore::metrics::render_json(in)
                     : segcore::metrics::render_prometheus(in);

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "segedge_status: %s", e.what());
        return NGX_ERROR;
    }

    return NGX_OK;
}
