//! Directory listings as `ls` shows them.
//!
//! For `vmrescue ls`: entries sorted by name (bytewise, as `LC_ALL=C ls`),
//! the `-l` columns, owner and group names from the guest's own
//! `/etc/passwd` and `/etc/group` ([`Owners`]), and names made safe to show
//! ([`display_name`]). The TUI shares only the last two: its file pane
//! (`tui/files.rs`) shows names through [`display_name`] but reads its own
//! listing (progress reports, symlink checks, directories first), and its
//! details window takes owner names from [`Owners`].

use std::collections::HashMap;

use crate::error::Result;
use crate::fs::path::{is_safe_name, resolve};
use crate::fs::{FileType, FsView, Metadata, NodeId, Timestamp};
use crate::text::escape;

/// Largest `/etc/passwd` or `/etc/group` read for owner names.
const MAX_ACCOUNTS_FILE: u64 = 4 << 20;

/// One listed entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name as stored in the directory.
    pub name: Vec<u8>,
    /// The node it names.
    pub node: NodeId,
    /// Its metadata, or why it could not be read.
    pub meta: std::result::Result<Metadata, String>,
    /// Symlink target, for symlinks (or why it could not be read).
    pub target: Option<std::result::Result<Vec<u8>, String>>,
}

impl Entry {
    /// Read the metadata (and link target) of `node` named `name`.
    pub fn read(fs: &dyn FsView, name: Vec<u8>, node: NodeId) -> Entry {
        let meta = fs.metadata(node).map_err(|e| e.to_string());
        let target = match &meta {
            Ok(m) if m.file_type == FileType::Symlink => {
                Some(fs.read_link(node).map_err(|e| e.to_string()))
            }
            _ => None,
        };
        Entry {
            name,
            node,
            meta,
            target,
        }
    }

    /// Whether the entry is a directory (not following symlinks).
    pub fn is_dir(&self) -> bool {
        matches!(&self.meta, Ok(m) if m.file_type == FileType::Directory)
    }
}

/// The entries of directory `dir`, sorted by name, with metadata.
pub fn list_dir(fs: &dyn FsView, dir: NodeId) -> Result<Vec<Entry>> {
    let mut entries = fs.read_dir(dir)?;
    // Fetch metadata in node (inode) order, so inode tables are read in
    // order rather than in the hash order of an indexed directory.
    entries.sort_by_key(|e| e.node);
    let mut out: Vec<Entry> = entries
        .into_iter()
        .map(|e| Entry::read(fs, e.name, e.node))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A name from the guest made safe and unambiguous to show: control
/// characters and invalid UTF-8 escaped (see [`escape`]), and the names no
/// directory may hold shown as escapes too: `/` as `\x2f`, an entry named
/// `.` or `..` as `\x2e`/`\x2e\x2e`, the empty name as `\(empty)`.
pub fn display_name(name: &[u8]) -> String {
    if name.is_empty() {
        return "\\(empty)".into();
    }
    if name == b"." {
        return "\\x2e".into();
    }
    if name == b".." {
        return "\\x2e\\x2e".into();
    }
    escape(name).replace('/', "\\x2f")
}

/// Why a directory entry's name is impossible, if it is.
pub fn impossible_name(name: &[u8]) -> Option<&'static str> {
    if is_safe_name(name) {
        None
    } else if name.is_empty() {
        Some("an empty name")
    } else if name == b"." || name == b".." {
        Some("a name reserved for the directory itself or its parent")
    } else if name.contains(&0) {
        Some("a name holding a NUL byte")
    } else {
        Some("a name holding '/'")
    }
}

