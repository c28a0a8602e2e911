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

use super::signs::{
    LIBRARY_DIRS, Neighbours, is_library_name, is_multiarch, is_program_dir, is_runtime_path,
    lexical,
};
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

/// The NSS modules glibc itself ships (`libnss_files.so.2`); others
/// (`libnss_sss.so.2` of SSSD, `libnss_ldap`) have releases of their own.
const GLIBC_NSS_MODULES: &[&str] = &["files", "dns", "compat", "db", "hesiod", "nis", "nisplus"];

/// At most this many files are looked at in one directory.
const MAX_DIR_SCAN: usize = 20_000;

/// Whether a SONAME belongs to glibc itself.
pub fn is_glibc_soname(name: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    GLIBC_SONAMES.contains(&s)
        || s.strip_prefix("libnss_")
            .and_then(|m| m.strip_suffix(".so.2"))
            .is_some_and(|m| GLIBC_NSS_MODULES.contains(&m))
}

/// Whether a SONAME is glibc's dynamic loader (`ld-linux-x86-64.so.2`, `ld64.so.2`).
pub fn is_glibc_loader(name: &[u8]) -> bool {
    is_glibc_soname(name) && name.starts_with(b"ld")
}

/// The base name of a library name or SONAME, what precedes `.so`
/// (`libbz2.so.1.0` → `libbz2`): a link and its target's SONAME name the
/// same library when their bases are equal.
pub fn library_base(name: &[u8]) -> &[u8] {
    match name.windows(3).position(|w| w == b".so") {
        Some(i) => &name[..i],
        None => name,
    }
}

