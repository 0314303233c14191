# A full disk and a full map while segsync writes, with nginx serving: the
# database lives on a small tmpfs mounted here (root only; skipped with the
# reason otherwise). A full import that does not fit, a delta batch over
# max_map_size_mb and a batch whose commit does not fit on the disk each
# fail with an exit status or a log line naming the cause; the live
# snapshot, and what nginx serves from it, stay exactly as they were; no
# staging directory is left; the daemon logs a failing status file once,
# not at every poll; and once there is room again the pending feed is
# applied. (tests/test_delta.cpp covers the same in-process, with
# RLIMIT_FSIZE and a 1 MiB map.)

use SegEdge::Test;

skip_all('needs root to mount a tmpfs') if $> != 0;
my $dir = testdir();
my $disk = "$dir/disk";
mkdir $disk;
my ($rc, $out) = run_cmd('mount', '-t', 'tmpfs', '-o', 'size=3m,mode=0755', 'segedge-test', $disk);
skip_all("cannot mount a tmpfs on $disk: $out") if $rc;
my ($mounted, $daemon) = (1);
END {    # also when the test dies: nothing may keep the tmpfs busy
    if ($mounted) {
        kill 'KILL', $daemon if $daemon;
        stop_nginx();
        run_cmd('umount', $disk) == 0 or run_cmd('umount', '-l', $disk);
    }
}

my $root = "$disk/db";
my $segsync = segsync_path();
my $SEG = qq({"name":"a","priority":20}\n{"name":"b","priority":10}\n);
sub profiles {
    my ($n, $seg, $label) = @_;
    return join '', map { qq({"id":"@{[visitor_id("$label-$_")]}","kind":"anonymous","segments":["$seg"]}\n) } 1 .. $n;
}
sub enters {
    my ($n, $seg, $label) = @_;
    return join '', map { qq({"op":"enter","id":"@{[visitor_id("$label-$_")]}","kind":"anonymous","segment":"$seg"}\n) } 1 .. $n;
}

($rc, $out) = import_snapshot($root, $SEG, profiles(200, 'a', 'v'));
is $rc, 0, 'a small snapshot fits' or diag $out;

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/disk/db;
    segedge_db_check_interval 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            return 200 "$segedge_generation $segedge_segments\n";
        }
    }
EOF
sub served { http_get('/', Cookie => 'segedge_id=' . visitor_id($_[0]))->body }
is served('v-1'), "1 a\n", 'nginx serves generation 1';

# What must not change: current's target, the data, and what nginx serves.
sub live_state {
    my ($rc, $dump) = segsync('dump', '--db', $root, 'profiles');
    return join "\n", readlink("$root/current") // 'none', $rc, length $dump, $dump =~ tr/\n//, served('v-1');
}

sub unchanged {
    my ($what, $before) = @_;
    is live_state(), $before, "$what: current, the data and what nginx serves are unchanged";
    my ($rc, $out) = segsync('verify', '--db', $root);
    is $rc, 0, "$what: segsync verify passes" or diag $out;
    is_deeply [glob "$root/snapshots/.staging-*"], [], "$what: no staging directory left";
}

sub free_bytes {
    my ($rc, $df) = run_cmd('df', '-B1', '--output=avail', $disk);
    return $df =~ /(\d+)\s*$/ ? $1 : 0;
}

# --- a full import that does not fit on the disk
{
    my $before = live_state();
    ($rc, $out) = import_snapshot($root, $SEG, profiles(150000, 'b', 'big'));
    is $rc, 1, 'an import bigger than the disk fails (exit status 1)';
    like $out, qr/the disk is full: \d+ KiB free on the file system of \Q$root\E/, 'the import says the disk is full'
        or diag $out;
    unchanged('disk full during an import', $before);
}

# --- the daemon, on a snapshot it built with a 1 MiB map
my $drop = "$dir/drop";
mkdir $drop;
my $config = "$dir/segsync.json";
my $log = "$dir/segsync.log";
sub daemon_config {
    my ($limits) = @_;
    write_text($config, qq({"db": "$root", $limits, "sources": [{"name": "drop", "type": "directory", )
                      . qq("path": "$drop", "poll_interval_ms": 50}]}\n));
}
daemon_config('"initial_map_size_mb": 1, "max_map_size_mb": 1');
$daemon = spawn($log, $segsync, 'run', '--config', $config);
sub log_has { my ($re) = @_; wait_until(sub { (read_text($log) // '') =~ $re }, 20) }

mkdir "$drop/s1";
drop_file($drop, 's1/segments.ndjson', $SEG);
drop_file($drop, 's1/profiles.ndjson', profiles(200, 'a', 'v'));
drop_file($drop, '0001.snapshot.json', '{"segments":{"file":"s1/segments.ndjson"},"profiles":{"file":"s1/profiles.ndjson"}}');
ok wait_until(sub { served('v-1') eq "2 a\n" }, 20), 'the daemon published generation 2' or diag read_text($log);

# --- the map at max_map_size_mb during a batch
{
    my $before = live_state();
    drop_file($drop, '0002.delta.ndjson', enters(20000, 'b', 'm'));
    ok log_has(qr/error failed source=drop feed=0002\.delta\.ndjson error="the database map is full at 1 MiB and may not grow further \(max_map_size_mb\); the live data is unchanged"/),
       'a batch over max_map_size_mb: the daemon logs the cause' or diag read_text($log);
    unchanged('map full during a batch', $before);
    ($rc, $out) = segsync('status', '--config', $config);
    like $out, qr/map is full/, 'segsync status shows it';
    ok -e "$drop/0002.delta.ndjson", 'the batch stays pending';

    daemon_config('"initial_map_size_mb": 1');
    kill 'HUP', $daemon;
    ok wait_until(sub { served('m-20000') eq "3 b\n" }, 20), 'without the limit (SIGHUP) the pending batch is applied'
        or diag read_text($log);
    is served('v-1'), "3 a\n", '... keeping the rest';
}

# --- a batch whose commit does not fit on the disk
{
    my $filler = "$disk/filler";
    write_text($filler, "\0" x (free_bytes() - 150_000));    # far less room than the batch needs
    my $mark = length(read_text($log) // '');
    my $before = live_state();
    drop_file($drop, '0003.delta.ndjson', enters(20000, 'b', 'f'));
    ok log_has(qr/error failed source=drop feed=0003\.delta\.ndjson error="[^"]*\(the disk is full: \d+ KiB free on the file system of [^)]*\); the live data is unchanged"/),
       'a batch that does not fit: the daemon says the disk is full' or diag substr(read_text($log), $mark);
    ok log_has(qr/(error failed source=drop feed=0003.*){3}/s), 'it is retried at each poll';
    unchanged('disk full during a batch', $before);
    my $failures = () = substr(read_text($log), $mark) =~ /status_failed/g;
    cmp_ok $failures, '<=', 1, "a status file that cannot be written is logged once, not at every poll ($failures)";

    unlink $filler;
    ok wait_until(sub { served('f-20000') eq "4 b\n" }, 20), 'room again: the pending batch is applied at the next poll'
        or diag read_text($log);
    is served('v-1'), "4 a\n", '... keeping the rest';
}

kill 'TERM', $daemon;
waitpid $daemon, 0;
stop_nginx();
($rc, $out) = run_cmd('umount', $disk);
is $rc, 0, 'the tmpfs unmounts: nothing kept a file open' or diag $out;
$mounted = 0 unless $rc;

done_testing;
