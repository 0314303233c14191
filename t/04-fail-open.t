# Fail open: whatever is wrong with the database or the cookie, the request is
# served normally with empty variables, and the cause is logged once (rate
# limited) with a "segedge:" error line.

use SegEdge::Test;
use Cwd qw(abs_path);
use File::Path qw(make_path);

my $SEG = <<'SEG';
{"name":"vip","description":"Top customers","owner":"crm","priority":100}
{"name":"newsletter","description":"Subscribed","owner":"email","priority":10}
SEG
my $PROF = <<'PROF';
{"id":"di0xAAAAAAAAAAAAAAAAAA","kind":"anonymous","segments":["newsletter","vip"]}
PROF

my $d = testdir();
my $cookie = 'segedge_id=' . visitor_id('v-1');    # di0xAAAAAAAAAAAAAAAAAA

sub server_conf {
    my ($db) = @_;
    return <<"EOF";
    segedge_db %%TESTDIR%%/$db;
    segedge_db_check_interval 100ms;
    large_client_header_buffers 4 64k;

    server {
        listen 127.0.0.1:%%PORT%%;
        segedge on;
        location / {
            add_header X-Seg \$segedge_segments always;
            add_header X-Visitor \$segedge_visitor always;
            add_header X-Gen \$segedge_generation always;
            return 200 "default content\\n";
        }
    }
EOF
}

# segedge fail-open lines logged since byte offset $from: "error" for the
# server's own faults, "info" for client-caused ones (like nginx core)
sub segedge_errors {
    my ($from) = @_;
    return grep { /\[(?:error|info)\].*segedge: .*unpersonalised/ } split /\n/, error_log_text($from);
}

# Sends $n requests; checks they are all served unpersonalised.
sub unpersonalised {
    my ($what, $n, @headers) = @_;
    my @bad;
    for (1 .. $n) {
        my $r = http_get('/', @headers);
        push @bad, join ' ', $r->status // 'none', map { "$_=" . $r->value($_) } qw(X-Seg X-Gen)
            if ($r->status // 0) != 200 || $r->body ne "default content\n"
               || $r->value('X-Seg') ne '' || $r->value('X-Gen') ne '';
    }
    is scalar(@bad), 0, "$what: $n requests served with 200, default content, empty variables"
        or diag join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)];
}

sub one_error_line {
    my ($what, $from, $like) = @_;
    my @lines = segedge_errors($from);
    is scalar(@lines), 1, "$what: exactly one segedge error line" or diag join "\n", @lines;
    like $lines[0] // '', $like, "$what: the line says why" if $like;
}

# A published snapshot to break: returns the directory current points to.
sub good_snapshot {
    my ($db) = @_;
    my ($rc, $out) = import_snapshot($db, $SEG, $PROF);
    is $rc, 0, "$db: snapshot imported" or diag $out;
    return abs_path("$d/$db/current");
}

# --- no database directory at all; then one appears
{
    my $mark = error_log_size();
    start_nginx(server_conf('db-none'));
    unpersonalised('no database dir', 20, Cookie => $cookie);
    one_error_line('no database dir (20 requests)', $mark, qr/db-none/);

    my ($rc, $out) = import_snapshot('db-none', $SEG, $PROF);
    is $rc, 0, 'snapshot published into the missing dir' or diag $out;
    my $r;
    wait_until(sub { $r = http_get('/', Cookie => $cookie); $r->value('X-Seg') ne '' }, 10);
    is $r->status, 200, 'after publishing: 200';
    is $r->value('X-Seg'), 'vip,newsletter', 'after publishing: picked up without reload';
    like $r->value('X-Gen'), qr/^\d+$/, 'after publishing: a generation';
    stop_nginx();
}

# --- current points to a directory that is not an LMDB environment
{
    make_path("$d/db-notlmdb/snapshots/snap-bogus");
    write_text("$d/db-notlmdb/snapshots/snap-bogus/README", "not a database\n");
    symlink 'snapshots/snap-bogus', "$d/db-notlmdb/current" or die "symlink: $!";
    my $mark = error_log_size();
    start_nginx(server_conf('db-notlmdb'));
    unpersonalised('current is not an LMDB env', 10, Cookie => $cookie);
    one_error_line('current is not an LMDB env', $mark, qr/snap-bogus/);
    stop_nginx();
}

# --- current points to a regular file
{
    make_path("$d/db-file/snapshots");
    write_text("$d/db-file/snapshots/snap-file", "not a directory\n");
    symlink 'snapshots/snap-file', "$d/db-file/current" or die "symlink: $!";
    my $mark = error_log_size();
    start_nginx(server_conf('db-file'));
    unpersonalised('current is a regular file', 10, Cookie => $cookie);
    one_error_line('current is a regular file', $mark);
    stop_nginx();
}

