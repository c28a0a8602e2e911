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
#   VMTEST_TIMEOUT     seconds before the VM is killed (default 1500: TCG on a busy machine is slow, and the LUKS steps unlock keyslots there, about 7 minutes)
#   VMRESCUE_BIN       a release binary already built from this tree (scripts/test passes the
#                      one scripts/release made, so CI does not build the release twice)
# Downloads (the Debian kernel package) are cached under target/vm/cache.
set -eu
cd "$(dirname "$0")/../.."
repo=$(pwd)
vm=$repo/target/vm
cache=$vm/cache
mkdir -p "$cache"
profile=release
[ "${1:-}" = --debug-binary ] && profile=debug

. tests/vm/lib.sh
say() { vm_say "$@"; }
die() { vm_die "$@"; }
vm_need qemu-system-x86_64 qemu-img qemu-nbd busybox cpio depmod modprobe dpkg-deb apt-get dmsetup losetup mke2fs e2fsck debugfs zstd cryptsetup
started=$(date +%s)

# 1. The kernel.
say "Debian kernel (cached in $cache)"
vm_kernel "$cache"

# 2. The binary.
if [ -n "${VMRESCUE_BIN:-}" ] && [ "$profile" = release ]; then
    [ -x "$VMRESCUE_BIN" ] || die "VMRESCUE_BIN=$VMRESCUE_BIN is not an executable"
    say "vmrescue (the release binary $VMRESCUE_BIN)"
    bin=$VMRESCUE_BIN
else
    say "vmrescue ($profile build)"
    if [ "$profile" = release ]; then
        cargo build --release --quiet
    else
        cargo build --quiet
    fi
    bin=$repo/target/$profile/vmrescue
fi

# 3. The initramfs.
say "initramfs"
root=$vm/root
vm_root "$root" tests/vm/guest.sh
vm_copy_bin "$root" "$bin"
strip "$root/opt/host/bin/vmrescue" 2>/dev/null || true
for t in dmsetup losetup e2fsck debugfs cp qemu-nbd cryptsetup; do vm_copy_bin "$root" "$(command -v $t)"; done
# Modules, in the order modprobe would load them (dm-zero: the `zero` lines
# of thin LVs' tables; the VM has no modprobe to load it on demand).
# dm-crypt and the ciphers of the LUKS fixtures (xts over ecb(aes), essiv).
vm_modules "$root" loop dm-mod dm-zero ext4 xfs crc32c_generic virtio_pci virtio_blk nbd \
    dm-crypt xts ecb essiv
vm_pack "$root" "$vm/initramfs.cpio.gz"

# 4. The scratch disk: fixture images and reports, on ext4.
say "scratch disk with the fixtures"
fx=$vm/fixtures
rm -rf "$fx"
mkdir -p "$fx"
fixture_src=${VMRESCUE_FIXTURES:-}
for name in kernel-a kernel-b lvm-gpt lvm-gpt-disk1 thin; do
    if [ -n "$fixture_src" ] && [ -f "$fixture_src/$name.img" ]; then
        cp --sparse=always "$fixture_src/$name.img" "$fx/"
    elif [ -f "tests/fixtures/data/$name.img.zst" ]; then
        zstd -q -d "tests/fixtures/data/$name.img.zst" -o "$fx/$name.img.full"
        cp --sparse=always "$fx/$name.img.full" "$fx/$name.img"
        rm -f "$fx/$name.img.full"
    fi
done
for f in "${fixture_src:-tests/fixtures/data}"/*.manifest "${fixture_src:-tests/fixtures/data}"/kernel-*.json \
    "${fixture_src:-tests/fixtures/data}"/*.dmtable "${fixture_src:-tests/fixtures/data}"/thin.sha256; do
    [ -f "$f" ] && cp "$f" "$fx/"
done
[ -f "$fx/kernel-a.img" ] || die "fixture kernel-a.img is missing (tests/fixtures/make/kernel.sh)"
# LVM on LUKS1/LUKS2 (not committed): from VMRESCUE_FIXTURES, else built here.
luks_src=$fixture_src
if [ -z "$luks_src" ] || [ ! -f "$luks_src/luks1-xts.img" ]; then
    luks_src=$vm/luks
    [ -f "$luks_src/luks2-argon2id-4k.img" ] || sh tests/fixtures/make/luks.sh "$luks_src" >&2
fi
for f in luks-plain.img luks1-xts.img luks1-essiv.img luks2-pbkdf2.img luks2-argon2id-4k.img luks.pass luks.sums; do
    cp --sparse=always "$luks_src/$f" "$fx/"
done
# The same disk as qcow2, for the nbd path.
qemu-img convert -f raw -O qcow2 "$fx/kernel-a.img" "$fx/kernel-a.qcow2"
scratch=$vm/scratch.img
vm_scratch "$fx" "$scratch"

# 5. Boot.
timeout_s=${VMTEST_TIMEOUT:-1500}
log=$vm/console.log
say "booting $VM_PKG under TCG (timeout ${timeout_s}s; console in $log)"
set +e
vm_boot "$timeout_s" "$log" "$vm/initramfs.cpio.gz" "$scratch" '^(VMTEST|    \|)' \
    "VMTEST_STRICT=${VMTEST_STRICT:-1} VMTEST_VERBOSE=${VMTEST_VERBOSE:-0}"
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
