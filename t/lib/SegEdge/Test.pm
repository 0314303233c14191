package SegEdge::Test;

# Integration test harness: a real nginx with the built segedge module.
#
#   use SegEdge::Test;    # also gives strict, warnings and Test::More
#
#   my $v1 = visitor_id('v-1');    # a canonical anonymous id
#   my ($rc, $out) = import_snapshot('db', <<'SEG', <<"PROF");
#   {"name":"vip","description":"big spenders","owner":"crm","priority":100}
#   SEG
#   {"id":"$v1","kind":"anonymous","segments":["vip"]}
#   PROF
#   is $rc, 0, 'imported' or diag $out;
#
#   start_nginx(<<'EOF');              # the inside of http { ... }
#       segedge_db %%TESTDIR%%/db;
#       server {
#           listen 127.0.0.1:%%PORT%%;
#           location / {
#               segedge on;
#               add_header X-Seg $segedge_segments always;
#               return 200 "hello\n";
#           }
#       }
#   EOF
#
#   my $r = http_get('/', Cookie => "segedge_id=$v1");
#   is $r->status, 200;
#   is $r->value('X-Seg'), 'vip';
#   done_testing;     # stops nginx and checks error.log, then Test::More's
#
#   prove -I t/lib t/
#
# Environment: SEGEDGE_BUILD (the CMake build dir to test, default build/;
# relative to the repository unless absolute), SEGEDGE_MODULE (the .so) and
# SEGSYNC (the importer) to override single files, NGINX (the binary),
# SEGEDGE_KEEP=1 keeps the per-file temp dir (its path is printed).
#
# Sanitizer builds (SEGEDGE_BUILD=build-asan, README "Sanitizers") are
# recognised by the module linking libasan: nginx then runs with the ASan
# runtime preloaded (Debian's binary is not instrumented) and leak detection
# off (nginx exits without freeing its pools), and every ASan/UBSan report
# of nginx, segsync or anything else instrumented goes to TESTDIR/sanitizer.PID,
# which the final check fails on.
#
# Placeholders in templates: %%PORT%% (= %%PORT1%%), %%PORT2%% (a second free
# port), %%TESTDIR%% (no trailing slash), %%MODULE%%. start_nginx/nginx_t take
# options: workers => N (worker_processes, default 1), main => '...' (lines
# at the main level, e.g. env or worker_rlimit_nofile), log_level => 'info',
# user => 'nobody nogroup' (the workers' user; default root when run as root).
#
# Functions (all exported):
#   start_nginx($http, %opts) / stop_nginx() / reload_nginx([$http, %opts])
#   nginx_t($http, %opts)          -> (exit status, output) of `nginx -t`
#   nginx_t_fails($what, $http, @needles)  tests that `nginx -t` fails with an
#                                  [emerg] naming each needle; returns the output
#   http($raw)                     -> the raw response, for odd requests
#   http_get($path, %headers)      -> response: ->status ->header($n) ->value($n)
#   http_get10(...), http_get09($path)   HTTP/1.0 and HTTP/0.9 (body only)
#   import_snapshot($db, $segments_ndjson, $profiles_ndjson,
#                   [$source, $aliases_ndjson, $blocks_ndjson,
#                    $experiments_ndjson])
#                                  -> (exit status, output) of `segsync import`
#   visitor_id($label)             -> the canonical anonymous id that decodes to
#                                     $label (its first 16 bytes, zero-padded)
#   segsync(@args)                 -> (exit status, output) of `segsync @args`
#   start_upstream($port, $handler)  a forked loopback HTTP server: calls
#                                  $handler->($socket, $request_head) per
#                                  connection, each in its own process
#   outdir()                       build/test-output/<test name>/, kept after
#                                  the run for artefacts such as screenshots
#                                  (SEGEDGE_TEST_OUTPUT overrides build/test-output)
#   skip_all($reason)              skips the whole file (nothing to check after)
#   repo_dir()                     the repository (for README.md and the like)
#   sanitizer_build()              true when testing an ASan + UBSan build
#   sanitizer_reports()            the report files' names and lines so far
#   testdir() port([2]) error_log_size() error_log_text([$from]) wait_until(...)
#   read_text($path) write_text($path, $text) run_cmd(@cmd) worker_pids()
#   spawn($log, @cmd)              -> pid of a background command (output
#                                     appended to $log); stopped at the end
#   drop_file($dir, $name, $text)  writes a dot-file in $dir, renames it to $name
#
# Before the file ends (done_testing, or an END block if the file dies or
# never calls it) nginx is stopped and one more test asserts that error.log
# holds no [alert], [emerg], crash or sanitizer report.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64url);
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

