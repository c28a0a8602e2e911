# The test VM, shared by tests/vm/run.sh (the kernel engine's test) and
# tests/vm/build.sh (fixtures built by the VM's kernel: md, dm-raid): a
# Debian kernel booted under qemu-system-x86_64 -accel tcg with a busybox
# initramfs (tests/vm/init as PID 1) and one scratch ext4 disk mounted on
# /work. Sourced, never run on its own; POSIX sh.
#
#   vm_say MESSAGE...         a bold "[vm]" line on stderr
#   vm_die MESSAGE...         vm_say FAIL: ..., exit 1
#   vm_need TOOL...           die unless every TOOL is on PATH
#   vm_kernel CACHE           the Debian kernel package (downloaded once into
#                             CACHE, unpacked, depmod run): sets VM_PKG,
#                             VM_KVER, VM_KDIR, VM_VMLINUZ
#   vm_root ROOT SCRIPT       a fresh initramfs tree in ROOT: busybox, the
#                             directories init needs, tests/vm/init, SCRIPT
#                             as /guest.sh (init runs it from /work)
#   vm_copy_bin ROOT FILE     a host binary into ROOT/opt/host/bin (first on
#                             the VM's PATH) with the libraries ldd names
#   vm_modules ROOT MODULE... the modules and their dependencies, in the
#                             order modprobe --show-depends gives, loaded by init
#   vm_pack ROOT OUT          ROOT as a gzip'd newc cpio archive OUT
#   vm_scratch DIR IMG [MIB]  IMG: an ext4 (label vmwork) holding DIR's
#                             files, with twice their size plus MIB (default
#                             256) MiB free
#   vm_boot TIMEOUT LOG INITRD SCRATCH PATTERN APPEND...
#                             boot the kernel (killed after TIMEOUT seconds),
#                             console to LOG (CRs removed), lines matching
#                             the extended regex PATTERN shown; the status
#                             is grep's (the VM reports its own results)
#
# The caller's working directory is the repository's root.

vm_say() { printf '\033[1m[vm] %s\033[0m\n' "$*" >&2; }
vm_die() {
    vm_say "FAIL: $*"
    exit 1
}

vm_need() {
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || vm_die "$t is missing (see TEST_PACKAGES in scripts/lib.sh)"
    done
}

vm_kernel() {
    vm_cache=$1
    mkdir -p "$vm_cache"
    # linux-image-amd64 names the versioned package it depends on.
    vm_meta=$(ls "$vm_cache"/linux-image-amd64_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$vm_meta" ]; then
        (cd "$vm_cache" && apt-get download -q linux-image-amd64 >/dev/null 2>&1) ||
            { apt-get update -qq && (cd "$vm_cache" && apt-get download -q linux-image-amd64 >/dev/null); }
        vm_meta=$(ls "$vm_cache"/linux-image-amd64_*.deb | head -n1)
    fi
    VM_PKG=$(dpkg-deb -f "$vm_meta" Depends | sed -n 's/^\(linux-image-[0-9][^ ,]*\).*/\1/p')
    [ -n "$VM_PKG" ] || vm_die "cannot read the versioned image package from $vm_meta"
    vm_deb=$(ls "$vm_cache"/"$VM_PKG"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$vm_deb" ]; then
        (cd "$vm_cache" && apt-get download -q "$VM_PKG" >/dev/null 2>&1) || vm_die "apt-get download $VM_PKG failed"
        vm_deb=$(ls "$vm_cache"/"$VM_PKG"_*.deb | head -n1)
    fi
    VM_KVER=${VM_PKG#linux-image-}
    VM_KDIR=$vm_cache/$VM_PKG
    if [ ! -f "$VM_KDIR/boot/vmlinuz-$VM_KVER" ]; then
        rm -rf "$VM_KDIR"
        dpkg-deb -x "$vm_deb" "$VM_KDIR"
        depmod -b "$VM_KDIR" "$VM_KVER"
    fi
    VM_VMLINUZ=$VM_KDIR/boot/vmlinuz-$VM_KVER
}

vm_root() {
    rm -rf "$1"
    mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin" "$1/proc" "$1/sys" \
        "$1/dev" "$1/run" "$1/tmp" "$1/work" "$1/modules" "$1/mnt" "$1/opt/host/bin" \
        "$1/var/lock" "$1/etc"
    cp "$(command -v busybox)" "$1/bin/busybox"
    : >"$1/modules/order"
    cp tests/vm/init "$1/init"
    cp "$2" "$1/guest.sh"
    chmod +x "$1/init"
}

vm_copy_bin() {
    cp "$2" "$1/opt/host/bin/$(basename "$2")"
    ldd "$2" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' |
        while read -r vm_lib; do
            mkdir -p "$1$(dirname "$vm_lib")"
            cp -L "$vm_lib" "$1$vm_lib"
        done
}

vm_modules() {
    vm_r=$1
    shift
    for m in "$@"; do
        modprobe -d "$VM_KDIR" -S "$VM_KVER" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
    done | awk '!seen[$0]++' | while read -r ko; do
        # Already listed by an earlier call: loaded once.
        grep -qxF "$(basename "$ko")" "$vm_r/modules/order" && continue
        cp "$ko" "$vm_r/modules/"
        basename "$ko" >>"$vm_r/modules/order"
    done
}

vm_pack() {
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
}

vm_scratch() {
    vm_size_kb=$(du -sk "$1" | cut -f1)
    vm_apparent_kb=$(du -sk --apparent-size "$1" | cut -f1)
    rm -f "$2"
    truncate -s $(((vm_apparent_kb * 2 + vm_size_kb + ${3:-256} * 1024) / 1024))M "$2"
    mke2fs -q -t ext4 -L vmwork -d "$1" "$2"
}

vm_boot() {
    vm_timeout=$1 vm_log=$2 vm_initrd=$3 vm_disk=$4 vm_pattern=$5
    shift 5
    timeout "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp 1 -nographic -no-reboot \
        -kernel "$VM_VMLINUZ" -initrd "$vm_initrd" \
        -append "console=ttyS0 panic=-1 loglevel=1 $*" \
        -drive "file=$vm_disk,format=raw,if=virtio,cache=unsafe" </dev/null 2>&1 |
        tr -d '\r' | tee "$vm_log" | grep --line-buffered -E "$vm_pattern"
}
