# Experiments: variants for targeted visitors only, computed exactly as the
# README documents (checked against Perl's own SHA-256 here), routed to two
# upstreams by map + proxy_pass, logged in an access log, and unchanged by a
# republish that adds an unrelated experiment, by a reload and by login;
# exposures are counted per experiment:variant in the metrics zone, only for
# requests that read a variant.

use SegEdge::Test;
use Digest::SHA qw(sha256);

# bucket = first 8 bytes of SHA-256(salt ":" id), big-endian, mod 10,000;
# split into two 32-bit halves so the arithmetic stays exact.
sub bucket {
    my ($salt, $id) = @_;
    my ($hi, $lo) = unpack 'NN', sha256("$salt:$id");
    return (($hi % 10000) * (4294967296 % 10000) + $lo) % 10000;
}

my %checkout = (salt => 'checkout-2026-11', layer => 'checkout-layer', holdout => 1000,
                range => [1000, 10000], variants => [[control => 5000], [B => 5000]]);
my %hero = (salt => 'hero-1', layer => 'hero', holdout => 0, range => [0, 10000],
            variants => [[control => 2000], [big => 8000]]);

sub expected_variant {
    my ($e, $id) = @_;
    my $layer = bucket($e->{layer}, $id);
    return 'holdout' if $layer < $e->{holdout};
    return '' if $layer < $e->{range}[0] || $layer >= $e->{range}[1];
    my ($b, $upper) = (bucket($e->{salt}, $id), 0);
    for my $v (@{ $e->{variants} }) {
        $upper += $v->[1];
        return $v->[0] if $b < $upper;
    }
    die 'weights do not sum to 10,000';
}

my @vip = map { visitor_id("v-$_") } 1 .. 60;
my $other = visitor_id('o-1');
my $logged_in = $vip[0];

my $segments = <<'SEG';
{"name":"vip","description":"big spenders","owner":"crm","priority":100}
{"name":"other","description":"everyone else","owner":"crm","priority":10}
SEG
my $profiles = join '', map({ qq({"id":"$_","kind":"anonymous","segments":["vip"]}\n) } @vip),
    qq({"id":"$other","kind":"anonymous","segments":["other"]}\n),
    qq({"id":"customer-1","kind":"known","segments":["vip"]}\n);
my $experiments = <<'EXP';
{"layer":"checkout-layer","holdout":1000}
{"id":"checkout","segments":["vip"],"status":"running","salt":"checkout-2026-11","variants":[{"name":"control","weight":5000},{"name":"B","weight":5000}],"layer":"checkout-layer","layer_range":[1000,10000]}
{"id":"hero","status":"running","salt":"hero-1","variants":[{"name":"control","weight":2000},{"name":"big","weight":8000}]}
{"id":"promo","status":"paused","salt":"promo-1","variants":[{"name":"control","weight":10000}]}
EXP

# the hero block: vip content, and other content for vip visitors in checkout's B
my $blocks = <<'BLK';
{"block":"hero","segment":"vip","html":"vip hero"}
{"block":"hero","segment":"vip","experiment":"checkout","variant":"B","html":"B hero"}
BLK
mkdir testdir() . '/html';
write_text(testdir() . '/html/page.html', "<!--segedge:hero-->default hero<!--/segedge:hero-->\n");

my ($rc, $out) = import_snapshot('db', $segments, $profiles, 'gen-1', undef, $blocks, $experiments);
is $rc, 0, 'imported with experiments' or diag $out;
like $out, qr/3 experiments/, 'import counts the experiments';

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 100ms;
    segedge_metrics_zone segedge_metrics 1m;

    log_format exposure '$segedge_visitor $segedge_experiments';

    map $segedge_variant_checkout $checkout_backend {
        B        127.0.0.1:%%PORT2%%;
        default  127.0.0.1:%%PORT3%%;
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;

        location / {
            access_log %%TESTDIR%%/exposure.log exposure;
            add_header X-Variant "[$segedge_variant_checkout]" always;
            add_header X-Paused "[$segedge_variant_promo]" always;
            add_header X-Experiments "[$segedge_experiments]" always;
            add_header X-Gen $segedge_generation always;
            proxy_set_header X-Segedge-Experiments $segedge_experiments;
            proxy_pass http://$checkout_backend;
        }

        location = /page.html {
            segedge_blocks on;
            root %%TESTDIR%%/html;
            add_header X-Blocks-Key $segedge_blocks_key always;
        }

        location = /plain {
            add_header X-Seg $segedge_segments always;
            return 200 "plain\n";
        }

        location = /status {
            segedge off;
            segedge_status;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        location / { return 200 "upstream-B $http_x_segedge_experiments\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT3%%;
        location / { return 200 "upstream-default $http_x_segedge_experiments\n"; }
    }
EOF

sub expected_list {
    my ($id, $targeted) = @_;
    my @list;
    push @list, 'checkout:' . expected_variant(\%checkout, $id) if $targeted;
    push @list, 'hero:' . expected_variant(\%hero, $id);
    return join ',', grep { !/:$/ } @list;
}

sub observe {
    my %seen;
    for my $id (@vip) {
        $seen{$id} = http_get('/', Cookie => "segedge_id=$id")->value('X-Variant');
    }
    return \%seen;
}

my %count;
for my $id (@vip) {
    my $r = http_get('/', Cookie => "segedge_id=$id");
    my $variant = expected_variant(\%checkout, $id);
    my $list = expected_list($id, 1);
    $count{$variant}++;
    is $r->value('X-Variant'), "[$variant]", "targeted visitor: variant as documented";
    is $r->value('X-Experiments'), "[$list]", 'exposure list';
    is $r->value('X-Paused'), '[]', 'a paused experiment assigns nobody';
    my $backend = $variant eq 'B' ? 'upstream-B' : 'upstream-default';
    like $r->body, qr/^\Q$backend $list\E$/, "routed to $backend, with the exposure header";
}
ok $count{B} && $count{control} && $count{holdout}, 'B, control and holdout all occur'
    or diag explain \%count;

my $status = http_get('/status?format=json')->body;
for my $variant (qw(B control holdout)) {
    my $n = $count{$variant};
    like $status, qr/"checkout:$variant":$n(?:,|\})/, "status counts checkout:$variant exposures";
}
like $status, qr/"promo:control":0(?:,|\})/, 'a paused experiment has its series, at zero';

