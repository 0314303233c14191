# $segedge_segments in proxy_cache_key: the cache keeps one entry per
# segment set, so visitors in the same segments share it and nobody is served
# another segment's page.

use SegEdge::Test;

# Canonical 22-character ids, valid under every visitor-id rule.
my %id = (vip => 'AAAAAAAAAAAAAAAAAAAAAA', vip2 => 'BBBBBBBBBBBBBBBBBBBBBA',
          news => 'CCCCCCCCCCCCCCCCCCCCCA');

my ($rc, $out) = import_snapshot('db', <<'SEG', <<"PROF");
{"name":"vip","priority":100}
{"name":"newsletter","priority":10}
SEG
{"id":"$id{vip}","kind":"anonymous","segments":["vip"]}
{"id":"$id{vip2}","kind":"anonymous","segments":["vip"]}
{"id":"$id{news}","kind":"anonymous","segments":["newsletter"]}
PROF
is $rc, 0, 'snapshot imported' or diag $out;

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;
    proxy_cache_path %%TESTDIR%%/cache keys_zone=pages:1m;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;

        location / {
            proxy_cache pages;
            proxy_cache_valid 200 10m;
            proxy_cache_key "$uri|$segedge_segments";
            proxy_set_header X-Segments $segedge_segments;
            add_header X-Cache $upstream_cache_status always;
            proxy_pass http://127.0.0.1:%%PORT2%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        # The origin renders per segment and stamps each render.
        location / {
            return 200 "page for [$http_x_segments] rendered $request_id\n";
        }
    }
EOF

sub fetch {
    my ($who) = @_;
    my $r = http_get('/page', $who ? (Cookie => "segedge_id=$id{$who}") : ());
    return ($r->value('X-Cache'), $r->body);
}

my ($cache, $vip_page) = fetch('vip');
is $cache, 'MISS', 'first vip visitor: cache miss';
like $vip_page, qr/^page for \[vip\]/, 'first vip visitor: the vip render';

($cache, my $again) = fetch('vip2');
is $cache, 'HIT', 'another visitor in the same segments: cache hit';
is $again, $vip_page, 'another visitor in the same segments: the same cached render';

($cache, my $news_page) = fetch('news');
is $cache, 'MISS', 'a visitor in another segment: its own cache entry';
like $news_page, qr/^page for \[newsletter\]/, 'a visitor in another segment: its own render';

($cache, my $anon_page) = fetch(undef);
is $cache, 'MISS', 'no cookie: its own cache entry';
like $anon_page, qr/^page for \[\]/, 'no cookie: the unpersonalised render';

done_testing;
