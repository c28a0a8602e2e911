//! The layer tree as shown to the operator: `vmrescue layers` prints it like
//! `lsblk`, `--json` gives the same tree as data, and the TUI's left pane draws it.

use humansize::{BINARY, format_size};

use super::{Disk, DiskOrigin, Layout, Volume, VolumeKind};
use crate::io::Target;
use crate::problem::Problem;
use crate::text::{escape_mountpoint, escape_str};

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// Short name: the image's file name, `p1`, a VG name, an LV name.
    pub name: String,
    /// `disk`, `partition`, `vg`, `lv`, `md` (an MD array) or `subvolume`
    /// (a btrfs subvolume or snapshot, under its volume).
    pub kind: &'static str,
    /// The volume name commands accept (`--volume`), when this node is a volume.
    pub volume: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// First byte on its disk (disks: none; LVs: their first segment's, if linear).
    pub start: Option<u64>,
    /// Type in words: `raw image, dos table`, `Linux LVM`, `linear`, `striped`.
    pub description: String,
    /// Content type as blkid and lsblk name it (`ext4`, `LVM2_member`,
    /// `swap`, `vfat`).
    pub fstype: Option<String>,
    /// Its version or variant, as lsblk's FSVER (`FAT32`, `SWAPSPACE2`,
    /// `LVM2 001`, `1.2`).
    pub fsver: Option<String>,
    /// More words about the content: `device 2 of 3`, `first bytes 4c 41 ...`.
    pub fsdetail: Option<String>,
    /// The FSTYPE column's text: the type, then its variant and detail in
    /// brackets (`vfat (FAT32)`, `swap (SWAPSPACE2)`, `btrfs (device 2 of 3)`).
    #[serde(skip)]
    pub content_text: Option<String>,
    /// Content label.
    pub label: Option<String>,
    /// Content UUID.
    pub uuid: Option<String>,
    /// Where the guest mounts it.
    pub mountpoint: Option<String>,
    /// The guest OS, on a guest root.
    pub os: Option<String>,
    /// The Proxmox guest this volume is a disk of (`VM 100 `db01``), from
    /// the host's configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<crate::pve::hostdb::GuestLabel>,
    /// On a Windows guest's system volume: what its registry hives say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<super::windows::WindowsGuest>,
    /// Whether it can be browsed as a filesystem.
    pub browsable: bool,
    /// Problems found on this node.
    pub problems: Vec<Problem>,
    /// Facts about its filesystem ("journal replayed in memory: ...").
    pub notes: Vec<String>,
    /// On a `subvolume` node: which subvolume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subvolume: Option<SubvolumeFacts>,
    /// On a LUKS volume: what its header says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub luks: Option<super::luks::LuksSummary>,
    /// Nodes beneath.
    pub children: Vec<Node>,
}

impl Node {
    fn new(name: String, kind: &'static str, size: u64, description: String) -> Node {
        Node {
            name,
            kind,
            volume: None,
            size,
            start: None,
            description,
            fstype: None,
            fsver: None,
            fsdetail: None,
            content_text: None,
            label: None,
            uuid: None,
            mountpoint: None,
            os: None,
            guest: None,
            windows: None,
            browsable: false,
            problems: Vec::new(),
            notes: Vec::new(),
            subvolume: None,
            luks: None,
            children: Vec::new(),
        }
    }

    fn fill_from_volume(&mut self, layout: &Layout, v: &Volume) {
        self.volume = Some(v.name.clone());
        let c = &v.content;
        if !matches!(
            c.kind,
            super::ContentKind::Unknown
                | super::ContentKind::Zeros
                | super::ContentKind::Unreadable
        ) || c.detail.is_some()
        {
            self.fstype = Some(c.kind.name().to_string());
            self.fsver = c.fsver();
            self.fsdetail = c.detail.clone();
            self.content_text = Some(c.describe());
        }
        self.label = c.label.clone();
        self.uuid = c.uuid.clone();
        self.mountpoint = v.guest.mountpoint.clone();
        self.os = v.guest.os.clone();
        self.guest = v.guest.pve.clone();
        self.windows = v.guest.windows.clone();
        self.browsable = v.is_filesystem();
        self.luks = layout
            .luks
            .iter()
            .find(|(id, _)| *id == v.id)
            .map(|(_, s)| s.clone());
        self.problems.extend(v.problems.iter().cloned());
        self.notes.extend(v.notes.iter().cloned());
        let subs = subvolume_children(layout, v);
        if subs.len() > MAX_SUBVOLUME_NODES {
            self.notes.push(format!(
                "{} btrfs subvolumes: the first {MAX_SUBVOLUME_NODES} are shown; --volume {}@PATH opens any",
                subs.len(),
                v.name
            ));
        }
        self.children
            .extend(subs.into_iter().take(MAX_SUBVOLUME_NODES));
    }
}

