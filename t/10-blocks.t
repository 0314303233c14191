# Dynamic content blocks on static files: who gets which block, the header
# duties (Content-Length, ETag, Last-Modified, Accept-Ranges, Cache-Control),
# the directives, HEAD, 304, Range, gzip, SSI subrequests and bad markup.

use SegEdge::Test;
use File::Path qw(make_path);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);

my $SEG = <<'SEG';
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"newsletter","description":"Subscribed","owner":"email","priority":10}
{"name":"new_visitor","description":"First seen this month","owner":"growth","priority":5}
SEG
my %V = map { $_ => visitor_id($_) } qw(v-vip v-new v-plain nobody);
my $PROF = <<"PROF";
{"id":"$V{'v-vip'}","kind":"anonymous","segments":["vip","newsletter"]}
{"id":"$V{'v-new'}","kind":"anonymous","segments":["new_visitor"]}
{"id":"$V{'v-plain'}","kind":"anonymous","segments":[]}
PROF
my %HTML = (
    hero_vip => '<h2>Welcome back, VIP</h2>',
    hero_new => '<h2>Welcome, newcomer</h2>',
    offer_vip => '<p>Free express shipping</p>',
);
my $BLOCKS = <<"BLOCKS";
{"block":"hero","segment":"vip","html":"$HTML{hero_vip}"}
{"block":"hero","segment":"new_visitor","html":"$HTML{hero_new}"}
{"block":"offer","segment":"vip","html":"$HTML{offer_vip}"}
{"block":"signup","segment":"newsletter","html":""}
BLOCKS

my ($rc, $out) = import_snapshot('db', $SEG, $PROF, 'test', undef, $BLOCKS);
is $rc, 0, 'snapshot with blocks imported' or diag $out;

# --- the page: ~20 KB, three blocks, split by odd-sized buffers below
my $FILLER = join '', map { "<p class=\"filler\">paragraph $_ &lt;!-- not a comment --&gt; <!-- a comment --></p>\n" } 1 .. 220;
my %DEFAULT = (hero => "\n<h2>Spring collection</h2>\n", offer => "\n<p>Free shipping over 50</p>\n",
               signup => "\n<form>newsletter sign-up</form>\n");

sub page {
    my (%o) = @_;    # block => content (default: its default), markers => 0 to drop them
    my $b = sub {
        my ($name) = @_;
        my $content = $o{$name} // $DEFAULT{$name};
        return $o{markers} // 1 ? "<!--segedge:$name-->$content<!--/segedge:$name-->" : $content;
    };
    return "<!DOCTYPE html>\n<html><head><title>shop</title></head><body>\n<div class=\"hero\">"
         . $b->('hero') . "</div>\n$FILLER<div class=\"offer\">" . $b->('offer') . "</div>\n"
         . substr($FILLER, 0, 5000) . $b->('signup') . "\n</body></html>\n";
}

my $PAGE = page();
my $VIP = page(hero => $HTML{hero_vip}, offer => $HTML{offer_vip}, signup => '');
my $NEW = page(hero => $HTML{hero_new});

my $d = testdir();
for my $dir ('', qw(remove lm expires shared gzip off nofilter types)) {
    make_path("$d/html/$dir");
    write_text("$d/html/$dir/index.html", $PAGE);
}
write_text("$d/html/types/page.txt", $PAGE);
write_text("$d/html/page.txt", $PAGE);
# one mtime for all copies, so they share an ETag (the 304 test needs it)
utime 1700000000, 1700000000, map { "$d/html/$_/index.html" } '', qw(remove lm expires shared gzip off nofilter types);

start_nginx(<<'EOF');
    include /etc/nginx/mime.types;
    segedge_db %%TESTDIR%%/db;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%TESTDIR%%/html;
        segedge on;
        segedge_blocks on;
        add_header X-Key $segedge_blocks_key always;
        # odd buffer sizes put block markers across buffer boundaries
        output_buffers 3 101;

        location / { }
        location /remove/ { segedge_blocks_markers remove; }
        location /lm/ { segedge_blocks_last_modified on; }
        location /expires/ { expires 1h; }
        location /shared/ { expires 1h; segedge_blocks_cache_private off; }
        location /gzip/ { gzip on; gzip_min_length 1; }
        location /off/ { segedge off; }
        location /nofilter/ { segedge_blocks off; }
        location /types/ { segedge_blocks_types text/plain; }
        location /ssi/ { ssi on; }
        location /bad/ { }
        location /bad-remove/ { alias %%TESTDIR%%/html/bad/; segedge_blocks_markers remove; }
    }
EOF

