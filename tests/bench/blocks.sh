#!/bin/bash
# Benchmark: dynamic content blocks against bare nginx and sub_filter.
#
#   tests/bench/blocks.sh            # the full run recorded in README (about 3 minutes)
#   tests/bench/blocks.sh --smoke    # seconds: checks that the benchmark works
#
# One nginx (Debian's, with the built module), one worker pinned to a CPU,
# three servers serving the same ~20 KB page with three blocks:
#   bare    the static file, nothing else
#   blocks  segedge on + segedge_blocks on (cookie lookup, block choice, swap)
#   sub     sub_filter with three replacements (nginx's own answer)
# wrk, pinned to another CPU, sends a random mix of visitors (cookies drawn
# from a generated profile set: some vip-like with several segments, some
# with none, some unknown, some without cookie). Runs are interleaved
# (bare blocks sub, bare blocks sub, ...) so drift hits all three alike;
# the result is the median requests/s per variant, its spread (min..max),
# and the median of the per-round ratios to bare. On a shared machine req/s
# also measures the neighbours, so the nginx worker's CPU time per request
# (from /proc) is reported next to it: the cost the module adds.
#
# Environment: DURATION (wrk seconds per run, default 10), ROUNDS (default 7),
# CONNECTIONS (default 32), VISITORS (profiles generated, default 20000).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

if [ "${1:-}" = "--smoke" ]; then
    : "${DURATION:=1}" "${ROUNDS:=1}" "${VISITORS:=500}"
elif [ -n "${1:-}" ]; then
    echo "usage: $0 [--smoke]" >&2
    exit 2
fi
: "${DURATION:=10}" "${ROUNDS:=7}" "${CONNECTIONS:=32}" "${VISITORS:=20000}"

module=$repo/build/nginx/objs/ngx_http_segedge_module.so
segsync=$repo/build/segsync
for f in "$module" "$segsync"; do
    [ -e "$f" ] || { echo "missing $f: run conf/build.sh first" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d /tmp/segedge-bench-XXXXXX)
