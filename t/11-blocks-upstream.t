# Dynamic content blocks on proxied responses: an upstream that trickles the
# page out a few bytes at a time (markers cut anywhere), sub_filter in the
# same location, compressed and cacheable upstream responses, and a snapshot
# published while a response is still streaming.

use SegEdge::Test;
use IO::Compress::Gzip qw(gzip);
use IO::Uncompress::Gunzip ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep);

my $SEG = <<'SEG';
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"new_visitor","description":"First seen this month","owner":"growth","priority":5}
SEG
my %V = map { $_ => visitor_id($_) } qw(v-vip v-new);
my $PROF = <<"PROF";
{"id":"$V{'v-vip'}","kind":"anonymous","segments":["vip"]}
{"id":"$V{'v-new'}","kind":"anonymous","segments":["new_visitor"]}
PROF
sub blocks_feed {
    my ($hero_vip, $offer_vip) = @_;
    return <<"BLOCKS";
{"block":"hero","segment":"vip","html":"$hero_vip"}
{"block":"hero","segment":"new_visitor","html":"<h2>Welcome, newcomer</h2>"}
{"block":"offer","segment":"vip","html":"$offer_vip"}
BLOCKS
}
my $HERO_VIP = '<h2>Welcome back, VIP</h2>';

my ($rc, $out) = import_snapshot('db', $SEG, $PROF, 'test', undef, blocks_feed($HERO_VIP, '<p>Welcome back offer</p>'));
is $rc, 0, 'snapshot imported' or diag $out;