require Exporter;
our @ISA = ('Exporter');
our @EXPORT = qw(
    repo_dir testdir outdir port module_path segsync_path nginx_path
    write_config start_nginx stop_nginx reload_nginx nginx_t nginx_t_fails nginx_pid worker_pids
    http http_get http_get10 http_get09 parse_response
    import_snapshot visitor_id segsync run_cmd error_log_size error_log_text read_text write_text
    wait_until done_testing spawn drop_file start_upstream skip_all
    sanitizer_build sanitizer_reports
);

my $REPO = abs_path(dirname(__FILE__) . '/../../..');
my $BUILD = $ENV{SEGEDGE_BUILD} // 'build';
$BUILD = "$REPO/$BUILD" unless $BUILD =~ m{^/};
my $MODULE = $ENV{SEGEDGE_MODULE} // "$BUILD/nginx/objs/ngx_http_segedge_module.so";
my $SEGSYNC = $ENV{SEGSYNC} // "$BUILD/segsync";
my $NGINX = $ENV{NGINX} // '/usr/sbin/nginx';
my $ASAN_RUNTIME;   # set for a sanitizer build: what nginx preloads (LD_PRELOAD)

# Patterns that must never appear in error.log.
my @FORBIDDEN = ('[alert]', '[emerg]', 'exited on signal', 'AddressSanitizer',
                 'runtime error:', 'LeakSanitizer');

my $owner_pid = $$;     # forked children must not stop nginx or run checks
my $finished = 0;
my ($dir, @ports, $running, $conf_serial, $feed_serial, @spawned, @upstreams);

sub import {
    my $caller = caller;
    strict->import;
    warnings->import;
    # Test::More's functions, except done_testing: ours wraps it.
    eval "package $caller; Test::More->import(import => ['!done_testing']); 1" or die $@;
    __PACKAGE__->export_to_level(1, __PACKAGE__, @EXPORT);
    my $problem = !-f $MODULE ? "segedge module not found at $MODULE"
                : !-x $NGINX  ? "nginx binary not found at $NGINX"
                :               undef;
    if ($problem) {
        $finished = 1;
        Test::More::BAIL_OUT("$problem (build: cmake -S . -B build && cmake --build build;"
                             . " or set SEGEDGE_BUILD / SEGEDGE_MODULE / NGINX)");
    }
    _sanitizer_setup();
}

# The ASan runtime the module was linked against, if it was, and the C++
# runtime: ASan finds what it intercepts (__cxa_throw) when it starts, so
# libstdc++ must be loaded by then, not later with the module.
sub _asan_runtime {
    my ($status, $out) = run_cmd('ldd', $MODULE);
    my %lib = $out =~ m{^\s*(libasan|libstdc\+\+)\.so\S*\s+=>\s+(/\S+)}mg;
    return $lib{libasan} && $lib{'libstdc++'} ? "$lib{libasan} $lib{'libstdc++'}" : undef;
}

sub _sanitizer_setup {
    $ASAN_RUNTIME = _asan_runtime() or return;
    my $log = 'log_path=' . testdir() . '/sanitizer';
    for my $var ('ASAN_OPTIONS', 'UBSAN_OPTIONS') {
        $ENV{$var} = join ':', grep { length } $ENV{$var} // '', $log, 'print_stacktrace=1';
    }
}

