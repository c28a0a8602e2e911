#!/bin/sh
# The kernel engine's test steps, run inside the test VM (busybox sh, as
# root, with device-mapper) from /work, which holds the fixture images,
# their manifests (every file: path, type, permissions, size, link target,
# SHA-256, as `vmrescue walk` prints them) and lvm2's reports.
#
# Each step prints `VMTEST PASS name`, `VMTEST FAIL name` (with its output)
# or `VMTEST SKIP name: why`. Adding a step is one line: `step NAME FUNCTION ARGS...`.
export NO_COLOR=1
export XDG_STATE_HOME=/tmp/state
cd /work || exit 1
# Busybox's shell prefers its own applets to PATH: util-linux's losetup by its path.
LOSETUP=/opt/host/bin/losetup
CP="/opt/host/bin/cp --sparse=always"
PASS=0
FAIL=0
SKIP=0

now() { cut -d' ' -f1 /proc/uptime; }
# elapsed START: seconds since START (two decimals).
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

step() {
    name=$1
    shift
    t0=$(now)
    if ("$@") >/tmp/step.out 2>&1; then
        PASS=$((PASS + 1))
        echo "VMTEST PASS $name ($(elapsed "$t0")s)"
        [ "${VMTEST_VERBOSE:-0}" = 1 ] && sed 's/^/    | /' /tmp/step.out
    else
        FAIL=$((FAIL + 1))
        echo "VMTEST FAIL $name ($(elapsed "$t0")s)"
        tail -n 40 /tmp/step.out | sed 's/^/    | /'
    fi
}
skip() {
    SKIP=$((SKIP + 1))
    echo "VMTEST SKIP $1: $2"
}
# fail MESSAGE: end the step (steps run in a subshell) as failed.
fail() {
    echo "$*"
    exit 1
}

# The disk sets: the arguments naming each VM's disks.
MULTI="kernel-a.img --disk kernel-b.img"

# has_volume DISKS VOLUME: whether `layers` lists VOLUME.
has_volume() {
    # shellcheck disable=SC2086
    vmrescue layers $1 --json 2>/dev/null | grep -q "\"volume\": \"$2\""
}

# --- what is ours on the system -------------------------------------------
our_mounts() { grep ' /run/vmrescue/' /proc/mounts; }
our_dms() {
    for d in /sys/block/dm-*; do
        [ -e "$d/dm/name" ] || continue
        case $(cat "$d/dm/name") in vmrescue-*) echo "${d##*/} $(cat "$d/dm/name")" ;; esac
    done
}
bound_loops() {
    for l in /sys/block/loop*; do
        [ -e "$l/loop/backing_file" ] && echo "${l##*/} $(cat "$l/loop/backing_file")"
    done
}
served_nbds() {
    for n in /sys/block/nbd*; do
        [ -e "$n/pid" ] && echo "${n##*/} served by pid $(cat "$n/pid")"
    done
}
leftovers() {
    our_mounts
    our_dms
    bound_loops
    served_nbds
    ls /run/vmrescue/ 2>/dev/null
}
# clean: nothing of ours left (waits up to 3 s for autoclear).
clean() {
    i=0
    while [ -n "$(leftovers)" ] && [ $i -lt 30 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ -n "$(leftovers)" ]; then
        echo "left behind:"
        leftovers
        return 1
    fi
}

# start_mount DISKS VOLUME: `vmrescue mount` in the background; sets MPID and MDIR.
start_mount() {
    # shellcheck disable=SC2086
    vmrescue mount $1 --volume "$2" >/tmp/mount.out 2>/tmp/mount.err &
    MPID=$!
    i=0
    while [ $i -lt "${MAP_WAIT:-300}" ]; do
        MDIR=$(head -n1 /tmp/mount.out 2>/dev/null)
        if [ -n "$MDIR" ] && grep -q " $MDIR " /proc/mounts; then
            return 0
        fi
        kill -0 "$MPID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    cat /tmp/mount.err
    fail "vmrescue mount $2 did not come up"
}

# stop_mount SIGNAL: signal the mount process, wait for it, check nothing is left.
stop_mount() {
    kill "-$1" "$MPID"
    wait "$MPID"
    echo "mount process ended with status $?"
    clean
}

# bb_manifest DIR: the walk lines computed with busybox over a mounted tree.
bb_manifest() {
    (
        cd "$1" || exit 1
        find . | while read -r p; do
            path=${p#.}
            [ -z "$path" ] && path=/
            set -- $(stat -c '%f %s' "$p")
            mode=$((0x$1))
            size=$2
            case $((mode & 0170000)) in
                $((0100000))) t=file ;; $((0040000))) t=dir ;; $((0120000))) t=link ;;
                $((0010000))) t=fifo ;; $((0020000))) t=chr ;; $((0060000))) t=blk ;;
                $((0140000))) t=sock ;; *) t=unknown ;;
            esac
            target=
            sum=
            [ "$t" = link ] && target=$(readlink "$p")
            [ "$t" = file ] && sum=$(sha256sum "$p" | cut -d' ' -f1)
            [ "$t" = dir ] && size=-
            printf '%s\t%s\t%04o\t%s\t%s\t%s\n' "$path" "$t" $((mode & 07777)) "$size" "$target" "$sum"
        done | sort
    )
}

# --- steps ------------------------------------------------------------------

# The kernel engine is available here and `layers` says it serves the volumes.
t_layers() {
    vmrescue layers $MULTI --engine kernel >/tmp/layers.txt || true
    cat /tmp/layers.txt
    grep -E '^p1 +kernel +ext4: mounted read-only by the kernel' /tmp/layers.txt || fail "p1 not served by the kernel engine"
    grep -E '^p2 +kernel +xfs' /tmp/layers.txt || fail "p2 (xfs) not served by the kernel engine"
    vmrescue layers $MULTI >/tmp/layers-auto.txt || true
    grep -E '^p2 +userspace +xfs: read by vmrescue itself' \
        /tmp/layers-auto.txt || fail "auto does not pick the userspace engine for xfs"
}

