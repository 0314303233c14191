# The metrics zone and segedge_status: counters move as known visitors
# arrive (two workers, one shared zone), both formats agree and parse
# strictly, fail-open events are counted even when their log line is
# rate-limited, a reload keeps the counters, a resized zone starts afresh,
# and segsync report reads the output.

use SegEdge::Test;
use SegEdge::Prometheus qw(parse_exposition);
use JSON::PP ();

my $SEG = <<'SEG';
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"sale","description":"Bought in the sale","owner":"shop","priority":10}
{"name":"dormant","description":"Nobody any more","owner":"crm","priority":1}
SEG
my %V = map { $_ => visitor_id($_) } qw(v-vip v-sale nobody);
my $PROF = <<"PROF";
{"id":"$V{'v-vip'}","kind":"anonymous","segments":["vip","sale"]}
{"id":"$V{'v-sale'}","kind":"anonymous","segments":["sale"]}
PROF
my $BLOCKS = <<'BLOCKS';
{"block":"hero","segment":"vip","html":"<b>vip</b>"}
BLOCKS

my ($rc, $out) = import_snapshot('db', $SEG, $PROF, 'test', undef, $BLOCKS);
is $rc, 0, 'snapshot imported' or diag $out;

mkdir testdir() . '/html';
write_text(testdir() . '/html/page.html', "<!--segedge:hero-->default<!--/segedge:hero-->\n");

my $CONF = <<'CONF';
    segedge_db %%TESTDIR%%/db;
    segedge_metrics_zone segedge_metrics SIZE;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        segedge_blocks on;
        root %%TESTDIR%%/html;
        location / {
            return 200 "$segedge_segments\n";
        }
        location /page.html { }
        location = /status {
            segedge off;
            segedge_status;
        }
    }
CONF
(my $conf = $CONF) =~ s/SIZE/1m/;
start_nginx($conf, workers => 2);

