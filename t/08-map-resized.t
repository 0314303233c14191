# The daemon grows the LMDB map in place while nginx workers keep reading:
# they get MDB_MAP_RESIZED on their next transaction, remap, and go on
# serving, including the visitors written past the old end of the map.

use SegEdge::Test;
use Time::HiRes qw(sleep time);

my $dir = testdir();
my $drop = "$dir/drop";
mkdir $drop;
my $config = "$dir/segsync.json";
write_text($config, <<"EOF");
{"db": "$dir/db", "initial_map_size_mb": 1,
 "sources": [{"name": "drop", "type": "directory", "path": "$drop", "poll_interval_ms": 100}]}
EOF
my $log = "$dir/segsync.log";
my $segsync = segsync_path();

mkdir "$drop/s0";
drop_file($drop, 's0/segments.ndjson', qq({"name":"a","priority":1}\n));
drop_file($drop, 's0/profiles.ndjson', qq({"id":"@{[visitor_id('v-0')]}","kind":"anonymous","segments":["a"]}\n));
drop_file($drop, '0000.snapshot.json',
          '{"segments":{"file":"s0/segments.ndjson"},"profiles":{"file":"s0/profiles.ndjson"}}');
my $daemon = spawn($log, $segsync, 'run', '--config', $config);
ok wait_until(sub { (read_text($log) // "") =~ /info applied .*kind=snapshot/ }, 10), 'snapshot with a 1 MiB map'
    or diag read_text($log);

start_nginx(<<'EOF', workers => 2);
    segedge_db %%TESTDIR%%/db;
    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            return 200 "$segedge_generation $segedge_segments\n";
        }
    }
EOF
# The port answers as soon as the master listens; wait for both workers.
ok wait_until(sub { worker_pids() == 2 }, 10), 'two workers running';
my @workers = sort(worker_pids());
my $r = http_get('/', Cookie => 'segedge_id=' . visitor_id('v-0'));
is $r->body, "1 a\n", 'a worker reads the small map';

my $batches = 4;
my $per_batch = 20000;
my (@bad, $requests);
for my $b (1 .. $batches) {
    my $batch = join '', map { qq({"op":"enter","id":"@{[visitor_id("b$b-$_")]}","kind":"anonymous","segment":"a"}\n) } 1 .. $per_batch;
    drop_file($drop, sprintf('%04d.delta.ndjson', $b), $batch);
    my $want = $b + 1;
    my $seen = '';
    # Ask all the while, so workers hold and renew transactions as it grows.
    wait_until(sub {
        my $r = http_get('/', Cookie => 'segedge_id=' . visitor_id("b$b-$per_batch"));
        $requests++;
        push @bad, $r->status . ' ' . $r->body if $r->status ne '200';
        $seen = $r->body;
        $seen eq "$want a\n";
    }, 20, 0.01);
    is $seen, "$want a\n", "batch $b: its last visitor is served";
}
is scalar(@bad), 0, "all $requests requests answered 200" or diag join "\n", @bad[0 .. 9];
like read_text($log), qr/info applied .* map_mb=\d+/, 'the daemon logged growing the map';
my ($data) = glob "$dir/db/snapshots/snap-*/data.mdb";
cmp_ok -s $data, '>', 1 << 20, 'the data now reaches past the first 1 MiB map';
is_deeply [sort(worker_pids())], \@workers, 'the same workers kept serving (no crash, no reload)';
for my $b (1 .. $batches) {
    is http_get('/', Cookie => 'segedge_id=' . visitor_id("b$b-1"))->body, ($batches + 1) . " a\n", "batch $b: first visitor too";
}
unlike error_log_text(), qr/\[(?:error|warn)\].*segedge: /, 'no fail-open errors in error.log';

kill 'TERM', $daemon;
waitpid $daemon, 0;
done_testing;