# Only a request that reads a variant exposes the visitor to it: a page
# that reads nothing of the experiments counts nothing.
sub checkout_exposures {
    my $body = http_get('/status?format=json')->body;
    my $n = 0;
    $n += $1 while $body =~ /"checkout:\w+":(\d+)/g;
    return $n;
}
my $exposed = checkout_exposures();
for my $id (@vip[0 .. 4]) {
    like http_get('/plain', Cookie => "segedge_id=$id")->value('X-Seg'), qr/vip/, 'a page that reads segments only';
}
is checkout_exposures(), $exposed, 'requests that read no variant count no exposure';
http_get('/', Cookie => "segedge_id=$vip[0]");
is checkout_exposures(), $exposed + 1, 'a request that reads its variant counts one exposure';

my %hero_seen;
for my $id (@vip[0 .. 9]) {
    my $r = http_get('/page.html', Cookie => "segedge_id=$id");
    my $variant = expected_variant(\%checkout, $id);
    $hero_seen{$variant eq 'B' ? 'B' : 'other'}++;
    my ($hero, $key) = $variant eq 'B' ? ('B hero', 'hero=vip@checkout:B') : ('vip hero', 'hero=vip');
    is $r->body, "<!--segedge:hero-->$hero<!--/segedge:hero-->\n", "hero block for $variant";
    is $r->value('X-Blocks-Key'), $key, 'the blocks key names the variant content';
}

ok $hero_seen{B} && $hero_seen{other}, 'both the variant and the segment content were served';

my $r = http_get('/page.html', Cookie => "segedge_id=$other");
like $r->body, qr/default hero/, 'untargeted visitor: the default block';

$r = http_get('/', Cookie => "segedge_id=$other");
is $r->value('X-Variant'), '[]', 'untargeted visitor: no variant';
is $r->value('X-Experiments'), '[' . expected_list($other, 0) . ']',
    'untargeted visitor: only experiments for everyone';
like $r->body, qr/^upstream-default /, 'untargeted visitor goes to the default upstream';

$r = http_get('/');
is $r->value('X-Experiments'), '[]', 'no visitor id (no cookie, none issued): no experiment';

my @log = grep { /\S/ } split /\n/, read_text(testdir() . '/exposure.log');
my ($line) = grep { /^\Q$vip[1]\E / } @log;
is $line, "$vip[1] " . expected_list($vip[1], 1), 'exposure line in the access log';

my $before = observe();

# a republish that adds an unrelated experiment, and the first visitor logs
# in (an alias to a known profile): bucketing stays on the anonymous id
($rc, $out) = import_snapshot('db', $segments, $profiles, 'gen-2',
    qq({"anonymous":"$logged_in","known":"customer-1"}\n), $blocks, $experiments
    . qq({"id":"zeta","status":"running","salt":"zeta-1","variants":[{"name":"control","weight":5000},{"name":"z","weight":5000}]}\n));
is $rc, 0, 'republished with another experiment and an alias' or diag $out;
ok wait_until(sub { http_get('/', Cookie => "segedge_id=$vip[0]")->value('X-Gen') eq '2' }),
    'generation 2 in use';
is_deeply observe(), $before, 'every variant unchanged after the republish and the login';
$r = http_get('/', Cookie => "segedge_id=$logged_in");
like $r->value('X-Experiments'), qr/,zeta:(control|z)\]$/, 'the new experiment is assigned too';

reload_nginx();
is_deeply observe(), $before, 'every variant unchanged after a reload';

done_testing;
