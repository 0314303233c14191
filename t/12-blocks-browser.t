# The demo site in a real browser: Debian's headless Chromium, driven through
# chromedriver's WebDriver HTTP API, loads the demo page as a first-time
# visitor, a returning vip, a logged-in customer (signed cookie) and a new
# visitor, and reads the blocks from the rendered DOM. Screenshots go to
# outdir().

use SegEdge::Test;
use FindBin qw($Bin);
use HTTP::Tiny;
use JSON::PP qw(encode_json decode_json);
use MIME::Base64 qw(decode_base64);
use Time::HiRes qw(sleep);

my ($CHROMIUM) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
my ($DRIVER) = grep { -x } qw(/usr/bin/chromedriver /usr/lib/chromium/chromedriver);
skip_all('chromium or chromedriver not found (apt-get install chromium chromium-driver)')
    unless $CHROMIUM && $DRIVER;

my $demo = "$Bin/../conf/demo";
my ($rc, $out) = import_snapshot('db', read_text("$demo/segments.ndjson"),
                                 read_text("$demo/profiles.ndjson"), 'demo',
                                 read_text("$demo/aliases.ndjson"), read_text("$demo/blocks.ndjson"));
is $rc, 0, 'demo data imported' or diag $out;

my $d = testdir();
write_text("$d/keys", "demo base64:" . ('A' x 43) . "=\n");
chmod 0600, "$d/keys";
(my $status, my $known_cookie) = segsync('sign', '--keys', "$d/keys", '--id', 'cust-10002');
is $status, 0, 'signed cookie for cust-10002 (lapsed)' or diag $known_cookie;
chomp $known_cookie;

# conf/nginx.conf's demo server, on a test port
start_nginx(<<"EOF");
    include /etc/nginx/mime.types;
    segedge_db %%TESTDIR%%/db;
    segedge_keys %%TESTDIR%%/keys;

    server {
        listen 127.0.0.1:%%PORT%%;
        root $demo/html;
        segedge on;
        segedge_cookie segedge_id;
        segedge_cookie_issue on;
        segedge_cookie_flags HttpOnly SameSite=Lax;
        segedge_blocks on;
        add_header X-Segedge-Segments \$segedge_segments always;
    }
EOF

# --- chromedriver, in a process group of its own so that it and the
# browser it starts are stopped together
my $driver_port = port(2);
my $driver_pid = fork // die "fork: $!";
if (!$driver_pid) {
    setpgrp(0, 0);
    open STDOUT, '>', "$d/chromedriver.log";
    open STDERR, '>&', \*STDOUT;
    exec $DRIVER, "--port=$driver_port" or POSIX::_exit(127);
}
END {
    local $?;    # keep the test's exit status
    if ($driver_pid) { kill 'TERM', -$driver_pid; waitpid $driver_pid, 0 }
}

my $http = HTTP::Tiny->new(timeout => 60);
my $base = "http://127.0.0.1:$driver_port";

