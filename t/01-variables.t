# $segedge_segments, $segedge_visitor and $segedge_generation on a static
# location, in map, in proxy_set_header and in access_log.

use SegEdge::Test;

my ($rc, $out) = import_snapshot('db', <<'SEG', <<'PROF', 'variables-test');
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"cart_abandoner","description":"Left a cart","owner":"web","priority":50}
{"name":"newsletter","description":"Subscribed","owner":"email","priority":10}
SEG
{"id":"v-1001","kind":"anonymous","segments":["newsletter","vip","cart_abandoner"]}
{"id":"v-1002","kind":"anonymous","segments":["newsletter"]}
{"id":"Other_ID-7","kind":"anonymous","segments":["cart_abandoner"]}
{"id":"k-1","kind":"known","segments":["vip"]}
PROF
is $rc, 0, 'snapshot imported' or diag $out;

my $max_id = 'a' x 128;
mkdir testdir() . '/html';
write_text(testdir() . '/html/index.html', "<p>default page</p>\n");

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;

    map $segedge_segments $seg_tier {
        ~(^|,)vip(,|$)   gold;
        default          standard;
    }

    log_format seg '$request_uri seg=[$segedge_segments] vis=[$segedge_visitor] gen=[$segedge_generation]';

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%TESTDIR%%/html;
        segedge on;

        add_header X-Seg $segedge_segments always;
        add_header X-Visitor $segedge_visitor always;
        add_header X-Gen $segedge_generation always;

        location / {
        }

        location /off/ {
            segedge off;
            add_header X-Seg $segedge_segments always;
            add_header X-Visitor $segedge_visitor always;
            add_header X-Gen $segedge_generation always;
            alias %%TESTDIR%%/html/;
        }

        location /other-cookie/ {
            segedge_cookie other_id;
            add_header X-Seg $segedge_segments always;
            add_header X-Visitor $segedge_visitor always;
            add_header X-Gen $segedge_generation always;
            alias %%TESTDIR%%/html/;
        }

        location /map {
            add_header X-Tier $seg_tier always;
            return 200 "tier=$seg_tier\n";
        }

        location /proxy {
            proxy_set_header X-Segments $segedge_segments;
            proxy_set_header X-Visitor-Id $segedge_visitor;
            proxy_pass http://127.0.0.1:%%PORT2%%/echo;
        }

        location /logged {
            access_log %%TESTDIR%%/seg.log seg;
            return 200 "logged\n";
        }
    }

    # the upstream: echoes what the proxy sent it
    server {
        listen 127.0.0.1:%%PORT2%%;
        location /echo {
            return 200 "segments=[$http_x_segments] visitor=[$http_x_visitor_id]\n";
        }
    }
EOF

my $GEN = 1;    # the first import into an empty db

sub seg_ok {
    my ($cookie, $segments, $visitor, $name) = @_;
    my $r = http_get('/', defined $cookie ? (Cookie => $cookie) : ());
    subtest $name => sub {
        is $r->status, 200, 'status 200';
        is $r->body, "<p>default page</p>\n", 'the page';
        is $r->value('X-Seg'), $segments, 'segments';
        is $r->value('X-Visitor'), $visitor, 'visitor';
        is $r->value('X-Gen'), $GEN, 'generation';
    };
}

# --- the cookie
seg_ok('segedge_id=v-1001', 'vip,cart_abandoner,newsletter', 'v-1001',
       'profiled visitor: segments in priority order');
seg_ok('segedge_id=v-1002', 'newsletter', 'v-1002', 'single segment');
seg_ok('segedge_id=v-9999', '', 'v-9999', 'unknown visitor: id but no segments');
seg_ok('segedge_id=k-1', '', 'k-1', 'a known id is not looked up as an anonymous one');
seg_ok(undef, '', '', 'no Cookie header');
seg_ok('theme=dark; lang=en', '', '', 'no segedge_id cookie');
seg_ok('other=1; segedge_id=v-1001; theme=dark', 'vip,cart_abandoner,newsletter', 'v-1001',
       'among other cookies');
seg_ok('segedge_id="v-1002"', 'newsletter', 'v-1002', 'quoted value');
seg_ok('a=b ;  segedge_id = v-1002 ; c=d', 'newsletter', 'v-1002', 'spaces around name and value');
seg_ok('xsegedge_id=v-1001; segedge_idx=v-1001', '', '', 'similar names do not match');
seg_ok("segedge_id=$max_id", '', $max_id, '128-char id is valid');

