/*
 * ngx_http_segedge_filter_module: dynamic content blocks. Swaps the markup
 * between <!--segedge:NAME--> and <!--/segedge:NAME--> for the fragment the
 * visitor's segments select, streaming: segcore::BlockScanner holds back at
 * most one marker between buffers, and the fragments are chosen and copied
 * into the request pool at header time, so the response never depends on
 * the snapshot staying open while the body streams.
 *
 * Like the rest of segedge it translates and does not decide: the scanner,
 * the choice and the Cache-Control rewrite live in segcore.
 */

#include "module/ngx_http_segedge_module.h"

#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>

#include "segcore/block_scanner.h"
#include "segcore/cacheability.h"
#include "segcore/metrics.h"
#include "segcore/snapshot.h"


/*
 * r->buffered has four bits and nginx names them all: SSI 0x01, SUB 0x02,
 * COPY 0x04 and image_filter's 0x08 (defined in its .c). We share
 * image_filter's: it only ever handles image responses and rejects others
 * with 415, so the two never hold the same response, while sub_filter and
 * SSI keep bits of their own when they run in the same location.
 */
#define NGX_HTTP_SEGEDGE_BLOCKS_BUFFERED  0x08

#define NGX_HTTP_SEGEDGE_MARKERS_KEEP     0
#define NGX_HTTP_SEGEDGE_MARKERS_REMOVE   1


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   html;           /* a copy in the request pool */
} ngx_http_segedge_block_t;


struct ngx_http_segedge_blocks_s {
    ngx_http_segedge_block_t   *elts;
    ngx_uint_t                  nelts;
    ngx_str_t                   key;            /* $segedge_blocks_key */
};


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  markers;
    ngx_flag_t                  last_modified;
    ngx_flag_t                  cache_private;
    ngx_hash_t                  types;
    ngx_array_t                *types_keys;
} ngx_http_segedge_filter_loc_conf_t;


struct ngx_http_segedge_filter_ctx_t {
    explicit ngx_http_segedge_filter_ctx_t(segcore::BlockScanner::Markers m)
        : scanner(m) {}

    segcore::BlockScanner       scanner;
    ngx_http_segedge_blocks_t  *blocks = NULL;
    ngx_chain_t                *out = NULL;
    ngx_chain_t               **last_out = &out;
    ngx_chain_t                *busy = NULL;
    ngx_chain_t                *free = NULL;        /* bufs pointing elsewhere */
    ngx_chain_t                *free_held = NULL;   /* bufs with own memory */
};

/* lives in the request pool, which runs no destructors */
static_assert(std::is_trivially_destructible<ngx_http_segedge_filter_ctx_t>::value,
              "the filter ctx must not need a destructor");


/*
 * Turns the scanner's output pieces into nginx bufs: views into the input
 * buffer and into pool copies of fragments; held-back marker bytes are the
 * only thing copied, into small reusable bufs.
 */

class ngx_http_segedge_block_output : public segcore::BlockHandler {
public:
    ngx_http_segedge_block_output(ngx_http_request_t *r,
        ngx_http_segedge_filter_ctx_t *ctx)
        : r_(r), ctx_(ctx) {}

    std::optional<std::string_view> replacement(std::string_view name)
        override;
    void output(std::string_view bytes, segcore::Piece piece) override;

    ngx_buf_t  *last_input = NULL;   /* the last buf pointing into the input */
    bool        failed = false;

private:
    ngx_buf_t *held_buf(std::string_view bytes);

    ngx_http_request_t             *r_;
    ngx_http_segedge_filter_ctx_t  *ctx_;
};


class ngx_http_segedge_fragment_copy : public segcore::FragmentSink {
public:
    ngx_http_segedge_fragment_copy(ngx_pool_t *pool,
        ngx_http_segedge_block_t *blocks)
        : pool_(pool), blocks_(blocks) {}

    void take(std::size_t choice, std::string_view html) override;

    bool  failed = false;

private:
    ngx_pool_t                *pool_;
    ngx_http_segedge_block_t  *blocks_;
};


static ngx_http_segedge_blocks_t *ngx_http_segedge_blocks(
    ngx_http_request_t *r, ngx_http_segedge_ctx_t *sctx);
static ngx_int_t ngx_http_segedge_choose_blocks(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *sctx, segcore::Snapshot *snapshot,
    ngx_http_segedge_blocks_t *blocks);
