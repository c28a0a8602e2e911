//! Guest paths: resolution inside the guest root, joining, splitting.

use std::collections::VecDeque;

use super::{FileType, FsView, NodeId};
use crate::error::{Error, Result};
use crate::text::escape;

/// Most symlinks followed while resolving one path (as Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;
/// Longest path accepted, in bytes (as Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// A resolved node and its canonical absolute path inside the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The node.
    pub node: NodeId,
    /// Its path from the guest root, without symlinks, `.` or `..` (`/` for the root).
    pub path: Vec<u8>,
}

/// Resolve `path` inside the guest. Relative paths start at the root too.
///
/// Symlinks in the middle are always followed, the last one only when
/// `follow_last`; absolute targets restart at the guest root and `..` never
/// climbs above it, so no path can leave the guest.
pub fn resolve(fs: &dyn FsView, path: &[u8], follow_last: bool) -> Result<Resolved> {
    if path.len() > MAX_PATH {
        return Err(Error::Invalid(format!(
            "path longer than {MAX_PATH} bytes: {}...",
            escape(&path[..64])
        )));
    }
    let root = fs.root();
    // The chain of directories from the root to where we are, with their names.
    let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(root, Vec::new())];
    let mut queue: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
    let mut links = 0usize;
    let mut pending_len = path.len();

    while let Some(name) = queue.pop_front() {
        if name == b"." {
            continue;
        }
        if name == b".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let dir = stack.last().map_or(root, |(n, _)| *n);
        let dir_meta = fs.metadata(dir)?;
        if dir_meta.file_type != FileType::Directory {
            return Err(Error::Invalid(format!(
                "{}: not a directory",
                escape(&join_names(&stack))
            )));
        }
        let Some(child) = fs.lookup(dir, &name)? else {
            let mut shown = join_names(&stack);
            push_name(&mut shown, &name);
            return Err(Error::NotFound(escape(&shown)));
        };
        let is_last = queue.is_empty();
        let meta = fs.metadata(child)?;
        if meta.file_type == FileType::Symlink && (!is_last || follow_last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Error::Invalid(format!(
                    "{}: too many levels of symbolic links (more than {MAX_SYMLINKS})",
                    escape(path)
                )));
            }
            let target = fs.read_link(child)?;
            if target.is_empty() {
                return Err(Error::NotFound(format!(
                    "{} (empty symlink)",
                    escape(&name)
                )));
            }
            pending_len = pending_len.saturating_add(target.len());
            if pending_len > MAX_PATH * (MAX_SYMLINKS + 1) {
                return Err(Error::Invalid(format!(
                    "{}: symlink targets too long",
                    escape(path)
                )));
            }
            if target.first() == Some(&b'/') {
                stack.truncate(1);
            }
            for c in components(&target).rev() {
                queue.push_front(c.to_vec());
            }
            continue;
        }
        stack.push((child, name));
    }
    let node = stack.last().map(|(n, _)| *n).unwrap_or(root);
    Ok(Resolved {
        node,
        path: join_names(&stack),
    })
}