# Runs nginx with @args; a sanitizer build's runtime comes first in nginx
# (and its workers) only.
sub _run_nginx {
    return run_cmd($NGINX, @_) unless $ASAN_RUNTIME;
    local $ENV{LD_PRELOAD} = $ASAN_RUNTIME;
    # detect_stack_use_after_return: a view of a handler's stack kept in
    # the request ctx and read in a later phase.
    local $ENV{ASAN_OPTIONS} = "$ENV{ASAN_OPTIONS}:detect_leaks=0:detect_stack_use_after_return=1";
    return run_cmd($NGINX, @_);
}

sub sanitizer_build { $ASAN_RUNTIME ? 1 : 0 }

sub sanitizer_reports {
    return () unless $ASAN_RUNTIME && $dir;
    return map { my $text = read_text($_) // ''; ("$_:", split /\n/, $text) }
           sort glob "$dir/sanitizer.*";
}

sub repo_dir     { $REPO }
sub module_path  { $MODULE }
sub segsync_path { $SEGSYNC }
sub nginx_path   { $NGINX }

sub testdir {
    return $dir if $dir;
    my $keep = $ENV{SEGEDGE_KEEP} ? 1 : 0;
    $dir = tempdir('segedge-t-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    chmod 0755, $dir;
    Test::More::diag("test dir: $dir") if $keep;
    return $dir;
}

sub outdir {
    my $name = $0 =~ m{([^/]+?)(?:\.t)?$} ? $1 : 'test';
    my $out = ($ENV{SEGEDGE_TEST_OUTPUT} // "$REPO/build/test-output") . "/$name";
    make_path($out);
    return $out;
}

# port() or port(1): the main port; port(2): a second one.
sub port {
    my $n = shift // 1;
    while (@ports < $n) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp', Listen => 1)
            or die "cannot pick a free port: $!";
        my $p = $s->sockport;
        close $s;
        push @ports, $p unless grep { $_ == $p } @ports;
    }
    return $ports[$n - 1];
}

# ---------------------------------------------------------------- config

sub _expand {
    my ($text) = @_;
    my $d = testdir();
    $text =~ s/%%PORT(\d?)%%/port($1 || 1)/ge;
    $text =~ s/%%TESTDIR%%/$d/g;
    $text =~ s/%%MODULE%%/$MODULE/g;
    return $text;
}

sub _config {
    my ($http, %opts) = @_;
    my $d = testdir();
    my $workers = $opts{workers} // 1;
    my $level = $opts{log_level} // 'debug';
    my $errlog = $opts{error_log} // "$d/error.log";
    my $user = $opts{user} ? "user $opts{user};\n" : $> == 0 ? "user root root;\n" : '';
    my $main = _expand($opts{main} // '');
    $http = _expand($http);
    return <<"EOF";
# generated by SegEdge::Test
load_module $MODULE;
daemon on;
master_process on;
worker_processes $workers;
${user}pid $d/nginx.pid;
lock_file $d/nginx.lock;
error_log $errlog $level;
$main
events { worker_connections 256; }

http {
    access_log $d/access.log;
    client_body_temp_path $d/client_body_temp;
    proxy_temp_path $d/proxy_temp;
    fastcgi_temp_path $d/fastcgi_temp;
    uwsgi_temp_path $d/uwsgi_temp;
    scgi_temp_path $d/scgi_temp;

$http
}
EOF
}

# Writes TESTDIR/nginx.conf (or $opts{file}) and returns its path.
sub write_config {
    my ($http, %opts) = @_;
    my $path = $opts{file} // testdir() . '/nginx.conf';
    write_text($path, _config($http, %opts));
    return $path;
}

# `nginx -t` on a config built like start_nginx's; returns (status, output).
sub nginx_t {
    my ($http, %opts) = @_;
    my $d = testdir();
    my $n = ++$conf_serial;
    my $conf = write_config($http, %opts, file => "$d/nginx-t-$n.conf",
                            error_log => "$d/nginx-t.log");
    return _run_nginx('-p', "$d/", '-c', $conf, '-t');
}

sub nginx_t_fails {
    my ($what, $http, @needles) = @_;
    my ($rc, $out) = nginx_t($http);
    Test::More::isnt($rc, 0, "$what: nginx -t fails");
    Test::More::like($out, qr/\[emerg\]/, "$what: an emerg message");
    for my $needle (@needles) {
        Test::More::ok(index($out, $needle) >= 0, "$what: message names '$needle'")
            or Test::More::diag($out);
    }
    Test::More::unlike($out, qr/test is successful/, "$what: not reported as successful");
    return $out;
}

# ---------------------------------------------------------------- process

# Runs a command; returns (exit status, stdout+stderr). A signal gives 128+N.
sub run_cmd {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec @cmd or do { print "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $status = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($status, $out);
}

sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec @cmd or POSIX::_exit(127);
    }
    push @spawned, $pid;
    return $pid;
}

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && kill 0, $pid;
    # A daemon is reparented to PID 1, which may not reap it here.
    my $stat = read_text("/proc/$pid/stat") // return 0;
    return $stat !~ /\) Z /;
}

