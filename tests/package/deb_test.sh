#!/bin/sh
# The Debian package on this machine, end to end: lintian, install, the files and the user,
# `pgnap check` and `systemd-analyze verify` on what was installed, the postinst's decision to
# start the service or not, an upgrade to a rebuilt package that keeps an edited
# configuration and an existing ledger, then remove and purge.
#
# It installs and purges the package "pgnap" with dpkg, so it runs as root on a machine where
# that package is not installed (CI's, a throwaway VM) and refuses otherwise.
#   tests/package/deb_test.sh DEB_REVISION_1 DEB_REVISION_2
# (two packages of the same version, the second with a higher Debian revision: make test-package)
set -eu
first=$1
second=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[ "$(id -u)" -eq 0 ] || fail "the package test installs a package: run it as root"
if dpkg-query -W -f='${Status}' pgnap 2>/dev/null | grep -q 'installed\|config-files'; then
  fail "a pgnap package is installed on this machine; this test installs, upgrades and purges it: run it on a throwaway machine, or 'apt purge pgnap' first"
fi
for tool in lintian dpkg-deb systemd-analyze man; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done

work=$(mktemp -d)
chmod 0755 "$work"
pid=""
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  dpkg --purge pgnap >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

version=$(dpkg-deb -f "$first" Version)
upgrade_version=$(dpkg-deb -f "$second" Version)
dpkg --compare-versions "$upgrade_version" gt "$version" || fail "$second ($upgrade_version) is not newer than $first ($version)"
upstream=${version%-*}

step "lintian $first"
# Tags the package deliberately carries are overridden in debian/pgnap.lintian-overrides, each
# with its reason; anything else at warning or error level fails.
if ! lintian --fail-on error,warning "$first" > "$work/lintian.txt" 2>&1; then
  cat "$work/lintian.txt" >&2
  fail "lintian reports the above"
fi
cat "$work/lintian.txt"
echo "lintian: clean"

step "install $version"
dpkg --install "$first" < /dev/null > "$work/install.txt" 2>&1 || { cat "$work/install.txt" >&2; fail "dpkg --install"; }
cat "$work/install.txt"
grep -q "pgnap: /etc/pgnap/pgnap.toml is the example as shipped: pgnap.service is enabled but not started" "$work/install.txt" ||
  fail "postinst did not say it leaves the unedited example's service stopped"

step "the files"
for f in /usr/bin/pgnap \
  /lib/systemd/system/pgnap.service /lib/systemd/system/pgnap.socket \
  /usr/lib/sysusers.d/pgnap.conf /usr/lib/tmpfiles.d/pgnap.conf \
  /usr/share/man/man1/pgnap.1.gz /usr/share/man/man5/pgnap.toml.5.gz \
  /usr/share/doc/pgnap/copyright /usr/share/doc/pgnap/changelog.Debian.gz \
  /usr/share/doc/pgnap/README.md /usr/share/doc/pgnap/operations.md /usr/share/doc/pgnap/cli.md \
  /usr/share/doc/pgnap/grafana/pgnap.json /usr/share/doc/pgnap/examples/pgnap.toml \
  /usr/share/doc/pgnap/examples/systemd/kernel-relay.conf \
  /etc/pgnap/pgnap.toml /etc/pgnap/userlist.txt; do
  # dh_compress compresses the larger documents, as Debian's policy asks.
  [ -e "$f" ] || [ -e "$f.gz" ] || fail "$f is not installed"
done
[ -x /usr/bin/pgnap ] || fail "/usr/bin/pgnap is not executable"
# CHANGELOG.md, as dh_installchangelogs names an upstream changelog.
zgrep -q "^## \[$upstream\] - " /usr/share/doc/pgnap/changelog.gz ||
  fail "/usr/share/doc/pgnap/changelog.gz is not CHANGELOG.md with $upstream"
grep -q '^ExecStart=/usr/bin/pgnap run -c /etc/pgnap/pgnap.toml$' /lib/systemd/system/pgnap.service ||
  fail "the unit does not run /usr/bin/pgnap"
conffiles=$(dpkg-query -W -f='${Conffiles}' pgnap)
for f in /etc/pgnap/pgnap.toml /etc/pgnap/userlist.txt; do
  echo "$conffiles" | grep -q " $f " || fail "$f is not a conffile: $conffiles"
