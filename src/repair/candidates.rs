//! Which target a symlink should have, and why.
//!
//! For a link named like a shared library (`libc.so.6`, `ld-linux-x86-64.so.2`)
//! the candidates are ELF shared objects whose `DT_SONAME` equals the link's
//! name and whose class and machine match their neighbours: first in the
//! link's own directory, then in the guest's library directories (the
//! standard ones and those in `/etc/ld.so.conf*`). They are ranked: same
//! directory first, then the version that matches the guest's other core
//! libraries (`ld-2.12.so` next to `libc-2.12.so`), and the current target
//! last. The target is written relative, as `ldconfig` does, when it is in
//! the same directory. Other links get name-based guesses, marked as such.

use std::collections::HashMap;
use std::sync::Mutex;

use super::signs::{LIBRARY_DIRS, Neighbours, is_library_name, is_multiarch};
use crate::elf::{self, ElfInfo, compare_versions};
use crate::error::{Error, Result};
use crate::fs::{FileType, FsView, Metadata, NodeId, path};
use crate::text::{escape, format_date};

/// The shared objects glibc itself ships: their versions must agree with ld.so's.
const GLIBC_SONAMES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libnsl.so.1",
    "libutil.so.1",
    "libcrypt.so.1",
    "libanl.so.1",
    "libBrokenLocale.so.1",
    "libthread_db.so.1",
    "libmvec.so.1",
    "libcidn.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux.so.2",
    "ld-linux-aarch64.so.1",
    "ld-linux-armhf.so.3",
    "ld64.so.2",
    "ld64.so.1",
];

/// At most this many files are looked at in one directory.
const MAX_DIR_SCAN: usize = 20_000;

/// Whether a SONAME belongs to glibc itself.
pub fn is_glibc_soname(name: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    GLIBC_SONAMES.contains(&s) || (s.starts_with("libnss_") && s.ends_with(".so.2"))
}

/// The version in a versioned glibc file name: `libc-2.12.so` → `2.12`.
pub fn version_from_name(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    let base = s.strip_suffix(".so")?;
    let (_, v) = base.rsplit_once('-')?;
    (v.contains('.')
        && v.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
    .then(|| v.to_string())
}

/// A proposed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What the link would contain (`libc-2.12.so`, or an absolute guest path).
    pub target: Vec<u8>,
    /// Absolute guest path of the candidate file.
    pub path: Vec<u8>,
    /// Why it is proposed.
    pub reasons: Vec<String>,
    /// Higher is better.
    pub score: i64,
    /// A name-based guess rather than an ELF match.
    pub guess: bool,
    /// It is what the link points at now.
    pub current: bool,
}

/// What vmrescue found about one symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The link's absolute guest path (its directory resolved).
    pub link: Vec<u8>,
    /// The link's node.
    pub node: NodeId,
    /// Its metadata.
    pub meta: Metadata,
    /// What it points at now.
    pub target: Vec<u8>,
    /// Whether its name is a shared library's.
    pub library: bool,
    /// What is wrong with the current target.
    pub problems: Vec<String>,
    /// Proposed targets, best first.
    pub candidates: Vec<Candidate>,
}

impl Analysis {
    /// The best proposal that is not the current target.
    pub fn proposal(&self) -> Option<&Candidate> {
        self.candidates.iter().find(|c| !c.current)
    }
}

/// Facts about a guest gathered once and shared by many analyses.
pub struct Guest<'a> {
    fs: &'a dyn FsView,
    /// Canonical library directories that exist in the guest.
    pub lib_dirs: Vec<Vec<u8>>,
    /// ld.so's file name and glibc version (`ld-2.12.so`, `2.12`).
    pub ld_so: Option<(Vec<u8>, String)>,
    elf_cache: Mutex<HashMap<NodeId, Option<ElfInfo>>>,
    dir_cache: Mutex<HashMap<Vec<u8>, DirFacts>>,
}

/// What a directory's files look like.
#[derive(Debug, Clone, Default)]
struct DirFacts {
    /// The (class, machine) most shared objects there have.
    arch: Option<(u8, u16)>,
    /// The ctimes of its entries, to compare one with the others.
    neighbours: Neighbours,
}

