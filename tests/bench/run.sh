#!/bin/bash
# The segedge benchmark: generates its data, runs every configuration in one
# interleaved session against bare nginx, runs the segcore micro-benchmarks,
# and writes build/bench/results.{json,csv,md} and build/bench/ratios.png.
# README "Performance" explains the configurations and how to read the result.
#
#   tests/bench/run.sh [--smoke] [--profiles 1000000,10000000] [--seconds 10]
#                      [--rounds 5] [--connections 32] [--cases bare,segedge-header,...]
#                      [--mix mixed|profiled|known|unknown|new] [--no-micro] [--save]
#
# --smoke     2000 profiles, 1 round of 1 s per configuration, short
#             micro-benchmarks, results in build/bench/smoke/: checks that the
#             benchmark works (tests/run.sh runs it); gates on nothing but
#             that and clean error logs, never on the figures
# --profiles  profile counts; the segedge configurations run once per count
# --cases     a subset of the configurations (see `case_conf` below), also
#             segedge-metrics (header mode + metrics zone), not run by default
# --mix       only one kind of visitor instead of the mix (see gen.pl)
# --save      also copy the results and the chart to tests/bench/results/
#
# Generated data is kept in build/bench/data/COUNT/ and reused while gen.pl
# and the schema are unchanged (10 M profiles take minutes to make).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bench=$repo/tests/bench
out=$repo/build/bench

usage() { sed -n '7,9p' "$0" | sed 's/^# *//' >&2; exit 2; }
command="tests/bench/run.sh $*"
smoke=0 micro=1 save=0 mix=mixed connections=32 cases= profiles= seconds= rounds=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) smoke=1 ;;
        --no-micro) micro=0 ;;
        --save) save=1 ;;
        --profiles|--seconds|--rounds|--connections|--cases|--mix)
            [ $# -ge 2 ] || usage
            declare "${1#--}=$2"
            shift ;;
        *) usage ;;
    esac
    shift
done
if [ $smoke = 1 ]; then
    out=$out/smoke  # keeps the last full run's results
    : "${profiles:=2000}" "${seconds:=1}" "${rounds:=1}"
    pool=1000 micro_time=0.01 micro_repetitions=1
else
    : "${profiles:=1000000,10000000}" "${seconds:=10}" "${rounds:=5}"
    pool=50000 micro_time=0.5 micro_repetitions=3
fi
: "${cases:=bare,nginx-map,nginx-sub,lua-header,lua-body,segedge-header,segedge-blocks,segedge-all}"
IFS=, read -ra counts <<< "$profiles"
IFS=, read -ra wanted <<< "$cases"

module=$repo/build/nginx/objs/ngx_http_segedge_module.so
segsync=$repo/build/segsync
microbench=$repo/build/segedge_microbench
lua_modules=(/usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so)
for f in "$module" "$segsync" "$microbench"; do
    [ -f "$f" ] || { echo "bench: missing $f: run conf/build.sh first" >&2; exit 1; }
done
for tool in wrk curl perl gnuplot; do
    command -v $tool >/dev/null || { echo "bench: $tool not installed (conf/deps.sh installs it)" >&2; exit 1; }
done

label() { perl -e '$_ = shift; print $_ % 1e6 == 0 ? ($_ / 1e6) . "M" : $_ % 1e3 == 0 ? ($_ / 1e3) . "k" : $_' "$1"; }

# --- data: one set per profile count, reused while its stamp matches
prepare() {  # count -> data dir on stdout
    local n=$1 data=$repo/build/bench/data/$1 stamp
    stamp=$(cat "$bench/gen.pl" "$repo/segcore/schema.h" | sha256sum | cut -c1-16)-pool$pool
    if [ "$(cat "$data/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -e "$data/db/current" ]; then
        echo "bench: generating $(label "$n") profiles into $data" >&2
        rm -rf "$data"
        mkdir -p "$data"
        perl "$bench/gen.pl" "$data" "$n" "$pool"
        "$segsync" import --db "$data/db" --source bench \
            --segments "$data/segments.ndjson" --profiles "$data/profiles.ndjson" \
            --aliases "$data/aliases.ndjson" --blocks "$data/blocks.ndjson" \
            --experiments "$data/experiments.ndjson" >&2
        rm "$data/profiles.ndjson" "$data/aliases.ndjson"
        echo "$stamp" > "$data/stamp"
    fi
    echo "$data"
}
declare -A data_of
for n in "${counts[@]}"; do data_of[$n]=$(prepare "$n"); done