done
[ "$(stat -c '%a %U %G' /etc/pgnap/userlist.txt)" = "640 root pgnap" ] ||
  fail "/etc/pgnap/userlist.txt is $(stat -c '%a %U %G' /etc/pgnap/userlist.txt), expected 640 root pgnap"
if dpkg -L pgnap | grep -q '^/usr/local'; then fail "the package installs under /usr/local"; fi

step "the user and the directories"
entry=$(getent passwd pgnap) || fail "no pgnap user"
echo "$entry"
[ "$(echo "$entry" | cut -d: -f6)" = /var/lib/pgnap ] || fail "pgnap's home is not /var/lib/pgnap: $entry"
[ "$(echo "$entry" | cut -d: -f7)" = /usr/sbin/nologin ] || fail "pgnap can log in: $entry"
getent group pgnap >/dev/null || fail "no pgnap group"
[ "$(stat -c '%a %U %G' /var/lib/pgnap)" = "750 pgnap pgnap" ] ||
  fail "/var/lib/pgnap is $(stat -c '%a %U %G' /var/lib/pgnap), expected 750 pgnap pgnap"
[ -L /etc/systemd/system/multi-user.target.wants/pgnap.service ] || fail "pgnap.service is not enabled"
[ ! -e /etc/systemd/system/sockets.target.wants/pgnap.socket ] || fail "pgnap.socket is enabled (it is an opt-in)"

step "the installed binary, configuration, man pages and units"
/usr/bin/pgnap --version | grep -qx "pgnap $upstream (git [0-9a-f]\{12\}\(-dirty\)\{0,1\})" ||
  fail "pgnap --version says: $(/usr/bin/pgnap --version)"
/usr/bin/pgnap check -c /etc/pgnap/pgnap.toml > "$work/check.txt" 2>&1 || { cat "$work/check.txt" >&2; fail "pgnap check -c /etc/pgnap/pgnap.toml"; }
tail -n 1 "$work/check.txt"
/usr/bin/pgnap check > /dev/null 2>&1 || fail "pgnap check without -c does not read /etc/pgnap/pgnap.toml"
for page in pgnap pgnap.toml; do
  man -w "$page" > /dev/null || fail "man cannot find $page"
  warnings=$(MANWIDTH=80 man --warnings -E UTF-8 "$page" 2>&1 > /dev/null)
  [ -z "$warnings" ] || fail "man $page: $warnings"
done
MANWIDTH=80 man pgnap.toml 2>/dev/null | grep -q 'max_clients' || fail "pgnap.toml(5) does not describe max_clients"
MANWIDTH=80 man pgnap 2>/dev/null | grep -q 'EXIT STATUS' || fail "pgnap(1) has no EXIT STATUS"
out=$(systemd-analyze verify --man=no /lib/systemd/system/pgnap.service /lib/systemd/system/pgnap.socket 2>&1) ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify reported: $out"
echo "systemd-analyze verify: clean"

step "a ledger, written by the installed pgnap as the pgnap user"
cat > "$work/ledger.toml" <<EOF
[gateway]
listen = ["127.0.0.1:0"]
ledger = "/var/lib/pgnap/ledger.db"
ledger_heartbeat = "1s"
control_socket = ""
relay = "user"

[metrics]
listen = ""

[instances.packaged]
backend = "exec"
address = "127.0.0.1:9"

[instances.packaged.exec]
start = ["true"]
stop = ["true"]
status = ["false"]
EOF
chmod 0644 "$work/ledger.toml"
# setpriv execs pgnap itself (same pid), so the SIGTERM below reaches it.
setpriv --reuid=pgnap --regid=pgnap --init-groups -- /usr/bin/pgnap run -c "$work/ledger.toml" > "$work/run.log" 2>&1 &
pid=$!
tries=0
until grep -q "adopted asleep" "$work/run.log"; do
  tries=$((tries + 1))
  [ "$tries" -lt 300 ] || { cat "$work/run.log" >&2; fail "pgnap run did not adopt its instance"; }
  kill -0 "$pid" 2>/dev/null || { cat "$work/run.log" >&2; fail "pgnap run exited"; }
  sleep 0.1
