#!/bin/sh
# A one-node Ceph cluster for the RBD tests, everything under DIR.
#
#   sh tests/rbd/cluster.sh start DIR IMAGE   one monitor, one OSD (memstore:
#       no disk), no manager; pool `rbd` of size 1 holding IMAGE as
#       rbd/guest, snapshot rbd/guest@before, then 4 KiB of `vmrescue-rbd-head`
#       written at byte 512 KiB of the head (so the snapshot differs).
#       Writes DIR/ceph.conf, DIR/client.vmrescue.keyring (a user allowed to
#       read the pool only: `profile rbd-read-only`) and DIR/env.
#   sh tests/rbd/cluster.sh stop DIR          stops the daemons (by their pid files).
#
# Start-up is bounded (CEPH_START_SECONDS, default 60): past it the script
# fails with the reason and the tail of the daemons' logs. The packages come
# from scripts/lib.sh (TEST_PACKAGES): ceph-mon ceph-osd ceph-common python3-rbd.
set -eu

cmd=${1:?usage: cluster.sh start DIR IMAGE | stop DIR}
dir=${2:?usage: cluster.sh start DIR IMAGE | stop DIR}
limit=${CEPH_START_SECONDS:-60}

stop() {
    for pidfile in "$dir"/run/*.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
    done
    # Bounded wait for them to go (memstore has nothing to flush).
    i=0
    for pidfile in "$dir"/run/*.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

fail() {
    echo "ceph test cluster: $*" >&2
    for log in "$dir"/log/*.log; do
        [ -f "$log" ] || continue
        echo "--- tail of $log" >&2
        tail -n 20 "$log" >&2
    done
    stop
    exit 1
}

start_time=$(date +%s)
# until DESCRIPTION COMMAND...: retry COMMAND until it succeeds or the
# start-up budget is spent.
until_ok() {
    what=$1
    shift
    while ! "$@" >/dev/null 2>&1; do
        if [ $(($(date +%s) - start_time)) -ge "$limit" ]; then
            fail "$what did not happen within ${limit}s"
        fi
        sleep 0.2
    done
}

case $cmd in
stop)
    stop
    exit 0
    ;;
start) ;;
*)
    echo "usage: cluster.sh start DIR IMAGE | stop DIR" >&2
    exit 2
    ;;
esac

image=${3:?usage: cluster.sh start DIR IMAGE}
for tool in ceph-mon ceph-osd ceph ceph-authtool monmaptool rbd /usr/bin/python3; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "ceph test cluster: $tool is missing (scripts/lib.sh installs TEST_PACKAGES)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import rbd, rados' 2>/dev/null ||
    { echo "ceph test cluster: python3-rbd is missing (scripts/lib.sh installs TEST_PACKAGES)" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/mon/ceph-a" "$dir/osd/ceph-0" "$dir/run" "$dir/log"
# A free port on the loopback for the monitor (msgr2 only).
port=${CEPH_MON_PORT:-$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
fsid=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
conf=$dir/ceph.conf
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
mon allow pool size one = true
# A throwaway cluster in a temp dir: the host's free space is not its concern
# (the monitor refuses to start below 5% free by default).
mon data avail crit = 0
mon data avail warn = 0
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
[mon]
mon data = $dir/mon/ceph-\$id
[osd]
osd data = $dir/osd/ceph-\$id
keyring = $dir/osd/ceph-\$id/keyring
osd objectstore = memstore
memstore device bytes = 536870912
osd max object name len = 256
osd max object namespace len = 64
CONF

keyring=$dir/keyring
ceph-authtool --create-keyring "$keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' >/dev/null
monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$keyring" ||
    fail "ceph-mon --mkfs failed"
ceph-mon -c "$conf" -i a || fail "ceph-mon did not start"

c() { timeout 20 ceph -c "$conf" --connect-timeout 5 "$@"; }
until_ok "the monitor answering" c mon stat

osd_uuid=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
id=$(c osd create "$osd_uuid") || fail "ceph osd create failed"
ceph-osd -c "$conf" -i "$id" --mkfs --mkkey --no-mon-config --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.log" 2>&1 ||
    fail "ceph-osd --mkfs failed: $(tail -n 5 "$dir/log/osd-mkfs.log")"
c auth add "osd.$id" osd 'allow *' mon 'allow profile osd' -i "$dir/osd/ceph-$id/keyring" >/dev/null 2>&1 ||
    fail "ceph auth add osd.$id failed"
ceph-osd -c "$conf" -i "$id" || fail "ceph-osd did not start"
osd_up() { c osd dump 2>/dev/null | grep -q "^osd.$id up"; }
until_ok "osd.$id coming up" osd_up

c osd pool create rbd 8 8 >/dev/null 2>&1 || fail "creating pool rbd failed"
c osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1 || fail "pool size 1 refused"
c osd pool application enable rbd rbd >/dev/null 2>&1 || fail "pool application rbd refused"
# Without a manager `ceph pg stat` knows nothing: a write that returns is
# the proof that the placement groups are active.
until_ok "the pool taking a write" timeout 5 rados -c "$conf" -p rbd put probe "$conf"

c auth get-or-create client.vmrescue mon 'profile rbd' osd 'profile rbd-read-only pool=rbd' \
    -o "$dir/client.vmrescue.keyring" >/dev/null 2>&1 || fail "creating client.vmrescue failed"

r() { timeout 60 rbd -c "$conf" "$@"; }
r import --no-progress "$image" rbd/guest >/dev/null 2>&1 || fail "rbd import of $image failed"
r snap create rbd/guest@before >/dev/null 2>&1 || fail "rbd snap create failed"
CEPH_CONF=$conf timeout 60 /usr/bin/python3 - <<'PY' || fail "writing into the head after the snapshot failed"
import os, rados, rbd
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster:
    with cluster.open_ioctx("rbd") as ioctx:
        with rbd.Image(ioctx, "guest") as image:
            image.write((b"vmrescue-rbd-head" * 241)[:4096], 512 * 1024)
PY

cat >"$dir/env" <<ENV
CEPH_CONF=$conf
CEPH_MON_PORT=$port
CEPH_START_SECONDS_TAKEN=$(($(date +%s) - start_time))
ENV
echo "ceph test cluster up in $(($(date +%s) - start_time))s: $conf"
