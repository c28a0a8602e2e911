//! The file pane's data: a directory listing read off the UI thread, its
//! entries with metadata and symlink checks, the filter and the selection.
//!
//! Names are shown as `vmrescue ls` shows them
//! ([`crate::ops::list::display_name`]); the listing itself is the pane's
//! own: progress while reading, symlinks checked, directories first, then
//! bytewise by name.

use std::collections::HashMap;

use crate::fs::path::{self, join, resolve};
use crate::fs::{FileType, FsView, Metadata, NodeId};
use crate::ops::list::display_name;
use crate::text::escape;

use crate::repair::signs;
use crate::tui::text_field::TextField;

/// How many full symlink resolutions one listing does at most for the
/// dangling check (links whose target is a plain name in the same directory
/// are checked without resolving and do not count).
pub const MAX_RESOLVES: usize = 4096;
/// Entries between two progress reports while listing.
pub const PROGRESS_EVERY: usize = 5000;

/// One entry of a listed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as stored.
    pub name: Vec<u8>,
    /// The name escaped for the screen.
    pub shown: String,
    /// `shown` in lower case, for the filter.
    pub lower: String,
    /// The node.
    pub node: NodeId,
    /// Its metadata, when it could be read.
    pub meta: Option<Metadata>,
    /// Why the metadata (or the link target) could not be read.
    pub error: Option<String>,
    /// A symlink's target, as stored.
    pub target: Option<Vec<u8>>,
    /// The target escaped for the screen.
    pub target_shown: Option<String>,
    /// What a symlink finally points at inside the guest, when it resolves.
    pub target_type: Option<FileType>,
    /// Why this entry looks wrong (a suspicious symlink), for the status bar.
    pub suspect: Option<String>,
    /// In the guest's tree, on a mountpoint: the volume mounted there
    /// (escaped), or why nothing could be (`not found: UUID=...`).
    pub mounted: Option<String>,
}

impl Entry {
    /// The entry's type (unknown when the metadata could not be read).
    pub fn file_type(&self) -> FileType {
        self.meta
            .as_ref()
            .map_or(FileType::Unknown, |m| m.file_type)
    }

    /// Whether opening it lists a directory (a directory, or a link to one).
    pub fn opens_as_dir(&self) -> bool {
        match self.file_type() {
            FileType::Directory => true,
            FileType::Symlink => self.target_type == Some(FileType::Directory),
            _ => false,
        }
    }

    /// Size in bytes (0 when unknown).
    pub fn size(&self) -> u64 {
        self.meta.as_ref().map_or(0, |m| m.size)
    }
}

/// A directory as read by a listing job.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The directory's canonical path inside the guest.
    pub path: Vec<u8>,
    /// Its node.
    pub node: NodeId,
    /// Its entries, directories first, then by name.
    pub entries: Vec<Entry>,
}

