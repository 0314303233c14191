# The per-request result survives internal redirects: once evaluated, the
# segments stay those of the location that evaluated them (rewrite ... last,
# error_page, try_files, named locations); a value not yet evaluated is
# resolved lazily where it is first used.

use SegEdge::Test;

my ($first, $second) = (visitor_id('v-first'), visitor_id('v-second'));

my ($rc, $out) = import_snapshot('db', <<'SEG', <<"PROF");
{"name":"alpha","description":"from cookie first","owner":"test","priority":20}
{"name":"beta","description":"from cookie second","owner":"test","priority":10}
SEG
{"id":"$first","kind":"anonymous","segments":["alpha"]}
{"id":"$second","kind":"anonymous","segments":["beta"]}
PROF
is $rc, 0, 'snapshot imported' or diag $out;

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%TESTDIR%%;
        segedge on;

        # evaluated with cookie "first", then redirected
        location /a {
            segedge_cookie first;
            set $s $segedge_segments;
            rewrite ^ /b last;
        }

        # not evaluated before the redirect
        location /lazy {
            segedge_cookie first;
            rewrite ^ /b last;
        }

        location /err {
            segedge_cookie first;
            set $s $segedge_segments;
            error_page 404 = /b;
            return 404;
        }

        location /missing {
            segedge_cookie first;
            set $s $segedge_segments;
            log_not_found off;
            error_page 404 = /b;
        }

        location /try {
            segedge_cookie first;
            set $s $segedge_segments;
            try_files /nonexistent-file /b;
        }

        location /named {
            segedge_cookie first;
            set $s $segedge_segments;
            try_files /nonexistent-file @b;
        }

        location /b {
            segedge_cookie second;
            add_header X-Seg $segedge_segments always;
            add_header X-Visitor $segedge_visitor always;
            return 200 "b: $segedge_segments\n";
        }

        location @b {
            segedge_cookie second;
            add_header X-Seg $segedge_segments always;
            add_header X-Visitor $segedge_visitor always;
            return 200 "named: $segedge_segments\n";
        }

    }
EOF

my @cookies = (Cookie => "first=$first; second=$second");

for my $case (['/a', 'rewrite ... last', "b: alpha\n"],
              ['/err', 'error_page 404 = /b after return 404', "b: alpha\n"],
              ['/missing/file', 'error_page 404 = /b after a static 404', "b: alpha\n"],
              ['/try', 'try_files fallback URI', "b: alpha\n"],
              ['/named', 'try_files fallback named location', "named: alpha\n"]) {
    my ($uri, $what, $body) = @$case;
    my $r = http_get($uri, @cookies);
    is $r->status, 200, "$what: 200";
    is $r->value('X-Seg'), 'alpha', "$what: segments computed before the redirect (cookie first)";
    is $r->value('X-Visitor'), $first, "$what: visitor from cookie first";
    is $r->body, $body, "$what: body uses the same value";
}

{
    my $r = http_get('/b', @cookies);
    is $r->value('X-Seg'), 'beta', 'direct request to /b uses cookie second';
    is $r->value('X-Visitor'), $second, 'direct request to /b: visitor from cookie second';
}
{
    my $r = http_get('/lazy', @cookies);
    is $r->status, 200, 'not evaluated before the redirect: 200';
    is $r->value('X-Seg'), 'beta', 'not evaluated before the redirect: resolved in /b (cookie second)';
}
{
    # cookie "first" absent: the (empty) result computed in /a is kept too
    my $r = http_get('/a', Cookie => "second=$second");
    is $r->status, 200, 'no cookie first: 200';
    is $r->value('X-Seg'), '', 'no cookie first: empty segments survive the redirect';
    is $r->value('X-Visitor'), '', 'no cookie first: empty visitor survives the redirect';
}

done_testing;