static ngx_int_t ngx_http_segedge_blocks_key(ngx_http_request_t *r,
    segcore::Snapshot *snapshot, const segcore::BlockChoice *choices,
    ngx_uint_t n, ngx_http_segedge_blocks_t *blocks);
static ngx_int_t ngx_http_segedge_set_private(ngx_http_request_t *r);
static size_t ngx_http_segedge_take_cache_control(ngx_http_request_t *r,
    u_char *out);
static ngx_int_t ngx_http_segedge_scan(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx, ngx_buf_t *b);
static ngx_int_t ngx_http_segedge_pass_flags(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx, ngx_buf_t *b);
static ngx_int_t ngx_http_segedge_filter_output(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx);
static void ngx_http_segedge_log_problem(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx);
static ngx_int_t ngx_http_segedge_blocks_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_segedge_filter_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_segedge_filter_init(ngx_conf_t *cf);
static void *ngx_http_segedge_filter_create_conf(ngx_conf_t *cf);
static char *ngx_http_segedge_filter_merge_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_conf_enum_t  ngx_http_segedge_markers[] = {
    { ngx_string("keep"), NGX_HTTP_SEGEDGE_MARKERS_KEEP },
    { ngx_string("remove"), NGX_HTTP_SEGEDGE_MARKERS_REMOVE },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_segedge_filter_commands[] = {

    { ngx_string("segedge_blocks"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_filter_loc_conf_t, enable),
      NULL },

    { ngx_string("segedge_blocks_types"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_types_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_filter_loc_conf_t, types_keys),
      &ngx_http_html_default_types[0] },

    { ngx_string("segedge_blocks_markers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_filter_loc_conf_t, markers),
      &ngx_http_segedge_markers },

    { ngx_string("segedge_blocks_last_modified"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_filter_loc_conf_t, last_modified),
      NULL },

    { ngx_string("segedge_blocks_cache_private"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_segedge_filter_loc_conf_t, cache_private),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_segedge_filter_module_ctx = {
    ngx_http_segedge_filter_add_variables, /* preconfiguration */
    ngx_http_segedge_filter_init,          /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_segedge_filter_create_conf,   /* create location configuration */
    ngx_http_segedge_filter_merge_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_segedge_filter_module = {
    NGX_MODULE_V1,
    &ngx_http_segedge_filter_module_ctx,   /* module context */
    ngx_http_segedge_filter_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_segedge_blocks_key_name =
    ngx_string("segedge_blocks_key");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_segedge_header_filter(ngx_http_request_t *r)
{
    ngx_http_segedge_ctx_t              *sctx;
    ngx_http_segedge_blocks_t           *blocks;
    ngx_http_segedge_filter_ctx_t       *ctx;
    ngx_http_segedge_filter_loc_conf_t  *conf;

    conf = (ngx_http_segedge_filter_loc_conf_t *)
               ngx_http_get_module_loc_conf(r, ngx_http_segedge_filter_module);

    /* HEAD sets r->header_only only in the last header filter */

    if (!conf->enable
        || r != r->main
        || r->header_only
        || r->method == NGX_HTTP_HEAD
        || r->headers_out.status == NGX_HTTP_NO_CONTENT
        || r->headers_out.status == NGX_HTTP_NOT_MODIFIED
        || r->headers_out.content_length_n == 0
        || ngx_http_test_content_type(r, &conf->types) == NULL)
    {
        return ngx_http_next_header_filter(r);
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len
        && ngx_strcasecmp(r->headers_out.content_encoding->value.data,
                          (u_char *) "identity") != 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "segedge blocks: skipping \"%V\" content encoding",
                       &r->headers_out.content_encoding->value);
        return ngx_http_next_header_filter(r);
    }

    sctx = ngx_http_segedge_get_ctx(r);
    if (sctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    blocks = ngx_http_segedge_blocks(r, sctx);
    if (blocks == NULL) {
        return NGX_ERROR;
    }

    /*
     * Validators go for every visitor, personalised or not: a browser that
     * revalidates a page it got as one visitor must not get a 304 (and the
     * old blocks) once its visitor is in other segments.
     */

    if (conf->last_modified) {
        ngx_http_weak_etag(r);

    } else {
        ngx_http_clear_last_modified(r);
        ngx_http_clear_etag(r);
    }

    /* nothing in this body can change: leave the rest alone */

    if (blocks->nelts == 0 && conf->markers == NGX_HTTP_SEGEDGE_MARKERS_KEEP) {
        return ngx_http_next_header_filter(r);
    }

    ctx = (ngx_http_segedge_filter_ctx_t *)
              ngx_palloc(r->pool, sizeof(ngx_http_segedge_filter_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    new (ctx) ngx_http_segedge_filter_ctx_t(
        conf->markers == NGX_HTTP_SEGEDGE_MARKERS_REMOVE
            ? segcore::BlockScanner::Markers::remove
            : segcore::BlockScanner::Markers::keep);

    ctx->blocks = blocks;

    ngx_http_set_ctx(r, ctx, ngx_http_segedge_filter_module);

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);

    if (blocks->nelts && conf->cache_private
        && ngx_http_segedge_set_private(r) != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->filter_need_in_memory = 1;

    return ngx_http_next_header_filter(r);
}


/*
 * The visitor's block content, chosen once per request on first use (the
 * header filter or $segedge_blocks_key) and kept in the shared ctx, so it
 * survives internal redirects like the segments do. Returns NULL only when
 * the pool is exhausted; any segcore failure leaves no blocks chosen.
 */

static ngx_http_segedge_blocks_t *
ngx_http_segedge_blocks(ngx_http_request_t *r, ngx_http_segedge_ctx_t *sctx)
{
    segcore::Snapshot          *snapshot;
    ngx_http_segedge_blocks_t  *blocks;

    if (sctx->blocks) {
        return sctx->blocks;
    }

    blocks = (ngx_http_segedge_blocks_t *)
                 ngx_pcalloc(r->pool, sizeof(ngx_http_segedge_blocks_t));
    if (blocks == NULL) {
        return NULL;
    }

    sctx->blocks = blocks;

    snapshot = ngx_http_segedge_current_snapshot(r);

    if (snapshot == NULL || sctx->nsegment_ids == 0) {
        return blocks;
    }

    /* segment ids mean nothing in another snapshot */

    if (snapshot->meta().generation != sctx->snapshot_opened) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "segedge blocks: segments read from the snapshot "
                       "opened at generation %uL, now %uL; serving default "
                       "blocks", sctx->snapshot_opened,
                       (uint64_t) snapshot->meta().generation);
        return blocks;
    }

    try {
        if (ngx_http_segedge_choose_blocks(r, sctx, snapshot, blocks)
            != NGX_OK)
        {
            return NULL;
        }

    } catch (const std::exception &e) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_BLOCKS, e.what());
    } catch (...) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_BLOCKS,
                                   "unknown error");
    }

    return blocks;
}


static ngx_int_t
ngx_http_segedge_choose_blocks(ngx_http_request_t *r,
    ngx_http_segedge_ctx_t *sctx, segcore::Snapshot *snapshot,
    ngx_http_segedge_blocks_t *blocks)
{
    ngx_uint_t                   n;
    ngx_http_segedge_block_t    *elts;
    segcore::BlockChoice         choices[segcore::schema::kMaxBlocks];
    segcore::metrics::Recorder  *recorder;

    const segcore::BlockCatalogue &catalogue = snapshot->blocks();

    n = catalogue.choose(sctx->segment_ids, sctx->nsegment_ids, choices);
    if (n == 0) {
        return NGX_OK;
    }

    if (catalogue.has_variants(choices, n)) {
        ngx_str_t *experiments = ngx_http_segedge_experiments(r, sctx);

        catalogue.apply_variants(choices, n,
            std::string_view((const char *) experiments->data,
                             experiments->len));
    }

    elts = (ngx_http_segedge_block_t *)
               ngx_palloc(r->pool, n * sizeof(ngx_http_segedge_block_t));
    if (elts == NULL) {
        return NGX_ERROR;
    }

    ngx_http_segedge_fragment_copy  copy(r->pool, elts);

    snapshot->read_fragments(choices, n, copy);

    if (copy.failed) {
        return NGX_ERROR;
    }

    blocks->elts = elts;

    if (ngx_http_segedge_blocks_key(r, snapshot, choices, n, blocks)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    blocks->nelts = n;

    recorder = ngx_http_segedge_recorder(r);
    if (recorder) {
        recorder->use(snapshot, sctx->snapshot_opened);
        recorder->blocks(choices, n);
    }

    return NGX_OK;
}


/*
 * "block=segment,..." in block-name order, "block=segment@experiment:variant"
 * for per-experiment content: what makes this body differ. The block names
 * in blocks->elts point into it.
 */

static ngx_int_t
ngx_http_segedge_blocks_key(ngx_http_request_t *r,
    segcore::Snapshot *snapshot, const segcore::BlockChoice *choices,
    ngx_uint_t n, ngx_http_segedge_blocks_t *blocks)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = 0;
    for (i = 0; i < n; i++) {
        len += snapshot->blocks().name(choices[i].block).size() + 1
               + snapshot->segment(choices[i].segment)->name.size() + 1
               + choices[i].variant.size() + 1;
    }

    p = (u_char *) ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    blocks->key.data = p;

    for (i = 0; i < n; i++) {
        const std::string &block = snapshot->blocks().name(choices[i].block);
        const std::string &segment =
            snapshot->segment(choices[i].segment)->name;

        if (i) {
            *p++ = ',';
        }

        blocks->elts[i].name.data = p;
        blocks->elts[i].name.len = block.size();

        p = ngx_cpymem(p, block.data(), block.size());
        *p++ = '=';
        p = ngx_cpymem(p, segment.data(), segment.size());

        if (!choices[i].variant.empty()) {
            *p++ = '@';
            p = ngx_cpymem(p, choices[i].variant.data(),
                           choices[i].variant.size());
        }
    }

    blocks->key.len = p - blocks->key.data;

    return NGX_OK;
}


void
ngx_http_segedge_fragment_copy::take(std::size_t choice,
    std::string_view html)
{
    u_char  *p;

    p = (u_char *) ngx_pnalloc(pool_, html.size() + 1);
    if (p == NULL) {
        failed = true;
        return;
    }

    if (html.size()) {
        ngx_memcpy(p, html.data(), html.size());
    }

    blocks_[choice].html.data = p;
    blocks_[choice].html.len = html.size();
}


/*
 * Cache-Control: private, keeping the directives a browser cache still
 * obeys (segcore decides which). Every Cache-Control header is replaced by
 * one; the header list is walked rather than headers_out.cache_control,
 * whose type changed in nginx 1.23.
 */

static ngx_int_t
ngx_http_segedge_set_private(ngx_http_request_t *r)
{
    u_char           *joined, *value;
    size_t            len;
    ngx_table_elt_t  *cc;

    len = ngx_http_segedge_take_cache_control(r, NULL);

    joined = (u_char *) ngx_pnalloc(r->pool, len);
    value = (u_char *) ngx_pnalloc(r->pool,
                             segcore::private_cache_control_capacity(len));
    if ((len && joined == NULL) || value == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_segedge_take_cache_control(r, joined);

    cc = (ngx_table_elt_t *) ngx_list_push(&r->headers_out.headers);
    if (cc == NULL) {
        return NGX_ERROR;
    }

    cc->hash = 1;
#if (nginx_version >= 1023000)
    cc->next = NULL;
#endif
    ngx_str_set(&cc->key, "Cache-Control");
    cc->value.data = value;
    cc->value.len = segcore::private_cache_control(
                        std::string_view((const char *) joined, len),
                        (char *) value);

    return NGX_OK;
}


/*
 * With out == NULL, measures the Cache-Control values, each followed by a
 * comma; otherwise copies them there and takes the headers out.
 */

static size_t
ngx_http_segedge_take_cache_control(ngx_http_request_t *r, u_char *out)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header;

    len = 0;
    part = &r->headers_out.headers.part;
    header = (ngx_table_elt_t *) part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return len;
            }

            part = part->next;
            header = (ngx_table_elt_t *) part->elts;
            i = 0;
        }

        if (header[i].hash == 0
            || header[i].key.len != sizeof("Cache-Control") - 1
            || ngx_strncasecmp(header[i].key.data, (u_char *) "Cache-Control",
                               sizeof("Cache-Control") - 1) != 0)
        {
            continue;
        }

        if (out) {
            ngx_memcpy(out + len, header[i].value.data, header[i].value.len);
            out[len + header[i].value.len] = ',';
            header[i].hash = 0;
        }

        len += header[i].value.len + 1;
    }
}


