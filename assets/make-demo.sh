#!/bin/sh
# Build the bundled demo disk with real tools: a CentOS 6 guest whose
# /lib64/libc.so.6 was repointed at a hand-built glibc in /opt/glibc-2.14.
#
#   assets/make-demo.sh OUTDIR          build OUTDIR/demo.img and the tools' reports
#   assets/make-demo.sh --asset         rebuild and repack assets/demo.img.sparse.zst
#
# Layout (shaped like the story in the design notes, sizes kept small):
#   2 GiB disk, MBR (disk signature 0x0005f2a1)
#   p1  sector 63 .. 524287, bootable, type 83, ext4 (1 KiB blocks) /boot
#   p2  sector 524288 .. end, type 8e, LVM2 PV of VG vg_ta (4 MiB extents)
#       lv_root 1 GiB ext4 /, lv_home 256 MiB ext4 /home, lv_swap 256 MiB swap
#
# Reports beside the image: demo.sfdisk.json (sfdisk --json), demo.lvs.json
# (lvs --segments), demo.pvs.json (pvs, for pe_start) and demo.blkid
# (blkid -d -p -o export of every volume, blocks headed VOLUME=<name>).
#
# Needs root (a loop device for lvm2), sfdisk, lvm2, e2fsprogs, mkswap,
# gcc, cpio, gzip. Nothing is activated: lvm2 runs with --driverloaded n and
# lvcreate -an -Zn, restricted to our own loop device.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--asset" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    sh "$here/make-demo.sh" "$tmp"
    cd "$here/.."
    cargo run --quiet -- pack-demo "$tmp/demo.img" "$here/demo.img.sparse.zst"
    ls -l "$here/demo.img.sparse.zst"
    exit 0
fi

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR | --asset" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

export LC_ALL=C TZ=UTC
# e2fsprogs take the time of creation from here (superblock times, crtime).
export E2FSPROGS_FAKE_TIME=1363081267 # 2013-03-12 09:41:07 UTC: the install
export SOURCE_DATE_EPOCH=1363081267

work=$(mktemp -d)
loop=""
cleanup() {
    if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- geometry
SECTOR=512
DISK_SECTORS=4194304 # 2 GiB
P1_START=63
P1_SECTORS=$((524288 - 63))
P2_START=524288
P2_SECTORS=$((DISK_SECTORS - P2_START))
EXTENT_MIB=4

BOOT_UUID=6f3b2c71-0d9a-4c55-8e2a-91b3c7d4e5f6
ROOT_UUID=a1d5e0c2-7b44-4f0e-b1a9-3c2d8e7f6a50
HOME_UUID=c8e2f1a4-5d36-4b7c-9e0f-1a2b3c4d5e6f
SWAP_UUID=2e9c4d1b-8a73-4f65-b0c2-d4e6f8a0b1c3
PV_UUID=Ta1Pv0-Cent-OS64-Demo-Vm10-8Dsk-1Raw0p
VG_UUID=Ta1Vg0-Cent-OS64-Demo-Vm10-8Vgt-aRoot0
LV_ROOT_UUID=Ta1Lv0-Cent-OS64-Demo-Vm10-8Lvr-oot000
LV_HOME_UUID=Ta1Lv1-Cent-OS64-Demo-Vm10-8Lvh-ome000
LV_SWAP_UUID=Ta1Lv2-Cent-OS64-Demo-Vm10-8Lvs-wap000

# Times (UTC, seconds since the epoch).
t() { date -u -d "$1" +%s; }
T_BUILD=$(t '2013-02-22 04:12:40')   # when CentOS built the packages (file mtimes)
T_INSTALL=$(t '2013-03-12 09:44:15') # anaconda installed them (ctimes)
T_SETUP=$(t '2013-03-12 10:05:00')   # first-boot configuration
T_DB=$(t '2017-03-02 10:17:52')      # MySQL's last writes before the reboot
T_GLIBC=$(t '2017-03-02 10:29:36')   # `make install` of glibc 2.14
T_LINK=$(t '2017-03-02 10:33:08')    # ln -sf /opt/glibc-2.14/lib/libc.so.6 /lib64/libc.so.6
T_HOME=$(t '2017-02-27 16:20:00')

root=$work/root
boot=$work/boot
home=$work/home
build=$work/build
mkdir -p "$root" "$boot" "$home" "$build"
# Timestamp rules: "PATH MTIME CTIME" or "PATH/** MTIME CTIME" (everything
# below PATH); later lines override earlier ones. Applied with debugfs.
stamps_root=$work/stamps.root
stamps_boot=$work/stamps.boot
stamps_home=$work/stamps.home
: >"$stamps_root"
: >"$stamps_boot"
: >"$stamps_home"

# ---------------------------------------------------------------- helpers
# put FILE MODE: write stdin to FILE (parents created), chmod MODE.
put() {
    mkdir -p "$(dirname "$1")"
    cat >"$1"
    chmod "$2" "$1"
}

# lib OUT SONAME VERSIONS SYMBOLS: build a real x86-64 ELF shared object.
# VERSIONS: version nodes, oldest first (the symbols go into the first; the
# last one is the newest the library claims). SYMBOLS: function names.
lib() {
    lib_out=$1
    soname=$2
    versions=$3
    symbols=$4
    name=$(basename "$lib_out")
    src=$build/$name.c
    map=$build/$name.map
    {
        echo "/* $name: stand-in for the real library, same SONAME and versions. */"
        echo "static const char banner[] = \"$name ($soname)\";"
        echo "const char *__vmrescue_demo_banner(void) { return banner; }"
        i=0
        for s in $symbols; do
            i=$((i + 1))
            echo "long $s(long a, long b) { return a * $i + b; }"
        done
    } >"$src"
    {
        first=1
        prev=""
        for v in $versions; do
            if [ $first = 1 ]; then
                printf '%s { global: ' "$v"
                for s in $symbols; do printf '%s; ' "$s"; done
                printf 'local: *; };\n'
                first=0
            else
                printf '%s { } %s;\n' "$v" "$prev"
            fi
            prev=$v
        done
    } >"$map"
    mkdir -p "$(dirname "$lib_out")"
    gcc -shared -fPIC -O2 -nostdlib -fno-asynchronous-unwind-tables -fno-builtin -w \
        -Wl,-soname,"$soname" -Wl,--version-script="$map" \
        -Wl,-z,noseparate-code -Wl,--hash-style=both -o "$lib_out" "$src"
    # What a CentOS 6 build says about itself.
    printf 'GCC: (GNU) 4.4.7 20120313 (Red Hat 4.4.7-3)\0' >"$build/comment"
    objcopy --remove-section=.comment --add-section .comment="$build/comment" \
        --set-section-flags .comment=noload,readonly "$lib_out"
    chmod 755 "$lib_out"
}

# exe OUT [NEEDED-LIB...]: a real dynamically linked x86-64 executable using
# the guest's libc (and other libraries given as paths).
exe() {
    exe_out=$1
    shift
    name=$(basename "$exe_out")
    src=$build/exe-$name.c
    {
        echo "long printf(long, long);"
        echo "void _start(void) { printf(0, 0); for (;;) ; }"
        echo "const char __vmrescue_demo_name[] = \"$name\";"
    } >"$src"
    mkdir -p "$(dirname "$exe_out")"
    gcc -nostdlib -O2 -fno-asynchronous-unwind-tables -fno-builtin -w -o "$exe_out" "$src" \
        "$root/lib64/libc-2.12.so" "$@" \
        -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 -Wl,-z,noseparate-code
    chmod 755 "$exe_out"
}

# pattern BYTES SEED: deterministic, compressible filler text.
pattern() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        t = 0; i = 0;
        while (t < n) { s = sprintf("%s-%08d ", seed, i * 7919 % 100000000); printf "%s", s; t += length(s); i++ }
    }' | head -c "$1"
}

