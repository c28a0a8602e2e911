# Shared by scripts/demo and scripts/test: install what is missing, say so.
# shellcheck shell=sh

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages needed to build vmrescue (devicemapper-sys runs bindgen).
BUILD_PACKAGES="pkg-config libdevmapper-dev libclang-dev gcc libc6-dev zstd ca-certificates curl"
# Debian packages the tests use to build fixtures and check our results.
TEST_PACKAGES="fdisk gdisk ldmtool 7zip lvm2 e2fsprogs xfsprogs dosfstools mtools btrfs-progs util-linux g++ thin-provisioning-tools \
attr tmux cpio busybox-static qemu-utils qemu-system-x86 kmod fuse2fs python3 dmsetup \
exfatprogs ntfs-3g xorriso gzip xz-utils bzip2 systemd systemd-journal-remote \
mmdebstrap grub-common openssl mdadm sqlite3 libhivex-bin libwin-hivex-perl \
cryptsetup-bin python3-cryptography nbdkit rsync"
# GNU time: benches/many_files.rs reads each command's peak RSS from it.
TEST_PACKAGES="$TEST_PACKAGES time"
# The RBD tests' one-node Ceph cluster (tests/rbd/cluster.sh).
TEST_PACKAGES="$TEST_PACKAGES ceph-mon ceph-osd ceph-common librbd1 librados2 python3-rbd python3-rados"

# On a Proxmox VE node, Debian's qemu-utils and qemu-system-x86 conflict with
# Proxmox's own QEMU (pve-qemu-kvm), which provides qemu-img, qemu-nbd and
# qemu-system-x86_64 already: use it and never install Debian's there.
if dpkg-query -W -f='${Status}' pve-qemu-kvm 2>/dev/null | grep -q "ok installed"; then
    TEST_PACKAGES=$(printf '%s\n' $TEST_PACKAGES | grep -v -x -e qemu-utils -e qemu-system-x86 | tr '\n' ' ')
    PVE_QEMU=1
else
    PVE_QEMU=0
fi

need_root() {
    if [ "$(id -u)" != 0 ]; then
        say "this script installs packages and uses loop devices: run it as root (sudo $0)"
        exit 2
    fi
}

# missing_packages PKG...: the ones not installed.
missing_packages() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || printf '%s ' "$p"
    done
}

# ensure_packages PKG...: install the Debian packages that are not installed yet.
ensure_packages() {
    missing=$(missing_packages "$@")
    [ -z "$missing" ] && return 0
    say "installing missing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || say "apt-get update failed; trying with the package lists we have"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || true
    # Installing one package can remove another (qemu-system-x86 from the
    # distribution replaces a newer qemu-utils from backports): check again and
    # take what is still missing from the distribution's own release.
    missing=$(missing_packages "$@")
    [ -z "$missing" ] && return 0
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    say "installing from $codename (allowing downgrades to match): $missing"
    # shellcheck disable=SC2046
    apt-get install -y -qq --no-install-recommends --allow-downgrades \
        $(for p in $missing; do printf '%s/%s ' "$p" "$codename"; done) >/dev/null || true
    missing=$(missing_packages "$@")
    if [ -n "$missing" ]; then
        say "could not install: $missing (see apt-get's messages above)"
        return 1
    fi
}

# ensure_rust: a Rust toolchain new enough for edition 2024, with clippy and rustfmt.
ensure_rust() {
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        say "installing the Rust toolchain with rustup (static.rust-lang.org)"
        curl -sSf https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init -o /tmp/rustup-init
        chmod +x /tmp/rustup-init
        /tmp/rustup-init -y -q --profile minimal --component clippy,rustfmt
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
    fi
    if command -v rustup >/dev/null 2>&1; then
        for c in clippy rustfmt; do
            rustup component list --installed 2>/dev/null | grep -q "^$c" || {
                say "adding the $c component"
                rustup component add "$c"
            }
        done
    fi
}
