# segsync run with a drop directory while nginx serves: 100 delta batches
# and 5 full snapshots applied with every response consistent; a badly
# signed feed rejected; one writer only; SIGHUP and SIGTERM; kill -9 in the
# middle of a batch leaves a readable database at the previous or the next
# generation, and the batch is applied exactly once after a restart.

use SegEdge::Test;
use SegEdge::Feeds;
use SegEdge::Prometheus;
use Time::HiRes qw(sleep time);

my $dir = testdir();
my $drop = "$dir/drop";
mkdir $drop;
my $key = "$dir/feed.key";
write_text($key, ('5a' x 32) . "\n");
my $config = "$dir/segsync.json";
write_text($config, <<"EOF");
{"db": "$dir/db", "sources": [{"name": "drop", "type": "directory", "path": "$drop",
  "poll_interval_ms": 200, "signature": {"hmac_sha256_keys": ["$key"]}}]}
EOF
my $log = "$dir/segsync.log";
my $segsync = segsync_path();

start_nginx(SegEdge::Feeds::SERVER);

sub generation { SegEdge::Feeds::generation() }

my $feeds = SegEdge::Feeds->new(key => $key);
my $daemon = spawn($log, $segsync, 'run', '--config', $config);
drop_file($drop, @$_) for $feeds->files(0);
ok $feeds->wait_generation(1), 'the first snapshot is served' or diag read_text($log);

# 100 deltas and 5 snapshots while a client keeps asking.
$feeds->watch;
for my $k (1 .. SegEdge::Feeds::LAST) {
    drop_file($drop, @$_) for $feeds->files($k);
    sleep 0.01;
}
ok $feeds->wait_generation(SegEdge::Feeds::LAST + 1, 30), 'every feed applied' or diag read_text($log);
$feeds->check_watch;
my $text = read_text($log);
is scalar(() = $text =~ /info applied source=drop feed=\S+\.delta\.ndjson kind=delta/g), 100, '100 deltas applied';
is scalar(() = $text =~ /info applied source=drop feed=\S+\.snapshot\.json kind=snapshot/g), 6, '6 snapshots applied';
unlike $text, qr/ error /, 'no errors logged';
ok !-e "$drop/0050.delta.ndjson" && -e "$drop/done/0050.delta.ndjson", 'applied feeds moved to done/';

# A feed signed with another key is rejected; nothing changes.
my $gen = generation();
write_text("$dir/other.key", ('77' x 32));
drop_file($drop, @$_) for $feeds->files(106, key => "$dir/other.key");
ok wait_until(sub { -e "$drop/failed/0106.delta.ndjson.error" }, 10), 'badly signed feed moved to failed/';
like read_text("$drop/failed/0106.delta.ndjson.error"), qr/bad signature/, '... saying why';
like read_text($log), qr/error rejected source=drop feed=0106\.delta\.ndjson error=".*bad signature/, '... and logged';
is generation(), $gen, '... and the generation did not move';

# One writer at a time.
my ($rc, $out) = run_cmd($segsync, 'run', '--config', $config);
is $rc, 1, 'a second daemon refuses to start';
like $out, qr/another segsync is writing to \Q$dir\E\/db/, '... saying why';

($rc, $out) = run_cmd($segsync, 'status', '--config', $config);
is $rc, 0, 'segsync status';
like $out, qr/generation:\s+$gen\b/, '... shows the generation';
like $out, qr/daemon:\s+running/, '... and that the daemon runs';
like $out, qr/source drop \(directory \Q$drop\E\): last feed 0106\.delta\.ndjson, pending 0, applied 106, rejected 1, failed 0, lag \d+s/,
     '... and the source';
like $out, qr/snapshot:\s+[1-9]\d* bytes/, '... and the snapshot size';
my $metrics = eval { SegEdge::Prometheus::parse_exposition(read_text("$dir/db/.segsync-metrics.prom")) };
ok $metrics, 'the metrics file parses strictly' or diag $@;
is $metrics->{samples}{'segsync_feeds_applied_total{source="drop"}'}, 106, '... counts applied feeds';
is $metrics->{samples}{'segsync_feeds_rejected_total{source="drop"}'}, 1, '... and rejected ones';
is $metrics->{samples}{segsync_generation}, $gen, '... and has the generation';
ok $metrics->{samples}{segsync_snapshot_bytes} > 0, '... and the snapshot size';
($rc, $out) = run_cmd($segsync, 'verify', '--config', $config);
is $rc, 0, 'segsync verify' or diag $out;

kill 'HUP', $daemon;
ok wait_until(sub { read_text($log) =~ /info reloaded config=/ }, 10), 'SIGHUP rereads the config';

kill 'TERM', $daemon;
waitpid $daemon, 0;
is $?, 0, 'SIGTERM stops the daemon cleanly';
like read_text($log), qr/info stopped generation=$gen\n\z/, '... logging it last';

# kill -9 in the middle of big batches.
my $iterations = $ENV{SEGEDGE_KILL_ITERATIONS} // 3;
my $batch_lines = 60000;
my $in_flight = 0;
for my $i (1 .. $iterations) {
    my $before = generation();
    my $name = sprintf '%04d.delta.ndjson', 200 + $i;
    my $batch = join '', map { qq({"op":"upsert","id":"@{[visitor_id("k$i-$_")]}","kind":"anonymous","segments":["a"]}\n) }
                         1 .. $batch_lines;
    drop_file($drop, @$_) for ["$name.sig", $feeds->sign($name, $batch)], [$name, $batch];
    $daemon = spawn($log, $segsync, 'run', '--config', $config);
    sleep 0.1 + rand(0.4);
    kill 'KILL', $daemon;
    waitpid $daemon, 0;
    my ($rc, $out) = run_cmd($segsync, 'verify', '--config', $config);
    is $rc, 0, "kill -9 #$i: the database verifies" or diag $out;
    my $after = generation();
    ok $after == $before || $after == $before + 1, "kill -9 #$i: generation $after is $before or the next";
    $in_flight++ if $after == $before;
    $daemon = spawn($log, $segsync, 'run', '--config', $config);
    ok $feeds->wait_generation($before + 1), "kill -9 #$i: after a restart the batch is applied";
    kill 'TERM', $daemon;
    waitpid $daemon, 0;
    is generation(), $before + 1, "kill -9 #$i: ... exactly once";
    my $r = http_get('/', Cookie => 'segedge_id=' . visitor_id("k$i-$batch_lines"));
    is $r->value('X-Seg'), 'a', "kill -9 #$i: ... all of it";
}
note "$in_flight of $iterations kills landed before the batch committed";

done_testing;
