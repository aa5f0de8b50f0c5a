#!/usr/bin/env bash
# Installs the Debian packages the stack needs, only when missing (idempotent).
# Called by `make setup`. Needs root or sudo only if something is missing.
set -euo pipefail

missing=()
need() {  # need <package> <test command...>
  local pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then missing+=("$pkg"); fi
}
java_is_17_plus() {
  command -v java && java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'
}
need openjdk-17-jdk-headless java_is_17_plus
need maven command -v mvn
need postgresql-15 test -x /usr/lib/postgresql/15/bin/postgres
need libpostgresql-jdbc-java test -f /usr/share/java/postgresql.jar
need python3-venv python3 -c 'import venv, ensurepip'

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: system packages present (java 17+, maven, postgresql 15, postgresql jdbc)"
  exit 0
fi
echo "setup: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo -n"; else
    echo "setup: need root to install ${missing[*]}; run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
