//! Test support for the TUI: an in-memory guest filesystem shaped like the
//! story's CentOS 6 guest, a layout built from a real partitioned image
//! (sfdisk) with the LVM layer added by hand, and an opener that serves the
//! in-memory filesystem for the guest's volumes.
//!
//! Used by `tests/tui/`, `tests/tui_pty.rs` and `benches/tui_*.rs` (through `#[path]`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use vmrescue::Error;
use vmrescue::engine::VolumeOpener;
use vmrescue::fs::{
    DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Timestamp, Xattr,
};
use vmrescue::io::{Area, DiskId, Mapping};
use vmrescue::layers::lvm::{
    LogicalVolume, LvSegment, PvOnDisk, PvScan, SegmentArea, VgPv, VolumeGroup,
};
use vmrescue::layers::{Content, ContentKind, GuestRole, Layout, Volume, VolumeId, VolumeKind};
use vmrescue::tui::app::Focus;
use vmrescue::tui::copier::JobCopier;
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::{Action, App, AppConfig};

/// 2013-02-22 10:15 UTC: when the guest was installed.
pub const T2013: i64 = 1_361_528_100;
/// 2024-05-02 12:15 UTC: when someone repointed libc.so.6.
pub const T2024: i64 = 1_714_652_100;

/// One node of a [`MemFs`].
#[derive(Clone)]
struct MemNode {
    meta: Metadata,
    children: Vec<(Vec<u8>, u64)>,
    target: Vec<u8>,
    /// Data ranges (offset, bytes); the rest of `meta.size` is a hole.
    data: Vec<(u64, Vec<u8>)>,
    xattrs: Vec<Xattr>,
}

/// An in-memory guest filesystem.
#[derive(Clone)]
pub struct MemFs {
    nodes: HashMap<u64, MemNode>,
    by_path: HashMap<Vec<u8>, u64>,
    next: u64,
    status: FsStatus,
}

fn meta(ino: u64, t: FileType, perm: u32, size: u64, time: i64) -> Metadata {
    let ts = Timestamp { sec: time, nsec: 0 };
    Metadata {
        node: NodeId(ino),
        ino,
        file_type: t,
        perm,
        uid: 0,
        gid: 0,
        size,
        nlink: if t == FileType::Directory { 2 } else { 1 },
        atime: ts,
        mtime: ts,
        ctime: ts,
        crtime: None,
        rdev: (0, 0),
        allocated: None,
    }
}

impl MemFs {
    /// An empty filesystem (root only) of type `fs_type`.
    pub fn new(fs_type: &str) -> MemFs {
        let mut nodes = HashMap::new();
        nodes.insert(
            2,
            MemNode {
                meta: meta(2, FileType::Directory, 0o755, 4096, T2013),
                children: Vec::new(),
                target: Vec::new(),
                data: Vec::new(),
                xattrs: Vec::new(),
            },
        );
        let mut by_path = HashMap::new();
        by_path.insert(b"/".to_vec(), 2);
        MemFs {
            nodes,
            by_path,
            next: 11,
            status: FsStatus {
                fs_type: fs_type.into(),
                ..FsStatus::default()
            },
        }
    }

    /// Set what `status()` reports.
    pub fn set_status(&mut self, status: FsStatus) {
        self.status = status;
    }

    fn add(&mut self, path: &[u8], node: MemNode) -> u64 {
        let (dir, name) = vmrescue::fs::path::split_last(path);
        let name = name.expect("not the root");
        let parent = self.ensure_dir(&dir);
        let ino = self.next;
        self.next += 1;
        let mut node = node;
        node.meta.node = NodeId(ino);
        node.meta.ino = ino;
        self.nodes.insert(ino, node);
        self.nodes
            .get_mut(&parent)
            .expect("parent")
            .children
            .push((name, ino));
        self.by_path.insert(path.to_vec(), ino);
        ino
    }

