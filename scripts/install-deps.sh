#!/bin/sh
# Install pgnap's build, test and demo dependencies from Debian bookworm packages.
#
# Idempotent: asks apt only for what is missing, so a second run is a no-op and
# does not need the network. Boost comes from the versioned 1.81 packages, not
# the default 1.74, whose Asio lacks awaitable operators and Process v2.
set -eu

PACKAGES="
  build-essential cmake pkg-config clang libclang-rt-14-dev python3
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libpq-dev libsqlite3-dev prometheus-cpp-dev libtomlplusplus-dev
  libssl-dev libsystemd-dev libbpf-dev liburing-dev libgtest-dev libgmock-dev libabsl-dev tzdata
  postgresql postgresql-client pgbouncer prometheus
  dbus-daemon systemd openssl iproute2
  debhelper lintian man-db
  python3-psycopg python3-psycopg-pool python3-psycopg2 python3-sqlalchemy python3-django
  openjdk-17-jdk-headless libpostgresql-jdbc-java
  nodejs
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done

# npm (the tests install node-postgres with it): Debian packages it apart from nodejs, but a
# nodejs from NodeSource bundles it and conflicts with Debian's npm, so only the command counts.
need_npm=""
if ! command -v npm >/dev/null 2>&1; then
  need_npm="yes"
fi

if [ -z "$missing" ] && [ -z "$need_npm" ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing
fi
# After nodejs: whichever nodejs apt chose decides whether npm is still missing.
if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: installing: npm"
  $SUDO apt-get install -y -q --no-install-recommends npm
fi

# The postgresql package creates and starts a default cluster on some systems;
# pgnap's tests and demo use their own throwaway clusters and need nothing of it.
