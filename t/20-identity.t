# Identity: the anonymous visitor cookie (issued on the first visit, kept
# afterwards, never on cacheable responses), signed known-visitor cookies,
# aliases, and consent (segedge_consent, Sec-GPC).

use SegEdge::Test;

my $d = testdir();
my %key = (k2025 => 'a1' x 32, k2024 => 'b2' x 32, k2023 => 'c3' x 32, impostor => 'd4' x 32);

# Writes a key file holding the named keys, first one signing.
sub key_file {
    my ($name, @ids) = @_;
    my $path = "$d/$name";
    write_text($path, "# segedge keys: the first signs\n" . join '', map { "$_ hex:$key{$_}\n" } @ids);
    chmod 0600, $path;
    return $path;
}

my $keys = key_file('keys', 'k2025', 'k2024');
my $old_first = key_file('old-first', 'k2024');
my $retired = key_file('retired-keys', 'k2023');
write_text("$d/impostor-keys", "k2025 hex:$key{impostor}\n");

sub sign {
    my ($file, $id, @opts) = @_;
    my ($rc, $out) = segsync('sign', '--keys', $file, '--id', $id, @opts);
    is $rc, 0, "segsync sign $id" or diag $out;
    chomp $out;
    return $out;
}

my %v = map { $_ => visitor_id($_) } qw(browser returning stranger);

my ($rc, $out) = import_snapshot('db', <<'SEG', <<"PROF", 'identity', <<"ALIASES");
{"name":"vip","priority":100}
{"name":"cart","priority":50}
{"name":"news","priority":10}
{"name":"new_visitor","priority":5}
SEG
{"id":"$v{browser}","kind":"anonymous","segments":["cart"]}
{"id":"$v{returning}","kind":"anonymous","segments":["news"]}
{"id":"cust-1","kind":"known","segments":["vip","news"]}
{"id":"cust-2","kind":"known","segments":["new_visitor"]}
PROF
{"anonymous":"$v{browser}","known":"cust-1"}
ALIASES
is $rc, 0, 'snapshot with aliases imported' or diag $out;
like $out, qr/1 aliases/, 'segsync reports the aliases';

my $headers = <<'EOF';
            add_header X-Seg $segedge_segments always;
            add_header X-Visitor $segedge_visitor always;
            add_header X-Known $segedge_known always;
            add_header X-Consent $segedge_consent always;
EOF

start_nginx(<<"EOF");
    segedge_db %%TESTDIR%%/db;
    segedge_keys %%TESTDIR%%/keys;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        segedge_cookie_issue on;

        location / {
$headers
            return 200 "visitor=\$segedge_visitor\\n";
        }

        # no variable: the header filter alone issues the id
        location /static {
            return 200 "static\\n";
        }

        location /proxy {
            proxy_set_header X-Visitor \$segedge_visitor;
            proxy_pass http://127.0.0.1:%%PORT2%%/echo;
        }

        location /redirect {
            set \$v \$segedge_visitor;
            rewrite ^ /landing last;
        }

        location /landing {
            segedge_cookie_issue off;
$headers
            return 200 "landing\\n";
        }

        location /cached {
            expires 1h;
$headers
            return 200 "cached\\n";
        }

        location /public {
            add_header Cache-Control public;
            return 200 "public\\n";
        }

        location /s-maxage {
            add_header Cache-Control "s-maxage=600";
            return 200 "s-maxage\\n";
        }

        location /private {
            add_header Cache-Control "private, max-age=600";
            return 200 "private\\n";
        }

        location /upstream-cacheable {
            proxy_pass http://127.0.0.1:%%PORT2%%/cacheable;
        }

        location /no-issue {
            segedge_cookie_issue off;
$headers
            return 200 "no issue\\n";
        }

        location /attrs {
            segedge_cookie_domain .example.com;
            segedge_cookie_path /attrs;
            segedge_cookie_max_age 400d;
            segedge_cookie_flags Secure HttpOnly SameSite=Strict;
            return 200 "attrs\\n";

            location /attrs/host-only {
                segedge_cookie_domain none;
                return 200 "host only\\n";
            }
        }

        location /session {
            segedge_known_cookie session;
$headers
            return 200 "session\\n";
        }

        location /consent {
            segedge_consent \$cookie_consent;
$headers
            return 200 "consent\\n";
        }

        location /ignore-gpc {
            segedge_consent_gpc off;
$headers
            return 200 "ignore gpc\\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        location /echo {
            return 200 "upstream saw visitor=[\$http_x_visitor]\\n";
        }
        location /cacheable {
            add_header Cache-Control "public, max-age=60";
            return 200 "cacheable upstream\\n";
        }
    }
