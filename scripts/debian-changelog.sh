#!/bin/sh
# Writes debian/changelog from CHANGELOG.md, the one place versions are written: an entry per
# released version, newest first, each "VERSION-1" but the newest, which gets REVISION (the
# Debian revision: 1 for a release, more for a rebuild of the same version). Run by `make deb`.
#   scripts/debian-changelog.sh [REVISION]
set -eu
cd "$(dirname "$0")/.."
revision=${1:-1}
case $revision in
  '' | *[!0-9]*) echo "debian-changelog.sh: the revision must be a number, not \"$revision\"" >&2; exit 2 ;;
esac
maintainer=$(sed -n 's/^Maintainer: //p' debian/control)
releases=$(sed -n 's/^## \[\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\)\] - \([0-9-]*\)$/\1 \2/p' CHANGELOG.md)
[ -n "$releases" ] || { echo "debian-changelog.sh: CHANGELOG.md has no released version" >&2; exit 1; }
first=yes
echo "$releases" | while read -r version date; do
  if [ "$first" = yes ]; then rev=$revision; first=no; else rev=1; fi
  echo "pgnap ($version-$rev) unstable; urgency=medium"
  echo
  echo "  * Release $version: the upstream changelog (changelog.gz, from CHANGELOG.md) says"
  echo "    what it adds and changes."
  if [ "$rev" -gt 1 ]; then
    echo "  * Package revision $rev: the same pgnap $version, packaged again."
  fi
  echo
  echo " -- $maintainer  $(LC_ALL=C date -u -R -d "$date 00:00:00 UTC")"
  echo
done > debian/changelog.new
# No blank line after the last entry.
sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' debian/changelog.new > debian/changelog
rm -f debian/changelog.new