# --- data.mdb overwritten with zeros (same size)
{
    my $snap = good_snapshot('db-zeroed');
    my $size = -s "$snap/data.mdb";
    ok $size, 'db-zeroed: data.mdb exists';
    write_text("$snap/data.mdb", "\0" x $size);
    unlink "$snap/lock.mdb";
    my $mark = error_log_size();
    start_nginx(server_conf('db-zeroed'));
    unpersonalised('zeroed data.mdb', 10, Cookie => $cookie);
    one_error_line('zeroed data.mdb', $mark);
    stop_nginx();
}

# --- data.mdb truncated (meta pages intact, data pages gone)
{
    my $snap = good_snapshot('db-truncated');
    my $size = -s "$snap/data.mdb";
    truncate "$snap/data.mdb", $size > 8192 ? 8192 : int($size / 2) or die "truncate: $!";
    unlink "$snap/lock.mdb";
    my $mark = error_log_size();
    start_nginx(server_conf('db-truncated'));
    unpersonalised('truncated data.mdb', 10, Cookie => $cookie);
    cmp_ok scalar(segedge_errors($mark)), '>=', 1, 'truncated data.mdb: logged';
    stop_nginx();
}

# --- a snapshot of another schema version
SKIP: {
    my ($dump_bin) = grep { -x } '/usr/bin/mdb_dump';
    my ($load_bin) = grep { -x } '/usr/bin/mdb_load';
    skip 'mdb_dump/mdb_load (lmdb-utils) not installed', 4 unless $dump_bin && $load_bin;
    my $snap = good_snapshot('db-version');
    my $new = "$d/db-version/snapshots/snap-v99";
    make_path($new);
    my $ok = 1;
    for my $db ('meta', 'segments', 'profiles') {
        my ($rc, $dump) = run_cmd($dump_bin, '-s', $db, $snap);
        $ok &&= $rc == 0;
        # schema_version: u32 little-endian; make it 99
        $dump =~ s/^( 736368656d615f76657273696f6e\n )[0-9a-f]{8}$/${1}63000000/m if $db eq 'meta';
        write_text("$d/dump-$db", $dump);
        ($rc, my $out) = run_cmd($load_bin, '-s', $db, '-f', "$d/dump-$db", $new);
        $ok &&= $rc == 0;
        diag $out if $rc;
    }
    ok $ok, 'db-version: snapshot rewritten with schema version 99';
    unlink "$d/db-version/current";
    symlink 'snapshots/snap-v99', "$d/db-version/current" or die "symlink: $!";
    my $mark = error_log_size();
    start_nginx(server_conf('db-version'));
    unpersonalised('wrong schema version', 10, Cookie => $cookie);
    one_error_line('wrong schema version', $mark, qr/version/);
    stop_nginx();
}

# --- Cookie header over 16 KB, with a good database
{
    my $mark = error_log_size();
    start_nginx(server_conf('db-none'));
    my $r = http_get('/', Cookie => $cookie);
    is $r->value('X-Seg'), 'vip,newsletter', 'good database: segments for a normal cookie';

    my $padding = join '; ', map { sprintf 'pad%03d=%s', $_, 'x' x 200 } 1 .. 100;
    for my $big ("$cookie; $padding", "$padding; $cookie") {
        cmp_ok length($big), '>', 20000, 'a Cookie header over 20 KB';
        my $r = http_get('/', Cookie => $big);
        is $r->status, 200, 'huge Cookie header: 200';
        is $r->body, "default content\n", 'huge Cookie header: default content';
        is $r->value('X-Seg'), '', 'huge Cookie header: empty segments';
        is $r->value('X-Visitor'), '', 'huge Cookie header: empty visitor';
    }
    # the limit is on the total over all Cookie headers
    my @split = map { sprintf 'pad%03d=%s', $_, 'x' x 200 } 1 .. 100;
    $r = http_get('/', Cookie => [$cookie, @split]);
    is $r->status, 200, 'many Cookie headers over 16 KB in total: 200';
    is $r->value('X-Seg'), '', 'many Cookie headers over 16 KB in total: empty segments';
    one_error_line('huge Cookie headers (3 requests)', $mark, qr/[Cc]ookie/);

    $r = http_get('/', Cookie => $cookie);
    is $r->value('X-Seg'), 'vip,newsletter', 'a normal cookie afterwards is personalised';
    stop_nginx();
}

# --- malformed cookies
{
    my $mark = error_log_size();
    start_nginx(server_conf('db-none'));
    for my $bad ('v-1:x', 'v 1', visitor_id('v-1') . '!', 'a' x 129, '') {
        my $r = http_get('/', Cookie => "segedge_id=$bad");
        is $r->status, 200, "malformed cookie '$bad': 200";
        is $r->value('X-Seg') . '|' . $r->value('X-Visitor'), '|',
           "malformed cookie '$bad': empty variables";
    }
    one_error_line('malformed cookies (5 requests)', $mark);
    stop_nginx();
}

done_testing;