sub get { http_get(@_) }
sub visit { my ($who, $path) = @_; get($path // '/', Cookie => "segedge_id=$V{$who}") }

sub scrape {
    my $r = get('/status');
    is $r->status, 200, 'status answers';
    like $r->header('Content-Type'), qr{^text/plain; version=0\.0\.4}, 'exposition content type';
    my $m = eval { parse_exposition($r->body) };
    ok $m, 'exposition parses strictly' or diag "$@\n" . $r->body;
    return $m ? $m->{samples} : {};
}

sub scrape_json {
    my $r = get('/status?format=json');
    is $r->header('Content-Type'), 'application/json', 'json content type';
    return (JSON::PP::decode_json($r->body), $r->body);
}

my $before = scrape();
is $before->{segedge_requests_total}, 0, 'no requests counted yet';
is $before->{'segedge_fail_open_total{cause="cookie"}'}, 0, 'fail-open causes listed from zero';
is $before->{segedge_snapshot_generation}, 1, 'generation in use';
ok $before->{segedge_lmdb_map_used_bytes} > 0, 'map usage reported';
ok $before->{segedge_lmdb_map_used_bytes} <= $before->{segedge_lmdb_map_size_bytes}, 'used within the map';
ok $before->{segedge_lmdb_readers} >= 1 && $before->{segedge_lmdb_readers} <= $before->{segedge_lmdb_max_readers},
   'reader slots within bounds';

is visit('v-vip')->body, "vip,sale\n", 'vip visitor' for 1 .. 5;
is visit('v-sale')->body, "sale\n", 'sale visitor' for 1 .. 3;
is visit('nobody')->body, "\n", 'unknown visitor' for 1 .. 2;
like visit('v-vip', '/page.html')->body, qr{<b>vip</b>}, 'block swapped';
like visit('v-sale', '/page.html')->body, qr{default}, 'default block' for 1 .. 2;

my $size = error_log_size();
get('/', Cookie => 'segedge_id=not-an-id') for 1 .. 4;

my $after = scrape();
is $after->{segedge_requests_total}, 5 + 3 + 2 + 3 + 4, 'every resolved request counted';
is $after->{'segedge_segment_matches_total{segment="vip"}'}, 6, 'vip matches';
is $after->{'segedge_segment_matches_total{segment="sale"}'}, 5 + 3 + 1 + 2, 'sale matches';
is $after->{'segedge_segment_matches_total{segment="dormant"}'} // 0, 0, 'dormant never matched';
is $after->{'segedge_block_swaps_total{block="hero"}'}, 1, 'one block swap';
is $after->{'segedge_fail_open_total{cause="cookie"}'}, 4, 'each malformed cookie counted';
my @lines = error_log_text($size) =~ /malformed visitor cookie/g;
ok @lines <= 2, 'while logged at most once per worker' or diag scalar @lines;
is $after->{segedge_stale_requests_total}, 0, 'nothing stale';

my $post = parse_response(http("POST /status HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
                                . "Connection: close\r\n\r\n"));
is $post->status, 405, 'status takes GET and HEAD only';

my ($json, $json_text) = scrape_json();
is $json->{requests}, $after->{segedge_requests_total}, 'json: requests';
is $json->{segments}{vip}, 6, 'json: vip';
is $json->{blocks}{hero}, 1, 'json: hero';
is $json->{fail_open}{cookie}, 4, 'json: fail-open';
is $json->{snapshot}{generation}, 1, 'json: generation';
is $json->{counters_created_at}, $after->{segedge_counters_created_seconds}, 'json: same zone';

# --- segsync report over the saved counters and over the status URL
write_text(testdir() . '/counters.json', $json_text);
($rc, $out) = segsync('report', '--db', testdir() . '/db', '--counters', testdir() . '/counters.json', '--json');
is $rc, 0, 'report from a counters file' or diag $out;
my $report = eval { JSON::PP::decode_json($out) } // {};
is_deeply [map { $_->{segment} } @{ $report->{dead} }], ['dormant'], 'dormant is dead';
is $report->{dead}[0]{owner}, 'crm', 'with its owner';
($rc, $out) = segsync('report', '--db', testdir() . '/db', '--status-url',
                      'http://127.0.0.1:' . port() . '/status?format=json');
is $rc, 0, 'report from the status URL' or diag $out;
like $out, qr/segments with no matches: 1\n  dormant  matches 0/, 'text report names the dead segment';
($rc, $out) = segsync('report', '--db', testdir() . '/db', '--counters', testdir() . '/counters.json',
                      '--window', '90d');
is $rc, 1, 'a window longer than the counters is refused';
like $out, qr/less than the window of 90d/, 'and says why';

# --- reload with the same zone: counters carry on
reload_nginx($conf, workers => 2);
visit('v-vip');
my $reloaded = scrape();
is $reloaded->{segedge_requests_total}, $after->{segedge_requests_total} + 1, 'reload keeps the counters';
is $reloaded->{segedge_counters_created_seconds}, $after->{segedge_counters_created_seconds}, 'same zone';

# --- a resized zone is a new zone
(my $bigger = $CONF) =~ s/SIZE/2m/;
reload_nginx($bigger, workers => 2);
my $fresh = scrape();
is $fresh->{segedge_requests_total}, 0, 'a resized zone starts from zero';

# --- configuration errors
nginx_t_fails('small zone', "segedge_metrics_zone m 64k;", 'invalid zone size "64k"', 'at least');
nginx_t_fails('bad size', "segedge_metrics_zone m lots;", 'invalid zone size "lots"');
nginx_t_fails('two zones', "segedge_metrics_zone m 1m; segedge_metrics_zone n 1m;", 'is duplicate');
nginx_t_fails('status in http', "segedge_status;", '"segedge_status" directive is not allowed here');
nginx_t_fails('status without a zone', "server { listen 127.0.0.1:%%PORT2%%; location / { segedge_status; } }",
              '"segedge_status" needs "segedge_metrics_zone"');

done_testing;
