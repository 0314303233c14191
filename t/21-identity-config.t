# `nginx -t` for the identity directives: a valid configuration passes, each
# bad value fails naming it, and a bad key file fails naming file and line.

use SegEdge::Test;

my $d = testdir();
my $secret = 'ab' x 32;
write_text("$d/keys", "# current first\nk2 hex:$secret\nk1 base64:" . ('A' x 43) . "=\n");
write_text("$d/short-keys", "k1 hex:$secret\n\nk2 hex:abcd\n");
write_text("$d/malformed-keys", "k1 hex:$secret oops\n");
write_text("$d/duplicate-keys", "k1 hex:$secret\nk1 hex:$secret\n");
write_text("$d/no-keys", "# nothing yet\n");
mkdir "$d/key-dir";

sub config {
    my ($http, $location) = @_;
    return <<"EOF";
    $http
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            segedge on;
            $location
            return 200 "[\$segedge_visitor][\$segedge_known][\$segedge_consent]\\n";
        }
    }
EOF
}

{
    my ($rc, $out) = nginx_t(config(<<'EOF', <<'EOF'));
    segedge_keys %%TESTDIR%%/keys;
    segedge_cookie_issue on;
    segedge_cookie_domain .example.com;
    segedge_cookie_path /;
    segedge_cookie_max_age 30d;
    segedge_cookie_flags Secure HttpOnly SameSite=None;
    segedge_known_cookie logged_in;
    segedge_consent "$cookie_consent";
    segedge_consent_gpc off;
EOF
            segedge_cookie __Host-sid;
            segedge_cookie_domain none;
            segedge_cookie_flags Secure;
            segedge_cookie_max_age 400d;
            segedge_keys keys;
EOF
    is $rc, 0, 'valid identity config passes nginx -t' or diag $out;
}
{
    my ($rc, $out) = nginx_t(config('segedge_cookie_flags off;', 'segedge_cookie_issue on;'));
    is $rc, 0, 'segedge_cookie_flags off is valid' or diag $out;
}
{
    # prefixes are only checked where ids are issued
    my ($rc, $out) = nginx_t(config('', 'segedge_cookie __Host-sid;'));
    is $rc, 0, 'a __Host- name without Secure is fine when nothing is issued' or diag $out;
}

# [what, http-level lines, location-level lines, texts the error must contain]
my @bad = (
    ['max age over 400 days', 'segedge_cookie_max_age 401d;', '', ['401d', '400d']],
    ['max age 0', '', 'segedge_cookie_max_age 0;', ['"0"']],
    ['max age not a time', 'segedge_cookie_max_age soon;', '', ['segedge_cookie_max_age']],
    ['unknown flag', '', 'segedge_cookie_flags Secure Partitioned;', ['"Partitioned"']],
    ['SameSite=None without Secure', 'segedge_cookie_flags SameSite=None;', '', ['SameSite=None', 'Secure']],
    ['two SameSite values', '', 'segedge_cookie_flags SameSite=Lax SameSite=Strict;', ['SameSite=Strict']],
    ['off with a flag', '', 'segedge_cookie_flags off HttpOnly;', ['"off"']],
    ['flags twice', "segedge_cookie_flags Secure;\nsegedge_cookie_flags HttpOnly;", '', ['is duplicate']],
    ['bad domain', '', 'segedge_cookie_domain "exa mple.com";', ['exa mple.com']],
    ['empty domain', '', 'segedge_cookie_domain "";', ['invalid cookie domain ""']],
    ['domain with ;', 'segedge_cookie_domain "example.com;Secure";', '', ['example.com;Secure']],
    ['path without /', '', 'segedge_cookie_path shop;', ['"shop"']],
    ['path with ;', '', 'segedge_cookie_path "/a;b";', ['/a;b']],
    ['__Host- without Secure', '', "segedge_cookie_issue on;\nsegedge_cookie __Host-sid;", ['__Host-sid', 'Secure']],
    ['__Host- with a domain', '',
     "segedge_cookie_issue on;\nsegedge_cookie __Host-sid;\nsegedge_cookie_flags Secure;\nsegedge_cookie_domain example.com;",
     ['__Host-sid', 'domain']],
    ['__Secure- without Secure', 'segedge_cookie_issue on;', 'segedge_cookie __Secure-sid;', ['__Secure-sid']],
    ['segedge_cookie_issue maybe', '', 'segedge_cookie_issue maybe;', ['maybe']],
    ['known cookie name with ;', '', 'segedge_known_cookie "a;b";', ['a;b']],
    ['segedge_consent_gpc maybe', 'segedge_consent_gpc maybe;', '', ['maybe']],
    ['segedge_consent unknown variable', '', 'segedge_consent $no_such_variable_xyz;', ['no_such_variable_xyz']],
    ['missing key file', 'segedge_keys %%TESTDIR%%/missing-keys;', '', ["$d/missing-keys: cannot open"]],
    ['key file is a directory', '', 'segedge_keys %%TESTDIR%%/key-dir;', ["$d/key-dir: cannot open"]],
    ['short key', 'segedge_keys %%TESTDIR%%/short-keys;', '',
     ["$d/short-keys:3:", 'secret of key "k2" is 2 bytes, at least 32']],
    ['malformed key line', '', 'segedge_keys %%TESTDIR%%/malformed-keys;', ["$d/malformed-keys:1:"]],
    ['duplicate key id', 'segedge_keys %%TESTDIR%%/duplicate-keys;', '',
     ["$d/duplicate-keys:2:", 'duplicate key id "k1"']],
    ['key file without keys', 'segedge_keys %%TESTDIR%%/no-keys;', '', ["$d/no-keys: no keys"]],
    ['key file twice', "segedge_keys %%TESTDIR%%/keys;\nsegedge_keys %%TESTDIR%%/keys;", '', ['is duplicate']],
);

for my $case (@bad) {
    my ($what, $http, $location, $needles) = @$case;
    my $out = nginx_t_fails($what, config($http, $location), @$needles);
    unlike $out, qr/\Q$secret\E/, "$what: no secret in the message";
}

done_testing;