# ---------------------------------------------------------------- lv_root
R=$root
mkdir -p "$R/bin" "$R/sbin" "$R/lib64" "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib64" \
    "$R/usr/libexec" "$R/usr/share/doc" "$R/usr/local/src" "$R/etc/sysconfig" \
    "$R/etc/ld.so.conf.d" "$R/etc/selinux" "$R/var/lib/mysql" "$R/var/log" \
    "$R/var/run/mysqld" "$R/var/tmp" "$R/root" "$R/tmp" "$R/home" "$R/boot" \
    "$R/proc" "$R/sys" "$R/dev/pts" "$R/dev/shm" "$R/mnt" "$R/media" "$R/srv" \
    "$R/opt" "$R/selinux" "$R/cgroup" "$R/lost+found"
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 550 "$R/root"
chmod 700 "$R/lost+found"
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

put "$R/etc/redhat-release" 644 <<'EOF'
CentOS release 6.4 (Final)
EOF
ln -s redhat-release "$R/etc/centos-release"
ln -s centos-release "$R/etc/system-release"
put "$R/etc/issue" 644 <<'EOF'
CentOS release 6.4 (Final)
Kernel \r on an \m

EOF
cat >"$R/etc/fstab" <<EOF

#
# /etc/fstab
# Created by anaconda on Tue Mar 12 09:41:07 2013
#
# Accessible filesystems, by reference, are maintained under '/dev/disk'
# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info
#
/dev/mapper/vg_ta-lv_root /                       ext4    defaults        1 1
UUID=$BOOT_UUID /boot                   ext4    defaults        1 2
/dev/mapper/vg_ta-lv_home /home                   ext4    defaults        1 2
/dev/mapper/vg_ta-lv_swap swap                    swap    defaults        0 0
tmpfs                   /dev/shm                tmpfs   defaults        0 0
devpts                  /dev/pts                devpts  gid=5,mode=620  0 0
sysfs                   /sys                    sysfs   defaults        0 0
proc                    /proc                   proc    defaults        0 0
EOF
chmod 644 "$R/etc/fstab"
put "$R/etc/passwd" 644 <<'EOF'
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/spool/mail:/sbin/nologin
nobody:x:99:99:Nobody:/:/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/var/empty/sshd:/sbin/nologin
mysql:x:27:27:MySQL Server:/var/lib/mysql:/bin/bash
ta:x:500:500:TA shop:/home/ta:/bin/bash
EOF
put "$R/etc/group" 644 <<'EOF'
root:x:0:
bin:x:1:bin,daemon
daemon:x:2:bin,daemon
adm:x:4:adm,daemon
tty:x:5:
wheel:x:10:
mail:x:12:mail
nobody:x:99:
sshd:x:74:
mysql:x:27:
ta:x:500:
EOF
put "$R/etc/shadow" 000 <<'EOF'
root:!!:15776:0:99999:7:::
bin:*:15628:0:99999:7:::
daemon:*:15628:0:99999:7:::
nobody:*:15628:0:99999:7:::
sshd:!!:15776::::::
mysql:!!:15776::::::
ta:!!:15776:0:99999:7:::
EOF
put "$R/etc/sysconfig/network" 644 <<'EOF'
NETWORKING=yes
HOSTNAME=ta
EOF
put "$R/etc/selinux/config" 644 <<'EOF'
# This file controls the state of SELinux on the system.
SELINUX=enforcing
SELINUXTYPE=targeted
EOF
put "$R/etc/ld.so.conf" 644 <<'EOF'
include ld.so.conf.d/*.conf
EOF
put "$R/etc/ld.so.conf.d/mysql-x86_64.conf" 644 <<'EOF'
/usr/lib64/mysql
EOF
put "$R/etc/my.cnf" 644 <<'EOF'
[mysqld]
datadir=/var/lib/mysql
socket=/var/lib/mysql/mysql.sock
user=mysql
# Disabling symbolic-links is recommended to prevent assorted security risks
symbolic-links=0

[mysqld_safe]
log-error=/var/log/mysqld.log
pid-file=/var/run/mysqld/mysqld.pid
EOF
ln -s ../boot/grub/grub.conf "$R/etc/grub.conf"
ln -s ../usr/share/zoneinfo/Asia/Shanghai "$R/etc/localtime"
mkdir -p "$R/usr/share/zoneinfo/Asia"
printf 'TZif2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0CST-8\n' | put "$R/usr/share/zoneinfo/Asia/Shanghai" 644

# glibc 2.12 as CentOS 6.4 ships it, and friends.
GLIBC_VERSIONS="GLIBC_2.2.5 GLIBC_2.2.6 GLIBC_2.3 GLIBC_2.3.2 GLIBC_2.3.3 GLIBC_2.3.4 GLIBC_2.4 \
GLIBC_2.5 GLIBC_2.6 GLIBC_2.7 GLIBC_2.8 GLIBC_2.9 GLIBC_2.10 GLIBC_2.11 GLIBC_2.12"
LIBC_SYMBOLS="printf fprintf sprintf snprintf puts fputs fopen fclose fread fwrite malloc calloc \
realloc free memcpy memmove memset memcmp strlen strcmp strncmp strcpy strncpy strchr strrchr \
strstr strdup getenv setenv exit atexit abort open close read write lseek stat fstat lstat \
mmap munmap fork execve waitpid pipe dup2 socket connect bind listen accept getpid getuid \
time gettimeofday localtime strftime qsort bsearch __libc_start_main __stack_chk_fail"
lib "$R/lib64/ld-2.12.so" ld-linux-x86-64.so.2 "GLIBC_2.2.5 GLIBC_2.3 GLIBC_2.4 GLIBC_PRIVATE" \
    "_dl_mcount __tls_get_addr _dl_debug_state _r_debug"
lib "$R/lib64/libc-2.12.so" libc.so.6 "$GLIBC_VERSIONS GLIBC_PRIVATE" "$LIBC_SYMBOLS"
lib "$R/lib64/libm-2.12.so" libm.so.6 "GLIBC_2.2.5 GLIBC_2.4" "sin cos tan sqrt pow exp log floor ceil fabs"
lib "$R/lib64/libpthread-2.12.so" libpthread.so.0 "GLIBC_2.2.5 GLIBC_2.3.2 GLIBC_2.12" \
    "pthread_create pthread_join pthread_mutex_lock pthread_mutex_unlock pthread_cond_wait pthread_setname_np"
lib "$R/lib64/libdl-2.12.so" libdl.so.2 "GLIBC_2.2.5 GLIBC_2.3.3" "dlopen dlsym dlclose dlerror dladdr"
lib "$R/lib64/librt-2.12.so" librt.so.1 "GLIBC_2.2.5 GLIBC_2.3.4" "clock_gettime shm_open timer_create aio_read"
lib "$R/lib64/libcrypt-2.12.so" libcrypt.so.1 "GLIBC_2.2.5" "crypt crypt_r encrypt setkey"
lib "$R/lib64/libnsl-2.12.so" libnsl.so.1 "GLIBC_2.2.5" "yp_match yp_get_default_domain"
lib "$R/lib64/libresolv-2.12.so" libresolv.so.2 "GLIBC_2.2.5 GLIBC_2.9" "res_query res_search dn_expand"
lib "$R/lib64/libutil-2.12.so" libutil.so.1 "GLIBC_2.2.5" "openpty forkpty login_tty"
lib "$R/lib64/libnss_files-2.12.so" libnss_files.so.2 "GLIBC_PRIVATE" "_nss_files_getpwnam_r _nss_files_gethostbyname_r"
lib "$R/lib64/libz.so.1.2.3" libz.so.1 "ZLIB_1.2.0 ZLIB_1.2.0.2 ZLIB_1.2.2" "deflate inflate crc32 adler32 compress uncompress"
lib "$R/lib64/libselinux.so.1" libselinux.so.1 "LIBSELINUX_1.0" "is_selinux_enabled getfilecon setfilecon"
lib "$R/lib64/libtinfo.so.5.7" libtinfo.so.5 "NCURSES_TINFO_5.0.19991023" "tgetent tgetstr tputs setupterm"
lib "$R/lib64/libcom_err.so.2.1" libcom_err.so.2 "COM_ERR_1.0" "com_err error_message"
lib "$R/lib64/libuuid.so.1.3.0" libuuid.so.1 "UUID_1.0 UUID_2.20" "uuid_generate uuid_parse uuid_unparse"
lib "$R/lib64/libblkid.so.1.1.0" libblkid.so.1 "BLKID_1.0 BLKID_2.15" "blkid_probe_all blkid_get_tag_value"
lib "$R/lib64/libpcre.so.0.0.1" libpcre.so.0 "PCRE_0" "pcre_compile pcre_exec pcre_free"
lib "$R/lib64/libgcc_s-4.4.7-20120601.so.1" libgcc_s.so.1 "GCC_3.0 GCC_3.3 GCC_4.2.0" "_Unwind_Resume __popcountdi2"
for pair in ld-linux-x86-64.so.2:ld-2.12.so libm.so.6:libm-2.12.so \
    libpthread.so.0:libpthread-2.12.so libdl.so.2:libdl-2.12.so librt.so.1:librt-2.12.so \
    libcrypt.so.1:libcrypt-2.12.so libnsl.so.1:libnsl-2.12.so libresolv.so.2:libresolv-2.12.so \
    libutil.so.1:libutil-2.12.so libnss_files.so.2:libnss_files-2.12.so libz.so.1:libz.so.1.2.3 \
    libtinfo.so.5:libtinfo.so.5.7 libcom_err.so.2:libcom_err.so.2.1 libuuid.so.1:libuuid.so.1.3.0 \
    libblkid.so.1:libblkid.so.1.1.0 libpcre.so.0:libpcre.so.0.0.1 \
    libgcc_s.so.1:libgcc_s-4.4.7-20120601.so.1; do
    ln -s "${pair#*:}" "$R/lib64/${pair%%:*}"
done
# The fatal command of the story.
ln -s /opt/glibc-2.14/lib/libc.so.6 "$R/lib64/libc.so.6"

# The hand-built glibc 2.14 (./configure --prefix=/opt/glibc-2.14 && make install).
G=$R/opt/glibc-2.14
GLIBC214_VERSIONS="$GLIBC_VERSIONS GLIBC_2.13 GLIBC_2.14 GLIBC_PRIVATE"
lib "$G/lib/libc-2.14.so" libc.so.6 "$GLIBC214_VERSIONS" "$LIBC_SYMBOLS syncfs setns"
lib "$G/lib/ld-2.14.so" ld-linux-x86-64.so.2 "GLIBC_2.2.5 GLIBC_2.3 GLIBC_2.4 GLIBC_PRIVATE" \
    "_dl_mcount __tls_get_addr _dl_debug_state _r_debug"
lib "$G/lib/libm-2.14.so" libm.so.6 "GLIBC_2.2.5 GLIBC_2.4" "sin cos tan sqrt pow exp log floor ceil fabs"
lib "$G/lib/libpthread-2.14.so" libpthread.so.0 "GLIBC_2.2.5 GLIBC_2.3.2 GLIBC_2.12" \
    "pthread_create pthread_join pthread_mutex_lock pthread_mutex_unlock"
lib "$G/lib/libdl-2.14.so" libdl.so.2 "GLIBC_2.2.5 GLIBC_2.3.3" "dlopen dlsym dlclose dlerror"
for pair in libc.so.6:libc-2.14.so ld-linux-x86-64.so.2:ld-2.14.so libm.so.6:libm-2.14.so \
    libpthread.so.0:libpthread-2.14.so libdl.so.2:libdl-2.14.so; do
    ln -s "${pair#*:}" "$G/lib/${pair%%:*}"
done
put "$G/lib/libc.so" 644 <<'EOF'
/* GNU ld script
   Use the shared library, but some functions are only in
   the static library, so try that secondarily.  */