/// Read directory `path` (resolved inside the guest, following symlinks),
/// with every entry's metadata and symlink checks. Runs on a job thread.
pub fn list_dir(
    fs: &dyn FsView,
    path: &[u8],
    progress: &mut dyn FnMut(usize),
) -> Result<Listing, String> {
    let dir = resolve(fs, path, true).map_err(|e| e.to_string())?;
    let meta = fs.metadata(dir.node).map_err(|e| e.to_string())?;
    if meta.file_type != FileType::Directory {
        return Err(super::strings::not_a_directory(&escape(&dir.path)));
    }
    let mut raw = fs.read_dir(dir.node).map_err(|e| e.to_string())?;
    // Metadata in node (inode) order: inode tables are then read in order.
    raw.sort_by_key(|e| e.node);
    let mut entries = Vec::with_capacity(raw.len());
    for (i, e) in raw.into_iter().enumerate() {
        if i > 0 && i % PROGRESS_EVERY == 0 {
            progress(i);
        }
        // As `vmrescue ls` shows it: a `/` inside a name is `\x2f`, so a
        // hostile `../../x` cannot pass for a path.
        let shown = display_name(&e.name);
        let lower = shown.to_lowercase();
        let mut entry = Entry {
            name: e.name,
            shown,
            lower,
            node: e.node,
            meta: None,
            error: None,
            target: None,
            target_shown: None,
            target_type: None,
            suspect: None,
            mounted: None,
        };
        match fs.metadata(e.node) {
            Ok(m) => {
                if m.file_type == FileType::Symlink {
                    match fs.read_link(e.node) {
                        Ok(t) => {
                            entry.target_shown = Some(escape(&t));
                            entry.target = Some(t);
                        }
                        Err(err) => entry.error = Some(err.to_string()),
                    }
                }
                entry.meta = Some(m);
            }
            Err(err) => entry.error = Some(err.to_string()),
        }
        entries.push(entry);
    }
    check_links(fs, &dir.path, &mut entries);
    entries.sort_by(|a, b| {
        b.opens_as_dir()
            .cmp(&a.opens_as_dir())
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(Listing {
        path: dir.path,
        node: dir.node,
        entries,
    })
}

/// Resolve the symlinks of a directory and flag the suspicious ones, as
/// `doctor` does (`repair::signs`): a hard sign (dangling, or a library
/// link whose target is wrong) flags a link, with the soft signs (outside
/// the library directories, changed long after its neighbours) as evidence.
fn check_links(fs: &dyn FsView, dir: &[u8], entries: &mut [Entry]) {
    let by_name: HashMap<Vec<u8>, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.clone(), i))
        .collect();
    let neighbours = signs::Neighbours::new(
        entries
            .iter()
            .filter_map(|e| e.meta.as_ref().map(|m| m.ctime.sec))
            .collect(),
    );
    let in_lib_dir = signs::is_library_dir(dir);
    // The ELF facts of library targets, gathered once, when first needed.
    let mut guest: Option<crate::repair::candidates::Guest<'_>> = None;
    let mut resolves = 0usize;
    for i in 0..entries.len() {
        let Some(target) = entries[i].target.clone() else {
            continue;
        };
        let mut reasons = Vec::new();
        let mut soft = Vec::new();
        // Where it points, inside the guest.
        let local = (!target.contains(&b'/') && target != b"." && target != b"..")
            .then(|| by_name.get(&target).copied())
            .flatten();
        let (resolved, kind): (Option<Vec<u8>>, Result<FileType, String>) = match local {
            Some(j) if entries[j].file_type() != FileType::Symlink => {
                (Some(join(dir, &target)), Ok(entries[j].file_type()))
            }
            None if !target.contains(&b'/') && target != b"." && target != b".." => {
                (None, Err(super::strings::dangling(&escape(&target))))
            }
            _ if resolves < MAX_RESOLVES => {
                resolves += 1;
                let full = join(dir, &entries[i].name);
                match resolve(fs, &full, true) {
                    Ok(r) => {
                        let t = fs.metadata(r.node).map(|m| m.file_type);
                        (Some(r.path), t.map_err(|e| e.to_string()))
                    }
                    Err(crate::Error::NotFound(_))
                        if signs::is_runtime_path(&signs::lexical(dir, &target)) =>
                    {
                        (None, Ok(FileType::Unknown))
                    }
                    Err(crate::Error::NotFound(_)) => {
                        (None, Err(super::strings::dangling(&escape(&target))))
                    }
                    Err(e) => (None, Err(super::strings::unresolvable(&e.to_string()))),
                }
            }
            _ => (None, Ok(FileType::Unknown)),
        };
        let exists = kind.is_ok() && resolved.is_some();
        match kind {
            Ok(k) => entries[i].target_type = Some(k),
            Err(why) => reasons.push(why),
        }
        if in_lib_dir && signs::is_library_name(&entries[i].name) {
            if exists && resolves < MAX_RESOLVES {
                resolves += 1;
                let g = guest.get_or_insert_with(|| crate::repair::candidates::Guest::new(fs));
                reasons.extend(g.target_problems(&join(dir, &entries[i].name)));
            }
            let where_to = resolved.unwrap_or_else(|| signs::lexical(dir, &target));
            let target_dir = signs::parent(&where_to);
            if !signs::is_library_dir(&target_dir) {
                soft.push(super::strings::outside_library_dirs(&escape(&target_dir)));
            }
        }
        if let Some(m) = &entries[i].meta
            && let Some((threshold, median)) = neighbours.threshold_without(m.ctime.sec)
            && m.ctime.sec > threshold
        {
            soft.push(super::strings::suspect_recent(
                &crate::text::format_date(m.ctime.sec),
                &crate::text::format_date(median),
            ));
        }
        if !reasons.is_empty() {
            reasons.extend(soft);
            entries[i].suspect = Some(reasons.join("; "));
        }
    }
}

