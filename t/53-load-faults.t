# Faults under load: while wrk drives two nginx workers for a few seconds,
# the sync daemon publishes full snapshots and applies delta batches from a
# drop directory, is killed with SIGKILL and restarted at random moments,
# and nginx is reloaded (`nginx -s reload`) several times. wrk must report
# no non-2xx response and no socket error, and error.log no
# MDB_READERS_FULL, no fail-open and no crash.
#
# SEGEDGE_LOAD_SECONDS sets each of the two wrk runs' duration (default 4;
# SEGEDGE_FULL=1: 20).

use SegEdge::Test;
use Time::HiRes qw(sleep time);

my $wrk = (grep { -x } map { "$_/wrk" } split /:/, $ENV{PATH})[0];
skip_all('wrk is not installed (conf/deps.sh installs it)') unless $wrk;

my $dir = testdir();
my $drop = "$dir/drop";
mkdir $drop;
my $config = "$dir/segsync.json";
write_text($config, <<"EOF");
{"db": "$dir/db", "sources": [{"name": "drop", "type": "directory", "path": "$drop", "poll_interval_ms": 20}]}
EOF
my $log = "$dir/segsync.log";
my $segsync = segsync_path();
my $seconds = $ENV{SEGEDGE_LOAD_SECONDS} // ($ENV{SEGEDGE_FULL} ? 20 : 4);    # per phase

my @ids = map { visitor_id("l-$_") } 1 .. 2000;
my $SEG = join '', map { qq({"name":"s$_","priority":$_}\n) } 1 .. 8;

# Feed k: a full snapshot when k is a multiple of 3, else a batch moving
# 2000 visitors to segment s(k mod 8 + 1).
my $serial = 0;
sub drop_feed {
    my $k = ++$serial;
    my $seg = 's' . ($k % 8 + 1);
    if ($k % 3 == 0) {
        mkdir "$drop/s$k";
        drop_file($drop, "s$k/segments.ndjson", $SEG);
        drop_file($drop, "s$k/profiles.ndjson",
                  join '', map { qq({"id":"$_","kind":"anonymous","segments":["$seg"]}\n) } @ids);
        drop_file($drop, sprintf('%05d.snapshot.json', $k),
                  qq({"segments":{"file":"s$k/segments.ndjson"},"profiles":{"file":"s$k/profiles.ndjson"}}));
    } else {
        drop_file($drop, sprintf('%05d.delta.ndjson', $k),
                  join '', map { qq({"op":"upsert","id":"$_","kind":"anonymous","segments":["$seg"]}\n) } @ids);
    }
}

my $daemon = spawn($log, $segsync, 'run', '--config', $config);
$serial = 2;    # feed 3: the first full snapshot
drop_feed();
ok wait_until(sub { (read_text($log) // '') =~ /info applied .*kind=snapshot/ }, 20), 'first snapshot applied'
    or diag read_text($log);

my $http = <<'EOF';
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            add_header X-Seg $segedge_segments;
            return 200 "$segedge_generation $segedge_segments\n";
        }
    }
EOF
start_nginx($http, workers => 2);
like http_get('/', Cookie => "segedge_id=$ids[0]")->body, qr/^\d+ s\d$/, 'nginx serves the snapshot';

# Each request asks as another visitor; with $close, on a new connection.
sub wrk_script {
    my ($close) = @_;
    my $path = "$dir/visitors-$close.lua";
    my $headers = $close ? '["Connection"] = "close", ' : '';
    write_text($path, 'local ids = {' . join(',', map { qq("$_") } @ids[0 .. 199]) . "}\n" . <<"LUA");
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", "/", { ${headers}["Cookie"] = "segedge_id=" .. ids[n % #ids + 1] })
end
LUA
    return $path;
}

# Runs wrk for $seconds while feeds are dropped, the daemon is killed and
# restarted, and (when asked) nginx is reloaded; returns wrk's report.
my ($kills, $reloads, $requests) = (0, 0, 0);
sub load_phase {
    my ($what, %opts) = @_;
    my $out = "$dir/wrk-$what.out";
    my $load = spawn($out, $wrk, '-t', '2', '-c', '16', '-d', "${seconds}s", '-s', wrk_script($opts{close} ? 1 : 0),
                     'http://127.0.0.1:' . port() . '/');
    my $deadline = time + $seconds - 0.5;
    my ($next_kill, $next_reload) = (time + 0.3 + rand 0.7, time + 0.8);
    while (time < $deadline) {
        drop_feed();
        if (time > $next_kill) {
            kill 'KILL', $daemon;
            waitpid $daemon, 0;
            $kills++;
            $daemon = spawn($log, $segsync, 'run', '--config', $config);
            $next_kill = time + 0.2 + rand 0.8;
        }
        if ($opts{reload} && time > $next_reload) {
            reload_nginx();
            $reloads++;
            $next_reload = time + 0.7 + rand 0.6;
        }
        sleep 0.05 + rand 0.1;
    }
    waitpid $load, 0;
    my $report = read_text($out) // '';
    note "$what:\n$report";
    my ($n) = $report =~ /(\d+) requests in/;
    cmp_ok $n // 0, '>', 100, "$what: wrk sent requests";
    unlike $report, qr/Non-2xx or 3xx responses/, "$what: no response other than 2xx";
    unlike $report, qr/Socket errors/, "$what: no socket error (connect, read, write or timeout)";
    $requests += $n // 0;
}

# Keep-alive connections, no reloads: publishes and kills only.
load_phase('keep-alive');
# A reload closes every idle keep-alive connection of the old workers, which
# wrk counts as a read error whatever the module does: with reloads, each
# request gets its own connection.
load_phase('reloads', reload => 1, close => 1);
cmp_ok $kills, '>=', 4, "the daemon was killed $kills times";
cmp_ok $reloads, '>=', 2, "nginx was reloaded $reloads times";

# Everything dropped gets applied once the daemon runs undisturbed.
my $last = $serial;
ok wait_until(sub { my @pending = (glob("$drop/*.ndjson"), glob("$drop/*.json")); !@pending }, 60),
   "all $last feeds taken"
    or diag read_text($log);
kill 'TERM', $daemon;
waitpid $daemon, 0;
my $text = read_text($log);
my $applied = () = $text =~ /info applied /g;
note "$applied feeds applied, $kills daemon kills, $reloads reloads, $requests requests";
unlike $text, qr/ error (?:rejected|failed) /, 'segsync rejected and failed nothing';
my ($rc, $out) = segsync('verify', '--db', "$dir/db");
is $rc, 0, 'the database verifies' or diag $out;
my $seg = 's' . ($last % 8 + 1);
is http_get('/', Cookie => "segedge_id=$ids[-1]")->value('X-Seg'), $seg, "nginx serves the last feed's segment";

my $errors = error_log_text();
unlike $errors, qr/MDB_READERS_FULL|maxreaders/, 'no MDB_READERS_FULL';
my @errors = grep { /\[(?:error|crit)\]/ } split /\n/, $errors;
is scalar(@errors), 0, 'no error in error.log (no fail-open)' or diag join "\n", @errors[0 .. ($#errors < 4 ? $#errors : 4)];

done_testing;
