# Rule segments evaluated per request: path, UTM query argument, header,
# cookie, context variable, device, local time (pinned with the test-only
# "segedge_context now"), visitor state and first-seen age (the issue time
# ids carry), layering on other segments,
# merging with precomputed segments in priority order, segedge_segment_max,
# and block selection by rule segments.

use SegEdge::Test;
use File::Path qw(make_path);
use MIME::Base64 qw(encode_base64url);

my $vip = visitor_id('v-vip');

my $SEG = <<'SEG';
{"name":"vip","priority":100}
{"name":"sale_path","priority":90,"rule":{"input":"path","op":"prefix","value":"/sale/"}}
{"name":"paid_social","priority":80,"rule":{"all":[{"input":"query.utm_medium","op":"eq","value":"paid_social","ignore_case":true},{"input":"query.utm_source","op":"in","value":["facebook","tiktok"]}]}}
{"name":"beta_header","priority":70,"rule":{"input":"header.x-beta","op":"exists"}}
{"name":"ab_b","priority":60,"rule":{"input":"cookie.ab","op":"eq","value":"b"}}
{"name":"uk","priority":50,"rule":{"input":"context.country","op":"eq","value":"GB"}}
{"name":"mobile","priority":40,"rule":{"input":"device","op":"eq","value":"mobile"}}
{"name":"weekend_evening","priority":30,"rule":{"all":[{"input":"weekday","op":"gte","value":6},{"input":"hour","op":"between","value":[18,23]}]}}
{"name":"newcomer","priority":20,"rule":{"input":"visitor","op":"eq","value":"new"}}
{"name":"mobile_vip","priority":110,"rule":{"all":[{"segment":"vip"},{"segment":"mobile"}]}}
{"name":"champion","priority":15,"rule":{"all":[{"input":"attribute.rfm_r","op":"gte","value":4},{"input":"attribute.lifecycle","op":"eq","value":"CUSTOMER","ignore_case":true}]}}
{"name":"broken_regex_safe","priority":10,"rule":{"input":"header.x-long","op":"regex","value":"^(a+)+$"}}
{"name":"first_week","priority":5,"rule":{"input":"first_seen_days","op":"lt","value":7}}
{"name":"settled","priority":4,"rule":{"input":"first_seen_days","op":"gte","value":7}}
SEG
my $champ = visitor_id('v-champ');
my $PROF = qq({"id":"$vip","kind":"anonymous","segments":["vip"],"attributes":{"rfm_r":2,"lifecycle":"customer"}}\n)
         . qq({"id":"$champ","kind":"anonymous","segments":[],"attributes":{"rfm_r":5,"lifecycle":"customer"}}\n);
my $BLOCKS = <<'BLOCKS';
{"block":"hero","segment":"mobile","html":"<b>mobile hero</b>"}
{"block":"hero","segment":"vip","html":"<b>vip hero</b>"}
BLOCKS

my ($rc, $out) = import_snapshot('db', $SEG, $PROF, 'test', undef, $BLOCKS);
is $rc, 0, 'rules imported' or diag $out;

make_path(testdir() . '/html');
write_text(testdir() . '/html/page.html', "<!--segedge:hero-->default hero<!--/segedge:hero-->\n");

$ENV{TZ} = 'UTC';  # nginx keeps TZ for its workers: hours below are UTC
start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%TESTDIR%%/html;
        segedge on;
        segedge_context country $http_x_country;
        segedge_context now $arg_now;

        location / {
            add_header X-Seg $segedge_segments always;
            return 200 "ok\n";
        }

        location /issue/ {
            segedge_cookie_issue on;
            add_header X-Seg $segedge_segments always;
            return 200 "ok\n";
        }

        location /max/ {
            segedge_segment_max 2;
            add_header X-Seg $segedge_segments always;
            return 200 "ok\n";
        }

        location /page.html {
            segedge_blocks on;
        }
    }
EOF

sub seg { http_get(@_)->value('X-Seg') }

my $desktop = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120';
my $iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148';
my @ua = ('User-Agent' => $desktop);