OUTPUT_FORMAT(elf64-x86-64)
GROUP ( /opt/glibc-2.14/lib/libc.so.6 /opt/glibc-2.14/lib/libc_nonshared.a  AS_NEEDED ( /opt/glibc-2.14/lib/ld-linux-x86-64.so.2 ) )
EOF
put "$G/bin/ldd" 755 <<'EOF'
#! /bin/bash
# Copyright (C) 1996-2010, 2011 Free Software Foundation, Inc.
# This file is part of the GNU C Library.
RTLDLIST=/opt/glibc-2.14/lib/ld-linux-x86-64.so.2
TEXTDOMAIN=libc
TEXTDOMAINDIR=/opt/glibc-2.14/share/locale
EOF
put "$G/etc/ld.so.conf" 644 </dev/null
mkdir -p "$G/include" "$G/share/locale" "$G/libexec/getconf"
put "$G/include/gnu-versions.h" 644 <<'EOF'
/* Header with interface version macros for library pieces copied elsewhere.
   Copyright (C) 1995, 1996, 1997, 1998, 1999, 2006, 2009
   Free Software Foundation, Inc. */
#ifndef _GNU_VERSIONS_H
#define _GNU_VERSIONS_H	1
#define _GNU_OBSTACK_INTERFACE_VERSION	1
#define _GNU_REGEX_INTERFACE_VERSION	1
#endif	/* gnu-versions.h */
EOF

