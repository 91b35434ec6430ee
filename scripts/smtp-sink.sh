#!/usr/bin/env bash
# Installs aiosmtpd (the real SMTP server the campaign tests start, tests/smtp/sink.py) into the
# cache, the way scripts/clickhouse.sh installs chdb, and prints the directory to put on
# PYTHONPATH (scripts/test.sh exports it as EVENTLINE_TEST_AIOSMTPD_PATH).
# Env: CACHE_DIR (<repo>/.cache), PYTHON (python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AIOSMTPD_VERSION=1.4.6 # pinned: the sink uses aiosmtpd.smtp.SMTP directly
CACHE_DIR="${CACHE_DIR:-$ROOT/.cache}"
PYTHON="${PYTHON:-python3}"
DIR="$CACHE_DIR/aiosmtpd-$AIOSMTPD_VERSION"

if [[ ! -d "$DIR/aiosmtpd" ]]; then
  mkdir -p "$CACHE_DIR"
  # Install beside the target and rename at the end: an interrupted install never looks complete.
  tmp="$(mktemp -d "$CACHE_DIR/.aiosmtpd-$AIOSMTPD_VERSION.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "Installing aiosmtpd==$AIOSMTPD_VERSION into $DIR..." >&2
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    --target "$tmp" "aiosmtpd==$AIOSMTPD_VERSION"
  chmod 755 "$tmp" # mktemp made it private
  [[ -e "$DIR" ]] || mv "$tmp" "$DIR" # another install may have finished meanwhile
fi
echo "$DIR"