# --- configurations: what each nginx instance adds to the same static page
case_conf() {  # case -> sets main, http, server (@DATA@ and @DB@ filled in later)
    main= http= server=
    case $1 in
    bare) ;;
    nginx-map)  # the nearest built-in header job: map on the cookie, split_clients, add_header
        http='map_hash_max_size 262144; map_hash_bucket_size 128;
              map $cookie_segedge_id $bench_segments { default ""; include @DATA@/map.conf; }
              split_clients "${cookie_segedge_id}checkout" $bench_variant { 10% holdout; 45% control; * B; }'
        server='add_header X-Seg $bench_segments; add_header X-Exp checkout:$bench_variant;' ;;
    nginx-sub)  # the nearest built-in body job: three replacements
        server='include @DATA@/sub_filter.conf;' ;;
    lua-header|lua-body)
        main="load_module ${lua_modules[0]}; load_module ${lua_modules[1]};"
        http='lua_shared_dict bench_profiles 32m;
              init_by_lua_block {
                  local profiles = ngx.shared.bench_profiles
                  for line in io.lines("@DATA@/lookup.tsv") do
                      local id, segments = line:match("^([^\t]+)\t(.*)$")
                      profiles:set(id, segments)
                  end
                  bench_blocks = {}
                  for line in io.lines("@DATA@/blocks.tsv") do
                      local block, segment, html = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
                      bench_blocks[block] = bench_blocks[block] or {}
                      bench_blocks[block][segment] = html
                  end
              }'
        if [ "$1" = lua-header ]; then
            server='header_filter_by_lua_block {
                        local id = ngx.var.cookie_segedge_id
                        local segments = id and ngx.shared.bench_profiles:get(id)
                        if segments then ngx.header["X-Seg"] = segments end
                    }'
        else
            server='header_filter_by_lua_block {
                        local id = ngx.var.cookie_segedge_id
                        local segments = id and ngx.shared.bench_profiles:get(id)
                        if segments then
                            ngx.ctx.segments = segments
                            ngx.header.content_length = nil
                        end
                    }
                    body_filter_by_lua_block {
                        local ctx = ngx.ctx
                        if not ctx.segments then return end
                        ctx.body = (ctx.body or "") .. ngx.arg[1]
                        if not ngx.arg[2] then ngx.arg[1] = nil return end
                        ngx.arg[1] = ngx.re.gsub(ctx.body, [[<!--segedge:(\w+)-->.*?<!--/segedge:\1-->]],
                            function(m)
                                local contents = bench_blocks[m[1]] or {}
                                for segment in ctx.segments:gmatch("[^,]+") do
                                    local html = contents[segment]
                                    if html then
                                        return "<!--segedge:" .. m[1] .. "-->" .. html .. "<!--/segedge:" .. m[1] .. "-->"
                                    end
                                end
                                return m[0]
                            end, "jos")
                    }'
        fi ;;
    segedge-*)
        main="load_module $module;"
        http='segedge_db @DB@; segedge_keys @DATA@/keys;'
        case $1 in
        segedge-header)  server='segedge on; add_header X-Seg $segedge_segments;' ;;
        segedge-metrics) server='segedge on; add_header X-Seg $segedge_segments;'
                         http+=' segedge_metrics_zone bench 1m;' ;;
        segedge-blocks)  server='segedge on; segedge_blocks on;' ;;
        segedge-all)
            http+=' segedge_metrics_zone bench 1m;
                   server { listen 127.0.0.1:@STATUS@; location / { segedge_status; } }'
            server='segedge on; segedge_cookie_issue on; segedge_blocks on;
                    add_header X-Seg $segedge_segments; add_header X-Exp $segedge_experiments;
                    add_header X-Known $segedge_known;' ;;
        *) return 1 ;;
        esac ;;
    *) return 1 ;;
    esac
}

