# The corrupt-database matrix against a running nginx (t/04-fail-open.t has
# the first cases: no root, not LMDB, a regular file, zeroed, truncated to
# two pages, another schema version). Here: current pointing to a deleted
# snapshot, an empty data.mdb, truncation at many lengths, unusable lock
# files, unreadable snapshots, and random bit flips in a copy of a valid
# data.mdb over many seeds. Each is published as `current` and requested:
# no worker ever dies, every response is 200, a refused snapshot gives the
# default content (or, when a good snapshot was in use, keeps it exactly),
# and `segsync verify` on the same file exits 0 or 1, never on a signal.
#
# SEGEDGE_FLIP_SEEDS=N runs seeds 1..N (default 150; SEGEDGE_FULL=1: 2000);
# SEGEDGE_FLIP_SEED=N runs that one seed, to reproduce a failure.

use SegEdge::Test;
use Cwd qw(abs_path);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);

my $d = testdir();

# Enough data for branch pages, overflow pages (the big fragment) and every
# database the module reads: segments (with a rule), profiles with
# attributes, aliases, blocks (with an experiment variant), experiments.
my @visitors = map { visitor_id("v-$_") } 1 .. 600;
my $SEG = <<'SEG';
{"name":"vip","priority":100}
{"name":"newsletter","priority":50}
{"name":"mobile","priority":10,"rule":{"input":"header.x-device","op":"eq","value":"mobile"}}
SEG
my $PROF = join '', map {
    my $segs = $_ % 3 == 0 ? '"vip","newsletter"' : $_ % 3 == 1 ? '"newsletter"' : '';
    qq({"id":"$visitors[$_]","kind":"anonymous","segments":[$segs],"attributes":{"ltv":$_,"tier":"t@{[$_ % 7]}"}}\n)
} 0 .. $#visitors;
$PROF .= qq({"id":"cust-$_","kind":"known","segments":["vip"]}\n) for 1 .. 50;
my $ALIASES = join '', map { qq({"anonymous":"@{[visitor_id("a-$_")]}","known":"cust-$_"}\n) } 1 .. 50;
my $BIG = 'x' x 9000;
my $BLOCKS = qq({"block":"hero","segment":"vip","html":"<b>vip hero</b>"}\n)
           . qq({"block":"hero","segment":"vip","experiment":"hero-test","variant":"B","html":"<b>B hero</b>"}\n)
           . qq({"block":"big","segment":"newsletter","html":"<i>$BIG</i>"}\n);
my $EXPERIMENTS = qq({"id":"hero-test","segments":["vip"],"status":"running","salt":"s1",)
                . qq("variants":[{"name":"A","weight":5000},{"name":"B","weight":5000}]}\n);
my $PAGE = "<!--segedge:hero-->default hero<!--/segedge:hero-->\n<!--segedge:big-->default big<!--/segedge:big-->\n";
make_path("$d/html");
write_text("$d/html/page.html", $PAGE);

# Two templates with the same data: "good" (generation 1) is republished
# between seeds, "flip" (generation 2) is the one damaged; the generation a
# response shows tells which one served it.
for my $name ('good', 'flip', 'flip') {
    my ($rc, $out) = import_snapshot("tmpl-$name", $SEG, $PROF, $name, $ALIASES, $BLOCKS, $EXPERIMENTS);
    is $rc, 0, "template $name imported" or diag $out;
}
($_ = abs_path("$d/tmpl-$_/current")) for my ($good_dir, $flip_dir) = ('good', 'flip');
my $size = -s "$flip_dir/data.mdb";
cmp_ok $size, '>=', 20 * 4096, "the template has many pages ($size bytes)";

sub server_conf {
    my ($db) = @_;
    return <<"EOF";
    segedge_db %%TESTDIR%%/$db;
    segedge_db_check_interval 0;
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%TESTDIR%%/html;
        segedge on;
        segedge_blocks on;
        add_header X-Seg \$segedge_segments always;
        add_header X-Gen \$segedge_generation always;
        add_header X-Known \$segedge_known always;
    }
EOF
}

# The requests each case sends: a vip, a newsletter-only and an unprofiled
# visitor, an aliased one, a rule match, and no cookie at all.
my @REQUESTS = (
    ['vip',        Cookie => "segedge_id=$visitors[0]"],
    ['newsletter', Cookie => "segedge_id=$visitors[1]"],
    ['plain',      Cookie => "segedge_id=$visitors[2]"],
    ['unknown',    Cookie => 'segedge_id=' . visitor_id('nobody')],
    ['aliased',    Cookie => 'segedge_id=' . visitor_id('a-7')],
    ['rule',       'X-Device' => 'mobile'],
    ['anonymous'],
);

sub responses {
    my %r;
    for my $req (@REQUESTS) {
        my ($label, @headers) = @$req;
        $r{$label} = http_get('/page.html', @headers);
    }
    return \%r;
}

