#!/bin/sh
# Install what the benchmarks need from the Debian archive (idempotent).
#   bench/setup.sh          install missing packages
#   bench/setup.sh --check  only report what is missing (exit 1 if anything is)
#
# The peers (mod_oauth2, mod_auth_openidc) are loaded by bench/run.py from
# /usr/lib/apache2/modules into its own throw-away configurations; nothing in
# /etc/apache2 is used.  Installing a module package may a2enmod it for the
# system httpd, which the benchmarks never start.
set -eu

PKGS="apache2 apache2-bin build-essential pkg-config libssl-dev openssl wrk redis-server \
python3 python3-cryptography python3-jwcrypto \
libapache2-mod-oauth2 libapache2-mod-auth-openidc"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "bench/setup.sh: all packages present"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "bench/setup.sh: missing:$missing"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench/setup.sh: missing:$missing -- run as root to install" >&2
    exit 1
fi
echo "bench/setup.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
