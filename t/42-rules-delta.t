# Rule segments on profile attributes follow delta batches that segsync
# applies while nginx serves: a changed attribute makes its rule segment
# appear or disappear on the next request, an attribute first introduced by
# a delta is read as soon as it is committed, and no reload happens.

use SegEdge::Test;
use SegEdge::Feeds;

my $dir = testdir();
my $drop = "$dir/drop";
mkdir $drop;
my $config = "$dir/segsync.json";
write_text($config, <<"EOF");
{"db": "$dir/db",
 "sources": [{"name": "drop", "type": "directory", "path": "$drop", "poll_interval_ms": 50}]}
EOF
my $log = "$dir/segsync.log";
my $v1 = visitor_id('v-1');

# "score" is in no profile yet: the snapshot's attribute catalogue lacks it.
drop_file($drop, 's0/segments.ndjson', <<'SEG');
{"name":"vip","priority":100}
{"name":"gold","priority":50,"rule":{"input":"attribute.tier","op":"eq","value":"gold"}}
{"name":"hot","priority":40,"rule":{"input":"attribute.score","op":"gte","value":80}}
SEG
drop_file($drop, 's0/profiles.ndjson', qq({"id":"$v1","kind":"anonymous","segments":["vip"],"attributes":{"tier":"silver"}}\n));
drop_file($drop, '0000.snapshot.json',
          '{"segments":{"file":"s0/segments.ndjson"},"profiles":{"file":"s0/profiles.ndjson"}}');
my $daemon = spawn($log, segsync_path(), 'run', '--config', $config);
ok wait_until(sub { (read_text($log) // '') =~ /info applied .*kind=snapshot/ }, 20), 'snapshot applied'
    or diag read_text($log);

start_nginx(SegEdge::Feeds::SERVER);
my @workers = worker_pids();

sub seen {
    my $r = http_get('/', Cookie => "segedge_id=$v1");
    return $r->value('X-Gen') . ' ' . $r->value('X-Seg');
}
is seen(), '1 vip', 'silver tier, no score: only the precomputed segment';

# Each batch: the line the visitor must get at its generation.
my @batches = (
    ['{"op":"upsert","id":"%s","kind":"anonymous","attributes":{"tier":"gold"}}', '2 vip,gold',
     'tier changed to gold by a delta: the rule segment appears'],
    ['{"op":"upsert","id":"%s","kind":"anonymous","attributes":{"score":95}}', '3 vip,gold,hot',
     'an attribute new to the catalogue, added by a delta, is read'],
    ['{"op":"upsert","id":"%s","kind":"anonymous","attributes":{"tier":"silver","score":12}}', '4 vip',
     'both attributes changed back: both rule segments disappear'],
    ['{"op":"upsert","id":"%s","kind":"anonymous","attributes":{"score":80,"tier":null}}', '5 vip,hot',
     'an attribute removed by a delta is missing: its rule is false'],
    ['{"op":"delete","id":"%s","kind":"anonymous"}', '6 ',
     'profile deleted: no segments at all'],
);
my $n = 0;
for my $batch (@batches) {
    my ($line, $want, $what) = @$batch;
    drop_file($drop, sprintf('%04d.delta.ndjson', ++$n), sprintf($line, $v1) . "\n");
    my $got = '';
    wait_until(sub { ($got = seen()) =~ /^(\d+) / && $1 > $n }, 20, 0.02);
    is $got, $want, $what or diag read_text($log);
}

is_deeply [sort(worker_pids())], [sort @workers], 'the same worker served every generation (no reload)';
unlike error_log_text(), qr/\[(?:error|warn)\].*segedge: /, 'no fail-open errors in error.log';

kill 'TERM', $daemon;
waitpid $daemon, 0;
done_testing;
