# kill -9 of segsync at random points of full imports (`segsync import`) and
# of delta batches (`segsync run`), while nginx serves and a client keeps
# asking. Every write moves all the visitors together: generation g has all
# of them in segment "a" when g is odd and in "b" when g is even, so a
# half-applied batch or snapshot would show as a visitor whose segment does
# not match the generation. After each kill: `segsync verify` passes, one
# read of the whole database (`segsync dump`) has every visitor in the
# generation's segment, the generation is the previous one or the next, a
# request through nginx agrees, and the next run finishes the work exactly
# once. t/06-daemon-dir.t kills the daemon in a batch too; this covers both
# writers, at calibrated random points, many times.
#
# SEGEDGE_KILL_ROUNDS=N sets the number of kills (default 12; SEGEDGE_FULL=1: 60).

use SegEdge::Test;
use POSIX ();
use Time::HiRes qw(sleep time);

my $dir = testdir();
my $root = "$dir/db";
my $drop = "$dir/drop";
mkdir $drop;
my $segsync = segsync_path();
my $log = "$dir/segsync.log";
my $rounds = $ENV{SEGEDGE_KILL_ROUNDS} // ($ENV{SEGEDGE_FULL} ? 60 : 10);
my $count = 10000;
my @ids = map { visitor_id("k-$_") } 1 .. $count;

sub segment_of { $_[0] % 2 ? 'a' : 'b' }

# Full-import inputs for both states, written once.
write_text("$dir/segments.ndjson", qq({"name":"a","priority":20}\n{"name":"b","priority":10}\n));
for my $seg ('a', 'b') {
    write_text("$dir/profiles-$seg.ndjson",
               join '', map { qq({"id":"$_","kind":"anonymous","segments":["$seg"]}\n) } @ids);
}
write_text("$dir/segsync.json", <<"EOF");
{"db": "$root", "sources": [{"name": "drop", "type": "directory", "path": "$drop", "poll_interval_ms": 50}]}
EOF

# The generation the next full import will get: one past the newest of
# current and every snapshot directory, as segsync counts.
sub live_generation {
    my ($rc, $out) = segsync('verify', '--db', $root);
    return $out =~ /ok: generation (\d+)/ ? $1 : undef;
}

sub next_import_generation {
    my $newest = live_generation() // 0;
    for (glob "$root/snapshots/snap-*") {
        $newest = $1 if m{/snap-0*(\d+)-[^/]*$} && $1 > $newest;
    }
    return $newest + 1;
}

sub import_cmd {
    my $seg = segment_of(next_import_generation());
    return ($segsync, 'import', '--db', $root, '--segments', "$dir/segments.ndjson",
            '--profiles', "$dir/profiles-$seg.ndjson", '--source', 'kill-test');
}

my $batch_serial = 0;
# Drops the delta that moves everyone to the next generation's segment.
sub drop_delta {
    my $seg = segment_of(live_generation() + 1);
    my $name = sprintf '%05d.delta.ndjson', ++$batch_serial;
    drop_file($drop, $name, join '', map { qq({"op":"upsert","id":"$_","kind":"anonymous","segments":["$seg"]}\n) } @ids);
    return $name;
}

# One read transaction over the whole database: every visitor in one
# segment, the one its generation says.
sub check_consistent {
    my ($what) = @_;
    my ($rc, $out) = segsync('verify', '--db', $root);
    is $rc, 0, "$what: segsync verify passes" or diag $out;
    my ($gen) = $out =~ /ok: generation (\d+)/;
    ($rc, my $dump) = segsync('dump', '--db', $root, 'profiles');
    my %by_segment;
    $by_segment{$1}++ while $dump =~ /"segments":\["(\w+)"\]/g;
    my $lines = () = $dump =~ /\n/g;
    is_deeply \%by_segment, { segment_of($gen) => $count }, "$what: all $count visitors in the segment of generation $gen"
        or diag "dump exit $rc, $lines lines";
    my $r = http_get('/', Cookie => "segedge_id=$ids[rand @ids]");
    is $r->status . ' ' . $r->body, "200 $gen " . segment_of($gen) . "\n", "$what: nginx serves generation $gen";
    return $gen;
}

my ($rc, $out) = run_cmd(import_cmd());
is $rc, 0, 'first import' or diag $out;

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            return 200 "$segedge_generation $segedge_segments\n";
        }
    }