static ngx_int_t
ngx_http_segedge_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t                    *cl;
    ngx_http_segedge_filter_ctx_t  *ctx;

    ctx = (ngx_http_segedge_filter_ctx_t *)
              ngx_http_get_module_ctx(r, ngx_http_segedge_filter_module);

    if (ctx == NULL || (in == NULL && ctx->busy == NULL)) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        if (ngx_http_segedge_scan(r, ctx, cl->buf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_segedge_filter_output(r, ctx);
}


static ngx_int_t
ngx_http_segedge_scan(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx, ngx_buf_t *b)
{
    ngx_http_segedge_block_output  output(r, ctx);

    if (!ngx_buf_in_memory(b) && !ngx_buf_special(b)) {
        /* filter_need_in_memory makes this impossible */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "segedge blocks: buffer not in memory");
        return NGX_ERROR;
    }

    try {
        if (ngx_buf_in_memory(b)) {
            ctx->scanner.feed(std::string_view((const char *) b->pos,
                                               b->last - b->pos),
                              output);
        }

        if (b->last_buf) {
            ctx->scanner.finish(output);
            ngx_http_segedge_log_problem(r, ctx);
        }

    } catch (const std::exception &e) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_BLOCKS, e.what());
        return NGX_ERROR;
    } catch (...) {
        ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                   NGX_HTTP_SEGEDGE_FAIL_BLOCKS,
                                   "unknown error");
        return NGX_ERROR;
    }

    if (output.failed) {
        return NGX_ERROR;
    }

    /*
     * The input goes back to its owner (an upstream buffer, say) only when
     * the last of our bufs that points into it has been sent.
     */

    if (output.last_input) {
        output.last_input->shadow = b;
        output.last_input->recycled = b->recycled;

    } else {
        b->pos = b->last;
        b->file_pos = b->file_last;
    }

    return ngx_http_segedge_pass_flags(r, ctx, b);
}