EOF

# The visitor id a response sets, or undef; more than one Set-Cookie fails.
sub issued {
    my ($r, $what) = @_;
    my @set = $r->header('Set-Cookie');
    ok @set <= 1, "$what: at most one Set-Cookie" or diag explain \@set;
    return undef unless @set;
    return $set[0] =~ /^segedge_id=([^;]*);/ ? $1 : "unparsed: $set[0]";
}

sub canonical { defined $_[0] && $_[0] =~ /^[A-Za-z0-9_-]{21}[AQgw]$/ }

# --- first visit: a cookie with the default attributes, used at once
my $id;
{
    my $r = http_get('/');
    is $r->status, 200, 'first visit: 200';
    my ($set) = $r->header('Set-Cookie');
    like $set, qr/^segedge_id=[A-Za-z0-9_-]{22}; Max-Age=31536000; Path=\/; HttpOnly; SameSite=Lax$/,
         'first visit: Set-Cookie with the default attributes';
    $id = issued($r, 'first visit');
    ok canonical($id), "first visit: a canonical 128-bit id ($id)";
    is $r->value('X-Visitor'), $id, 'first visit: $segedge_visitor is the issued id';
    is $r->body, "visitor=$id\n", 'first visit: the body uses the same id';
    is $r->value('X-Known'), '0', 'first visit: not known';
    is $r->value('X-Consent'), 'granted', 'first visit: consent granted (not configured)';

    my $again = issued(http_get('/'), 'another first visit');
    ok canonical($again) && $again ne $id, 'another first visit gets another id';
}

# --- returning visit: the id is kept, no new cookie
{
    my $r = http_get('/', Cookie => "segedge_id=$id");
    is issued($r, 'returning visit'), undef, 'returning visit: no Set-Cookie';
    is $r->value('X-Visitor'), $id, 'returning visit: same id';
    $r = http_get('/', Cookie => "segedge_id=$v{returning}");
    is $r->value('X-Seg'), 'news', 'returning profiled visitor: anonymous segments';
    is $r->value('X-Known'), '0', 'returning profiled visitor: not known';
    is issued($r, 'returning profiled visitor'), undef, 'returning profiled visitor: no Set-Cookie';
}

# --- a malformed, wrong-length or non-canonical cookie is replaced
for my $bad (substr($id, 0, 21), "${id}A", substr($id, 0, 21) . 'B', 'v-1001', "$id!", '') {
    my $r = http_get('/', Cookie => "segedge_id=$bad");
    my $new = issued($r, "cookie '$bad'");
    ok canonical($new) && $new ne $bad, "cookie '$bad': replaced by a new id";
    is $r->value('X-Visitor'), $new // '', "cookie '$bad': the new id is used";
}

# --- the id is issued and used even when only the header filter asks
{
    my $r = http_get('/static');
    ok canonical(issued($r, '/static')), 'no variables used: the cookie is still issued';
    is $r->body, "static\n", 'no variables used: the page';

    $r = http_get('/proxy');
    my $new = issued($r, '/proxy');
    ok canonical($new), 'proxied first visit: a cookie';
    is $r->body, "upstream saw visitor=[$new]\n", 'proxied first visit: the upstream saw the same id';

    $r = http_get('/redirect');
    $new = issued($r, '/redirect');
    ok canonical($new), 'issued before an internal redirect: the cookie is still set';
    is $r->value('X-Visitor'), $new, 'issued before an internal redirect: same id after it';
}

# --- shared-cacheable responses never carry the cookie
for my $case (['/cached', 'expires 1h'], ['/public', 'Cache-Control: public'],
              ['/s-maxage', 'Cache-Control: s-maxage'],
              ['/upstream-cacheable', 'upstream Cache-Control: public, max-age=60']) {
    my ($uri, $what) = @$case;
    my $r = http_get($uri);
    is $r->status, 200, "$what: 200";
    isnt $r->value('Cache-Control'), '', "$what: the response has Cache-Control";
    is issued($r, $what), undef, "$what: no Set-Cookie";
}
{
    my $r = http_get('/private');
    ok canonical(issued($r, 'private')), 'Cache-Control: private, max-age: the cookie is set';
    $r = http_get('/no-issue');
    is issued($r, '/no-issue'), undef, 'segedge_cookie_issue off: no Set-Cookie';
    is $r->value('X-Visitor'), '', 'segedge_cookie_issue off: no visitor';
}