sub nginx_pid {
    my $text = read_text(testdir() . '/nginx.pid') // return undef;
    return $text =~ /(\d+)/ ? $1 : undef;
}

# The master's live children (workers; cache helpers too, if configured).
sub worker_pids {
    my $master = shift // nginx_pid() // return ();
    my @pids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $text = read_text($stat) // next;
        push @pids, $1 if $text =~ /^(\d+) \(.*\) ([^Z]) (\d+) / && $3 == $master;
    }
    return @pids;
}

sub wait_until {
    my ($cond, $timeout, $step) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        return 1 if $cond->();
        return 0 if time > $deadline;
        sleep($step // 0.05);
    }
}

sub _port_answers {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => port(),
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# Writes the config, starts nginx, waits until the main port answers.
sub start_nginx {
    my ($http, %opts) = @_;
    die "nginx is already running\n" if $running;
    my $d = testdir();
    my $conf = write_config($http, %opts);
    my ($status, $out) = _run_nginx('-p', "$d/", '-c', $conf);
    die "nginx failed to start (exit $status):\n$out" if $status;
    $running = 1;
    wait_until(sub { nginx_pid() && _port_answers() }, 10)
        or die "nginx did not answer on port " . port() . "\n";
    return 1;
}

sub stop_nginx {
    return unless $running;
    $running = 0;
    my $pid = nginx_pid() or return;
    for my $sig ('QUIT', 'TERM', 'KILL') {
        kill $sig, $pid;
        return 1 if wait_until(sub { !_alive($pid) }, $sig eq 'KILL' ? 5 : 10);
        Test::More::diag("nginx master $pid survived SIG$sig");
    }
    return 0;
}

# Sends a reload (rewriting the config first when a template is given), then
# waits for a new worker and for the old ones to finish.
sub reload_nginx {
    my ($http, %opts) = @_;
    die "nginx is not running\n" unless $running;
    my $d = testdir();
    my $conf = defined $http ? write_config($http, %opts) : "$d/nginx.conf";
    my @old = worker_pids();
    my %old = map { $_ => 1 } @old;
    my ($status, $out) = _run_nginx('-p', "$d/", '-c', $conf, '-s', 'reload');
    die "nginx -s reload failed (exit $status):\n$out" if $status;
    wait_until(sub { grep { !$old{$_} } worker_pids() }, 10)
        or die "no new nginx worker after reload\n";
    wait_until(sub { !grep { _alive($_) } @old }, 10)
        or Test::More::diag("old workers still running after reload: @old");
    wait_until(\&_port_answers, 10) or die "nginx did not answer after reload\n";
    return 1;
}

# ---------------------------------------------------------------- http

# Sends raw bytes, returns everything read until the server closes (or
# $opts{timeout} seconds, default 10). Requests should carry
# "Connection: close" unless they are HTTP/1.0 or 0.9.
sub http {
    my ($request, %opts) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $opts{port} // port(),
                                  Proto => 'tcp', Timeout => 5)
        or die "cannot connect to 127.0.0.1:" . ($opts{port} // port()) . ": $!\n";
    binmode $s;
    my $off = 0;
    while ($off < length $request) {
        my $n = syswrite($s, $request, length($request) - $off, $off);
        die "write: $!\n" unless defined $n;
        $off += $n;
    }
    my ($response, $sel) = ('', IO::Select->new($s));
    my $deadline = time + ($opts{timeout} // 10);
    while (time < $deadline) {
        next unless $sel->can_read(0.2);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;     # EOF (or reset)
        $response .= $buf;
    }
    close $s;
    return $response;
}

sub _request_line_and_headers {
    my ($version, $path, @headers) = @_;
    my %given;
    my $text = '';
    while (my ($name, $value) = splice @headers, 0, 2) {
        $given{lc $name} = 1;
        $text .= "$name: $_\r\n" for ref $value ? @$value : ($value);
    }
    $text = "Host: localhost\r\n$text" if $version eq '1.1' && !$given{host};
    $text .= "Connection: close\r\n" if $version eq '1.1' && !$given{connection};
    return "GET $path HTTP/$version\r\n$text\r\n";
}

# GET with HTTP/1.1 (Host and Connection: close added unless given). Header
# values may be array refs to send a header several times. Returns a
# SegEdge::Test::Response.
sub http_get   { parse_response(http(_request_line_and_headers('1.1', @_))) }
sub http_get10 { parse_response(http(_request_line_and_headers('1.0', @_))) }

# HTTP/0.9: no headers either way; the response is the body only.
sub http_get09 {
    my ($path) = @_;
    my $raw = http("GET $path\r\n");
    return bless { raw => $raw, status => undef, headers => [], body => $raw },
                 'SegEdge::Test::Response';
}

sub parse_response {
    my ($raw) = @_;
    my $r = bless { raw => $raw, status => undef, headers => [], body => '' },
                  'SegEdge::Test::Response';
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return $r unless defined $head && $head =~ s{^HTTP/(\d\.\d) (\d{3})[^\r\n]*(?:\r\n|$)}{};
    @$r{qw(version status)} = ($1, $2);
    for my $line (split /\r\n/, $head) {
        push @{ $r->{headers} }, [lc $1, $2] if $line =~ /^([^:\s]+):[ \t]*(.*?)[ \t]*$/;
    }
    $body //= '';
    if (lc($r->header('Transfer-Encoding') // '') eq 'chunked') {
        my $decoded = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $size = hex $1;
            last if $size == 0;
            $decoded .= substr($body, 0, $size, '');
            $body =~ s/^\r\n//;
        }
        $body = $decoded;
    }
    $r->{body} = $body;
    return $r;
}

# Forks a server on 127.0.0.1:$port in a process group of its own, so that
# it and its per-connection children are stopped together at the end.
sub start_upstream {
    my ($port, $handler) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                       Proto => 'tcp', Listen => 64, ReuseAddr => 1)
        or die "cannot listen on 127.0.0.1:$port: $!\n";
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $listen;
        push @upstreams, $pid;
        return $pid;
    }
    setpgrp(0, 0);
    $SIG{CHLD} = 'IGNORE';
    while (my $client = $listen->accept) {
        my $child = fork // next;
        if ($child) {
            close $client;
            next;
        }
        binmode $client;
        my $head = '';
        while ($head !~ /\r\n\r\n/) {
            my $n = sysread($client, $head, 4096, length $head) or last;
        }
        eval { $handler->($client, $head); 1 } or print STDERR "upstream: $@";
        close $client;
        POSIX::_exit(0);
    }
    POSIX::_exit(0);
}