# no_dm STEP...: run a step as on a kernel without device-mapper (a loop
# device over the volume's bytes; steps run in a subshell, so this stays there).
no_dm() {
    VMRESCUE_NO_DM=1
    export VMRESCUE_NO_DM
    "$@"
}

# walk_manifest DISKS VOLUME MANIFEST: the kernel engine's walk equals the fixture's manifest.
t_walk_manifest() {
    vmrescue walk $1 --volume "$2" --engine kernel >/tmp/walk.txt || fail "walk failed"
    grep -v '^/lost+found' /tmp/walk.txt >/tmp/walk.cmp
    diff "$3" /tmp/walk.cmp || fail "walk of $2 differs from $3"
    echo "$(wc -l </tmp/walk.cmp) entries equal"
    clean
}

# The devices of a mounted session are safe: read-only, autoclear, no
# partition scan, our names and UUIDs, no LVM label visible; the mount has
# the read-only options; busybox sees the same tree vmrescue walks (unless
# QUICK: a volume with big files, walked in the parity step instead);
# SIGTERM tears it all down.
t_mounted_session() {
    disks=$1 vol=$2 opts=$3 quick=${4:-}
    start_mount "$disks" "$vol" || exit 1
    grep " $MDIR " /proc/mounts
    grep " $MDIR " /proc/mounts | grep -q "ro,nosuid,nodev,noexec" || fail "mount options"
    for o in $(echo "$opts" | tr , ' '); do
        grep " $MDIR " /proc/mounts | grep -q "[ ,]$o[ ,]" || fail "no $o"
    done
    for l in /sys/block/loop*; do
        [ -e "$l/loop/backing_file" ] || continue
        n=${l##*/}
        echo "$n: $(cat "$l/loop/backing_file") offset $(cat "$l/loop/offset") ro $(cat "$l/ro") autoclear $(cat "$l/loop/autoclear") partscan $(cat "$l/loop/partscan")"
        [ "$(cat "$l/ro")" = 1 ] || fail "$n is writable"
        [ "$(cat "$l/loop/autoclear")" = 1 ] || fail "$n has no autoclear"
        [ "$(cat "$l/loop/partscan")" = 0 ] || fail "$n scans partitions"
        dd if="/dev/$n" bs=512 count=4 2>/dev/null | grep -q LABELONE && fail "$n shows an LVM label"
    done
    for d in /sys/block/dm-*; do
        [ -e "$d/dm/name" ] || continue
        n=${d##*/}
        echo "$n: $(cat "$d/dm/name") $(cat "$d/dm/uuid") ro $(cat "$d/ro"): $(dmsetup table "$(cat "$d/dm/name")")"
        case $(cat "$d/dm/name") in vmrescue-*) ;; *) fail "$n: foreign name" ;; esac
        case $(cat "$d/dm/uuid") in VMRESCUE-*) ;; *) fail "$n: foreign uuid" ;; esac
        [ "$(cat "$d/ro")" = 1 ] || fail "$n is writable"
        dd if="/dev/$n" bs=512 count=4 2>/dev/null | grep -q LABELONE && fail "$n shows an LVM label"
    done
    if [ -z "$quick" ]; then
        bb_manifest "$MDIR" >/tmp/bb.txt || fail "busybox walk failed"
        vmrescue walk $disks --volume "$vol" --engine kernel >/tmp/walk.txt || fail "walk failed"
        diff /tmp/bb.txt /tmp/walk.txt || fail "busybox and vmrescue disagree on $vol"
    fi
    stop_mount TERM
}

# map_pattern DISKS VOLUME: map an LV of the LVM fixtures (every sector holds
# "VMRESCUE-LVM <vg>/<lv> SECTOR <n>", written where lvm2's report says) and
# read every sector back through the dm device.
# start_map DISKS VOLUME: `vmrescue map` in the background; sets MPID, dev
# (the read-only dm device, its table shown) and n (its name in /sys/block).
start_map() {
    # shellcheck disable=SC2086
    vmrescue map $1 --volume "$2" >/tmp/map.out 2>/tmp/map.err &
    MPID=$!
    i=0
    dev=
    # MAP_WAIT: tenths of a second to wait (a LUKS keyslot's KDF is slow under TCG).
    while [ $i -lt "${MAP_WAIT:-300}" ]; do
        dev=$(head -n1 /tmp/map.out 2>/dev/null)
        [ -n "$dev" ] && [ -b "$dev" ] && break
        kill -0 "$MPID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$dev" ] && [ -b "$dev" ] || { cat /tmp/map.err; fail "vmrescue map $2 did not come up"; }
    cat /tmp/map.err
    n=${dev#/dev/}
    echo "$n: $(cat "/sys/block/$n/dm/name") ro $(cat "/sys/block/$n/ro"): $(dmsetup table "$(cat "/sys/block/$n/dm/name")")"
    [ "$(cat "/sys/block/$n/ro")" = 1 ] || fail "$n is writable"
}

t_map_pattern() {
    start_map "$1" "$2" || exit 1
    size=$(cat "/sys/block/$n/size")
    awk -v lv="$2" -v n="$size" '
        $1 != "VMRESCUE-LVM" || $2 != lv || $3 != "SECTOR" || $4 != NR - 1 {
            bad++
            if (bad < 5) print "sector " NR - 1 ": " substr($0, 1, 60)
        }
        END { print NR " sectors of " n ", " bad + 0 " wrong"; exit (bad > 0 || NR != n) }' "$dev" ||
        fail "wrong bytes through $dev"
    stop_mount TERM
}

