//! The guest's mount table, resolved against the layout, and the merged
//! tree it makes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::tree::{GuestFs, Layer};
use crate::error::{Error, Result};
use crate::fs::mem::MemFs;
use crate::fs::path::{self, components};
use crate::fs::rooted::Rooted;
use crate::fs::{FileType, FsView, NodeId, SubvolSpec};
use crate::layers::fstab::{self, FstabEntry, MountOptions, SpecMatch};
use crate::layers::{Layout, VolumeId};
use crate::text::escape;

/// A volume's filesystem as the namespace opened it, or why it could not.
type Opened = std::result::Result<Arc<dyn FsView>, String>;

/// What became of one fstab entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountState {
    /// The volume's filesystem is mounted there.
    Mounted,
    /// A filesystem with no device (`tmpfs`, `proc`, `sysfs`, `devpts`…):
    /// shown as an empty folder.
    Virtual,
    /// A bind mount: the guest directory `from` is shown there too.
    Bind {
        /// The source directory, a guest path.
        from: Vec<u8>,
    },
    /// The device was not found on these disks (or only the running guest
    /// can tell which it is), with the reason; `nofail` is noted. Shown as
    /// an empty folder.
    Missing(String),
    /// The volume was found but cannot be read here (a filesystem without
    /// a userspace reader and no kernel engine), with the reason. Shown as
    /// an empty folder.
    Unreadable(String),
    /// `noauto`: not mounted at boot, so not here either.
    NoAuto,
    /// A swap area: nothing to mount.
    Swap,
    /// The kernel would refuse this mount (the mountpoint is a file, not an
    /// absolute path, or `/` again), with the reason. Not mounted.
    Failed(String),
}

impl MountState {
    /// One word for listings and `--json`: `mounted`, `virtual`, `bind`,
    /// `missing`, `unreadable`, `noauto`, `swap`, `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            MountState::Mounted => "mounted",
            MountState::Virtual => "virtual",
            MountState::Bind { .. } => "bind",
            MountState::Missing(_) => "missing",
            MountState::Unreadable(_) => "unreadable",
            MountState::NoAuto => "noauto",
            MountState::Swap => "swap",
            MountState::Failed(_) => "failed",
        }
    }

    /// Why the entry is not (fully) there, or where a bind comes from.
    pub fn reason(&self) -> Option<String> {
        match self {
            MountState::Missing(r) | MountState::Unreadable(r) | MountState::Failed(r) => {
                Some(r.clone())
            }
            MountState::Bind { from } => Some(format!("from {}", escape(from))),
            MountState::NoAuto => Some("not mounted at boot".into()),
            _ => None,
        }
    }

    /// Whether files of the guest are missing at this mountpoint: the
    /// device is missing or unreadable (a copy must say it skipped them).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, MountState::Missing(_) | MountState::Unreadable(_))
    }
}

/// One entry of the guest's mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where the guest mounts it (`/`, `/home`).
    pub mountpoint: Vec<u8>,
    /// The source as the fstab gives it (`UUID=…`, `/dev/mapper/vg-lv`, `tmpfs`).
    pub spec: String,
    /// The filesystem type as the fstab gives it.
    pub fstype: String,
    /// The options field verbatim.
    pub options: String,
    /// The volume the spec names, when found.
    pub volume: Option<VolumeId>,
    /// The volume was found by disk order and partition number (`/dev/sda1`):
    /// the guest's kernel may have ordered its disks otherwise.
    pub guessed: bool,
    /// What became of it.
    pub state: MountState,
    /// `st_dev` of its nodes in the merged tree (`1` for the root, then one
    /// per entry); a bind shows its source's nodes, with their device.
    pub dev: u64,
}

/// The guest as it boots: its mount table and the merged tree.
pub struct Namespace {
    fs: Arc<GuestFs>,
    mounts: Vec<Mount>,
    /// A Windows guest: drive letters at the top (`/C:`, `/D:`).
    windows: bool,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("mounts", &self.mounts)
            .finish_non_exhaustive()
    }
}

/// An empty folder, for what is mounted but has no files here; with the
/// owner and times of the directory it covers, when there is one (no
/// invented date in a listing).
fn empty_dir(fstype: &str, perm: u32, covered: Option<&crate::fs::Metadata>) -> Arc<dyn FsView> {
    let mut fs = MemFs::new();
    fs.status.fs_type = fstype.to_string();
    if let Some(n) = fs.node_mut(fs.root_id()) {
        n.meta.perm = perm;
        if let Some(c) = covered {
            n.meta.uid = c.uid;
            n.meta.gid = c.gid;
            n.meta.atime = c.atime;
            n.meta.mtime = c.mtime;
            n.meta.ctime = c.ctime;
        }
    }
    Arc::new(fs)
}

