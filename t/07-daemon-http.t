# segsync run pulling from an HTTP index (nginx serves the feed files, with
# gzip) while nginx serves personalised responses: 100 delta batches and 5
# full snapshots, Ed25519-signed, with every response consistent; the index
# fetched with conditional GETs; a badly signed feed rejected; an
# unreachable source retried with backoff without holding up the others.

use SegEdge::Test;
use SegEdge::Feeds;
use Time::HiRes qw(sleep time);

my $dir = testdir();
my $served = "$dir/www/feeds";
mkdir "$dir/www";
mkdir $served;
for my $cmd (['genpkey', '-algorithm', 'ed25519', '-out', "$dir/feed.pem"],
             ['pkey', '-in', "$dir/feed.pem", '-pubout', '-out', "$dir/feed.pub"]) {
    my ($rc, $out) = run_cmd('openssl', @$cmd);
    die "openssl @$cmd: $out" if $rc;
}
my $port2 = port(2);
my $closed = port(3);
my $config = "$dir/segsync.json";
write_text($config, <<"EOF");
{"db": "$dir/db", "sources": [
  {"name": "down", "type": "http", "index": "http://127.0.0.1:$closed/index.txt",
   "retries": 2, "retry_delay_ms": 10, "poll_interval_ms": 5000},
  {"name": "cdn", "type": "http", "index": "http://127.0.0.1:$port2/feeds/index.txt",
   "poll_interval_ms": 50, "retries": 2, "retry_delay_ms": 20,
   "signature": {"ed25519_public_keys": ["$dir/feed.pub"]}}]}
EOF
my $log = "$dir/segsync.log";
my $segsync = segsync_path();

start_nginx(SegEdge::Feeds::SERVER . <<'EOF');
    log_format feeds '$request_uri $status "$sent_http_content_encoding"';
    server {
        listen 127.0.0.1:%%PORT2%%;
        root %%TESTDIR%%/www;
        access_log %%TESTDIR%%/feeds.log feeds;
        default_type application/octet-stream;
        gzip on;
        gzip_types *;
        gzip_min_length 1;
    }
EOF

sub generation { SegEdge::Feeds::generation() }

my $feeds = SegEdge::Feeds->new(key => "$dir/feed.pem");
my @listed;
sub publish {
    my ($k, %opts) = @_;
    my @files = $feeds->files($k, %opts);
    drop_file($served, @$_) for @files;
    push @listed, $files[-1][0];
    drop_file($served, 'index.txt', join '', "# feeds, oldest first\n", map { "$_\n" } @listed);
}

publish(0);
my $daemon = spawn($log, $segsync, 'run', '--config', $config);
ok $feeds->wait_generation(1), 'the first snapshot is pulled and served' or diag read_text($log);

$feeds->watch;
for my $k (1 .. SegEdge::Feeds::LAST) {
    publish($k);
    sleep 0.02;
}
ok $feeds->wait_generation(SegEdge::Feeds::LAST + 1, 30), 'every feed applied' or diag read_text($log);
$feeds->check_watch;
my $text = read_text($log);
is scalar(() = $text =~ /info applied source=cdn feed=\S+\.delta\.ndjson kind=delta/g), 100, '100 deltas applied';
is scalar(() = $text =~ /info applied source=cdn feed=\S+\.snapshot\.json kind=snapshot/g), 6, '6 snapshots applied';

my $access = read_text("$dir/feeds.log");
like $access, qr{^/feeds/index\.txt 304 }m, 'the index is fetched with conditional GETs';
like $access, qr{^/feeds/0050\.delta\.ndjson 200 "gzip"$}m, 'feeds travel gzip-compressed';
like $access, qr{^/feeds/0050\.delta\.ndjson\.sig 200 }m, '... with their signatures';
like $access, qr{^/feeds/s21/profiles\.ndjson 200 }m, 'a snapshot manifest brings its files';
is scalar(() = $access =~ m{^/feeds/0050\.delta\.ndjson 200}mg), 1, 'each feed is fetched once';

like $text, qr/error failed source=down error="GET http:\/\/127\.0\.0\.1:$closed\/index\.txt: .* \(after 3 tries\)"/,
     'an unreachable source is retried, then reported';

my $gen = generation();
my ($rc, $out) = run_cmd('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$dir/other.pem");
die "openssl genpkey: $out" if $rc;
publish(106, key => "$dir/other.pem");
publish(107);
ok $feeds->wait_generation($gen + 1), 'the feed after a badly signed one is applied';
like read_text($log), qr/error rejected source=cdn feed=0106\.delta\.ndjson error=".*bad signature/,
     'the badly signed feed was rejected';

($rc, $out) = run_cmd($segsync, 'status', '--config', $config);
like $out, qr{source cdn \(http http://127\.0\.0\.1:$port2/feeds/index\.txt\): last feed 0107\.delta\.ndjson, pending 0},
     'segsync status shows the http source';
like $out, qr{source down .*last error GET http}, '... and the failing one';

kill 'TERM', $daemon;
waitpid $daemon, 0;
is $?, 0, 'SIGTERM stops the daemon';

done_testing;