# ls_cp DISKS VOLUME DIR: `ls` and `cp` through the kernel engine agree with
# its walk: the names in DIR, and every file, link and mode of the copy.
t_ls_cp() {
    disks=$1 vol=$2 dir=$3
    vmrescue walk $disks --volume "$vol" --engine kernel >/tmp/walk.txt || fail "walk failed"
    # shellcheck disable=SC2086
    vmrescue ls --engine kernel --volume "$vol" $disks "$dir" >/tmp/ls.txt || fail "ls failed"
    sort /tmp/ls.txt >/tmp/ls.sorted
    awk -F '\t' -v d="$dir/" 'index($1, d) == 1 && index(substr($1, length(d) + 1), "/") == 0 {
        print substr($1, length(d) + 1) }' /tmp/walk.txt | sort >/tmp/ls.want
    diff /tmp/ls.want /tmp/ls.sorted || fail "ls $dir differs from the walk"
    echo "ls: $(wc -l </tmp/ls.sorted) names"
    rm -rf /tmp/cpout
    mkdir /tmp/cpout
    # shellcheck disable=SC2086
    vmrescue cp -q --engine kernel --volume "$vol" $disks "$dir" /tmp/cpout || fail "cp failed"
    awk -F '\t' -v d="$dir" 'BEGIN { OFS = "\t" }
        $1 == d || index($1, d "/") == 1 { $1 = substr($1, length(d) + 1); if ($1 == "") $1 = "/"; print }' \
        /tmp/walk.txt | sort >/tmp/cp.want
    bb_manifest "/tmp/cpout/${dir##*/}" >/tmp/cp.got
    diff /tmp/cp.want /tmp/cp.got || fail "the copy of $dir differs from the walk"
    echo "cp: $(wc -l </tmp/cp.got) entries equal"
    rm -rf /tmp/cpout
    clean
}

# The thin LVs of thin.img (tests/fixtures/make/thin.sh: pool vmrthin/pool,
# thin1 with an ext4, its thin snapshot snap1 whose note.txt differs, thin2
# with marker blocks): the kernel engine maps each as linear/zero lines over
# the pool's data LV. Every file of thin.sha256 through `cat` of both engines.
t_thin_cat() {
    k=0
    while read -r sum path; do
        lv=${path%%/*}
        inner=/${path#*/}
        for e in kernel userspace; do
            got=$(vmrescue cat thin.img --volume "vmrthin/$lv" --engine $e "$inner" | sha256sum | cut -d' ' -f1)
            [ "$got" = "$sum" ] || fail "$path through the $e engine: sha256 $got, want $sum"
        done
        k=$((k + 1))
    done <thin.sha256
    [ $k -gt 0 ] || fail "thin.sha256 is empty"
    echo "$k files equal through both engines"
    clean
}

# t_thin_cp LV: `cp` of the thin LV's whole tree through each engine, the
# copies equal (names, types, modes, sizes, links, SHA-256).
t_thin_cp() {
    rm -rf /tmp/thin-k /tmp/thin-u
    mkdir /tmp/thin-k /tmp/thin-u
    vmrescue cp -q --engine kernel --volume "vmrthin/$1" thin.img /docs /tmp/thin-k || fail "kernel cp failed"
    vmrescue cp -q --engine userspace --volume "vmrthin/$1" thin.img /docs /tmp/thin-u || fail "userspace cp failed"
    bb_manifest /tmp/thin-k >/tmp/thin-k.txt
    bb_manifest /tmp/thin-u >/tmp/thin-u.txt
    diff /tmp/thin-u.txt /tmp/thin-k.txt || fail "the copies of $1 differ"
    echo "$(wc -l </tmp/thin-k.txt) entries equal"
    rm -rf /tmp/thin-k /tmp/thin-u
    clean
}

# thin2 (8 MiB, 64 KiB blocks) through dm: virtual blocks 10-12 and 100 hold
# "VMRESCUE-THIN dev2 SECTOR <n>" in every sector, the rest is unprovisioned
# and reads as zeros.
t_thin_map_pattern() {
    start_map thin.img vmrthin/thin2 || exit 1
    size=$(cat "/sys/block/$n/size")
    [ "$size" = 16384 ] || fail "thin2 has $size sectors, want 16384"
    dd if=/dev/zero of=/tmp/thin2.want bs=1048576 count=8 2>/dev/null
    for blk in 10 11 12 100; do
        s=$((blk * 128))
        while [ $s -lt $(((blk + 1) * 128)) ]; do
            printf '%-511s\n' "VMRESCUE-THIN dev2 SECTOR $s"
            s=$((s + 1))
        done >/tmp/thin2.blk
        dd if=/tmp/thin2.blk of=/tmp/thin2.want bs=65536 seek="$blk" conv=notrunc 2>/dev/null
    done
    cmp "$dev" /tmp/thin2.want || fail "wrong bytes through $dev"
    echo "16384 sectors as written"
    rm -f /tmp/thin2.want /tmp/thin2.blk
    stop_mount TERM
}