# Binaries, linked against the guest's own libc.
exe "$R/bin/bash" "$R/lib64/libtinfo.so.5.7" "$R/lib64/libdl-2.12.so"
for b in ls cat cp mv rm ln mkdir mount umount ps df; do exe "$R/bin/$b"; done
ln -s bash "$R/bin/sh"
exe "$R/sbin/init"
exe "$R/sbin/ldconfig"
exe "$R/sbin/lvm"
for b in lvs vgs pvs vgchange lvscan; do ln -s lvm "$R/sbin/$b"; done
exe "$R/sbin/mke2fs" "$R/lib64/libcom_err.so.2.1" "$R/lib64/libuuid.so.1.3.0" "$R/lib64/libblkid.so.1.1.0"
ln -s mke2fs "$R/sbin/mkfs.ext4"
exe "$R/usr/bin/python2.6" "$R/lib64/libpthread-2.12.so" "$R/lib64/libdl-2.12.so" "$R/lib64/libutil-2.12.so" "$R/lib64/libm-2.12.so"
ln -s python2.6 "$R/usr/bin/python2"
ln -s python2 "$R/usr/bin/python"
exe "$R/usr/bin/mysql"
exe "$R/usr/bin/vim"
exe "$R/usr/sbin/sshd" "$R/lib64/libcrypt-2.12.so"
exe "$R/usr/libexec/mysqld" "$R/lib64/libpthread-2.12.so" "$R/lib64/libcrypt-2.12.so" "$R/lib64/libz.so.1.2.3"
put "$R/usr/bin/mysqld_safe" 755 <<'EOF'
#!/bin/sh
# Copyright Abandoned 1996 TCX DataKonsult AB & Monty Program KB & Detron HB
# This file is public domain and comes with NO WARRANTY of any kind
#
# Script to start the MySQL daemon and restart it if it dies unexpectedly
ledir='/usr/libexec'
DATADIR=/var/lib/mysql
exec $ledir/mysqld --basedir=/usr --datadir=$DATADIR --user=mysql "$@"
EOF
mkdir -p "$R/usr/lib64/mysql"
lib "$R/usr/lib64/mysql/libmysqlclient.so.16.0.0" libmysqlclient.so.16 "libmysqlclient_16" \
    "mysql_init mysql_real_connect mysql_query mysql_close"
ln -s libmysqlclient.so.16.0.0 "$R/usr/lib64/mysql/libmysqlclient.so.16"
pattern 6000 'GPL-2' | put "$R/usr/share/doc/COPYING" 644

