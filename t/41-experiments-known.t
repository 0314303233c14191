# The bucketing id: the anonymous id whenever the request has one, the
# verified known id only when there is no anonymous id at all. So a
# logged-in visitor keeps the variant of their browser, and a known visitor
# who never had an anonymous id is still assigned deterministically.

use SegEdge::Test;
use Digest::SHA qw(sha256);

# As README's "Experiments" documents: first 8 bytes of SHA-256(salt ":" id),
# big-endian, mod 10,000 (split in two halves to stay exact).
sub bucket {
    my ($salt, $id) = @_;
    my ($hi, $lo) = unpack 'NN', sha256("$salt:$id");
    return (($hi % 10000) * (4294967296 % 10000) + $lo) % 10000;
}

# One experiment, no layer holdout, ten equal variants: the variant names
# the bucket's decile, so a wrong bucketing id shows up nine times in ten.
my @variants = map { "v$_" } 0 .. 9;
sub expected { 'v' . int(bucket('known-test', $_[0]) / 1000) }

my $d = testdir();
write_text("$d/keys", "k1 hex:" . ('a1' x 32) . "\n");
chmod 0600, "$d/keys";

my @customers = map { "customer-$_" } 1 .. 20;
my $browser = visitor_id('browser');
my $profiles = join '', map({ qq({"id":"$_","kind":"known","segments":["vip"]}\n) } @customers),
    qq({"id":"$browser","kind":"anonymous","segments":["vip"]}\n);
my $experiment = '{"id":"known_test","status":"running","salt":"known-test","variants":['
    . join(',', map { qq({"name":"$_","weight":1000}) } @variants) . "]}\n";

my ($rc, $out) = import_snapshot('db', qq({"name":"vip","priority":100}\n), $profiles, 'known',
                                 undef, undef, $experiment);
is $rc, 0, 'imported' or diag $out;

start_nginx(<<'EOF');
    segedge_db %%TESTDIR%%/db;
    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        segedge_keys %%TESTDIR%%/keys;
        location / {
            add_header X-Variant "[$segedge_variant_known_test]" always;
            add_header X-Known $segedge_known always;
            return 200 "ok\n";
        }
    }
EOF

sub signed {
    my ($id) = @_;
    my ($rc, $out) = segsync('sign', '--keys', "$d/keys", '--id', $id);
    die "segsync sign: $out" if $rc;
    chomp $out;
    return $out;
}

my (@wrong_known, @wrong_login);
for my $customer (@customers) {
    my $known = 'segedge_known=' . signed($customer);

    my $r = http_get('/', Cookie => $known);
    push @wrong_known, "$customer: $r->{status} " . $r->value('X-Variant')
        unless $r->value('X-Known') eq '1' && $r->value('X-Variant') eq '[' . expected($customer) . ']';

    $r = http_get('/', Cookie => "segedge_id=$browser; $known");
    push @wrong_login, "$customer: " . $r->value('X-Variant')
        unless $r->value('X-Variant') eq '[' . expected($browser) . ']';
}
is scalar(@wrong_known), 0, 'a known visitor without an anonymous id is bucketed on the known id'
    or diag join "\n", @wrong_known;
is scalar(@wrong_login), 0, 'with an anonymous id too, the anonymous id decides (stable across login)'
    or diag join "\n", @wrong_login;

my %distinct = map { expected($_) => 1 } @customers;
cmp_ok scalar(keys %distinct), '>', 1, 'the customers fall in different variants (the test can tell ids apart)';

done_testing;