# "status X-Gen X-Seg X-Known body" per request, to compare cases.
sub summary {
    my ($responses) = @_;
    return join "\n", map {
        my $r = $responses->{ $_->[0] };
        (my $body = $r->body) =~ s/(x{100,})/'x' x 3 . length($1)/ge;    # the big fragment, shortened
        $body =~ s/\n/\\n/g;
        join ' ', $_->[0], $r->status // 'none', map({ $r->value($_) } qw(X-Gen X-Seg X-Known)), $body;
    } @REQUESTS;
}

# no generation, no segments, not known, the page as it is
(my $PAGE_LINE = $PAGE) =~ s/\n/\\n/g;
my $DEFAULT = join "\n", map { "$_->[0] 200   0 $PAGE_LINE" } @REQUESTS;
my $BIG_SHORT = 'xxx' . length $BIG;

sub segedge_lines {
    my ($from) = @_;
    return grep { /segedge: / } split /\n/, error_log_text($from);
}

sub crashed {
    my ($from) = @_;
    return grep { /exited on signal/ } split /\n/, error_log_text($from);
}

# Points ROOT/current at $target the way segsync does (rename of a symlink).
sub point_current {
    my ($root, $target) = @_;
    make_path($root);
    unlink "$root/.current.tmp";
    symlink $target, "$root/.current.tmp" or die "symlink: $!";
    rename "$root/.current.tmp", "$root/current" or die "rename: $!";
}

# A copy of a template snapshot under ROOT/snapshots, with only data.mdb.
sub copy_snapshot {
    my ($from, $root, $name) = @_;
    my $dir = "$root/snapshots/$name";
    remove_tree($dir);
    make_path($dir);
    copy("$from/data.mdb", "$dir/data.mdb") or die "copy: $!";
    return $dir;
}

# ------------------------------------------------------------ the matrix
# Each case starts nginx on a root holding only the broken snapshot, so the
# one right answer is the default page, unpersonalised.

my @matrix = (
    ['current points to a deleted snapshot', sub {
        my ($root) = @_;
        my $dir = copy_snapshot($good_dir, $root, 'snap-gone');
        point_current($root, 'snapshots/snap-gone');
        remove_tree($dir);
    }],
    ['the snapshot directory is empty', sub {
        my ($root) = @_;
        make_path("$root/snapshots/snap-empty");
        point_current($root, 'snapshots/snap-empty');
    }],
    ['data.mdb is empty', sub {
        my ($root) = @_;
        my $dir = copy_snapshot($good_dir, $root, 'snap-0');
        truncate "$dir/data.mdb", 0 or die "truncate: $!";
        point_current($root, 'snapshots/snap-0');
    }],
    (map {
        my $len = $_;
        ["data.mdb truncated to $len bytes", sub {
            my ($root) = @_;
            my $dir = copy_snapshot($good_dir, $root, "snap-t$len");
            truncate "$dir/data.mdb", $len or die "truncate: $!";
            point_current($root, "snapshots/snap-t$len");
        }];
    } 1, 100, 4095, 4096, 4097, 8191, 12288, $size - 4096, $size - 1),
    ['lock.mdb is a directory', sub {
        my ($root) = @_;
        my $dir = copy_snapshot($good_dir, $root, 'snap-lockdir');
        make_path("$dir/lock.mdb");
        point_current($root, 'snapshots/snap-lockdir');
    }],
    ['lock.mdb is a dangling symlink', sub {
        my ($root) = @_;
        my $dir = copy_snapshot($good_dir, $root, 'snap-locklink');
        symlink "$d/no-such-dir/lock.mdb", "$dir/lock.mdb" or die "symlink: $!";
        point_current($root, 'snapshots/snap-locklink');
    }],
);

# Cases that need workers without root's privileges.
my $nobody = getpwnam('nobody') ? 'nobody nogroup' : undef;
$nobody = undef if $nobody && !getgrnam('nogroup');
if ($> == 0 && $nobody) {
    push @matrix,
        ['lock.mdb not writable by the workers', sub {
            my ($root) = @_;
            my $dir = copy_snapshot($good_dir, $root, 'snap-lockro');
            write_text("$dir/lock.mdb", '');
            chmod 0644, "$dir/lock.mdb";
            chmod 0755, $dir, "$root", "$root/snapshots";
            chmod 0644, "$dir/data.mdb";
            point_current($root, 'snapshots/snap-lockro');
        }, user => $nobody],
        ['data.mdb not readable by the workers', sub {
            my ($root) = @_;
            my $dir = copy_snapshot($good_dir, $root, 'snap-dataro');
            chmod 0755, $dir, "$root", "$root/snapshots";
            chmod 0600, "$dir/data.mdb";
            point_current($root, 'snapshots/snap-dataro');
        }, user => $nobody],
        ['the snapshot directory not searchable by the workers', sub {
            my ($root) = @_;
            my $dir = copy_snapshot($good_dir, $root, 'snap-dirx');
            chmod 0700, $dir;
            chmod 0755, "$root", "$root/snapshots";
            point_current($root, 'snapshots/snap-dirx');
        }, user => $nobody];
}

