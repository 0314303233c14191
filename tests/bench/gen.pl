#!/usr/bin/perl
# Generates the benchmark's data set into DIR (see tests/bench/run.sh):
#
#   segments.ndjson     4 precomputed segments + the 20 rule segments
#   profiles.ndjson     N anonymous profiles (0-2 precomputed segments, 4
#                       attributes each) + N/50 known profiles
#   aliases.ndjson      the first N/50 anonymous ids -> the known ids
#   blocks.ndjson       content for 3 blocks x 9 segments, 2 experiment variants
#   experiments.ndjson  2 experiments: "checkout" (vip/cart, in a layer with a
#                       holdout) and "hero_test" (everyone, 3 variants)
#   keys                the key that signs known-visitor cookies
#   html/               the ~20 KB page with 3 blocks, under every request path
#   requests.tsv        the request pool wrk draws from: CATEGORY, path and
#                       query, Cookie, User-Agent, other headers ("N: v|N: v")
#   lookup.tsv          id -> precomputed segments for the pool's profiled ids
#                       (the map and the Lua dictionary of the comparisons)
#   map.conf, sub_filter.conf, blocks.tsv   the same jobs for nginx and Lua
#   vip.txt             a profiled vip visitor's id, to check each case
#
#   gen.pl DIR PROFILES POOL
#
# Deterministic (fixed seed) apart from the signed cookies' expiry time.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);

my ($dir, $profiles, $pool_size) = @ARGV;
die "usage: gen.pl DIR PROFILES POOL\n" unless $dir && $profiles && $pool_size;
srand(8);
sub out { open my $fh, '>', "$dir/$_[0]" or die "$dir/$_[0]: $!"; print $fh $_[1]; close $fh or die }
sub pick { $_[rand @_] }
sub anonymous_id { encode_base64url(pack 'N4', map { int rand 2**32 } 1 .. 4) }

# --- segments: the rule set of the former tests/bench/rules.sh
my @precomputed = ([vip => 200], [cart => 150], [news => 120], [lapsed => 110]);
my @rules = (
    [sale_path => 100, '{"input":"path","op":"contains","value":"/sale/"}'],
    [product_page => 99, '{"input":"path","op":"regex","value":"/p/[0-9]+$"}'],
    [paid_social => 98, '{"all":[{"input":"query.utm_medium","op":"eq","value":"paid_social","ignore_case":true},'
                      . '{"input":"query.utm_source","op":"in","value":["facebook","instagram","tiktok"]}]}'],
    [email_campaign => 97, '{"input":"query.utm_medium","op":"eq","value":"email"}'],
    [google_ref => 96, '{"input":"referrer_host","op":"suffix","value":"google.com","ignore_case":true}'],
    [mobile => 95, '{"input":"device","op":"eq","value":"mobile"}'],
    [tablet => 94, '{"input":"device","op":"eq","value":"tablet"}'],
    [bot => 93, '{"input":"device","op":"eq","value":"bot"}'],
    [beta_header => 92, '{"input":"header.x-beta","op":"exists"}'],
    [ab_b => 91, '{"input":"cookie.ab","op":"eq","value":"b"}'],
    [uk => 90, '{"input":"header.x-country","op":"in","value":["GB","UK"]}'],
    [evening => 89, '{"input":"hour","op":"between","value":[18,23]}'],
    [weekend => 88, '{"input":"weekday","op":"gte","value":6}'],
    [newcomer => 87, '{"input":"visitor","op":"eq","value":"new"}'],
    [champion => 86, '{"all":[{"input":"attribute.rfm_recency","op":"gte","value":4},'
                   . '{"input":"attribute.rfm_monetary","op":"gte","value":4}]}'],
    [at_risk => 85, '{"input":"attribute.lifecycle","op":"in","value":["at-risk","lapsed"]}'],
    [high_ltv => 84, '{"input":"attribute.ltv","op":"gt","value":500}'],
    [vip_mobile => 83, '{"all":[{"segment":"vip"},{"segment":"mobile"}]}'],
    [not_news_social => 82, '{"all":[{"not":{"segment":"news"}},{"segment":"paid_social"}]}'],
    [ua_chrome => 81, '{"input":"header.user-agent","op":"contains","value":"chrome","ignore_case":true}'],
);
out('segments.ndjson', join '',
    (map { qq({"name":"$_->[0]","priority":$_->[1]}\n) } @precomputed),
    (map { qq({"name":"$_->[0]","priority":$_->[1],"rule":$_->[2]}\n) } @rules));