/// `p` without empty components (`/@home/` → `@home`), as `subvol=` is read.
fn trim_path(p: &[u8]) -> Vec<u8> {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(&b'/')
}

/// Most subvolume nodes shown under one volume (a snapshot-heavy volume
/// may have thousands).
const MAX_SUBVOLUME_NODES: usize = 1024;

/// What a subvolume node tells about its subvolume (`--json`:
/// `"subvolume": {"id", "path", "parent", "snapshot_of", "readonly", "default"}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubvolumeFacts {
    /// Subvolume id (5: the top level).
    pub id: u64,
    /// Path from the top level (`@home`, `@/nested`; empty for the top level).
    pub path: String,
    /// The id of the subvolume it sits in (0 for the top level).
    pub parent: u64,
    /// The id of the subvolume it is a snapshot of, when that one is still there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_of: Option<u64>,
    /// A read-only subvolume (a read-only snapshot).
    pub readonly: bool,
    /// The default subvolume: what the volume shows when none is named.
    pub default: bool,
}

/// The subvolume nodes of btrfs volume `v`, in root-tree order: every
/// subvolume but the top level, and the top level too when it is not the
/// default (then it is not what the volume shows). None when the volume
/// has no subvolumes but the top level.
fn subvolume_children(layout: &Layout, v: &Volume) -> Vec<Node> {
    let Some((_, subs)) = layout.subvolumes.iter().find(|(id, _)| *id == v.id) else {
        return Vec::new();
    };
    if subs.len() < 2 {
        return Vec::new();
    }
    let by_id = |id: u64| subs.iter().find(|s| s.id == id);
    let mut out = Vec::new();
    for s in subs {
        if s.id == crate::fs::btrfs::item::id::FS_TREE && s.default {
            continue;
        }
        let path = escape_str(&String::from_utf8_lossy(&s.path));
        let shown = if s.path.is_empty() {
            "<top level>".to_string()
        } else {
            path.clone()
        };
        let mut desc = format!("btrfs subvolume {}", s.id);
        if let Some(of) = s.snapshot_of {
            let of_path = by_id(of).map_or_else(String::new, |o| {
                escape_str(&String::from_utf8_lossy(&o.path))
            });
            desc.push_str(&format!(", snapshot of {of_path} ({of})"));
        }
        if s.read_only {
            desc.push_str(", read-only");
        }
        if s.default {
            desc.push_str(", default");
        }
        let mut n = Node::new(shown, "subvolume", 0, desc);
        n.mountpoint = layout
            .subvolume_mounts
            .iter()
            .filter(|(id, _, _)| *id == v.id)
            .find(|(_, spec, _)| match spec {
                crate::fs::SubvolSpec::Id(id) => *id == s.id,
                crate::fs::SubvolSpec::Path(p) => trim_path(p) == s.path,
            })
            .map(|(_, _, at)| at.clone());
        n.volume = Some(super::names::subvolume_name(&v.name, &s.path));
        n.browsable = v.is_filesystem();
        n.fstype = Some("btrfs".into());
        n.content_text = Some("btrfs".into());
        n.subvolume = Some(SubvolumeFacts {
            id: s.id,
            path,
            parent: s.parent_id,
            snapshot_of: s.snapshot_of,
            readonly: s.read_only,
            default: s.default,
        });
        out.push(n);
    }
    out
}