my $case = 0;
for my $m (@matrix) {
    my ($what, $make, %opts) = @$m;
    my $root = "$d/case-" . ++$case;
    $make->($root);
    my $mark = error_log_size();
    start_nginx(server_conf("case-$case"), %opts);
    my @got = map { summary(responses()) } 1 .. 2;
    is $got[0], $DEFAULT, "$what: every response 200, default content, no variables";
    is $got[1], $got[0], "$what: the same again";
    my @lines = segedge_lines($mark);
    is scalar(@lines), 1, "$what: one segedge error line" or diag join "\n", @lines;
    stop_nginx();
    my ($rc, $out) = segsync('verify', '--db', $root);
    my $want = $opts{user} ? 0 : 1;    # root can read what the workers cannot
    is $rc, $want, "$what: segsync verify (as root) exits $want" or diag $out;
    is scalar(crashed($mark)), 0, "$what: no worker crashed";
}
note 'unprivileged-worker cases skipped: no nobody/nogroup or not root' unless $> == 0 && $nobody;

# ------------------------------------------------------------ bit flips

my $seeds = $ENV{SEGEDGE_FLIP_SEEDS} // ($ENV{SEGEDGE_FULL} ? 2000 : 150);
my @seeds = defined $ENV{SEGEDGE_FLIP_SEED} ? ($ENV{SEGEDGE_FLIP_SEED}) : (1 .. $seeds);

# Flips 1 to 8 random bits of data.mdb, from a seed (Perl's srand/rand are
# repeatable for one perl build).
sub flip_bits {
    my ($file, $seed) = @_;
    srand($seed);
    my $len = -s $file;
    open my $fh, '+<', $file or die "open $file: $!";
    binmode $fh;
    my @flips;
    for (1 .. 1 + int rand 8) {
        my ($off, $bit) = (int rand $len, int rand 8);
        sysseek $fh, $off, 0;
        sysread $fh, my $byte, 1;
        sysseek $fh, $off, 0;
        syswrite $fh, chr(ord($byte) ^ (1 << $bit));
        push @flips, "$off:$bit";
    }
    close $fh;
    return @flips;
}

my $root = "$d/flips";
my $verify_root = "$d/flips-verify";
copy_snapshot($good_dir, $root, 'snap-good-0');
point_current($root, 'snapshots/snap-good-0');
start_nginx(server_conf('flips'), log_level => 'info');

my $good = summary(responses());
my ($good_gen) = $good =~ /^vip 200 (\d+) /;
ok $good_gen, "the good template serves generation $good_gen";
like $good, qr{^vip 200 \d+ vip,newsletter 0 <!--segedge:hero--><b>(?:vip|B) hero</b><!--/segedge:hero-->\\n<!--segedge:big--><i>$BIG_SHORT</i>}m,
     'the good template personalises' or diag $good;
(my $good_content = $good) =~ s/^(\S+ 200 )$good_gen /$1GEN /mg;    # whatever the generation

my (%outcome, @bad, @dirs);
for my $seed (@seeds) {
    # the good snapshot first, so a refused copy must leave it in use
    push @dirs, copy_snapshot($good_dir, $root, "snap-good-$seed");
    point_current($root, "snapshots/snap-good-$seed");
    my $again = http_get('/page.html', Cookie => "segedge_id=$visitors[0]")->value('X-Gen');
    push @bad, "seed $seed: the good snapshot did not come back (generation '$again')" if $again ne $good_gen;

    my $dir = copy_snapshot($flip_dir, $root, "snap-flip-$seed");
    push @dirs, $dir;
    my @flips = flip_bits("$dir/data.mdb", $seed);
    my $mark = error_log_size();
    point_current($root, "snapshots/snap-flip-$seed");
    my $got = summary(responses());
    my @status = grep { !/^\S+ 200 / } split /\n/, $got;
    push @bad, "seed $seed (flips @flips): non-200 responses:\n@status" if @status;
    push @bad, "seed $seed (flips @flips): a worker crashed" if crashed($mark);

    my ($gen) = $got =~ /^vip 200 (\d*) /;
    my $module;
    if (($gen // '') eq $good_gen) {
        # refused (logged once a minute): the good snapshot stays in use
        push @bad, "seed $seed (flips @flips): refused, but the previous snapshot was not kept:\n$got"
            if $got ne $good;
        $module = 'refused';
    } else {
        (my $as_good = $got) =~ s/^(\S+ 200 )\d+ /$1GEN /mg;
        $module = $as_good eq $good_content ? 'served the same content' : 'served other content';
    }

    # the same file through segsync verify
    point_current($verify_root, "$dir");
    my ($rc, $out) = segsync('verify', '--db', $verify_root);
    push @bad, "seed $seed (flips @flips): segsync verify exited $rc: $out" if $rc != 0 && $rc != 1;
    $outcome{"$module, verify " . ($rc == 0 ? 'passed' : 'refused')}++;

    remove_tree(shift @dirs) while @dirs > 4;
}
is scalar(@bad), 0, scalar(@seeds) . ' seeds: every response 200, no crash, a refused copy keeps the good snapshot'
    or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
note join ', ', map { "$_: $outcome{$_}" } sort keys %outcome;
diag 'bit flips: ' . join ', ', map { "$_ $outcome{$_}" } sort keys %outcome if $ENV{SEGEDGE_FULL};

done_testing;
