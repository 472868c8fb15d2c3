#!/bin/bash
# mptcplab set-up for a fresh Debian/Ubuntu machine, then a demo or the tests.
#   sudo ./setup.sh demo     install everything, then run `mptcplab demo`
#   sudo ./setup.sh test     install everything (with test tools), then run the test suite
#   sudo ./setup.sh          install only
# System packages come from packaging/debian-packages.txt; Python packages go into .venv/.
set -euo pipefail
cd "$(dirname "$0")"
action="${1:-install}"

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (sudo ./setup.sh $action): labs are network namespaces" >&2
  exit 2
fi

packages=$(grep -v '^#' packaging/debian-packages.txt | tr '\n' ' ')
missing=$(for p in $packages; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "setup.sh: installing system packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras=""
[ "$action" = test ] && extras="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"

case "$action" in
  demo) exec .venv/bin/mptcplab demo ;;
  test) exec .venv/bin/python -m pytest -q ;;
  install) echo "setup.sh: installed; run .venv/bin/mptcplab --help (or activate .venv)" ;;
  *) echo "setup.sh: unknown action '$action' (expected demo, test or nothing)" >&2; exit 2 ;;
esac
