//! The details window of one file: inode, times, owner, xattrs, link target
//! and where it leads, ELF facts for libraries and programs. Read on a job
//! thread (it may read a whole library to find its SONAME).

use crate::fs::path::{join, resolve};
use crate::fs::{FileType, FsView, Metadata};
use crate::ops::list::Owners;
use crate::text::escape;

use super::files::Entry;
use crate::elf::{self, ElfInfo};

/// Most bytes of an xattr value shown.
pub const XATTR_SHOWN: usize = 96;

/// Everything the details window shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// The entry's full guest path, escaped.
    pub path: String,
    /// Its metadata.
    pub meta: Option<Metadata>,
    /// The owner's and the group's names in the guest's `/etc/passwd` and
    /// `/etc/group` (as `ls -l` shows them), escaped, when it has them.
    pub owner_names: (Option<String>, Option<String>),
    /// A symlink's target, escaped.
    pub target: Option<String>,
    /// Where the symlink leads inside the guest, or why it leads nowhere.
    pub resolved: Option<Result<String, String>>,
    /// Why the entry is flagged.
    pub suspect: Option<String>,
    /// Extended attributes (name, value), escaped.
    pub xattrs: Vec<(String, String)>,
    /// ELF facts.
    pub elf: Option<ElfInfo>,
    /// What could not be read.
    pub problems: Vec<String>,
}

/// Read the details of `entry` in directory `dir`.
pub fn load(fs: &dyn FsView, dir: &[u8], entry: &Entry) -> Details {
    let full = join(dir, &entry.name);
    let mut d = Details {
        path: shown_path(dir, entry),
        meta: entry.meta.clone(),
        owner_names: (None, None),
        target: entry.target_shown.clone(),
        resolved: None,
        suspect: entry.suspect.clone(),
        xattrs: Vec::new(),
        elf: None,
        problems: entry.error.iter().cloned().collect(),
    };
    if let Some(m) = &entry.meta {
        // The same names `vmrescue ls -l` shows.
        let owners = Owners::from_guest(fs);
        let (user, group) = (owners.user(m.uid), owners.group(m.gid));
        d.owner_names = (
            (user != m.uid.to_string()).then_some(user),
            (group != m.gid.to_string()).then_some(group),
        );
    }
    if entry.target.is_some() {
        d.resolved = Some(
            resolve(fs, &full, true)
                .map(|r| escape(&r.path))
                .map_err(|e| e.to_string()),
        );
    }
    match fs.xattrs(entry.node) {
        Ok(x) => {
            d.xattrs = x
                .into_iter()
                .take(256)
                .map(|x| {
                    let mut v = escape(&x.value[..x.value.len().min(XATTR_SHOWN)]);
                    if x.value.len() > XATTR_SHOWN {
                        v.push('…');
                    }
                    (escape(&x.name), v)
                })
                .collect();
        }
        Err(e) => d.problems.push(format!("xattrs: {e}")),
    }
    if entry.file_type() == FileType::Regular {
        d.elf = elf::read(fs, entry.node);
    }
    d
}

/// Details with only what the listing knew (when reading more failed).
pub fn load_failed(dir: &[u8], entry: &Entry) -> Details {
    Details {
        path: shown_path(dir, entry),
        meta: entry.meta.clone(),
        owner_names: (None, None),
        target: entry.target_shown.clone(),
        resolved: None,
        suspect: entry.suspect.clone(),
        xattrs: Vec::new(),
        elf: None,
        problems: entry.error.iter().cloned().collect(),
    }
}

/// The entry's full path for the screen: the directory, then the name as
/// the file list shows it (a `/` inside the name escaped).
pub fn shown_path(dir: &[u8], entry: &Entry) -> String {
    let dir = escape(dir);
    if dir.ends_with('/') {
        format!("{dir}{}", entry.shown)
    } else {
        format!("{dir}/{}", entry.shown)
    }
}