impl<'a> Guest<'a> {
    /// Gather the library directories and ld.so's version.
    pub fn new(fs: &'a dyn FsView) -> Guest<'a> {
        let mut g = Guest {
            fs,
            lib_dirs: Vec::new(),
            ld_so: None,
            elf_cache: Mutex::new(HashMap::new()),
            dir_cache: Mutex::new(HashMap::new()),
        };
        // The standard directories, the multiarch ones inside them
        // (`/usr/lib/x86_64-linux-gnu`), and those of /etc/ld.so.conf*.
        let mut wanted: Vec<Vec<u8>> = Vec::new();
        for d in LIBRARY_DIRS {
            wanted.push(d.as_bytes().to_vec());
            if let Ok(r) = path::resolve(fs, d.as_bytes(), true)
                && let Ok(entries) = fs.read_dir(r.node)
            {
                wanted.extend(
                    entries
                        .iter()
                        .take(MAX_DIR_SCAN)
                        .filter(|e| is_multiarch(&e.name))
                        .map(|e| path::join(d.as_bytes(), &e.name)),
                );
            }
        }
        wanted.extend(ld_so_conf_dirs(fs));
        for d in wanted {
            if let Ok(r) = path::resolve(fs, &d, true)
                && fs
                    .metadata(r.node)
                    .is_ok_and(|m| m.file_type == FileType::Directory)
                && !g.lib_dirs.contains(&r.path)
            {
                g.lib_dirs.push(r.path);
            }
        }
        g.ld_so = g.find_ld_so();
        g
    }

    /// The filesystem.
    pub fn fs(&self) -> &'a dyn FsView {
        self.fs
    }

    fn find_ld_so(&self) -> Option<(Vec<u8>, String)> {
        for dir in &self.lib_dirs {
            let Ok(r) = path::resolve(self.fs, dir, true) else {
                continue;
            };
            let Ok(entries) = self.fs.read_dir(r.node) else {
                continue;
            };
            for e in entries.iter().take(MAX_DIR_SCAN) {
                let n = &e.name;
                if !(n.starts_with(b"ld-linux") || n.starts_with(b"ld64.so")) {
                    continue;
                }
                let p = path::join(dir, n);
                let Ok(file) = path::resolve(self.fs, &p, true) else {
                    continue;
                };
                let (_, Some(fname)) = path::split_last(&file.path) else {
                    continue;
                };
                let version = version_from_name(&fname)
                    .or_else(|| self.elf(file.node).and_then(|i| i.glibc_version()));
                if let Some(v) = version {
                    return Some((fname, v));
                }
            }
        }
        None
    }

    /// ELF facts of a node, cached.
    pub fn elf(&self, node: NodeId) -> Option<ElfInfo> {
        if let Some(v) = lock(&self.elf_cache).get(&node) {
            return v.clone();
        }
        let info = elf::read(self.fs, node);
        lock(&self.elf_cache).insert(node, info.clone());
        info
    }

    fn dir_facts(&self, dir: &[u8]) -> DirFacts {
        if let Some(f) = lock(&self.dir_cache).get(dir) {
            return f.clone();
        }
        let mut facts = DirFacts::default();
        if let Ok(r) = path::resolve(self.fs, dir, true)
            && let Ok(entries) = self.fs.read_dir(r.node)
        {
            let mut arches: HashMap<(u8, u16), usize> = HashMap::new();
            let mut ctimes = Vec::new();
            let mut elf_reads = 0;
            for e in entries.iter().take(MAX_DIR_SCAN) {
                let Ok(m) = self.fs.metadata(e.node) else {
                    continue;
                };
                ctimes.push(m.ctime.sec);
                if m.file_type == FileType::Regular && elf_reads < 64 && contains(&e.name, b".so") {
                    elf_reads += 1;
                    if let Some(i) = self.elf(e.node) {
                        *arches.entry((i.class, i.machine)).or_default() += 1;
                    }
                }
            }
            facts.arch = arches.into_iter().max_by_key(|(_, n)| *n).map(|(a, _)| a);
            facts.neighbours = Neighbours::new(ctimes);
        }
        lock(&self.dir_cache).insert(dir.to_vec(), facts.clone());
        facts
    }

    fn is_lib_dir(&self, dir: &[u8]) -> bool {
        self.lib_dirs.iter().any(|d| d == dir)
    }

