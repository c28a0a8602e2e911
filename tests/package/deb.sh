#!/bin/sh
# The .deb as an operator installs it: scripts/release builds it, then in a
# fresh Debian 12 root (mmdebstrap, cached) `dpkg -i` installs it, and
# `vmrescue --version`, `vmrescue layers --demo`, `man vmrescue` and the
# completions work there; `dpkg --purge` removes every file it installed.
# The release is built twice (vmrescue compiled afresh the second time) and
# must give the same bytes (SHA256SUMS).
#
# Usage: tests/package/deb.sh [WORKDIR]   (as root; default target/package-test)
# Prints PACKAGE PASS/FAIL lines; exits 1 on any failure.
set -eu
cd "$(dirname "$0")/../.."
repo=$(pwd)
. scripts/lib.sh
need_root
work=${1:-$repo/target/package-test}
mkdir -p "$work"
work=$(cd "$work" && pwd)
fails=0
pass() { printf 'PACKAGE PASS %s\n' "$*"; }
fail() { printf 'PACKAGE FAIL %s\n' "$*"; fails=$((fails + 1)); }

say "release, twice (reproducible bytes)"
sh scripts/release "$work/out1" >"$work/release1.log" 2>&1 || { cat "$work/release1.log" >&2; exit 1; }
# The second build compiles vmrescue itself again (its dependencies come
# from the same cache): the crate's own bytes must not depend on the build.
CARGO_TARGET_DIR=$repo/target/dist cargo clean --release --quiet -p vmrescue
sh scripts/release "$work/out2" >"$work/release2.log" 2>&1 || { cat "$work/release2.log" >&2; exit 1; }
if cmp -s "$work/out1/SHA256SUMS" "$work/out2/SHA256SUMS"; then
    pass "two release builds give the same bytes"
else
    fail "two release builds differ:"; diff "$work/out1/SHA256SUMS" "$work/out2/SHA256SUMS" || true
fi
deb=$(ls "$work"/out1/vmrescue_*.deb)
(cd "$work/out1" && sha256sum -c --quiet SHA256SUMS) && pass "SHA256SUMS matches" || fail "SHA256SUMS"

depends=$(dpkg-deb -f "$deb" Depends)
# Computed from the binary's shared libraries (device-mapper is driven by
# ioctls, so libc is all it links).
needed=$(objdump -p "$repo/target/dist/release/vmrescue" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
case "$depends" in
*libc6*) pass "Depends computed from the binary (NEEDED: $needed): $depends" ;;
*) fail "Depends lacks libc6 (NEEDED: $needed): $depends" ;;
esac
case "$depends" in
*qemu*) fail "Depends names QEMU (conflicts with pve-qemu-kvm): $depends" ;;
*) pass "no QEMU dependency" ;;
esac
listing=$(dpkg-deb -c "$deb")
for f in ./usr/bin/vmrescue ./usr/share/man/man1/vmrescue.1.gz ./usr/share/man/man1/vmrescue-cp.1.gz \
    ./usr/share/bash-completion/completions/vmrescue ./usr/share/zsh/vendor-completions/_vmrescue \
    ./usr/share/fish/vendor_completions.d/vmrescue.fish ./usr/share/doc/vmrescue/README.md \
    ./usr/share/doc/vmrescue/CHANGELOG.md ./usr/share/doc/vmrescue/copyright; do
    printf '%s\n' "$listing" | grep -q " $f\$" && pass "ships $f" || fail "does not ship $f"
done

say "a fresh Debian 12 root (mmdebstrap, cached)"
cache=$work/cache
mkdir -p "$cache"
tarball=$cache/debian12-package-root.tar
if [ ! -s "$tarball" ]; then
    mmdebstrap --quiet --format=tar --variant=minbase \
        --include=man-db,bash,bash-completion \
        bookworm "$tarball.part" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    mv "$tarball.part" "$tarball"
fi
root=$work/root
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
cp "$deb" "$root/tmp/vmrescue.deb"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "$@"; }

if in_root dpkg -i /tmp/vmrescue.deb >"$work/dpkg-i.log" 2>&1; then
    pass "dpkg -i installs it"
else
    fail "dpkg -i: $(tail -n 5 "$work/dpkg-i.log")"
fi
version=$(in_root vmrescue --version 2>&1 || true)
case "$version" in
"vmrescue "[0-9]*) pass "vmrescue --version: $version" ;;
*) fail "vmrescue --version: $version" ;;
esac
if in_root vmrescue layers --demo >"$work/layers.out" 2>&1 && grep -q "vg_ta" "$work/layers.out"; then
    pass "vmrescue layers --demo"
else
    fail "vmrescue layers --demo: $(tail -n 5 "$work/layers.out")"
fi
if in_root sh -c 'MANWIDTH=80 man vmrescue 2>&1' >"$work/man.out" && grep -q "EXAMPLES" "$work/man.out" &&
    grep -q "vmrescue doctor 108" "$work/man.out"; then
    pass "man vmrescue (with the story's EXAMPLES)"
else
    fail "man vmrescue: $(head -n 5 "$work/man.out")"
fi
if in_root sh -c 'MANWIDTH=80 man vmrescue-cp 2>&1' | grep -q "one-file-system"; then
    pass "man vmrescue-cp"
else
    fail "man vmrescue-cp"
fi
if in_root bash -c '. /usr/share/bash-completion/bash_completion; . /usr/share/bash-completion/completions/vmrescue;
    COMP_WORDS=(vmrescue do); COMP_CWORD=1; _vmrescue vmrescue do vmrescue; printf "%s\n" "${COMPREPLY[@]}"' \
    2>&1 | grep -qx doctor; then
    pass "bash completes 'vmrescue do' to doctor"
else
    fail "bash completion"
fi
if in_root dpkg --purge vmrescue >"$work/dpkg-r.log" 2>&1 && [ ! -e "$root/usr/bin/vmrescue" ] &&
    [ ! -e "$root/usr/share/man/man1/vmrescue.1.gz" ] && [ ! -e "$root/usr/share/doc/vmrescue" ]; then
    pass "dpkg --purge removes it cleanly"
else
    fail "dpkg --purge: $(tail -n 5 "$work/dpkg-r.log")"
fi
umount "$root/proc"
trap - EXIT
rm -rf "$root"
if [ "$fails" -ne 0 ]; then
    say "package test: $fails failure(s)"
    exit 1
fi
say "package test passed"