my $FILLER = join '', map { "<p>filler $_ <!-- c --></p>\n" } 1 .. 40;
sub page {
    my ($hero, $offer) = @_;
    return "<html><body>\n<!--segedge:hero-->" . ($hero // '<h2>Default hero</h2>')
         . "<!--/segedge:hero-->\n$FILLER<!--segedge:offer-->" . ($offer // '<p>Default offer</p>')
         . "<!--/segedge:offer-->\n</body></html>\n";
}
my $PAGE = page();
my $VIP = page($HERO_VIP, '<p>Welcome back offer</p>');

my $d = testdir();

# The upstream: /trickle writes the page in 1..7-byte pieces; /gzip and
# /public answer at once; /pause stops after the first half until told to go.
start_upstream(port(2), sub {
    my ($s, $head) = @_;
    my ($path) = $head =~ m{^GET (\S+)};
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $send = sub { syswrite $s, $_[0] };
    my $headers = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n";
    if ($path =~ m{^/trickle}) {
        $send->($headers . "Content-Length: " . length($PAGE) . "\r\n\r\n");
        my ($at, $i) = (0, 0);
        while ($at < length $PAGE) {
            my $n = 1 + $i++ % 7;
            $send->(substr($PAGE, $at, $n));
            $at += $n;
            sleep 0.001;
        }
    } elsif ($path eq '/gzip') {
        gzip(\$PAGE => \my $packed);
        $send->($headers . "Content-Encoding: gzip\r\nContent-Length: " . length($packed) . "\r\n\r\n$packed");
    } elsif ($path eq '/public') {
        $send->($headers . "Cache-Control: public, max-age=600, s-maxage=3600\r\n\r\n$PAGE");
    } elsif ($path eq '/pause') {
        my $half = index($PAGE, '<!--segedge:offer-->') - 10;
        $send->($headers . "\r\n" . substr($PAGE, 0, $half));
        write_text("$d/paused", '');
        for (1 .. 200) { last if -e "$d/go"; sleep 0.05 }
        $send->(substr($PAGE, $half));
    }
});

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 0;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        segedge_blocks on;

        location / {
            proxy_pass http://127.0.0.1:%%PORT2%%;
            proxy_buffering off;
        }
        location /buffered/ {
            proxy_pass http://127.0.0.1:%%PORT2%%/trickle;
            proxy_buffer_size 256;
            proxy_buffers 8 64;
            proxy_busy_buffers_size 256;
        }
        location /sub/ {
            proxy_pass http://127.0.0.1:%%PORT2%%/trickle;
            proxy_buffering off;
            sub_filter_once off;
            sub_filter 'Welcome back' 'WELCOME BACK';
            sub_filter '<p>filler' '<p class="f">filler';
        }
        location /gzip-on/ {
            proxy_pass http://127.0.0.1:%%PORT2%%/trickle;
            proxy_buffering off;
            gzip on;
            gzip_min_length 1;
        }
    }
EOF

sub get {
    my ($path, $visitor, @headers) = @_;
    return http_get($path, ($visitor ? (Cookie => "segedge_id=$V{$visitor}") : ()), @headers);
}

{
    my $r = get('/trickle', 'v-vip');
    is $r->status, 200, 'trickled, unbuffered: 200';
    ok $r->body eq $VIP, 'trickled, unbuffered: blocks swapped though every marker arrives in pieces'
        or diag $r->body;
    is $r->value('Content-Length'), '', 'trickled: upstream Content-Length removed';
    is $r->value('Cache-Control'), 'private', 'trickled: private';

    $r = get('/trickle', 'v-new');
    ok $r->body eq page('<h2>Welcome, newcomer</h2>'), 'trickled, other segment: its own hero';
    $r = get('/trickle');
    ok $r->body eq $PAGE, 'trickled, anonymous: untouched';
    is $r->value('Content-Length'), length $PAGE, 'trickled, anonymous: Content-Length kept';

    $r = get('/buffered/', 'v-vip');
    ok $r->body eq $VIP, 'trickled into 64-byte proxy buffers: swapped' or diag $r->raw;
}

{
    my $r = get('/sub/', 'v-vip');
    (my $want = $VIP) =~ s/Welcome back/WELCOME BACK/g;
    $want =~ s/<p>filler/<p class="f">filler/g;
    ok $r->body eq $want, 'sub_filter in the same location: applies to the swapped body, nothing lost'
        or diag $r->body;
}

{
    my $r = get('/gzip-on/', 'v-vip', 'Accept-Encoding' => 'gzip');
    is $r->value('Content-Encoding'), 'gzip', 'gzip on, trickled: compressed';
    IO::Uncompress::Gunzip::gunzip(\$r->body => \my $plain);
    ok defined $plain && $plain eq $VIP, 'gzip on, trickled: the swapped body';
}

{
    my $mark = error_log_size();
    my $r = get('/gzip', 'v-vip');
    is $r->value('Content-Encoding'), 'gzip', 'gzip from upstream: passed on';
    IO::Uncompress::Gunzip::gunzip(\$r->body => \my $plain);
    ok defined $plain && $plain eq $PAGE, 'gzip from upstream: not touched';
    is $r->value('Cache-Control'), '', 'gzip from upstream: not made private';
    like error_log_text($mark), qr/\[debug\].*segedge blocks: skipping "gzip" content encoding/,
         'gzip from upstream: the skip is logged at debug';
}

{
    my $r = get('/public', 'v-vip');
    is $r->value('Cache-Control'), 'private, max-age=600',
       'upstream public, max-age, s-maxage: private, max-age kept';
    $r = get('/public');
    is $r->value('Cache-Control'), 'public, max-age=600, s-maxage=3600', 'anonymous: untouched';
}

# A publish in the middle of a response: the worker switches snapshots for
# the next request, and the response in flight keeps the fragments it chose.
{
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        write_text("$d/paused-response", get('/pause', 'v-vip')->body);
        POSIX::_exit(0);
    }
    ok wait_until(sub { -e "$d/paused" }, 10), 'paused response: first half sent';
    my ($rc2, $out2) = import_snapshot('db', $SEG, $PROF, 'test', undef, blocks_feed('<h2>New hero</h2>', '<p>New offer</p>'));
    is $rc2, 0, 'paused response: new snapshot published' or diag $out2;
    my $r = get('/trickle', 'v-vip');
    ok $r->body eq page('<h2>New hero</h2>', '<p>New offer</p>'),
       'paused response: the next request sees the new snapshot';
    write_text("$d/go", '');
    waitpid $pid, 0;
    ok read_text("$d/paused-response") eq $VIP,
       'paused response: finished with the fragments chosen at its start';
}

done_testing;