/// The non-empty components of a path.
pub fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn join_names(stack: &[(NodeId, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, name) in stack.iter().skip(1) {
        push_name(&mut out, name);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn push_name(out: &mut Vec<u8>, name: &[u8]) {
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(name);
}

/// `dir/name` for an absolute guest directory path.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = dir.to_vec();
    if out.is_empty() {
        out.push(b'/');
    }
    push_name(&mut out, name);
    out
}

/// The parent directory and last component of a path (`/a/b` → (`/a`, `b`)).
/// The root has no last component.
pub fn split_last(path: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let comps: Vec<&[u8]> = components(path).collect();
    match comps.split_last() {
        None => (b"/".to_vec(), None),
        Some((last, parents)) => {
            let mut dir = Vec::new();
            for c in parents {
                push_name(&mut dir, c);
            }
            if dir.is_empty() {
                dir.push(b'/');
            }
            (dir, Some(last.to_vec()))
        }
    }
}

/// Whether `name` is safe to create as one entry of a host directory:
/// not empty, not `.` or `..`, no `/` and no NUL.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{DirEntry, FileExtent, FsStatus, Metadata, Timestamp, Xattr};
    use std::collections::HashMap;

    /// A node of the test filesystem: type, entries, symlink target.
    type MemNode = (FileType, Vec<(Vec<u8>, u64)>, Vec<u8>);
    /// How tests describe a node: inode, type, entries, symlink target.
    type Spec<'a> = (u64, FileType, &'a [(&'a str, u64)], &'a str);

    /// A tiny in-memory filesystem for resolver tests.
    struct Mem {
        nodes: HashMap<u64, MemNode>,
    }

    impl Mem {
        fn new(spec: &[Spec<'_>]) -> Mem {
            Mem {
                nodes: spec
                    .iter()
                    .map(|(ino, t, entries, target)| {
                        (
                            *ino,
                            (
                                *t,
                                entries
                                    .iter()
                                    .map(|(n, i)| (n.as_bytes().to_vec(), *i))
                                    .collect(),
                                target.as_bytes().to_vec(),
                            ),
                        )
                    })
                    .collect(),
            }
        }
    }

    impl FsView for Mem {
        fn status(&self) -> FsStatus {
            FsStatus::default()
        }
        fn root(&self) -> NodeId {
            NodeId(2)
        }
        fn metadata(&self, node: NodeId) -> Result<Metadata> {
            let (t, _, target) = self.nodes.get(&node.0).ok_or(Error::NotFound("x".into()))?;
            Ok(Metadata {
                node,
                ino: node.0,
                file_type: *t,
                perm: 0o755,
                uid: 0,
                gid: 0,
                size: target.len() as u64,
                nlink: 1,
                atime: Timestamp::default(),
                mtime: Timestamp::default(),
                ctime: Timestamp::default(),
                crtime: None,
                rdev: (0, 0),
                allocated: None,
            })
        }
        fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
            let (_, entries, _) = self.nodes.get(&dir.0).ok_or(Error::NotFound("x".into()))?;
            Ok(entries
                .iter()
                .map(|(n, i)| DirEntry {
                    name: n.clone(),
                    node: NodeId(*i),
                    file_type: None,
                })
                .collect())
        }
        fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
            Ok(self.nodes[&node.0].2.clone())
        }
        fn read_at(&self, _: NodeId, _: u64, _: &mut [u8]) -> Result<usize> {
            Ok(0)
        }
        fn extents(&self, _: NodeId) -> Result<Vec<FileExtent>> {
            Ok(vec![])
        }
        fn xattrs(&self, _: NodeId) -> Result<Vec<Xattr>> {
            Ok(vec![])
        }
    }

    fn guest() -> Mem {
        use FileType::*;
        Mem::new(&[
            (
                2,
                Directory,
                &[("lib64", 10), ("usr", 11), ("etc", 14), ("loop", 15)],
                "",
            ),
            (10, Symlink, &[], "usr/lib64"),
            (11, Directory, &[("lib64", 12)], ""),
            (
                12,
                Directory,
                &[("libc.so.6", 13), ("up", 16), ("shadow", 17)],
                "",
            ),
            (13, Regular, &[], ""),
            (14, Directory, &[], ""),
            (15, Symlink, &[], "/loop"),
            (16, Symlink, &[], "../../../../../.."),
            (17, Symlink, &[], "/etc/shadow"),
        ])
    }

    #[test]
    fn follows_links_inside_the_guest() {
        let fs = guest();
        let r = resolve(&fs, b"/lib64/libc.so.6", true).unwrap();
        assert_eq!(r.node, NodeId(13));
        assert_eq!(r.path, b"/usr/lib64/libc.so.6");
        // The last component is not followed unless asked.
        assert_eq!(resolve(&fs, b"/lib64", false).unwrap().node, NodeId(10));
        // `..` above the root stays at the guest root.
        let up = resolve(&fs, b"/lib64/up", true).unwrap();
        assert_eq!(up.node, NodeId(2));
        assert_eq!(up.path, b"/");
        // An absolute target resolves under the guest root.
        assert!(matches!(
            resolve(&fs, b"/lib64/shadow", true),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn loops_end_with_an_error() {
        let fs = guest();
        let e = resolve(&fs, b"/loop", true).unwrap_err().to_string();
        assert!(e.contains("too many levels"), "{e}");
    }

    #[test]
    fn splits_and_checks_names() {
        assert_eq!(
            split_last(b"/a/b/c"),
            (b"/a/b".to_vec(), Some(b"c".to_vec()))
        );
        assert_eq!(split_last(b"/"), (b"/".to_vec(), None));
        assert_eq!(join(b"/", b"x"), b"/x");
        assert!(!is_safe_name(b".."));
        assert!(!is_safe_name(b"a/b"));
        assert!(is_safe_name(b"\x1b[31m"));
    }
}