EOF
my $gen = check_consistent('first import');

# A client asking for random visitors all along: every answer must pair a
# generation with its segment.
my $stop = "$dir/stop-client";
my $results = "$dir/client-results";
my $client = fork // die "fork: $!";
if (!$client) {
    my (%seen, @bad);
    my $deadline = time + 300;
    while (!-e $stop && time < $deadline) {
        my $r = eval { http_get('/', Cookie => "segedge_id=$ids[rand @ids]") };
        my $line = $r ? ($r->status // 'none') . ' ' . $r->body : "error $@";
        chomp $line;
        if ($line =~ /^200 (\d+) (\w+)$/ && $2 eq segment_of($1)) { $seen{$1}++ } else { push @bad, $line }
    }
    write_text($results, join '', (map { "ok $_ $seen{$_}\n" } sort { $a <=> $b } keys %seen), map { "bad $_\n" } @bad);
    POSIX::_exit(0);
}

# How long each kind of write takes, to spread the kills over all of it.
my $t0 = time;
($rc, $out) = run_cmd(import_cmd());
is $rc, 0, 'calibration import' or diag $out;
my $import_time = time - $t0;
drop_delta();
$t0 = time;
($rc, $out) = run_cmd($segsync, 'run', '--config', "$dir/segsync.json", '--once');
is $rc, 0, 'calibration batch' or diag $out;
my $delta_time = time - $t0;
note sprintf 'an import takes %.0f ms, a batch (with the daemon starting) %.0f ms', 1000 * $import_time, 1000 * $delta_time;
$gen = check_consistent('calibration');

my %landed;
for my $round (1 .. $rounds) {
    my $kind = $round % 2 ? 'import' : 'batch';
    my $before = $gen;
    # an import killed between its rename and the flip of current leaves a
    # snapshot directory that the next import's number skips past
    my $next = $kind eq 'import' ? next_import_generation() : $before + 1;
    my $pid;
    my $wait;
    if ($kind eq 'import') {
        $pid = spawn($log, import_cmd());
        $wait = rand(1.2 * $import_time);
    } else {
        drop_delta();
        $pid = spawn($log, $segsync, 'run', '--config', "$dir/segsync.json");
        $wait = rand(1.2 * $delta_time);
    }
    sleep $wait;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    my $what = sprintf '%s kill #%d at %.0f ms', $kind, $round, 1000 * $wait;
    $gen = check_consistent($what);
    ok $gen == $before || $gen == $next, "$what: generation $gen is $before or the next ($next)";
    $landed{ $gen == $before ? "$kind before its commit" : "$kind after its commit" }++;

    # The next run finishes the work: a batch exactly once, an import anew.
    if ($kind eq 'batch') {
        ($rc, $out) = run_cmd($segsync, 'run', '--config', "$dir/segsync.json", '--once');
        is $rc, 0, "$what: the restarted daemon finishes" or diag $out;
        $gen = check_consistent("$what, after the restart");
        is $gen, $next, "$what: the batch applied exactly once"
            or diag join "\n", 'segsync.log ends:', grep({ defined } (split /\n/, read_text($log))[-12 .. -1]),
                    'drop directory: ' . join ' ', map { s{.*/}{}r } glob "$drop/*";
    } else {
        ($rc, $out) = run_cmd(import_cmd());
        is $rc, 0, "$what: the next import succeeds" or diag $out;
        $gen = check_consistent("$what, after the next import");
    }
}
is_deeply [glob "$root/snapshots/.staging-*"], [], 'no staging directory left behind';
note join ', ', map { "$_: $landed{$_}" } sort keys %landed;
diag 'kills: ' . join ', ', map { "$_ $landed{$_}" } sort keys %landed if $ENV{SEGEDGE_FULL};

write_text($stop, '');
waitpid $client, 0;
my @client = split /\n/, read_text($results) // '';
my @bad = grep { /^bad / } @client;
my @gens = grep { /^ok / } @client;
is scalar(@bad), 0, 'the client never saw a failed request or a generation with the wrong segment'
    or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
cmp_ok scalar(@gens), '>', $rounds / 2, 'the client saw many generations';
my $answers = 0;
$answers += (split / /)[2] for @gens;
note "the client got $answers answers over " . scalar(@gens) . ' generations';
unlike error_log_text(), qr/\[error\].*segedge:/, 'no fail-open in error.log';

done_testing;
