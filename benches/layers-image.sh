#!/bin/sh
# Build the benchmark disk for benches/layers.rs with real tools: a 1 TiB
# sparse raw image with a full MBR + LVM2 layout.
#
#   p1  1 GiB ext4 /boot (bootable)
#   p2  511 GiB, p3 the rest: LVM2 PVs of VG vg_bench (4 MiB extents)
#       lv_root  50 GiB ext4, then extended by 10 GiB on the other PV (2 segments)
#       lv_swap  16 GiB swap
#       lv_home 300 GiB ext4
#       lv_var  100 GiB xfs
#       lv_data 200 GiB striped over both PVs (64 KiB stripes), never formatted
#       lv_tmp    8 GiB ext4
#
#   benches/layers-image.sh OUTDIR   -> OUTDIR/layers-1t.img (a few MiB allocated)
# Needs root (loop devices), sfdisk, lvm2, e2fsprogs, xfsprogs, util-linux.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
img=$out/layers-1t.img
export LVM_SUPPRESS_FD_WARNINGS=1 LC_ALL=C

loops=""
cleanup() { for l in $loops; do losetup -d "$l" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
# attach [losetup options] FILE: sets $l to a new loop device, detached on exit.
# (Not in a $(...) subshell: $loops must be updated in this shell.)
attach() {
    l=$(losetup -f --show "$@")
    loops="$loops $l"
}

rm -f "$img"
truncate -s 1T "$img"
sfdisk --quiet --no-reread --no-tell-kernel "$img" <<'EOF'
label: dos
label-id: 0x1b2c3d4e
unit: sectors

start=2048, size=2097152, type=83, bootable
start=2099200, size=1071644672, type=8e
start=1073743872, type=8e
EOF
part() { # part N -> "start size" in bytes
    sfdisk -d "$img" | sed -n "s/.*img$1 : start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p" |
        { read -r s n; echo $((s * 512)) $((n * 512)); }
}
set -- $(part 1)
attach -o "$1" --sizelimit "$2" "$img"
mke2fs -q -F -t ext4 -L boot -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$l"
set -- $(part 2)
attach -o "$1" --sizelimit "$2" "$img"
pv1=$l
p2=$1
set -- $(part 3)
attach -o "$1" --sizelimit "$2" "$img"
pv2=$l
p3=$1

lvm_() {
    cmd=$1
    shift
    lvm "$cmd" --devices "$pv1" --devices "$pv2" --driverloaded n \
        --config 'backup{backup=0 archive=0} devices{obtain_device_list_from_udev=0}' "$@"
}
: >"$out/layers-1t.lvm.log"
# lvm2, its messages kept in a log shown only when a command fails.
lvm_run() {
    lvm_ "$@" >>"$out/layers-1t.lvm.log" 2>&1 || { cat "$out/layers-1t.lvm.log" >&2; exit 1; }
}
lvm_run pvcreate "$pv1" "$pv2"
lvm_run vgcreate -s 4M vg_bench "$pv1" "$pv2"
lvm_run lvcreate -an -Zn -L 50G -n lv_root vg_bench "$pv1"
lvm_run lvcreate -an -Zn -L 16G -n lv_swap vg_bench "$pv1"
lvm_run lvcreate -an -Zn -L 300G -n lv_home vg_bench "$pv1"
lvm_run lvcreate -an -Zn -L 100G -n lv_var vg_bench "$pv2"
lvm_run lvcreate -an -Zn -L 200G -i 2 -I 64k -n lv_data vg_bench
lvm_run lvcreate -an -Zn -L 8G -n lv_tmp vg_bench "$pv2"
lvm_run lvextend -L +10G vg_bench/lv_root "$pv2"

# Where each LV's first segment lies on the disk: "pvN:first-last" ranges.
pe_start=$(lvm_ pvs --noheadings --units b --nosuffix -o pe_start "$pv1" 2>/dev/null | tr -d ' ')
first_at() { # LV -> byte offset of its first extent on the disk
    r=$(lvm_ lvs --noheadings -o seg_pe_ranges --segments "vg_bench/$1" 2>/dev/null | head -1 | tr -d ' ')
    dev=${r%%:*}
    pe=${r#*:}
    pe=${pe%%-*}
    base=$p2
    [ "$dev" = "$pv2" ] && base=$p3
    echo $((base + pe_start + pe * 4194304))
}
fs() { # fs LV BYTES KIND
    attach -o "$(first_at "$1")" --sizelimit "$2" "$img"
    case $3 in
    ext4) mke2fs -q -F -t ext4 -L "$1" -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$l" ;;
    xfs) mkfs.xfs -q -f -K -L "$1" "$l" ;;
    swap) mkswap -L "$1" "$l" >/dev/null ;;
    esac
}
G=1073741824
fs lv_root $((50 * G)) ext4
fs lv_swap $((16 * G)) swap
fs lv_home $((300 * G)) ext4
fs lv_var $((100 * G)) xfs
fs lv_tmp $((8 * G)) ext4
lvm_ lvs -a --segments --units b --nosuffix --reportformat json vg_bench >"$out/layers-1t.lvs.json" 2>/dev/null
echo "layers-1t.img: $(du -h "$img" | cut -f1) allocated of $(du -h --apparent-size "$img" | cut -f1)"