impl Namespace {
    /// Read the fstab of the guest root `root` and mount its entries in
    /// order, as `mount -a` does (a later mount over an earlier one's
    /// subtree wins), opening volumes with `open`.
    pub fn build(
        layout: &Layout,
        root: VolumeId,
        open: &dyn Fn(VolumeId) -> Result<Arc<dyn FsView>>,
    ) -> Namespace {
        let name_of = |v: VolumeId| {
            layout
                .volumes
                .get(v.0)
                .map_or_else(|| format!("volume {}", v.0), |v| v.name.clone())
        };
        // Each volume is opened once, however many entries mount it (one
        // btrfs volume at `/` and `/home` with different subvolumes).
        let opened: RefCell<HashMap<VolumeId, Opened>> = RefCell::default();
        let open_once = |v: VolumeId| -> Result<Arc<dyn FsView>> {
            let cached = opened.borrow().get(&v).cloned();
            let r = match cached {
                Some(r) => r,
                None => {
                    let r = open(v).map_err(|e| e.to_string());
                    opened.borrow_mut().insert(v, r.clone());
                    r
                }
            };
            r.map_err(Error::Invalid)
        };
        let open: &dyn Fn(VolumeId) -> Result<Arc<dyn FsView>> = &open_once;
        if let Some(w) = layout
            .volumes
            .get(root.0)
            .and_then(|v| v.guest.windows.as_ref())
        {
            return windows(layout, root, w, open, &name_of);
        }
        let (root_fs, root_state) = match open(root) {
            Ok(fs) => (fs, MountState::Mounted),
            Err(e) => (
                empty_dir("unreadable", 0o755, None),
                MountState::Unreadable(e.to_string()),
            ),
        };
        let mut root_notes = Vec::new();
        let (root_fs, entries, root_subvol) = root_subvolume(root_fs, &mut root_notes);
        let root_entry = entries.iter().find(|e| e.mountpoint == b"/");
        let root_mount = Mount {
            mountpoint: b"/".to_vec(),
            spec: root_entry.map_or_else(|| name_of(root), |e| e.spec.clone()),
            fstype: root_entry.map_or_else(
                || {
                    layout
                        .volumes
                        .get(root.0)
                        .map_or_else(String::new, |v| v.content.kind.name().to_string())
                },
                |e| e.fstype.clone(),
            ),
            options: root_entry.map_or_else(|| "defaults".to_string(), |e| e.options.clone()),
            volume: Some(root),
            guessed: false,
            state: root_state,
            dev: 1,
        };
        let root_inner = root_fs.root();
        let mut tree = GuestFs::new(Layer {
            fs: root_fs,
            root: root_inner,
            mount: 0,
            dev: 1,
            volume: Some(root),
            name: name_of(root),
            subvolume: root_subvol,
        });
        tree.notes.extend(root_notes);
        let mut mounts = vec![root_mount];
        let mut seen_root = false;
        for entry in &entries {
            if entry.mountpoint == b"/" && !seen_root {
                seen_root = true;
                continue;
            }
            let index = mounts.len();
            let mount = mount_entry(layout, root, entry, index, &mut tree, open, &name_of);
            if let Some(why) = mount
                .state
                .reason()
                .filter(|_| !matches!(mount.state, MountState::Bind { .. } | MountState::NoAuto))
            {
                tree.notes.push(format!(
                    "/etc/fstab line {}: {} ({}) not mounted: {why}",
                    entry.line,
                    escape(&entry.mountpoint),
                    entry.spec
                ));
            }
            mounts.push(mount);
        }
        Namespace {
            fs: Arc::new(tree),
            mounts,
            windows: false,
        }
    }

    /// Whether this is a Windows guest, its drive letters at the top.
    pub fn is_windows(&self) -> bool {
        self.windows
    }

    /// Guest path `p` as this namespace spells it: on a Windows guest, a
    /// drive path (`C:\Users\Administrator`, `c:/users`, `D:`) becomes
    /// `/C:/Users/Administrator`, its names looked up without case as
    /// Windows does; anything else is unchanged.
    pub fn guest_path(&self, p: &[u8]) -> Vec<u8> {
        match drive_path(p).filter(|_| self.windows) {
            Some(tree) => stored_case(&*self.fs, &tree),
            None => p.to_vec(),
        }
    }

    /// What the mount table says about entries that are not mounted as
    /// the fstab asks (one sentence each); also among the merged tree's
    /// status notes.
    pub fn notes(&self) -> &[String] {
        &self.fs.notes
    }

    /// The merged tree.
    pub fn fs(&self) -> Arc<dyn FsView> {
        Arc::clone(&self.fs) as Arc<dyn FsView>
    }

    /// Every fstab entry, resolved or not, in fstab order, the root first.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The mount a node of [`Namespace::fs`] lies on. A bind shows the
    /// nodes of its source, which lie on the source's mount.
    pub fn mount_of(&self, node: NodeId) -> Option<&Mount> {
        self.mounts.get(self.fs.layer_of(node)?.mount)
    }

    /// Whether `node` is shown at a mountpoint other than `/` (the root of
    /// a mounted volume, an empty folder for a virtual or missing one, or
    /// a bind's source).
    pub fn is_mountpoint(&self, node: NodeId) -> bool {
        node != self.fs.root() && self.fs.roots.contains_key(&node)
    }

