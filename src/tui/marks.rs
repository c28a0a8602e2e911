//! Marked files, across directories and volumes.

use std::collections::BTreeMap;

use crate::fs::FileType;
use crate::tui::tree::Tree;

/// What is remembered about a marked path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Its type when marked.
    pub file_type: FileType,
    /// Its size when marked (directories count 0: their contents are counted by the copy plan).
    pub size: u64,
}

/// The marks: (tree, absolute guest path) → what it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    map: BTreeMap<(Tree, Vec<u8>), Mark>,
}

impl Marks {
    /// Whether `path` on `volume` is marked.
    pub fn contains(&self, tree: Tree, path: &[u8]) -> bool {
        self.map.contains_key(&(tree, path.to_vec()))
    }

    /// Mark or unmark; returns whether it is marked now.
    pub fn toggle(&mut self, tree: Tree, path: Vec<u8>, mark: Mark) -> bool {
        let key = (tree, path);
        if self.map.remove(&key).is_some() {
            false
        } else {
            self.map.insert(key, mark);
            true
        }
    }

    /// Mark (no change when already marked).
    pub fn insert(&mut self, tree: Tree, path: Vec<u8>, mark: Mark) {
        self.map.insert((tree, path), mark);
    }

    /// Forget every mark; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.map.len();
        self.map.clear();
        n
    }

    /// How many paths are marked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is marked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Total size of the marked files (directories not included).
    pub fn total_size(&self) -> u64 {
        self.map
            .values()
            .fold(0u64, |a, m| a.saturating_add(m.size))
    }

    /// How many marked paths are directories.
    pub fn dirs(&self) -> usize {
        self.map
            .values()
            .filter(|m| m.file_type == FileType::Directory)
            .count()
    }

    /// The trees that have marks.
    pub fn trees(&self) -> Vec<Tree> {
        let mut v: Vec<Tree> = self.map.keys().map(|(v, _)| *v).collect();
        v.dedup();
        v
    }

    /// The marked paths of one volume, in order, without those inside a
    /// marked directory (copying the directory copies them).
    pub fn paths(&self, tree: Tree) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for (v, p) in self.map.keys() {
            if *v != tree {
                continue;
            }
            let inside = out.iter().any(|d| {
                p.len() > d.len()
                    && p.starts_with(d)
                    && (d.as_slice() == b"/" || p[d.len()] == b'/')
            });
            if !inside {
                out.push(p.clone());
            }
        }
        out
    }

    /// How many marks one volume has.
    pub fn count_in(&self, tree: Tree) -> usize {
        self.map.keys().filter(|(v, _)| *v == tree).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::VolumeId;

    #[test]
    fn paths_inside_marked_dirs_are_not_repeated() {
        let mut m = Marks::default();
        let d = Mark {
            file_type: FileType::Directory,
            size: 0,
        };
        let f = Mark {
            file_type: FileType::Regular,
            size: 10,
        };
        m.insert(Tree::Volume(VolumeId(1)), b"/var/lib/mysql".to_vec(), d);
        m.insert(
            Tree::Volume(VolumeId(1)),
            b"/var/lib/mysql/ibdata1".to_vec(),
            f,
        );
        m.insert(Tree::Volume(VolumeId(1)), b"/var/lib/mysqlx".to_vec(), f);
        m.insert(Tree::Volume(VolumeId(2)), b"/etc/fstab".to_vec(), f);
        assert_eq!(
            m.paths(Tree::Volume(VolumeId(1))),
            vec![b"/var/lib/mysql".to_vec(), b"/var/lib/mysqlx".to_vec()]
        );
        assert_eq!(
            m.trees(),
            vec![Tree::Volume(VolumeId(1)), Tree::Volume(VolumeId(2))]
        );
        assert_eq!(m.total_size(), 30);
        assert_eq!(m.dirs(), 1);
        assert!(!m.toggle(Tree::Volume(VolumeId(2)), b"/etc/fstab".to_vec(), f));
        assert_eq!(m.len(), 3);
    }
}