# A small MySQL 5.1 data directory (MyISAM tables, the InnoDB system tablespace
# and logs). The tablespace is a large sparse file: holes must stay holes.
M=$R/var/lib/mysql
mkdir -p "$M/mysql" "$M/ta_shop" "$M/test"
# frm/MYI/MYD headers as MySQL 5.1 writes them, then recognisable rows.
frm() { # frm FILE COLUMNS...
    f=$1
    shift
    {
        printf '\376\001\012\014\003\000\000\020\001\000\000\060\000\000\020\000'
        head -c 4080 /dev/zero
        printf 'PRIMARY\377'
        for c in "$@"; do printf '%s\377' "$c"; done
        printf '\000'
    } >"$f"
}
myi() { # myi FILE KEYS
    {
        printf '\376\376\007\001\000\003\001\136\000\260\000\144\000\304\000\001'
        pattern "$2" "key" 
    } >"$1"
}
frm "$M/ta_shop/customers.frm" id name phone city created
awk 'BEGIN {
    split("Wang Li Zhang Liu Chen Yang Zhao Huang Zhou Wu", fam, " ");
    split("Wei Fang Na Min Jing Lei Qiang Jun Yan Tao", giv, " ");
    split("Beijing Shanghai Hangzhou Chengdu Wuhan Xian Nanjing Suzhou", city, " ");
    for (i = 1; i <= 1500; i++)
        printf "%c%06d|%-20s|138%08d|%-12s|2013-%02d-%02d\n", 0, i,
            fam[i % 10 + 1] " " giv[int(i / 10) % 10 + 1], i * 7919 % 100000000,
            city[i % 8 + 1], i % 12 + 1, i % 28 + 1
}' >"$M/ta_shop/customers.MYD"
myi "$M/ta_shop/customers.MYI" 16384
frm "$M/ta_shop/orders.frm" id customer_id total status ordered
awk 'BEGIN {
    split("paid shipped delivered refunded", st, " ");
    for (i = 1; i <= 4000; i++)
        printf "%cORD%07d|%06d|%10.2f|%-9s|2017-%02d-%02d %02d:%02d\n", 0, 1000000 + i,
            i * 31 % 1500 + 1, (i * 7919 % 100000) / 100, st[i % 4 + 1],
            1 + int(i / 1400), i % 28 + 1, i % 24, i % 60
}' >"$M/ta_shop/orders.MYD"
myi "$M/ta_shop/orders.MYI" 49152
frm "$M/ta_shop/products.frm" sku title price stock
awk 'BEGIN {
    for (i = 1; i <= 300; i++)
        printf "%cSKU-%05d|Tea sampler no. %-4d|%8.2f|%5d\n", 0, i, i, 20 + i % 97, i * 13 % 500
}' >"$M/ta_shop/products.MYD"
myi "$M/ta_shop/products.MYI" 4096
put "$M/ta_shop/db.opt" 660 <<'EOF'
default-character-set=utf8
default-collation=utf8_general_ci
EOF
for t in user db host tables_priv columns_priv procs_priv func plugin; do
    frm "$M/mysql/$t.frm" Host User Db Select_priv Insert_priv
    printf '%clocalhost|root|*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B|Y|Y|Y\n%cta|ta_shop|*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9|Y|Y|N\n' 0 0 >"$M/mysql/$t.MYD"
    myi "$M/mysql/$t.MYI" 2048
done
# InnoDB: 256 MiB system tablespace with a few pages of data (the rest holes),
# two 5 MiB redo logs with only their headers written.
ibpage() { # ibpage PAGENO: a 16 KiB page with FIL header and recognisable rows
    {
        printf "$(printf '\\000\\000\\000\\000\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"
        printf '\377\377\377\377\377\377\377\377\000\000\000\000\000\001\237\044\105\277'
        printf 'infimum\000supremum'
        pattern 16000 "ta_shop/orders row $1"
    } | head -c 16384
}
ib=$M/ibdata1
: >"$ib"
for p in 0 1 2 3 4 5 6 7 8 9 10 11; do ibpage $p; done >>"$ib"
for at in 4096 12800 16383; do # pages at 64 MiB, 200 MiB and the last page
    ibpage $at | dd of="$ib" bs=16384 seek=$at conv=notrunc status=none
done
truncate -s 256M "$ib"
for n in 0 1; do
    { printf 'ib_logfile%s\000\000\000\000\000\001\237\044\105' "$n"; pattern 2000 "log$n"; } >"$M/ib_logfile$n"
    truncate -s 5M "$M/ib_logfile$n"
done
chown -R 27:27 "$M"
find "$M" -type f -exec chmod 660 {} +
chmod 755 "$M"
chmod 700 "$M/mysql" "$M/ta_shop" "$M/test"
chown 27:27 "$R/var/run/mysqld"
put "$R/var/log/mysqld.log" 640 <<'EOF'
130312 10:05:41 mysqld_safe Starting mysqld daemon with databases from /var/lib/mysql
130312 10:05:41  InnoDB: Initializing buffer pool, size = 8.0M
130312 10:05:41  InnoDB: Completed initialization of buffer pool
130312 10:05:42 [Note] /usr/libexec/mysqld: ready for connections.
Version: '5.1.67'  socket: '/var/lib/mysql/mysql.sock'  port: 3306  Source distribution
170302 10:31:02 [Note] /usr/libexec/mysqld: Normal shutdown
170302 10:31:04 [Note] /usr/libexec/mysqld: Shutdown complete
170302 10:31:04 mysqld_safe mysqld from pid file /var/run/mysqld/mysqld.pid ended
EOF
chown 27:27 "$R/var/log/mysqld.log"
put "$R/var/log/messages" 600 <<'EOF'
Mar  2 10:25:13 ta kernel: EXT4-fs (dm-0): re-mounted. Opts: (null)
Mar  2 10:33:51 ta init: tty (/dev/tty1) main process (1384) killed by SEGV signal
Mar  2 10:33:51 ta init: tty (/dev/tty2) main process (1386) killed by SEGV signal
EOF
put "$R/root/.bash_history" 600 <<'EOF'
yum install gcc make
cd /usr/local/src
tar xzf glibc-2.14.tar.gz
cd glibc-2.14 && mkdir build && cd build
../configure --prefix=/opt/glibc-2.14
make -j4
make install
export LD_LIBRARY_PATH=/opt/glibc-2.14/lib:$LD_LIBRARY_PATH
service mysqld stop
ln -sf /opt/glibc-2.14/lib/libc.so.6 /lib64/libc.so.6
ls
EOF
put "$R/root/anaconda-ks.cfg" 600 <<'EOF'
# Kickstart file automatically generated by anaconda.
#version=DEVEL
install
lang en_US.UTF-8
part /boot --fstype=ext4 --size=250
part pv.008002 --grow --size=1
volgroup vg_ta --pesize=4096 pv.008002
logvol /home --fstype=ext4 --name=lv_home --vgname=vg_ta --size=256
logvol / --fstype=ext4 --name=lv_root --vgname=vg_ta --size=1024
logvol swap --name=lv_swap --vgname=vg_ta --size=256
EOF

