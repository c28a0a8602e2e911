//! [`Rooted`]: a filesystem shown as a mount shows it: from another of its
//! directories, as a btrfs mount with `subvol=` shows a subvolume
//! ([`FsView::root`] is that directory), and for filesystems without Unix
//! owners and modes (FAT) with the owner and modes its mount options give
//! ([`Modes`]); everything else is the filesystem's own. The filesystem is
//! shared, not opened again, so one volume mounted twice with different
//! subvolumes is read (and its caches kept) once.

use std::sync::Arc;

use super::{DirEntry, FileExtent, FsStatus, FsView, Metadata, NodeId, Space, SubvolSpec, Xattr};
use crate::error::Result;
use crate::io::HostExtent;

/// `fs` with `root` as its root.
pub struct Rooted {
    fs: Arc<dyn FsView>,
    root: NodeId,
    modes: Option<Modes>,
}

/// Owner and modes that a FAT mount's options give (`uid=`, `gid=`,
/// `umask=`, `fmask=`, `dmask=`, as Linux's `vfat` reads them: a mask
/// clears bits of 0777; a read-only file keeps no write bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `fmask=` (or `umask=`), octal.
    pub fmask: Option<u32>,
    /// `dmask=` (or `umask=`), octal.
    pub dmask: Option<u32>,
}

impl Modes {
    /// The modes options among `options` (each `name=value`) set, if any;
    /// a value that does not parse is left out, as the kernel would refuse
    /// the mount rather than guess.
    pub fn from_options<'a>(options: impl IntoIterator<Item = &'a str>) -> Option<Modes> {
        let mut m = Modes::default();
        for o in options {
            let Some((k, v)) = o.split_once('=') else {
                continue;
            };
            let octal = || u32::from_str_radix(v, 8).ok().map(|x| x & 0o777);
            match k {
                "uid" => m.uid = v.parse().ok(),
                "gid" => m.gid = v.parse().ok(),
                "umask" => {
                    m.fmask = octal();
                    m.dmask = octal();
                }
                "fmask" => m.fmask = octal(),
                "dmask" => m.dmask = octal(),
                _ => {}
            }
        }
        (m != Modes::default()).then_some(m)
    }

    /// `meta` with these owner and modes.
    fn apply(&self, mut meta: Metadata) -> Metadata {
        let dir = meta.file_type == super::FileType::Directory;
        let mask = if dir { self.dmask } else { self.fmask };
        if let Some(mask) = mask {
            let read_only = !dir && meta.perm & 0o200 == 0;
            meta.perm = 0o777 & !mask;
            if read_only {
                meta.perm &= !0o222;
            }
        }
        if let Some(uid) = self.uid {
            meta.uid = uid;
        }
        if let Some(gid) = self.gid {
            meta.gid = gid;
        }
        meta
    }
}

impl std::fmt::Debug for Rooted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooted")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Rooted {
    /// Show `fs` from its node `root` (a directory).
    pub fn new(fs: Arc<dyn FsView>, root: NodeId) -> Rooted {
        Rooted {
            fs,
            root,
            modes: None,
        }
    }

    /// Show `fs` with the owner and modes `modes` give.
    pub fn with_modes(fs: Arc<dyn FsView>, modes: Modes) -> Rooted {
        let root = fs.root();
        Rooted {
            fs,
            root,
            modes: Some(modes),
        }
    }

    /// The whole filesystem.
    pub fn inner(&self) -> &Arc<dyn FsView> {
        &self.fs
    }
}

impl FsView for Rooted {
    fn status(&self) -> FsStatus {
        self.fs.status()
    }
    fn root(&self) -> NodeId {
        self.root
    }
    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let meta = self.fs.metadata(node)?;
        Ok(match &self.modes {
            Some(m) => m.apply(meta),
            None => meta,
        })
    }
    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        self.fs.read_dir(dir)
    }
    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        self.fs.lookup(dir, name)
    }
    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        self.fs.read_link(node)
    }
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.fs.read_at(node, offset, buf)
    }
    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        self.fs.extents(node)
    }
    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        self.fs.xattrs(node)
    }
    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        self.fs.host_extent(node, offset, len)
    }
    fn prefetch(&self, nodes: &[NodeId], data: bool) {
        self.fs.prefetch(nodes, data)
    }
    fn dev(&self, node: NodeId) -> u64 {
        self.fs.dev(node)
    }
    fn problem_count(&self) -> usize {
        self.fs.problem_count()
    }
    fn space(&self, node: NodeId) -> Option<Space> {
        self.fs.space(node)
    }
    fn subvolume_root(&self, spec: &SubvolSpec) -> Result<Option<NodeId>> {
        self.fs.subvolume_root(spec)
    }
    fn subvolumes(&self) -> Option<Vec<super::btrfs::SubvolInfo>> {
        self.fs.subvolumes()
    }
}

/// `fs` shown from its subvolume `id` (what `--volume p2@home` names):
/// `fs` itself when that is its root already; an error when `fs` has no
/// subvolumes (a reader that does not know them) or not that one.
pub fn subvolume_view(fs: Arc<dyn FsView>, id: u64) -> Result<Arc<dyn FsView>> {
    match fs.subvolume_root(&SubvolSpec::Id(id))? {
        Some(n) if n == fs.root() => Ok(fs),
        Some(n) => Ok(Arc::new(Rooted::new(fs, n))),
        None => Err(crate::error::Error::Unsupported(format!(
            "subvolume {id}: this view of the volume has no subvolumes (the kernel engine \
             shows its default subvolume only); use --engine userspace"
        ))),
    }
}