/// Build the tree for a layout. A nested disk (a guest disk in a host LV)
/// is no root: its partitions, or its VG, are children of the volume that
/// holds it.
pub fn build(layout: &Layout) -> Vec<Node> {
    let mut placed_vgs: Vec<String> = Vec::new();
    let mut roots = Vec::new();
    for disk in layout.disks.iter().filter(|d| d.parent.is_none()) {
        let file = disk.origin.short_name();
        let mut node = Node::new(file, "disk", disk.size(), disk_description(disk));
        disk_children(layout, disk, &mut node, &mut placed_vgs);
        roots.push(node);
    }
    roots
}

/// `raw, gpt partition table`, and the container's details.
fn disk_description(disk: &Disk) -> String {
    let mut desc = disk.format.name().to_string();
    if let Some(t) = &disk.table {
        desc.push_str(&format!(", {} partition table", t.scheme.name()));
        if t.sector_size != 512 {
            desc.push_str(&format!(" ({}-byte sectors)", t.sector_size));
        }
    }
    for d in &disk.format_details {
        desc.push_str(&format!(", {d}"));
    }
    desc
}

/// Fill `node` with what disk `disk` holds: its problems, its partitions
/// (or its whole-disk volume's content and VG). For a nested disk `node`
/// is the node of the volume holding it, whose own name and content stay.
fn disk_children(layout: &Layout, disk: &Disk, node: &mut Node, placed_vgs: &mut Vec<String>) {
    node.problems.extend(disk.problems.iter().cloned());
    if let Some(t) = &disk.table {
        node.problems.extend(t.problems.iter().cloned());
    }
    // A disk on a volume's own bytes (not a file in its filesystem).
    let on_holder = disk.parent.is_some() && !matches!(disk.origin, DiskOrigin::File { .. });
    if on_holder {
        for d in &disk.format_details {
            node.notes.push(d.clone());
        }
    }
    for v in &layout.volumes {
        match &v.kind {
            VolumeKind::WholeDisk { disk: d } if *d == disk.id => {
                if on_holder {
                    // The same bytes as the volume holding the disk: only
                    // what it adds (a VG) is shown.
                    node.problems.extend(v.problems.iter().cloned());
                    node.notes.extend(v.notes.iter().cloned());
                } else {
                    node.fill_from_volume(layout, v);
                }
                node.children.extend(vg_children(layout, v, placed_vgs));
                node.children.extend(md_children(layout, v, placed_vgs));
                nested_children(layout, v, node, placed_vgs);
            }
            VolumeKind::Partition { disk: d, entry, .. } if *d == disk.id => {
                let mut desc = entry.part_type.name();
                if entry.extended {
                    desc = format!("{desc} (container of the logical partitions)");
                }
                if let Some(n) = &entry.name {
                    desc.push_str(&format!(" \"{}\"", escape_str(n)));
                }
                let mut p = Node::new(v.name.clone(), "partition", v.size(), desc);
                p.start = Some(entry.start);
                p.fill_from_volume(layout, v);
                if entry.extended {
                    p.volume = None;
                    p.fstype = None;
                    p.fsver = None;
                    p.fsdetail = None;
                    p.content_text = None;
                }
                p.children.extend(vg_children(layout, v, placed_vgs));
                p.children.extend(md_children(layout, v, placed_vgs));
                p.children.extend(ldm_children(layout, v, placed_vgs));
                nested_children(layout, v, &mut p, placed_vgs);
                node.children.push(p);
            }
            _ => {}
        }
    }
}

/// What the disks nested in volume `v` hold (a guest disk in a host LV):
/// their partitions or VG become children of `node`, the volume's node, and
/// their own problems (a damaged table) its problems.
fn nested_children(layout: &Layout, v: &Volume, node: &mut Node, placed_vgs: &mut Vec<String>) {
    for disk in layout.disks.iter().filter(|d| d.parent == Some(v.id)) {
        if let DiskOrigin::File { path, .. } = &disk.origin {
            // A disk image stored as a file in the volume's filesystem: a
            // disk node of its own under the volume.
            let mut n = Node::new(path.clone(), "disk", disk.size(), disk_description(disk));
            disk_children(layout, disk, &mut n, placed_vgs);
            node.children.push(n);
        } else {
            disk_children(layout, disk, node, placed_vgs);
        }
    }
}

