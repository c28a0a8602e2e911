//! [`GuestFs`]: the filesystems of the guest's mounts composed into one
//! [`FsView`], as the guest's kernel shows them after `mount -a`.
//!
//! Each mounted filesystem is a *layer*. A node of the merged tree is a
//! node of one layer: its [`NodeId`] carries the layer index in the top
//! byte and the layer's own id in the other 56 bits; ids that do not fit
//! (a layer index above 254, an inner id of 2^56 or more) get a number of
//! their own from an intern table, under the top byte `0xFF`. The root
//! layer's ids are unchanged.
//!
//! A mountpoint is a node that is *covered*: looking it up (or listing
//! the directory that holds it) gives the root of the layer mounted there
//! instead, and so on down a stack of mounts. A mountpoint that does not
//! exist in its parent directory is *injected*: shown as an extra entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileExtent, FileType, FsStatus, FsView, Metadata, NodeId, Space, Xattr};
use crate::io::HostExtent;
use crate::layers::VolumeId;

/// Bits of a merged [`NodeId`] that hold the layer's own id.
const SHIFT: u32 = 56;
/// The top byte of an interned id.
const INTERNED: u64 = 0xFF;
/// Most mounts stacked on one node that are followed.
const MAX_STACK: usize = 64;

/// One mounted filesystem of the merged tree.
pub(crate) struct Layer {
    /// The filesystem.
    pub(crate) fs: Arc<dyn FsView>,
    /// The node of `fs` shown at the mountpoint (its root, or a bind's source).
    pub(crate) root: NodeId,
    /// Index in the namespace's mount table of the mount it belongs to.
    pub(crate) mount: usize,
    /// `st_dev` of its nodes.
    pub(crate) dev: u64,
    /// The volume it reads, if any (none for virtual and synthetic folders).
    pub(crate) volume: Option<VolumeId>,
    /// The volume's name, to prefix its notes and problems with.
    pub(crate) name: String,
    /// The btrfs subvolume shown instead of the volume's default tree, as
    /// the options name it (`subvol=@home`).
    pub(crate) subvolume: Option<String>,
}

#[derive(Default)]
struct Intern {
    ids: HashMap<(usize, NodeId), u64>,
    keys: Vec<(usize, NodeId)>,
}

/// The guest's filesystems as one tree; built by `super::Namespace::build`.
pub struct GuestFs {
    pub(crate) layers: Vec<Layer>,
    /// Merged node → the merged node mounted over it.
    cover: HashMap<NodeId, NodeId>,
    /// Directory → entries shown in it that its filesystem does not hold.
    extra: HashMap<NodeId, Vec<(Vec<u8>, NodeId)>>,
    /// Nodes shown at a mountpoint → (layer, path inside that layer's volume).
    pub(crate) roots: HashMap<NodeId, (usize, Vec<u8>)>,
    /// Facts about the mount table (entries not mounted and why).
    pub(crate) notes: Vec<String>,
    intern: Mutex<Intern>,
}

impl GuestFs {
    /// A tree of one layer, the root filesystem.
    pub(crate) fn new(root: Layer) -> GuestFs {
        GuestFs {
            layers: vec![root],
            cover: HashMap::new(),
            extra: HashMap::new(),
            roots: HashMap::new(),
            notes: Vec::new(),
            intern: Mutex::default(),
        }
    }

    fn interned(&self) -> MutexGuard<'_, Intern> {
        self.intern.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a layer; its root's merged id.
    pub(crate) fn push_layer(&mut self, layer: Layer) -> NodeId {
        let root = layer.root;
        self.layers.push(layer);
        self.encode(self.layers.len() - 1, root)
    }

    /// The merged id of node `inner` of layer `layer`.
    pub(crate) fn encode(&self, layer: usize, inner: NodeId) -> NodeId {
        if (layer as u64) < INTERNED && inner.0 >> SHIFT == 0 {
            return NodeId(((layer as u64) << SHIFT) | inner.0);
        }
        let mut t = self.interned();
        if let Some(&n) = t.ids.get(&(layer, inner)) {
            return NodeId((INTERNED << SHIFT) | n);
        }
        let n = t.keys.len() as u64;
        t.keys.push((layer, inner));
        t.ids.insert((layer, inner), n);
        NodeId((INTERNED << SHIFT) | n)
    }

    /// The layer and the layer's own id of merged node `node`.
    pub(crate) fn decode(&self, node: NodeId) -> Result<(usize, NodeId)> {
        let top = node.0 >> SHIFT;
        let low = node.0 & ((1u64 << SHIFT) - 1);
        let key = if top == INTERNED {
            usize::try_from(low)
                .ok()
                .and_then(|i| self.interned().keys.get(i).copied())
        } else {
            Some((top as usize, NodeId(low)))
        };
        key.filter(|(l, _)| *l < self.layers.len())
            .ok_or_else(|| Error::NotFound(format!("node {} of the guest tree", node.0)))
    }

    fn layer(&self, node: NodeId) -> Result<(&Layer, NodeId)> {
        let (l, inner) = self.decode(node)?;
        let layer = self
            .layers
            .get(l)
            .ok_or_else(|| Error::NotFound(format!("node {} of the guest tree", node.0)))?;
        Ok((layer, inner))
    }

    /// The node shown where `node` is: the root of what is mounted over it, if anything.
    fn enter(&self, mut node: NodeId) -> NodeId {
        for _ in 0..MAX_STACK {
            match self.cover.get(&node) {
                Some(&over) if over != node => node = over,
                _ => break,
            }
        }
        node
    }