static ngx_int_t
ngx_http_segedge_pass_flags(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx, ngx_buf_t *b)
{
    ngx_buf_t    *flags;
    ngx_chain_t  *cl;

    if (!b->last_buf && !b->last_in_chain && !b->flush) {
        return NGX_OK;
    }

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    flags = cl->buf;
    ngx_memzero(flags, sizeof(ngx_buf_t));

    flags->tag = (ngx_buf_tag_t) &ngx_http_segedge_filter_module;
    flags->sync = 1;
    flags->last_buf = b->last_buf;
    flags->last_in_chain = b->last_in_chain;
    flags->flush = b->flush;

    *ctx->last_out = cl;
    ctx->last_out = &cl->next;

    return NGX_OK;
}


std::optional<std::string_view>
ngx_http_segedge_block_output::replacement(std::string_view name)
{
    ngx_uint_t                  i;
    ngx_http_segedge_blocks_t  *blocks = ctx_->blocks;

    for (i = 0; i < blocks->nelts; i++) {
        ngx_str_t  *block = &blocks->elts[i].name;

        if (name == std::string_view((const char *) block->data, block->len)) {
            return std::string_view((const char *) blocks->elts[i].html.data,
                                    blocks->elts[i].html.len);
        }
    }

    return std::nullopt;
}