/// The MD array nodes to show under member volume `v`: the array under
/// its first member, with what it holds; under the others, a node saying
/// where it is. `placed` keeps the arrays shown (as `md:<volume>`).
fn md_children(layout: &Layout, v: &Volume, placed: &mut Vec<String>) -> Vec<Node> {
    let mut out = Vec::new();
    for a in &layout.volumes {
        let VolumeKind::MdArray { array } = &a.kind else {
            continue;
        };
        if !array.members.iter().any(|m| m.volume == v.id) {
            continue;
        }
        let key = format!("md:{}", a.id.0);
        if placed.contains(&key) {
            out.push(Node::new(
                a.name.clone(),
                "md",
                0,
                "MD array (shown under its first member)".to_string(),
            ));
            continue;
        }
        placed.push(key);
        let mut n = Node::new(a.name.clone(), "md", a.size(), array.describe());
        n.fill_from_volume(layout, a);
        n.notes.extend(array.reads.iter().cloned());
        n.children.extend(md_children(layout, a, placed));
        nested_children(layout, a, &mut n, placed);
        out.push(n);
    }
    out
}

/// The Windows dynamic disk volumes with bytes in partition `v`: each in
/// full under the first partition it is found in, as a pointer under the
/// others. `placed` keeps the volumes shown (as `ldm:<volume>`).
fn ldm_children(layout: &Layout, v: &Volume, placed: &mut Vec<String>) -> Vec<Node> {
    let VolumeKind::Partition { disk, entry, .. } = &v.kind else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in &layout.volumes {
        let VolumeKind::LdmVolume {
            layout: kind, hint, ..
        } = &a.kind
        else {
            continue;
        };
        let inside = a.mapping.segments().iter().any(|s| {
            let areas: Vec<&crate::io::Area> = match &s.target {
                crate::io::Target::Linear(area) => vec![area],
                crate::io::Target::Striped { stripes, .. } => stripes.iter().collect(),
                _ => Vec::new(),
            };
            areas
                .iter()
                .any(|x| x.disk == *disk && x.offset >= entry.start && x.offset < entry.end())
        });
        if !inside {
            continue;
        }
        let key = format!("ldm:{}", a.id.0);
        if placed.contains(&key) {
            out.push(Node::new(
                a.name.clone(),
                "ldm",
                0,
                "dynamic volume (shown under its first disk)".to_string(),
            ));
            continue;
        }
        placed.push(key);
        let mut desc = format!("dynamic volume, {kind}");
        if let Some(h) = hint {
            desc.push_str(&format!(", was {}", escape_str(h)));
        }
        let mut n = Node::new(a.name.clone(), "ldm", a.size(), desc);
        n.fill_from_volume(layout, a);
        out.push(n);
    }
    out
}