for my $bad ('v-1001!', 'v 1001', 'v.1001', 'v%2D1001', 'a' x 129, '', '""', 'v-1001,x', "\xc3\xa9t\xc3\xa9") {
    my $r = http_get('/', Cookie => "segedge_id=$bad");
    is $r->status, 200, "malformed cookie '$bad': 200";
    is $r->value('X-Seg') . '|' . $r->value('X-Visitor'), '|',
       "malformed cookie '$bad': empty segments and visitor";
}

{
    my $r = http_get('/', Cookie => ['theme=dark', 'segedge_id=v-1002']);
    is $r->value('X-Seg'), 'newsletter', 'cookie in a second Cookie header';
}

# --- per-location switches
{
    my $r = http_get('/off/', Cookie => 'segedge_id=v-1001');
    is $r->status, 200, 'segedge off: 200';
    is $r->body, "<p>default page</p>\n", 'segedge off: the page';
    is join('|', map { $r->value($_) } qw(X-Seg X-Visitor X-Gen)), '||',
       'segedge off: all variables empty';
}
{
    my $r = http_get('/other-cookie/', Cookie => 'segedge_id=v-1001; other_id=Other_ID-7');
    is $r->value('X-Seg'), 'cart_abandoner', 'segedge_cookie other_id: segments from that cookie';
    is $r->value('X-Visitor'), 'Other_ID-7', 'segedge_cookie other_id: visitor from that cookie';
    $r = http_get('/other-cookie/', Cookie => 'segedge_id=v-1001');
    is $r->value('X-Seg') . '|' . $r->value('X-Visitor'), '|',
       'segedge_cookie other_id: segedge_id is ignored there';
}

# --- protocol versions
{
    my $r = http_get10('/', Cookie => 'segedge_id=v-1001');
    is $r->status, 200, 'HTTP/1.0: 200';
    is $r->body, "<p>default page</p>\n", 'HTTP/1.0: the page';
    is $r->value('X-Seg'), 'vip,cart_abandoner,newsletter', 'HTTP/1.0: segments';
    is $r->value('X-Gen'), $GEN, 'HTTP/1.0: generation';
}
{
    my $r = http_get09('/');
    is $r->body, "<p>default page</p>\n", 'HTTP/0.9: the body, nothing else';
}

# --- map, proxy_set_header, access_log
{
    my $r = http_get('/map', Cookie => 'segedge_id=v-1001');
    is $r->value('X-Tier'), 'gold', 'map: vip visitor';
    is $r->body, "tier=gold\n", 'map: in the body too';
    $r = http_get('/map', Cookie => 'segedge_id=v-1002');
    is $r->value('X-Tier'), 'standard', 'map: other visitor';
    $r = http_get('/map');
    is $r->value('X-Tier'), 'standard', 'map: no cookie';
}
{
    my $r = http_get('/proxy', Cookie => 'segedge_id=v-1001');
    is $r->status, 200, 'proxy: 200';
    is $r->body, "segments=[vip,cart_abandoner,newsletter] visitor=[v-1001]\n",
       'proxy_set_header passes segments and visitor upstream';
    is $r->value('X-Seg'), 'vip,cart_abandoner,newsletter', 'proxy: add_header too';
    $r = http_get('/proxy');
    is $r->body, "segments=[] visitor=[]\n", 'proxy: nothing to pass without a cookie';
}
{
    http_get('/logged?one', Cookie => 'segedge_id=v-1001');
    http_get('/logged?two', Cookie => 'segedge_id=nobody');
    http_get('/logged?three');
    # the log line is written after the response is sent
    my $want = join '', "/logged?one seg=[vip,cart_abandoner,newsletter] vis=[v-1001] gen=[$GEN]\n",
                        "/logged?two seg=[] vis=[nobody] gen=[$GEN]\n",
                        "/logged?three seg=[] vis=[] gen=[$GEN]\n";
    wait_until(sub { (read_text(testdir() . '/seg.log') // '') eq $want }, 5);
    is read_text(testdir() . '/seg.log'), $want, 'access_log with segedge variables';
}

done_testing;