    /// The volume a guest path lies on and its path inside that volume
    /// (the last component is not followed if it is a symlink): what relink
    /// writes and what `--volume` would show. An error for a path on a
    /// virtual, missing or unreadable mount.
    pub fn locate(&self, guest_path: &[u8]) -> Result<(VolumeId, Vec<u8>)> {
        match self.locate_in_subvolume(guest_path)? {
            (v, None, inner) => Ok((v, inner)),
            (_, Some(Outside { why, .. }), _) => Err(Error::Unsupported(why)),
        }
    }

    /// [`Namespace::locate`], and for a path in a btrfs subvolume that is
    /// not below the volume's default subvolume (whose paths cannot name
    /// it), that subvolume and the path inside it instead.
    pub fn locate_in_subvolume(
        &self,
        guest_path: &[u8],
    ) -> Result<(VolumeId, Option<Outside>, Vec<u8>)> {
        let fs = &*self.fs;
        let resolved = path::resolve(fs, guest_path, false)?;
        let mut node = fs.root();
        let mut layer = 0usize;
        let mut inner: Vec<u8> = b"/".to_vec();
        for name in components(&resolved.path) {
            node = fs.lookup(node, name)?.ok_or_else(|| {
                Error::NotFound(format!("{} in the guest", escape(&resolved.path)))
            })?;
            if let Some((l, p)) = fs.roots.get(&node) {
                layer = *l;
                inner = p.clone();
            } else {
                inner = path::join(&inner, name);
            }
        }
        let l = fs
            .layers
            .get(layer)
            .ok_or_else(|| Error::NotFound(format!("{} in the guest", escape(&resolved.path))))?;
        match l.volume {
            // Paths inside a volume start at its default subvolume: a
            // mount of another one is found below it, or not at all.
            Some(v) if l.subvolume.is_some() => {
                let (id, prefix) = subvolume_prefix(&*l.fs, l.root);
                let why = |why: String| {
                    format!(
                        "{} lies on btrfs {} of {}: {why}",
                        escape(&resolved.path),
                        l.subvolume.as_deref().unwrap_or_default(),
                        l.name
                    )
                };
                match (id, prefix) {
                    (_, Ok(prefix)) => {
                        let rest = components(&inner).fold(prefix, |acc, c| path::join(&acc, c));
                        Ok((v, None, rest))
                    }
                    (Some(id), Err(w)) => Ok((v, Some(Outside { id, why: why(w) }), inner)),
                    (None, Err(w)) => Err(Error::Unsupported(why(w))),
                }
            }
            Some(v) => Ok((v, None, inner)),
            None => {
                let m = self.mounts.get(l.mount);
                Err(Error::Invalid(format!(
                    "{} lies on {}, which is no volume of the image{}",
                    escape(&resolved.path),
                    m.map_or_else(
                        || "a folder vmrescue made".into(),
                        |m| escape(&m.mountpoint)
                    ),
                    m.and_then(|m| m.state.reason())
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )))
            }
        }
    }

    /// The root volume.
    pub fn root_volume(&self) -> Option<VolumeId> {
        self.mounts.first().and_then(|m| m.volume)
    }

    /// The entries whose files are not here (missing or unreadable device)
    /// that guest path `path` lies on (its mountpoint is `path` or above
    /// it), and with `below` also those inside `path`: what a listing or a
    /// copy of `path` lacks. `path` is taken as written (`..` and symlinks
    /// are not resolved): give a canonical path.
    pub fn unavailable(&self, path: &[u8], below: bool) -> Vec<&Mount> {
        let at: Vec<&[u8]> = components(path).collect();
        self.mounts
            .iter()
            .filter(|m| m.state.is_unavailable())
            .filter(|m| {
                let mp: Vec<&[u8]> = components(&m.mountpoint).collect();
                at.starts_with(&mp) || (below && mp.starts_with(&at))
            })
            .collect()
    }
}

