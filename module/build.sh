#!/bin/bash
# Builds ngx_http_segedge_module.so against Debian's nginx-dev tree so that
# Debian's /usr/sbin/nginx loads it (same configure flags, --with-compat).
#   module/build.sh BUILD_DIR [extra cc flags] [extra ld flags]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$1
cc_extra=${2:-}
ld_extra=${3:-}
src=/usr/share/nginx/src

# The flags Debian's nginx was built with (nginx -V), so the module's code is
# hardened and optimised like the binary that loads it.
cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 $cc_extra"
ld_opt="-Wl,-z,relro -Wl,-z,now -fPIC $ld_extra"
stamp="$repo|$cc_opt|$ld_opt|$(cat "$repo/config" "$src/conf_flags" | md5sum)"

if [ ! -f "$out/objs/Makefile" ] || [ "$(cat "$out/.configured" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    cp -r "$src/." "$out/"
    cd "$out"
    . ./conf_flags
    ./configure "${NGX_CONF_FLAGS[@]}" --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
        --add-dynamic-module="$repo" > configure.log 2>&1 || { cat configure.log; exit 1; }
    echo "$stamp" > .configured
fi
cd "$out"
make -s -f objs/Makefile modules
