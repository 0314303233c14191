# A strict parser for the Prometheus text exposition format (0.0.4), as
# segedge_status and segsync's metrics file must produce it: every line a
# HELP, a TYPE or a sample; each family's HELP and TYPE once, before its
# samples, which are contiguous; names and label names valid; label values
# with only \\, \" and \n escapes; no series twice; a final newline. Dies
# naming the line on anything else.
package SegEdge::Prometheus;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT_OK = qw(parse_exposition);

my $NAME  = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $VALUE = qr/[-+]?(?:[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|[-+]?Inf)/;

# Returns { samples => { 'name{l="v"}' => value }, types => { name => type } }.
sub parse_exposition {
    my ($text) = @_;
    die "exposition does not end with a newline\n" unless $text =~ /\n\z/;
    my (%samples, %types, %help, %done, $current);
    my $n = 0;
    for my $line (split /\n/, $text) {
        $n++;
        my $where = "line $n: '$line'";
        if ($line =~ /^# (HELP|TYPE) ($NAME) (.+)$/) {
            my ($kind, $name, $rest) = ($1, $2, $3);
            die "$where: $kind for a family whose samples are done\n" if $done{$name};
            if ($current && $current ne $name) { $done{$current} = 1 }
            $current = $name;
            if ($kind eq 'TYPE') {
                die "$where: second TYPE\n" if $types{$name};
                die "$where: unknown type\n" unless $rest =~ /^(counter|gauge|histogram|summary|untyped)$/;
                die "$where: a counter's name must end in _total\n" if $rest eq 'counter' && $name !~ /_total$/;
                $types{$name} = $rest;
            } else {
                die "$where: second HELP\n" if $help{$name}++;
            }
            next;
        }
        die "$where: not a sample\n" unless $line =~ /^($NAME)(\{.*\})? ($VALUE)$/;
        my ($name, $labels, $value) = ($1, $2 // '', $3);
        die "$where: sample without a TYPE before it\n" unless $types{$name};
        die "$where: samples of $name are not contiguous\n" if $done{$name} || ($current && $current ne $name);
        my $series = $name . _labels($labels, $where);
        die "$where: series twice\n" if exists $samples{$series};
        die "$where: a counter is negative\n" if $types{$name} eq 'counter' && $value < 0;
        $samples{$series} = $value;
    }
    return { samples => \%samples, types => \%types };
}

# '{a="x",b="y"}' -> the same, checked, with label values unescaped.
sub _labels {
    my ($text, $where) = @_;
    return '' if $text eq '';
    my $rest = substr $text, 1, -1;
    my @pairs;
    while (length $rest) {
        $rest =~ s/^($LABEL)="((?:[^"\\\n]|\\[\\"n])*)"// or die "$where: bad label\n";
        my ($label, $value) = ($1, $2);
        $value =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
        push @pairs, "$label=\"$value\"";
        last if $rest eq '';
        $rest =~ s/^,// or die "$where: labels not separated by commas\n";
        die "$where: trailing comma\n" if $rest eq '';
    }
    return '{' . join(',', @pairs) . '}';
}

1;