/// The parent of a guest directory path, and the name of the child in it.
pub fn parent_of(path: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    match path::split_last(path) {
        (dir, Some(name)) => Some((dir, name)),
        (_, None) => None,
    }
}

/// Where the file pane is and what it shows.
#[derive(Debug, Clone)]
pub struct FilePane {
    /// The tree browsed: the guest, or one volume.
    pub tree: crate::tui::tree::Tree,
    /// The volume the directory shown lies on, once listed (in the
    /// guest's tree, the volume mounted there).
    pub on: Option<crate::layers::VolumeId>,
    /// The directory shown (canonical guest path).
    pub path: Vec<u8>,
    /// Its entries (empty until the first listing arrives).
    pub entries: Vec<Entry>,
    /// Whether a listing of `path` has arrived.
    pub loaded: bool,
    /// Indices into `entries` that pass the filter, in order.
    pub visible: Vec<usize>,
    /// Selected row (index into `visible`).
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
    /// The filter (case-insensitive part of the name); empty for none.
    pub filter: TextField,
    /// Whether the filter line is being typed.
    pub editing_filter: bool,
    /// The go-to prompt, while a path is being typed.
    pub goto: Option<TextField>,
    /// A listing under way: (request, path asked for, entries so far, name to select).
    pub loading: Option<Loading>,
    /// Why the last listing failed.
    pub error: Option<String>,
}

/// A directory listing under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loading {
    /// Request number.
    pub req: u64,
    /// The path asked for.
    pub path: Vec<u8>,
    /// Entries read so far.
    pub count: usize,
    /// Name to select once it arrives (the directory we came back from).
    pub select: Option<Vec<u8>>,
}

impl FilePane {
    /// An empty pane on `tree` at `path`, waiting for its listing.
    pub fn new(tree: crate::tui::tree::Tree, path: Vec<u8>) -> FilePane {
        FilePane {
            tree,
            on: tree.volume(),
            path,
            entries: Vec::new(),
            loaded: false,
            visible: Vec::new(),
            selected: 0,
            offset: 0,
            filter: TextField::default(),
            editing_filter: false,
            goto: None,
            loading: None,
            error: None,
        }
    }

    /// The selected entry.
    pub fn current(&self) -> Option<&Entry> {
        self.visible
            .get(self.selected)
            .and_then(|&i| self.entries.get(i))
    }

    /// Take a finished listing; select `select` by name if given.
    pub fn set_listing(&mut self, listing: Listing, select: Option<&[u8]>) {
        self.path = listing.path;
        self.entries = listing.entries;
        self.loaded = true;
        self.error = None;
        // The filter is kept: it was cleared when this directory was asked
        // for, so what is in it now was typed while the listing loaded.
        self.refilter(select);
        if select.is_none() {
            self.selected = 0;
            self.offset = 0;
        }
    }

    /// Recompute the visible rows after the filter changed, keeping the
    /// selected entry (or `select`, by name) selected when it is still shown.
    pub fn refilter(&mut self, select: Option<&[u8]>) {
        let keep: Option<Vec<u8>> = select
            .map(<[u8]>::to_vec)
            .or_else(|| self.current().map(|e| e.name.clone()));
        let needle = self.filter.text.to_lowercase();
        self.visible = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| needle.is_empty() || e.lower.contains(&needle))
            .map(|(i, _)| i)
            .collect();
        self.selected = keep
            .and_then(|name| {
                self.visible
                    .iter()
                    .position(|&i| self.entries[i].name == name)
            })
            .unwrap_or(0);
    }

    /// Move the selection to `row` (clamped) and scroll so it is shown in a
    /// window of `page` rows.
    pub fn select_row(&mut self, row: usize, page: usize) {
        let last = self.visible.len().saturating_sub(1);
        self.selected = row.min(last);
        self.scroll_into_view(page);
    }

    /// Adjust the first row shown so the selection is inside a window of `page` rows.
    pub fn scroll_into_view(&mut self, page: usize) {
        let page = page.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        let max_offset = self.visible.len().saturating_sub(page);
        self.offset = self.offset.min(max_offset);
    }
}