# --- profiles, aliases and the profiled part of the request pool
my @lifecycle = qw(new repeat at-risk lapsed);
my $known = $profiles >= 100 ? int($profiles / 50) : 2;
my (@pool_profiled, @pool_known, %segments_of);
open my $fh, '>', "$dir/profiles.ndjson" or die $!;
open my $aliases, '>', "$dir/aliases.ndjson" or die $!;
for my $i (0 .. $profiles - 1) {
    my $id = anonymous_id();
    # profile 0 is the visitor every case is checked with
    my @segs = $i == 0 ? qw(vip cart)
             : grep { rand() < 0.2 } map { $_->[0] } @precomputed;
    my ($recency, $monetary, $stage, $ltv) = $i == 0 ? (5, 5, 'at-risk', 1500)
        : (1 + int rand 5, 1 + int rand 5, pick(@lifecycle), int rand 2000);
    printf $fh qq({"id":"%s","kind":"anonymous","segments":[%s],"attributes":)
             . qq({"rfm_recency":%d,"rfm_monetary":%d,"lifecycle":"%s","ltv":%d}}\n),
        $id, join(',', map { qq("$_") } @segs), $recency, $monetary, $stage, $ltv;
    if ($i < $known) {
        print $aliases qq({"anonymous":"$id","known":"cust-$i"}\n);
        printf $fh qq({"id":"cust-%d","kind":"known","segments":["vip"],"attributes":{"ltv":%d}}\n),
            $i, 500 + int rand 5000;
        push @pool_known, [$id, "cust-$i"] if $i > 0 && rand() < 0.03 * $pool_size / $known;
    }
    if ($i == 0 || rand() < 0.75 * $pool_size / $profiles) {
        push @pool_profiled, $id;
        $segments_of{$id} = join ',', @segs;
    }
}
close $fh or die;
close $aliases or die;
out('vip.txt', "$pool_profiled[0]\n");
out('lookup.tsv', join '', map { "$_\t$segments_of{$_}\n" } grep { $segments_of{$_} ne '' } @pool_profiled);
out('map.conf', join '', map { qq($_ "$segments_of{$_}";\n) } grep { $segments_of{$_} ne '' } @pool_profiled);

# --- signed known-visitor cookies (README "Signed known-visitor cookie")
my $secret = pack 'N8', map { int rand 2**32 } 1 .. 8;
out('keys', 'bench hex:' . unpack('H*', $secret) . "\n");
my $expires = time + 365 * 86400;
sub signed {
    my $body = "v1.bench." . encode_base64url($_[0]) . ".$expires";
    return "$body." . encode_base64url(hmac_sha256("segedge-known-visitor.$body", $secret));
}

# --- blocks, experiments, the page
my @block_segments = qw(vip cart lapsed sale_path mobile champion at_risk paid_social newcomer);
my $blocks = '';
for my $block (qw(hero offer banner)) {
    for my $segment (@block_segments) {
        next if $segment ne 'vip' && rand() < 0.3;
        my $html = qq(<section class=\\"$block $segment\\"><h2>For $segment</h2><p>)
                 . ("Personal words for the $segment segment. " x 6) . '</p></section>';
        $blocks .= qq({"block":"$block","segment":"$segment","html":"$html"}\n);
    }
}
$blocks .= qq({"block":"hero","segment":"vip","experiment":"hero_test","variant":"$_",)
         . qq("html":"<section class=\\"hero vip $_\\"><h2>For vip, $_</h2></section>"}\n) for qw(video carousel);
out('blocks.ndjson', $blocks);
# Lua's body job: the precomputed segments' contents (Lua evaluates no rules)
out('blocks.tsv', join '', map { /"block":"(\w+)","segment":"(vip|cart|lapsed)","html":"(.*)"}$/
                                 ? "$1\t$2\t" . ($3 =~ s/\\"/"/gr) . "\n" : () } split /^/, $blocks);
