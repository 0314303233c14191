/*
 * What the two modules in ngx_http_segedge_module.so share: the request
 * ctx with the visitor's resolved segments, its one getter, the snapshot in
 * use and the fail-open logger.
 */

#ifndef _NGX_HTTP_SEGEDGE_MODULE_H_INCLUDED_
#define _NGX_HTTP_SEGEDGE_MODULE_H_INCLUDED_

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <cstdint>

#include "segcore/visitor_id.h"

namespace segcore {
class Snapshot;
class SegmentRules;
namespace metrics { class Recorder; struct WorkerGauges; }
}


/* Fail-open causes, each logged at most once per interval per worker. */
enum ngx_http_segedge_failure_e {
    NGX_HTTP_SEGEDGE_FAIL_DB = 0,
    NGX_HTTP_SEGEDGE_FAIL_LOOKUP,
    NGX_HTTP_SEGEDGE_FAIL_COOKIE,
    NGX_HTTP_SEGEDGE_FAIL_ISSUE,
    NGX_HTTP_SEGEDGE_FAIL_BLOCKS,
    NGX_HTTP_SEGEDGE_FAIL_STALE,
    NGX_HTTP_SEGEDGE_FAIL_LAST
};


typedef struct ngx_http_segedge_loc_conf_s  ngx_http_segedge_loc_conf_t;
typedef struct ngx_http_segedge_blocks_s    ngx_http_segedge_blocks_t;


typedef struct {
    ngx_str_t                   segments;
    ngx_str_t                   visitor;
    ngx_str_t                   generation;     /* formatted when first read */
    ngx_str_t                   known;
    ngx_str_t                   consent;
    ngx_str_t                   stale;
    /* "experiment:variant,..." in experiment id order: assigned on first
       use (ngx_http_segedge_experiments), bucketed on bucket_id */
    ngx_str_t                   experiments;
    ngx_str_t                   bucket_id;
    unsigned                    experiments_assigned:1;

    /* an id issued for this request, and the conf to send it with */
    u_char                      issued[segcore::kVisitorIdLength];
    ngx_http_segedge_loc_conf_t  *issuer;

    /*
     * The visitor's segment ids, highest priority first. They mean something
     * only in the snapshot they were read from, identified by the generation
     * it was opened at (0: no snapshot); delta batches move $segedge_generation
     * but never the segment ids or this.
     */
    uint32_t                   *segment_ids;
    ngx_uint_t                  nsegment_ids;
    uint64_t                    snapshot_opened;

    /* the committed generation the lookup read, and the stored profile
       values it found (copied only when a rule reads profile attributes) */
    uint64_t                    read_generation;
    ngx_str_t                   profiles[2];
    ngx_uint_t                  nprofiles;

    /* the block content chosen for the visitor, set on first use by the
       filter module */
    ngx_http_segedge_blocks_t  *blocks;
} ngx_http_segedge_ctx_t;


ngx_http_segedge_ctx_t *ngx_http_segedge_get_ctx(ngx_http_request_t *r);

/* The visitor's variants, assigned and counted as exposures when first
   asked for. */
ngx_str_t *ngx_http_segedge_experiments(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *ctx);

/* The snapshot in use by this worker, or NULL. Valid until the next request
   resolves segments (which may switch to a newer one). */
segcore::Snapshot *ngx_http_segedge_current_snapshot(ngx_http_request_t *r);

/* segedge_metrics_zone: the shared counters and this worker's recorder */
typedef struct {
    ngx_shm_zone_t              *shm_zone;
    ngx_flag_t                   served;         /* segedge_status is used */
    segcore::metrics::Recorder  *recorder;       /* per worker */
} ngx_http_segedge_metrics_t;

/* This worker's recorder, or NULL without segedge_metrics_zone. */
segcore::metrics::Recorder *ngx_http_segedge_recorder(ngx_http_request_t *r);

/* What the worker knows about its snapshot, for the status handler. */
void ngx_http_segedge_worker_gauges(ngx_http_request_t *r,
    segcore::metrics::WorkerGauges *gauges);

/* in ngx_http_segedge_rules.cpp */
ngx_uint_t ngx_http_segedge_rules_read_profiles(segcore::SegmentRules *rules);
ngx_int_t ngx_http_segedge_apply_rules(ngx_http_request_t *r,
    segcore::SegmentRules *rules, ngx_http_segedge_ctx_t *ctx,
    ngx_array_t *contexts);
char *ngx_http_segedge_context(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* request helpers shared with the rules' inputs */
ngx_table_elt_t *ngx_http_segedge_request_header(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_segedge_find_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);

/* The label of each fail-open cause, indexed by ngx_http_segedge_failure_e */
extern const char  *ngx_http_segedge_failure_names[NGX_HTTP_SEGEDGE_FAIL_LAST];

/* in ngx_http_segedge_status.cpp */
char *ngx_http_segedge_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_segedge_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_segedge_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_segedge_metrics_t *metrics);
void ngx_http_segedge_metrics_exit_process(ngx_http_segedge_metrics_t *metrics);

void ngx_http_segedge_fail_open(ngx_log_t *log, ngx_uint_t level,
    ngx_http_segedge_failure_e cause, const char *what);


extern "C" {
extern ngx_module_t  ngx_http_segedge_module;
extern ngx_module_t  ngx_http_segedge_filter_module;
}

#endif /* _NGX_HTTP_SEGEDGE_MODULE_H_INCLUDED_ */
