#!/bin/sh
# The package's sources agree with the rest of the tree:
#   - every Build-Depends of debian/control is a package scripts/install-deps.sh installs, so
#     `make deb` works wherever `make deps` ran;
#   - the version scripts/debian-changelog.sh writes is CHANGELOG.md's first release, the one
#     the binary reports (pgnap --version).
# usage: build_depends_test.sh SOURCE_DIR PGNAP_BINARY
set -eu
src=$1
binary=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

deps=$(sed -n '/^PACKAGES="/,/^"/p' "$src/scripts/install-deps.sh" | tr -s ' \n' '\n\n')
build_depends=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$src/debian/control" | grep '^ ' |
  sed -e 's/^ *//' -e 's/[ (,].*//' -e 's/^debhelper-compat$/debhelper/')
[ -n "$build_depends" ] || fail "no Build-Depends found in debian/control"
for package in $build_depends; do
  echo "$deps" | grep -qx "$package" || fail "Build-Depends names $package, which scripts/install-deps.sh does not install"
done
echo "Build-Depends: all $(echo "$build_depends" | wc -l) in scripts/install-deps.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/scripts" "$src/debian" "$src/CHANGELOG.md" "$work/"
rm -f "$work/debian/changelog"
"$work/scripts/debian-changelog.sh" 3
version=$(dpkg-parsechangelog -l "$work/debian/changelog" -SVersion)
release=$(sed -n 's/^## \[\([0-9.]*\)\] - .*/\1/p' "$src/CHANGELOG.md" | head -n 1)
[ "$version" = "$release-3" ] || fail "debian/changelog says $version, CHANGELOG.md's release is $release"
"$binary" --version | grep -q "^pgnap $release " || fail "pgnap --version says $("$binary" --version), CHANGELOG.md $release"
echo "version: $release everywhere (package $version)"
echo PASS