/// The VG node to show under a PV volume: under the first PV of the VG that
/// was found; other PVs of the same VG say whose they are.
fn vg_children(layout: &Layout, v: &Volume, placed: &mut Vec<String>) -> Vec<Node> {
    let Some(pv_index) = layout.pvs.iter().position(|p| p.volume == v.name) else {
        return Vec::new();
    };
    let Some(gi) = layout
        .groups
        .iter()
        .position(|g| g.pvs.iter().any(|p| p.found == Some(pv_index)))
    else {
        return Vec::new();
    };
    let g = &layout.groups[gi];
    // Keyed by the assembled group: two VGs may have the same name (disks of
    // two guests), or the same UUID (a cloned guest, a thin snapshot's).
    let key = gi.to_string();
    if placed.contains(&key) {
        let mut n = Node::new(
            g.name.clone(),
            "vg",
            0,
            "volume group (shown under its first PV)".to_string(),
        );
        n.volume = None;
        return vec![n];
    }
    placed.push(key);
    let size = g.extent_count.saturating_mul(g.extent_size);
    let free = g.free_count.saturating_mul(g.extent_size);
    let found = g.pvs.iter().filter(|p| p.found.is_some()).count();
    let mut desc = format!(
        "volume group, {} PV{}, free {}",
        g.pvs.len(),
        if g.pvs.len() == 1 { "" } else { "s" },
        format_size(free, BINARY)
    );
    if found < g.pvs.len() {
        desc.push_str(&format!(", {} PV(s) missing", g.pvs.len() - found));
    }
    // A nested VG is named with the volume holding its disk, as its LVs'
    // volume names are (`pve/vm-100-disk-0/pve`).
    let shown = match super::nested::scope_of(layout, v.id) {
        Some(p) => format!("{}/{}", layout.volume(p).name, g.name),
        None => g.name.clone(),
    };
    let mut n = Node::new(shown, "vg", size, desc);
    n.problems.extend(g.problems.iter().cloned());
    // Visible LVs first, then hidden ones in brackets as `lvs -a` shows them.
    let mut lvs: Vec<&Volume> = g
        .lvs
        .iter()
        .filter_map(|lv| lv_volume(layout, gi, &lv.name))
        .collect();
    lvs.sort_by_key(|lv| matches!(lv.kind, VolumeKind::LogicalVolume { hidden: true, .. }));
    for lv in lvs {
        let VolumeKind::LogicalVolume {
            lv: lv_name,
            hidden,
            segtypes,
            ..
        } = &lv.kind
        else {
            continue;
        };
        let shown = if *hidden {
            format!("[{lv_name}]")
        } else {
            lv_name.clone()
        };
        let mut desc = segtypes.join("+");
        let segs = lv.mapping.segments().len();
        if segs > 1 {
            desc.push_str(&format!(", {segs} segments"));
        }
        if *hidden {
            desc.push_str(", hidden");
        }
        let mut node = Node::new(shown, "lv", lv.size(), desc);
        if let Some(first) = lv.mapping.segments().first()
            && let Target::Linear(a) = &first.target
        {
            node.start = Some(a.offset);
        }
        node.fill_from_volume(layout, lv);
        if *hidden {
            node.volume = None;
        }
        node.children.extend(md_children(layout, lv, placed));
        nested_children(layout, lv, &mut node, placed);
        n.children.push(node);
    }
    vec![n]
}

/// The volume of LV `lv` of group `gi`. LV volumes are made group by group,
/// so when VGs share a name, the n-th volume of that name belongs to the
/// n-th of those groups that has such an LV.
fn lv_volume<'a>(layout: &'a Layout, gi: usize, lv: &str) -> Option<&'a Volume> {
    let name = &layout.groups[gi].name;
    let before = layout.groups[..gi]
        .iter()
        .filter(|o| o.name == *name && o.lvs.iter().any(|l| l.name == lv))
        .count();
    layout
        .volumes
        .iter()
        .filter(|v| {
            matches!(&v.kind, VolumeKind::LogicalVolume { vg, lv: l, .. } if vg == name && l == lv)
        })
        .nth(before)
}

/// A column of `layers`' table, by lsblk's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The tree, names and Proxmox guests.
    Name,
    /// Size (`-b`: bytes).
    Size,
    /// First byte on its disk.
    Start,
    /// The node's type in words.
    Type,
    /// The content's type; with its version and detail unless FSVER is shown too.
    Fstype,
    /// The content's version.
    Fsver,
    /// The content's label.
    Label,
    /// The content's UUID.
    Uuid,
    /// Where the guest mounts it, and the guest root.
    Mountpoint,
    /// The name `--volume` takes.
    Volume,
}

impl Column {
    /// Every column, in the order `--help` lists them.
    pub const ALL: [Column; 10] = [
        Column::Name,
        Column::Size,
        Column::Start,
        Column::Type,
        Column::Fstype,
        Column::Fsver,
        Column::Label,
        Column::Uuid,
        Column::Mountpoint,
        Column::Volume,
    ];

    /// The columns shown when none are chosen.
    pub const DEFAULT: [Column; 7] = [
        Column::Name,
        Column::Size,
        Column::Start,
        Column::Type,
        Column::Fstype,
        Column::Label,
        Column::Mountpoint,
    ];