{
    my ($status, $output) = nginx_t(<<'EOF');
    server { listen 127.0.0.1:%%PORT%%; segedge_blocks_markers strip; }
EOF
    isnt $status, 0, 'nginx -t rejects an unknown segedge_blocks_markers value';
    like $output, qr/\[emerg\].*invalid value "strip" in .*nginx-t-\d+\.conf:\d+/,
         'nginx -t names the value and where it is';
    ($status, $output) = nginx_t(<<'EOF');
    server { listen 127.0.0.1:%%PORT%%; segedge_blocks maybe; }
EOF
    like $output, qr/invalid value "maybe" in "segedge_blocks" directive/, 'nginx -t: segedge_blocks on|off';
}

sub get {
    my ($path, $visitor, @headers) = @_;
    return http_get($path, ($visitor ? (Cookie => "segedge_id=$V{$visitor}") : ()), @headers);
}

# --- who gets what
{
    my $r = get('/', 'v-vip');
    is $r->status, 200, 'vip: 200';
    ok $r->body eq $VIP, 'vip: hero and offer swapped, signup hidden, the rest byte for byte';
    is $r->value('X-Key'), 'hero=vip,offer=vip,signup=newsletter', 'vip: $segedge_blocks_key';
    is $r->value('Transfer-Encoding'), 'chunked', 'vip: chunked';
    is $r->value('Content-Length'), '', 'vip: no Content-Length';
    is $r->value('ETag'), '', 'vip: no ETag';
    is $r->value('Last-Modified'), '', 'vip: no Last-Modified';
    is $r->value('Accept-Ranges'), '', 'vip: no Accept-Ranges';
    is $r->value('Cache-Control'), 'private', 'vip: Cache-Control: private';

    $r = get('/', 'v-new');
    ok $r->body eq $NEW, 'new visitor: own hero, default offer and signup';
    is $r->value('X-Key'), 'hero=new_visitor', 'new visitor: $segedge_blocks_key';
    is $r->value('Cache-Control'), 'private', 'new visitor: private';

    for my $visitor (undef, 'v-plain', 'nobody') {
        my $who = $visitor // 'no cookie';
        $r = get('/', $visitor);
        ok $r->body eq $PAGE, "$who: the file as it is";
        is $r->value('Content-Length'), length $PAGE, "$who: Content-Length kept (nothing could change)";
        is $r->value('ETag') . $r->value('Last-Modified'), '',
           "$who: no validators either, so a later visit with segments is not answered 304";
        is $r->value('Cache-Control'), '', "$who: not private";
        is $r->value('X-Key'), '', "$who: empty \$segedge_blocks_key";
    }
}

