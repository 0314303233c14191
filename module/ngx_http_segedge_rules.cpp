/*
 * Rule segments in the module: the inputs a rule reads, computed lazily
 * over the request (only when some rule reads them), the per-worker rules
 * compiled once per snapshot, and the segedge_context directive.
 */

#include "module/ngx_http_segedge_module.h"

#include <exception>

#include "segcore/segment_rules.h"
#include "segcore/snapshot.h"


typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t    value;
} ngx_http_segedge_context_t;


/* The request as rules::Inputs. Strings point into the request or its pool. */

class ngx_http_segedge_request_inputs : public segcore::rules::Inputs {
public:
    ngx_http_segedge_request_inputs(ngx_http_request_t *r,
        ngx_http_segedge_ctx_t *ctx, ngx_array_t *contexts)
        : r_(r), ctx_(ctx), contexts_(contexts) {}

    bool get(segcore::rules::InputKind kind, std::string_view name,
             segcore::rules::Value &out) override;
    bool member(std::uint32_t) override { return false; }

private:
    bool text(ngx_str_t *value, segcore::rules::Value &out);
    bool context(std::string_view name, segcore::rules::Value &out);
    bool local_time(segcore::rules::InputKind kind,
                    segcore::rules::Value &out);

    ngx_http_request_t      *r_;
    ngx_http_segedge_ctx_t  *ctx_;
    ngx_array_t             *contexts_;
    std::string_view         device_;
    ngx_tm_t                 tm_;
    bool                     has_tm_ = false;
};


bool
ngx_http_segedge_request_inputs::text(ngx_str_t *value,
    segcore::rules::Value &out)
{
    out.is_number = false;
    out.text = std::string_view((const char *) value->data, value->len);
    return true;
}


bool
ngx_http_segedge_request_inputs::get(segcore::rules::InputKind kind,
    std::string_view name, segcore::rules::Value &out)
{
    ngx_str_t         key, value;
    ngx_table_elt_t  *header;

    using segcore::rules::InputKind;

    key.data = (u_char *) name.data();
    key.len = name.size();

    switch (kind) {

    case InputKind::path:
        return text(&r_->uri, out);

    case InputKind::query:
        return ngx_http_arg(r_, key.data, key.len, &value) == NGX_OK
               && text(&value, out);

    case InputKind::referrer_host:
        if (r_->headers_in.referer == NULL) {
            return false;
        }

        out.is_number = false;
        out.text = segcore::rules::referrer_host(std::string_view(
                       (const char *) r_->headers_in.referer->value.data,
                       r_->headers_in.referer->value.len));
        return !out.text.empty();

    case InputKind::header:
        header = ngx_http_segedge_request_header(r_, &key);
        return header != NULL && text(&header->value, out);

    case InputKind::cookie:
        return ngx_http_segedge_find_cookie(r_, &key, &value) == NGX_OK
               && text(&value, out);

    case InputKind::context:
        return context(name, out);

    case InputKind::device:
        /* classified once per request, however many rules read it */
        if (device_.empty()) {
            device_ = segcore::rules::classify_device(
                          r_->headers_in.user_agent
                          ? std::string_view(
                              (const char *) r_->headers_in.user_agent->value.data,
                              r_->headers_in.user_agent->value.len)
                          : std::string_view());
        }

        out.is_number = false;
        out.text = device_;
        return true;

    case InputKind::hour:
    case InputKind::weekday:
        return local_time(kind, out);

    case InputKind::visitor:
        out.is_number = false;
        if (ctx_->issuer) {
            out.text = "new";
            return true;
        }

        out.text = "returning";
        return ctx_->visitor.len != 0;

    case InputKind::attribute:
        /* answered by segcore::SegmentRules from the stored profiles */
        return false;
    }

    return false;
}


bool
ngx_http_segedge_request_inputs::context(std::string_view name,
    segcore::rules::Value &out)
{
    ngx_str_t                    value;
    ngx_uint_t                   i;
    ngx_http_segedge_context_t  *context;

    if (contexts_ == NULL) {
        return false;
    }

    context = (ngx_http_segedge_context_t *) contexts_->elts;

    for (i = 0; i < contexts_->nelts; i++) {
        if (name != std::string_view((const char *) context[i].name.data,
                                     context[i].name.len))
        {
            continue;
        }

        if (ngx_http_complex_value(r_, &context[i].value, &value) != NGX_OK
            || value.len == 0)
        {
            return false;
        }

        return text(&value, out);
    }

    return false;
}


