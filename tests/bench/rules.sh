#!/bin/bash
# Cost of rule segments per request, "header mode": one nginx worker answers
# `return 200` with an X-Seg header, bare (a static header) or with segedge
# (cookie, profile lookup over 1 M visitors with attributes, 20 rule
# segments over path, UTM query, headers, cookie, device, hour, visitor
# state and profile attributes, merged into $segedge_segments). wrk sends a
# random visitor mix (80% profiled, 10% unknown ids, 10% no cookie; random
# User-Agents and UTM parameters). Cases are interleaved in shuffled rounds;
# the figure is the worker's CPU time per request against bare's.
#   tests/bench/rules.sh [SECONDS per run, default 2] [ROUNDS, default 9] [VISITORS, default 1000000]
# Needs wrk, python3 and a build (conf/build.sh). Not part of tests/run.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-2}
rounds=${2:-9}
visitors=${3:-1000000}
dir=$(mktemp -d /tmp/segedge-bench-XXXXXX)
port=$((20000 + RANDOM % 20000))
trap '[ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT

python3 - "$dir" "$visitors" <<'PY'
import base64, json, random, sys
d, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
rule = lambda name, prio, r: json.dumps({"name": name, "priority": prio, "rule": r})
segs = [json.dumps({"name": s, "priority": p}) for s, p in
        [("vip", 200), ("cart", 150), ("news", 120), ("lapsed", 110)]]
segs += [
    rule("sale_path", 100, {"input": "path", "op": "contains", "value": "/sale/"}),
    rule("product_page", 99, {"input": "path", "op": "regex", "value": "/p/[0-9]+$"}),
    rule("paid_social", 98, {"all": [{"input": "query.utm_medium", "op": "eq", "value": "paid_social", "ignore_case": True},
                                    {"input": "query.utm_source", "op": "in", "value": ["facebook", "instagram", "tiktok"]}]}),
    rule("email_campaign", 97, {"input": "query.utm_medium", "op": "eq", "value": "email"}),
    rule("google_ref", 96, {"input": "referrer_host", "op": "suffix", "value": "google.com", "ignore_case": True}),
    rule("mobile", 95, {"input": "device", "op": "eq", "value": "mobile"}),
    rule("tablet", 94, {"input": "device", "op": "eq", "value": "tablet"}),
    rule("bot", 93, {"input": "device", "op": "eq", "value": "bot"}),
    rule("beta_header", 92, {"input": "header.x-beta", "op": "exists"}),
    rule("ab_b", 91, {"input": "cookie.ab", "op": "eq", "value": "b"}),
    rule("uk", 90, {"input": "header.x-country", "op": "in", "value": ["GB", "UK"]}),
    rule("evening", 89, {"input": "hour", "op": "between", "value": [18, 23]}),
    rule("weekend", 88, {"input": "weekday", "op": "gte", "value": 6}),
    rule("newcomer", 87, {"input": "visitor", "op": "eq", "value": "new"}),
    rule("champion", 86, {"all": [{"input": "attribute.rfm_recency", "op": "gte", "value": 4},
                                 {"input": "attribute.rfm_monetary", "op": "gte", "value": 4}]}),
    rule("at_risk", 85, {"input": "attribute.lifecycle", "op": "in", "value": ["at-risk", "lapsed"]}),
    rule("high_ltv", 84, {"input": "attribute.ltv", "op": "gt", "value": 500}),
    rule("vip_mobile", 83, {"all": [{"segment": "vip"}, {"segment": "mobile"}]}),
    rule("not_news_social", 82, {"all": [{"not": {"segment": "news"}}, {"segment": "paid_social"}]}),
    rule("ua_chrome", 81, {"input": "header.user-agent", "op": "contains", "value": "chrome", "ignore_case": True}),
]
open(f"{d}/segments.ndjson", "w").write("\n".join(segs) + "\n")
ids = []
with open(f"{d}/profiles.ndjson", "w") as f:
    for i in range(n):
        vid = base64.urlsafe_b64encode(random.randbytes(16)).decode().rstrip("=")
        ids.append(vid)
        f.write(json.dumps({"id": vid, "kind": "anonymous",
                            "segments": random.sample(["vip", "cart", "news", "lapsed"], random.randint(0, 2)),
                            "attributes": {"rfm_recency": random.randint(1, 5), "rfm_monetary": random.randint(1, 5),
                                           "lifecycle": random.choice(["new", "repeat", "at-risk", "lapsed"]),
                                           "ltv": random.randint(0, 2000)}}) + "\n")
