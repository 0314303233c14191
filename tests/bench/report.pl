#!/usr/bin/perl
# Turns one tests/bench/run.sh session into results: OUT/results.json (every
# figure, with each round), OUT/results.csv (one line per run),
# OUT/results.md (the README tables) and OUT/ratios.png (gnuplot), and
# prints the tables.
#
#   report.pl --out DIR --rounds-file FILE --command CMD --settings TEXT [LABEL=MICRO.json ...]
#
# Per configuration and round: requests/s, p50/p99 latency, and the nginx
# worker's CPU time per request (from /proc/PID/stat). The ratios to bare are
# per round (bare ran in the same round) and then the median over rounds:
# by requests/s (case / bare), and by CPU per request (bare / case, so that
# both read as "throughput relative to bare": 0.9 = 10% slower).
use strict;
use warnings;
use Getopt::Long;
use JSON::PP;
use POSIX qw(sysconf _SC_CLK_TCK strftime);

GetOptions(\my %opt, 'out=s', 'rounds-file=s', 'cases=s', 'command=s', 'settings=s') or die "bad arguments\n";
my %micro_files = map { split /=/, $_, 2 } @ARGV;
my $hz = sysconf(_SC_CLK_TCK);

my %what = (
    'bare'            => 'nginx serving the page, nothing else',
    'nginx-map'       => 'nginx built-ins: map on the cookie + split_clients + 2 add_header',
    'nginx-sub'       => 'nginx built-ins: sub_filter, 3 replacements',
    'lua-header'      => 'Lua: shared-dict lookup by cookie + header',
    'lua-body'        => 'Lua: the same lookup + body filter swapping the 3 blocks',
    'segedge-header'  => 'segedge: lookup + 20 rules -> X-Seg header',
    'segedge-blocks'  => 'segedge: lookup + 20 rules -> 3 blocks swapped',
    'segedge-all'     => 'segedge: header + blocks + 2 experiments + metrics + cookie issuing',
    'segedge-metrics' => 'segedge: header mode + metrics zone',
);

# --- rounds
open my $in, '<', $opt{'rounds-file'} or die "$opt{'rounds-file'}: $!";
my $header = <$in>;
chomp $header;
my @columns = split /\t/, $header;
my %runs;
while (<$in>) {
    chomp;
    my %run;
    @run{@columns} = split /\t/;
    $run{rps} = $run{requests} / ($run{duration_us} / 1e6);
    $run{cpu_us} = $run{requests} ? $run{cpu_ticks} / $hz * 1e6 / $run{requests} : 0;
    $runs{ $run{case} }{ $run{round} } = \%run;
}
my @order = grep { $runs{$_} } split /,/, $opt{cases};  # the order run.sh defines them in

sub median { my @v = sort { $a <=> $b } @_; @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2 }
sub stats { return { median => median(@_), min => (sort { $a <=> $b } @_)[0], max => (sort { $b <=> $a } @_)[0] } }

my @configurations;
for my $case (@order) {
    my @rounds = sort { $a <=> $b } keys %{ $runs{$case} };
    my @these = map { $runs{$case}{$_} } @rounds;
    my @bare = map { $runs{bare}{$_} } @rounds;
    my (@rps_ratio, @cpu_ratio);
    for my $i (0 .. $#these) {
        push @rps_ratio, $these[$i]{rps} / $bare[$i]{rps};
        push @cpu_ratio, $these[$i]{cpu_us} ? $bare[$i]{cpu_us} / $these[$i]{cpu_us} : 0;
    }
    my ($base, $profiles) = split /@/, $case;
    push @configurations, {
        name => $case, what => $what{$base} // $base, profiles => $profiles // '',
        requests_per_second => stats(map { $_->{rps} } @these),
        p50_us => stats(map { $_->{p50_us} } @these),
        p99_us => stats(map { $_->{p99_us} } @these),
        worker_cpu_us_per_request => stats(map { $_->{cpu_us} } @these),
        vs_bare_requests_per_second => stats(@rps_ratio),
        vs_bare_worker_cpu => stats(@cpu_ratio),
        rounds => [ map { { round => 0 + $_->{round}, requests => 0 + $_->{requests},
                            requests_per_second => $_->{rps}, p50_us => 0 + $_->{p50_us},
                            p99_us => 0 + $_->{p99_us}, worker_cpu_us_per_request => $_->{cpu_us},
                            socket_errors => 0 + $_->{socket_errors} } } @these ],
    };
}