cat >>"$stamps_root" <<EOF
/** $T_BUILD $T_INSTALL
/ $T_INSTALL $T_INSTALL
/etc/** $T_SETUP $T_SETUP
/etc/redhat-release $T_BUILD $T_INSTALL
/etc/issue $T_BUILD $T_INSTALL
/etc/fstab $T_INSTALL $T_INSTALL
/root/** $T_SETUP $T_SETUP
/var/** $T_SETUP $T_SETUP
/var/lib/mysql/** $T_DB $T_DB
/var/log/mysqld.log $(t '2017-03-02 10:31:04') $(t '2017-03-02 10:31:04')
/var/log/messages $(t '2017-03-02 10:33:51') $(t '2017-03-02 10:33:51')
/var/log $(t '2017-03-02 10:33:51') $(t '2017-03-02 10:33:51')
/opt $T_GLIBC $T_GLIBC
/opt/** $T_GLIBC $T_GLIBC
/lib64 $T_LINK $T_LINK
/lib64/libc.so.6 $T_LINK $T_LINK
/root $T_LINK $T_LINK
/root/.bash_history $(t '2017-03-02 10:33:40') $(t '2017-03-02 10:33:40')
/tmp $T_LINK $T_LINK
EOF

# ---------------------------------------------------------------- /boot (p1)
B=$boot
K=2.6.32-358.el6.x86_64
mkdir -p "$B/grub" "$B/lost+found"
chmod 700 "$B/lost+found"
# A bzImage-like kernel: setup header magic and version string, then filler.
{
    printf 'MZ'
    head -c 508 /dev/zero | tr '\0' '\001'
    printf 'U\252'
    printf '\353\146HdrS\015\002'
    printf '%s (mockbuild@c6b8.bsys.dev.centos.org) #1 SMP Fri Feb 22 00:31:26 UTC 2013\000' "$K"
    pattern 98304 'bzImage'
} | put "$B/vmlinuz-$K" 755
mkdir -p "$build/initrd/bin" "$build/initrd/sbin" "$build/initrd/etc"
echo "vg_ta/lv_root" >"$build/initrd/etc/lvm-root"
printf '#!/bin/sh\necho "dracut: Mounting root"\n' >"$build/initrd/init"
chmod 755 "$build/initrd/init"
find "$build/initrd" -exec touch -h -d @"$T_INSTALL" {} +
(cd "$build/initrd" && find . | sort | cpio --quiet -o -H newc --reproducible | gzip -n -9) |
    put "$B/initramfs-$K.img" 600
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "ffffffff81%06x T demo_symbol_%d\n", i * 64, i }' |
    put "$B/System.map-$K" 644
{ echo "#"; echo "# Automatically generated make config: don't edit"; echo "# Linux kernel version: 2.6.32-358.el6.x86_64"; echo "#";
  for o in 64BIT X86_64 SMP EXT4_FS BLK_DEV_DM DM_SNAPSHOT MD VIRTIO_BLK VIRTIO_NET; do echo "CONFIG_$o=y"; done; } |
    put "$B/config-$K" 644
printf 'symvers\n' | gzip -n -9 | put "$B/symvers-$K.gz" 644
put "$B/grub/grub.conf" 600 <<EOF
# grub.conf generated by anaconda
#
# Note that you do not have to rerun grub after making changes to this file
# NOTICE:  You have a /boot partition.  This means that
#          all kernel and initrd paths are relative to /boot/, eg.
#          root (hd0,0)
#          kernel /vmlinuz-version ro root=/dev/mapper/vg_ta-lv_root
#          initrd /initrd-[generic-]version.img
#boot=/dev/vda
default=0
timeout=5
splashimage=(hd0,0)/grub/splash.xpm.gz
hiddenmenu
title CentOS ($K)
	root (hd0,0)
	kernel /vmlinuz-$K ro root=/dev/mapper/vg_ta-lv_root rd_NO_LUKS LANG=en_US.UTF-8 rd_LVM_LV=vg_ta/lv_swap rd_NO_MD SYSFONT=latarcyrheb-sun16 crashkernel=auto rd_LVM_LV=vg_ta/lv_root  KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM rhgb quiet
	initrd /initramfs-$K.img
EOF
ln -s ./grub.conf "$B/grub/menu.lst"
put "$B/grub/device.map" 644 <<'EOF'
# this device map was generated by anaconda
(hd0)     /dev/vda
EOF
# GRUB legacy stage1: the boot code also written to the MBR below.
{
    printf '\353\110\220'
    head -c 379 /dev/zero
    printf 'GRUB \000Geom\000Hard Disk\000Read\000 Error\000'
} | head -c 440 >"$build/stage1"
{ cat "$build/stage1"; head -c 70 /dev/zero; printf 'U\252'; } | put "$B/grub/stage1" 644
pattern 126000 'stage2' | put "$B/grub/stage2" 644
pattern 13000 'e2fs_stage1_5' | put "$B/grub/e2fs_stage1_5" 644
printf '/* XPM */\nstatic char * splash_xpm[] = {\n"640 480 14 1",\n};\n' | gzip -n -9 | put "$B/grub/splash.xpm.gz" 644
cat >>"$stamps_boot" <<EOF
/** $T_BUILD $T_INSTALL
/grub/** $T_INSTALL $T_INSTALL
/initramfs-$K.img $T_INSTALL $T_INSTALL
/ $T_INSTALL $T_INSTALL
EOF

# ---------------------------------------------------------------- /home (lv_home)
H=$home/ta
mkdir -p "$H/backup" "$H/shop/static" "$home/lost+found"
chmod 700 "$home/lost+found"
put "$H/.bashrc" 644 <<'EOF'
# .bashrc

# Source global definitions
if [ -f /etc/bashrc ]; then
	. /etc/bashrc
fi
EOF
put "$H/.bash_history" 600 <<'EOF'
mysqldump -u ta -p ta_shop | gzip > backup/ta_shop-2017-02-27.sql.gz
ls -l backup
EOF
awk 'BEGIN {
    print "-- MySQL dump 10.13  Distrib 5.1.67, for redhat-linux-gnu (x86_64)";
    print "-- Host: localhost    Database: ta_shop";
    print "CREATE TABLE `orders` (`id` varchar(12), `customer_id` int, `total` decimal(10,2));";
    for (i = 1; i <= 3000; i++) printf "INSERT INTO `orders` VALUES (\"ORD%07d\",%d,%.2f);\n", 1000000 + i, i * 31 % 1500 + 1, (i * 7919 % 100000) / 100
}' | gzip -n -9 | put "$H/backup/ta_shop-2017-02-27.sql.gz" 644
put "$H/shop/config.php" 640 <<'EOF'
<?php
$db_host = 'localhost';
$db_name = 'ta_shop';
$db_user = 'ta';
EOF
pattern 20000 'style' | put "$H/shop/static/site.css" 644
chown -R 500:500 "$H"
chmod 700 "$H"
cat >>"$stamps_home" <<EOF
/** $T_HOME $T_HOME
/ $T_SETUP $T_SETUP
/lost+found $T_SETUP $T_SETUP
EOF

# ---------------------------------------------------------------- filesystems
# mkfs_ext4 DIR IMAGE SIZE UUID HASHSEED STAMPS CRTIME(0|1) MKE2FS-OPTIONS...
mkfs_ext4() {
    dir=$1 fsimg=$2 size=$3 uuid=$4 seed=$5 stamps=$6 crtime=$7
    shift 7
    rm -f "$fsimg"
    truncate -s "$size" "$fsimg"
    # CentOS 6's ext4 features (no metadata_csum, 64bit or orphan_file yet).
    mke2fs -q -F -t ext4 -O ^metadata_csum,^64bit,^orphan_file,^metadata_csum_seed,uninit_bg \
        -U "$uuid" -E hash_seed="$seed",lazy_itable_init=1,lazy_journal_init=1 \
        -d "$dir" "$@" "$fsimg" >"$work/mke2fs.err" 2>&1 || { cat "$work/mke2fs.err" >&2; exit 1; }
    grep -v "128-byte inodes cannot handle dates" "$work/mke2fs.err" >&2 || true
    # Times: rules from $stamps for every path; ctime is what `ls -lc` shows.
    (cd "$dir" && find . -mindepth 0 | sort) | sed 's|^\.||; s|^$|/|' |
        awk -v rules="$stamps" -v crtime="$crtime" '
        BEGIN {
            n = 0
            while ((getline line < rules) > 0) {
                split(line, f, " "); n++; pat[n] = f[1]; mt[n] = f[2]; ct[n] = f[3]
            }
        }
        {
            p = $0; m = ""; c = ""
            for (i = 1; i <= n; i++) {
                r = pat[i]
                if (r ~ /\/\*\*$/) {
                    base = substr(r, 1, length(r) - 3)
                    ok = (base == "" && p != "/") || index(p, base "/") == 1
                } else ok = (p == r)
                if (ok) { m = mt[i]; c = ct[i] }
            }
            if (m == "") next
            printf "sif %s mtime @%s\nsif %s atime @%s\nsif %s ctime @%s\n", p, m, p, c, p, c
            if (crtime) printf "sif %s crtime @%s\n", p, c
        }' >"$work/debugfs.cmd"
    debugfs -w -f "$work/debugfs.cmd" "$fsimg" >/dev/null 2>"$work/debugfs.err" || {
        cat "$work/debugfs.err" >&2
        exit 1
    }
    if grep -v '^debugfs ' "$work/debugfs.err" | grep -q .; then
        cat "$work/debugfs.err" >&2
        exit 1
    fi
}
mkfs_ext4 "$root" "$work/root.fs" 1G "$ROOT_UUID" 3e1f0b5a-2c4d-4e6f-8a9b-0c1d2e3f4a5b "$stamps_root" 1 -b 4096 -I 256
# SELinux labels as CentOS 6 has them (stored in the inode's xattr area).
{
    echo "ea_set /lib64/libc-2.12.so security.selinux system_u:object_r:lib_t:s0"
    echo "ea_set /lib64/ld-2.12.so security.selinux system_u:object_r:ld_so_t:s0"
    echo "ea_set /lib64/libc.so.6 security.selinux unconfined_u:object_r:lib_t:s0"
    echo "ea_set /etc/fstab security.selinux system_u:object_r:etc_t:s0"
    echo "ea_set /var/lib/mysql security.selinux system_u:object_r:mysqld_db_t:s0"
} >"$work/xattr.cmd"
debugfs -w -f "$work/xattr.cmd" "$work/root.fs" >/dev/null 2>&1
mkfs_ext4 "$boot" "$work/boot.fs" $((P1_SECTORS * SECTOR)) "$BOOT_UUID" 7c2e4a90-1b3d-4f5e-9a8b-7c6d5e4f3a2b "$stamps_boot" 0 -b 1024 -I 128
mkfs_ext4 "$home" "$work/home.fs" 256M "$HOME_UUID" 9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a "$stamps_home" 1 -b 4096 -I 256
# The guest had mounted them: say so in the superblocks, as a clean unmount leaves them.
for fs in root:/ boot:/boot home:/home; do
    f=$work/${fs%%:*}.fs
    debugfs -w -R "ssv last_mounted ${fs#*:}" "$f" >/dev/null 2>&1
    debugfs -w -R "ssv mtime @$(t '2017-03-02 09:12:30')" "$f" >/dev/null 2>&1
    debugfs -w -R "ssv wtime @$T_LINK" "$f" >/dev/null 2>&1
    debugfs -w -R "ssv mnt_count 23" "$f" >/dev/null 2>&1
    debugfs -w -R "ssv kbytes_written 0" "$f" >/dev/null 2>&1
    e2fsck -fn "$f" >"$work/fsck.out" 2>&1 || {
        cat "$work/fsck.out" >&2
        echo "e2fsck found problems in $f" >&2
        exit 1
    }
done
truncate -s 256M "$work/swap.fs"
chmod 600 "$work/swap.fs"
mkswap -U "$SWAP_UUID" "$work/swap.fs" >/dev/null 2>"$work/mkswap.err" || { cat "$work/mkswap.err" >&2; exit 1; }

# ---------------------------------------------------------------- the disk
img=$out/demo.img
rm -f "$img"
truncate -s $((DISK_SECTORS * SECTOR)) "$img"
sfdisk --quiet --no-reread --no-tell-kernel "$img" <<EOF
label: dos
label-id: 0x0005f2a1
unit: sectors

start=$P1_START, size=$P1_SECTORS, type=83, bootable
start=$P2_START, size=$P2_SECTORS, type=8e
EOF
# GRUB's boot code in the MBR (the partition table after it stays sfdisk's).
dd if="$build/stage1" of="$img" bs=440 count=1 conv=notrunc status=none

loop=$(losetup -f --show -o $((P2_START * SECTOR)) --sizelimit $((P2_SECTORS * SECTOR)) "$img")
export LVM_SUPPRESS_FD_WARNINGS=1
lvm_() {
    cmd=$1
    shift
    # unshare: lvm2 records the host name; the guest's is "ta".
    unshare --uts sh -c 'hostname ta; exec "$@"' lvm lvm "$cmd" --devices "$loop" --driverloaded n \
        --config 'backup{backup=0 archive=0} devices{obtain_device_list_from_udev=0}' "$@"
}
: >"$work/lvm.log"
# lvm2, its messages kept in a log shown only when a command fails.
lvm_run() {
    lvm_ "$@" >>"$work/lvm.log" 2>&1 || { cat "$work/lvm.log" >&2; exit 1; }
}
lvm_run pvcreate --uuid "$PV_UUID" --norestorefile "$loop"
lvm_run vgcreate -s ${EXTENT_MIB}M vg_ta "$loop"
lvm_run lvcreate -an -Zn -L 1G -n lv_root vg_ta
lvm_run lvcreate -an -Zn -L 256M -n lv_home vg_ta
lvm_run lvcreate -an -Zn -L 256M -n lv_swap vg_ta
# Fixed UUIDs and anaconda's creation times, written back by lvm2 itself.
lvm_run vgcfgbackup -f "$work/vg_ta.vg" vg_ta
awk -v vg="$VG_UUID" -v r="$LV_ROOT_UUID" -v h="$LV_HOME_UUID" -v s="$LV_SWAP_UUID" -v t="$(t '2013-03-12 09:42:31')" '
    /^vg_ta \{/ { invg = 1 }
    invg && /^\tid = / && !done_vg { sub(/"[^"]*"/, "\"" vg "\""); done_vg = 1 }
    /^\t\tlv_root \{/ { lv = r } /^\t\tlv_home \{/ { lv = h } /^\t\tlv_swap \{/ { lv = s }
    lv != "" && /^\t\t\tid = / { sub(/"[^"]*"/, "\"" lv "\""); lv = "" }
    /^\t\t\tcreation_time = / { sub(/= [0-9]+.*/, "= " t "\t# 2013-03-12 09:42:31 +0000") }
    { print }' "$work/vg_ta.vg" >"$work/vg_ta.fixed.vg"