    fn ensure_dir(&mut self, path: &[u8]) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        self.dir(path, T2013)
    }

    /// Add a directory.
    pub fn dir(&mut self, path: impl AsRef<[u8]>, time: i64) -> u64 {
        let path = path.as_ref();
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        self.add(
            path,
            MemNode {
                meta: meta(0, FileType::Directory, 0o755, 4096, time),
                children: Vec::new(),
                target: Vec::new(),
                data: Vec::new(),
                xattrs: Vec::new(),
            },
        )
    }

    /// Add a regular file with these contents.
    pub fn file(&mut self, path: impl AsRef<[u8]>, data: &[u8], time: i64) -> u64 {
        self.file_with(
            path,
            data.len() as u64,
            vec![(0, data.to_vec())],
            0o644,
            time,
        )
    }

    /// Add a regular file of `size` bytes holding `data` ranges (the rest are holes).
    pub fn file_with(
        &mut self,
        path: impl AsRef<[u8]>,
        size: u64,
        data: Vec<(u64, Vec<u8>)>,
        perm: u32,
        time: i64,
    ) -> u64 {
        self.add(
            path.as_ref(),
            MemNode {
                meta: meta(0, FileType::Regular, perm, size, time),
                children: Vec::new(),
                target: Vec::new(),
                data,
                xattrs: Vec::new(),
            },
        )
    }

    /// Add a symlink.
    pub fn symlink(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>, time: i64) -> u64 {
        let target = target.as_ref().to_vec();
        self.add(
            path.as_ref(),
            MemNode {
                meta: meta(0, FileType::Symlink, 0o777, target.len() as u64, time),
                children: Vec::new(),
                target,
                data: Vec::new(),
                xattrs: Vec::new(),
            },
        )
    }

    /// Add a device node.
    pub fn device(&mut self, path: impl AsRef<[u8]>, time: i64) -> u64 {
        let mut m = meta(0, FileType::CharDevice, 0o600, 0, time);
        m.rdev = (1, 3);
        self.add(
            path.as_ref(),
            MemNode {
                meta: m,
                children: Vec::new(),
                target: Vec::new(),
                data: Vec::new(),
                xattrs: Vec::new(),
            },
        )
    }

    /// Give a node an owner and a group.
    pub fn set_owner(&mut self, ino: u64, uid: u32, gid: u32) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.meta.uid = uid;
            n.meta.gid = gid;
        }
    }

    /// Add a directory entry named `name` exactly (a hostile image can hold
    /// a `/` in a name) in directory `dir`, for the existing node `ino`.
    pub fn raw_entry(&mut self, dir: &[u8], name: &[u8], ino: u64) {
        let parent = self.ensure_dir(dir);
        self.nodes
            .get_mut(&parent)
            .expect("parent")
            .children
            .push((name.to_vec(), ino));
    }

    /// Give a node an extended attribute.
    pub fn xattr(&mut self, ino: u64, name: &str, value: &[u8]) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.xattrs.push(Xattr {
                name: name.as_bytes().to_vec(),
                value: value.to_vec(),
            });
        }
    }

    /// The bytes of a file as a reader would return them (holes as zeros).
    pub fn contents(&self, path: &[u8]) -> Vec<u8> {
        let ino = self.by_path[path];
        let n = &self.nodes[&ino];
        let mut out = vec![0u8; n.meta.size as usize];
        for (off, bytes) in &n.data {
            out[*off as usize..*off as usize + bytes.len()].copy_from_slice(bytes);
        }
        out
    }

    fn node(&self, node: NodeId) -> vmrescue::Result<&MemNode> {
        self.nodes
            .get(&node.0)
            .ok_or_else(|| Error::NotFound(format!("inode {}", node.0)))
    }
}

