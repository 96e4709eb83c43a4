#!/bin/sh
# `cmake --install` into a scratch DESTDIR puts every file where docs/operations.md says, the
# installed units name the installed binary, and a second install keeps an edited config.
# usage: install_test.sh BUILD_DIR PREFIX
set -eu
build=$1
prefix=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$dest cmake --install "$build" >/dev/null
for f in \
  "$prefix/bin/pgnap" \
  "$prefix/lib/systemd/system/pgnap.service" \
  "$prefix/lib/systemd/system/pgnap.socket" \
  "$prefix/lib/sysusers.d/pgnap.conf" \
  "$prefix/lib/tmpfiles.d/pgnap.conf" \
  "$prefix/share/doc/pgnap/README.md" \
  "$prefix/share/doc/pgnap/configuration.md" \
  "$prefix/share/doc/pgnap/operations.md" \
  "$prefix/share/doc/pgnap/grafana/pgnap.json" \
  "$prefix/share/doc/pgnap/examples/pgnap.toml" \
  /etc/pgnap/pgnap.toml; do
  [ -e "$dest$f" ] || fail "cmake --install did not install $f"
done
[ -x "$dest$prefix/bin/pgnap" ] || fail "$prefix/bin/pgnap is not executable"
grep -q "^ExecStart=$prefix/bin/pgnap run -c /etc/pgnap/pgnap.toml\$" "$dest$prefix/lib/systemd/system/pgnap.service" ||
  fail "the installed unit does not run $prefix/bin/pgnap"
if grep -q '@PGNAP_' "$dest$prefix/lib/systemd/system/"pgnap.*; then fail "placeholder left in an installed unit"; fi
"$dest$prefix/bin/pgnap" check -c "$dest$prefix/share/doc/pgnap/examples/pgnap.toml" >/dev/null ||
  fail "the installed binary rejects the installed example configuration"

echo "# edited" >> "$dest/etc/pgnap/pgnap.toml"
DESTDIR=$dest cmake --install "$build" >/dev/null
grep -q '^# edited$' "$dest/etc/pgnap/pgnap.toml" || fail "a second install overwrote /etc/pgnap/pgnap.toml"
echo PASS