    /// Its heading, which `-o` takes too (any case).
    pub fn heading(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Size => "SIZE",
            Column::Start => "START",
            Column::Type => "TYPE",
            Column::Fstype => "FSTYPE",
            Column::Fsver => "FSVER",
            Column::Label => "LABEL",
            Column::Uuid => "UUID",
            Column::Mountpoint => "MOUNTPOINT",
            Column::Volume => "VOLUME",
        }
    }

    /// The column named `name` (any case).
    pub fn parse(name: &str) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.heading().eq_ignore_ascii_case(name.trim()))
    }

    /// Numbers, aligned right.
    fn right(self) -> bool {
        matches!(self, Column::Size | Column::Start)
    }
}

/// How `layers` prints its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOptions {
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// Sizes in bytes (`-b`).
    pub bytes: bool,
    /// The heading line (`-n` leaves it out).
    pub headings: bool,
    /// Whole TYPE and FSTYPE cells, however wide (`-l`); otherwise a long
    /// cell is cut and printed whole under the table.
    pub full: bool,
}

impl Default for TextOptions {
    fn default() -> TextOptions {
        TextOptions {
            columns: Column::DEFAULT.to_vec(),
            bytes: false,
            headings: true,
            full: false,
        }
    }
}

/// Render the tree as text, like `lsblk`.
pub fn render_text(roots: &[Node]) -> String {
    render_text_with(roots, &TextOptions::default())
}

/// Render the tree as text with `opts`' columns and habits.
pub fn render_text_with(roots: &[Node], opts: &TextOptions) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    if opts.headings {
        rows.push(
            opts.columns
                .iter()
                .map(|c| c.heading().to_string())
                .collect(),
        );
    }
    let mut problems = Vec::new();
    let mut long = Vec::new();
    for r in roots {
        walk(r, "", "", opts, &mut rows, &mut problems, &mut long);
    }
    let mut widths = vec![0usize; opts.columns.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(crate::text::columns(cell));
        }
    }
    let last = opts.columns.len().saturating_sub(1);
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                line.push_str(&crate::text::pad(cell, widths[i], opts.columns[i].right()));
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let mut notes = long;
    collect_notes(roots, &mut notes);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// `volume: note` lines for every node with notes, in tree order.
fn collect_notes(nodes: &[Node], out: &mut Vec<String>) {
    for n in nodes {
        // A disk by the name its row shows (its file); a volume by the name
        // commands take, which tells apart two disks' `p1`.
        let who = match n.volume.as_deref() {
            Some(v) if n.kind != "disk" => v,
            _ => &n.name,
        };
        for note in &n.notes {
            out.push(format!("{}: {}", escape_str(who), escape_str(note)));
        }
        collect_notes(&n.children, out);
    }
}

/// The widest FSTYPE cell `layers` prints: a longer content description
/// (an unreadable volume's reason) is cut at its parenthesis there and
/// printed in full under the table.
const FSTYPE_COLUMNS: usize = 48;

/// The widest TYPE cell `layers` prints, the same way.
const TYPE_COLUMNS: usize = 56;