impl FsView for MemFs {
    fn status(&self) -> FsStatus {
        self.status.clone()
    }
    fn root(&self) -> NodeId {
        NodeId(2)
    }
    fn metadata(&self, node: NodeId) -> vmrescue::Result<Metadata> {
        Ok(self.node(node)?.meta.clone())
    }
    fn read_dir(&self, dir: NodeId) -> vmrescue::Result<Vec<DirEntry>> {
        let n = self.node(dir)?;
        if n.meta.file_type != FileType::Directory {
            return Err(Error::Invalid("not a directory".into()));
        }
        Ok(n.children
            .iter()
            .map(|(name, ino)| DirEntry {
                name: name.clone(),
                node: NodeId(*ino),
                file_type: self.nodes.get(ino).map(|c| c.meta.file_type),
            })
            .collect())
    }
    fn lookup(&self, dir: NodeId, name: &[u8]) -> vmrescue::Result<Option<NodeId>> {
        let n = self.node(dir)?;
        Ok(n.children
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, i)| NodeId(*i)))
    }
    fn read_link(&self, node: NodeId) -> vmrescue::Result<Vec<u8>> {
        Ok(self.node(node)?.target.clone())
    }
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> vmrescue::Result<usize> {
        let n = self.node(node)?;
        let size = n.meta.size;
        if offset >= size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - offset) as usize;
        buf[..len].fill(0);
        for (off, bytes) in &n.data {
            let start = (*off).max(offset);
            let end = (off + bytes.len() as u64).min(offset + len as u64);
            if start < end {
                buf[(start - offset) as usize..(end - offset) as usize]
                    .copy_from_slice(&bytes[(start - off) as usize..(end - off) as usize]);
            }
        }
        Ok(len)
    }
    fn extents(&self, node: NodeId) -> vmrescue::Result<Vec<FileExtent>> {
        Ok(self
            .node(node)?
            .data
            .iter()
            .map(|(off, b)| FileExtent {
                offset: *off,
                len: b.len() as u64,
                unwritten: false,
            })
            .collect())
    }
    fn xattrs(&self, node: NodeId) -> vmrescue::Result<Vec<Xattr>> {
        Ok(self.node(node)?.xattrs.clone())
    }
}

/// A minimal 64-bit little-endian x86-64 ELF shared object whose dynamic
/// section names `soname` (enough for a SONAME reader).
pub fn tiny_elf(soname: &str) -> Vec<u8> {
    let ehdr = 64usize;
    let phdr = 56usize;
    let dyn_off = ehdr + 2 * phdr; // 176
    let dyn_len = 4 * 16;
    let str_off = dyn_off + dyn_len;
    let mut strtab = vec![0u8];
    strtab.extend_from_slice(soname.as_bytes());
    strtab.push(0);
    let total = str_off + strtab.len();
    let mut b = vec![0u8; total];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little endian
    b[6] = 1; // version
    let put16 = |b: &mut Vec<u8>, o: usize, v: u16| b[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut Vec<u8>, o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut b, 16, 3); // ET_DYN
    put16(&mut b, 18, 62); // EM_X86_64
    put32(&mut b, 20, 1);
    put64(&mut b, 32, ehdr as u64); // e_phoff
    put16(&mut b, 52, ehdr as u16); // e_ehsize
    put16(&mut b, 54, phdr as u16); // e_phentsize
    put16(&mut b, 56, 2); // e_phnum
    put16(&mut b, 58, 64); // e_shentsize
    // PT_LOAD: the whole file at vaddr 0.
    let p = ehdr;
    put32(&mut b, p, 1);
    put32(&mut b, p + 4, 5);
    put64(&mut b, p + 32, total as u64);
    put64(&mut b, p + 40, total as u64);
    put64(&mut b, p + 48, 0x1000);
    // PT_DYNAMIC.
    let p = ehdr + phdr;
    put32(&mut b, p, 2);
    put32(&mut b, p + 4, 6);
    put64(&mut b, p + 8, dyn_off as u64);
    put64(&mut b, p + 16, dyn_off as u64);
    put64(&mut b, p + 24, dyn_off as u64);
    put64(&mut b, p + 32, dyn_len as u64);
    put64(&mut b, p + 40, dyn_len as u64);
    put64(&mut b, p + 48, 8);
    // Dynamic entries: SONAME, STRTAB, STRSZ, NULL.
    let entries: [(u64, u64); 4] = [
        (14, 1),
        (5, str_off as u64),
        (10, strtab.len() as u64),
        (0, 0),
    ];
    for (i, (tag, val)) in entries.iter().enumerate() {
        put64(&mut b, dyn_off + i * 16, *tag);
        put64(&mut b, dyn_off + i * 16 + 8, *val);
    }
    b[str_off..].copy_from_slice(&strtab);
    b
}

