# $segedge_segments, $segedge_visitor and $segedge_generation on a static
# location, in map, in proxy_set_header and in access_log.

use SegEdge::Test;

my %v = map { $_ => visitor_id($_) } qw(v-1001 v-1002 Other_ID-7 k-1 v-9999 nobody);
my ($v1001, $v1002, $other, $k1) = @v{qw(v-1001 v-1002 Other_ID-7 k-1)};

my ($rc, $out) = import_snapshot('db', <<'SEG', <<"PROF", 'variables-test');
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"cart_abandoner","description":"Left a cart","owner":"web","priority":50}
{"name":"newsletter","description":"Subscribed","owner":"email","priority":10}
SEG
{"id":"$v1001","kind":"anonymous","segments":["newsletter","vip","cart_abandoner"]}
{"id":"$v1002","kind":"anonymous","segments":["newsletter"]}
{"id":"$other","kind":"anonymous","segments":["cart_abandoner"]}
{"id":"$k1","kind":"known","segments":["vip"]}
PROF
is $rc, 0, 'snapshot imported' or diag $out;

# canonical ids end in A, Q, g or w (the last character's padding bits are 0)
my $ends_in_w = substr($v{'v-9999'}, 0, 21) . 'w';
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
seg_ok("segedge_id=$v1001", 'vip,cart_abandoner,newsletter', $v1001,
       'profiled visitor: segments in priority order');
seg_ok("segedge_id=$v1002", 'newsletter', $v1002, 'single segment');
seg_ok("segedge_id=$v{'v-9999'}", '', $v{'v-9999'}, 'unknown visitor: id but no segments');
seg_ok("segedge_id=$k1", '', $k1, 'a known id is not looked up as an anonymous one');
seg_ok(undef, '', '', 'no Cookie header');
seg_ok('theme=dark; lang=en', '', '', 'no segedge_id cookie');
seg_ok("other=1; segedge_id=$v1001; theme=dark", 'vip,cart_abandoner,newsletter', $v1001,
       'among other cookies');
seg_ok(qq{segedge_id="$v1002"}, 'newsletter', $v1002, 'quoted value');
seg_ok("a=b ;  segedge_id = $v1002 ; c=d", 'newsletter', $v1002, 'spaces around name and value');
seg_ok("xsegedge_id=$v1001; segedge_idx=$v1001", '', '', 'similar names do not match');
seg_ok("segedge_id=$ends_in_w", '', $ends_in_w, 'any canonical id is valid');

my $not_canonical = substr($v1001, 0, 21) . 'B';    # same 128 bits, padding bits set
for my $bad ("$v1001!", substr($v1001, 0, 21), "${v1001}A", $not_canonical, "$v1001=",
             'v-1001', 'v 1001', 'v.1001', 'a' x 129, '', '""', "$v1001,x", "\xc3\xa9t\xc3\xa9") {
    my $r = http_get('/', Cookie => "segedge_id=$bad");
    is $r->status, 200, "malformed cookie '$bad': 200";
    is $r->value('X-Seg') . '|' . $r->value('X-Visitor'), '|',
       "malformed cookie '$bad': empty segments and visitor";
}

{
    my $r = http_get('/', Cookie => ['theme=dark', "segedge_id=$v1002"]);
    is $r->value('X-Seg'), 'newsletter', 'cookie in a second Cookie header';
}

# --- per-location switches
{
    my $r = http_get('/off/', Cookie => "segedge_id=$v1001");
    is $r->status, 200, 'segedge off: 200';
    is $r->body, "<p>default page</p>\n", 'segedge off: the page';
    is join('|', map { $r->value($_) } qw(X-Seg X-Visitor X-Gen)), '||',
       'segedge off: all variables empty';
}
{
    my $r = http_get('/other-cookie/', Cookie => "segedge_id=$v1001; other_id=$other");
    is $r->value('X-Seg'), 'cart_abandoner', 'segedge_cookie other_id: segments from that cookie';
    is $r->value('X-Visitor'), $other, 'segedge_cookie other_id: visitor from that cookie';
    $r = http_get('/other-cookie/', Cookie => "segedge_id=$v1001");
    is $r->value('X-Seg') . '|' . $r->value('X-Visitor'), '|',
       'segedge_cookie other_id: segedge_id is ignored there';
}

# --- protocol versions
{
    my $r = http_get10('/', Cookie => "segedge_id=$v1001");
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
    my $r = http_get('/map', Cookie => "segedge_id=$v1001");
    is $r->value('X-Tier'), 'gold', 'map: vip visitor';
    is $r->body, "tier=gold\n", 'map: in the body too';
    $r = http_get('/map', Cookie => "segedge_id=$v1002");
    is $r->value('X-Tier'), 'standard', 'map: other visitor';
    $r = http_get('/map');
    is $r->value('X-Tier'), 'standard', 'map: no cookie';
}
{
    my $r = http_get('/proxy', Cookie => "segedge_id=$v1001");
    is $r->status, 200, 'proxy: 200';
    is $r->body, "segments=[vip,cart_abandoner,newsletter] visitor=[$v1001]\n",
       'proxy_set_header passes segments and visitor upstream';
    is $r->value('X-Seg'), 'vip,cart_abandoner,newsletter', 'proxy: add_header too';
    $r = http_get('/proxy');
    is $r->body, "segments=[] visitor=[]\n", 'proxy: nothing to pass without a cookie';
}
{
    http_get('/logged?one', Cookie => "segedge_id=$v1001");
    http_get('/logged?two', Cookie => "segedge_id=$v{nobody}");
    http_get('/logged?three');
    # the log line is written after the response is sent
    my $want = join '', "/logged?one seg=[vip,cart_abandoner,newsletter] vis=[$v1001] gen=[$GEN]\n",
                        "/logged?two seg=[] vis=[$v{nobody}] gen=[$GEN]\n",
                        "/logged?three seg=[] vis=[] gen=[$GEN]\n";
    wait_until(sub { (read_text(testdir() . '/seg.log') // '') eq $want }, 5);
    is read_text(testdir() . '/seg.log'), $want, 'access_log with segedge variables';
}

done_testing;