void
ngx_http_segedge_block_output::output(std::string_view bytes,
    segcore::Piece piece)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (failed) {
        return;
    }

    if (piece == segcore::Piece::held) {
        failed = held_buf(bytes) == NULL;
        return;
    }

    cl = ngx_chain_get_free_buf(r_->pool, &ctx_->free);
    if (cl == NULL) {
        failed = true;
        return;
    }

    b = cl->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->tag = (ngx_buf_tag_t) &ngx_http_segedge_filter_module;
    b->memory = 1;
    b->pos = (u_char *) bytes.data();
    b->last = b->pos + bytes.size();

    if (piece == segcore::Piece::input) {
        last_input = b;
    }

    *ctx_->last_out = cl;
    ctx_->last_out = &cl->next;
}


/* a copy of held-back bytes, in a buf reused once it has been sent */

ngx_buf_t *
ngx_http_segedge_block_output::held_buf(std::string_view bytes)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (ctx_->free_held) {
        cl = ctx_->free_held;
        ctx_->free_held = cl->next;
        b = cl->buf;

    } else {
        cl = ngx_alloc_chain_link(r_->pool);
        if (cl == NULL) {
            return NULL;
        }

        b = ngx_create_temp_buf(r_->pool,
                                segcore::BlockScanner::kMaxMarkerSize);
        if (b == NULL) {
            return NULL;
        }

        b->tag = (ngx_buf_tag_t) &ngx_http_segedge_filter_module;
        cl->buf = b;
    }

    b->pos = b->start;
    b->last = ngx_cpymem(b->start, bytes.data(), bytes.size());

    cl->next = NULL;
    *ctx_->last_out = cl;
    ctx_->last_out = &cl->next;

    return b;
}