# --- attributes
{
    my $r = http_get('/attrs');
    my ($set) = $r->header('Set-Cookie');
    my $new = issued($r, '/attrs');
    is $set, "segedge_id=$new; Max-Age=34560000; Domain=.example.com; Path=/attrs; Secure; HttpOnly; SameSite=Strict",
       'configured domain, path, 400-day max age and flags';
    $r = http_get('/attrs/host-only');
    ($set) = $r->header('Set-Cookie');
    $new = issued($r, '/attrs/host-only');
    is $set, "segedge_id=$new; Max-Age=34560000; Path=/attrs; Secure; HttpOnly; SameSite=Strict",
       'segedge_cookie_domain none drops the inherited domain, keeps the rest';
}

# --- known visitors
my $cust2 = sign($keys, 'cust-2');
like $cust2, qr/^v1\.k2025\.[A-Za-z0-9_-]+\.\d+\.[A-Za-z0-9_-]{43}$/, 'segsync sign: the documented format';

sub known_ok {
    my ($cookie, $segments, $what, $uri) = @_;
    my $r = http_get($uri // '/', Cookie => $cookie);
    subtest $what => sub {
        is $r->value('X-Known'), '1', 'known';
        is $r->value('X-Seg'), $segments, 'segments';
        my ($head) = split /\r\n\r\n/, $r->raw, 2;
        unlike $head, qr/cust-\d/, 'the known id is not in the response headers';
    };
    return $r;
}

sub anonymous_ok {
    my ($cookie, $what, $uri) = @_;
    my $r = http_get($uri // '/', Cookie => $cookie);
    subtest $what => sub {
        is $r->value('X-Known'), '0', 'not known';
        is $r->value('X-Seg'), 'news', 'only the anonymous segments';
        is $r->value('X-Visitor'), $v{returning}, 'the anonymous id';
    };
    return $r;
}

known_ok("segedge_id=$v{browser}", 'vip,cart,news',
         'aliased anonymous visitor: known profile merged with its own segments');
known_ok("segedge_id=$v{returning}; segedge_known=$cust2", 'news,new_visitor',
         'signed known cookie: known profile merged with the anonymous one');
known_ok("segedge_id=$v{browser}; segedge_known=$cust2", 'cart,new_visitor',
         'the signed known id wins over the alias');
known_ok("segedge_known=$cust2", 'new_visitor', 'signed known cookie on a first visit');
known_ok("segedge_id=$v{stranger}; segedge_known=" . sign($old_first, 'cust-1'), 'vip,news',
         'a cookie signed with the older key (listed second) still verifies');
{
    my $r = http_get('/', Cookie => "segedge_known=$cust2");
    ok canonical(issued($r, 'known, no anonymous cookie')),
       'a known visitor without an anonymous cookie gets one';
}

# forged, expired and malformed known cookies: the visitor stays anonymous
{
    my $mark = error_log_size();
    my $flipped = $cust2;
    substr($flipped, -1, 1) = substr($flipped, -1, 1) eq 'A' ? 'Q' : 'A';
    my $other_id = $cust2 =~ s/^(v1\.k2025\.)[^.]+/${1}Y3VzdC0x/r;     # "cust-1", same MAC
    my @forged = (
        [$flipped, 'MAC changed'],
        [$other_id, 'id changed, MAC kept'],
        [sign($retired, 'cust-2'), 'signed with a key not in the file'],
        [sign("$d/impostor-keys", 'cust-2'), 'right key id, wrong secret'],
        [sign($keys, 'cust-2', '--expires', time - 60), 'expired'],
        ['v1.k2025.Y3VzdC0y.9999999999.' . ('A' x 43), 'made-up MAC'],
        ['cust-2', 'the bare id'],
        ['', 'empty'],
    );
    for my $case (@forged) {
        my ($value, $what) = @$case;
        anonymous_ok("segedge_id=$v{returning}; segedge_known=$value", "forged known cookie ($what)");
    }
    like error_log_text($mark), qr/known-visitor cookie ignored: expired/,
         'the debug log says why a known cookie was ignored';
    like error_log_text($mark), qr/known-visitor cookie ignored: unknown key/,
         'the debug log names an unknown key';
}
{
    known_ok("segedge_id=$v{returning}; session=$cust2", 'news,new_visitor',
             'segedge_known_cookie names the cookie', '/session');
    anonymous_ok("segedge_id=$v{returning}; segedge_known=$cust2",
                 'segedge_known_cookie: the default name is not read there', '/session');
}

# --- the README's Python recipe produces cookies the module accepts
{
    my $readme = read_text(repo_dir() . '/README.md') // '';
    my ($recipe) = $readme =~ /```python\n(.*?def known_cookie.*?)```/s;
    ok $recipe, 'README has the Python recipe';
    write_text("$d/recipe.py", ($recipe // '')
               . "\nprint(known_cookie(\"k2025\", bytes.fromhex(\"$key{k2025}\"), \"cust-2\"))\n");
    my ($rc, $cookie) = run_cmd('python3', "$d/recipe.py");
    is $rc, 0, 'the recipe runs' or diag $cookie;
    chomp $cookie;
    known_ok("segedge_id=$v{returning}; segedge_known=$cookie", 'news,new_visitor',
             'a cookie made by the README recipe verifies');
}

# --- consent
{
    my $known = "segedge_id=$v{browser}; segedge_known=$cust2";
    for my $case (['', 'no consent cookie'], ['consent=0; ', 'consent=0'],
                  ['consent=denied; ', 'consent=denied'], ['consent=maybe; ', 'consent=maybe']) {
        my ($consent, $what) = @$case;
        my $r = http_get('/consent', Cookie => "$consent$known");
        is join('|', map { $r->value($_) } qw(X-Seg X-Visitor X-Known X-Consent)), '||0|denied',
           "$what: no segments, no visitor, not known, denied";
        $r = http_get('/consent', $consent ? (Cookie => $consent) : ());
        is issued($r, "$what, first visit"), undef, "$what: no Set-Cookie on a first visit";
    }
    my $r = http_get('/consent', Cookie => "consent=granted; $known");
    is $r->value('X-Consent'), 'granted', 'consent=granted: granted';
    is $r->value('X-Seg'), 'cart,new_visitor', 'consent=granted: personalised';
    is $r->value('X-Known'), '1', 'consent=granted: known';
    $r = http_get('/consent', Cookie => 'consent=1');
    ok canonical(issued($r, 'consent=1, first visit')), 'consent=1: a first visit gets a cookie';
}
{
    my $r = http_get('/', 'Sec-GPC' => '1', Cookie => "segedge_id=$v{browser}");
    is $r->value('X-Consent'), 'denied', 'Sec-GPC: 1: denied';
    is join('|', map { $r->value($_) } qw(X-Seg X-Visitor X-Known)), '||0',
       'Sec-GPC: 1: no segments, no visitor, not known';
    $r = http_get('/', 'Sec-GPC' => '1');
    is issued($r, 'Sec-GPC: 1, first visit'), undef, 'Sec-GPC: 1: no Set-Cookie';
    $r = http_get('/consent', 'Sec-GPC' => '1', Cookie => "consent=granted; segedge_id=$v{browser}");
    is $r->value('X-Consent'), 'denied', 'Sec-GPC: 1 overrides a granted consent value';
    $r = http_get('/', 'Sec-GPC' => '0', Cookie => "segedge_id=$v{browser}");
    is $r->value('X-Seg'), 'vip,cart,news', 'Sec-GPC: 0: personalised';
    $r = http_get('/ignore-gpc', 'Sec-GPC' => '1', Cookie => "segedge_id=$v{browser}");
    is $r->value('X-Consent'), 'granted', 'segedge_consent_gpc off: granted despite Sec-GPC: 1';
    is $r->value('X-Seg'), 'vip,cart,news', 'segedge_consent_gpc off: personalised';
}

# --- key rotation by reload: a removed key no longer verifies
{
    my $old_cookie = sign($old_first, 'cust-1');
    known_ok("segedge_id=$v{returning}; segedge_known=$old_cookie", 'vip,news',
             'before the reload: the older key verifies');
    key_file('keys', 'k2025');
    reload_nginx();
    anonymous_ok("segedge_id=$v{returning}; segedge_known=$old_cookie",
                 'after the older key is removed and nginx reloaded: its cookies are ignored');
    known_ok("segedge_id=$v{returning}; segedge_known=$cust2", 'news,new_visitor',
             'after the reload: the current key still verifies');
}

done_testing;