/// Names with escape sequences a hostile guest could hold.
pub const HOSTILE_NAMES: &[&[u8]] = &[
    b"\x1b[2J\x1b[31mred",
    b"title\x1b]0;pwned\x07",
    b"bell\x07\x9b1m",
];

/// The story's root filesystem: CentOS 6.4 with `/lib64/libc.so.6` repointed
/// at a hand-built glibc in 2024 while everything else dates from 2013.
pub fn centos_root() -> MemFs {
    let mut fs = MemFs::new("ext4");
    for d in [
        "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/root", "/sbin",
        "/tmp", "/usr", "/var",
    ] {
        fs.dir(d, T2013);
    }
    fs.file(
        "/etc/redhat-release",
        b"CentOS release 6.4 (Final)\n",
        T2013,
    );
    fs.file(
        "/etc/fstab",
        b"/dev/mapper/vg_ta-lv_root / ext4 defaults 1 1\n\
/dev/mapper/vg_ta-lv_home /home ext4 defaults 1 2\n",
        T2013,
    );
    fs.file("/etc/ld.so.conf", b"include ld.so.conf.d/*.conf\n", T2013);
    fs.file_with(
        "/bin/bash",
        903_272,
        vec![(0, tiny_elf_exec())],
        0o755,
        T2013,
    );
    fs.symlink("/bin/sh", "bash", T2013);
    // /lib64: the libraries of 2013, and the link changed in 2024.
    let libc = fs.file_with(
        "/lib64/libc-2.12.so",
        1_926_800,
        vec![(0, tiny_elf("libc.so.6"))],
        0o755,
        T2013,
    );
    fs.xattr(libc, "security.selinux", b"system_u:object_r:lib_t:s0\0");
    fs.file_with(
        "/lib64/ld-2.12.so",
        154_664,
        vec![(0, tiny_elf("ld-linux-x86-64.so.2"))],
        0o755,
        T2013,
    );
    fs.symlink("/lib64/ld-linux-x86-64.so.2", "ld-2.12.so", T2013);
    fs.symlink("/lib64/libc.so.6", "/opt/glibc-2.14/lib/libc.so.6", T2024);
    fs.file_with(
        "/lib64/libm-2.12.so",
        596_272,
        vec![(0, tiny_elf("libm.so.6"))],
        0o755,
        T2013,
    );
    fs.symlink("/lib64/libm.so.6", "libm-2.12.so", T2013);
    fs.file_with(
        "/lib64/libpthread-2.12.so",
        145_896,
        vec![(0, tiny_elf("libpthread.so.0"))],
        0o755,
        T2013,
    );
    fs.symlink("/lib64/libpthread.so.0", "libpthread-2.12.so", T2013);
    fs.file_with(
        "/lib64/libz.so.1.2.3",
        88_600,
        vec![(0, tiny_elf("libz.so.1"))],
        0o755,
        T2013,
    );
    fs.symlink("/lib64/libz.so.1", "libz.so.1.2.3", T2013);
    fs.dir("/lib64/security", T2013);
    // The hand-built glibc the link points at, with glibc's banner.
    fs.file_with(
        "/opt/glibc-2.14/lib/libc.so.6",
        2_020_000,
        vec![
            (0, tiny_elf("libc.so.6")),
            (
                1_700_000,
                b"GNU C Library (GNU libc) stable release version 2.14, by Roland McGrath et al.\n"
                    .to_vec(),
            ),
        ],
        0o755,
        T2024,
    );
    // The database the operator wants out.
    fs.dir("/var/lib/mysql", T2013);
    let mut ibdata = Vec::new();
    for i in 0..65_536u32 {
        ibdata.extend_from_slice(&i.to_le_bytes());
    }
    // 10 MiB with 256 KiB of data at the start and at 8 MiB: the rest is a hole.
    fs.file_with(
        "/var/lib/mysql/ibdata1",
        10 << 20,
        vec![(0, ibdata.clone()), (8 << 20, ibdata)],
        0o660,
        T2013 + 86_400,
    );
    fs.file(
        "/var/lib/mysql/ib_logfile0",
        &vec![0x5a; 48 * 1024],
        T2013 + 86_400,
    );
    fs.file("/var/lib/mysql/mysql/user.frm", b"user table format", T2013);
    fs.file(
        "/var/lib/mysql/mysql/user.MYD",
        b"root localhost *HASH*",
        T2013,
    );
    fs.dir("/var/lib/mysql/test", T2013);
    fs.symlink(
        "/var/lib/mysql/mysql.sock",
        "/var/run/mysqld/mysqld.sock",
        T2013,
    );
    fs.dir("/var/log", T2013);
    fs.file(
        "/var/log/messages",
        b"Feb 22 10:15:00 localhost kernel: Linux version 2.6.32\n",
        T2013,
    );
    fs.device("/dev/null", T2013);
    // A hostile visitor's names.
    for n in HOSTILE_NAMES {
        let mut p = b"/tmp/".to_vec();
        p.extend_from_slice(n);
        fs.file(&p, b"x", T2013);
    }
    fs
}

