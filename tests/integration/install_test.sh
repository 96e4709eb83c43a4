#!/bin/sh
# `cmake --install` into a scratch DESTDIR puts every file where docs/operations.md says, the
# installed units name the installed binary, and a second install keeps an edited config.
# usage: install_test.sh BUILD_DIR PREFIX UNIT_DIR LIB_DIR
# (UNIT_DIR: where the units go, PREFIX/lib/systemd/system by default; LIB_DIR: the parent of
# sysusers.d and tmpfiles.d, PREFIX/lib by default; `make deb` configures the tree for Debian.)
set -eu
build=$1
prefix=$2
unitdir=${3:-$prefix/lib/systemd/system}
libdir=${4:-$prefix/lib}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$dest cmake --install "$build" >/dev/null
for f in \
  "$prefix/bin/pgnap" \
  "$unitdir/pgnap.service" \
  "$unitdir/pgnap.socket" \
  "$libdir/sysusers.d/pgnap.conf" \
  "$libdir/tmpfiles.d/pgnap.conf" \
  "$prefix/share/man/man1/pgnap.1" \
  "$prefix/share/man/man5/pgnap.toml.5" \
  "$prefix/share/doc/pgnap/CHANGELOG.md" \
  "$prefix/share/doc/pgnap/README.md" \
  "$prefix/share/doc/pgnap/configuration.md" \
  "$prefix/share/doc/pgnap/operations.md" \
  "$prefix/share/doc/pgnap/grafana/pgnap.json" \
  "$prefix/share/doc/pgnap/examples/pgnap.toml" \
  /etc/pgnap/pgnap.toml; do
  [ -e "$dest$f" ] || fail "cmake --install did not install $f"
done
[ -x "$dest$prefix/bin/pgnap" ] || fail "$prefix/bin/pgnap is not executable"
grep -q "^ExecStart=$prefix/bin/pgnap run -c /etc/pgnap/pgnap.toml\$" "$dest$unitdir/pgnap.service" ||
  fail "the installed unit does not run $prefix/bin/pgnap"
if grep -q '@PGNAP_' "$dest$unitdir/"pgnap.*; then fail "placeholder left in an installed unit"; fi
"$dest$prefix/bin/pgnap" check -c "$dest$prefix/share/doc/pgnap/examples/pgnap.toml" >/dev/null ||
  fail "the installed binary rejects the installed example configuration"

[ ! -e "$dest$prefix/share/doc/pgnap/CMakeLists.txt" ] || fail "docs/CMakeLists.txt was installed as documentation"
grep -q '^\.TH "PGNAP" "1"' "$dest$prefix/share/man/man1/pgnap.1" || fail "pgnap.1 is not a man page"
# Every section has a body: a heading straight after another is one left empty.
for page in "$dest$prefix/share/man/man1/pgnap.1" "$dest$prefix/share/man/man5/pgnap.toml.5"; do
  empty=$(awk '/^\.SH/ { if (previous ~ /^\.SH/) print previous; } { previous = $0 }' "$page")
  [ -z "$empty" ] || fail "$(basename "$page") has an empty section: $empty"
done

echo "# edited" >> "$dest/etc/pgnap/pgnap.toml"
DESTDIR=$dest cmake --install "$build" >/dev/null
grep -q '^# edited$' "$dest/etc/pgnap/pgnap.toml" || fail "a second install overwrote /etc/pgnap/pgnap.toml"
echo PASS
