# Publishing new snapshots while requests flow: no reload, no failed request,
# the new data shows up, and a worker never goes back to an older generation
# or mixes one generation's number with another's segments.

use SegEdge::Test;
use POSIX ();
use Time::HiRes qw(time sleep);

# v-1 and v-2 as canonical ids: visitor_id('v-1'), visitor_id('v-2')
my @segments = (
    # gen 1
    [<<'SEG', <<'PROF', 'a'],
{"name":"a","description":"A","owner":"test","priority":30}
{"name":"b","description":"B","owner":"test","priority":20}
{"name":"c","description":"C","owner":"test","priority":10}
SEG
{"id":"di0xAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["a"]}
{"id":"di0yAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["b","c"]}
PROF
    # gen 2: another segment for v-1
    [<<'SEG', <<'PROF', 'a,b'],
{"name":"a","description":"A","owner":"test","priority":30}
{"name":"b","description":"B","owner":"test","priority":20}
{"name":"c","description":"C","owner":"test","priority":10}
SEG
{"id":"di0xAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["b","a"]}
{"id":"di0yAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["b","c"]}
PROF
    # gen 3: priorities reversed
    [<<'SEG', <<'PROF', 'c,b,a'],
{"name":"a","description":"A","owner":"test","priority":10}
{"name":"b","description":"B","owner":"test","priority":20}
{"name":"c","description":"C","owner":"test","priority":30}
SEG
{"id":"di0xAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["a","b","c"]}
{"id":"di0yAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["b","c"]}
PROF
    # gen 4: a new segment, one removed
    [<<'SEG', <<'PROF', 'd'],
{"name":"a","description":"A","owner":"test","priority":10}
{"name":"b","description":"B","owner":"test","priority":20}
{"name":"d","description":"D","owner":"test","priority":50}
SEG
{"id":"di0xAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["d"]}
{"id":"di0yAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["b"]}
PROF
    # gen 5: v-1 no longer profiled
    [<<'SEG', <<'PROF', ''],
{"name":"a","description":"A","owner":"test","priority":10}
{"name":"d","description":"D","owner":"test","priority":50}
SEG
{"id":"di0yAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["a","d"]}
PROF
    # gen 6: back again
    [<<'SEG', <<'PROF', 'd,a'],
{"name":"a","description":"A","owner":"test","priority":10}
{"name":"d","description":"D","owner":"test","priority":50}
SEG
{"id":"di0xAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["a","d"]}
PROF
);

my ($rc, $out) = import_snapshot('db', $segments[0][0], $segments[0][1], 'gen-1');
is $rc, 0, 'first snapshot imported' or diag $out;

start_nginx(<<'EOF', log_level => 'info');
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 100ms;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            add_header X-Seg $segedge_segments always;
            add_header X-Gen $segedge_generation always;
            return 200 "gen=$segedge_generation seg=$segedge_segments\n";
        }
    }
EOF

my $cookie = 'segedge_id=' . visitor_id('v-1');
my $r = http_get('/', Cookie => $cookie);
is $r->status, 200, 'first request';
is $r->value('X-Seg'), 'a', 'first snapshot: segments';
my $gen = $r->value('X-Gen');
like $gen, qr/^\d+$/, 'first snapshot: a generation';
my %expected = ($gen => 'a');

# A child sends sequential requests until told to stop (bounded either way).
my $stop = testdir() . '/stop-client';
my $results = testdir() . '/client-results';
my $child = fork // die "fork: $!";
if (!$child) {
    my @lines;
    my $deadline = time + 60;
    for my $i (1 .. 50000) {
        last if -e $stop || time > $deadline;
        my $line = eval {
            my $r = http_get('/', Cookie => $cookie);
            join "\t", $r->status // 'none', $r->value('X-Gen'), $r->value('X-Seg'), $r->body;
        } // "error\t\t\t$@";
        $line =~ s/\n/ /g;
        push @lines, $line;
    }
    write_text($results, join '', map { "$_\n" } @lines);
    POSIX::_exit(0);
}

# Meanwhile: publish the next snapshots, each seen without a reload.
for my $i (1 .. $#segments) {
    my ($seg, $prof, $want) = @{ $segments[$i] };
    sleep 0.3;      # let some requests see the previous snapshot
    my ($rc, $out) = import_snapshot('db', $seg, $prof, "gen-" . ($i + 1));
    is $rc, 0, "import $i succeeded" or diag $out;
    my $next = $gen + 1;
    my $seen;
    wait_until(sub {
        $seen = http_get('/', Cookie => $cookie);
        $seen->value('X-Gen') eq $next;
    }, 10, 0.05);
    is $seen->value('X-Gen'), $next, "generation $next picked up without reload";
    is $seen->value('X-Seg'), $want, "generation $next: segments '$want'";
    $expected{$next} = $want;
    $gen = $next;
}

sleep 0.3;
write_text($stop, '');
waitpid $child, 0;
is $?, 0, 'client finished';

my @lines = split /\n/, read_text($results) // '';
cmp_ok scalar(@lines), '>', 0, 'client sent requests';
my (@bad_status, @backwards, @mixed, %gens);
my $last = 0;
for my $line (@lines) {
    my ($status, $g, $s, $body) = split /\t/, $line, 4;
    $body //= '';
    push @bad_status, $line if $status ne '200';
    next if $status ne '200';
    push @backwards, "$last -> $g" if $g eq '' || $g < $last;
    $last = $g if $g ne '' && $g > $last;
    push @mixed, $line if !exists $expected{$g} || $expected{$g} ne $s
                          || $body ne "gen=$g seg=$s ";
    $gens{$g}++;
}
is scalar(@bad_status), 0, 'every response during the republishes was 200'
    or diag join "\n", @bad_status[0 .. ($#bad_status < 9 ? $#bad_status : 9)];
is scalar(@backwards), 0, 'generation never went backwards'
    or diag join "\n", @backwards[0 .. ($#backwards < 9 ? $#backwards : 9)];
is scalar(@mixed), 0, "segments always those of the response's generation"
    or diag join "\n", @mixed[0 .. ($#mixed < 9 ? $#mixed : 9)];
cmp_ok scalar(keys %gens), '>=', 2, 'the client saw more than one generation';
note 'responses per generation: ', join ', ', map { "$_: $gens{$_}" } sort { $a <=> $b } keys %gens;

# A reload starts new workers, which open the latest snapshot again.
reload_nginx();
$r = http_get('/', Cookie => $cookie);
is $r->status, 200, 'after a reload: 200';
is $r->value('X-Gen'), $gen, 'after a reload: the latest generation';
is $r->value('X-Seg'), $expected{$gen}, 'after a reload: its segments';

done_testing;