fn tiny_elf_exec() -> Vec<u8> {
    let mut b = tiny_elf("");
    b[16] = 2; // ET_EXEC
    b
}

/// A small `/home` filesystem.
pub fn centos_home() -> MemFs {
    let mut fs = MemFs::new("ext4");
    fs.dir("/ta", T2013);
    fs.file("/ta/notes.txt", b"remember the backup\n", T2013);
    fs
}

/// A filesystem whose `/big` holds `n` files.
pub fn big_dir(n: usize) -> MemFs {
    let mut fs = MemFs::new("ext4");
    fs.dir("/big", T2013);
    for i in 0..n {
        fs.file(format!("/big/file-{i:06}.dat"), b"", T2013 + i as i64);
    }
    fs
}

/// Serves in-memory filesystems by volume name.
pub struct MemOpener {
    /// Volume name → filesystem.
    pub map: HashMap<String, Arc<dyn FsView>>,
}

impl MemOpener {
    /// The story's volumes: `vg_ta/lv_root` and `vg_ta/lv_home`.
    pub fn story() -> MemOpener {
        let mut map = HashMap::new();
        map.insert(
            "vg_ta/lv_root".to_string(),
            Arc::new(centos_root()) as Arc<dyn FsView>,
        );
        map.insert(
            "vg_ta/lv_home".to_string(),
            Arc::new(centos_home()) as Arc<dyn FsView>,
        );
        MemOpener { map }
    }
}

impl VolumeOpener for MemOpener {
    fn engine(&self) -> String {
        "userspace".into()
    }
    fn open(&self, layout: &Layout, id: VolumeId) -> Result<Arc<dyn FsView>, String> {
        let name = &layout.volume(id).name;
        match self.map.get(name) {
            Some(fs) => Ok(Arc::clone(fs)),
            None => Err(format!(
                "unsupported: {name}: reading ext4 filesystems in userspace"
            )),
        }
    }
}

/// Make the story's disk with sfdisk: 10 GiB sparse, p1 (Linux, boot) at
/// sector 63, p2 (Linux LVM) at sector 7727328, as `kpartx` showed them.
pub fn make_story_image(dir: &Path) -> PathBuf {
    let path = dir.join("vm-108-disk-1.raw");
    let f = std::fs::File::create(&path).expect("create image");
    f.set_len(10 << 30).expect("size image");
    drop(f);
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk (Debian package fdisk)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"label: dos\nstart=63, size=7727265, type=83, bootable\nstart=7727328, type=8e\n",
        )
        .expect("write sfdisk script");
    assert!(child.wait().expect("sfdisk").success(), "sfdisk failed");
    path
}

fn content(kind: ContentKind, label: Option<&str>, version: Option<&str>) -> Content {
    Content {
        label: label.map(str::to_string),
        version: version.map(str::to_string),
        ..Content::new(kind)
    }
}