/// Owner and group names.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Owners {
    /// No names: numbers only.
    pub fn numeric() -> Owners {
        Owners::default()
    }

    /// Names from the guest's `/etc/passwd` and `/etc/group`, where this
    /// filesystem has them (the guest root); numbers otherwise.
    pub fn from_guest(fs: &dyn FsView) -> Owners {
        Owners {
            users: read_accounts(fs, b"/etc/passwd"),
            groups: read_accounts(fs, b"/etc/group"),
        }
    }

    /// The user's name, or the number.
    pub fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    /// The group's name, or the number.
    pub fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }

    /// The user's name (left-aligned in a column, as `ls -l` shows names)
    /// or number (right-aligned, as `ls -l` shows numbers).
    fn user_column(&self, uid: u32) -> Column {
        match self.users.get(&uid) {
            Some(name) => Column::Left(name.clone()),
            None => Column::Right(uid.to_string()),
        }
    }

    /// The group's name or number, aligned as [`Owners::user_column`].
    fn group_column(&self, gid: u32) -> Column {
        match self.groups.get(&gid) {
            Some(name) => Column::Left(name.clone()),
            None => Column::Right(gid.to_string()),
        }
    }
}

/// A cell of a long listing's owner or group column: GNU `ls -l` pads a
/// name on the right and a number (no name known, or `-n`) on the left.
enum Column {
    /// A name.
    Left(String),
    /// A number.
    Right(String),
}

impl Column {
    fn text(&self) -> &String {
        match self {
            Column::Left(s) | Column::Right(s) => s,
        }
    }

    /// The cell padded to `width` columns.
    fn padded(&self, width: usize) -> String {
        match self {
            Column::Left(s) => format!("{s:<width$}"),
            Column::Right(s) => format!("{s:>width$}"),
        }
    }
}

/// `name:x:id:...` lines of a guest file → id → escaped name (first wins).
fn read_accounts(fs: &dyn FsView, path: &[u8]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let Ok(r) = resolve(fs, path, true) else {
        return out;
    };
    let Ok(meta) = fs.metadata(r.node) else {
        return out;
    };
    if meta.file_type != FileType::Regular || meta.size > MAX_ACCOUNTS_FILE {
        return out;
    }
    let mut buf = vec![0u8; meta.size as usize];
    let Ok(n) = fs.read_at(r.node, 0, &mut buf) else {
        return out;
    };
    buf.truncate(n);
    for line in buf.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Some(id) = std::str::from_utf8(id)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if name.is_empty() || name.starts_with(b"#") {
            continue;
        }
        out.entry(id).or_insert_with(|| escape(name));
    }
    out
}

/// A time as `ls --time-style=long-iso` shows it, in UTC: `2013-02-21 14:03`.
pub fn format_time(t: Timestamp) -> String {
    crate::text::format_time(t.sec)
}

/// The size column: bytes, or `major, minor` for device nodes.
pub fn size_column(m: &Metadata) -> String {
    match m.file_type {
        FileType::CharDevice | FileType::BlockDevice => format!("{}, {}", m.rdev.0, m.rdev.1),
        _ => m.size.to_string(),
    }
}

/// A size as `ls -lh` shows it: bytes below 1024, else powers of 1024
/// rounded up, with one decimal below 10 (`1.5K`, `10K`, `210M`).
pub fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    let units = ["K", "M", "G", "T", "P", "E"];
    let mut unit = 0;
    let mut div = 1024u128;
    while unit + 1 < units.len() && u128::from(bytes) >= div * 1024 {
        div *= 1024;
        unit += 1;
    }
    let b = u128::from(bytes);
    // Tenths, rounded up.
    let tenths = (b * 10).div_ceil(div);
    if tenths < 100 {
        return format!("{}.{}{}", tenths / 10, tenths % 10, units[unit]);
    }
    let whole = b.div_ceil(div);
    if whole >= 1024 && unit + 1 < units.len() {
        // 1023.9M rounds up to 1.0G.
        return format!("1.0{}", units[unit + 1]);
    }
    format!("{whole}{}", units[unit])
}

