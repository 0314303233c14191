# segedge_max_staleness: a snapshot built too long ago (published with
# segsync import --built-at) is flagged in $segedge_stale and either still
# served ("serve") or not used ("default": unpersonalised, counted as a
# fail-open); one log line per interval; a fresh snapshot clears it.

use SegEdge::Test;
use SegEdge::Prometheus qw(parse_exposition);

my $SEG = qq({"name":"vip","description":"Top","owner":"crm","priority":1}\n);
my $ID = visitor_id('v-vip');
my $PROF = qq({"id":"$ID","kind":"anonymous","segments":["vip"]}\n);
my $d = testdir();
write_text("$d/segments.ndjson", $SEG);
write_text("$d/profiles.ndjson", $PROF);

sub publish {
    my @built_at = @_ ? ('--built-at', $_[0]) : ();
    my ($rc, $out) = segsync('import', '--db', "$d/db", '--segments', "$d/segments.ndjson",
                             '--profiles', "$d/profiles.ndjson", @built_at);
    is $rc, 0, 'published' . (@built_at ? " built at $_[0]" : '') or diag $out;
}

my $CONF = <<'CONF';
    segedge_db %%TESTDIR%%/db;
    segedge_db_check_interval 0;
    segedge_metrics_zone segedge_metrics 1m;
    segedge_max_staleness 10m MODE;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            return 200 "stale=$segedge_stale seg=$segedge_segments\n";
        }
        location = /status {
            segedge off;
            segedge_status;
        }
    }
CONF
sub conf { (my $c = $CONF) =~ s/MODE/$_[0]/; $c }

sub visit { http_get('/', Cookie => "segedge_id=$ID")->body }
sub metrics { parse_exposition(http_get('/status')->body)->{samples} }

publish(time - 3600);
start_nginx(conf('serve'));

my $size = error_log_size();
is visit(), "stale=1 seg=vip\n", 'serve: stale and still personalised' for 1 .. 3;
my @logged = error_log_text($size) =~ /more than segedge_max_staleness 600 s; still serving it/g;
is scalar @logged, 1, 'serve: logged once';
my $m = metrics();
is $m->{segedge_stale_requests_total}, 3, 'stale requests counted';
is $m->{segedge_snapshot_stale}, 1, 'snapshot flagged stale';
is $m->{'segedge_fail_open_total{cause="stale"}'}, 0, 'serve is not a fail-open';

reload_nginx(conf('default'));
$size = error_log_size();
is visit(), "stale=1 seg=\n", 'default: stale and unpersonalised' for 1 .. 2;
@logged = error_log_text($size) =~ /more than segedge_max_staleness 600 s; serving unpersonalised/g;
is scalar @logged, 1, 'default: logged once';
$m = metrics();
is $m->{'segedge_fail_open_total{cause="stale"}'}, 2, 'default: each request a stale fail-open';
is $m->{segedge_stale_requests_total}, 5, 'stale requests keep counting';

publish();
is visit(), "stale=0 seg=vip\n", 'a fresh snapshot is personalised again';
is metrics()->{segedge_snapshot_stale}, 0, 'and not flagged';

nginx_t_fails('bad time', 'segedge_max_staleness soon;', 'invalid staleness "soon"');
nginx_t_fails('zero', 'segedge_max_staleness 0;', 'invalid staleness "0"');
nginx_t_fails('bad mode', 'segedge_max_staleness 1h ignore;', 'invalid stale mode "ignore"');

my ($rc, $out) = segsync('import', '--db', "$d/db", '--segments', "$d/segments.ndjson",
                         '--profiles', "$d/profiles.ndjson", '--built-at', 'yesterday');
is $rc, 2, '--built-at takes unix seconds';
like $out, qr/--built-at takes a whole number/, 'and says so';

done_testing;
