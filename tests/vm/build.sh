#!/bin/sh
# Build fixtures with the test VM's kernel (md, dm-raid, dm-mirror: this
# machine's kernel has neither md nor device-mapper): boot the Debian kernel
# of tests/vm/lib.sh under TCG with mdadm, lvm2 and e2fsprogs in its
# initramfs, run SCRIPT there, and copy what it wrote back to OUTDIR.
#
# Usage: tests/vm/build.sh SCRIPT OUTDIR [INPUT...]
#   SCRIPT  a POSIX sh script run by the VM's busybox sh as root from /work
#           (the scratch ext4): the INPUT files are in /work/in (by their
#           base names), its outputs go to /work/out. It prints
#           `VMBUILD OK` as its last line when it succeeded; lines starting
#           with `VMBUILD` are shown here. The VM has busybox, mdadm, lvm
#           (an lvm.conf without udev, lvmetad or monitoring), mke2fs,
#           e2fsck, debugfs, sfdisk, util-linux losetup and blockdev, GNU cp,
#           and the modules loop, ext4, md (raid0/1/10/456, linear), dm
#           (linear, striped, zero, raid, mirror, snapshot, thin).
#   OUTDIR  receives every file of /work/out (sparse copies).
#   VMBUILD_TIMEOUT  seconds before the VM is killed (default 900)
#   VMBUILD_SPACE    MiB free on the scratch disk besides twice the inputs
#                    (default 1024)
# Downloads (the Debian kernel package) are cached under target/vm/cache.
# Needs root (the scratch disk is loop-mounted read-only to copy the outputs).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 SCRIPT OUTDIR [INPUT...]" >&2; exit 2; }
script=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
outdir=$(cd "$2" && pwd)
shift 2
stage=$(mktemp -d)
mnt=""
cleanup() {
    set +e
    [ -z "$mnt" ] || { mountpoint -q "$mnt" && umount "$mnt"; rmdir "$mnt"; }
    rm -rf "$stage"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
mkdir -p "$stage/scratch/in" "$stage/scratch/out"
for f in "$@"; do
    cp --sparse=always "$f" "$stage/scratch/in/"
done

cd "$(dirname "$0")/../.."
repo=$(pwd)
. tests/vm/lib.sh
vm_need qemu-system-x86_64 busybox cpio depmod modprobe dpkg-deb apt-get mke2fs mdadm lvm sfdisk losetup
name=$(basename "$script" .sh)
vm=$repo/target/vm/build-$name
mkdir -p "$vm"
vm_kernel "$repo/target/vm/cache"

root=$vm/root
vm_root "$root" "$script"
for t in mdadm lvm mke2fs e2fsck debugfs sfdisk losetup blockdev cp; do
    vm_copy_bin "$root" "$(command -v $t)"
done
mkdir -p "$root/etc/lvm" "$root/run/lock/lvm" "$root/run/lvm" "$root/run/mdadm"
cat >"$root/etc/lvm/lvm.conf" <<'CONF'
# lvm2 in the fixture VM: no udev, no lvmetad/lvmpolld/dmeventd, no backups.
devices {
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    md_component_detection = 1
    multipath_component_detection = 0
    use_devicesfile = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 1
    monitoring = 0
    polling_interval = 1
}
global {
    use_lvmpolld = 0
    event_activation = 0
}
backup {
    backup = 0
    archive = 0
}
CONF
vm_modules "$root" loop ext4 crc32c_generic virtio_pci virtio_blk \
    md-mod linear raid0 raid1 raid10 raid456 \
    dm-mod dm-raid dm-mirror dm-log dm-region-hash dm-snapshot dm-thin-pool dm-zero
vm_pack "$root" "$vm/initramfs.cpio.gz"

scratch=$vm/scratch.img
vm_scratch "$stage/scratch" "$scratch" "${VMBUILD_SPACE:-1024}"
timeout_s=${VMBUILD_TIMEOUT:-900}
log=$vm/console.log
vm_say "$name: booting $VM_PKG under TCG (timeout ${timeout_s}s; console in $log)"
started=$(date +%s)
set +e
vm_boot "$timeout_s" "$log" "$vm/initramfs.cpio.gz" "$scratch" '^(VMBUILD|    \|)'
set -e
grep -q '^VMBUILD OK' "$log" || vm_die "$name did not finish in the VM (see $log)"
vm_say "$name: $(($(date +%s) - started))s in the VM"

mnt=$(mktemp -d)
mount -o ro,loop,noload "$scratch" "$mnt"
for f in "$mnt"/out/*; do
    [ -e "$f" ] || continue
    cp -r --sparse=always "$f" "$outdir/"
done
umount "$mnt"
rmdir "$mnt"
mnt=""
rm -f "$scratch"