# --- micro-benchmarks (Google Benchmark JSON): the median of repetitions
my %micro;
for my $label (sort keys %micro_files) {
    my $json = decode_json(do { local (@ARGV, $/) = $micro_files{$label}; <> });
    my @all = @{ $json->{benchmarks} };
    my $aggregated = grep { ($_->{aggregate_name} // '') eq 'median' } @all;
    for my $b (@all) {
        next if $aggregated && ($b->{aggregate_name} // '') ne 'median';
        next if $b->{error_occurred};
        my $scale = { ns => 1, us => 1e3, ms => 1e6, s => 1e9 }->{ $b->{time_unit} };
        my $name = $b->{run_name} // $b->{name};
        $micro{$name}{$label} = { ns_per_op => $b->{cpu_time} * $scale,
                                  $b->{bytes_per_second} ? (mb_per_second => $b->{bytes_per_second} / 1e6) : () };
    }
}

# --- machine
sub first_line { my ($file, $re) = @_; open my $f, '<', $file or return ''; while (<$f>) { return $1 if /$re/ } '' }
my %machine = (
    cpus => 0 + `nproc`,
    cpu_model => first_line('/proc/cpuinfo', qr/^model name\s*:\s*(.*)/),
    kernel => (split ' ', `uname -r`)[0],
    nginx => (`/usr/sbin/nginx -v 2>&1` =~ m{nginx/(\S+)})[0] // '',
    load_average_after => (split ' ', first_line('/proc/loadavg', qr/(.*)/))[0],
);
my %result = (
    command => $opt{command}, settings => $opt{settings},
    date => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime), machine => \%machine,
    configurations => \@configurations, micro => \%micro,
);
sub write_file { open my $f, '>', "$opt{out}/$_[0]" or die "$opt{out}/$_[0]: $!"; print $f $_[1]; close $f or die }
write_file('results.json', JSON::PP->new->canonical->pretty->encode(\%result));
write_file('results.csv', join '', "configuration,round,requests,requests_per_second,p50_us,p99_us,worker_cpu_us_per_request\n",
    map { my $c = $_; map { join(',', $c->{name}, @$_{qw(round requests)}, sprintf('%.0f', $_->{requests_per_second}),
                                 @$_{qw(p50_us p99_us)}, sprintf('%.2f', $_->{worker_cpu_us_per_request})) . "\n" }
                          @{ $c->{rounds} } } @configurations);

# --- tables
sub range { my ($s, $fmt) = @_; sprintf "$fmt ($fmt–$fmt)", @$s{qw(median min max)} }
sub ms { my $s = shift; { median => $s->{median} / 1e3, min => $s->{min} / 1e3, max => $s->{max} / 1e3 } }
my $md = "| configuration | what it does | req/s, median (range) | p50 ms | p99 ms | worker CPU µs/request | vs bare: req/s | vs bare: CPU |\n"
       . "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
for my $c (@configurations) {
    $md .= sprintf "| %s | %s | %s | %.2f | %.2f | %s | %s | %s |\n", $c->{name}, $c->{what},
        range($c->{requests_per_second}, '%.0f'), $c->{p50_us}{median} / 1e3, $c->{p99_us}{median} / 1e3,
        range($c->{worker_cpu_us_per_request}, '%.1f'),
        $c->{name} eq 'bare' ? '1' : '**' . range($c->{vs_bare_requests_per_second}, '%.2f') . '**',
        $c->{name} eq 'bare' ? '1' : '**' . range($c->{vs_bare_worker_cpu}, '%.2f') . '**';
}
if (%micro) {
    my @labels = sort { my ($x, $y) = map { s/k$/e3/r =~ s/M$/e6/r } $a, $b; $x <=> $y } keys %micro_files;
    $md .= "\n| segcore micro-benchmark | " . join(' | ', map { "$_ profiles" } @labels) . " |\n"
         . '| --- |' . ' --- |' x @labels . "\n";
    for my $name (sort keys %micro) {
        $md .= "| $name | " . join(' | ', map {
            my $m = $micro{$name}{$_};
            !$m ? '–' : $m->{mb_per_second} ? sprintf('%.0f MB/s', $m->{mb_per_second}) : sprintf('%.0f ns', $m->{ns_per_op})
        } @labels) . " |\n";
    }
}
$md .= "\n`$opt{command}` ($opt{settings}); $machine{cpus} CPUs, $machine{cpu_model}, nginx $machine{nginx}, $result{date}\n";
write_file('results.md', $md);
print "\n$md";

# --- chart
write_file('ratios.dat', join '', map {
    my ($r, $c) = @$_{qw(vs_bare_requests_per_second vs_bare_worker_cpu)};
    join(' ', qq("$_->{name}"), @$r{qw(median min max)}, @$c{qw(median min max)}) . "\n"
} @configurations);
my $rounds = @{ $configurations[0]{rounds} };
my $top = 1.2;
for my $c (@configurations) {
    $top = $_ * 1.1 for grep { $_ * 1.1 > $top } $c->{vs_bare_requests_per_second}{max}, $c->{vs_bare_worker_cpu}{max};
}
write_file('ratios.gnuplot', <<GNUPLOT);
set terminal pngcairo size 1100,560 font "sans,10" noenhanced
set output "$opt{out}/ratios.png"
set title "segedge benchmark: throughput relative to bare nginx, median of $rounds rounds (bars: range over rounds)\\n$opt{settings}"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:$top]
set grid ytics
set ylabel "relative to bare nginx (1 = as fast)"
set xtics rotate by -25 left
set key top center horizontal
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#555555"
plot "$opt{out}/ratios.dat" using 2:3:4:xtic(1) title "requests/s vs bare" lc rgb "#4e79a7", \\
     "" using 5:6:7 title "worker CPU per request (bare / configuration)" lc rgb "#f28e2b"
GNUPLOT
system('gnuplot', "$opt{out}/ratios.gnuplot") == 0 or die "gnuplot failed\n";
print "\nresults: $opt{out}/results.{json,csv,md}, chart: $opt{out}/ratios.png\n";
