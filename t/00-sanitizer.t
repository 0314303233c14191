# The sanitizer build's harness (README "Sanitizers"): nginx workers run
# with the ASan runtime preloaded, and a report written by a worker is
# found and fails the file. Skipped for a normal build.
use SegEdge::Test;

skip_all('not a sanitizer build (run: SEGEDGE_BUILD=build-asan prove -I t/lib t/)')
    unless sanitizer_build();

start_nginx(<<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            segedge on;
            return 200 "hello\n";
        }
    }
EOF

my ($worker) = worker_pids();
like read_text("/proc/$worker/maps") // '', qr/libasan/, 'the worker runs with the ASan runtime';
is http_get('/')->status, 200, 'and serves';
is_deeply [sanitizer_reports()], [], 'no report so far';

# ASan reports any deadly signal, like a crash of its own finding.
kill 'SEGV', $worker;
ok wait_until(sub { grep { /ERROR: AddressSanitizer: SEGV/ } sanitizer_reports() }),
   "the worker's report is found" or diag explain [sanitizer_reports()];

# That report was this file's point: remove it (and the line ASan wrote to
# error.log before its log file) so that the final check, which would fail
# on it, looks at the rest.
stop_nginx();
unlink glob testdir() . '/sanitizer.*';
my $log = testdir() . '/error.log';
write_text($log, join '', grep { !/AddressSanitizer/ } split /^/, read_text($log) // '');
is_deeply [sanitizer_reports()], [], 'removed';

done_testing;