lvm_run vgcfgrestore -f "$work/vg_ta.fixed.vg" vg_ta
lvm_ lvs -a --segments --units b --nosuffix --reportformat json \
    -o lv_name,vg_name,lv_uuid,lv_attr,lv_size,seg_start,seg_start_pe,seg_size,seg_size_pe,segtype,stripes,stripe_size,seg_pe_ranges,devices \
    vg_ta 2>>"$work/lvm.log" | sed "s|$loop|/dev/vda2|g" >"$out/demo.lvs.json"
lvm_ pvs --units b --nosuffix --reportformat json \
    -o pv_name,pv_uuid,pv_size,pe_start,pv_pe_count,vg_name,vg_uuid,vg_extent_size 2>>"$work/lvm.log" |
    sed "s|$loop|/dev/vda2|g" >"$out/demo.pvs.json"
pe_start=$(lvm_ pvs --noheadings --units b --nosuffix -o pe_start "$loop" 2>/dev/null | tr -d ' ')
grep -q "$VG_UUID" "$out/demo.pvs.json" || { echo "vgcfgrestore did not take the fixed UUIDs" >&2; exit 1; }
losetup -d "$loop"
loop=""

# Write each filesystem where its LV's extents are.
lv_offset() { # first byte of LV $1 on the disk
    first_pe=$(awk -v lv="$1" -F'"' '$0 ~ "\"lv_name\":\"" lv "\"" {
        for (i = 1; i <= NF; i++) if ($i == "seg_pe_ranges") { split($(i + 2), a, ":"); split(a[2], b, "-"); print b[1]; exit } }' "$out/demo.lvs.json")
    echo $((P2_START * SECTOR + pe_start + first_pe * EXTENT_MIB * 1048576))
}
place() { # place FILE OFFSET
    dd if="$1" of="$img" bs=1M seek="$2" oflag=seek_bytes conv=notrunc,sparse status=none
}
place "$work/boot.fs" $((P1_START * SECTOR))
place "$work/root.fs" "$(lv_offset lv_root)"
place "$work/home.fs" "$(lv_offset lv_home)"
place "$work/swap.fs" "$(lv_offset lv_swap)"

# ---------------------------------------------------------------- reports
sfdisk --json "$img" | sed "s|$img|demo.img|g" >"$out/demo.sfdisk.json"
{
    probe() { # probe NAME OFFSET SIZE
        echo "VOLUME=$1"
        blkid -d -p -o export -O "$2" -S "$3" "$img" | grep -v '^DEVNAME='
        echo
    }
    probe p1 $((P1_START * SECTOR)) $((P1_SECTORS * SECTOR))
    probe p2 $((P2_START * SECTOR)) $((P2_SECTORS * SECTOR))
    probe vg_ta/lv_root "$(lv_offset lv_root)" $((1024 * 1048576))
    probe vg_ta/lv_home "$(lv_offset lv_home)" $((256 * 1048576))
    probe vg_ta/lv_swap "$(lv_offset lv_swap)" $((256 * 1048576))
} >"$out/demo.blkid"
echo "demo: $img ($(du -h "$img" | cut -f1) allocated of $(du -h --apparent-size "$img" | cut -f1))"
