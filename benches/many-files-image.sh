#!/bin/sh
# Build the benchmark disk for benches/many_files.rs: an ext4 holding FILES
# empty files (default 10,000,000), 1,000 to a directory, under /many:
# /many/d0000/f000 ... /many/d9999/f999, plus /many/hello.txt (some bytes).
#
#   benches/many-files-image.sh OUTDIR [FILES]  -> OUTDIR/many-files-FILES.img
#
# An ext4 has at most 32,768 inodes per group with 4 KiB blocks, so 10 million
# inodes need 306 groups: the image is 40 GiB sparse, about 2.7 GiB allocated
# (the inode tables). As root the files are made through a kernel loop mount
# (no host inodes used; 10 million took about 5 minutes on a 2-core machine);
# otherwise with `mke2fs -d` from a generated tree (fine for the small sizes
# `cargo test` runs, too many host inodes for 10 million).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [FILES]" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
files=${2:-10000000}
dirs=$(((files + 999) / 1000))
img=$out/many-files-$files.img
tmp=$img.tmp
export LC_ALL=C

# Sized for the inodes: one 128 MiB group per 32,768 of them, plus room.
groups=$(((files + dirs + 32767) / 32768 + 2))
size=$((groups * 128))M
rm -f "$tmp"
truncate -s "$size" "$tmp"

# fill DIR FROM TO: directories dFROM..dTO-1 of DIR, 1,000 files each (the
# last one only up to FILES).
fill() {
    d=$2
    while [ "$d" -lt "$3" ]; do
        sub=$1/$(printf 'd%04d' "$d")
        mkdir "$sub"
        n=$((files - d * 1000))
        [ "$n" -gt 1000 ] && n=1000
        (cd "$sub" && seq -f 'f%03g' 0 $((n - 1)) | xargs touch)
        d=$((d + 1))
    done
}
populate() { # populate ROOT: the whole tree, on two processes
    mkdir "$1/many"
    half=$((dirs / 2))
    fill "$1/many" 0 "$half" &
    fill "$1/many" "$half" "$dirs"
    wait
    printf 'hello from a guest with many files\n' >"$1/many/hello.txt"
}

start=$(date +%s)
opts="-q -F -t ext4 -b 4096 -N $((files + dirs + 1000)) -E lazy_itable_init=1,lazy_journal_init=1,nodiscard"
if [ "$(id -u)" = 0 ]; then
    # shellcheck disable=SC2086
    mke2fs $opts "$tmp"
    mnt=$out/many-files-build.mnt
    mkdir -p "$mnt"
    mount -o loop,noinit_itable,noatime "$tmp" "$mnt"
    trap 'umount "$mnt" 2>/dev/null || true' EXIT INT TERM
    populate "$mnt"
    umount "$mnt"
    trap - EXIT INT TERM
    rmdir "$mnt"
else
    stage=$out/many-files-stage
    rm -rf "$stage"
    mkdir -p "$stage"
    populate "$stage"
    # shellcheck disable=SC2086
    mke2fs $opts -d "$stage" "$tmp"
    rm -rf "$stage"
fi
mv "$tmp" "$img"
echo "many-files-$files.img: $files files in $(($(date +%s) - start)) s," \
    "$(du -h "$img" | cut -f1) allocated of $(du -h --apparent-size "$img" | cut -f1)"