/// The story's layout: the real partition table of [`make_story_image`],
/// with what the probes, the LVM reader and guest inspection will find
/// (ext4 on p1, a PV on p2 holding VG `vg_ta` with lv_root, lv_home, lv_swap)
/// filled in by hand.
pub fn story_layout(image: &Path) -> Layout {
    let img = vmrescue::image::open(image).expect("open image");
    let mut layout = vmrescue::layers::scan(vec![img]);
    assert_eq!(layout.volumes.len(), 2, "p1 and p2 from sfdisk");
    layout.volumes[0].content = content(ContentKind::Ext4, None, None);
    layout.volumes[0].guest.mountpoint = Some("/boot".into());
    layout.volumes[1].content = content(ContentKind::LvmPv, None, Some("LVM2 001"));
    let p2_start = 7_727_328u64 * 512;
    let p2_size = layout.volumes[1].size();
    let extent = 4u64 << 20;
    let pe_start = 1u64 << 20;
    let pe_count = (p2_size - pe_start) / extent;
    layout.pvs.push(PvOnDisk {
        volume: "p2".into(),
        area: Area {
            disk: DiskId(0),
            offset: p2_start,
        },
        size: p2_size,
        scan: PvScan {
            label_sector: 1,
            pv_uuid: "TEST00-PV00-0000-0000-0000-0000-000000".into(),
            device_size: p2_size,
            metadata: None,
            metadata_origin: None,
            problems: Vec::new(),
            vg_name: Some("vg_ta".into()),
            vg_uuid: Some("TEST00-VG00-0000-0000-0000-0000-000000".into()),
            seqno: Some(4),
            data_offset: Some(pe_start),
            metadata_areas: Vec::new(),
            in_use: Some(true),
        },
    });
    /// Name, extents, content, mountpoint, guest OS.
    type Lv<'a> = (&'a str, u64, ContentKind, Option<&'a str>, Option<&'a str>);
    let lvs: [Lv<'_>; 3] = [
        (
            "lv_root",
            1200,
            ContentKind::Ext4,
            Some("/"),
            Some("CentOS release 6.4 (Final)"),
        ),
        ("lv_home", 250, ContentKind::Ext4, Some("/home"), None),
        ("lv_swap", 160, ContentKind::Swap, Some("swap"), None),
    ];
    let mut vg = VolumeGroup {
        name: "vg_ta".into(),
        uuid: "TEST00-VG00-0000-0000-0000-0000-000000".into(),
        seqno: 4,
        extent_size: extent,
        extent_count: pe_count,
        free_count: pe_count - 1610,
        pvs: vec![VgPv {
            key: "pv0".into(),
            uuid: "TEST00-PV00-0000-0000-0000-0000-000000".into(),
            device_hint: Some("/dev/sda2".into()),
            found: Some(0),
            pe_start,
            pe_count,
        }],
        lvs: Vec::new(),
        problems: Vec::new(),
    };
    let mut next_extent = 0u64;
    for (name, extents, kind, mount, os) in lvs {
        let size = extents * extent;
        let mapping = Mapping::linear(
            Area {
                disk: DiskId(0),
                offset: p2_start + pe_start + next_extent * extent,
            },
            size,
        );
        vg.lvs.push(LogicalVolume {
            name: name.into(),
            uuid: format!("TEST00-{name}"),
            visible: true,
            status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
            size,
            segments: vec![LvSegment {
                start_extent: 0,
                extent_count: extents,
                segtype: "striped".into(),
                stripe_size: None,
                areas: vec![SegmentArea::Pv {
                    key: "pv0".into(),
                    start_extent: next_extent,
                }],
            }],
            mapping: mapping.clone(),
            missing_pvs: Vec::new(),
            creation_time: None,
            creation_host: None,
            snapshot_of: None,
            notes: Vec::new(),
            problems: Vec::new(),
        });
        let id = VolumeId(layout.volumes.len());
        layout.volumes.push(Volume {
            id,
            name: format!("vg_ta/{name}"),
            kind: VolumeKind::LogicalVolume {
                vg: "vg_ta".into(),
                lv: name.into(),
                hidden: false,
                segtypes: vec!["linear".into()],
            },
            mapping,
            content: content(kind, None, None),
            guest: GuestRole {
                mountpoint: mount.map(str::to_string),
                os: os.map(str::to_string),
                hostname: None,
                pve: None,
                windows: None,
            },
            problems: Vec::new(),
            notes: Vec::new(),
        });
        next_extent += extents;
    }
    layout.groups.push(vg);
    layout
}