    /// Mount `over` on `at` (a node of the tree as it is now).
    pub(crate) fn cover(&mut self, at: NodeId, over: NodeId) {
        if at != over {
            self.cover.insert(at, over);
        }
    }

    /// Show `node` as entry `name` of directory `dir`.
    pub(crate) fn inject(&mut self, dir: NodeId, name: &[u8], node: NodeId) {
        self.extra
            .entry(dir)
            .or_default()
            .push((name.to_vec(), node));
    }

    /// The layer a merged node lies on.
    pub(crate) fn layer_of(&self, node: NodeId) -> Option<&Layer> {
        self.layer(node).ok().map(|(l, _)| l)
    }
}

impl FsView for GuestFs {
    fn status(&self) -> FsStatus {
        let root = self
            .layers
            .first()
            .map(|l| l.fs.status())
            .unwrap_or_default();
        let mut out = FsStatus {
            fs_type: "guest".into(),
            label: root.label,
            uuid: root.uuid,
            notes: Vec::new(),
            problems: Vec::new(),
        };
        let mut seen: Vec<VolumeId> = Vec::new();
        for l in &self.layers {
            let Some(v) = l.volume else { continue };
            // A volume mounted twice (or bound) tells its news once.
            if seen.contains(&v) {
                continue;
            }
            seen.push(v);
            let s = l.fs.status();
            out.notes
                .extend(s.notes.iter().map(|n| format!("{}: {n}", l.name)));
            out.problems
                .extend(s.problems.into_iter().map(|p| p.within(l.name.clone())));
        }
        out.notes.extend(self.notes.iter().cloned());
        out
    }

    fn problem_count(&self) -> usize {
        // As `status` counts them: each volume once.
        let mut seen: Vec<VolumeId> = Vec::new();
        let mut n = 0;
        for l in &self.layers {
            let Some(v) = l.volume else { continue };
            if !seen.contains(&v) {
                seen.push(v);
                n += l.fs.problem_count();
            }
        }
        n
    }

    fn root(&self) -> NodeId {
        let inner = self.layers.first().map_or(NodeId(0), |l| l.root);
        self.enter(self.encode(0, inner))
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata> {
        let (l, inner) = self.layer(node)?;
        let mut m = l.fs.metadata(inner)?;
        m.node = node;
        Ok(m)
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        let (l, inner) = self.decode(dir)?;
        let (layer, _) = self.layer(dir)?;
        let mut out: Vec<DirEntry> = layer
            .fs
            .read_dir(inner)?
            .into_iter()
            .map(|e| {
                let merged = self.encode(l, e.node);
                let shown = self.enter(merged);
                let file_type = if shown == merged {
                    e.file_type
                } else {
                    self.metadata(shown).ok().map(|m| m.file_type)
                };
                DirEntry {
                    name: e.name,
                    node: shown,
                    file_type,
                }
            })
            .collect();
        if let Some(extra) = self.extra.get(&dir) {
            for (name, node) in extra {
                if !out.iter().any(|e| &e.name == name) {
                    let node = self.enter(*node);
                    out.push(DirEntry {
                        name: name.clone(),
                        node,
                        file_type: Some(FileType::Directory),
                    });
                }
            }
        }
        Ok(out)
    }

    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>> {
        let (l, inner) = self.decode(dir)?;
        let (layer, _) = self.layer(dir)?;
        if let Some(n) = layer.fs.lookup(inner, name)? {
            return Ok(Some(self.enter(self.encode(l, n))));
        }
        Ok(self
            .extra
            .get(&dir)
            .and_then(|e| e.iter().find(|(n, _)| n == name))
            .map(|(_, node)| self.enter(*node)))
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
        let (l, inner) = self.layer(node)?;
        l.fs.read_link(inner)
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (l, inner) = self.layer(node)?;
        l.fs.read_at(inner, offset, buf)
    }

    fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
        let (l, inner) = self.layer(node)?;
        l.fs.extents(inner)
    }

    fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
        let (l, inner) = self.layer(node)?;
        l.fs.xattrs(inner)
    }

    fn host_extent(&self, node: NodeId, offset: u64, len: u64) -> Option<HostExtent> {
        let (l, inner) = self.layer(node).ok()?;
        l.fs.host_extent(inner, offset, len)
    }

    fn prefetch(&self, nodes: &[NodeId], data: bool) {
        // Each run of nodes on one filesystem goes to it (a directory's
        // entries are on one, but for the mountpoints in it).
        let mut run: Vec<NodeId> = Vec::new();
        let mut on: Option<&Arc<dyn FsView>> = None;
        for &n in nodes {
            let Ok((l, inner)) = self.layer(n) else {
                continue;
            };
            if on.is_some_and(|f| !Arc::ptr_eq(f, &l.fs)) {
                if let Some(f) = on {
                    f.prefetch(&run, data);
                }
                run.clear();
            }
            on = Some(&l.fs);
            run.push(inner);
        }
        if let Some(f) = on {
            f.prefetch(&run, data);
        }
    }

    fn dev(&self, node: NodeId) -> u64 {
        self.layer(node).map_or(0, |(l, _)| l.dev)
    }

    fn space(&self, node: NodeId) -> Option<Space> {
        // The filesystem of the mount the node lies on (a bind's source's).
        let (l, inner) = self.layer(node).ok()?;
        l.fs.space(inner)
    }
}
