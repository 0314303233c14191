# Abuse from clients: Cookie headers from 0 bytes to 64 KB (either side of
# the 16 KB limit, split over many headers), duplicate and odd cookies,
# forged signed cookies beyond t/20-identity.t's (every truncation, changed
# expiry, another key id, malformed fields), HTML with marker storms, and
# query strings with thousands of arguments read by rules. Each gets the
# documented default behaviour, no worker dies, and the error log grows by
# a bounded number of lines however many requests or markers there are.

use SegEdge::Test;
use File::Path qw(make_path);

my $d = testdir();
my $vip = visitor_id('v-vip');
my $plain = visitor_id('v-plain');

my $SEG = <<'SEG';
{"name":"vip","priority":100}
{"name":"paid_social","priority":80,"rule":{"all":[{"input":"query.utm_medium","op":"eq","value":"paid_social"},{"input":"query.utm_source","op":"in","value":["facebook","tiktok"]}]}}
{"name":"q_regex","priority":70,"rule":{"input":"query.q","op":"regex","value":"^(a+)+$"}}
{"name":"has_ref","priority":60,"rule":{"input":"query.ref","op":"exists"}}
SEG
my $PROF = qq({"id":"$vip","kind":"anonymous","segments":["vip"]}\n)
         . qq({"id":"cust-1","kind":"known","segments":["vip"]}\n);
my $FRAG = '<b>vip hero</b>';
my $BLOCKS = qq({"block":"hero","segment":"vip","html":"$FRAG"}\n);
my ($rc, $out) = import_snapshot('db', $SEG, $PROF, 'abuse', undef, $BLOCKS);
is $rc, 0, 'snapshot imported' or diag $out;

write_text("$d/keys", "k1 hex:" . ('a1' x 32) . "\nk2 hex:" . ('b2' x 32) . "\n");
chmod 0600, "$d/keys";
write_text("$d/keys-k2-first", "k2 hex:" . ('b2' x 32) . "\n");

make_path("$d/html");
start_nginx(<<'EOF', log_level => 'info');
    segedge_db %%TESTDIR%%/db;
    segedge_keys %%TESTDIR%%/keys;
    large_client_header_buffers 8 128k;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%TESTDIR%%/html;
        segedge on;
        add_header X-Seg $segedge_segments always;
        add_header X-Visitor $segedge_visitor always;
        add_header X-Known $segedge_known always;

        location / {
            return 200 "ok\n";
        }
        location /html/ {
            alias %%TESTDIR%%/html/;
            segedge_blocks on;
            output_buffers 2 1k;
        }
    }
EOF

