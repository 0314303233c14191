#!/bin/bash
# Sets up and runs the demo: installs packages, builds, loads conf/demo into
# an LMDB database with segsync, and starts Debian's nginx with the module on
# 127.0.0.1:8080. Run as root on Debian 12. Running it again restarts it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
demo=/var/lib/segedge-demo

"$repo/conf/deps.sh"
"$repo/conf/build.sh"

# Workers run as www-data: they read the snapshot and need write access to
# LMDB's lock file, so the database root is group www-data with setgid, and
# every snapshot segsync creates below it inherits that group.
install -d -m 0755 "$demo" "$demo/html"
install -d -m 2775 -g www-data "$demo/db"
cp "$repo"/conf/demo/html/* "$demo/html/"

# The key that signs known-visitor cookies: made once, readable by root only
# (the nginx master reads it before dropping privileges).
if [ ! -s "$demo/keys" ]; then
    (umask 077; echo "demo$(date +%Y%m) base64:$(head -c 32 /dev/urandom | base64)" > "$demo/keys")
fi

"$repo/build/segsync" import --db "$demo/db" \
    --segments "$repo/conf/demo/segments.ndjson" \
    --profiles "$repo/conf/demo/profiles.ndjson" \
    --aliases "$repo/conf/demo/aliases.ndjson" \
    --blocks "$repo/conf/demo/blocks.ndjson" \
    --experiments "$repo/conf/demo/experiments.ndjson" --source demo

sed -e "s|@MODULE@|$repo/build/nginx/objs/ngx_http_segedge_module.so|" \
    -e "s|@DEMO@|$demo|g" "$repo/conf/nginx.conf" > "$demo/nginx.conf"

if [ -f "$demo/nginx.pid" ] && kill -0 "$(cat "$demo/nginx.pid")" 2>/dev/null; then
    /usr/sbin/nginx -c "$demo/nginx.conf" -s quit
    while [ -f "$demo/nginx.pid" ]; do sleep 0.1; done
fi
/usr/sbin/nginx -t -q -c "$demo/nginx.conf"
/usr/sbin/nginx -c "$demo/nginx.conf"

cat <<TRY

segedge demo running on http://127.0.0.1:8080/ (logs in $demo/)

A first visit: the edge issues a visitor cookie (no segments yet):
  curl -si http://127.0.0.1:8080/ | grep -i '^set-cookie\|^x-segedge'

A returning anonymous visitor the snapshot knows (segments vip, newsletter):
  curl -si -b segedge_id=ZGVtby12aXAtdmlzaXRvcg http://127.0.0.1:8080/ | grep -i '^x-segedge'

The same visitor's page: the hero and offer blocks swapped, the newsletter
sign-up gone (a browser with that cookie shows it too):
  curl -s -b segedge_id=ZGVtby12aXAtdmlzaXRvcg http://127.0.0.1:8080/ | grep -A2 'segedge:hero'

A new visitor gets the welcome hero; without a cookie, the defaults stay:
  curl -s -b segedge_id=ZGVtby1uZXctdmlzaXRvcg http://127.0.0.1:8080/ | grep -A2 'segedge:hero'
  curl -s http://127.0.0.1:8080/ | grep -A2 'segedge:hero'

An anonymous visitor aliased to customer cust-10001 (known: vip, newsletter,
plus its own cart_abandoner):
  curl -si -b segedge_id=ZGVtby1hbGlhcy12aXNpdA http://127.0.0.1:8080/ | grep -i '^x-segedge'

A logged-in customer, with the signed cookie an application would set:
  curl -si -b "segedge_known=\$($repo/build/segsync sign --keys $demo/keys --id cust-10005)" http://127.0.0.1:8080/ | grep -i '^x-segedge'

The same VIP visitor with Global Privacy Control on (consent denied):
  curl -si -H 'Sec-GPC: 1' -b segedge_id=ZGVtby12aXAtdmlzaXRvcg http://127.0.0.1:8080/ | grep -i '^x-segedge'

Experiments: which variants a visitor gets, and /checkout/ routed by variant
(variant B goes to another upstream; see conf/nginx.conf):
  curl -si -b segedge_id=ZGVtby12aXAtdmlzaXRvcg http://127.0.0.1:8080/checkout/ | grep -i '^x-segedge-experiments'

Publish a changed snapshot and see it without a reload:
  $repo/build/segsync import --db $demo/db --segments $repo/conf/demo/segments.ndjson \\
      --profiles $repo/conf/demo/profiles.ndjson --aliases $repo/conf/demo/aliases.ndjson \\
      --blocks $repo/conf/demo/blocks.ndjson --experiments $repo/conf/demo/experiments.ndjson

Stop it:  /usr/sbin/nginx -c $demo/nginx.conf -s quit
TRY