# The segedge configurations run once per profile count (NAME@COUNT); the
# others use the first count's data (its request pool, map and dictionary).
lua_ok=1
for f in "${lua_modules[@]}"; do [ -f "$f" ] || lua_ok=0; done
[[ ,$cases, == *,bare,* ]] || wanted=(bare "${wanted[@]}")
all_cases=()
declare -A count_of
for c in "${wanted[@]}"; do
    case_conf "$c" || { echo "bench: unknown configuration '$c'" >&2; exit 2; }
    if [[ $c == lua-* && $lua_ok = 0 ]]; then
        echo "bench: $c skipped: libnginx-mod-http-lua is not installed" >&2
    elif [[ $c == segedge-* ]]; then
        for n in "${counts[@]}"; do all_cases+=("$c@$(label "$n")"); count_of[$c@$(label "$n")]=$n; done
    else
        all_cases+=("$c")
        count_of[$c]=${counts[0]}
    fi
done

# --- one nginx per configuration, each with one worker on CPU 0; wrk on CPU 1
run=$out/run
rm -rf "$run"
mkdir -p "$run"
affinity= pin_wrk=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    affinity="worker_cpu_affinity 01;"
    pin_wrk=(taskset -c 1)
fi
user=; [ "$(id -u)" = 0 ] && user="user root root;"
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1")->sockport'; }
declare -A port worker pool_of status_port
stop_all() {
    local pid
    for pid in "$run"/*/nginx.pid; do
        [ -f "$pid" ] && kill -QUIT "$(cat "$pid")" 2>/dev/null
    done
    return 0
}
trap stop_all EXIT

for c in "${all_cases[@]}"; do
    data=${data_of[${count_of[$c]}]}
    pool_of[$c]=$data/requests.tsv
    port[$c]=$(free_port)
    status_port[$c]=$(free_port)
    case_conf "${c%@*}"
    dir=$run/$c
    mkdir -p "$dir/logs"
    conf="$main
$user
worker_processes 1;
$affinity
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    default_type text/html;  # the request paths have no extension
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    root $data/html;
    $http
    server {
        listen 127.0.0.1:${port[$c]};
        $server
    }
}"
    conf=${conf//@DATA@/$data}
    conf=${conf//@DB@/$data/db}
    echo "${conf//@STATUS@/${status_port[$c]}}" > "$dir/nginx.conf"
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" ||
        { echo "bench: $c: nginx did not start" >&2; exit 1; }
done
for c in "${all_cases[@]}"; do
    for _ in $(seq 100); do
        [ -s "$run/$c/nginx.pid" ] && worker[$c]=$(pgrep -P "$(cat "$run/$c/nginx.pid")" | head -1) &&
            [ -n "${worker[$c]}" ] && break
        sleep 0.1
    done
    [ -n "${worker[$c]:-}" ] || { echo "bench: $c: no nginx worker" >&2; exit 1; }
done

# --- each configuration must do its job before it is timed
check() {  # case, header regex, body text
    local got
    got=$(curl -s -D - -b "segedge_id=$(cat "${pool_of[$1]%/*}/vip.txt")" -H 'X-Country: GB' \
               -A 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148' \
               "http://127.0.0.1:${port[$1]}/sale/shoes?utm_medium=email") || true
    grep -qE "$2" <<< "$got" && grep -qF "$3" <<< "$got" ||
        { echo "bench: $1 does not do its job (expected /$2/ and '$3'):" >&2; head -20 <<< "$got" >&2; exit 1; }
}
for c in "${all_cases[@]}"; do
    case ${c%@*} in
        bare)            check "$c" '^HTTP/1.1 200' 'Default hero' ;;
        nginx-map)       check "$c" '^X-Seg: vip,cart' 'Default hero' ;;
        nginx-sub)       check "$c" '^HTTP/1.1 200' 'Replaced hero' ;;
        lua-header)      check "$c" '^X-Seg: vip,cart' 'Default hero' ;;
        lua-body)        check "$c" '^HTTP/1.1 200' 'For vip</h2>' ;;
        segedge-header|segedge-metrics) check "$c" '^X-Seg: vip,cart,sale_path,.*mobile' 'Default hero' ;;
        segedge-blocks)  check "$c" '^HTTP/1.1 200' 'For vip' ;;
        segedge-all)     check "$c" '^X-Exp: .*hero_test:' 'For vip' ;;
    esac
done

# --- the session: every round runs every configuration once, in a new
# random order, so drift and neighbours' load hit all of them alike
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wrk_run() {  # case seconds [once]
    "${pin_wrk[@]}" wrk -t1 -c"$connections" -d"$2"s --timeout 5s -s "$bench/mix.lua" \
        "http://127.0.0.1:${port[$1]}/" -- "${pool_of[$1]}" "$mix" ${3:-}
}
measure() {  # case seconds -> "requests duration_us p50_us p99_us non2xx socket_errors cpu_ticks"
    local before after result
    before=$(ticks "${worker[$1]}")
    result=$(wrk_run "$1" "$2" | sed -n 's/^WRK //p')
    after=$(ticks "${worker[$1]}") || { echo "bench: $1: the nginx worker died" >&2; exit 1; }
    [ -n "$result" ] || { echo "bench: $1: wrk gave no result" >&2; exit 1; }
    eval "local $result"
    [ "$non2xx" = 0 ] || { echo "bench: $1: $non2xx responses were not 2xx" >&2; exit 1; }
    echo "$requests $duration_us $p50_us $p99_us $non2xx $socket_errors $((after - before))"
}

echo "segedge benchmark: ${#all_cases[@]} configurations, $rounds rounds x ${seconds}s, $connections connections," \
     "mix $mix, profiles ${profiles}, $(nproc) CPUs${affinity:+ (nginx worker on CPU 0, wrk on CPU 1)}, load $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up: each configuration gets the whole pool once, in order, so that
# the worker has mapped the pages its visitors' lookups touch (as a worker
# that has served for a while has) before anything is timed.
for c in "${all_cases[@]}"; do
    wrk_run "$c" 600 once >/dev/null || { echo "bench: $c: warm-up failed" >&2; exit 1; }
done
rounds_file=$out/rounds.tsv
echo -e "round\tcase\trequests\tduration_us\tp50_us\tp99_us\tnon2xx\tsocket_errors\tcpu_ticks" > "$rounds_file"
for ((round = 1; round <= rounds; round++)); do
    line=
    for c in $(printf '%s\n' "${all_cases[@]}" | shuf); do
        measure "$c" "$seconds" > "$run/measured"
        read -r requests duration p50 p99 non2xx errors cpu < "$run/measured"
        echo -e "$round\t$c\t$requests\t$duration\t$p50\t$p99\t$non2xx\t$errors\t$cpu" >> "$rounds_file"
        line+=" $c $((requests * 1000000 / duration))/s"
    done
    echo "  round $round:$line"
done

for c in "${all_cases[@]}"; do
    [[ $c == segedge-all@* ]] || continue
    curl -s "http://127.0.0.1:${status_port[$c]}/" | grep -q '^segedge_requests_total [1-9]' ||
        { echo "bench: $c counted no requests in its metrics zone" >&2; exit 1; }
done
stop_all
trap - EXIT
sleep 0.5
if grep -E '\[(alert|emerg|crit)\]|exited on signal' "$run"/*/logs/error.log; then
    echo "bench: errors in the nginx error logs above" >&2
    exit 1
fi

# --- segcore micro-benchmarks on each data set
micro_files=()
if [ $micro = 1 ]; then
    for n in "${counts[@]}"; do
        data=${data_of[$n]}
        file=$out/micro-$(label "$n").json
        "$microbench" --db="$data/db" --requests="$data/requests.tsv" --page="$data/html/index.html" \
            --benchmark_min_time="$micro_time" --benchmark_repetitions="$micro_repetitions" \
            --benchmark_out="$file" --benchmark_out_format=json > "$out/micro-$(label "$n").txt" 2>&1 ||
            { cat "$out/micro-$(label "$n").txt" >&2; echo "bench: micro-benchmarks failed" >&2; exit 1; }
        micro_files+=("$(label "$n")=$file")
    done
fi

# --- results: JSON, CSV, markdown table, chart
perl "$bench/report.pl" --out "$out" --rounds-file "$rounds_file" --command "$command" \
    --cases "$(IFS=,; echo "${all_cases[*]}")" \
    --settings "rounds=$rounds seconds=$seconds connections=$connections mix=$mix profiles=$profiles pool=$pool" \
    "${micro_files[@]}"
if [ $save = 1 ]; then
    mkdir -p "$bench/results"
    cp "$out"/results.json "$out"/results.csv "$out"/results.md "$out"/ratios.png "$bench/results/"
    echo "bench: saved to tests/bench/results/"
fi
