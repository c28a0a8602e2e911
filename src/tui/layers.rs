//! The layer pane's data: the tree of disks, partitions, volume groups and
//! logical volumes ([`crate::layers::tree::build`]), which nodes are open and
//! which is selected. Nodes are identified by their index path from the roots.

use std::collections::HashSet;

use crate::layers::tree::Node;
use crate::layers::{Layout, VolumeId};
use crate::text::{escape_mountpoint, escape_str};
use crate::tui::format::{safe, size};
use crate::tui::strings as s;

/// A node's identifier: indices from the roots down.
pub type NodePath = Vec<usize>;

/// The layer tree and its view state.
#[derive(Debug, Clone)]
pub struct LayerPane {
    /// The tree: a node per guest first, then the disks.
    pub roots: Vec<Node>,
    /// The root volume of each guest node, in the order of the first roots.
    pub guests: Vec<VolumeId>,
    /// Whether the first guest is the one the commands choose without
    /// `--volume` (the browser opens it at start); not so on a host disk
    /// holding several guests and no root of its own.
    pub first_is_chosen: bool,
    /// Open nodes.
    pub opened: HashSet<NodePath>,
    /// The selected node (empty when the tree is empty).
    pub selected: NodePath,
}

impl LayerPane {
    /// The tree of `layout`, every node open, the first selected; above
    /// the disks, the guest (when inspection found its root).
    pub fn new(layout: &Layout) -> LayerPane {
        let mut roots = crate::layers::tree::build(layout);
        let (guests, first_is_chosen) = guest_roots(layout);
        for (i, &root) in guests.iter().enumerate() {
            roots.insert(i, guest_node(layout, root));
        }
        let mut pane = LayerPane {
            roots,
            guests,
            first_is_chosen,
            opened: HashSet::new(),
            selected: Vec::new(),
        };
        let all: Vec<NodePath> = pane.all_paths();
        for p in all {
            if pane.node(&p).is_some_and(|n| !n.children.is_empty()) {
                pane.opened.insert(p);
            }
        }
        if !pane.roots.is_empty() {
            pane.selected = vec![0];
        }
        pane
    }

    /// The node at `path`.
    pub fn node(&self, path: &[usize]) -> Option<&Node> {
        let (first, rest) = path.split_first()?;
        let mut n = self.roots.get(*first)?;
        for &i in rest {
            n = n.children.get(i)?;
        }
        Some(n)
    }

    /// The guest root of the guest node at `path`, if it is one.
    pub fn guest_at(&self, path: &[usize]) -> Option<VolumeId> {
        match path {
            [i] => self.guests.get(*i).copied(),
            _ => None,
        }
    }

    /// The tree path of the node that stands for guest `root`.
    pub fn path_of_guest(&self, root: VolumeId) -> Option<NodePath> {
        self.guests.iter().position(|&g| g == root).map(|i| vec![i])
    }

    /// The selected node.
    pub fn current(&self) -> Option<&Node> {
        self.node(&self.selected)
    }