/// A Windows guest: a made-up root holding its drive letters (`/C:`,
/// `/D:`), each the volume `MountedDevices` names; the system volume `root`
/// is `C:` when no letter names it. A letter whose partition is not on
/// these disks, or that names no partition (a CD-ROM), is an empty folder
/// with the reason.
fn windows(
    layout: &Layout,
    root: VolumeId,
    w: &crate::layers::windows::WindowsGuest,
    open: &dyn Fn(VolumeId) -> Result<Arc<dyn FsView>>,
    name_of: &dyn Fn(VolumeId) -> String,
) -> Namespace {
    let top = empty_dir("drive letters", 0o755, None);
    let top_root = top.root();
    let mut tree = GuestFs::new(Layer {
        fs: top,
        root: top_root,
        mount: 0,
        dev: 1,
        volume: None,
        name: "drive letters".into(),
        subvolume: None,
    });
    let mut mounts = vec![Mount {
        mountpoint: b"/".to_vec(),
        spec: "MountedDevices".into(),
        fstype: "drive letters".into(),
        options: String::new(),
        volume: None,
        guessed: false,
        state: MountState::Virtual,
        dev: 1,
    }];
    let mut drives: Vec<(char, String, Option<VolumeId>, bool)> = w
        .drives
        .iter()
        .map(|d| (d.letter, d.target.clone(), d.volume, d.missing))
        .collect();
    if w.letter_of(root).is_none() && !drives.iter().any(|d| d.0 == 'C') {
        drives.push(('C', "the system volume".into(), Some(root), false));
        drives.sort_by_key(|d| d.0);
    }
    // Each letter's volume, opened; the system drive's root gives the
    // folders of letters that show no volume their owner and times.
    let opened: Vec<Option<Result<Arc<dyn FsView>>>> =
        drives.iter().map(|d| d.2.map(open)).collect();
    let stamp = drives
        .iter()
        .zip(&opened)
        .find(|(d, _)| d.2 == Some(root))
        .and_then(|(_, o)| o.as_ref()?.as_ref().ok())
        .and_then(|fs| fs.metadata(fs.root()).ok());
    for ((letter, target, volume, missing), opened) in drives.into_iter().zip(opened) {
        let index = mounts.len();
        let dev = index as u64 + 1;
        let mountpoint = format!("/{letter}:").into_bytes();
        let fstype = volume.map_or_else(String::new, |v| {
            layout
                .volumes
                .get(v.0)
                .map_or_else(String::new, |v| v.content.kind.name().to_string())
        });
        let mut m = Mount {
            mountpoint: mountpoint.clone(),
            spec: target.clone(),
            fstype,
            options: String::new(),
            volume,
            guessed: false,
            state: MountState::Mounted,
            dev,
        };
        let shown = match volume.zip(opened) {
            Some((v, Ok(fs))) => layer(fs, index, dev, Some(v), name_of(v)),
            Some((_, Err(e))) => {
                m.state = MountState::Unreadable(e.to_string());
                layer(
                    empty_dir("unreadable", 0o755, stamp.as_ref()),
                    index,
                    dev,
                    None,
                    String::new(),
                )
            }
            None => {
                m.state = MountState::Missing(if missing {
                    "this partition is not on these disks".into()
                } else {
                    "a device of the running guest (a CD-ROM, removable media), not a disk partition"
                        .into()
                });
                layer(
                    empty_dir("missing", 0o755, stamp.as_ref()),
                    index,
                    dev,
                    None,
                    String::new(),
                )
            }
        };
        if (missing || matches!(m.state, MountState::Unreadable(_)))
            && let Some(why) = m.state.reason()
        {
            tree.notes
                .push(format!("drive {letter}: ({target}) not mounted: {why}"));
        }
        let node = tree.push_layer(shown);
        let info = (tree.layers.len() - 1, b"/".to_vec());
        // A letter of the made-up root: nothing there to mount over, and
        // nothing to note (as a Linux mountpoint missing from its root is).
        let top = tree.root();
        tree.inject(top, &mountpoint[1..], node);
        tree.roots.insert(node, info);
        mounts.push(m);
    }
    Namespace {
        fs: Arc::new(tree),
        mounts,
        windows: true,
    }
}

/// A Windows drive path (`C:\Users`, `c:/Users/`, `D:`) as the path of
/// the merged tree (`/C:/Users`): the letter in upper case, `\` and `/`
/// both separators, the names as given ([`Namespace::guest_path`] then
/// finds them without case).
/// `None` for anything that does not start with a letter and a colon.
pub fn drive_path(p: &[u8]) -> Option<Vec<u8>> {
    let (&letter, rest) = p.split_first()?;
    let rest = rest.strip_prefix(b":")?;
    if !letter.is_ascii_alphabetic() || rest.first().is_some_and(|&c| c != b'\\' && c != b'/') {
        return None;
    }
    let mut out = vec![b'/', letter.to_ascii_uppercase(), b':'];
    for name in rest
        .split(|&c| c == b'\\' || c == b'/')
        .filter(|n| !n.is_empty())
    {
        out.push(b'/');
        out.extend_from_slice(name);
    }
    Some(out)
}

