#!/bin/sh
# The kernel engine's integration test, in a VM: this machine's kernel has
# no device-mapper (and nested KVM hangs), so a Debian kernel boots under
# qemu-system-x86_64 -accel tcg with a busybox initramfs holding the
# vmrescue binary, the kernel modules it needs, and a scratch disk with the
# fixture images; tests/vm/guest.sh runs the steps inside and prints
# VMTEST PASS/FAIL/SKIP lines, which this script collects.
#
# Usage: tests/vm/run.sh [--debug-binary]
#   VMRESCUE_FIXTURES  directory of freshly built fixtures (else the committed ones)
#   VMTEST_STRICT=0    let SKIP steps pass (a build without LVM2, ext, qcow2 or the
#                      demo disk); by default a skipped step fails the test
#   VMTEST_VERBOSE=1   show the output of passing steps too
#   VMTEST_TIMEOUT     seconds before the VM is killed (default 400)
# Downloads (the Debian kernel package) are cached under target/vm/cache.
set -eu
cd "$(dirname "$0")/../.."
repo=$(pwd)
vm=$repo/target/vm
cache=$vm/cache
mkdir -p "$cache"
profile=release
[ "${1:-}" = --debug-binary ] && profile=debug

say() { printf '\033[1m[vm] %s\033[0m\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
for t in qemu-system-x86_64 qemu-img qemu-nbd busybox cpio depmod modprobe dpkg-deb apt-get dmsetup losetup mke2fs e2fsck debugfs zstd; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing (see TEST_PACKAGES in scripts/lib.sh)"
done
started=$(date +%s)

# 1. The kernel: linux-image-amd64 names the versioned package it depends on.
say "Debian kernel (cached in $cache)"
meta=$(ls "$cache"/linux-image-amd64_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$meta" ]; then
    (cd "$cache" && apt-get download -q linux-image-amd64 >/dev/null 2>&1) ||
        { apt-get update -qq && (cd "$cache" && apt-get download -q linux-image-amd64 >/dev/null); }
    meta=$(ls "$cache"/linux-image-amd64_*.deb | head -n1)
fi
pkg=$(dpkg-deb -f "$meta" Depends | sed -n 's/^\(linux-image-[0-9][^ ,]*\).*/\1/p')
[ -n "$pkg" ] || die "cannot read the versioned image package from $meta"
deb=$(ls "$cache"/"$pkg"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
    (cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
    deb=$(ls "$cache"/"$pkg"_*.deb | head -n1)
fi
kver=${pkg#linux-image-}
kdir=$cache/$pkg
if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
    rm -rf "$kdir"
    dpkg-deb -x "$deb" "$kdir"
    depmod -b "$kdir" "$kver"
fi

# 2. The binary.
say "vmrescue ($profile build)"
if [ "$profile" = release ]; then
    cargo build --release --quiet
else
    cargo build --quiet
fi
bin=$repo/target/$profile/vmrescue

# 3. The initramfs.
say "initramfs"
root=$vm/root
rm -rf "$root"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" "$root/sys" \
    "$root/dev" "$root/run" "$root/tmp" "$root/work" "$root/modules" "$root/mnt" "$root/opt/host/bin" \
    "$root/var/lock"
cp "$(command -v busybox)" "$root/bin/busybox"
# copy_bin FILE: a host binary and the shared libraries it needs, at the same paths.
copy_bin() {
    cp "$1" "$root/opt/host/bin/$(basename "$1")"
    ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' |
        while read -r lib; do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
}
copy_bin "$bin"
strip "$root/opt/host/bin/vmrescue" 2>/dev/null || true
for t in dmsetup losetup e2fsck debugfs cp qemu-nbd; do copy_bin "$(command -v $t)"; done
# Modules, in the order modprobe would load them.
: >"$root/modules/order"
for m in loop dm-mod ext4 xfs crc32c_generic virtio_pci virtio_blk nbd; do
    modprobe -d "$kdir" -S "$kver" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$root/modules/"
    basename "$ko" >>"$root/modules/order"
done
cp tests/vm/init "$root/init"
cp tests/vm/guest.sh "$root/guest.sh"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$vm/initramfs.cpio.gz"

# 4. The scratch disk: fixture images and reports, on ext4.
say "scratch disk with the fixtures"
fx=$vm/fixtures
rm -rf "$fx"
mkdir -p "$fx"
fixture_src=${VMRESCUE_FIXTURES:-}
for name in kernel-a kernel-b lvm-gpt lvm-gpt-disk1; do
    if [ -n "$fixture_src" ] && [ -f "$fixture_src/$name.img" ]; then
        cp --sparse=always "$fixture_src/$name.img" "$fx/"
    elif [ -f "tests/fixtures/data/$name.img.zst" ]; then
        zstd -q -d "tests/fixtures/data/$name.img.zst" -o "$fx/$name.img.full"
        cp --sparse=always "$fx/$name.img.full" "$fx/$name.img"
        rm -f "$fx/$name.img.full"
    fi
done
for f in "${fixture_src:-tests/fixtures/data}"/*.manifest "${fixture_src:-tests/fixtures/data}"/kernel-*.json \
    "${fixture_src:-tests/fixtures/data}"/*.dmtable; do
    [ -f "$f" ] && cp "$f" "$fx/"
done
[ -f "$fx/kernel-a.img" ] || die "fixture kernel-a.img is missing (tests/fixtures/make/kernel.sh)"
# The same disk as qcow2, for the nbd path.
qemu-img convert -f raw -O qcow2 "$fx/kernel-a.img" "$fx/kernel-a.qcow2"
size_kb=$(du -sk "$fx" | cut -f1)
apparent_kb=$(du -sk --apparent-size "$fx" | cut -f1)
scratch=$vm/scratch.img
rm -f "$scratch"
truncate -s $(((apparent_kb * 2 + size_kb + 262144) / 1024))M "$scratch"
mke2fs -q -t ext4 -L vmwork -d "$fx" "$scratch"

# 5. Boot.
timeout_s=${VMTEST_TIMEOUT:-400}
log=$vm/console.log
say "booting $pkg under TCG (timeout ${timeout_s}s; console in $log)"
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp 1 -nographic -no-reboot \
    -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$vm/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 loglevel=1 VMTEST_STRICT=${VMTEST_STRICT:-1} VMTEST_VERBOSE=${VMTEST_VERBOSE:-0}" \
    -drive "file=$scratch,format=raw,if=virtio,cache=unsafe" </dev/null 2>&1 |
    tr -d '\r' | tee "$log" | grep --line-buffered -E '^(VMTEST|    \|)'
rc=$?
set -e
[ "$rc" = 0 ] || say "qemu exited with status $rc (124: timeout)"

# 6. Results.
pass=$(grep -c '^VMTEST PASS' "$log" || true)
fail=$(grep -c '^VMTEST FAIL' "$log" || true)
skip=$(grep -c '^VMTEST SKIP' "$log" || true)
elapsed=$(($(date +%s) - started))
grep -q '^VMTEST DONE' "$log" || die "the VM did not finish its steps (see $log)"
grep '^VMTEST BENCH' "$log" | sed 's/^VMTEST BENCH /[vm] benchmark: /' >&2 || true
say "pass=$pass fail=$fail skip=$skip, ${elapsed}s in all"
[ "$fail" = 0 ] || die "$fail step(s) failed"
if [ "$skip" != 0 ] && [ "${VMTEST_STRICT:-1}" = 1 ]; then
    die "$skip step(s) skipped (VMTEST_STRICT=0 lets them pass)"
fi
say "PASS"
