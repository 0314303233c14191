package SegEdge::Feeds;

# The scripted feeds the daemon tests apply, from a directory or over HTTP:
# feed 0 is a full snapshot, then feeds 1..105 where every 21st is a full
# snapshot (5 of them) and the rest are delta batches (100). Each feed sets
# visitor v-1 to a known set of segments, so a response's generation tells
# which segments it must show: feed k is generation k + 1.
#
#   my $feeds = SegEdge::Feeds->new(key => $hmac_key_file);
#   my @files = $feeds->files($k);    # [name, content] in the order to write
#   $feeds->expected($generation)     # the segments v-1 has at it
#   $feeds->watch; ...; $feeds->check_watch   # a client asserting consistency
#   start_nginx(SegEdge::Feeds::SERVER); $feeds->wait_generation($g)

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use POSIX ();
use SegEdge::Test;
use Time::HiRes qw(time);

use constant LAST => 105;

# The personalised server both daemon tests run (inside http { ... }).
use constant SERVER => <<'EOF';
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 50ms;
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

sub generation { http_get('/', Cookie => 'segedge_id=' . visitor_id('v-1'))->value('X-Gen') }

sub wait_generation {
    my ($self, $want, $timeout) = @_;
    return wait_until(sub { generation() eq $want }, $timeout // 20, 0.02);
}
my @SETS = ('a', 'a,b', 'b,c', 'c', 'a,c', 'a,b,c', '', 'b');

sub new {
    my ($class, %opts) = @_;
    return bless { key => $opts{key} }, $class;
}

sub is_snapshot { $_[1] % 21 == 0 }
sub name { my ($self, $k) = @_; sprintf('%04d.%s', $k, $self->is_snapshot($k) ? 'snapshot.json' : 'delta.ndjson') }
sub expected { my ($self, $generation) = @_; $SETS[($generation - 1) % @SETS] }

sub _segments_list { join ',', map { qq("$_") } grep { length } split /,/, $_[0] }

# [name, content] pairs: data files first, then the signature, then the
# feed itself, which is what makes it visible.
sub files {
    my ($self, $k, %opts) = @_;
    my $name = $self->name($k);
    my $set = _segments_list($SETS[$k % @SETS]);
    my (@files, $text);
    if ($self->is_snapshot($k)) {
        my $segments = join '', map { qq({"name":"$_->[0]","priority":$_->[1]}\n) }
                                    ['a', 30], ['b', 20], ['c', 10];
        my $profiles = qq({"id":"@{[visitor_id('v-1')]}","kind":"anonymous","segments":[$set]}\n)
                     . qq({"id":"@{[visitor_id('v-2')]}","kind":"anonymous","segments":["c"]}\n);
        push @files, ["s$k/segments.ndjson", $segments], ["s$k/profiles.ndjson", $profiles];
        $text = sprintf '{"segments":{"file":"s%d/segments.ndjson","sha256":"%s"},'
                      . '"profiles":{"file":"s%d/profiles.ndjson","sha256":"%s"}}',
                        $k, sha256_hex($segments), $k, sha256_hex($profiles);
    } else {
        $text = qq({"op":"upsert","id":"@{[visitor_id('v-1')]}","kind":"anonymous","segments":[$set]}\n)
              . qq({"op":"enter","id":"@{[visitor_id("n-$k")]}","kind":"anonymous","segment":"b"}\n)
              . qq({"op":"exit","id":"@{[visitor_id('n-' . ($k - 1))]}","kind":"anonymous","segment":"b"}\n);
    }
    push @files, ["$name.sig", $self->sign($name, $text, $opts{key})], [$name, $text];
    return @files;
}

# The detached signature `segsync sign-feed` makes (with another key if given).
sub sign {
    my ($self, $name, $text, $key) = @_;
    my $tmp = testdir() . "/sign-input";
    write_text($tmp, $text);
    my ($rc, $out) = run_cmd(segsync_path(), 'sign-feed', '--key', $key // $self->{key}, '--name', $name,
                             '--out', "$tmp.sig", $tmp);
    die "segsync sign failed: $out" if $rc;
    return read_text("$tmp.sig");
}

# A child sends requests as v-1 until check_watch, which then asserts that
# every one was answered 200, generations never went backwards, and each
# response showed exactly the segments of its generation.
sub watch {
    my ($self) = @_;
    my $dir = testdir();
    $self->{stop} = "$dir/stop-watch";
    $self->{results} = "$dir/watch-results";
    unlink $self->{stop};
    $self->{child} = fork // die "fork: $!";
    return if $self->{child};
    my @lines;
    my $deadline = time + 120;
    while (!-e $self->{stop} && time < $deadline) {
        my $line = eval {
            my $r = http_get('/', Cookie => 'segedge_id=' . visitor_id('v-1'));
            join "\t", $r->status // 'none', $r->value('X-Gen'), $r->value('X-Seg'), $r->body;
        } // "error\t\t\t$@";
        $line =~ s/\n/ /g;
        push @lines, $line;
    }
    write_text($self->{results}, join '', map { "$_\n" } @lines);
    POSIX::_exit(0);
}

sub check_watch {
    my ($self) = @_;
    write_text($self->{stop}, '');
    waitpid $self->{child}, 0;
    my @lines = split /\n/, read_text($self->{results}) // '';
    cmp_ok scalar(@lines), '>', 0, 'the client sent requests';
    my (@bad, @backwards, @mixed, %gens);
    my $last = 0;
    for my $line (@lines) {
        my ($status, $gen, $seg, $body) = split /\t/, $line, 4;
        if ($status ne '200') { push @bad, $line; next }
        push @backwards, "$last -> $gen" if $gen eq '' || $gen < $last;
        $last = $gen if $gen ne '' && $gen > $last;
        push @mixed, $line if $gen eq '' || $self->expected($gen) ne $seg
                              || ($body // '') ne "gen=$gen seg=$seg ";
        $gens{$gen}++;
    }
    my $show = sub { join "\n", @_[0 .. ($#_ < 9 ? $#_ : 9)] };
    is scalar(@bad), 0, 'every response while feeds were applied was 200' or diag $show->(@bad);
    is scalar(@backwards), 0, 'the generation never went backwards' or diag $show->(@backwards);
    is scalar(@mixed), 0, "every response showed its generation's segments" or diag $show->(@mixed);
    cmp_ok scalar(keys %gens), '>', 5, 'the client saw many generations';
    note scalar(@lines) . ' requests over ' . scalar(keys %gens) . ' generations';
}

1;
