/*
 * Rule segments in the module: the inputs a rule reads, computed lazily
 * over the request (only when some rule reads them), the per-worker rules
 * compiled once per snapshot, and the segedge_context directive.
 */

#include "module/ngx_http_segedge_module.h"

#include <exception>
#include <optional>

#include "segcore/segment_rules.h"
#include "segcore/snapshot.h"
#include "segcore/visitor_id.h"


typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t    value;
} ngx_http_segedge_context_t;


/*
 * The request as rules::Inputs. Strings point into the request or its pool.
 * segcore asks for each distinct input at most once per request.
 */

class ngx_http_segedge_request_inputs : public segcore::rules::Inputs {
public:
    ngx_http_segedge_request_inputs(ngx_http_request_t *r,
        ngx_http_segedge_ctx_t *ctx, ngx_array_t *contexts)
        : r_(r), ctx_(ctx), contexts_(contexts) {}

    bool get(const segcore::rules::Input &input,
             segcore::rules::Value &out) override;
    bool member(std::uint32_t) override { return false; }

private:
    bool text(ngx_str_t *value, segcore::rules::Value &out);
    bool context(std::string_view name, segcore::rules::Value &out);
    bool now(time_t *sec, std::uint64_t *ms, bool *pinned);
    bool local_time(segcore::rules::InputKind kind,
                    segcore::rules::Value &out);
    bool first_seen_days(segcore::rules::Value &out);

    ngx_http_request_t      *r_;
    ngx_http_segedge_ctx_t  *ctx_;
    ngx_array_t             *contexts_;
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
ngx_http_segedge_request_inputs::get(const segcore::rules::Input &input,
    segcore::rules::Value &out)
{
    ngx_str_t         key, value;
    ngx_table_elt_t  *header;

    using segcore::rules::InputKind;

    key.data = (u_char *) input.name.data();
    key.len = input.name.size();

    switch (input.kind) {

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
        return context(input.name, out);

    case InputKind::device:
        out.is_number = false;
        out.text = segcore::rules::classify_device(
                       r_->headers_in.user_agent
                       ? std::string_view(
                           (const char *) r_->headers_in.user_agent->value.data,
                           r_->headers_in.user_agent->value.len)
                       : std::string_view());
        return true;

    case InputKind::hour:
    case InputKind::weekday:
        return local_time(input.kind, out);

    case InputKind::visitor:
        out.is_number = false;
        if (ctx_->issuer) {
            out.text = "new";
            return true;
        }

        out.text = "returning";
        return ctx_->visitor.len != 0;

    case InputKind::first_seen_days:
        return first_seen_days(out);

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
 * The request's time: nginx's cached time, unless tests pin it with
 * "segedge_context now $variable;" (unix seconds), an explicit override
 * absent unless configured. false for a malformed pinned value.
 */

bool
ngx_http_segedge_request_inputs::now(time_t *sec, std::uint64_t *ms,
    bool *pinned)
{
    ngx_time_t             *tp;
    segcore::rules::Value   value;

    *pinned = context("now", value);

    if (*pinned) {
        *sec = ngx_atotm((u_char *) value.text.data(), value.text.size());
        *ms = (std::uint64_t) *sec * 1000;
        return *sec != NGX_ERROR;
    }

    tp = ngx_timeofday();
    *sec = tp->sec;
    *ms = (std::uint64_t) tp->sec * 1000 + tp->msec;

    return true;
}


/*
 * Local time of the worker (nginx's "env TZ=...;" sets the zone), from the
 * UTC offset nginx keeps for its cached second.
 */

bool
ngx_http_segedge_request_inputs::local_time(segcore::rules::InputKind kind,
    segcore::rules::Value &out)
{
    bool           pinned;
    time_t         sec, local;
    ngx_tm_t       tm;
    ngx_uint_t     hour, wday;
    ngx_time_t    *tp;
    std::uint64_t  ms;

    if (!now(&sec, &ms, &pinned)) {
        return false;
    }

    if (pinned) {
        ngx_localtime(sec, &tm);
        hour = tm.ngx_tm_hour;
        wday = tm.ngx_tm_wday;

    } else {
        tp = ngx_timeofday();
        local = sec + tp->gmtoff * 60;
        hour = local / 3600 % 24;
        wday = (local / 86400 + 4) % 7;    /* 1 January 1970 was a Thursday */
    }

    out.is_number = true;
    if (kind == segcore::rules::InputKind::hour) {
        out.number = hour;
    } else {
        out.number = wday == 0 ? 7 : wday;    /* ISO 8601: Sunday is 7 */
    }

    return true;
}


/*
 * Days since the anonymous id was issued, from the time the module puts in
 * the ids it issues; 0 for an id issued by this request, missing for ids
 * without a time (issued before ids carried one, or by another system).
 */

bool
ngx_http_segedge_request_inputs::first_seen_days(segcore::rules::Value &out)
{
    bool                           pinned;
    time_t                         sec;
    std::uint64_t                  ms;
    std::optional<std::uint64_t>   issued;

    out.is_number = true;
    out.number = 0;

    if (ctx_->issuer) {
        return true;
    }

    if (ctx_->visitor.len == 0 || !now(&sec, &ms, &pinned)) {
        return false;
    }

    issued = segcore::visitor_id_issued_ms(
                 std::string_view((const char *) ctx_->visitor.data,
                                  ctx_->visitor.len), ms);
    if (!issued) {
        return false;
    }

    if (ms > *issued) {
        out.number = (double) (ms - *issued) / 86400000;
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
    void                            *scratch;
    std::uint32_t                   *out;
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

    scratch = ngx_palloc(r->pool, rules->scratch_size());
    out = (std::uint32_t *) ngx_palloc(r->pool,
                                      (n + ctx->nsegment_ids) * sizeof(uint32_t));
    if (scratch == NULL || out == NULL) {
        return NGX_ERROR;
    }

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