/// `ls -l` lines for `entries`, columns aligned, names shown with [`display_name`].
pub fn long_lines(entries: &[Entry], owners: &Owners) -> Vec<String> {
    long_lines_with(entries, owners, false, |_, e| display_name(&e.name))
}

/// `ls -l` lines for `entries`, columns aligned, names shown as
/// `name(index, entry)` says; sizes as [`human_size`] when `human`.
pub fn long_lines_with(
    entries: &[Entry],
    owners: &Owners,
    human: bool,
    name: impl Fn(usize, &Entry) -> String,
) -> Vec<String> {
    struct Cols {
        mode: String,
        links: String,
        user: Column,
        group: Column,
        size: String,
        time: String,
    }
    let cols: Vec<Option<Cols>> = entries
        .iter()
        .map(|e| {
            e.meta.as_ref().ok().map(|m| Cols {
                mode: m.mode_string(),
                links: m.nlink.to_string(),
                user: owners.user_column(m.uid),
                group: owners.group_column(m.gid),
                size: match m.file_type {
                    FileType::CharDevice | FileType::BlockDevice => size_column(m),
                    _ if human => human_size(m.size),
                    _ => size_column(m),
                },
                time: format_time(m.mtime),
            })
        })
        .collect();
    let width = |f: fn(&Cols) -> &String| {
        cols.iter()
            .flatten()
            .map(|c| f(c).chars().count())
            .max()
            .unwrap_or(0)
    };
    let wl = width(|c| &c.links);
    let wu = width(|c| c.user.text());
    let wg = width(|c| c.group.text());
    let ws = width(|c| &c.size);
    entries
        .iter()
        .zip(&cols)
        .enumerate()
        .map(|(i, (e, c))| {
            let name = name(i, e);
            match c {
                None => format!("?????????? {name}"),
                Some(c) => {
                    let mut line = format!(
                        "{} {:>wl$} {} {} {:>ws$} {} {name}",
                        c.mode,
                        c.links,
                        c.user.padded(wu),
                        c.group.padded(wg),
                        c.size,
                        c.time
                    );
                    match &e.target {
                        Some(Ok(t)) => {
                            line.push_str(" -> ");
                            line.push_str(&escape(t));
                        }
                        Some(Err(_)) => line.push_str(" -> ?"),
                        None => {}
                    }
                    line
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_gnu_ls() {
        let cases = [
            (0, "0"),
            (1023, "1023"),
            (1024, "1.0K"),
            (1025, "1.1K"),
            (1536, "1.5K"),
            (10 * 1024, "10K"),
            (10 * 1024 + 1, "11K"),
            (210 << 20, "210M"),
            ((1 << 30) - 1, "1.0G"),
            (u64::MAX, "16E"),
        ];
        for (n, want) in cases {
            assert_eq!(human_size(n), want, "{n}");
        }
    }

    #[test]
    fn times_like_long_iso_in_utc() {
        assert_eq!(
            format_time(Timestamp { sec: 0, nsec: 0 }),
            "1970-01-01 00:00"
        );
        assert_eq!(
            format_time(Timestamp {
                sec: 1_361_455_380,
                nsec: 0
            }),
            "2013-02-21 14:03"
        );
        assert_eq!(
            format_time(Timestamp {
                sec: 951_782_400,
                nsec: 0
            }),
            "2000-02-29 00:00"
        );
        assert_eq!(
            format_time(Timestamp { sec: -1, nsec: 0 }),
            "1969-12-31 23:59"
        );
    }

    #[test]
    fn impossible_names_are_shown_as_escapes() {
        assert_eq!(display_name(b"a/b"), "a\\x2fb");
        assert_eq!(display_name(b".."), "\\x2e\\x2e");
        assert_eq!(display_name(b""), "\\(empty)");
        assert_eq!(display_name(b"\x1b[2J"), "\\x1b[2J");
        assert_eq!(display_name(b".bashrc"), ".bashrc");
    }
}