# Without devtmpfs or udev (an empty /dev): vmrescue makes the loop and dm
# nodes itself, records them, and removes them again.
t_no_devtmpfs() {
    dm=$(cat /sys/class/misc/device-mapper/dev)
    lc=$(cat /sys/class/misc/loop-control/dev)
    unshare -m sh -c "
        mount -t tmpfs nodev /dev || exit 1
        mkdir /dev/mapper
        mknod /dev/mapper/control c ${dm%:*} ${dm#*:}
        mknod /dev/loop-control c ${lc%:*} ${lc#*:}
        mknod /dev/null c 1 3
        vmrescue walk kernel-a.img --volume p1 --engine kernel >/tmp/nodev.txt || exit 1
        echo 'left in /dev:' \$(ls /dev /dev/mapper)
        [ \"\$(ls /dev | sort | tr '\n' ' ')\" = 'loop-control mapper null ' ] || exit 2
    " || fail "vmrescue in an empty /dev failed ($?)"
    grep -v '^/lost+found' /tmp/nodev.txt | diff kernel-a.p1.manifest - || fail "walk differs"
    clean
}

# A mount kept busy at teardown: retried, then detached lazily and the dm
# device removed when released; reported, and `cleanup` finishes the job.
t_busy() {
    start_mount "$MULTI" p1 || exit 1
    (cd "$MDIR/grub" && exec sleep 60) &
    holder=$!
    sleep 0.5
    kill -TERM "$MPID"
    wait "$MPID"
    cat /tmp/mount.err
    grep -q "was busy: detached lazily" /tmp/mount.err || fail "the busy mount was not reported"
    grep -q "vmrescue cleanup" /tmp/mount.err || fail "no word about cleanup"
    [ -z "$(our_mounts)" ] || fail "the mount is still visible"
    kill "$holder"
    wait "$holder"
    vmrescue cleanup || fail "cleanup failed"
    clean
}

# Ctrl-C (SIGINT) and SIGHUP tear the session down too.
t_signal() {
    start_mount "$MULTI" p1 || exit 1
    stop_mount "$1"
}

# kill -9 leaves everything in place; `vmrescue cleanup` removes it and says so.
t_kill9_cleanup() {
    start_mount "$MULTI" "$1" || exit 1
    kill -9 "$MPID"
    wait "$MPID"
    [ -n "$(our_mounts)" ] || fail "nothing left after kill -9?"
    [ -n "$(our_dms)" ] || fail "no dm device left after kill -9?"
    leftovers
    vmrescue cleanup --dry-run >/tmp/dry.txt || fail "cleanup --dry-run failed"
    cat /tmp/dry.txt
    [ "$(sort /tmp/dry.txt | uniq -d)" = "" ] || fail "the dry run lists something twice"
    grep -q "would remove mount" /tmp/dry.txt || fail "dry run does not list the mount"
    [ -n "$(our_mounts)" ] || fail "the dry run removed something"
    vmrescue cleanup >/tmp/cleanup.txt || fail "cleanup failed"
    cat /tmp/cleanup.txt
    grep -q "removed mount /run/vmrescue/" /tmp/cleanup.txt || fail "cleanup did not say it unmounted"
    grep -q "removed device-mapper device vmrescue-" /tmp/cleanup.txt || fail "cleanup did not say it removed the dm device"
    clean
    vmrescue cleanup | grep -q "nothing to clean up" || fail "second cleanup found something"
}

# kill -9 of a session serving a qcow2 disk through qemu-nbd; cleanup disconnects it.
t_kill9_nbd() {
    start_mount kernel-a.qcow2 p1 || exit 1
    served_nbds
    [ -n "$(served_nbds)" ] || fail "no nbd device is served"
    kill -9 "$MPID"
    wait "$MPID"
    vmrescue cleanup >/tmp/cleanup.txt || fail "cleanup failed"
    cat /tmp/cleanup.txt
    grep -q "removed nbd device /dev/nbd" /tmp/cleanup.txt || fail "cleanup did not disconnect the nbd device"
    clean
}

# The demo disk: its root LV through the kernel engine, and the story's repair.
t_demo_layers() {
    vmrescue layers --demo --engine kernel >/tmp/layers.txt || true
    cat /tmp/layers.txt
    grep -E '^vg_ta/lv_root +kernel +ext4' /tmp/layers.txt || fail "lv_root not served by the kernel engine"
}
t_demo_relink() {
    # The operator's command: the proposed target (libc-2.12.so), no question asked.
    vmrescue relink --demo --engine kernel --yes /lib64/libc.so.6 \
        >/tmp/relink.txt || fail "relink --engine kernel failed"
    cat /tmp/relink.txt
    grep -q "SONAME libc.so.6 matches" /tmp/relink.txt || fail "the plan did not give its reasons"
    grep -qxF "/lib64/libc.so.6: /opt/glibc-2.14/lib/libc.so.6 -> libc-2.12.so" /tmp/relink.txt ||
        fail "unexpected relink report"
    clean
}

# A filesystem the kernel refuses: the error carries the kernel's message.
t_mount_refused() {
    $CP kernel-a.img /tmp/broken.img
    # An unknown incompatible feature bit in p1's ext4 superblock (s_feature_incompat, byte 0x60).
    printf '\200' | dd of=/tmp/broken.img bs=1 seek=$((1048576 + 1024 + 0x63)) conv=notrunc 2>/dev/null
    if vmrescue walk /tmp/broken.img --volume p1 --engine kernel >/dev/null 2>/tmp/err.txt; then
        fail "mounting a broken filesystem succeeded"
    fi
    cat /tmp/err.txt
    grep -q "the kernel said: EXT4-fs (dm-" /tmp/err.txt || fail "no kernel message in the error"
    rm -f /tmp/broken.img
    clean
}

# Userspace and kernel engines walk the same files (ext2/3/4 and XFS volumes).
t_parity() {
    vmrescue walk $1 --volume "$2" --engine kernel >/tmp/k.txt || fail "kernel walk failed"
    vmrescue walk $1 --volume "$2" --engine userspace >/tmp/u.txt || fail "userspace walk failed"
    diff /tmp/k.txt /tmp/u.txt || fail "engines disagree on $2"
    echo "$(wc -l </tmp/k.txt) entries equal"
    clean
}
# parity LABEL DISKS VOLUME
parity() {
    if vmrescue walk $2 --volume "$3" --engine userspace --max-depth 0 >/dev/null 2>/tmp/u.err; then
        step "$1parity $3 (userspace = kernel)" t_parity "$2" "$3"
    else
        skip "$1parity $3" "the userspace engine cannot read it in this build: $(cat /tmp/u.err)"
    fi
}

# e2fsck -fn of p1 of relink-a.img.
e2fsck_p1() {
    dev=$($LOSETUP -r -f --show -o 1048576 --sizelimit 16777216 relink-a.img) || return 1
    e2fsck -fn "$dev"
    rc=$?
    $LOSETUP -d "$dev"
    return $rc
}

# relink DISKS VOLUME LINK NEW OLD: replace a symlink read-write through the
# kernel engine on a copy; the filesystem stays clean and shows the new target.
t_relink() {
    disks=$1 vol=$2 link=$3 new=$4 old=$5
    $CP kernel-a.img relink-a.img
    $CP kernel-b.img relink-b.img
    set -- $(echo "$disks" | sed 's/kernel-a.img/relink-a.img/; s/kernel-b.img/relink-b.img/')
    # Refused while another process holds the image open for writing (as a running VM does).
    sum=$(stat -c '%s %y %z' relink-a.img relink-b.img)
    (exec 3<>relink-a.img && exec sleep 30) &
    holder=$!
    sleep 0.3
    if vmrescue relink "$@" --volume "$vol" --engine kernel --to "$new" --yes "$link" 2>/tmp/busy.txt; then
        kill "$holder"
        fail "relink worked on an image in use"
    fi
    kill "$holder"
    wait "$holder"
    cat /tmp/busy.txt
    grep -q "is in use" /tmp/busy.txt || fail "the refusal does not say the image is in use"
    # A write would have changed the images' modification and change times.
    [ "$(stat -c '%s %y %z' relink-a.img relink-b.img)" = "$sum" ] || fail "the refused relink wrote to the images"
    clean
    vmrescue relink "$@" --volume "$vol" --engine kernel --to "$new" --yes "$link" >/tmp/relink.txt ||
        fail "relink --engine kernel failed"
    cat /tmp/relink.txt
    grep -qxF "$link: $old -> $new" /tmp/relink.txt || fail "unexpected relink report"
    clean
    vmrescue walk "$@" --volume "$vol" --engine kernel >/tmp/w.txt || fail "walk after relink failed"
    grep -F "$link	link" /tmp/w.txt | tee /tmp/l.txt
    grep -qF "	$new	" /tmp/l.txt || fail "the link does not read $new"
    if [ "$vol" = p1 ]; then
        e2fsck_p1 || fail "e2fsck -fn found problems after the relink"
        # The undo record puts the old target back, once.
        file=$(sed -n 's/^undo: vmrescue undo //p' /tmp/relink.txt)
        [ -f "$file" ] || fail "no undo file"
        vmrescue undo "$file" >/tmp/undo.txt || fail "undo failed"
        cat /tmp/undo.txt
        grep -qF "(put back)" /tmp/undo.txt || fail "undo did not say what it did"
        vmrescue walk relink-a.img --volume p1 --engine kernel | grep -F "$link	link" | tee /tmp/l.txt
        grep -qF "	$old	" /tmp/l.txt || fail "the link does not read $old after undo"
        if vmrescue undo "$file" 2>/tmp/undo2.txt; then fail "a second undo worked"; fi
        cat /tmp/undo2.txt
        grep -q "changed since" /tmp/undo2.txt || fail "the second undo did not say why"
        e2fsck_p1 || fail "e2fsck -fn found problems after the undo"
    fi
    rm -f relink-a.img relink-b.img
    clean
}

# A copy of kernel-a.img held the way an operator looks at a disk by hand:
# a read-only loop device over p1, a read-only dm linear map over that loop
# device, mounted read-only. A relink (userspace and kernel engine) is
# refused, naming the dm device and the commands that release it; then with
# the map alone (not mounted) it is still refused; nothing is written.
# held_refused WANT ARGS...: `vmrescue ARGS` fails and its message holds WANT (else ok=0).
held_refused() {
    want=$1
    shift
    if vmrescue "$@" >/tmp/held.out 2>/tmp/held.err; then
        ok=0
        echo "vmrescue $1 worked on a held image"
    fi
    cat /tmp/held.err
    grep -qF "$want" /tmp/held.err || { ok=0; echo "vmrescue $1: the refusal does not say: $want"; }
}
t_held_by_dm() {
    $CP kernel-a.img /tmp/held.img
    sum=$(sha256sum /tmp/held.img | cut -d' ' -f1)
    lo=$($LOSETUP -r -f --show -o 1048576 --sizelimit 16777216 /tmp/held.img) || fail "losetup"
    echo "0 32768 linear $lo 0" | dmsetup create --readonly heldmap ||
        { $LOSETUP -d "$lo"; fail "dmsetup create"; }
    dm=$(ls "/sys/block/${lo#/dev/}/holders/")
    echo "$lo is held by $dm ($(cat "/sys/block/$dm/dm/name"))"
    mkdir -p /mnt/held
    mount -o ro,noload "/dev/$dm" /mnt/held || fail "mount /dev/$dm"
    ok=1
    held_refused "$lo (read-only, offset 1048576, 16777216 bytes) has the image attached, under device-mapper device heldmap (/dev/$dm), mounted on /mnt/held: umount /mnt/held && dmsetup remove heldmap && losetup -d $lo" \
        relink /tmp/held.img /grub/menu.lst --volume p1 --to ../grub/grub.conf --yes
    held_refused "device-mapper device heldmap (/dev/$dm)" \
        relink /tmp/held.img /grub/menu.lst --volume p1 --engine kernel --to ../grub/grub.conf --yes
    umount /mnt/held
    held_refused "under device-mapper device heldmap (/dev/$dm): dmsetup remove heldmap && losetup -d $lo" \
        relink /tmp/held.img /grub/menu.lst --volume p1 --to ../grub/grub.conf --yes
    dmsetup remove heldmap || ok=0
    $LOSETUP -d "$lo" || ok=0
    [ "$(sha256sum /tmp/held.img | cut -d' ' -f1)" = "$sum" ] || { ok=0; echo "the image was written"; }
    rm -f /tmp/held.img
    [ $ok = 1 ] || fail "held image"
    clean
}

# Benchmark: start to a mounted, listed root, vmrescue vs losetup/dmsetup/mount by hand.
# bench_manual TABLE FSTYPE OPTIONS: loop devices for kernel-a/b, the table, mount, ls, and back.
bench_manual() {
    la=$($LOSETUP -r -f --show kernel-a.img) || return 1
    lb=$($LOSETUP -r -f --show kernel-b.img) || { $LOSETUP -d "$la"; return 1; }
    mkdir -p /mnt/bench
    ok=0
    # No udev in the VM: dmsetup mknodes makes /dev/mapper/bench.
    if sed "s|@kernel-a.img@|7:${la#/dev/loop}|g; s|@kernel-b.img@|7:${lb#/dev/loop}|g" "$1" |
        dmsetup create --readonly bench && dmsetup mknodes bench; then
        if mount -t "$2" -o "ro,nosuid,nodev,noexec,$3" /dev/mapper/bench /mnt/bench; then
            ls -la /mnt/bench >/dev/null && ok=1
            umount /mnt/bench || ok=0
        fi
        dmsetup remove bench || ok=0
    fi
    $LOSETUP -d "$la" "$lb" || ok=0
    [ $ok = 1 ]
}
# t_bench VOLUME TABLE FSTYPE OPTIONS
t_bench() {
    runs=5
    ours=0
    manual=0
    i=0
    while [ $i -lt $runs ]; do
        t0=$(now)
        vmrescue walk $MULTI --volume "$1" --engine kernel --max-depth 1 --no-hash >/dev/null 2>&1 ||
            fail "vmrescue run failed"
        ours=$(awk -v a="$ours" -v b="$(elapsed "$t0")" 'BEGIN { print a + b }')
        t0=$(now)
        bench_manual "$2" "$3" "$4" || fail "manual run failed"
        manual=$(awk -v a="$manual" -v b="$(elapsed "$t0")" 'BEGIN { print a + b }')
        i=$((i + 1))
    done
    line=$(awk -v o="$ours" -v m="$manual" -v n="$runs" -v v="$1" 'BEGIN {
        printf "start to a mounted, listed root of %s (TCG, mean of %d): vmrescue %.3fs, losetup+dmsetup+mount %.3fs, ratio %.2f", v, n, o / n, m / n, o / m }')
    echo "VMTEST BENCH $line" >/dev/console 2>/dev/null || true
    echo "$line"
    clean
}

# --- LUKS: LVM on LUKS1 and LUKS2 (tests/fixtures/make/luks.sh) -----------
# The whole disk is a LUKS volume holding a PV (VG vg_bare); vmrescue unlocks
# it with luks.pass and the kernel engine serves lv_data through a read-only
# dm-crypt device with that key, under the LV's linear map.
LUKS_LV=disk0/vg_bare/lv_data

# luks_cp IMAGE: the kernel engine's copy of lv_data equals the userspace
# engine's and luks.sums, and nothing is left behind.
t_luks_cp() {
    vmrescue layers --engine kernel --key-file luks.pass "$1" >/tmp/luks-layers.txt 2>&1 || true
    grep -E "^$LUKS_LV +kernel +ext4" /tmp/luks-layers.txt ||
        { cat /tmp/luks-layers.txt; fail "lv_data is not served by the kernel engine"; }
    rm -rf /tmp/luks-k /tmp/luks-u
    mkdir /tmp/luks-k /tmp/luks-u
    vmrescue cp -q --engine kernel --key-file luks.pass --volume "$LUKS_LV" "$1" /. /tmp/luks-k ||
        fail "kernel cp failed"
    clean || fail "the kernel engine's cp left something behind"
    vmrescue cp -q --engine userspace --key-file luks.pass --volume "$LUKS_LV" "$1" /. /tmp/luks-u ||
        fail "userspace cp failed"
    bb_manifest /tmp/luks-k >/tmp/luks-k.txt
    bb_manifest /tmp/luks-u >/tmp/luks-u.txt
    diff /tmp/luks-u.txt /tmp/luks-k.txt || fail "the two engines' copies differ"
    (cd /tmp/luks-k && sha256sum -c /work/luks.sums) || fail "the kernel engine's copy differs from luks.sums"
    echo "$(wc -l </tmp/luks-k.txt) entries equal; $(wc -l </work/luks.sums) files as luks.sums"
    rm -rf /tmp/luks-k /tmp/luks-u
}

# luks_key IMAGE: the volume key in hex, as cryptsetup dumps it.
luks_key() {
    cryptsetup luksDump --dump-volume-key --batch-mode --key-file luks.pass "$1" 2>/dev/null |
        sed -n '/^MK dump:/,$p' | sed 's/^MK dump://' | tr -d ' \t\n'
}

# plain_sum START LEN: SHA-256 of luks-plain.img's bytes START..START+LEN (whole MiB).
plain_sum() {
    dd if=luks-plain.img bs=1048576 skip=$(($1 / 1048576)) count=$(($2 / 1048576)) 2>/dev/null |
        sha256sum | cut -d' ' -f1
}

# luks_map IMAGE SECTOR: `vmrescue map` of lv_data: under its linear map, a
# read-only crypt device (sector_size:SECTOR above 512, no allow_discards)
# showing luks-plain.img from the PV's data area on; the key is in no file,
# message or command line of ours.
t_luks_map() {
    trap 'kill "$MPID" 2>/dev/null' EXIT
    MAP_WAIT=1800 start_map "--key-file luks.pass $1" "$LUKS_LV" || exit 1
    crypt=
    for d in /sys/block/dm-*; do
        case $(cat "$d/dm/name") in vmrescue-*-crypt) crypt=${d##*/} ;; esac
    done
    [ -n "$crypt" ] || fail "no crypt device under $dev"
    name=$(cat "/sys/block/$crypt/dm/name")
    table=$(dmsetup table "$name")
    echo "$crypt: $name ro $(cat "/sys/block/$crypt/ro"): $table"
    [ "$(cat "/sys/block/$crypt/ro")" = 1 ] || fail "$crypt is writable"
    ls "/sys/block/$crypt/slaves/" | grep -q loop || fail "$crypt is not over a loop device"
    ls "/sys/block/$n/slaves/" | grep -qx "$crypt" || fail "$n is not over $crypt"
    echo "$table" | grep -q " crypt aes-xts-plain64 " || fail "not an aes-xts-plain64 crypt target"
    echo "$table" | grep -q allow_discards && fail "allow_discards is on"
    if [ "$2" = 512 ]; then
        echo "$table" | grep -q sector_size && fail "sector_size given for 512-byte sectors"
    else
        echo "$table" | grep -q " sector_size:$2" || fail "no sector_size:$2"
    fi
    bytes=$(($(cat "/sys/block/$crypt/size") * 512))
    start=$(($(stat -c %s luks-plain.img) - bytes))
    echo "$crypt shows $bytes plain bytes from byte $start (the PV's data area)"
    dd if="/dev/$crypt" bs=512 count=4 2>/dev/null | grep -q LABELONE && fail "$crypt shows the PV label"
    got=$(sha256sum "/dev/$crypt" | cut -d' ' -f1)
    [ "$got" = "$(plain_sum "$start" "$bytes")" ] || fail "$crypt does not show luks-plain.img's bytes"
    key=$(luks_key "$1")
    [ ${#key} -ge 64 ] || fail "cannot dump the volume key to look for it"
    for f in /tmp/map.out /tmp/map.err /proc/$MPID/cmdline $(find /run/vmrescue -type f); do
        grep -qi "$key" "$f" && fail "the key is in $f"
    done
    echo "the key is in none of our files, messages or command line"
    stop_mount TERM
}

# luks_kill9 IMAGE: kill -9 of a session with a mounted LV on LUKS; cleanup
# removes the LV's map, the crypt device and the loop device.
t_luks_kill9() {
    trap 'kill "$MPID" 2>/dev/null' EXIT
    MAP_WAIT=1800 start_mount "--key-file luks.pass $1" "$LUKS_LV" || exit 1
    kill -9 "$MPID"
    wait "$MPID"
    our_dms
    our_dms | grep -q -- '-crypt$' || fail "no crypt device left after kill -9?"
    vmrescue cleanup >/tmp/cleanup.txt || fail "cleanup failed"
    cat /tmp/cleanup.txt
    grep -q "removed device-mapper device vmrescue-.*-crypt" /tmp/cleanup.txt ||
        fail "cleanup did not say it removed the crypt device"
    clean
}

# luks_cryptsetup IMAGE: the same volume opened by cryptsetup --readonly
# shows luks-plain.img too, with the same crypt options as ours.
t_luks_cryptsetup() {
    DM_DISABLE_UDEV=1
    export DM_DISABLE_UDEV
    cryptsetup open --readonly --disable-locks --disable-keyring --type luks \
        --key-file luks.pass "$1" vmrtest-luks || fail "cryptsetup open failed"
    table=$(dmsetup table vmrtest-luks)
    echo "cryptsetup: $table"
    d=
    for s in /sys/block/dm-*; do
        [ "$(cat "$s/dm/name")" = vmrtest-luks ] && d=/dev/${s##*/}
    done
    bytes=$(($(cat "/sys/block/${d#/dev/}/size") * 512))
    got=$(sha256sum "$d" | cut -d' ' -f1)
    cryptsetup close vmrtest-luks
    [ "$bytes" = "$(stat -c %s luks-plain.img)" ] || fail "cryptsetup shows $bytes bytes"
    [ "$got" = "$(plain_sum 0 "$bytes")" ] || fail "cryptsetup's device does not show luks-plain.img"
    echo "cryptsetup shows luks-plain.img ($bytes bytes)"
    # Our options: the same after the device and its offset.
    trap 'kill "$MPID" 2>/dev/null' EXIT
    MAP_WAIT=1800 start_map "--key-file luks.pass $1" "$LUKS_LV" || exit 1
    for s in /sys/block/dm-*; do
        case $(cat "$s/dm/name") in vmrescue-*-crypt) ours=$(dmsetup table "$(cat "$s/dm/name")") ;; esac
    done
    echo "vmrescue:   $ours"
    [ "$(echo "$table" | cut -d' ' -f9-)" = "$(echo "$ours" | cut -d' ' -f9-)" ] ||
        fail "the crypt options differ from cryptsetup's"
    [ "$(echo "$table" | cut -d' ' -f4)" = "$(echo "$ours" | cut -d' ' -f4)" ] ||
        fail "the cipher differs from cryptsetup's"
    stop_mount TERM
}

echo "VMTEST START $(uname -r), device-mapper $(dmsetup version 2>/dev/null | sed -n 's/Driver version: *//p')"
step "nothing of ours at start" clean
step "layers --engine kernel" t_layers
step "walk p1 (ext4 partition) = manifest" t_walk_manifest "$MULTI" p1 kernel-a.p1.manifest
step "walk p2 (xfs partition) = manifest" t_walk_manifest "$MULTI" p2 kernel-a.p2.manifest
step "no dm: walk p2 (xfs, loop device over the partition) = manifest" \
    no_dm t_walk_manifest "$MULTI" p2 kernel-a.p2.manifest
if has_volume "$MULTI" vmrk/lv_data; then
    step "walk vmrk/lv_data (ext4, 3 linear segments on 2 PVs) = manifest" \
        t_walk_manifest "$MULTI" vmrk/lv_data kernel-vmrk.lv_data.manifest
    step "walk vmrk/lv_xfs (xfs, 2 striped segments on 2 PVs) = manifest" \
        t_walk_manifest "$MULTI" vmrk/lv_xfs kernel-vmrk.lv_xfs.manifest
    step "mounted session vmrk/lv_data" t_mounted_session "$MULTI" vmrk/lv_data norecovery
    step "mounted session vmrk/lv_xfs" t_mounted_session "$MULTI" vmrk/lv_xfs norecovery,nouuid
    step "ls and cp vmrk/lv_data /var/lib/db" t_ls_cp "$MULTI" vmrk/lv_data /var/lib/db
    step "ls and cp vmrk/lv_xfs /data" t_ls_cp "$MULTI" vmrk/lv_xfs /data
    step "relink vmrk/lv_data /lib64/libc.so.6" t_relink "$MULTI" vmrk/lv_data \
        /lib64/libc.so.6 libc-2.12.so /opt/glibc-2.14/lib/libc.so.6
    parity "" "$MULTI" vmrk/lv_data
    parity "" "$MULTI" vmrk/lv_xfs
else
    skip "logical volumes of kernel-a+b" "this build's LVM2 reader finds no volume groups"
fi
# ext4 shows `noload` as its synonym `norecovery` in /proc/mounts.
step "mounted session p1" t_mounted_session "$MULTI" p1 norecovery
step "mounted session p2" t_mounted_session "$MULTI" p2 norecovery,nouuid
step "no devtmpfs: nodes made and removed" t_no_devtmpfs
step "busy mount at teardown" t_busy
step "SIGINT tears down" t_signal INT
step "SIGHUP tears down" t_signal HUP
step "kill -9, then cleanup" t_kill9_cleanup p1
step "mount refused: the kernel's message" t_mount_refused
step "relink p1 /grub/menu.lst" t_relink "$MULTI" p1 /grub/menu.lst ../grub/grub.conf grub.conf
step "relink refused under a read-only dm map of a loop device" t_held_by_dm
parity "" "$MULTI" p1
parity "" "$MULTI" p2
# The LVM2 fixtures: a striped LV (3, then 2 stripes) and a linear LV of
# four segments on three PVs (two partitions and a whole disk).
if [ -f lvm-gpt.img ] && has_volume "lvm-gpt.img --disk lvm-gpt-disk1.img" vmrlvm_gpt/lv_striped; then
    for v in vmrlvm_gpt/lv_striped vmrlvm_gpt/lv_multi; do
        step "map $v: every sector through dm" t_map_pattern "lvm-gpt.img --disk lvm-gpt-disk1.img" "$v"
    done
else
    skip "lvm-gpt fixture" "lvm-gpt.img missing or its VG not found"
fi

# LVM-thin: thin LVs and a thin snapshot of one pool.
if [ -f thin.img ] && has_volume thin.img vmrthin/thin1; then
    step "thin: cat every file of thin1 and snap1 (kernel = userspace = thin.sha256)" t_thin_cat
    step "thin: cp thin1 /docs (kernel = userspace)" t_thin_cp thin1
    step "thin: cp snap1 /docs (kernel = userspace)" t_thin_cp snap1
    parity "thin: " thin.img vmrthin/thin1
    parity "thin: " thin.img vmrthin/snap1
    step "thin: map vmrthin/thin2: marker blocks and zeros through dm" t_thin_map_pattern
else
    skip "thin fixture" "thin.img missing or its thin LVs not found"
fi

# qcow2 disks go through qemu-nbd (a loop device cannot show them).
vmrescue layers kernel-a.qcow2 >/dev/null 2>/tmp/q.err
if [ $? -le 1 ]; then
    step "walk p1 of a qcow2 disk (qemu-nbd) = manifest" t_walk_manifest kernel-a.qcow2 p1 kernel-a.p1.manifest
    step "walk p2 of a qcow2 disk (qemu-nbd) = manifest" t_walk_manifest kernel-a.qcow2 p2 kernel-a.p2.manifest
    step "kill -9 with qemu-nbd, then cleanup" t_kill9_nbd
    # Without device-mapper: a loop device over the partition's bytes of /dev/nbdN.
    step "no dm: walk p2 of a qcow2 disk (qemu-nbd + loop) = manifest" \
        no_dm t_walk_manifest kernel-a.qcow2 p2 kernel-a.p2.manifest
else
    skip "qcow2 through qemu-nbd" "this build does not open qcow2 images: $(head -n1 /tmp/q.err)"
fi

# The bundled demo disk (the story's guest), when this build has it.
vmrescue layers --demo >/dev/null 2>/tmp/d.err
if [ $? -le 1 ]; then
    step "demo: layers --engine kernel" t_demo_layers
    step "demo: mounted session p1" t_mounted_session --demo p1 norecovery
    step "demo: mounted session vg_ta/lv_home" t_mounted_session --demo vg_ta/lv_home norecovery
    # lv_root holds a 256 MiB sparse file: its files are walked once per engine, in the parity step.
    step "demo: mounted session vg_ta/lv_root" t_mounted_session --demo vg_ta/lv_root norecovery quick
    for v in p1 vg_ta/lv_root vg_ta/lv_home; do
        parity "demo: " --demo "$v"
    done
    step "demo: ls and cp /etc" t_ls_cp --demo vg_ta/lv_root /etc
    step "demo: relink /lib64/libc.so.6 through the kernel engine" t_demo_relink
else
    skip "demo disk" "this build has no demo disk: $(head -n1 /tmp/d.err)"
fi

# LVM on LUKS through dm-crypt (the fixtures are built by run.sh when missing).
if [ -f luks1-xts.img ] && [ -f luks-plain.img ]; then
    # Each run unlocks a keyslot (slow under TCG): LUKS1 by qemu-img and
    # LUKS2 by cryptsetup for the copies; the 4096-byte-sector volume's ext4
    # has 1 KiB blocks, which the kernel mounts on no device of larger
    # sectors: its bytes are compared through the map instead.
    for img in luks1-xts luks2-pbkdf2; do
        step "luks: cp $img $LUKS_LV (kernel = userspace = luks.sums)" t_luks_cp $img.img
    done
    for img in luks1-xts luks2-argon2id-4k; do
        step "luks: cryptsetup --readonly opens $img as we do" t_luks_cryptsetup $img.img
    done
    step "luks: map luks2-pbkdf2: the crypt device, its options, no key anywhere" t_luks_map luks2-pbkdf2.img 512
    step "luks: map luks2-argon2id-4k: 4096-byte sectors" t_luks_map luks2-argon2id-4k.img 4096
    step "luks: kill -9, then cleanup" t_luks_kill9 luks2-pbkdf2.img
else
    skip "luks fixtures" "luks1-xts.img or luks-plain.img missing"
fi

echo "0 32768 linear @kernel-a.img@ 2048" >/tmp/p1.dmtable
step "benchmark p1" t_bench p1 /tmp/p1.dmtable ext4 noload
if has_volume "$MULTI" vmrk/lv_data; then
    step "benchmark vmrk/lv_data" t_bench vmrk/lv_data kernel-vmrk.lv_data.dmtable ext4 noload
fi
step "nothing of ours at the end" clean
echo "VMTEST DONE pass=$PASS fail=$FAIL skip=$SKIP"
