#!/bin/bash
# The ledger on a full disk (issue 16): pgnap's ledger on a 2 MiB tmpfs, the tmpfs filled,
# four wakes and about 18 s of full disk, then the space freed. Prints the wakes pgnap logged
# and the wakes `pgnap report` finds in the ledger afterwards (before failed writes were kept:
# 3 of 4 missing), and the ledger's log lines.
#
#   sudo PGNAP=build/pgnap bench/ledger_full_disk.sh
#
# Needs root (mount) and PostgreSQL 15's binaries; uses /tmp/pgnap-ledger-full and port 16499.
set -u
PG=/usr/lib/postgresql/15/bin
B=${PGNAP:-build/pgnap}
W=/tmp/pgnap-ledger-full/w
umount /tmp/pgnap-ledger-full/disk 2>/dev/null; rm -rf $W /tmp/pgnap-ledger-full/disk; mkdir -p $W/sock /tmp/pgnap-ledger-full/disk
chown -R postgres $W
mount -t tmpfs -o size=2m tmpfs /tmp/pgnap-ledger-full/disk
runuser -u postgres -- $PG/initdb -D $W/data -A trust -U postgres >/dev/null
cat > $W/pgnap.toml <<T
[gateway]
listen = ["127.0.0.1:16499"]
ledger = "/tmp/pgnap-ledger-full/disk/ledger.db"
ledger_heartbeat = "1s"
control_socket = ""
[metrics]
listen = ""
[instances.main]
backend = "pg_ctl"
address = "$W/sock"
idle_timeout = "1s"
min_awake = "0s"
[instances.main.pg_ctl]
data_dir = "$W/data"
bin_dir = "$PG"
os_user = "postgres"
T
echo "unix_socket_directories = '$W/sock'" >> $W/data/postgresql.conf
echo "listen_addresses = ''" >> $W/data/postgresql.conf
$B run -c $W/pgnap.toml > $W/pgnap.log 2>&1 &
P=$!
sleep 2
dd if=/dev/zero of=/tmp/pgnap-ledger-full/disk/fill bs=4k 2>/dev/null
for i in 1 2 3 4; do
  psql -X -q -At "host=127.0.0.1 port=16499 user=postgres dbname=postgres application_name=wake$i" -c "select $i" >/dev/null
  for t in $(seq 1 40); do grep -c "asleep (was awake" $W/pgnap.log | grep -qx $i && break; sleep 0.25; done
done
sleep 10   # the issue's 10 s of a full disk
rm /tmp/pgnap-ledger-full/disk/fill
sleep 4
kill -TERM $P; wait $P
echo "wakes in the log: $(grep -c 'ready after' $W/pgnap.log)"
echo "wakes in the report: $($B report -c $W/pgnap.toml --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(i.get("wakes",0) for i in d["instances"]))')"
grep -E "ledger" $W/pgnap.log | cut -c1-220
umount /tmp/pgnap-ledger-full/disk