/// Path `p` of `fs` with each name as the directory stores it, matched
/// without case as Windows does (`/C:/users` → `/C:/Users`): a name stored
/// as given wins. From the first name not found, or that is not a plain
/// directory name (`.`, `..`, a file, a link), the rest is kept as given.
fn stored_case(fs: &dyn FsView, p: &[u8]) -> Vec<u8> {
    let mut node = Some(fs.root());
    let mut out = Vec::with_capacity(p.len());
    for name in components(p) {
        let found = node
            .filter(|_| name != b"." && name != b"..")
            .and_then(|dir| match fs.lookup(dir, name) {
                Ok(Some(n)) => Some((name.to_vec(), n)),
                _ => fs.read_dir(dir).ok()?.into_iter().find_map(|e| {
                    crate::text::same_without_case(&e.name, name).then_some((e.name, e.node))
                }),
            });
        out.push(b'/');
        node = match found {
            Some((stored, n)) => {
                out.extend_from_slice(&stored);
                fs.metadata(n)
                    .is_ok_and(|m| m.file_type == FileType::Directory)
                    .then_some(n)
            }
            None => {
                out.extend_from_slice(name);
                None
            }
        };
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// A guest path as the operator typed it (a command's PATH, `find`'s start
/// and `-newer`, `relink`'s link, `--open`, the browser's go-to prompt) in
/// the spelling of the tree it is looked up in, `fs`: the one place where
/// Windows' spelling is read.
/// - In a Windows guest's merged tree (`ns`), `C:\Users` is `/C:/Users`
///   ([`Namespace::guest_path`]).
/// - In one volume opened alone whose drive letter is `drive` (`C:\`, as
///   the guest's `MountedDevices` gives it), a path on that drive is a path
///   from the volume's root: `c:\users` is `/Users`, names matched without
///   case.
/// - Anything else is unchanged.
pub fn operator_path(
    fs: &dyn FsView,
    ns: Option<&Namespace>,
    drive: Option<&str>,
    p: &[u8],
) -> Vec<u8> {
    if let Some(ns) = ns {
        return ns.guest_path(p);
    }
    let on = drive.and_then(|d| drive_path(d.as_bytes()));
    let tree = drive_path(p);
    match (on, tree) {
        (Some(on), Some(tree)) => match tree.strip_prefix(on.as_slice()) {
            Some([]) => b"/".to_vec(),
            Some(rest) if rest.starts_with(b"/") => stored_case(fs, rest),
            _ => p.to_vec(),
        },
        _ => p.to_vec(),
    }
}

/// A path of a Windows guest's merged tree (`/C:/Users/x`) as Windows
/// writes it (`C:\\Users\\x`), each name escaped; `None` for a path
/// not on a drive.
pub fn drive_display(p: &[u8]) -> Option<String> {
    let mut names = p.strip_prefix(b"/")?.split(|&c| c == b'/');
    let drive = names
        .next()
        .filter(|d| d.len() == 2 && d.get(1) == Some(&b':'))?;
    let rest: Vec<String> = names.filter(|n| !n.is_empty()).map(escape).collect();
    Some(format!("{}\\{}", escape(drive), rest.join("\\")))
}

/// A path of a Windows guest as Windows writes it (`C:\Users\x`): a
/// path of the merged tree (`/C:/Users/x`), or, given `drive`, a path of
/// the volume the guest calls `drive` (`C:\`) opened alone (`/Users/x`);
/// `None` for a path on no drive.
pub fn windows_display(drive: Option<&str>, p: &[u8]) -> Option<String> {
    match drive.and_then(|d| drive_path(d.as_bytes())) {
        Some(on) => drive_display(&[on.as_slice(), p].concat()),
        None => drive_display(p),
    }
}

/// Mount fstab entry `entry` (index `index` of the table) on `tree`.
fn mount_entry(
    layout: &Layout,
    root: VolumeId,
    entry: &FstabEntry,
    index: usize,
    tree: &mut GuestFs,
    open: &dyn Fn(VolumeId) -> Result<Arc<dyn FsView>>,
    name_of: &dyn Fn(VolumeId) -> String,
) -> Mount {
    let opts = entry.options();
    let dev = index as u64 + 1;
    let mut m = Mount {
        mountpoint: entry.mountpoint.clone(),
        spec: entry.spec.clone(),
        fstype: entry.fstype.clone(),
        options: entry.options.clone(),
        volume: None,
        guessed: false,
        state: MountState::Mounted,
        dev,
    };
    let device = fstab::is_device_spec(&entry.spec);
    if device && !opts.bind {
        // Among the root's own disks: a guest on a nested disk names its own volumes.
        match layout.resolve_spec_from(&entry.spec, root) {
            SpecMatch::Found { volume, guessed } => {
                m.volume = Some(volume);
                m.guessed = guessed;
            }
            SpecMatch::NotFound(why) | SpecMatch::Unresolvable(why) => {
                let nofail = if opts.nofail {
                    " (nofail: the guest boots without it)"
                } else {
                    ""
                };
                m.state = MountState::Missing(format!("{why}{nofail}"));
            }
        }
    }
    if entry.fstype == "swap" || entry.mountpoint == b"swap" {
        m.state = MountState::Swap;
        return m;
    }
    if opts.noauto {
        m.state = MountState::NoAuto;
        return m;
    }
    if entry.mountpoint.first() != Some(&b'/')
        || components(&entry.mountpoint).any(|c| c == b"." || c == b"..")
    {
        m.state = MountState::Failed("the mountpoint is not a plain absolute path".into());
        return m;
    }
    if components(&entry.mountpoint).next().is_none() {
        m.state = MountState::Failed("/ is mounted by an earlier line".into());
        return m;
    }
    let empty_perm = opts.mode.unwrap_or(if entry.fstype == "tmpfs" {
        0o1777
    } else {
        0o755
    });
    let covered = path::resolve(&*tree, &entry.mountpoint, true)
        .and_then(|r| tree.metadata(r.node))
        .ok()
        .filter(|m| m.file_type == crate::fs::FileType::Directory);
    let empty = |perm: u32| {
        layer(
            empty_dir(&entry.fstype, perm, covered.as_ref()),
            index,
            dev,
            None,
            String::new(),
        )
    };
    // The layer shown at the mountpoint, and the path inside its volume of its root.
    let (shown, inner): (Layer, Vec<u8>) = if opts.bind {
        let from = entry.spec.as_bytes().to_vec();
        let source = path::resolve(&*tree, &from, true).and_then(|r| {
            let (l, root) = tree.decode(r.node)?;
            let inner = locate_inner(tree, &r.path)?;
            let src = tree
                .layers
                .get(l)
                .ok_or_else(|| Error::NotFound(escape(&from)))?;
            // Its own layer over the same filesystem: the source's files
            // without the mounts below it (a bind, not an rbind), on the
            // source's device.
            Ok((
                Layer {
                    fs: Arc::clone(&src.fs),
                    root,
                    mount: index,
                    dev: src.dev,
                    volume: src.volume,
                    name: src.name.clone(),
                    subvolume: src.subvolume.clone(),
                },
                inner,
            ))
        });
        match source {
            Ok((l, inner)) => {
                m.state = MountState::Bind { from };
                m.dev = l.dev;
                (l, inner)
            }
            Err(e) => {
                m.state = MountState::Missing(format!("the bind source {}: {e}", escape(&from)));
                (empty(0o755), b"/".to_vec())
            }
        }
    } else if m.state.is_unavailable() {
        (empty(0o755), b"/".to_vec())
    } else if let Some(v) = m.volume {
        match open(v).map_err(|e| e.to_string()).and_then(|fs| {
            let specs = subvol_specs(&opts)?;
            subvolume(fs, &specs)
        }) {
            Ok((fs, sub)) => {
                let fs = with_mount_modes(fs, &opts);
                let mut l = layer(fs, index, dev, Some(v), name_of(v));
                l.subvolume = sub;
                (l, b"/".to_vec())
            }
            Err(e) => {
                m.state = MountState::Unreadable(e);
                (empty(0o755), b"/".to_vec())
            }
        }
    } else {
        m.state = if fstab::is_network_fstype(&entry.fstype) {
            MountState::Missing(format!(
                "{} is a network filesystem ({}), not on these disks",
                entry.spec, entry.fstype
            ))
        } else {
            MountState::Virtual
        };
        (empty(empty_perm), b"/".to_vec())
    };
    let node = tree.push_layer(shown);
    let info = (tree.layers.len() - 1, inner);
    if let Err(why) = attach(tree, &entry.mountpoint, node, index, dev) {
        m.state = MountState::Failed(why);
        return m;
    }
    tree.roots.insert(node, info);
    m
}

/// The subvolumes an entry's `subvol=` and `subvolid=` name (none, one or
/// both); the reason the kernel would refuse the options.
fn subvol_specs(opts: &MountOptions) -> std::result::Result<Vec<SubvolSpec>, String> {
    let mut specs = Vec::new();
    if let Some(p) = &opts.subvol {
        specs.push(SubvolSpec::Path(p.as_bytes().to_vec()));
    }
    if let Some(id) = &opts.subvolid {
        let n = id
            .parse::<u64>()
            .map_err(|_| format!("subvolid={id} is not a number"))?;
        specs.push(SubvolSpec::Id(n));
    }
    Ok(specs)
}

/// The option that names `spec`, as the fstab writes it.
fn spec_option(spec: &SubvolSpec) -> String {
    match spec {
        SubvolSpec::Path(p) => format!("subvol={}", escape(p)),
        SubvolSpec::Id(id) => format!("subvolid={id}"),
    }
}

/// `fs` shown from the subvolume `specs` name (all of them must name the
/// same one), with the options naming it when that is not `fs`'s own root;
/// `fs` itself when they name none. Otherwise the reason it cannot be
/// shown: rather nothing than the wrong tree.
fn subvolume(
    fs: Arc<dyn FsView>,
    specs: &[SubvolSpec],
) -> std::result::Result<(Arc<dyn FsView>, Option<String>), String> {
    let mut root: Option<NodeId> = None;
    for spec in specs {
        let node = match fs.subvolume_root(spec) {
            Ok(Some(n)) => n,
            Ok(None) => {
                return Err(format!(
                    "{} was not applied: this view of the volume has no subvolumes \
                     (no reader that knows them), and its default tree may be another one",
                    spec_option(spec)
                ));
            }
            Err(e) => return Err(format!("{}: {e}", spec_option(spec))),
        };
        if root.is_some_and(|r| r != node) {
            return Err("subvol= and subvolid= name different subvolumes".into());
        }
        root = Some(node);
    }
    match root {
        Some(r) if r != fs.root() => Ok((
            Arc::new(Rooted::new(fs, r)),
            Some(specs.iter().map(spec_option).collect::<Vec<_>>().join(",")),
        )),
        _ => Ok((fs, None)),
    }
}

/// Where the subvolume whose root is `root` is seen from the volume's
/// default subvolume (what a volume's paths start at: `/root` for
/// subvolume `root` when the default is the top level); the reason when it
/// is not below the default one.
/// Also the subvolume's id, when it is known.
fn subvolume_prefix(
    fs: &dyn FsView,
    root: NodeId,
) -> (Option<u64>, std::result::Result<Vec<u8>, String>) {
    let Some(subs) = fs.subvolumes() else {
        return (
            None,
            Err("this view of the volume does not list its subvolumes".into()),
        );
    };
    let Some(this) = subs
        .iter()
        .find(|s| matches!(fs.subvolume_root(&SubvolSpec::Id(s.id)), Ok(Some(n)) if n == root))
    else {
        return (None, Err("the mount's root is no subvolume's root".into()));
    };
    (
        Some(this.id),
        crate::fs::rooted::path_from_default(&subs, this.id),
    )
}

/// A btrfs subvolume outside its volume's default subvolume, which the
/// volume's own paths cannot name ([`Namespace::locate_in_subvolume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// Its id.
    pub id: u64,
    /// Why the volume's paths cannot name it (what [`Namespace::locate`] says).
    pub why: String,
}

/// Most top-level entries of a volume tried for the root's subvolume.
const MAX_ROOT_CANDIDATES: usize = 256;

/// The guest root's tree and fstab entries. Where the volume's default
/// tree has no `/etc/fstab` but a subvolume at its top holds one whose `/`
/// line names that subvolume (`subvol=@`: the Ubuntu and Fedora layouts),
/// that subvolume is the root. Where the fstab's `/` line names another
/// subvolume than the tree it was found in, that subvolume is shown.
fn root_subvolume(
    fs: Arc<dyn FsView>,
    notes: &mut Vec<String>,
) -> (Arc<dyn FsView>, Vec<FstabEntry>, Option<String>) {
    let specs_of = |entries: &[FstabEntry]| {
        entries
            .iter()
            .find(|e| e.mountpoint == b"/")
            .and_then(|e| subvol_specs(&e.options()).ok())
            .unwrap_or_default()
    };
    let entries = fstab::read(&*fs);
    if !entries.is_empty() {
        let specs = specs_of(&entries);
        if specs.is_empty() {
            return (fs, entries, None);
        }
        return match subvolume(Arc::clone(&fs), &specs) {
            Ok((view, Some(sub))) => {
                let again = fstab::read(&*view);
                notes.push(format!(
                    "/: the fstab's {} is shown",
                    specs.iter().map(spec_option).collect::<Vec<_>>().join(",")
                ));
                let entries = if again.is_empty() { entries } else { again };
                (view, entries, Some(sub))
            }
            Ok((_, None)) => (fs, entries, None),
            Err(why) => {
                notes.push(format!("/: {why}; shown is the tree that holds /etc/fstab"));
                (fs, entries, None)
            }
        };
    }
    match root_in_subvolume(&fs) {
        Some((view, why, sub)) => {
            notes.push(why);
            let found = fstab::read(&*view);
            (view, found, Some(sub))
        }
        None => (fs, entries, None),
    }
}

/// The subvolumes named by the `rootflags=` (`subvol=`, `subvolid=`) of
/// the kernel command line in `cmdline`, if any.
fn rootflags_specs(cmdline: &str) -> Vec<SubvolSpec> {
    let mut out = Vec::new();
    for (k, v) in crate::doctor::boot::kernel_params(cmdline) {
        if k != "rootflags" {
            continue;
        }
        // The last rootflags= wins, as the kernel reads it.
        out.clear();
        for opt in v.split(',') {
            if let Some(p) = opt.strip_prefix("subvol=") {
                out.push(SubvolSpec::Path(p.as_bytes().to_vec()));
            } else if let Some(id) = opt.strip_prefix("subvolid=")
                && let Ok(n) = id.parse::<u64>()
            {
                out.push(SubvolSpec::Id(n));
            }
        }
    }
    out
}

/// Where the guest's root is when the volume's default tree holds no
/// `/etc/fstab`: a subvolume at the top of `fs` whose boot loader's default
/// entry boots it (`rootflags=subvol=@`, as the kernel mounts `/`), else
/// one whose fstab's `/` line names it (`subvol=@`). The view, the note
/// that says why, and the options naming it.
pub(crate) fn root_in_subvolume(fs: &Arc<dyn FsView>) -> Option<(Arc<dyn FsView>, String, String)> {
    let top = fs.read_dir(fs.root()).ok()?;
    let mut by_fstab = None;
    for e in top.into_iter().take(MAX_ROOT_CANDIDATES) {
        let node = match fs.subvolume_root(&SubvolSpec::Path(e.name.clone())) {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => continue,
        };
        let view: Arc<dyn FsView> = Arc::new(Rooted::new(Arc::clone(fs), node));
        let names_it = |specs: &[SubvolSpec]| {
            !specs.is_empty()
                && specs
                    .iter()
                    .all(|s| matches!(fs.subvolume_root(s), Ok(Some(n)) if n == node))
        };
        let ctx = crate::doctor::Context::new(&*view, None, None);
        if let Some(cmdline) = ctx.kernel_cmdline() {
            let specs = rootflags_specs(cmdline);
            if names_it(&specs) {
                let opts = specs.iter().map(spec_option).collect::<Vec<_>>().join(",");
                let why = format!(
                    "/: the boot loader's default entry mounts the root with rootflags={opts}: \
                     the root is subvolume {}",
                    escape(&e.name)
                );
                return Some((view, why, opts));
            }
        }
        if by_fstab.is_none() {
            let found = fstab::read(&*view);
            let specs = found
                .iter()
                .find(|e| e.mountpoint == b"/")
                .and_then(|e| subvol_specs(&e.options()).ok())
                .unwrap_or_default();
            if names_it(&specs) {
                let why = format!(
                    "/: no /etc/fstab in the volume's default subvolume; the root is subvolume {}, whose fstab names it for /",
                    escape(&e.name)
                );
                let sub = format!("subvol={}", escape(&e.name));
                by_fstab = Some((view, why, sub));
            }
        }
    }
    by_fstab
}

/// `fs` with the owner and modes a FAT mount's options give (`umask=`,
/// `uid=`…); other filesystems keep their own.
fn with_mount_modes(fs: Arc<dyn FsView>, opts: &MountOptions) -> Arc<dyn FsView> {
    if fs.status().fs_type != "vfat" {
        return fs;
    }
    match crate::fs::rooted::Modes::from_options(opts.other.iter().map(String::as_str)) {
        Some(m) => Arc::new(Rooted::with_modes(fs, m)),
        None => fs,
    }
}

fn layer(
    fs: Arc<dyn FsView>,
    mount: usize,
    dev: u64,
    volume: Option<VolumeId>,
    name: String,
) -> Layer {
    let root = fs.root();
    Layer {
        fs,
        root,
        mount,
        dev,
        volume,
        name,
        subvolume: None,
    }
}

/// The path inside its volume of the node at canonical guest path `p`.
fn locate_inner(tree: &GuestFs, p: &[u8]) -> Result<Vec<u8>> {
    let mut node = tree.root();
    let mut inner = b"/".to_vec();
    for name in components(p) {
        node = tree
            .lookup(node, name)?
            .ok_or_else(|| Error::NotFound(escape(p)))?;
        match tree.roots.get(&node) {
            Some((_, at)) => inner = at.clone(),
            None => inner = path::join(&inner, name),
        }
    }
    Ok(inner)
}

/// Show `node` at `mountpoint`: over the directory there, or, when there
/// is none, as a new entry (and folders made up for missing parents; the
/// kernel would refuse the mount, so a note says so).
fn attach(
    tree: &mut GuestFs,
    mountpoint: &[u8],
    node: NodeId,
    mount: usize,
    dev: u64,
) -> std::result::Result<(), String> {
    let is_dir_like = |tree: &GuestFs, n: NodeId| {
        tree.metadata(n)
            .map(|m| m.file_type == FileType::Directory)
            .unwrap_or(false)
    };
    match path::resolve(&*tree, mountpoint, true) {
        Ok(r) => {
            let wanted_dir = is_dir_like(tree, node);
            if is_dir_like(tree, r.node) != wanted_dir {
                return Err(format!(
                    "{} is not a directory in the guest",
                    escape(mountpoint)
                ));
            }
            tree.cover(r.node, node);
            return Ok(());
        }
        Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    // Walk down, making up the folders that are not there.
    let names: Vec<&[u8]> = components(mountpoint).collect();
    let mut dir = tree.root();
    let mut made_up = false;
    let mut at: Vec<u8> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        at = path::join(&at, name);
        let last = i + 1 == names.len();
        match path::resolve(&*tree, &at, true) {
            Ok(r) if !last => {
                if !is_dir_like(tree, r.node) {
                    return Err(format!("{} is not a directory in the guest", escape(&at)));
                }
                dir = r.node;
            }
            Ok(_) => return Err(format!("{} appeared while mounting", escape(&at))),
            Err(Error::NotFound(_)) => {
                let child = if last {
                    node
                } else {
                    let made = tree.push_layer(layer(
                        empty_dir("none", 0o755, None),
                        mount,
                        dev,
                        None,
                        String::new(),
                    ));
                    tree.roots
                        .insert(made, (tree.layers.len() - 1, b"/".to_vec()));
                    made
                };
                tree.inject(dir, name, child);
                made_up = true;
                dir = child;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if made_up {
        tree.notes.push(format!(
            "{} does not exist in the guest: shown as a folder, but the guest's kernel would not mount it there",
            escape(mountpoint)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod rootflags_tests {
    use super::*;

    #[test]
    fn rootflags_name_subvolumes_as_the_kernel_reads_them() {
        let specs = rootflags_specs("root=UUID=x ro rootflags=subvol=@,compress=zstd quiet");
        assert_eq!(specs, vec![SubvolSpec::Path(b"@".to_vec())]);
        // The last rootflags= wins; subvolid= too.
        let specs = rootflags_specs("rootflags=subvol=@old rootflags=subvolid=257");
        assert_eq!(specs, vec![SubvolSpec::Id(257)]);
        assert!(rootflags_specs("root=/dev/sda1 rootflags=noatime").is_empty());
        assert!(rootflags_specs("rootflags=subvolid=abc").is_empty());
        assert!(rootflags_specs("").is_empty());
    }
}
