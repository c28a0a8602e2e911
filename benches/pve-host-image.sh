#!/bin/sh
# Build the benchmark disk for benches/pve_host.rs with real tools: a 1 TiB
# sparse Proxmox-like host disk.
#
#   GPT, p1 an LVM2 PV of VG pve (4 MiB extents) with
#     root           64 MiB ext4: os-release, fstab, hostname, pmxcfs's
#                    /var/lib/pve-cluster/config.db (sqlite3) with 20 VMs
#     swap           64 MiB swap
#     data           thin pool over the rest (~1 TiB, 64 KiB chunks), its
#                    metadata by thin_restore (checked by thin_check)
#       vm-100-disk-0 ... vm-119-disk-0   thin LVs of 32 GiB, devices 1-20:
#                    each an MBR disk with a 7 MiB ext4 at 1 MiB; VMs 100
#                    and 101 also hold the same 64 MiB of pseudo-random
#                    bytes at 64 MiB, their blocks interleaved in the pool
#                    (every 64 KiB block of VM 100 a segment of its own);
#                    VM 102 holds them too, in consecutive data blocks
#     bench-linear   64 MiB linear LV holding those same 64 MiB
#
# As in tests/fixtures/make/thin.sh: lvm2 without device-mapper, the VG by
# vgcfgrestore from lvm2's text format, the bytes placed by python3 at the
# extents lvm2's report gives.
#
#   benches/pve-host-image.sh OUTDIR   -> OUTDIR/pve-host-1t.img
# Needs root (loop devices), sgdisk, lvm2, e2fsprogs, thin-provisioning-tools,
# sqlite3, python3.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
img=$out/pve-host-1t.img
tmp=$(mktemp -d)
loop=""
export LC_ALL=C TZ=UTC E2FSPROGS_FAKE_TIME=1700000000
cleanup() {
    [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
say() { echo "pve-host-image.sh: $*" >&2; }
# Q: lvm2 on $DEVS only, without device-mapper (the fixtures' helpers).
. "$(dirname "$0")/../tests/fixtures/make/lib/lvm.sh"
NVM=20

# ------------------------------------------------ a guest disk, the host root
truncate -s 8M "$tmp/guest.img"
printf 'label: dos\nlabel-id: 0x20202020\nstart=2048, type=83\n' | sfdisk -q "$tmp/guest.img"
mkdir -p "$tmp/g/etc"
printf 'PRETTY_NAME="Bench guest"\n' >"$tmp/g/etc/os-release"
printf '/dev/sda1 / ext4 defaults 0 1\n' >"$tmp/g/etc/fstab"
mke2fs -q -F -t ext4 -L guest -d "$tmp/g" "$tmp/g.ext4" 7M >/dev/null 2>&1
dd if="$tmp/g.ext4" of="$tmp/guest.img" bs=512 seek=2048 conv=notrunc status=none

mkdir -p "$tmp/h/etc/pve" "$tmp/h/var/lib/pve-cluster"
printf 'pve1\n' >"$tmp/h/etc/hostname"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' >"$tmp/h/etc/os-release"
printf '/dev/pve/root / ext4 errors=remount-ro 0 1\n/dev/pve/swap none swap sw 0 0\n' >"$tmp/h/etc/fstab"
{
    printf 'PRAGMA journal_mode=WAL;\n'
    printf 'CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL, version INTEGER NOT NULL, writer INTEGER NOT NULL, mtime INTEGER NOT NULL, type INTEGER NOT NULL, name TEXT NOT NULL, data BLOB);\n'
    printf "INSERT INTO tree VALUES (0,0,1,0,0,8,'__version__',NULL);\n"
    printf "INSERT INTO tree VALUES (1,0,1,0,0,8,'storage.cfg',CAST('lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n' AS BLOB));\n"
    printf "INSERT INTO tree VALUES (2,0,1,0,0,4,'nodes',NULL);\n"
    printf "INSERT INTO tree VALUES (3,2,1,0,0,4,'pve1',NULL);\n"
    printf "INSERT INTO tree VALUES (4,3,1,0,0,4,'qemu-server',NULL);\n"
    i=0
    while [ $i -lt $NVM ]; do
        id=$((100 + i))
        printf "INSERT INTO tree VALUES (%s,4,1,0,0,8,'%s.conf',CAST('name: vm%s\nscsi0: local-lvm:vm-%s-disk-0,size=32G\n' AS BLOB));\n" \
            $((10 + i)) $id $id $id
        i=$((i + 1))
    done
} | sqlite3 "$tmp/h/var/lib/pve-cluster/config.db" >/dev/null
mke2fs -q -F -t ext4 -L pveroot -d "$tmp/h" "$tmp/root.ext4" 64M >/dev/null 2>&1
truncate -s 64M "$tmp/swap.img"
mkswap -q "$tmp/swap.img" >/dev/null

# ------------------------------------------------ the disk, the VG
rm -f "$img"
truncate -s 1T "$img"
sgdisk -n 1:2048:0 -t 1:8e00 -c 1:pve "$img" >/dev/null
start=$(sgdisk -i 1 "$img" | awk '/^First sector:/ { print $3 }')
last=$(sgdisk -i 1 "$img" | awk '/^Last sector:/ { print $3 }')
loop=$(losetup -f --show -o $((start * 512)) --sizelimit $(((last - start + 1) * 512)) "$img")
DEVS=$loop
Q pvcreate "$loop" >/dev/null
pv_uuid=$(Q pvs --noheadings -o pv_uuid "$loop" | tr -d ' ')
dev_size=$(Q pvs --noheadings --units s --nosuffix -o dev_size "$loop" | tr -d ' ')
pe_start=$(Q pvs --noheadings --units s --nosuffix -o pe_start "$loop" | tr -d ' ')
pe_count=$(((dev_size - pe_start) / 8192))
tdata=$((pe_count - 112))
nblocks=$((tdata * 64)) # 64 KiB blocks in a 4 MiB extent

python3 - "$tmp" "$img" $((start * 512 + pe_start * 512)) $nblocks $NVM <<'EOF'
import random, sys
tmp, img, pv, nblocks, nvm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
EXT, BS = 4 << 20, 65536
tdata = pv + 112 * EXT
guest = open(tmp + "/guest.img", "rb").read()
gblocks = [(i, guest[i * BS:(i + 1) * BS]) for i in range(len(guest) // BS)]
gblocks = [(i, b) for i, b in gblocks if b != bytes(BS)]
rnd = random.Random(1700000000).randbytes(64 << 20)
maps = {d: [] for d in range(1, nvm + 1)}
nxt = 0
with open(img, "r+b") as f:
    def put(d, blk):
        f.seek(tdata + d * BS)
        f.write(blk)
    for dev in range(1, nvm + 1):
        for i, b in gblocks:
            put(nxt, b)
            maps[dev].append((i, nxt))
            nxt += 1
    # VMs 100 and 101: the same 64 MiB at 64 MiB, blocks interleaved.
    for k in range(1024):
        blk = rnd[k * BS:(k + 1) * BS]
        for dev in (1, 2):
            put(nxt, blk)
            maps[dev].append((1024 + k, nxt))
            nxt += 1
    # VM 102: the same 64 MiB at 64 MiB, in consecutive data blocks (as a
    # guest writing alone gets them).
    for k in range(1024):
        put(nxt, rnd[k * BS:(k + 1) * BS])
        maps[3].append((1024 + k, nxt))
        nxt += 1
    # bench-linear (extents 96-111): the same bytes.
    f.seek(pv + 96 * EXT)
    f.write(rnd)
assert nxt < nblocks
with open(tmp + "/thin.xml", "w") as x:
    x.write('<superblock uuid="" time="0" transaction="%d" flags="0" version="2" '
            'data_block_size="128" nr_data_blocks="%d">\n' % (nvm, nblocks))
    for dev in range(1, nvm + 1):
        x.write('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" creation_time="0" snap_time="0">\n'
                % (dev, len(maps[dev]), dev))
        for o, d in sorted(maps[dev]):
            x.write('    <single_mapping origin_block="%d" data_block="%d" time="0"/>\n' % (o, d))
        x.write('  </device>\n')
    x.write('</superblock>\n')
EOF
truncate -s 128M "$tmp/tmeta"
thin_restore -q -i "$tmp/thin.xml" -o "$tmp/tmeta"
thin_check -q "$tmp/tmeta"

n=0
lv() {
    n=$((n + 1))
    printf '\t\t%s {\n\t\t\tid = "vmrB%02d-aaaa-bbbb-cccc-dddd-eeee-ffffff"\n' "$1" "$n"
    printf '\t\t\tstatus = [%s]\n\t\t\tflags = []\n' "$2"
    printf '\t\t\tcreation_time = 1700000000\n\t\t\tcreation_host = "pve1"\n'
    printf '\t\t\tsegment_count = 1\n\n%s\n\t\t}\n\n' "$3"
}
linear() {
    printf '\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %s\n' "$1"
    printf '\t\t\t\ttype = "striped"\n\t\t\t\tstripe_count = 1\n'
    printf '\t\t\t\tstripes = [\n\t\t\t\t\t"pv0", %s\n\t\t\t\t]\n\t\t\t}\n' "$2"
}
thin() {
    printf '\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 8192\n'
    printf '\t\t\t\ttype = "thin"\n\t\t\t\tthin_pool = "data"\n'
    printf '\t\t\t\ttransaction_id = %s\n\t\t\t\tdevice_id = %s\n\t\t\t}\n' "$1" "$1"
}
RW='"READ", "WRITE"'
RWV='"READ", "WRITE", "VISIBLE"'
{
    printf 'contents = "Text Format Volume Group"\nversion = 1\n\n'
    printf 'pve {\n\tid = "vmrBen-aaaa-bbbb-cccc-dddd-eeee-ffffff"\n\tseqno = 1\n'
    printf '\tformat = "lvm2"\n\tstatus = ["RESIZEABLE", "READ", "WRITE"]\n\tflags = []\n'
    printf '\textent_size = 8192\n\tmax_lv = 0\n\tmax_pv = 0\n\tmetadata_copies = 0\n\n'
    printf '\tphysical_volumes {\n\n\t\tpv0 {\n\t\t\tid = "%s"\n\t\t\tdevice = "%s"\n\n' "$pv_uuid" "$loop"
    printf '\t\t\tstatus = ["ALLOCATABLE"]\n\t\t\tflags = []\n\t\t\tdev_size = %s\n' "$dev_size"
    printf '\t\t\tpe_start = %s\n\t\t\tpe_count = %s\n\t\t}\n\t}\n\n\tlogical_volumes {\n\n' "$pe_start" "$pe_count"
    lv root "$RWV" "$(linear 16 0)"
    lv swap "$RWV" "$(linear 16 16)"
    lv data "$RWV" "$(printf '\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %s\n
\t\t\t\ttype = "thin-pool"\n\t\t\t\tmetadata = "data_tmeta"\n\t\t\t\tpool = "data_tdata"
\t\t\t\ttransaction_id = %s\n\t\t\t\tchunk_size = 128\n\t\t\t\tdiscards = "passdown"
\t\t\t\tzero_new_blocks = 1\n\t\t\t}' "$tdata" "$NVM")"
    i=1
    while [ $i -le $NVM ]; do
        lv "vm-$((99 + i))-disk-0" "$RWV" "$(thin $i)"
        i=$((i + 1))
    done
    lv bench-linear "$RWV" "$(linear 16 96)"
    lv data_tmeta "$RW" "$(linear 32 32)"
    lv data_tdata "$RW" "$(linear "$tdata" 112)"
    lv lvol0_pmspare "$RW" "$(linear 32 64)"
    printf '\t}\n}\n'
} >"$tmp/pve.vg"
Q vgcfgrestore --force -f "$tmp/pve.vg" pve >/dev/null
at() { echo $((pe_start + $1 * 8192)); }
dd if="$tmp/root.ext4" of="$loop" bs=512 seek="$(at 0)" conv=notrunc status=none
dd if="$tmp/swap.img" of="$loop" bs=512 seek="$(at 16)" conv=notrunc status=none
dd if="$tmp/tmeta" of="$loop" bs=512 seek="$(at 32)" conv=notrunc,sparse status=none
blockdev --flushbufs "$loop"
losetup -d "$loop"
loop=""
say "built $img ($(du -h "$img" | cut -f1) allocated)"