done
sleep 2
kill -TERM "$pid"
wait "$pid" || { cat "$work/run.log" >&2; fail "pgnap run did not stop cleanly on SIGTERM"; }
pid=""
[ -s /var/lib/pgnap/ledger.db ] || fail "no ledger in /var/lib/pgnap"
/usr/bin/pgnap report -c "$work/ledger.toml" --format csv > "$work/report.csv" || fail "pgnap report"
grep -q ',packaged,' "$work/report.csv" || { cat "$work/report.csv" >&2; fail "the report has no row for the instance"; }
ledger_sum=$(md5sum < /var/lib/pgnap/ledger.db)

step "edit the configuration, upgrade to $upgrade_version"
echo "# edited by the package test" >> /etc/pgnap/pgnap.toml
dpkg --install "$second" < /dev/null > "$work/upgrade.txt" 2>&1 || { cat "$work/upgrade.txt" >&2; fail "dpkg --install (upgrade)"; }
cat "$work/upgrade.txt"
[ "$(dpkg-query -W -f='${Version}' pgnap)" = "$upgrade_version" ] || fail "the upgrade did not install $upgrade_version"
grep -qx "# edited by the package test" /etc/pgnap/pgnap.toml || fail "the upgrade overwrote the edited /etc/pgnap/pgnap.toml"
[ ! -e /etc/pgnap/pgnap.toml.dpkg-new ] && [ ! -e /etc/pgnap/pgnap.toml.dpkg-dist ] ||
  fail "the upgrade left a .dpkg-new or .dpkg-dist beside an unchanged conffile"
[ "$(md5sum < /var/lib/pgnap/ledger.db)" = "$ledger_sum" ] || fail "the upgrade changed the ledger"
if [ -d /run/systemd/system ]; then
  grep -q "passes 'pgnap check': pgnap.service (re)started" "$work/upgrade.txt" || fail "postinst did not restart the service"
else
  grep -q "passes 'pgnap check'; systemd is not running" "$work/upgrade.txt" ||
    fail "postinst did not decide to start the edited, valid configuration"
fi

step "a configuration pgnap check refuses is not started"
echo "no_such_key = 1" >> /etc/pgnap/pgnap.toml
dpkg --install "$second" < /dev/null > "$work/reinstall.txt" 2>&1 || { cat "$work/reinstall.txt" >&2; fail "dpkg --install (again)"; }
cat "$work/reinstall.txt"
grep -q "pgnap: 'pgnap check -c /etc/pgnap/pgnap.toml' fails: pgnap.service not (re)started" "$work/reinstall.txt" ||
  fail "postinst did not refuse to start a configuration pgnap check rejects"

step "remove"
dpkg --remove pgnap > /dev/null
[ ! -e /usr/bin/pgnap ] || fail "remove left /usr/bin/pgnap"
[ ! -e /lib/systemd/system/pgnap.service ] || fail "remove left the unit"
[ -e /etc/pgnap/pgnap.toml ] || fail "remove deleted the configuration"
grep -qx "# edited by the package test" /etc/pgnap/pgnap.toml || fail "remove changed the configuration"
[ "$(md5sum < /var/lib/pgnap/ledger.db)" = "$ledger_sum" ] || fail "remove changed or deleted the ledger"
getent passwd pgnap >/dev/null || fail "remove deleted the pgnap user"
[ ! -e /etc/systemd/system/multi-user.target.wants/pgnap.service ] || fail "remove left pgnap.service enabled"

step "purge"
dpkg --purge pgnap > /dev/null
[ ! -e /etc/pgnap ] || fail "purge left /etc/pgnap: $(ls -A /etc/pgnap)"
[ ! -e /var/lib/pgnap ] || fail "purge left /var/lib/pgnap (the ledger)"
dpkg-query -W pgnap > /dev/null 2>&1 && fail "dpkg still knows pgnap after the purge"
# As Debian does with system users: the user stays (files elsewhere may belong to it).
getent passwd pgnap > /dev/null || fail "purge deleted the pgnap user (it is documented to stay)"

echo "PASS: package $version, upgrade to $upgrade_version, remove and purge"
