# `nginx -t` accepts a valid configuration and rejects each bad directive
# value, naming the value in its message.

use SegEdge::Test;

my $server = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            %%LOCATION%%
            return 200 "[$segedge_segments][$segedge_visitor][$segedge_generation]\n";
        }
    }
EOF

# http-level lines, location-level lines
sub config {
    my ($http, $location) = @_;
    my $text = $server;
    $text =~ s/%%LOCATION%%/$location \/\/ ''/e;
    return "$http\n$text";
}

{
    my ($rc, $out) = nginx_t(config(<<'EOF', 'segedge on; segedge_cookie visitor_id;'));
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 250ms;
    segedge off;
    segedge_cookie sid;
EOF
    is $rc, 0, 'valid config passes nginx -t' or diag $out;
    like $out, qr/test is successful/, 'nginx says so';
}
{
    my ($rc, $out) = nginx_t(config('', 'segedge on;'));
    is $rc, 0, 'segedge on without segedge_db is valid (serves unpersonalised)' or diag $out;
}
{
    my ($rc, $out) = nginx_t(config("segedge_db_check_interval 5s;\nsegedge_db db;", ''));
    is $rc, 0, 'relative db path and seconds interval are valid' or diag $out;
}
{
    my ($rc, $out) = nginx_t(config('', "segedge_cookie Seg-Id_2;\nsegedge off;"));
    is $rc, 0, 'cookie name with letters, digits, - and _ is valid' or diag $out;
}

# [what, http-level lines, location-level lines, text the error must contain]
my @bad = (
    ['segedge maybe', '', 'segedge maybe;', 'maybe'],
    ['segedge 1', 'segedge 1;', '', '"1"'],
    ['segedge with two values', '', 'segedge on off;', 'segedge'],
    ['segedge_cookie with ;', '', 'segedge_cookie "bad;name";', 'bad;name'],
    ['segedge_cookie with space', '', 'segedge_cookie "bad name";', 'bad name'],
    ['segedge_cookie with =', 'segedge_cookie "a=b";', '', 'a=b'],
    ['segedge_cookie empty', '', 'segedge_cookie "";', '""'],
    ['segedge_db_check_interval abc', 'segedge_db_check_interval abc;', '', 'abc'],
    ['segedge_db_check_interval -1s', 'segedge_db_check_interval -1s;', '', '-1s'],
    ['segedge_db empty', 'segedge_db "";', '', '""'],
    ['segedge_db twice', "segedge_db /a;\nsegedge_db /b;", '', 'segedge_db'],
    ['segedge_db in a location', '', 'segedge_db /x;', 'segedge_db'],
    ['segedge_db_check_interval in a location', '', 'segedge_db_check_interval 1s;',
     'segedge_db_check_interval'],
);

for my $case (@bad) {
    my ($what, $http, $location, $needle) = @$case;
    nginx_t_fails($what, config($http, $location), $needle);
}

done_testing;
