#!/bin/sh
# The shipped systemd files, checked with systemd's own tools:
#   - pgnap.service and pgnap.socket, with the paths cmake --install fills in, pass
#     `systemd-analyze verify` (syntax, unknown keys, executables that exist);
#   - the service's sandbox rates "OK" or better in `systemd-analyze security`;
#   - sysusers.d creates the pgnap user and group, and tmpfiles.d then creates the ledger and
#     socket directories owned by it, both applied to a scratch root (--root), not this host.
# usage: systemd_units_test.sh SOURCE_DIR PGNAP_BINARY
set -eu
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/install-deps.sh installs systemd)" >&2; exit 1; }
done
src=$1
binary=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

bindir=$(dirname "$binary")
for unit in pgnap.service pgnap.socket; do
  sed -e "s|@PGNAP_BINDIR@|$bindir|g" -e "s|@PGNAP_DOCDIR@|/usr/share/doc/pgnap|g" -e "s|@PGNAP_CONFIG_FILE@|/etc/pgnap/pgnap.toml|g" \
    "$src/systemd/$unit" > "$work/$unit"
  if grep -q '@PGNAP_' "$work/$unit"; then fail "$unit: placeholder left after substitution"; fi
done

# verify prints problems and (systemd 252) still exits 0 for some of them: any output fails.
out=$(cd "$work" && systemd-analyze verify --man=no ./pgnap.service ./pgnap.socket 2>&1) ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify reported: $out"
echo "systemd-analyze verify: clean"

# Sanity of what the verify cannot know: the unit is what the docs promise.
grep -q '^Type=notify$' "$work/pgnap.service" || fail "pgnap.service is not Type=notify"
grep -q '^User=pgnap$' "$work/pgnap.service" || fail "pgnap.service does not run as pgnap"
grep -q '^ProtectSystem=strict$' "$work/pgnap.service" || fail "ProtectSystem=strict missing"
grep -q '^StateDirectory=pgnap$' "$work/pgnap.service" || fail "no writable state directory for the ledger"
grep -q '^Restart=on-failure$' "$work/pgnap.service" || fail "no Restart=on-failure"
grep -q "^ExecStart=$bindir/pgnap run -c /etc/pgnap/pgnap.toml\$" "$work/pgnap.service" ||
  fail "ExecStart does not run the installed binary"

exposure=$(systemd-analyze security --offline=yes --no-pager "$work/pgnap.service" 2>&1 |
  sed -n 's/.*Overall exposure level for pgnap.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
echo "systemd-analyze security: $exposure"
case "$exposure" in
  *" OK" | *" SAFE") ;;
  *) fail "the service's sandbox is rated '$exposure', expected OK or SAFE" ;;
esac

root="$work/root"
mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$src/systemd/pgnap.sysusers" >/dev/null 2>&1 ||
  fail "systemd-sysusers rejected pgnap.sysusers"
grep -q '^pgnap:x:[0-9]*:[0-9]*:.*:/var/lib/pgnap:/usr/sbin/nologin$' "$root/etc/passwd" ||
  fail "sysusers did not create the pgnap user: $(cat "$root/etc/passwd")"
uid=$(sed -n 's/^pgnap:x:\([0-9]*\):.*/\1/p' "$root/etc/passwd")
systemd-tmpfiles --root="$root" --create "$src/systemd/pgnap.tmpfiles" 2>&1 ||
  fail "systemd-tmpfiles rejected pgnap.tmpfiles"
for dir in var/lib/pgnap run/pgnap; do
  [ -d "$root/$dir" ] || fail "tmpfiles did not create /$dir"
  owner=$(stat -c %u "$root/$dir")
  [ "$owner" = "$uid" ] || fail "/$dir is owned by uid $owner, not pgnap ($uid)"
done
[ "$(stat -c %a "$root/var/lib/pgnap")" = 750 ] || fail "/var/lib/pgnap is not mode 0750"
echo "sysusers.d and tmpfiles.d: pgnap user (uid $uid) owns /var/lib/pgnap and /run/pgnap"
echo PASS
