# Caching and dynamic content blocks, the two patterns README documents:
# proxy_cache of the default page with blocks swapped on the way out, and a
# cache in front keyed on $segedge_blocks_key. Plus the default's safety: a
# cache that does not key on the block choice never stores a personalised
# page for another visitor.

use SegEdge::Test;
use File::Path qw(make_path);

my $SEG = <<'SEG';
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"new_visitor","description":"First seen this month","owner":"growth","priority":5}
SEG
my %V = map { $_ => visitor_id($_) } qw(v-vip v-vip2 v-new nobody);
my $PROF = <<"PROF";
{"id":"$V{'v-vip'}","kind":"anonymous","segments":["vip"]}
{"id":"$V{'v-vip2'}","kind":"anonymous","segments":["vip"]}
{"id":"$V{'v-new'}","kind":"anonymous","segments":["new_visitor"]}
PROF
my $BLOCKS = <<'BLOCKS';
{"block":"hero","segment":"vip","html":"<h2>VIP</h2>"}
{"block":"hero","segment":"new_visitor","html":"<h2>Newcomer</h2>"}
BLOCKS
my ($rc, $out) = import_snapshot('db', $SEG, $PROF, 'test', undef, $BLOCKS);
is $rc, 0, 'snapshot imported' or diag $out;

my $d = testdir();
make_path("$d/html", "$d/cache");
my %page = map { $_ => "<p>x</p><!--segedge:hero-->" . ($_ eq 'default' ? '<h2>Default</h2>' : "<h2>$_</h2>")
                      . "<!--/segedge:hero--><p>y</p>\n" } qw(default VIP Newcomer);
write_text("$d/html/page.html", $page{default});

# PORT: the server visitors talk to; PORT2: the origin (plain files);
# PORT3: the block-swapping tier behind the keyed cache.
start_nginx(<<'EOF');
    include /etc/nginx/mime.types;
    segedge_db %%TESTDIR%%/db;
    proxy_cache_path %%TESTDIR%%/cache keys_zone=pages:1m;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        proxy_cache pages;
        proxy_cache_valid 200 10m;
        add_header X-Cache $upstream_cache_status always;

        location /default-page/ {
            segedge_blocks on;
            proxy_cache_key "default|$uri";
            proxy_pass http://127.0.0.1:%%PORT2%%/;
        }
        location /keyed/ {
            proxy_cache_key "keyed|$uri|$segedge_blocks_key|$segedge_generation";
            proxy_pass http://127.0.0.1:%%PORT3%%/;
        }
        location /unkeyed/ {
            proxy_cache_key "unkeyed|$uri";
            proxy_pass http://127.0.0.1:%%PORT3%%/private/;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        root %%TESTDIR%%/html;
    }

    server {
        listen 127.0.0.1:%%PORT3%%;
        segedge on;
        segedge_blocks on;
        location / {
            segedge_blocks_cache_private off;
            proxy_pass http://127.0.0.1:%%PORT2%%/;
        }
        location /private/ {
            proxy_pass http://127.0.0.1:%%PORT2%%/;
        }
    }
EOF

sub fetch {
    my ($path, $visitor) = @_;
    my $r = http_get($path, $visitor ? (Cookie => "segedge_id=$V{$visitor}") : ());
    return ($r->value('X-Cache'), $r->body, $r);
}

sub check {
    my ($what, $path, $visitor, $cache, $page) = @_;
    my ($status, $body) = fetch($path, $visitor);
    is "$status $body", "$cache $page{$page}", "$what: $cache, $page page";
}

# --- the default page cached, blocks swapped per visitor on the way out
check('cached default page, anonymous', '/default-page/page.html', undef, 'MISS', 'default');
check('cached default page, vip', '/default-page/page.html', 'v-vip', 'HIT', 'VIP');
check('cached default page, new visitor', '/default-page/page.html', 'v-new', 'HIT', 'Newcomer');
check('cached default page, anonymous again', '/default-page/page.html', undef, 'HIT', 'default');
{
    my (undef, undef, $r) = fetch('/default-page/page.html', 'v-vip');
    is $r->value('Cache-Control'), 'private', 'cached default page: personalised response is private';
}

# --- a cache in front keyed on the block choice
check('keyed cache, vip', '/keyed/page.html', 'v-vip', 'MISS', 'VIP');
check('keyed cache, another vip', '/keyed/page.html', 'v-vip2', 'HIT', 'VIP');
check('keyed cache, new visitor', '/keyed/page.html', 'v-new', 'MISS', 'Newcomer');
check('keyed cache, anonymous', '/keyed/page.html', undef, 'MISS', 'default');
check('keyed cache, unknown visitor', '/keyed/page.html', 'nobody', 'HIT', 'default');
check('keyed cache, vip again', '/keyed/page.html', 'v-vip', 'HIT', 'VIP');

# --- a cache that ignores the block choice never keeps a personalised page
check('unkeyed cache, vip', '/unkeyed/page.html', 'v-vip', 'MISS', 'VIP');
check('unkeyed cache, anonymous after vip', '/unkeyed/page.html', undef, 'MISS', 'default');
check('unkeyed cache, vip after anonymous', '/unkeyed/page.html', 'v-vip2', 'HIT', 'default');

done_testing;