static ngx_int_t
ngx_http_segedge_filter_output(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, **last;

    rc = ngx_http_next_body_filter(r, ctx->out);

    for (last = &ctx->busy; *last; last = &(*last)->next) { /* void */ }

    *last = ctx->out;
    ctx->out = NULL;
    ctx->last_out = &ctx->out;

    while (ctx->busy) {
        cl = ctx->busy;
        b = cl->buf;

        if (ngx_buf_size(b) != 0) {
            break;
        }

        if (b->shadow) {
            b->shadow->pos = b->shadow->last;
            b->shadow->file_pos = b->shadow->file_last;
            b->shadow = NULL;
        }

        ctx->busy = cl->next;

        if (b->temporary) {
            cl->next = ctx->free_held;
            ctx->free_held = cl;

        } else {
            cl->next = ctx->free;
            ctx->free = cl;
        }
    }

    if (ctx->scanner.held()) {
        r->buffered |= NGX_HTTP_SEGEDGE_BLOCKS_BUFFERED;

    } else {
        r->buffered &= ~NGX_HTTP_SEGEDGE_BLOCKS_BUFFERED;
    }

    return rc;
}


/* Broken markup is the page author's to fix: "info", once per response. */

static void
ngx_http_segedge_log_problem(ngx_http_request_t *r,
    ngx_http_segedge_filter_ctx_t *ctx)
{
    const char        *what;
    std::string_view   block;

    switch (ctx->scanner.problem()) {

    case segcore::BlockProblem::unterminated:
        what = "has no closing marker";
        break;

    case segcore::BlockProblem::nested:
        what = "contains another block marker, passed through as it is";
        break;

    default:
        return;
    }

    block = ctx->scanner.problem_block();

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "segedge: block \"%*s\" in \"%V\" %s",
                  block.size(), block.data(), &r->uri, what);
}


static ngx_int_t
ngx_http_segedge_blocks_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_segedge_ctx_t     *sctx;
    ngx_http_segedge_blocks_t  *blocks;

    sctx = ngx_http_segedge_get_ctx(r);

    if (sctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    blocks = ngx_http_segedge_blocks(r, sctx);
    if (blocks == NULL) {
        return NGX_ERROR;
    }

    v->len = blocks->key.len;
    v->data = blocks->key.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_segedge_filter_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_segedge_blocks_key_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_segedge_blocks_key_variable;

    return NGX_OK;
}


static void *
ngx_http_segedge_filter_create_conf(ngx_conf_t *cf)
{
    ngx_http_segedge_filter_loc_conf_t  *conf;

    conf = (ngx_http_segedge_filter_loc_conf_t *)
               ngx_pcalloc(cf->pool, sizeof(ngx_http_segedge_filter_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->types = { NULL };
     *     conf->types_keys = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->markers = NGX_CONF_UNSET_UINT;
    conf->last_modified = NGX_CONF_UNSET;
    conf->cache_private = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_segedge_filter_merge_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_segedge_filter_loc_conf_t *prev =
        (ngx_http_segedge_filter_loc_conf_t *) parent;
    ngx_http_segedge_filter_loc_conf_t *conf =
        (ngx_http_segedge_filter_loc_conf_t *) child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->markers, prev->markers,
                              NGX_HTTP_SEGEDGE_MARKERS_KEEP);
    ngx_conf_merge_value(conf->last_modified, prev->last_modified, 0);
    ngx_conf_merge_value(conf->cache_private, prev->cache_private, 1);

    if (ngx_http_merge_types(cf, &conf->types_keys, &conf->types,
                             &prev->types_keys, &prev->types,
                             ngx_http_html_default_types)
        != NGX_OK)
    {
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_segedge_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_segedge_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_segedge_body_filter;

    return NGX_OK;
}