/// Where subvolume `id` is seen from the volume's default subvolume, where
/// a volume's own paths start (`/root` for subvolume `root` when the
/// default is the top level; `/` for the default itself); the reason when
/// it is not below the default one.
pub fn path_from_default(
    subs: &[super::btrfs::SubvolInfo],
    id: u64,
) -> std::result::Result<Vec<u8>, String> {
    let this = subs
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| format!("subvolume {id} is not among the volume's subvolumes"))?;
    let default = subs
        .iter()
        .find(|s| s.default)
        .ok_or("the volume's default subvolume is not among its subvolumes")?;
    let parts =
        |p: &[u8]| -> Vec<Vec<u8>> { super::path::components(p).map(<[u8]>::to_vec).collect() };
    let (mine, base) = (parts(&this.path), parts(&default.path));
    match mine.strip_prefix(base.as_slice()) {
        Some(rest) => Ok(rest
            .iter()
            .fold(b"/".to_vec(), |acc, c| super::path::join(&acc, c))),
        None => Err(format!(
            "subvolume {} is not inside the volume's default subvolume {} (id {}), where its paths start",
            crate::text::escape(&this.path),
            if default.path.is_empty() {
                "<top level>".to_string()
            } else {
                crate::text::escape(&default.path)
            },
            default.id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;
    use crate::fs::path::resolve;

    fn sub(id: u64, path: &[u8], default: bool) -> crate::fs::btrfs::SubvolInfo {
        crate::fs::btrfs::SubvolInfo {
            id,
            parent_id: 5,
            path: path.to_vec(),
            uuid: [0; 16],
            read_only: false,
            snapshot_of: None,
            default,
            generation: 1,
            otime: crate::fs::Timestamp::default(),
        }
    }

    #[test]
    fn subvolume_paths_start_at_the_default_subvolume() {
        let top_default = [
            sub(5, b"", true),
            sub(256, b"root", false),
            sub(258, b"root/var/lib/machines", false),
        ];
        assert_eq!(path_from_default(&top_default, 256).unwrap(), b"/root");
        assert_eq!(
            path_from_default(&top_default, 258).unwrap(),
            b"/root/var/lib/machines"
        );
        assert_eq!(path_from_default(&top_default, 5).unwrap(), b"/");
        let at_default = [
            sub(5, b"", false),
            sub(256, b"@", true),
            sub(257, b"@home", false),
            sub(259, b"@/nested", false),
        ];
        assert_eq!(path_from_default(&at_default, 259).unwrap(), b"/nested");
        assert_eq!(path_from_default(&at_default, 256).unwrap(), b"/");
        // Not below the default: `@home` is no prefix match of `@`.
        let e = path_from_default(&at_default, 257).unwrap_err();
        assert!(
            e.contains("not inside the volume's default subvolume @ (id 256)"),
            "{e}"
        );
        assert!(path_from_default(&at_default, 999).is_err());
        assert!(path_from_default(&[sub(256, b"@", false)], 256).is_err());
    }

    #[test]
    fn shows_the_other_root_and_shares_the_rest() {
        let mut m = MemFs::new();
        let sub = m.add_dir(m.root_id(), b"@home", 0o755);
        m.add_file(sub, b"notes.txt", 0o644, b"hi");
        let fs: Arc<dyn FsView> = Arc::new(m);
        let r = Rooted::new(Arc::clone(&fs), sub);
        assert_eq!(r.root(), sub);
        let n = resolve(&r, b"/notes.txt", true).unwrap().node;
        let mut buf = [0u8; 8];
        assert_eq!(r.read_at(n, 0, &mut buf).unwrap(), 2);
        // `..` stays at the new root.
        assert_eq!(resolve(&r, b"/../notes.txt", true).unwrap().node, n);
        assert!(resolve(&r, b"/@home", true).is_err());
    }

    #[test]
    fn fat_mount_options_give_modes_as_vfat_does() {
        let m = Modes::from_options(["umask=0077", "shortname=winnt"]).unwrap();
        assert_eq!((m.fmask, m.dmask), (Some(0o077), Some(0o077)));
        let m = Modes::from_options(["uid=1000", "gid=1000", "fmask=0133", "dmask=0022"]).unwrap();
        let meta = |ft: super::super::FileType, perm: u32| Metadata {
            node: NodeId(1),
            ino: 1,
            file_type: ft,
            perm,
            uid: 0,
            gid: 0,
            size: 0,
            nlink: 1,
            atime: Default::default(),
            mtime: Default::default(),
            ctime: Default::default(),
            crtime: None,
            rdev: (0, 0),
            allocated: None,
        };
        let f = m.apply(meta(super::super::FileType::Regular, 0o755));
        assert_eq!((f.perm, f.uid, f.gid), (0o644, 1000, 1000));
        // A read-only file keeps no write bits.
        let ro = m.apply(meta(super::super::FileType::Regular, 0o555));
        assert_eq!(ro.perm, 0o444);
        let d = m.apply(meta(super::super::FileType::Directory, 0o755));
        assert_eq!(d.perm, 0o755);
        assert_eq!(Modes::from_options(["defaults", "noatime"]), None);
    }
}