sub _stop_upstreams {
    for my $pid (splice @upstreams) {
        kill 'TERM', -$pid;
        waitpid $pid, 0;
    }
}

# ---------------------------------------------------------------- data

# Writes the feeds into TESTDIR/feed-N/ and runs `segsync import` (with
# --aliases and --blocks when those feeds are given). $db is relative to the
# test dir unless absolute. Returns (status, output).
sub import_snapshot {
    my ($db, $segments, $profiles, $source, $aliases, $blocks, $experiments) = @_;
    my $d = testdir();
    $db = "$d/$db" unless $db =~ m{^/};
    my $feed = "$d/feed-" . ++$feed_serial;
    make_path($feed);
    write_text("$feed/segments.ndjson", $segments);
    write_text("$feed/profiles.ndjson", $profiles);
    my @optional;
    for ([aliases => $aliases], [blocks => $blocks], [experiments => $experiments]) {
        my ($name, $feed_text) = @$_;
        next unless defined $feed_text;
        write_text("$feed/$name.ndjson", $feed_text);
        push @optional, "--$name", "$feed/$name.ndjson";
    }
    return segsync('import', '--db', $db, '--segments', "$feed/segments.ndjson",
                   '--profiles', "$feed/profiles.ndjson", @optional, '--source', $source // 'test');
}

sub segsync {
    die "segsync not found at $SEGSYNC (set SEGSYNC or build it)\n" unless -x $SEGSYNC;
    return run_cmd($SEGSYNC, @_);
}

sub visitor_id {
    my ($label) = @_;
    return encode_base64url(pack 'a16', $label);
}

# As producers should: write under a dot-name, then rename(2) into place.
sub drop_file {
    my ($dir, $name, $text) = @_;
    make_path(dirname("$dir/$name"));
    my $tmp = "$dir/.tmp-$$-" . int(rand(1e9));
    write_text($tmp, $text);
    rename $tmp, "$dir/$name" or die "rename to $dir/$name: $!\n";
}

sub read_text {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    binmode $fh;
    local $/;
    my $text = <$fh>;
    return $text // '';
}

sub write_text {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "cannot write $path: $!\n";
    binmode $fh;
    print $fh $text;
    close $fh or die "cannot write $path: $!\n";
}

sub error_log_size { (-s (testdir() . "/error.log")) || 0 }

# error.log from byte offset $from (default 0): pair with error_log_size()
# to look only at what a step logged.
sub error_log_text {
    my $from = shift // 0;
    my $text = read_text(testdir() . '/error.log') // '';
    return substr($text, $from < length $text ? $from : length $text);
}

# ---------------------------------------------------------------- the end

sub _finish {
    return if $finished || $$ != $owner_pid;
    $finished = 1;
    for my $pid (@spawned) {
        kill 'KILL', $pid if kill 0, $pid;
        waitpid $pid, 0;
    }
    eval { stop_nginx(); 1 } or Test::More::diag("stopping nginx: $@");
    _stop_upstreams();
    my $log = $dir ? read_text("$dir/error.log") : undef;
    my @bad = grep { my $l = $_; grep { index($l, $_) >= 0 } @FORBIDDEN }
              split /\n/, $log // '';
    push @bad, sanitizer_reports();
    Test::More::ok(!@bad, 'error.log has no alert, emerg, crash or sanitizer report')
        or Test::More::diag(join "\n", 'offending lines (error.log, then sanitizer logs):',
                            @bad > 40 ? (@bad[0 .. 39], '...') : @bad);
}

sub skip_all {
    $finished = 1;
    Test::More::plan(skip_all => $_[0]);
}

sub done_testing {
    _finish();
    Test::More::done_testing(@_);
}

END {
    local $?;           # keep the test's exit status
    _finish();
}

# ---------------------------------------------------------------- response

package SegEdge::Test::Response;

sub status  { $_[0]{status} }
sub body    { $_[0]{body} }
sub raw     { $_[0]{raw} }
sub version { $_[0]{version} }

# Case-insensitive; all values in list context, the first (or undef) in
# scalar context.
sub header {
    my ($self, $name) = @_;
    my @values = map { $_->[1] } grep { $_->[0] eq lc $name } @{ $self->{headers} };
    return wantarray ? @values : $values[0];
}

# The first value or '' when absent: nginx's add_header omits empty values.
sub value { my $v = $_[0]->header($_[1]); defined $v ? $v : '' }

1;