/*
 * Local time of the worker (nginx's "env TZ=...;" sets the zone). Tests may
 * pin it with "segedge_context now $variable;" (unix seconds): an explicit
 * override, absent unless configured.
 */

bool
ngx_http_segedge_request_inputs::local_time(segcore::rules::InputKind kind,
    segcore::rules::Value &out)
{
    time_t                now;
    segcore::rules::Value  pinned;

    if (!has_tm_) {
        now = ngx_time();

        if (context("now", pinned)) {
            now = ngx_atotm((u_char *) pinned.text.data(), pinned.text.size());
            if (now == NGX_ERROR) {
                return false;
            }
        }

        ngx_localtime(now, &tm_);
        has_tm_ = true;
    }

    out.is_number = true;
    if (kind == segcore::rules::InputKind::hour) {
        out.number = tm_.ngx_tm_hour;
    } else {
        out.number = tm_.ngx_tm_wday == 0 ? 7 : tm_.ngx_tm_wday;
    }

    return true;
}


ngx_uint_t
ngx_http_segedge_rules_read_profiles(segcore::SegmentRules *rules)
{
    return rules
           && (rules->uses()
               & segcore::rules::uses_bit(segcore::rules::InputKind::attribute));
}


/* Merges the rule segments this request matches into ctx->segment_ids. */

ngx_int_t
ngx_http_segedge_apply_rules(ngx_http_request_t *r,
    segcore::SegmentRules *rules, ngx_http_segedge_ctx_t *ctx,
    ngx_array_t *contexts)
{
    std::size_t                      n;
    ngx_uint_t                       i;
    std::uint32_t                   *scratch, *out;
    std::string_view                 profiles[2];
    segcore::SegmentRules::Visitor   visitor;

    if (rules == NULL) {
        return NGX_OK;
    }

    if (ngx_http_segedge_rules_read_profiles(rules)) {
        try {
            rules->refresh_attributes(ctx->read_generation);

        } catch (const std::exception &e) {
            ngx_http_segedge_fail_open(r->connection->log, NGX_LOG_ERR,
                                       NGX_HTTP_SEGEDGE_FAIL_LOOKUP, e.what());
            return NGX_ERROR;
        }
    }

    n = rules->size();

    scratch = (std::uint32_t *) ngx_palloc(r->pool,
                                 (2 * n + ctx->nsegment_ids) * sizeof(uint32_t));
    if (scratch == NULL) {
        return NGX_ERROR;
    }

    out = scratch + n;

    for (i = 0; i < ctx->nprofiles; i++) {
        profiles[i] = std::string_view((const char *) ctx->profiles[i].data,
                                       ctx->profiles[i].len);
    }

    visitor.ids = ctx->segment_ids;
    visitor.n = ctx->nsegment_ids;
    visitor.profiles = profiles;
    visitor.nprofiles = ctx->nprofiles;

    ngx_http_segedge_request_inputs  inputs(r, ctx, contexts);

    ctx->nsegment_ids = rules->evaluate(inputs, visitor, scratch, out);
    ctx->segment_ids = out;

    return NGX_OK;
}


/* segedge_context NAME $variable; */

char *
ngx_http_segedge_context(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t                       **contexts;
    ngx_str_t                          *value;
    ngx_http_segedge_context_t         *context;
    ngx_http_compile_complex_value_t    ccv;

    contexts = (ngx_array_t **) ((char *) conf + cmd->offset);
    value = (ngx_str_t *) cf->args->elts;

    if (!segcore::rules::is_valid_context_name(
            std::string_view((const char *) value[1].data, value[1].len)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid segedge_context name \"%V\": "
                           "use [a-z0-9_-]", &value[1]);
        return (char *) NGX_CONF_ERROR;
    }

    if (*contexts == NGX_CONF_UNSET_PTR) {
        *contexts = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_segedge_context_t));
        if (*contexts == NULL) {
            return (char *) NGX_CONF_ERROR;
        }
    }

    context = (ngx_http_segedge_context_t *) ngx_array_push(*contexts);
    if (context == NULL) {
        return (char *) NGX_CONF_ERROR;
    }

    context->name = value[1];

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &context->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return (char *) NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