    /// Analyse the symlink at `link_path` (absolute or relative to the guest root).
    pub fn analyze(&self, link_path: &[u8]) -> Result<Analysis> {
        let fs = self.fs;
        let r = path::resolve(fs, link_path, false)?;
        let meta = fs.metadata(r.node)?;
        if meta.file_type != FileType::Symlink {
            return Err(Error::Invalid(format!(
                "{}: not a symbolic link",
                escape(&r.path)
            )));
        }
        let target = fs.read_link(r.node)?;
        let (dir, Some(name)) = path::split_last(&r.path) else {
            return Err(Error::Invalid("the guest root is not a symlink".into()));
        };
        let library = is_library_name(&name);
        let facts = self.dir_facts(&dir);
        let mut problems = Vec::new();

        // The current target.
        let resolved = path::resolve(fs, &r.path, true);
        let current = match &resolved {
            Ok(t) => Some(t.clone()),
            Err(_) => {
                problems.push(format!(
                    "dangling: {} does not exist in the guest",
                    escape(&target)
                ));
                None
            }
        };
        if let Some(t) = &current
            && library
        {
            let (tdir, tname) = path::split_last(&t.path);
            if !self.is_lib_dir(&tdir) {
                problems.push(format!(
                    "points outside the library directories ({})",
                    escape(&tdir)
                ));
            }
            match fs.metadata(t.node).map(|m| m.file_type) {
                Ok(FileType::Regular) => match self.elf(t.node) {
                    None => problems.push("the target is not an ELF file".into()),
                    Some(info) => {
                        match &info.soname {
                            Some(s) if *s == name => {}
                            Some(s) => problems.push(format!(
                                "the target's SONAME is {}, not {}",
                                escape(s),
                                escape(&name)
                            )),
                            None => problems.push("the target has no SONAME".into()),
                        }
                        if let Some((class, machine)) = facts.arch
                            && (info.class, info.machine) != (class, machine)
                        {
                            let want = ElfInfo {
                                class,
                                machine,
                                elf_type: 3,
                                soname: None,
                                versions: Vec::new(),
                                needed: Vec::new(),
                                big_endian: false,
                                ..ElfInfo::default()
                            };
                            problems.push(format!(
                                "the target is {} but its neighbours are {}",
                                info.describe(),
                                want.describe()
                            ));
                        }
                        if is_glibc_soname(&name)
                            && let Some((ld_name, ld_version)) = &self.ld_so
                        {
                            let v = tname
                                .as_deref()
                                .and_then(version_from_name)
                                .or_else(|| info.glibc_version());
                            if let Some(v) = v
                                && v != *ld_version
                            {
                                problems.push(format!(
                                    "the target is glibc {v} but ld.so is {} (glibc {ld_version})",
                                    escape(ld_name)
                                ));
                            }
                        }
                    }
                },
                Ok(t) => problems.push(format!("the target is a {t:?}, not a file").to_lowercase()),
                Err(e) => problems.push(format!("the target cannot be read: {e}")),
            }
        }
        if !problems.is_empty()
            && let Some((threshold, median)) = facts.neighbours.threshold_without(meta.ctime.sec)
            && meta.ctime.sec > threshold
        {
            problems.push(format!(
                "changed on {} while its neighbours date from {}",
                format_date(meta.ctime.sec),
                format_date(median)
            ));
        }

        let mut candidates = if library {
            self.library_candidates(&dir, &name, facts.arch, current.as_ref().map(|c| c.node))
        } else {
            self.name_guesses(&dir, &name, current.as_ref().map(|c| c.node))
        };
        candidates.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then_with(|| version_order(&b.path, &a.path))
        });
        Ok(Analysis {
            link: r.path,
            node: r.node,
            meta,
            target,
            library,
            problems,
            candidates,
        })
    }

    /// ELF shared objects whose SONAME is `name`.
    fn library_candidates(
        &self,
        dir: &[u8],
        name: &[u8],
        arch: Option<(u8, u16)>,
        current: Option<NodeId>,
    ) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        let stem: &[u8] = name.split(|&c| c == b'.').next().unwrap_or(name);
        let mut dirs: Vec<Vec<u8>> = vec![dir.to_vec()];
        for d in &self.lib_dirs {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        for (i, d) in dirs.iter().enumerate() {
            let same_dir = i == 0;
            let Ok(r) = path::resolve(self.fs, d, true) else {
                continue;
            };
            let Ok(entries) = self.fs.read_dir(r.node) else {
                continue;
            };
            for e in entries.iter().take(MAX_DIR_SCAN) {
                if e.name == name || !contains(&e.name, b".so") {
                    continue;
                }
                // Outside the link's own directory, only files named like the library.
                let named_like = e.name.starts_with(stem)
                    || (stem.starts_with(b"ld") && e.name.starts_with(b"ld-"));
                if !(same_dir || named_like) {
                    continue;
                }
                let Ok(m) = self.fs.metadata(e.node) else {
                    continue;
                };
                if m.file_type != FileType::Regular {
                    continue;
                }
                let Some(info) = self.elf(e.node) else {
                    continue;
                };
                if info.soname.as_deref() != Some(name) {
                    continue;
                }
                if let Some(a) = arch
                    && (info.class, info.machine) != a
                {
                    continue;
                }
                if out.iter().any(|c| c.path == path::join(d, &e.name)) {
                    continue;
                }
                let mut reasons = vec![format!("SONAME {} matches", escape(name))];
                let mut score = 0i64;
                if same_dir {
                    score += 100;
                    reasons.push("same directory".into());
                } else {
                    score += 20;
                    reasons.push(format!("in the library directory {}", escape(d)));
                }
                if is_glibc_soname(name)
                    && let Some((ld_name, ld_version)) = &self.ld_so
                {
                    let v = version_from_name(&e.name).or_else(|| info.glibc_version());
                    if v.as_deref() == Some(ld_version.as_str()) {
                        score += 50;
                        reasons.push(format!("matches {}", escape(ld_name)));
                    }
                }
                let is_current = current == Some(e.node);
                if is_current {
                    score -= 30;
                    reasons.push("is the current target".into());
                }
                out.push(Candidate {
                    target: if same_dir {
                        e.name.clone()
                    } else {
                        path::join(d, &e.name)
                    },
                    path: path::join(d, &e.name),
                    reasons,
                    score,
                    guess: false,
                    current: is_current,
                });
            }
        }
        out
    }

    /// Files in the same directory whose name starts with the link's name (`python` → `python2.6`).
    fn name_guesses(&self, dir: &[u8], name: &[u8], current: Option<NodeId>) -> Vec<Candidate> {
        let mut out = Vec::new();
        let Ok(r) = path::resolve(self.fs, dir, true) else {
            return out;
        };
        let Ok(entries) = self.fs.read_dir(r.node) else {
            return out;
        };
        for e in entries.iter().take(MAX_DIR_SCAN) {
            if e.name == name || !e.name.starts_with(name) {
                continue;
            }
            let Ok(m) = self.fs.metadata(e.node) else {
                continue;
            };
            if m.file_type != FileType::Regular {
                continue;
            }
            let is_current = current == Some(e.node);
            let mut reasons = vec![format!(
                "name starts with \"{}\" (a guess: not an ELF SONAME match)",
                escape(name)
            )];
            if is_current {
                reasons.push("is the current target".into());
            }
            out.push(Candidate {
                target: e.name.clone(),
                path: path::join(dir, &e.name),
                reasons,
                score: if is_current { -30 } else { 10 },
                guess: true,
                current: is_current,
            });
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Order paths by the version numbers in their names (for equal scores: newest first).
fn version_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let digits = |p: &[u8]| -> String {
        String::from_utf8_lossy(p)
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            .collect::<String>()
            .trim_matches('.')
            .to_string()
    };
    compare_versions(&digits(a), &digits(b))
}

/// Directories named in `/etc/ld.so.conf` and the files it includes.
fn ld_so_conf_dirs(fs: &dyn FsView) -> Vec<Vec<u8>> {
    let mut dirs = Vec::new();
    let mut queue: Vec<Vec<u8>> = vec![b"/etc/ld.so.conf".to_vec()];
    let mut seen = 0;
    while let Some(file) = queue.pop() {
        seen += 1;
        if seen > 256 {
            break;
        }
        let Some(text) = crate::fs::read_small(fs, &file, 64 * 1024) else {
            continue;
        };
        for line in String::from_utf8_lossy(&text).lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with("hwcap") {
                continue;
            }
            if let Some(pattern) = line.strip_prefix("include") {
                for pat in pattern.split_whitespace() {
                    queue.extend(glob(fs, pat.as_bytes()));
                }
            } else if line.starts_with('/') {
                dirs.push(line.as_bytes().to_vec());
            }
        }
    }
    dirs
}