out('experiments.ndjson', <<'EXP');
{"layer":"checkout-layer","holdout":1000}
{"id":"checkout","segments":["vip","cart"],"status":"running","salt":"checkout-bench","variants":[{"name":"control","weight":5000},{"name":"B","weight":5000}],"layer":"checkout-layer","layer_range":[1000,10000]}
{"id":"hero_test","status":"running","salt":"hero-bench","holdout":500,"variants":[{"name":"control","weight":3000},{"name":"video","weight":3500},{"name":"carousel","weight":3500}]}
EXP

my %default = (hero => '<h2>Default hero</h2><p>Spring collection.</p>',
               offer => '<p>Default offer: free shipping over 50.</p>',
               banner => '<p>Default banner: sign up for the newsletter.</p>');
my $para = join '', map { qq(<p class="copy">Paragraph $_ of the shop's page: products, prices and )
                          . qq(<a href="/item/$_">links</a> to everything.</p>\n) } 1 .. 55;
my $page = "<!DOCTYPE html>\n<html><head><title>bench</title></head><body>\n";
$page .= qq(<div class="$_"><!--segedge:$_-->$default{$_}<!--/segedge:$_--></div>\n$para) for qw(hero offer banner);
$page .= "</body></html>\n";
my @paths = ('/', '/', '/', '/home', '/cart', '/blog/spring', '/sale/shoes', '/sale/bags',
             map { "/p/$_" } 1001 .. 1008);
for my $path (@paths) {
    my $file = "$dir/html" . ($path eq '/' ? '/index.html' : $path);
    (my $parent = $file) =~ s{/[^/]+$}{};
    system('mkdir', '-p', $parent) == 0 or die;
    out(substr($file, length $dir), $page);
}
out('sub_filter.conf', join '', map { my $new = $default{$_} =~ s/Default/Replaced/r;
                                      "sub_filter '$default{$_}' '$new';\n" } qw(hero offer banner));

# --- the request pool: 75% profiled, 3% known (signed cookie), 10% unknown
# ids, 12% without a cookie; random path, UTM, User-Agent and headers
my @uas = ('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
           'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
           'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
           'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
           'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36',
           'Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
           'Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36',
           'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)');
my @queries = ('', '', '', '', '?utm_medium=paid_social&utm_source=facebook', '?utm_medium=Paid_Social&utm_source=instagram',
               '?utm_medium=email&utm_source=crm&utm_campaign=spring', '?utm_source=google&utm_medium=cpc', '?q=shoes&page=2');
my @referers = ('', '', '', 'https://www.google.com/', 'https://l.facebook.com/', 'https://news.example.org/a/1');
sub request {
    my ($category, $cookie) = @_;
    my @cookies = grep { $_ ne '' } ($cookie, rand() < 0.5 ? "_ga=GA1.2.@{[int rand 1e9]}.1700000000" : '',
                                     rand() < 0.2 ? 'ab=b' : '');
    my @headers = ('Accept: text/html,application/xhtml+xml', 'Accept-Language: en-GB,en;q=0.9');
    my $referer = pick(@referers);
    push @headers, "Referer: $referer" if $referer;
    push @headers, 'X-Country: ' . pick(qw(GB DE US FR)) if rand() < 0.4;
    push @headers, 'X-Beta: 1' if rand() < 0.05;
    return join("\t", $category, pick(@paths) . pick(@queries), join('; ', @cookies), pick(@uas),
                join('|', @headers)) . "\n";
}
my @pool = map { request('profiled', "segedge_id=$_") } @pool_profiled;
push @pool, map { request('known', "segedge_id=$_->[0]; segedge_known=" . signed($_->[1])) } @pool_known;
push @pool, map { request('unknown', 'segedge_id=' . anonymous_id()) } 1 .. int(0.10 * $pool_size);
push @pool, map { request('new', '') } 1 .. int(0.12 * $pool_size);
out('requests.tsv', join '', @pool);