is seg('/x', @ua), '', 'no rule matches a plain desktop request';
is seg('/sale/shoes', @ua), 'sale_path', 'path prefix';
is seg('/x?utm_medium=PAID_SOCIAL&utm_source=tiktok', @ua), 'paid_social', 'UTM query, ignore_case';
is seg('/x?utm_medium=paid_social&utm_source=google', @ua), '', 'UTM query: all of the conditions';
is seg('/x', @ua, 'X-Beta' => '1'), 'beta_header', 'header exists';
is seg('/x', @ua, Cookie => 'ab=b'), 'ab_b', 'cookie value';
is seg('/x', @ua, Cookie => 'ab=a'), '', 'other cookie value';
is seg('/x', @ua, 'X-Country' => 'GB'), 'uk', 'segedge_context variable';
is seg('/x', @ua, 'X-Country' => 'FR'), '', 'other context value';
is seg('/x', 'User-Agent' => $iphone), 'mobile', 'device class from User-Agent';

# 2024-06-01 is a Saturday; 19:00 and 10:00 UTC
is seg('/x?now=1717268400', @ua), 'weekend_evening', 'weekend evening (pinned time)';
is seg('/x?now=1717236000', @ua), '', 'weekend morning is not evening';
is seg('/x?now=1717700400', @ua), '', 'a Thursday evening is not the weekend';

my $issued = http_get('/issue/x', @ua);
like $issued->value('X-Seg'), qr/(^|,)newcomer,first_week$/, 'freshly issued id: new visitor, first seen now';
is seg('/issue/x', @ua, Cookie => "segedge_id=$vip"), 'vip', 'returning visitor is not new';
my ($new_id) = ($issued->header('Set-Cookie') // '') =~ /segedge_id=([^;]+)/;
is seg('/x', @ua, Cookie => "segedge_id=$new_id"), 'first_week', 'the issued id carries its issue time';

# An id issued at unix milliseconds $ms, laid out as the module issues them (UUIDv7).
sub id_issued_at { encode_base64url(substr(pack('Q>', $_[0]), 2) . "\x7a\x5a\x95" . ("\x5a" x 7)) }
my $now = 1780000000;  # a Thursday
is seg("/x?now=$now", @ua, Cookie => 'segedge_id=' . id_issued_at(($now - 10 * 86400) * 1000)), 'settled',
    'first seen 10 days ago';
is seg("/x?now=$now", @ua, Cookie => 'segedge_id=' . id_issued_at(($now - 2 * 86400) * 1000)), 'first_week',
    'first seen 2 days ago';
is seg("/x?now=$now", @ua, Cookie => 'segedge_id=' . id_issued_at(($now + 2 * 86400) * 1000)), '',
    'an issue time too far ahead of the clock is no issue time';
is seg("/x?now=$now", @ua, Cookie => "segedge_id=$vip"), 'vip', 'an id without an issue time: first-seen age missing';

is seg('/x', 'User-Agent' => $iphone, Cookie => "segedge_id=$vip"), 'mobile_vip,vip,mobile',
    'rule on other segments; merged with precomputed in priority order';
is seg('/sale/x?utm_medium=paid_social&utm_source=facebook', @ua, Cookie => "segedge_id=$vip", 'X-Beta' => 1),
    'vip,sale_path,paid_social,beta_header', 'several rules and precomputed, priority order';
is seg('/max/sale/?utm_medium=paid_social&utm_source=facebook', @ua, Cookie => "segedge_id=$vip", 'X-Beta' => 1),
    'vip,paid_social', 'segedge_segment_max caps the reported list';

is seg('/x', @ua, Cookie => "segedge_id=$champ"), 'champion', 'profile attributes (number and text)';
is seg('/x', @ua, Cookie => "segedge_id=$vip"), 'vip', 'profile attribute below the threshold';

is seg('/x', @ua, 'X-Long' => ('a' x 4000) . '!'), '', 'pathological regex: linear time, no match';

like http_get('/page.html', 'User-Agent' => $iphone)->body, qr/mobile hero/, 'block chosen by a rule segment';
like http_get('/page.html', 'User-Agent' => $iphone, Cookie => "segedge_id=$vip")->body, qr/vip hero/,
    'block: precomputed vip outranks the mobile rule';
like http_get('/page.html', @ua)->body, qr/default hero/, 'block: no segment, default content';

nginx_t_fails('segedge_context with a bad name',
              "segedge_db %%TESTDIR%%/db; segedge_context Country \$http_x_country;",
              'invalid segedge_context name "Country"');
nginx_t_fails('segedge_segment_max 0', "segedge_db %%TESTDIR%%/db; segedge_segment_max 0;",
              'value must be between 1 and 512');
nginx_t_fails('segedge_segment_max not a number', "segedge_db %%TESTDIR%%/db; segedge_segment_max many;",
              'invalid number');

done_testing;