sub webdriver {
    my ($method, $path, $body) = @_;
    my $res = $http->request($method, "$base$path", {
        headers => { 'Content-Type' => 'application/json' },
        defined $body ? (content => encode_json($body)) : () });
    my $data = eval { decode_json($res->{content}) } // {};
    die "WebDriver $method $path: $res->{status} "
        . ($data->{value}{message} // $res->{content}) . "\n" unless $res->{success};
    return $data->{value};
}

ok wait_until(sub { my $r = $http->get("$base/status"); $r->{success} }, 20), 'chromedriver answers'
    or BAIL_OUT('chromedriver did not start: ' . (read_text("$d/chromedriver.log") // ''));

my $session = webdriver(POST => '/session', { capabilities => { alwaysMatch => {
    browserName => 'chrome',
    'goog:chromeOptions' => {
        binary => $CHROMIUM,
        args => ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
                 '--disable-dev-shm-usage', "--user-data-dir=$d/chromium-profile",
                 '--window-size=1024,900'],
    },
} } })->{sessionId};
ok $session, 'Chromium session';
webdriver(POST => "/session/$session/timeouts", { pageLoad => 30000, script => 10000 });

my $site = 'http://127.0.0.1:' . port() . '/';
my $outdir = outdir();

# Loads the page with these cookies (name => value; none: a first visit,
# which gets an id issued) and returns what the rendered page shows.
# Cookies can only be set on a page of the site, so the first visit must be
# the one without.
my $visited;
sub visit {
    my ($shot, %cookies) = @_;
    if ($visited++) {
        webdriver(DELETE => "/session/$session/cookie");
        webdriver(POST => "/session/$session/cookie",
                  { cookie => { name => $_, value => $cookies{$_}, path => '/' } }) for sort keys %cookies;
    }
    webdriver(POST => "/session/$session/url", { url => $site });
    my $page = webdriver(POST => "/session/$session/execute/sync", { args => [], script => <<'JS' });
        const text = (selector) => {
            const node = document.querySelector(selector);
            return node ? node.innerText.replace(/\s+/g, ' ').trim() : null;
        };
        return { hero: text('.hero'), offer: text('.offer'), newsletter: text('.newsletter'),
                 title: document.title };
JS
    my $png = webdriver(GET => "/session/$session/screenshot");
    write_text("$outdir/$shot.png", decode_base64($png));
    return $page;
}

my $DEFAULT_HERO = 'Spring collection is here Fresh arrivals for everyone.';
my $DEFAULT_OFFER = "Free shipping on orders over 50 \x{20ac}.";
{
    my $page = visit('anonymous-first-visit');
    is $page->{title}, 'segedge demo shop', 'first visit: the demo page';
    is $page->{hero}, $DEFAULT_HERO, 'first visit: default hero';
    is $page->{offer}, $DEFAULT_OFFER, 'first visit: default offer';
    like $page->{newsletter} // '', qr/Get our weekly newsletter/, 'first visit: newsletter sign-up shown';
    my $issued = webdriver(GET => "/session/$session/cookie/segedge_id");
    like $issued->{value}, qr/^[A-Za-z0-9_-]{21}[AQgw]$/, 'first visit: a visitor id was issued';
}
{
    my $page = visit('vip-visitor', segedge_id => 'ZGVtby12aXAtdmlzaXRvcg');
    is $page->{hero}, 'Welcome back, valued customer VIP early access: the summer sale opens for you today.',
       'returning vip visitor: the vip hero';
    is $page->{offer}, 'Free express shipping on every order, as always.', 'returning vip visitor: the vip offer';
    is $page->{newsletter}, undef, 'returning vip visitor (a subscriber): no sign-up block';
}
{
    my $page = visit('known-customer', segedge_known => $known_cookie);
    is $page->{hero}, 'We have missed you Come back for 15% off your next order with code MISSEDYOU.',
       'logged-in customer cust-10002 (lapsed): the win-back hero';
    is $page->{offer}, $DEFAULT_OFFER, 'logged-in lapsed customer: default offer';
}
{
    my $page = visit('new-visitor', segedge_id => 'ZGVtby1uZXctdmlzaXRvcg');
    is $page->{hero}, 'Welcome to the demo shop Take 10% off your first order with code HELLO10.',
       'new visitor: the welcome hero';
    is $page->{offer}, 'First order? Shipping is on us.', 'new visitor: the first-order offer';
    like $page->{newsletter} // '', qr/Get our weekly newsletter/, 'new visitor: sign-up shown';
}
{
    my $page = visit('anonymous-again', segedge_id => visitor_id('someone-new'));
    is $page->{hero}, $DEFAULT_HERO, 'unknown visitor: default hero (nothing stale from the browser cache)';
}

for my $shot (qw(anonymous-first-visit vip-visitor known-customer new-visitor)) {
    ok -s "$outdir/$shot.png" > 1000, "screenshot $shot.png saved";
}
webdriver(DELETE => "/session/$session");

done_testing;
