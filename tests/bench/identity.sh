#!/bin/bash
# Cost of identity resolution per request, as a ratio against bare nginx in
# the same run: the same nginx serves a bare location and segedge locations
# (anonymous cookie; signed known cookie + alias + two profiles; first visit
# with an issued cookie), and wrk measures them interleaved, ROUNDS times.
#   tests/bench/identity.sh [SECONDS per run, default 2] [ROUNDS, default 9]
# Needs wrk and a build (conf/build.sh). Not part of tests/run.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-2}
rounds=${2:-9}
dir=$(mktemp -d /tmp/segedge-bench-XXXXXX)
port=$((20000 + RANDOM % 20000))
trap '[ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null; rm -rf "$dir"' EXIT

visitor_id() { printf '%-16.16s' "$1" | tr ' ' '\0' | base64 | tr '+/' '-_' | tr -d '=\n'; }
anon=$(visitor_id bench-anon)
echo "k1 hex:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$dir/keys"
cat > "$dir/segments.ndjson" <<EOF
{"name":"vip","priority":100}
{"name":"cart","priority":50}
{"name":"news","priority":10}
EOF
cat > "$dir/profiles.ndjson" <<EOF
{"id":"$anon","kind":"anonymous","segments":["cart","news"]}
{"id":"cust-1","kind":"known","segments":["vip","news"]}
EOF
echo "{\"anonymous\":\"$anon\",\"known\":\"cust-1\"}" > "$dir/aliases.ndjson"
"$repo/build/segsync" import --db "$dir/db" --segments "$dir/segments.ndjson" \
    --profiles "$dir/profiles.ndjson" --aliases "$dir/aliases.ndjson" > /dev/null
known=$("$repo/build/segsync" sign --keys "$dir/keys" --id cust-1)

cat > "$dir/nginx.conf" <<EOF
load_module $repo/build/nginx/objs/ngx_http_segedge_module.so;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log error;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
events { worker_connections 1024; }
http {
    access_log off;
    segedge_db $dir/db;
    segedge_keys $dir/keys;
    server {
        listen 127.0.0.1:$port;
        # the same response headers, without segedge
        location /bare {
            add_header X-Seg vip,cart,news;
            add_header X-Known 1;
            return 200 "ok\n";
        }
        location /seg {
            segedge on;
            segedge_cookie_issue on;
            add_header X-Seg \$segedge_segments;
            add_header X-Known \$segedge_known;
            return 200 "ok\n";
        }
    }
}
EOF
/usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"
sleep 0.5
# Measure nothing unless the segedge cases really resolve.
curl -s -o /dev/null -D - -b "segedge_id=$anon; segedge_known=$known" "http://127.0.0.1:$port/seg" |
    grep -q '^X-Seg: vip,cart,news' || { echo "segedge did not resolve" >&2; cat "$dir/error.log" >&2; exit 1; }

worker=$(pgrep -P "$(cat "$dir/nginx.pid")")
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }

# Prints "NAME REQUESTS WORKER-CPU-TICKS" for one wrk run.
run() {  # name, path, cookie
    local cookie=() before requests
    [ -n "$3" ] && cookie=(-H "Cookie: $3")
    before=$(cpu_ticks)
    requests=$(wrk -t1 -c16 -d"${seconds}s" "${cookie[@]}" "http://127.0.0.1:$port$2" |
               awk '/requests in/ { print $1 }')
    echo "$1 $requests $(( $(cpu_ticks) - before ))"
}

# The figure is the nginx worker's CPU time per request (user + system, from
# /proc), which other load on a shared machine disturbs far less than
# requests per second. Each round measures every case once, in a shuffled
# order; a case's ratio is the median over rounds of its CPU per request
# divided by that round's bare figure.
for ((i = 0; i < rounds; i++)); do
    for c in $(printf '%s\n' bare anonymous known first-visit | shuf); do
        case $c in
            bare)        run "$i $c" /bare "" ;;
            anonymous)   run "$i $c" /seg "segedge_id=$anon" ;;
            known)       run "$i $c" /seg "segedge_id=$anon; segedge_known=$known" ;;
            first-visit) run "$i $c" /seg "" ;;
        esac
    done
done | awk -v hz="$(getconf CLK_TCK)" -v cases="bare anonymous known first-visit" \
    -f "$repo/tests/bench/median_ratio.awk"
grep -E '\[(alert|emerg|crit)\]' "$dir/error.log" && exit 1 || true