fn walk(
    n: &Node,
    prefix: &str,
    child_prefix: &str,
    opts: &TextOptions,
    rows: &mut Vec<Vec<String>>,
    problems: &mut Vec<Problem>,
    long: &mut Vec<String>,
) {
    let mut mount = n
        .mountpoint
        .as_deref()
        .map(escape_mountpoint)
        .unwrap_or_default();
    if let Some(os) = &n.os {
        if !mount.is_empty() {
            mount.push_str("  ");
        }
        mount.push_str(&format!("guest root: {}", escape_str(os)));
        // A Windows guest by its computer name, as Windows shows it.
        if let Some(name) = n.windows.as_ref().and_then(|w| w.computer_name.as_ref()) {
            mount.push_str(&format!(" — {}", escape_str(name)));
        }
    }
    if !n.problems.is_empty() {
        if !mount.is_empty() {
            mount.push_str("  ");
        }
        mount.push_str(&format!(
            "[{} problem{}]",
            n.problems.len(),
            if n.problems.len() == 1 { "" } else { "s" }
        ));
    }
    let guest = n
        .guest
        .as_ref()
        .map(|g| format!(" — {g}"))
        .unwrap_or_default();
    let with_version = !opts.columns.contains(&Column::Fsver);
    let row = opts
        .columns
        .iter()
        .map(|c| match c {
            Column::Name => format!("{prefix}{}{guest}", escape_str(&n.name)),
            Column::Size if n.size == 0 && matches!(n.kind, "vg" | "md" | "subvolume") => {
                String::new()
            }
            Column::Size if opts.bytes => n.size.to_string(),
            Column::Size => format_size(n.size, BINARY),
            Column::Start => n.start.map(|s| s.to_string()).unwrap_or_default(),
            Column::Type => type_cell(n, opts.full, long),
            Column::Fstype if with_version => fstype_cell(n, opts.full, long),
            Column::Fstype => n.fstype.as_deref().map(escape_str).unwrap_or_default(),
            Column::Fsver => n.fsver.as_deref().map(escape_str).unwrap_or_default(),
            Column::Label => n.label.as_deref().map(escape_str).unwrap_or_default(),
            Column::Uuid => n.uuid.as_deref().map(escape_str).unwrap_or_default(),
            Column::Mountpoint => mount.clone(),
            Column::Volume => n.volume.as_deref().map(escape_str).unwrap_or_default(),
        })
        .collect();
    rows.push(row);
    problems.extend(n.problems.iter().cloned());
    let count = n.children.len();
    for (i, c) in n.children.iter().enumerate() {
        let last = i + 1 == count;
        let (branch, cont) = if last {
            ("└─", "  ")
        } else {
            ("├─", "│ ")
        };
        walk(
            c,
            &format!("{child_prefix}{branch}"),
            &format!("{child_prefix}{cont}"),
            opts,
            rows,
            problems,
            long,
        );
    }
}

/// A node's FSTYPE cell: its content, or when that is too wide for the
/// column (and not `full`), its start and `(see below)`, the whole text
/// going to `long`.
fn fstype_cell(n: &Node, full: bool, long: &mut Vec<String>) -> String {
    let text = n
        .content_text
        .as_deref()
        .map(escape_str)
        .unwrap_or_default();
    cut_cell(n, text, FSTYPE_COLUMNS, full, long)
}

/// A node's TYPE cell, cut as [`fstype_cell`] cuts (a qcow2 image's facts,
/// a RAID LV's legs).
fn type_cell(n: &Node, full: bool, long: &mut Vec<String>) -> String {
    cut_cell(n, n.description.clone(), TYPE_COLUMNS, full, long)
}

/// `text` when it fits in `room` columns (or `full`); otherwise its start
/// and `(see below)`, the whole text going to `long` under the node's name.
fn cut_cell(n: &Node, text: String, room: usize, full: bool, long: &mut Vec<String>) -> String {
    if full || crate::text::columns(&text) <= room {
        return text;
    }
    let head = text
        .split(" (")
        .next()
        .unwrap_or_default()
        .split(", ")
        .next()
        .unwrap_or_default();
    let head: String = head.chars().take(room).collect();
    // A hidden sub-LV's details (`lvs -a` rows: raid images and metadata)
    // would only repeat what its LV's own line says.
    if n.name.starts_with('[') {
        return head;
    }
    // A disk by the name its row shows (its file); a volume by the name
    // commands take, which tells apart two disks' `p1`.
    let who = match n.volume.as_deref() {
        Some(v) if n.kind != "disk" => v,
        _ => &n.name,
    };
    long.push(format!("{}: {}", escape_str(who), text));
    format!("{head} (see below)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountpoints_from_a_guest_never_reach_the_terminal_raw() {
        let mut disk = Node::new("disk.img".into(), "disk", 1 << 20, "raw".into());
        let mut hostile = Node::new("p2".into(), "partition", 1 << 19, String::new());
        hostile.mountpoint = Some("/x\u{1b}[31mRED".into());
        let mut drive = Node::new("p1".into(), "partition", 1 << 19, String::new());
        drive.mountpoint = Some("C:\\".into());
        disk.children = vec![drive, hostile];
        let out = render_text(&[disk]);
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert!(out.contains("/x\\x1b[31mRED"), "{out}");
        // A Windows drive as Windows writes it.
        assert!(out.contains(" C:\\\n") || out.contains(" C:\\ "), "{out}");
        assert!(!out.contains("C:\\\\"), "{out}");
    }
}