# --- directives
{
    my $r = get('/remove/', 'v-vip');
    ok $r->body eq page(hero => $HTML{hero_vip}, offer => $HTML{offer_vip}, signup => '', markers => 0),
       'markers remove: vip gets fragments without markers';
    $r = get('/remove/');
    ok $r->body eq page(markers => 0), 'markers remove: anonymous gets defaults without markers';
    is $r->value('Cache-Control'), '', 'markers remove: anonymous body is the same for all, not private';
    is $r->value('Content-Length'), '', 'markers remove: anonymous body changed, no Content-Length';
    is $r->value('ETag'), '', 'markers remove: no ETag';

    $r = get('/lm/', 'v-vip');
    like $r->value('ETag'), qr{^W/"}, 'last_modified on: weak ETag';
    isnt $r->value('Last-Modified'), '', 'last_modified on: Last-Modified kept';
    $r = get('/lm/');
    like $r->value('ETag'), qr{^W/"}, 'last_modified on, anonymous: weak ETag too';

    $r = get('/expires/', 'v-vip');
    is $r->value('Cache-Control'), 'private, max-age=3600', 'expires 1h: made private, max-age kept';
    $r = get('/expires/');
    is $r->value('Cache-Control'), 'max-age=3600', 'expires 1h, anonymous: untouched';
    $r = get('/shared/', 'v-vip');
    ok $r->body eq $VIP, 'cache_private off: still personalised';
    is $r->value('Cache-Control'), 'max-age=3600', 'cache_private off: Cache-Control untouched';

    $r = get('/off/', 'v-vip');
    ok $r->body eq $PAGE, 'segedge off: blocks do nothing';
    $r = get('/nofilter/', 'v-vip');
    ok $r->body eq $PAGE, 'segedge_blocks off: the file as it is';
    is $r->value('X-Key'), 'hero=vip,offer=vip,signup=newsletter', 'segedge_blocks off: the key is still known';

    $r = get('/page.txt', 'v-vip');
    ok $r->body eq $PAGE, 'text/plain is not a default type';
    $r = get('/types/page.txt', 'v-vip');
    ok $r->body eq $VIP, 'segedge_blocks_types text/plain: swapped';
    $r = get('/types/', 'v-vip');
    ok $r->body eq $VIP, 'segedge_blocks_types keeps text/html';
}

# --- HEAD, 304, Range
{
    my $raw = http("HEAD / HTTP/1.1\r\nHost: x\r\nCookie: segedge_id=$V{'v-vip'}\r\nConnection: close\r\n\r\n");
    my $r = parse_response($raw);
    is $r->status, 200, 'HEAD: 200';
    is $r->body, '', 'HEAD: no body';
    is $r->value('Content-Length'), length $PAGE, 'HEAD: left alone';

    my $etag = get('/nofilter/')->value('ETag');
    like $etag, qr/^"/, 'the file ETag, where blocks are off';
    $r = get('/', 'v-vip', 'If-None-Match' => $etag);
    is $r->status, 304, 'If-None-Match with the file ETag: 304 (decided before this filter)';
    is $r->body, '', '304: no body';
    is $r->value('Transfer-Encoding'), '', '304: not chunked';

    $r = get('/', 'v-vip', Range => 'bytes=0-9');
    is $r->status, 200, 'Range, vip: the whole personalised body instead';
    ok $r->body eq $VIP, 'Range, vip: body';
    is $r->value('Content-Range'), '', 'Range, vip: no Content-Range';
    $r = get('/', undef, Range => 'bytes=0-9');
    is $r->status, 206, 'Range, anonymous: 206 as usual';
    is $r->body, substr($PAGE, 0, 10), 'Range, anonymous: the range';
}

# --- gzip runs after the swap
{
    my $r = get('/gzip/', 'v-vip', 'Accept-Encoding' => 'gzip');
    is $r->value('Content-Encoding'), 'gzip', 'gzip on: compressed';
    my $plain;
    gunzip(\$r->body => \$plain) or diag $GunzipError;
    ok defined $plain && $plain eq $VIP, 'gzip on: the swapped body, compressed';
    is $r->value('Cache-Control'), 'private', 'gzip on: private';
}

# --- SSI: the included part is a subrequest and is not personalised again
{
    make_path("$d/html/ssi");
    write_text("$d/html/ssi/index.html",
               "<!--segedge:hero-->main default<!--/segedge:hero-->\n"
               . "<!--# include virtual=\"/ssi/part.html\" -->\n<!--segedge:offer-->o<!--/segedge:offer-->\n");
    write_text("$d/html/ssi/part.html", "<div><!--segedge:hero-->part default<!--/segedge:hero--></div>");
    my $r = get('/ssi/', 'v-vip');
    is $r->body, "<!--segedge:hero-->$HTML{hero_vip}<!--/segedge:hero-->\n"
               . "<div><!--segedge:hero-->part default<!--/segedge:hero--></div>\n"
               . "<!--segedge:offer-->$HTML{offer_vip}<!--/segedge:offer-->\n",
       'SSI: main blocks swapped once, included part untouched';
    my @private = grep { /private/ } $r->header('Cache-Control');
    is scalar(@private), 1, 'SSI: one Cache-Control: private';
}

# --- bad markup: defaults pass through, nothing above info in error.log
{
    my $bad = "<p>start</p><!--segedge:Hero-->bad name<!--/segedge:Hero-->"
            . "<!--segedge:" . ('n' x 65) . "-->too long<!--segedge:he ro-->space"
            . "<!--segedge:unknown-->kept <!--segedge:hero-->nested<!--/segedge:hero--> still kept<!--/segedge:unknown-->"
            . "<!--/segedge:stray--><!--segedge:-->empty name<!-- <!--segedge:x <!--<!--"
            . "<!--segedge:footer-->never closed</p>\n</body></html>\n";
    make_path("$d/html/bad");
    write_text("$d/html/bad/index.html", $bad);
    my $mark = error_log_size();
    my $r = get('/bad/', 'v-vip');
    is $r->status, 200, 'bad markup: 200';
    ok $r->body eq $bad, 'bad markup: byte for byte, even the nested block vip has content for';
    $r = get('/bad-remove/', 'v-vip');
    (my $removed = $bad) =~ s{<!--/?segedge:(?:unknown|footer)-->}{}g;
    ok $r->body eq $removed, 'bad markup, markers remove: only the well-formed markers go';
    my $log = error_log_text($mark);
    my @loud = grep { /\[(?:notice|warn|error|crit|alert|emerg)\]/ } split /\n/, $log;
    is scalar(@loud), 0, 'bad markup: nothing logged above info' or diag join "\n", @loud;
    like $log, qr/\[info\].*segedge: block "unknown" in "\/bad\/index.html" contains another block marker/,
         'bad markup: one info line names the block';

    # The one lossy case, documented: a replaced block that never closes.
    write_text("$d/html/bad/cut.html", "<p>a</p><!--segedge:hero-->default<p>footer</p></body></html>\n");
    $r = get('/bad/cut.html', 'v-vip');
    is $r->body, "<p>a</p><!--segedge:hero-->$HTML{hero_vip}",
       'unterminated replaced block: page up to it plus the fragment';
    like error_log_text($mark), qr/\[info\].*segedge: block "hero" in "\/bad\/cut.html" has no closing marker/,
         'unterminated replaced block: logged at info';
}

done_testing;