/// The glibc release in the name of a glibc file for `soname`, as glibc
/// before 2.34 named them: `libc-2.12.so` for `libc.so.6`, `ld-2.12.so`
/// for the loader. Other names give `None` (`libcrypt.so.1.1.0`).
pub fn release_from_name(file: &[u8], soname: &[u8]) -> Option<String> {
    if !is_glibc_soname(soname) {
        return None;
    }
    let v = version_from_name(file)?;
    let stem = file.strip_suffix(b".so")?;
    let stem = &stem[..stem.len().checked_sub(v.len() + 1)?];
    let base = library_base(soname);
    (stem == base || (is_glibc_loader(soname) && stem == b"ld")).then_some(v)
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
    /// What is wrong with the current target: the hard reasons first, then
    /// the soft signs that back them (outside the library directories,
    /// changed long after its neighbours). Empty when nothing hard is
    /// wrong, whatever the soft signs.
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
    /// ld.so's file name and glibc release (`ld-2.12.so`, `2.12`).
    pub ld_so: Option<(Vec<u8>, String)>,
    /// The directory ld.so lives in (canonical): candidates are searched
    /// there too.
    pub loader_dir: Option<Vec<u8>>,
    elf_cache: Mutex<HashMap<NodeId, Option<ElfInfo>>>,
    release_cache: Mutex<HashMap<NodeId, Option<String>>>,
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
            loader_dir: None,
            elf_cache: Mutex::new(HashMap::new()),
            release_cache: Mutex::new(HashMap::new()),
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
        if let Some((dir, name, version)) = g.find_ld_so() {
            g.loader_dir = Some(dir);
            g.ld_so = Some((name, version));
        }
        g
    }

    /// The filesystem.
    pub fn fs(&self) -> &'a dyn FsView {
        self.fs
    }

    /// The guest's loader: its directory, file name and glibc release.
    fn find_ld_so(&self) -> Option<(Vec<u8>, Vec<u8>, String)> {
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
                let (fdir, Some(fname)) = path::split_last(&file.path) else {
                    continue;
                };
                if let Some(v) = self.glibc_release(file.node, &fname, n) {
                    return Some((fdir, fname, v));
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

    /// The glibc release of a file of glibc that provides `soname` (its
    /// file name is `file`): from a versioned name (`libc-2.12.so`), else,
    /// for `libc.so.6` and the loader only, from the release string in the
    /// file. Never from the highest `GLIBC_` version a library defines
    /// (libxcrypt's `libcrypt.so.1` defines `GLIBC_2.2.5`; ld.so 2.36's
    /// highest is `GLIBC_2.35`). `None` when not known.
    pub fn glibc_release(&self, node: NodeId, file: &[u8], soname: &[u8]) -> Option<String> {
        if let Some(v) = release_from_name(file, soname) {
            return Some(v);
        }
        if !(soname == b"libc.so.6" || is_glibc_loader(soname)) {
            return None;
        }
        if let Some(v) = lock(&self.release_cache).get(&node) {
            return v.clone();
        }
        let v = crate::elf::release_version(self.fs, node);
        lock(&self.release_cache).insert(node, v.clone());
        v
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
        // In a program directory a library-like name (`/usr/bin/ld.so`) is
        // a command, not a library link: only a dangling target is wrong.
        let library = is_library_name(&name) && !is_program_dir(&dir);
        let facts = self.dir_facts(&dir);
        // Hard reasons: the link is wrong. Soft signs: evidence only.
        let mut problems = Vec::new();
        let mut signs = Vec::new();

        // The current target.
        let resolved = path::resolve(fs, &r.path, true);
        let current = match &resolved {
            Ok(t) => Some(t.clone()),
            Err(_) => {
                // A link into /run or /dev waits for the running guest.
                if !is_runtime_path(&lexical(&dir, &target)) {
                    problems.push(format!(
                        "dangling: {} does not exist in the guest",
                        escape(&target)
                    ));
                }
                None
            }
        };
        if let Some(t) = &current
            && library
        {
            let (hard, soft) = self.target_signs(&name, &facts, t);
            problems.extend(hard);
            signs.extend(soft);
        }
        if !problems.is_empty() {
            if let Some((threshold, median)) = facts.neighbours.threshold_without(meta.ctime.sec)
                && meta.ctime.sec > threshold
            {
                signs.push(format!(
                    "changed on {} while its neighbours date from {}",
                    format_date(meta.ctime.sec),
                    format_date(median)
                ));
            }
            problems.extend(signs);
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

    /// What is wrong with the file a library link named `name` resolves
    /// to (`t`), in a directory whose files look like `facts`: the hard
    /// reasons, and the soft signs (evidence only).
    fn target_signs(
        &self,
        name: &[u8],
        facts: &DirFacts,
        t: &path::Resolved,
    ) -> (Vec<String>, Vec<String>) {
        let fs = self.fs;
        let mut hard = Vec::new();
        let mut soft = Vec::new();
        let (tdir, tname) = path::split_last(&t.path);
        if !self.is_lib_dir(&tdir) {
            soft.push(format!(
                "points outside the library directories ({})",
                escape(&tdir)
            ));
        }
        match fs.metadata(t.node).map(|m| m.file_type) {
            Ok(FileType::Regular) => match self.elf(t.node) {
                Some(info) if info.truncated => hard.push(format!(
                    "the target is truncated: {} bytes, shorter than its segments",
                    fs.metadata(t.node).map(|m| m.size).unwrap_or(0)
                )),
                None => hard.push("the target is not an ELF file".into()),
                Some(info) => {
                    match &info.soname {
                        Some(s) if library_base(s) != library_base(name) => hard.push(format!(
                            "the target's SONAME is {}: another library than {}",
                            escape(s),
                            escape(name)
                        )),
                        Some(_) => {}
                        None => soft.push("the target has no SONAME".into()),
                    }
                    if let Some((class, machine)) = facts.arch
                        && (info.class, info.machine) != (class, machine)
                    {
                        let want = ElfInfo {
                            class,
                            machine,
                            elf_type: 3,
                            ..ElfInfo::default()
                        };
                        hard.push(format!(
                            "the target is {} but its neighbours are {}",
                            info.describe(),
                            want.describe()
                        ));
                    }
                    if let Some((ld_name, ld_version)) = &self.ld_so
                        && let Some(v) = tname
                            .as_deref()
                            .and_then(|f| self.glibc_release(t.node, f, name))
                        && v != *ld_version
                    {
                        hard.push(format!(
                            "the target is glibc {v} but ld.so is {} (glibc {ld_version})",
                            escape(ld_name)
                        ));
                    }
                }
            },
            Ok(t) => hard.push(format!("the target is a {t:?}, not a file").to_lowercase()),
            Err(e) => hard.push(format!("the target cannot be read: {e}")),
        }
        (hard, soft)
    }

    /// The hard reasons a shared-library link at `link_path` is wrong
    /// because of what its existing target is (not ELF, truncated, another
    /// class or machine, another library's SONAME, another glibc release
    /// than ld.so): what the TUI's flags add to their own signs. Empty for
    /// a link that is not a library link, dangles or cannot be read.
    pub fn target_problems(&self, link_path: &[u8]) -> Vec<String> {
        let Ok(r) = path::resolve(self.fs, link_path, false) else {
            return Vec::new();
        };
        let (dir, Some(name)) = path::split_last(&r.path) else {
            return Vec::new();
        };
        if !is_library_name(&name) || is_program_dir(&dir) {
            return Vec::new();
        }
        let Ok(t) = path::resolve(self.fs, &r.path, true) else {
            return Vec::new();
        };
        self.target_signs(&name, &self.dir_facts(&dir), &t).0
    }

    /// ELF shared objects whose SONAME is `name`, in the link's directory
    /// and where ld.so would search: the library directories (multiarch and
    /// `ld.so.conf` ones included) and the loader's directory.
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
        for d in self.lib_dirs.iter().chain(self.loader_dir.as_ref()) {
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
                // The link itself; elsewhere a file named exactly like it
                // (the loader in the multiarch directory) is a candidate.
                if (same_dir && e.name == name) || !contains(&e.name, b".so") {
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
                if info.truncated {
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
                if let Some((ld_name, ld_version)) = &self.ld_so {
                    let v = self.glibc_release(e.node, &e.name, name);
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
        assert!(!is_glibc_soname(b"libnss_sss.so.2"));
        assert!(!is_glibc_soname(b"libz.so.1"));
        assert_eq!(version_from_name(b"libc-2.12.so").as_deref(), Some("2.12"));
        assert_eq!(version_from_name(b"ld-2.12.so").as_deref(), Some("2.12"));
        assert_eq!(version_from_name(b"libz.so.1.2.3"), None);
        assert_eq!(library_base(b"libbz2.so.1.0"), b"libbz2");
        assert_eq!(library_base(b"ld-linux-x86-64.so.2"), b"ld-linux-x86-64");
        assert_eq!(
            release_from_name(b"libc-2.12.so", b"libc.so.6").as_deref(),
            Some("2.12")
        );
        assert_eq!(
            release_from_name(b"ld-2.12.so", b"ld-linux-x86-64.so.2").as_deref(),
            Some("2.12")
        );
        assert_eq!(
            release_from_name(b"libcrypt-2.12.so", b"libcrypt.so.1").as_deref(),
            Some("2.12")
        );
        // libxcrypt's file, and names of other libraries, say nothing.
        assert_eq!(
            release_from_name(b"libcrypt.so.1.1.0", b"libcrypt.so.1"),
            None
        );
        assert_eq!(release_from_name(b"libfoo-2.12.so", b"libc.so.6"), None);
        assert_eq!(release_from_name(b"libz-1.2.so", b"libz.so.1"), None);
    }

    #[test]
    fn release_string_across_reads() {
        let mut fs = crate::fs::mem::MemFs::new();
        let root = fs.root_id();
        // The banner straddles the 64 KiB read boundary.
        let mut data = vec![0u8; 65_530];
        data.extend_from_slice(
            b"GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\n",
        );
        let libc = fs.add_file(root, b"libc.so.6", 0o755, &data);
        assert_eq!(
            crate::elf::release_version(&fs, libc).as_deref(),
            Some("2.36")
        );
        let none = fs.add_file(root, b"x", 0o644, b"release version \n");
        assert_eq!(crate::elf::release_version(&fs, none), None);
        let g = Guest::new(&fs);
        assert_eq!(
            g.glibc_release(libc, b"libc.so.6", b"libc.so.6").as_deref(),
            Some("2.36")
        );
        // Never for a library that is not libc or ld.so.
        assert_eq!(
            g.glibc_release(libc, b"libcrypt.so.1.1.0", b"libcrypt.so.1"),
            None
        );
    }

    /// A host library's bytes, when the host has it.
    fn host(name: &str) -> Option<Vec<u8>> {
        [
            "/usr/lib/x86_64-linux-gnu/",
            "/lib/x86_64-linux-gnu/",
            "/usr/lib64/",
            "/lib64/",
        ]
        .iter()
        .find_map(|d| std::fs::read(format!("{d}{name}")).ok())
    }

    #[test]
    fn compatibility_links_are_fine_another_library_is_not() {
        let (Some(bz2), Some(zstd), Some(zlib), Some(xcrypt)) = (
            host("libbz2.so.1.0.4"),
            host("libzstd.so.1"),
            host("libz.so.1"),
            host("libcrypt.so.1"),
        ) else {
            eprintln!("the host lacks the Debian 12 libraries: skipped");
            return;
        };
        let mut fs = crate::fs::mem::MemFs::new();
        let root = fs.root_id();
        let usr = fs.add_dir(root, b"usr", 0o755);
        let lib = fs.add_dir(usr, b"lib", 0o755);
        let ma = fs.add_dir(lib, b"x86_64-linux-gnu", 0o755);
        let dm = fs.add_dir(ma, b"device-mapper", 0o755);
        let bin = fs.add_dir(usr, b"bin", 0o755);
        fs.add_file(ma, b"libbz2.so.1.0.4", 0o644, &bz2);
        fs.add_symlink(ma, b"libbz2.so.1", b"libbz2.so.1.0.4");
        fs.add_file(ma, b"libzstd.so.1.5.4", 0o644, &zstd);
        fs.add_file(ma, b"libz.so.1.2.13", 0o644, &zlib);
        fs.add_symlink(ma, b"libz.so.1", b"libzstd.so.1.5.4");
        fs.add_file(ma, b"libcrypt.so.1.1.0", 0o644, &xcrypt);
        fs.add_symlink(ma, b"libcrypt.so.1", b"libcrypt.so.1.1.0");
        // As lvm2's dmeventd plugins: outside the library directories.
        fs.add_file(dm, b"libbz2.so", 0o644, &bz2);
        fs.add_symlink(ma, b"libbz2.so", b"device-mapper/libbz2.so");
        fs.add_symlink(bin, b"ld.so", b"/lib64/ld-linux-x86-64.so.2.gone");
        // A truncated copy: shorter than its segments.
        fs.add_file(ma, b"libz.so.1.2.12", 0o644, &zlib[..zlib.len() / 2]);
        fs.add_symlink(ma, b"libz.so.0", b"libz.so.1.2.12");
        let g = Guest::new(&fs);
        let at = |p: &str| g.analyze(p.as_bytes()).unwrap();
        for fine in [
            "/usr/lib/x86_64-linux-gnu/libbz2.so.1",
            "/usr/lib/x86_64-linux-gnu/libcrypt.so.1",
            "/usr/lib/x86_64-linux-gnu/libbz2.so",
        ] {
            assert!(
                at(fine).problems.is_empty(),
                "{fine}: {:?}",
                at(fine).problems
            );
        }
        let z = at("/usr/lib/x86_64-linux-gnu/libz.so.1");
        assert_eq!(
            z.problems,
            ["the target's SONAME is libzstd.so.1: another library than libz.so.1"]
        );
        assert_eq!(z.proposal().unwrap().target, b"libz.so.1.2.13");
        let t = at("/usr/lib/x86_64-linux-gnu/libz.so.0");
        assert!(
            t.problems[0].starts_with("the target is truncated"),
            "{:?}",
            t.problems
        );
        // A command in a program directory: dangling is all that counts.
        let ld = at("/usr/bin/ld.so");
        assert!(!ld.library);
        assert_eq!(ld.problems.len(), 1);
        assert!(ld.problems[0].starts_with("dangling"));
        assert!(
            g.target_problems(b"/usr/lib/x86_64-linux-gnu/libbz2.so")
                .is_empty()
        );
        assert_eq!(
            g.target_problems(b"/usr/lib/x86_64-linux-gnu/libz.so.1")
                .len(),
            1
        );
    }
}