sub seg { my $r = http_get(@_); ($r->status // 'none') . ' ' . $r->value('X-Seg') }

# error.log lines since $mark, and segedge's among them
sub log_lines { grep { length } split /\n/, error_log_text($_[0]) }
sub segedge_lines { grep { /segedge: / && !/segedge: using snapshot/ } log_lines($_[0]) }

# ------------------------------------------------------------ Cookie sizes
# Total Cookie bytes up to 16384 are read wherever the id is; above, the
# request is served unpersonalised with one info line per minute.
{
    my $mark = error_log_size();
    my @bad;
    for my $size (0, 1, 100, 4096, 8192, 16383, 16384, 16385, 32768, 65536) {
        for my $where ('first', 'last', 'none') {
            my $id = "segedge_id=$vip";
            my $room = $size - ($where eq 'none' ? 0 : length($id) + 2);    # "; " joins them
            next if $room < 2;
            my $filler = 'f=' . ('x' x ($room - 2));
            my $cookie = $where eq 'first' ? "$id; $filler" : $where eq 'last' ? "$filler; $id" : $filler;
            my $want = $where eq 'none' || $size > 16384 ? '200 ' : '200 vip';
            my $got = seg('/', Cookie => $cookie);
            push @bad, "$size bytes, id $where: got '$got', want '$want'" if $got ne $want || length $cookie != $size;
        }
    }
    push @bad, 'empty Cookie header' if seg('/', Cookie => '') ne '200 ';
    my $pairs = join '; ', map { sprintf 'p%04d=%s', $_, 'x' x 92 } 1 .. 640;
    push @bad, '64 KB of 100-byte cookies' if seg('/', Cookie => "segedge_id=$vip; $pairs") ne '200 ';
    is scalar(@bad), 0, 'Cookie headers of 0 B to 64 KB: personalised up to 16384 bytes, default above'
        or diag join "\n", @bad;

    # the same limit over many Cookie headers (nginx itself refuses about
    # 1000 header lines): 800 headers of 24 bytes, then 500
    my @many = map { sprintf 'c%05d=%s', $_, 'y' x 17 } 1 .. 800;
    is seg('/', Cookie => [@many, "segedge_id=$vip"]), '200 ', '800 Cookie headers, 19 KB in total: default';
    is seg('/', Cookie => [@many[0 .. 499], "segedge_id=$vip"]), '200 vip',
       '500 Cookie headers, 12 KB in total: the id in the last one is read';
    is seg('/', Cookie => ['', '', "segedge_id=$vip"]), '200 vip', 'empty Cookie headers before the id';
    my @lines = segedge_lines($mark);
    is scalar(@lines), 1, 'all the oversized requests logged one line (rate limited)' or diag join "\n", @lines;
}

# ------------------------------------------------------------ odd cookies
{
    my $mark = error_log_size();
    my @cases = (
        ["segedge_id=$vip", 'vip', 'the plain cookie'],
        ["segedge_id=$vip; segedge_id=$plain", 'vip', 'duplicate: the first wins'],
        ["segedge_id=$plain; segedge_id=$vip", '', 'duplicate: the first wins (unprofiled)'],
        ["segedge_id=bogus; segedge_id=$vip", '', 'duplicate: a malformed first one is not skipped'],
        ["xsegedge_id=$vip", '', 'a longer name ending in the cookie name'],
        ["segedge_id_x=$vip", '', 'a longer name starting with the cookie name'],
        ["SEGEDGE_ID=$vip", '', 'names are case-sensitive'],
        ["a=segedge_id=$vip", '', 'the name inside another value'],
        ["segedge_id=\"$vip\"", 'vip', 'a quoted value (RFC 6265 allows the quotes)'],
        ["segedge_id=\"$vip", '', 'an unbalanced quote'],
        ["segedge_id= $vip", 'vip', 'a space after = (trimmed, as browsers do)'],
        ["  segedge_id=$vip  ", 'vip', 'spaces around the pair'],
        [";;;segedge_id=$vip;;;", 'vip', 'empty pairs around it'],
        ["segedge_id", '', 'a name without ='],
        ["=segedge_id=$vip", '', 'an empty name'],
        ["segedge_id==$vip", '', 'a value starting with ='],
        ["segedge_id=$vip=", '', 'a trailing ='],
        [";", '', 'only a separator'],
        ["=", '', 'only ='],
        ["\x01\x02=\x03; segedge_id=$vip", 'vip', 'control bytes in another cookie'],
        ["caf\xc3\xa9=\xff\xfe; segedge_id=$vip", 'vip', 'non-ASCII bytes in another cookie'],
        ["segedge_id=$vip\xff", '', 'a non-ASCII byte after the id'],
        [join('; ', map { "segedge_id$_=$vip" } 1 .. 300) . "; segedge_id=$vip", 'vip', '300 near-miss names, then the id'],
    );
    for my $case (@cases) {
        my ($cookie, $want, $what) = @$case;
        is seg('/', Cookie => $cookie), "200 $want", "odd cookie: $what";
    }
    cmp_ok scalar(segedge_lines($mark)), '<=', 2, 'odd cookies: at most one line per cause and minute';
}

# ------------------------------------------------------------ forged signed cookies

sub sign {
    my ($keys, $id, @opts) = @_;
    my ($rc, $out) = segsync('sign', '--keys', $keys, '--id', $id, @opts);
    die "segsync sign: $out" if $rc;
    chomp $out;
    return $out;
}

sub known { my $r = http_get('/', Cookie => "segedge_id=$plain; segedge_known=$_[0]"); $r->value('X-Known') . ' ' . $r->value('X-Seg') }

{
    my $good = sign("$d/keys", 'cust-1');
    is known($good), '1 vip', 'a valid signed cookie makes the visitor known';
    my ($v, $kid, $id, $exp, $mac) = split /\./, $good;
    my $mark = error_log_size();
    my @truncated = grep { known(substr $good, 0, $_) ne '0 ' } 0 .. length($good) - 1;
    is "@truncated", '', 'every truncation of a valid signed cookie (' . length($good) . ' of them) is ignored';
    my $k2 = sign("$d/keys-k2-first", 'cust-1');
    my (undef, undef, undef, undef, $mac2) = split /\./, $k2;
    my @forged = (
        ["$v.$kid.$id." . ($exp + 86400) . ".$mac", 'expiry moved, MAC kept'],
        ["$v.k2.$id.$exp.$mac", 'another key id of the file, MAC kept'],
        ["$v.$kid.$id.$exp.$mac2", "the other key's MAC under this key id"],
        ["v2.$kid.$id.$exp.$mac", 'another version'],
        ["$v.$kid.$id.$exp.$mac.extra", 'an extra field'],
        ["$v.$kid.$id.$exp", 'no MAC field'],
        ["$v.$kid.$id.$exp.${mac}A", 'a MAC one character long'],
        ["$v.$kid.$id.$exp." . substr($mac, 1), 'a MAC one character short'],
        ["$v.$kid.$id.$exp." . ('/' x 43), 'a MAC in the wrong alphabet'],
        ["$v.$kid.$id.99999999999999999999999.$mac", 'an expiry past 64 bits'],
        ["$v.$kid.$id.-1.$mac", 'a negative expiry'],
        ["$v.$kid.$id.0$exp.$mac", 'a leading zero in the expiry'],
        ["$v.$kid.$id. $exp.$mac", 'a space in the expiry'],
        ["$v.$kid." . ('Q' x 2000) . ".$exp.$mac", 'a 2000-character id'],
        ["$v." . ('k' x 300) . ".$id.$exp.$mac", 'a 300-character key id'],
        ["$v.$kid.$id.$exp.$mac" x 50, 'the cookie fifty times over'],
        ['.' x 4, 'only dots'],
    );
    for my $case (@forged) {
        my ($cookie, $what) = @$case;
        is known($cookie), '0 ', "forged signed cookie: $what";
    }
    is known($good), '1 vip', 'the valid one still works afterwards';
    is known("\"$good\""), '1 vip', 'the valid one in quotes too (RFC 6265)';
    my @lines = grep { !/\[debug\]/ } segedge_lines($mark);
    cmp_ok scalar(@lines), '<=', 2, 'forged cookies: at most one line per cause and minute' or diag join "\n", @lines;
}

# ------------------------------------------------------------ marker storms
{
    my $n = 20000;
    my %pages = (
        'blocks.html'   => "<p>head</p>\n" . ("<!--segedge:hero-->default<!--/segedge:hero-->\n" x $n),
        'unknown.html'  => "<!--segedge:nosuch-->default<!--/segedge:nosuch-->\n" x $n,
        'stray.html'    => "<!--/segedge:hero-->" x $n,
        'badname.html'  => "<!--segedge:Hero-->x<!--/segedge:Hero-->" x $n,
        'partial.html'  => "<!--segedge:hero" x $n . "\n",
        'opens.html'    => "<!--segedge:hero-->" x $n . "tail\n",
        'nested.html'   => "<!--segedge:hero-->" . ("<!--segedge:nosuch-->" x $n) . "<!--/segedge:hero-->\n",
        'unclosed.html' => "<p>a</p><!--segedge:hero-->" . ('default ' x $n),
        'dashes.html'   => "<!" . ('-' x ($n * 5)) . "segedge:hero-->\n",
    );
    write_text("$d/html/$_", $pages{$_}) for keys %pages;
    (my $swapped = $pages{'blocks.html'}) =~ s/-->default</-->$FRAG</g;
    my %want = (
        'blocks.html'   => $swapped,
        'unclosed.html' => "<p>a</p><!--segedge:hero-->$FRAG",
        # a marker inside a block being replaced stops the dropping there
        'opens.html'    => "<!--segedge:hero-->$FRAG" . ("<!--segedge:hero-->" x ($n - 1)) . "tail\n",
        'nested.html'   => "<!--segedge:hero-->$FRAG" . ("<!--segedge:nosuch-->" x $n) . "<!--/segedge:hero-->\n",
        map { $_ => $pages{$_} } qw(unknown.html stray.html badname.html partial.html dashes.html),
    );
    for my $who (['vip', $vip], ['plain', $plain]) {
        my ($label, $id) = @$who;
        for my $page (sort keys %pages) {
            my $mark = error_log_size();
            my $r = http_get("/html/$page", Cookie => "segedge_id=$id");
            my $want = $label eq 'plain' ? $pages{$page} : $want{$page};
            is $r->status, 200, "storm $page, $label visitor: 200";
            ok $r->body eq $want, "storm $page, $label visitor: the documented output"
                or diag 'got ' . length($r->body) . ' bytes, want ' . length($want);
            my @lines = segedge_lines($mark);
            cmp_ok scalar(@lines), '<=', 1, "storm $page, $label visitor: at most one log line for $n markers"
                or diag join "\n", @lines[0 .. 4];
        }
    }
}

# ------------------------------------------------------------ query strings
{
    my $mark = error_log_size();
    my $junk = join '&', map { "a$_=$_" } 1 .. 5000;
    my $paid = 'utm_medium=paid_social&utm_source=facebook';
    my @ua = ('User-Agent' => 'test');
    is seg("/?$junk&$paid", @ua), '200 paid_social', '5000 arguments, then the UTM ones: the rule matches';
    is seg("/?$paid&$junk", @ua), '200 paid_social', 'the UTM ones, then 5000 arguments';
    is seg("/?utm_medium=email&$junk&$paid", @ua), '200 ', 'duplicate argument: the first one counts';
    is seg("/?$junk", @ua), '200 ', '5000 arguments, no UTM: no rule segment';
    is seg('/?' . join('&', ('utm_source=facebook') x 3000) . '&utm_medium=paid_social', @ua), '200 paid_social',
       '3000 copies of one argument';
    is seg('/?' . ('&' x 20000), @ua), '200 ', '20000 empty arguments';
    is seg('/?' . ('=' x 20000), @ua), '200 ', 'one argument of 20000 "="';
    is seg("/?q=" . ('a' x 60000), @ua), '200 q_regex', 'a 60 KB argument through a regex rule (RE2: linear)';
    is seg("/?q=" . ('a' x 60000) . '!', @ua), '200 ', '... and one that almost matches';
    is seg('/?ref=1&' . join('&', map { "%zz$_=%" } 1 .. 3000), @ua), '200 has_ref', 'broken percent-escapes around an argument';
    is seg("/?$junk&$paid", @ua, Cookie => "segedge_id=$vip"), '200 vip,paid_social',
       'thousands of arguments with a profiled visitor: merged in priority order';
    my @lines = segedge_lines($mark);
    is scalar(@lines), 0, 'query strings: nothing logged' or diag join "\n", @lines[0 .. 4];
}

done_testing;