/// The story's app, its jobs run in place.
pub struct Story {
    /// Holds the image.
    pub dir: tempfile::TempDir,
    /// The app.
    pub app: App,
    /// Runs its jobs.
    pub jobs: Jobs,
    /// The filesystems.
    pub opener: Arc<MemOpener>,
}

/// The app on the story's image at `w` × `h`, guest root open.
pub fn story(w: u16, h: u16) -> Story {
    story_with(MemOpener::story(), w, h)
}

/// The app on the story's image at `w` × `h` with the volumes `opener`
/// serves, guest root open.
pub fn story_with(opener: MemOpener, w: u16, h: u16) -> Story {
    let dir = tempfile::tempdir().unwrap();
    let image = make_story_image(dir.path());
    let layout = Arc::new(story_layout(&image));
    let opener = Arc::new(opener);
    let jobs = Jobs {
        layout: Arc::clone(&layout),
        opener: opener.clone(),
        copier: Arc::new(JobCopier),
    };
    let mut app = App::new(layout, AppConfig::default());
    app.resize(w, h);
    app.start();
    jobs.run_inline(&mut app);
    Story {
        dir,
        app,
        jobs,
        opener,
    }
}

impl Story {
    /// Apply an action and run the jobs it starts.
    pub fn act(&mut self, a: Action) {
        self.app.update(&a);
        self.jobs.run_inline(&mut self.app);
    }

    /// The directory shown.
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&self.app.pane().expect("browsing").path).to_string()
    }

    /// The selected entry's name.
    pub fn current(&self) -> String {
        self.app
            .pane()
            .and_then(|p| p.current())
            .map(|e| e.shown.clone())
            .unwrap_or_default()
    }

    /// Move down (wrapping to the top once) until `name` is selected.
    pub fn select(&mut self, name: &str) {
        self.act(Action::Home);
        for _ in 0..500 {
            if self.current() == name {
                return;
            }
            self.act(Action::MoveDown);
        }
        panic!("{name} not found in {}", self.path());
    }

    /// Open a path from the root, one component at a time.
    pub fn cd(&mut self, path: &str) {
        while self.path() != "/" {
            self.act(Action::Back);
        }
        for c in path.split('/').filter(|c| !c.is_empty()) {
            self.select(c);
            self.act(Action::Open);
        }
        assert_eq!(self.path(), path);
    }

    /// Select a node of the layer tree by name.
    pub fn select_layer(&mut self, name: &str) {
        self.app.focus = Focus::Layers;
        self.act(Action::Home);
        for _ in 0..50 {
            if self.app.layers.current().map(|n| n.name.as_str()) == Some(name) {
                return;
            }
            self.act(Action::MoveDown);
        }
        panic!("layer {name} not found");
    }
}

/// The app over a real image's `layout` at 140 × 40 with `config`, its
/// volumes opened by the userspace engine, its jobs run in place.
pub fn userspace_app(layout: Layout, config: AppConfig) -> (App, Jobs) {
    let layout = Arc::new(layout);
    let jobs = Jobs {
        layout: Arc::clone(&layout),
        opener: Arc::new(vmrescue::engine::userspace::Userspace::default()),
        copier: Arc::new(JobCopier),
    };
    let mut app = App::new(layout, config);
    app.resize(140, 40);
    app.start();
    jobs.run_inline(&mut app);
    (app, jobs)
}

/// The screen as drawn at the app's size, as text.
pub fn screen(app: &App) -> String {
    let (w, h) = app.size;
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| vmrescue::tui::views::draw(f, app)).unwrap();
    term.backend().to_string()
}