nginx_pid=
cleanup() {
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null && sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/html" "$work/feed" "$work/logs"

# --- data: segments, profiles, block contents, the page, the cookie mix
perl - "$work" "$VISITORS" <<'PERL'
use strict;
use warnings;
use JSON::PP;
use MIME::Base64 qw(encode_base64url);
my ($work, $visitors) = @ARGV;
my $json = JSON::PP->new->canonical;
srand(42);
sub out { open my $fh, '>', "$work/$_[0]" or die $!; print $fh $_[1]; close $fh }

my @segments = qw(vip cart_abandoner lapsed bargain_hunter loyal newsletter mobile_first
                  gift_buyer student b2b new_visitor browser);
out('feed/segments.ndjson', join '', map {
    sprintf qq({"name":"%s","description":"bench segment","owner":"bench","priority":%d}\n),
            $segments[$_], 1000 - 10 * $_ } 0 .. $#segments);

# canonical visitor ids: 16 bytes, base64url (what the module issues)
my $new_id = sub { encode_base64url(pack 'C16', map { rand 256 } 1 .. 16) };
my ($profiles, @cookies) = ('');
for my $i (1 .. $visitors) {
    my $id = $new_id->();
    my $n = (0, 0, 1, 1, 2, 3, 4)[rand 7];
    my %pick;
    $pick{ $segments[rand @segments] } = 1 while keys %pick < $n;
    $profiles .= qq({"id":"$id","kind":"anonymous","segments":[)
               . join(',', map { qq("$_") } sort keys %pick) . "]}\n";
    push @cookies, $id;
}
out('feed/profiles.ndjson', $profiles);
# the request mix: 80% profiled visitors, 10% unknown ids, 10% no cookie
push @cookies, map { $new_id->() } 1 .. int($visitors / 8);
push @cookies, ('-') x int($visitors / 8);
out('cookies.txt', join "\n", @cookies, '');

my $fragment = sub {
    my ($block, $segment) = @_;
    return qq(<section class="$block $segment"><h2>For $segment</h2><p>)
         . ("Personal words for the $segment segment. " x 6) . '</p></section>';
};
my $blocks = '';
for my $block (qw(hero offer banner)) {
    for my $segment (@segments[0 .. 8]) {
        next if rand() < 0.3;
        $blocks .= $json->encode({ block => $block, segment => $segment,
                                   html => $fragment->($block, $segment) }) . "\n";
    }
}
out('feed/blocks.ndjson', $blocks);

my $para = join '', map { "<p class=\"copy\">Paragraph $_ of the shop's page: products, prices and "
                          . "<a href=\"/item/$_\">links</a> to everything.</p>\n" } 1 .. 55;
my %default = (hero => '<h2>Default hero</h2><p>Spring collection.</p>',
               offer => '<p>Default offer: free shipping over 50.</p>',
               banner => '<p>Default banner: sign up for the newsletter.</p>');
my $page = "<!DOCTYPE html>\n<html><head><title>bench</title></head><body>\n";
$page .= "<div class=\"$_\"><!--segedge:$_-->$default{$_}<!--/segedge:$_--></div>\n$para"
    for qw(hero offer banner);
$page .= "</body></html>\n";
out('html/index.html', $page);
out('sub_filter.conf', join '', map {
    my $new = $default{$_} =~ s/Default/Replaced/r;
    "sub_filter '$default{$_}' '$new';\n" } qw(hero offer banner));
PERL

"$segsync" import --db "$work/db" --segments "$work/feed/segments.ndjson" \
    --profiles "$work/feed/profiles.ndjson" --blocks "$work/feed/blocks.ndjson" \
    --source bench >/dev/null

# --- nginx: one worker, pinned; wrk on another CPU when there is one
cpus=$(nproc)
affinity= pin_wrk=()
if [ "$cpus" -ge 2 ]; then
    affinity="worker_cpu_affinity 01;"
    pin_wrk=(taskset -c 1)
fi
port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1")->sockport'; }
declare -A ports=([bare]=$(port) [blocks]=$(port) [sub]=$(port))
user=; [ "$(id -u)" = 0 ] && user="user root root;"
cat > "$work/nginx.conf" <<EOF
load_module $module;
$user
worker_processes 1;
$affinity
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    segedge_db $work/db;
    root $work/html;
    server { listen 127.0.0.1:${ports[bare]}; }
    server { listen 127.0.0.1:${ports[blocks]}; segedge on; segedge_blocks on; }
    server { listen 127.0.0.1:${ports[sub]}; include $work/sub_filter.conf; }
}
EOF
/usr/sbin/nginx -p "$work/" -c "$work/nginx.conf"
for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$work/nginx.pid")

# --- check each variant does its job before timing it
vip=$(grep -m1 '"vip"' "$work/feed/profiles.ndjson" | sed 's/.*"id":"\([^"]*\)".*/\1/')
check() {
    local body
    body=$(curl -sf -b "segedge_id=$vip" "http://127.0.0.1:${ports[$1]}/")
    [[ $body == *"$2"* ]] || { echo "bench: $1 does not serve '$2'" >&2; exit 1; }
}
check bare 'Default hero'
check blocks 'For vip'
check sub 'Replaced hero'

cat > "$work/mix.lua" <<EOF
local ids = {}
for line in io.lines("$work/cookies.txt") do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function()
    local id = ids[math.random(#ids)]
    if id == "-" then return wrk.format("GET", "/") end
    return wrk.format("GET", "/", { Cookie = "segedge_id=" .. id })
end
EOF

worker=$(pgrep -P "$nginx_pid" | head -1)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }
ticks_per_second=$(getconf CLK_TCK)

run() {  # variant seconds -> "requests/s worker-CPU-microseconds/request"
    local before after out
    before=$(cpu_ticks)
    out=$("${pin_wrk[@]}" wrk -t1 -c"$CONNECTIONS" -d"$2"s -s "$work/mix.lua" "http://127.0.0.1:${ports[$1]}/")
    after=$(cpu_ticks)
    echo "$out" | awk -v cpu=$((after - before)) -v hz="$ticks_per_second" '
        /^Requests\/sec:/ { rps = $2 }
        /requests in/ { n = $1 }
        END { printf "%s %.1f\n", rps, cpu / hz * 1e6 / n }'
}

echo "segedge blocks benchmark: $(wc -c < "$work/html/index.html") byte page, 3 blocks," \
     "$VISITORS profiles, $ROUNDS rounds x ${DURATION}s, $CONNECTIONS connections, $cpus CPUs"
for v in bare blocks sub; do run "$v" 1 >/dev/null; done  # warm up
: > "$work/results"
for round in $(seq "$ROUNDS"); do
    line="$round"
    for v in bare blocks sub; do line="$line $(run "$v" "$DURATION")"; done
    echo "$line" | awk '{ printf "  round %s: bare %.0f req/s %.1f us, blocks %.0f req/s %.1f us, sub %.0f req/s %.1f us\n",
                                $1, $2, $3, $4, $5, $6, $7 }'
    echo "$line" >> "$work/results"
done

grep -E '\[(alert|emerg|crit|error)\]' "$work/logs/error.log" && { echo "bench: errors logged" >&2; exit 1; }

perl -e '
    my (%rps, %cpu, %ratio, %cost);
    while (<>) {
        my (undef, %run);
        (undef, @run{qw(bare bare_cpu blocks blocks_cpu sub sub_cpu)}) = split;
        for my $v (qw(bare blocks sub)) {
            push @{ $rps{$v} }, $run{$v};
            push @{ $cpu{$v} }, $run{"${v}_cpu"};
            push @{ $ratio{$v} }, $run{$v} / $run{bare};
            push @{ $cost{$v} }, $run{bare_cpu} / $run{"${v}_cpu"};
        }
    }
    sub median { my @v = sort { $a <=> $b } @_; @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2 }
    sub range { my @v = sort { $a <=> $b } @_; ($v[0], $v[-1]) }
    for my $v (qw(bare blocks sub)) {
        printf "%-6s %7.0f req/s (%.0f..%.0f)  worker CPU %5.1f us/request (%.1f..%.1f)\n",
               $v, median(@{ $rps{$v} }), range(@{ $rps{$v} }), median(@{ $cpu{$v} }), range(@{ $cpu{$v} });
    }
    for my $v (qw(blocks sub)) {
        printf "%-6s / bare: %.2fx req/s (rounds %.2f..%.2f), %.2fx by worker CPU per request (rounds %.2f..%.2f)\n",
               $v, median(@{ $ratio{$v} }), range(@{ $ratio{$v} }), median(@{ $cost{$v} }), range(@{ $cost{$v} });
    }
' "$work/results"
