#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those that are missing.
#
# The tests start real services (PostgreSQL, nginx) from system binaries, build
# virtual environments with the system python3, and drive the web catalog in
# Debian's Chromium (headless, through Playwright from PyPI; `playwright
# install` would download a browser, which CI cannot). On a machine that
# already has them this does nothing and touches no package index, so
# `make test` stays fast the second time.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || command -v pg_ctl >/dev/null || missing+=(postgresql)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# nginx: the front proxy the X-Accel-Redirect test runs (tests/test_server_delivery.py) and bench_server.py's anchor
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx)
command -v npm >/dev/null || missing+=(npm)  # fetches the pinned axe-core (tests/refstack.py)

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "installing system packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "error: ${missing[*]} must be installed, and that needs root (apt-get install -y ${missing[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