    fn all_paths(&self) -> Vec<NodePath> {
        fn walk(nodes: &[Node], prefix: &mut NodePath, out: &mut Vec<NodePath>) {
            for (i, n) in nodes.iter().enumerate() {
                prefix.push(i);
                out.push(prefix.clone());
                walk(&n.children, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.roots, &mut Vec::new(), &mut out);
        out
    }

    /// The rows shown, in order (children of open nodes only).
    pub fn visible(&self) -> Vec<NodePath> {
        fn walk(
            nodes: &[Node],
            opened: &HashSet<NodePath>,
            prefix: &mut NodePath,
            out: &mut Vec<NodePath>,
        ) {
            for (i, n) in nodes.iter().enumerate() {
                prefix.push(i);
                out.push(prefix.clone());
                if opened.contains(prefix) {
                    walk(&n.children, opened, prefix, out);
                }
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.roots, &self.opened, &mut Vec::new(), &mut out);
        out
    }

    /// Select the visible row `row` moved by `delta` rows (clamped).
    pub fn move_by(&mut self, delta: isize) {
        let rows = self.visible();
        if rows.is_empty() {
            return;
        }
        let cur = rows.iter().position(|p| *p == self.selected).unwrap_or(0);
        let last = rows.len() - 1;
        let next = if delta < 0 {
            cur.saturating_sub(delta.unsigned_abs())
        } else {
            cur.saturating_add(delta as usize).min(last)
        };
        self.selected = rows[next].clone();
    }

    /// Select the first or last visible row.
    pub fn move_to(&mut self, last: bool) {
        let rows = self.visible();
        let pick = if last { rows.last() } else { rows.first() };
        if let Some(p) = pick {
            self.selected = p.clone();
        }
    }

    /// Open the selected node; false when it has no children or is open already.
    pub fn expand(&mut self) -> bool {
        let has_children = self.current().is_some_and(|n| !n.children.is_empty());
        has_children && self.opened.insert(self.selected.clone())
    }

    /// Close the selected node, or else select its parent.
    pub fn collapse_or_parent(&mut self) {
        if !self.opened.remove(&self.selected) && self.selected.len() > 1 {
            self.selected.pop();
        }
    }

    /// The tree path of the node that stands for volume `name`, if shown.
    pub fn path_of_volume(&self, name: &str) -> Option<NodePath> {
        self.all_paths()
            .into_iter()
            .find(|p| self.node(p).and_then(|n| n.volume.as_deref()) == Some(name))
    }

    /// Select the node of volume `name` and open its ancestors.
    pub fn reveal_volume(&mut self, name: &str) -> bool {
        let Some(path) = self.path_of_volume(name) else {
            return false;
        };
        for i in 1..path.len() {
            self.opened.insert(path[..i].to_vec());
        }
        self.selected = path;
        true
    }
}

/// The node kind of the guest's node.
pub const GUEST_KIND: &str = "guest";

/// The guests shown as nodes above the disks: the one the commands choose
/// first, then the others (the guests on a host's nested disks), in layout
/// order; and whether the first is the commands' choice. Without a choice
/// (a host disk with no root of its own and several guests), every guest.
fn guest_roots(layout: &Layout) -> (Vec<VolumeId>, bool) {
    let main = crate::engine::select_volume(layout, None)
        .ok()
        .filter(|&m| layout.volume(m).guest.os.is_some());
    let mut out: Vec<VolumeId> = main.into_iter().collect();
    out.extend(
        layout
            .guest_roots()
            .into_iter()
            .filter(|&r| Some(r) != main && layout.volume(r).is_filesystem()),
    );
    (out, main.is_some())
}

/// The node that stands for a guest as it boots: its OS and host name, and
/// for a guest on a nested disk, the volume holding that disk.
fn guest_node(layout: &Layout, root: VolumeId) -> Node {
    let v = layout.volume(root);
    let os = v.guest.os.clone().unwrap_or_default();
    let holder = layout.holder(root);
    // A Proxmox VM disk's guest is named by its VM (the pane is narrow; the
    // OS is among its facts).
    let label = holder
        .and_then(|h| layout.volume(h).guest.pve.as_ref())
        .filter(|l| l.name.is_some());
    let mut name = match label {
        Some(l) => l.to_string(),
        None => format!(
            "{os} — {}",
            v.guest.hostname.as_deref().unwrap_or(s::GUEST_TREE)
        ),
    };
    if let Some(h) = holder.filter(|_| label.is_none()) {
        name.push_str(&s::guest_in(&layout.volume(h).name));
    }
    // Where its fstab mounts each volume, `/` first: the volumes on the
    // same disk level as its root.
    let mut mounts: Vec<(String, String)> = layout
        .volumes
        .iter()
        .filter(|o| layout.holder(o.id) == holder)
        .filter_map(|o| {
            let at = o.guest.mountpoint.as_deref()?;
            // A Windows guest's drive letters (`C:\`) are its mountpoints.
            let drive = at.len() == 3 && at.ends_with(":\\");
            (at.starts_with('/') || drive).then(|| (at.to_string(), o.name.clone()))
        })
        .collect();
    mounts.sort();
    let mounted = mounts.len().saturating_sub(1);
    let notes = mounts
        .iter()
        .map(|(at, name)| s::guest_mount_line(&escape_mountpoint(at), &escape_str(name)))
        .collect();
    Node {
        name,
        kind: GUEST_KIND,
        volume: None,
        size: 0,
        start: None,
        description: s::guest_description(&v.name, mounted),
        fstype: None,
        fsver: None,
        fsdetail: None,
        content_text: None,
        label: None,
        uuid: None,
        mountpoint: None,
        os: label.map(|_| os.clone()),
        guest: None,
        windows: None,
        browsable: true,
        problems: Vec::new(),
        notes,
        subvolume: None,
        luks: None,
        children: Vec::new(),
    }
}

/// Whether a tree node stands for the guest as it boots.
pub fn is_guest(node: &Node) -> bool {
    node.kind == GUEST_KIND
}

/// The volume a tree node stands for.
pub fn volume_of(layout: &Layout, node: &Node) -> Option<VolumeId> {
    let name = node.volume.as_deref()?;
    layout.volumes.iter().find(|v| v.name == name).map(|v| v.id)
}

/// Everything known about a node, one fact a line (escaped), the most
/// useful first (the box under the tree shows as many as fit).
pub fn node_lines(n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    // The description and the problems are escaped where they are made.
    out.push(format!(
        "{}: {}",
        s::kind_name(n.kind),
        safe(&n.description)
    ));
    if n.size > 0 {
        out.push(format!(
            "{}: {} ({} bytes)",
            s::F_SIZE,
            size(n.size),
            n.size
        ));
    }
    if let Some(fs) = &n.content_text {
        out.push(format!("{}: {}", s::F_CONTENT, escape_str(fs)));
    }
    if is_guest(n) {
        // Its mount table, one line a mountpoint (escaped where made).
        out.extend(n.notes.iter().cloned());
    }
    if let Some(g) = &n.guest {
        out.push(format!("{}: {g}", s::F_PVE_GUEST));
    }
    if let Some(os) = &n.os {
        out.push(format!("{}: {}", s::F_GUEST_ROOT, escape_str(os)));
    }
    if let Some(m) = &n.mountpoint {
        out.push(format!("{}: {}", s::F_MOUNTPOINT, escape_mountpoint(m)));
    }
    if n.volume.is_some() && !n.browsable && n.children.is_empty() {
        out.push(s::not_browsable(
            &escape_str(&n.name),
            n.content_text.as_deref().map(escape_str).as_deref(),
        ));
    }
    for p in &n.problems {
        out.push(format!("{}: {}", s::F_PROBLEM, safe(&p.to_string())));
    }
    if let Some(l) = &n.label {
        out.push(format!("{}: \"{}\"", s::F_LABEL, escape_str(l)));
    }
    if let Some(v) = &n.volume {
        out.push(format!("{}: {}", s::F_VOLUME, escape_str(v)));
    }
    if let Some(st) = n.start {
        out.push(format!("{}: {}", s::F_START, s::start_at(st)));
    }
    if let Some(u) = &n.uuid {
        out.push(format!("{}: {}", s::F_UUID, escape_str(u)));
    }
    out
}