mix = random.sample(ids, min(n, 200000))
mix += [base64.urlsafe_b64encode(random.randbytes(16)).decode().rstrip("=") for _ in range(len(mix) // 8)]
mix += ["-"] * (len(mix) // 8)
open(f"{d}/cookies.txt", "w").write("\n".join(mix) + "\n")
PY
"$repo/build/segsync" import --db "$dir/db" --segments "$dir/segments.ndjson" \
    --profiles "$dir/profiles.ndjson" > /dev/null

cat > "$dir/nginx.conf" <<CONF
load_module $repo/build/nginx/objs/ngx_http_segedge_module.so;
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
pid $dir/nginx.pid;
error_log $dir/error.log error;
events { worker_connections 256; }
http {
    access_log off;
    segedge_db $dir/db;
    server {
        listen 127.0.0.1:$port;
        location /bare/ { add_header X-Seg vip,cart,news; return 200 "ok\n"; }
        location /seg/ { segedge on; add_header X-Seg \$segedge_segments; return 200 "ok\n"; }
    }
}
CONF
/usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"
sleep 0.5
first=$(sed -n 1p "$dir/cookies.txt")
curl -s -o /dev/null -D - -b "segedge_id=$first" -A 'Mozilla/5.0 (iPhone) Mobile' \
    "http://127.0.0.1:$port/seg/sale/x?utm_medium=email" | tee "$dir/check.txt" | grep -q '^X-Seg: .*sale_path.*mobile' ||
    { echo "rules did not evaluate" >&2; exit 1; }

# Each request: a random visitor, User-Agent, path and UTM parameters.
cat > "$dir/mix.lua" <<LUA
local ids = {}
for line in io.lines("$dir/cookies.txt") do ids[#ids + 1] = line end
local uas = {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120 Safari/537.36",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
             "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)",
             "Mozilla/5.0 (compatible; Googlebot/2.1)"}
local paths = {"sale/shoes", "p/12345", "home", "cart"}
local utm = {"", "?utm_medium=paid_social&utm_source=facebook", "?utm_medium=email&utm_source=crm"}
math.randomseed(os.time())
init = function(args) prefix = args[1] end
request = function()
    local id = ids[math.random(#ids)]
    local headers = { ["User-Agent"] = uas[math.random(#uas)] }
    if id ~= "-" then headers["Cookie"] = "segedge_id=" .. id end
    return wrk.format("GET", prefix .. paths[math.random(#paths)] .. utm[math.random(#utm)], headers)
end
LUA

worker=$(pgrep -P "$(cat "$dir/nginx.pid")")
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }

run() {  # round, case, prefix
    local before requests
    before=$(cpu_ticks)
    requests=$(wrk -t1 -c16 -d"${seconds}s" -s "$dir/mix.lua" "http://127.0.0.1:$port/" -- "$3" |
               awk '/requests in/ { print $1 }')
    echo "$1 $2 $requests $(( $(cpu_ticks) - before ))"
}

for ((i = 0; i < rounds; i++)); do
    for c in $(printf '%s\n' bare rules | shuf); do
        case $c in
            bare)  run "$i" $c /bare/ ;;
            rules) run "$i" $c /seg/ ;;
        esac
    done
done | awk -v hz="$(getconf CLK_TCK)" -v cases="bare rules" -f "$repo/tests/bench/median_ratio.awk"
echo "(throughput relative to bare = 1 / the median ratio of CPU per request)"
grep -E '\[(alert|emerg|crit)\]' "$dir/error.log" && exit 1 || true