/// Expand a `dir/prefix*suffix` pattern (one `*` in the last component), as ld.so.conf includes use.
fn glob(fs: &dyn FsView, pattern: &[u8]) -> Vec<Vec<u8>> {
    let (dir, Some(last)) = path::split_last(pattern) else {
        return Vec::new();
    };
    let Some(star) = last.iter().position(|&c| c == b'*') else {
        return vec![pattern.to_vec()];
    };
    let (prefix, suffix) = (&last[..star], &last[star + 1..]);
    let Ok(r) = path::resolve(fs, &dir, true) else {
        return Vec::new();
    };
    let Ok(entries) = fs.read_dir(r.node) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<u8>> = entries
        .iter()
        .filter(|e| {
            e.name.starts_with(prefix)
                && e.name.ends_with(suffix)
                && e.name.len() >= prefix.len() + suffix.len()
        })
        .map(|e| path::join(&dir, &e.name))
        .collect();
    out.sort();
    out.truncate(256);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert!(is_library_name(b"libc.so.6"));
        assert!(is_library_name(b"ld-linux-x86-64.so.2"));
        assert!(is_library_name(b"libz.so.1"));
        assert!(is_library_name(b"libfoo.so"));
        assert!(!is_library_name(b"python"));
        assert!(!is_library_name(b"libc-2.12.so.bak"));
        assert!(is_glibc_soname(b"libc.so.6"));
        assert!(is_glibc_soname(b"libnss_files.so.2"));
        assert!(!is_glibc_soname(b"libz.so.1"));
        assert_eq!(version_from_name(b"libc-2.12.so").as_deref(), Some("2.12"));
        assert_eq!(version_from_name(b"ld-2.12.so").as_deref(), Some("2.12"));
        assert_eq!(version_from_name(b"libz.so.1.2.3"), None);
    }
}
