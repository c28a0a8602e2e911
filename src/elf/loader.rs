//! The dynamic loader, modelled: which file `ld.so` (glibc's, or musl's)
//! would open inside the guest for each `DT_NEEDED` name of a program, and
//! what it would skip or stumble on on the way.
//!
//! glibc (`elf/dl-load.c`, `_dl_map_object`): a name already loaded (by
//! SONAME or by the name it was loaded under) is reused; a name with `/` is
//! a path; otherwise, unless the object has `DT_RUNPATH`, the `DT_RPATH` of
//! the object, then of the object that loaded it, up to the executable;
//! then the object's `DT_RUNPATH`; then `/etc/ld.so.cache` (entries of the
//! object's ABI); then the default directories (`/lib64`, `/usr/lib64` for
//! 64-bit x86, AArch64, POWER, s390x upstream; `/lib`, `/usr/lib`; Debian's
//! multiarch `/lib/<triplet>`, `/usr/lib/<triplet>` first, then `/lib`,
//! `/usr/lib`). `DF_1_NODEFLIB` skips the last two. `$ORIGIN`, `$LIB` and
//! `$PLATFORM` are expanded. A candidate of another class or machine is
//! skipped and the search goes on; a file that is not ELF, or is cut short,
//! stops the load.
//!
//! musl (`ldso/dynlink.c`): its own reserved names (`libc.so`,
//! `libpthread.so.0` …) are the loader itself; then the `DT_RUNPATH` (else
//! `DT_RPATH`) of the object and of its loaders, then the lines of
//! `/etc/ld-musl-ARCH.path`, else `/lib:/usr/local/lib:/usr/lib`.
//!
//! Everything is resolved inside the guest (symlinks included), bounded,
//! and each path looked at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::ElfInfo;
use super::ldcache::{self, LdCache};
use crate::fs::{FileType, FsView, NodeId, path};
use crate::text::escape;

/// Most objects one program loads before the model stops.
pub const MAX_OBJECTS: usize = 1024;
/// Most directories in one `DT_RPATH`/`DT_RUNPATH` or path file.
const MAX_DIRS: usize = 64;

/// Which dynamic loader a program uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// glibc's `ld-linux*.so` / `ld64.so` / `ld.so.1`.
    Glibc,
    /// musl's `ld-musl-ARCH.so.1`, with its ARCH.
    Musl(String),
}

impl Flavor {
    /// The loader named by a `PT_INTERP`.
    pub fn of_interp(interp: &[u8]) -> Flavor {
        let (_, name) = path::split_last(interp);
        let name = name.unwrap_or_default();
        match name
            .strip_prefix(b"ld-musl-")
            .and_then(|r| r.strip_suffix(b".so.1"))
        {
            Some(arch) => Flavor::Musl(String::from_utf8_lossy(arch).to_string()),
            None => Flavor::Glibc,
        }
    }
}

/// What a look at one path found.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Nothing there (or a path through something that is not a directory).
    Missing,
    /// A symlink whose target does not exist: the link's path.
    Dangling(Vec<u8>),
    /// Not a regular file (a directory, a device).
    NotFile(Vec<u8>),
    /// A regular file that is not ELF (or whose header is damaged).
    NotElf(File),
    /// An ELF file.
    Elf(File, Arc<ElfInfo>),
}

/// A file found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The path as opened (`/lib64/libc.so.6`).
    pub opened: Vec<u8>,
    /// The file it is, symlinks resolved (`/opt/glibc-2.14/lib/libc-2.14.so`).
    pub file: Vec<u8>,
    /// Its node.
    pub node: NodeId,
    /// The symlink the path ends in, its directory resolved, when it is one:
    /// the thing to relink.
    pub link: Option<Vec<u8>>,
}

impl File {
    /// The guest path at fault: the symlink when reached through one, else the file.
    pub fn at_fault(&self) -> &[u8] {
        self.link.as_deref().unwrap_or(&self.file)
    }

    /// `name -> /the/file (via the symlink /the/link)`, or `name is /the/file`.
    pub fn describe(&self, name: &[u8]) -> String {
        match &self.link {
            Some(l) => format!(
                "{} -> {} (via the symlink {})",
                escape(name),
                escape(&self.file),
                escape(l)
            ),
            None => format!("{} is {}", escape(name), escape(&self.file)),
        }
    }
}

/// Where a search directory came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    /// The directory, tokens expanded.
    pub dir: Vec<u8>,
    /// `DT_RPATH of /usr/bin/x`, `DT_RUNPATH`, `default`, `ld-musl path file`.
    pub source: String,
}

/// An object loaded into the modelled process.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The names it answers to (the `DT_NEEDED` names it was loaded
    /// under, its SONAME, the path it was opened by).
    pub names: Vec<Vec<u8>>,
    /// The file.
    pub file: File,
    /// Its ELF facts.
    pub info: Arc<ElfInfo>,
    /// The object whose `DT_NEEDED` loaded it (`None` for the program and the interpreter).
    pub loader: Option<usize>,
    /// How it was found (`via /etc/ld.so.cache`, `in the default directory /lib64`).
    pub how: String,
}

/// Why an object could not be loaded.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No file of the name where the loader looks.
    NotFound {
        /// The `DT_NEEDED` name.
        name: Vec<u8>,
        /// The object that needs it (index in [`Process::objects`]).
        needed_by: usize,
        /// What the search met: skipped candidates, dangling links.
        tried: Vec<String>,
        /// The first dangling symlink of that name met on the way.
        dangling: Option<Vec<u8>>,
    },
    /// A file was found but the loader cannot use it.
    Unusable {
        /// The `DT_NEEDED` name (or the interpreter's path).
        name: Vec<u8>,
        /// The object that needs it (`None`: the program's interpreter).
        needed_by: Option<usize>,
        /// The file.
        file: File,
        /// Why (`not an ELF file`, `truncated`, `ELF32 i386, not ELF64 x86-64`).
        reason: String,
    },
}

/// One program as the loader would load it.
#[derive(Debug, Clone)]
pub struct Process {
    /// The program first, then the interpreter (when found), then the
    /// libraries breadth-first, in load order.
    pub objects: Vec<Loaded>,
    /// What could not be loaded.
    pub failures: Vec<Failure>,
    /// The interpreter's index in `objects`.
    pub interp: Option<usize>,
    /// The loader.
    pub flavor: Flavor,
}

/// The loader model of one guest: its cache and the paths looked at, shared
/// by every program modelled.
pub struct Loader<'a> {
    fs: &'a dyn FsView,
    elf: &'a (dyn Fn(NodeId) -> Option<ElfInfo> + Sync),
    cache: Option<LdCache>,
    /// Why `/etc/ld.so.cache` could not be used, when it exists.
    pub cache_problem: Option<String>,
    probes: Mutex<HashMap<Vec<u8>, Probe>>,
    infos: Mutex<HashMap<NodeId, Option<Arc<ElfInfo>>>>,
    dirs: Mutex<HashMap<(u8, u16), Vec<SearchDir>>>,
}

impl<'a> Loader<'a> {
    /// The loader of the guest in `fs`; `elf` reads (and may cache) an ELF file's facts.
    pub fn new(
        fs: &'a dyn FsView,
        elf: &'a (dyn Fn(NodeId) -> Option<ElfInfo> + Sync),
    ) -> Loader<'a> {
        let (cache, cache_problem) =
            match crate::fs::read_small(fs, b"/etc/ld.so.cache", ldcache::MAX_CACHE) {
                None => (None, None),
                Some(data) => match ldcache::parse(&data) {
                    Ok(c) => (Some(c), None),
                    Err(e) => (None, Some(e.0)),
                },
            };
        Loader {
            fs,
            elf,
            cache,
            cache_problem,
            probes: Mutex::new(HashMap::new()),
            infos: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// The parsed `/etc/ld.so.cache`, when there is a readable one.
    pub fn cache(&self) -> Option<&LdCache> {
        self.cache.as_ref()
    }

    /// ELF facts of a node, read once.
    pub fn info(&self, node: NodeId) -> Option<Arc<ElfInfo>> {
        if let Some(i) = lock(&self.infos).get(&node) {
            return i.clone();
        }
        let i = (self.elf)(node).map(Arc::new);
        lock(&self.infos).insert(node, i.clone());
        i
    }

    /// What is at `p` (absolute guest path), looked at once.
    pub fn probe(&self, p: &[u8]) -> Probe {
        if let Some(r) = lock(&self.probes).get(p) {
            return r.clone();
        }
        let r = self.probe_uncached(p);
        lock(&self.probes).insert(p.to_vec(), r.clone());
        r
    }

    fn probe_uncached(&self, p: &[u8]) -> Probe {
        let fs = self.fs;
        let Ok(at) = path::resolve(fs, p, false) else {
            return Probe::Missing;
        };
        let link = fs
            .metadata(at.node)
            .is_ok_and(|m| m.file_type == FileType::Symlink)
            .then(|| at.path.clone());
        let Ok(r) = path::resolve(fs, p, true) else {
            return match link {
                Some(l) => Probe::Dangling(l),
                None => Probe::Missing,
            };
        };
        let file = File {
            opened: p.to_vec(),
            file: r.path.clone(),
            node: r.node,
            link,
        };
        match fs.metadata(r.node).map(|m| m.file_type) {
            Ok(FileType::Regular) => match self.info(r.node) {
                Some(i) => Probe::Elf(file, i),
                None => Probe::NotElf(file),
            },
            Ok(_) => Probe::NotFile(r.path),
            Err(_) => Probe::Missing,
        }
    }

    /// The default directories of glibc's `ld.so` for this class and machine
    /// in this guest: Debian's multiarch ones when the guest has them.
    pub fn default_dirs(&self, class: u8, machine: u16, big_endian: bool) -> Vec<SearchDir> {
        if let Some(d) = lock(&self.dirs).get(&(class, machine)) {
            return d.clone();
        }
        let mut dirs: Vec<&str> = Vec::new();
        let triplet = triplet(class, machine, big_endian);
        let multiarch = triplet.is_some_and(|t| {
            ["/lib/", "/usr/lib/"].iter().any(|d| {
                path::resolve(self.fs, format!("{d}{t}").as_bytes(), true).is_ok_and(|r| {
                    self.fs
                        .metadata(r.node)
                        .is_ok_and(|m| m.file_type == FileType::Directory)
                })
            })
        });
        let owned;
        if let (true, Some(t)) = (multiarch, triplet) {
            owned = [format!("/lib/{t}"), format!("/usr/lib/{t}")];
            dirs.extend(owned.iter().map(String::as_str));
            dirs.extend(["/lib", "/usr/lib"]);
        } else if class == 64 && matches!(machine, 62 | 183 | 21 | 22 | 43 | 2 | 8) {
            dirs.extend(["/lib64", "/usr/lib64"]);
        } else if class == 64 && machine == 243 {
            dirs.extend(["/lib64/lp64d", "/usr/lib64/lp64d"]);
        } else {
            dirs.extend(["/lib", "/usr/lib"]);
        }
        let out: Vec<SearchDir> = dirs
            .into_iter()
            .map(|d| SearchDir {
                dir: d.as_bytes().to_vec(),
                source: "default".into(),
            })
            .collect();
        lock(&self.dirs).insert((class, machine), out.clone());
        out
    }

    /// musl's system path: `/etc/ld-musl-ARCH.path`, else `/lib:/usr/local/lib:/usr/lib`.
    pub fn musl_dirs(&self, arch: &str) -> Vec<SearchDir> {
        let file = format!("/etc/ld-musl-{arch}.path");
        match crate::fs::read_small(self.fs, file.as_bytes(), 64 * 1024) {
            Some(text) => text
                .split(|&c| c == b':' || c == b'\n')
                .filter(|d| !d.is_empty())
                .take(MAX_DIRS)
                .map(|d| SearchDir {
                    dir: d.to_vec(),
                    source: file.clone(),
                })
                .collect(),
            None => ["/lib", "/usr/local/lib", "/usr/lib"]
                .iter()
                .map(|d| SearchDir {
                    dir: d.as_bytes().to_vec(),
                    source: "default".into(),
                })
                .collect(),
        }
    }

    /// Where the loader would look for the libraries of an object of this
    /// kind, past its own `DT_RPATH`/`DT_RUNPATH`: the directories of the
    /// cache's entries for its ABI (glibc) then the default ones, or musl's
    /// path. For choosing a relink candidate "where `ld.so` would search".
    pub fn search_dirs(&self, info: &ElfInfo) -> Vec<SearchDir> {
        let flavor = info
            .interp
            .as_deref()
            .map_or(Flavor::Glibc, Flavor::of_interp);
        if let Flavor::Musl(arch) = flavor {
            return self.musl_dirs(&arch);
        }
        let mut out: Vec<SearchDir> = Vec::new();
        if let Some(c) = &self.cache {
            for e in &c.entries {
                if !ldcache::flags_match(e.flags, info.class, info.machine) {
                    continue;
                }
                let (dir, _) = path::split_last(&e.value);
                if !out.iter().any(|d| d.dir == dir) && out.len() < MAX_DIRS {
                    out.push(SearchDir {
                        dir,
                        source: "/etc/ld.so.cache".into(),
                    });
                }
            }
        }
        for d in self.default_dirs(info.class, info.machine, info.big_endian) {
            if !out.iter().any(|o| o.dir == d.dir) {
                out.push(d);
            }
        }
        // Where the interpreter really is (the multiarch directory behind
        // /lib64/ld-linux-x86-64.so.2): glibc's own files live there.
        if let Some(interp) = &info.interp
            && let Ok(r) = path::resolve(self.fs, interp, true)
        {
            let (dir, _) = path::split_last(&r.path);
            if !out.iter().any(|o| o.dir == dir) {
                out.push(SearchDir {
                    dir,
                    source: "the interpreter's directory".into(),
                });
            }
        }
        out
    }

    /// Model loading the program at `program` (an absolute guest path).
    /// `None` when it is not there or not ELF (the caller says why).
    pub fn load(&self, program: &[u8]) -> Option<Process> {
        let Probe::Elf(file, info) = self.probe(program) else {
            return None;
        };
        let flavor = info
            .interp
            .as_deref()
            .map_or(Flavor::Glibc, Flavor::of_interp);
        let mut p = Process {
            objects: vec![Loaded {
                names: vec![file.opened.clone()],
                file,
                info: info.clone(),
                loader: None,
                how: "the program".into(),
            }],
            failures: Vec::new(),
            interp: None,
            flavor,
        };
        if let Some(interp) = &info.interp {
            match self.probe(interp) {
                Probe::Elf(f, i) => {
                    let reason = if i.truncated {
                        Some("it is truncated (shorter than its loadable segments)".to_string())
                    } else if (i.class, i.machine) != (info.class, info.machine) {
                        Some(format!("it is {}, not {}", i.describe(), info.describe()))
                    } else {
                        None
                    };
                    match reason {
                        Some(reason) => p.failures.push(Failure::Unusable {
                            name: interp.clone(),
                            needed_by: None,
                            file: f,
                            reason,
                        }),
                        None => {
                            let mut names = vec![interp.clone()];
                            names.extend(i.soname.clone());
                            p.interp = Some(p.objects.len());
                            p.objects.push(Loaded {
                                names,
                                file: f,
                                info: i,
                                loader: None,
                                how: "the program's interpreter (PT_INTERP)".into(),
                            });
                        }
                    }
                }
                Probe::NotElf(f) => p.failures.push(Failure::Unusable {
                    name: interp.clone(),
                    needed_by: None,
                    file: f,
                    reason: "it is not an ELF file".into(),
                }),
                other => p.failures.push(Failure::NotFound {
                    name: interp.clone(),
                    needed_by: 0,
                    tried: match &other {
                        Probe::Dangling(l) => vec![format!("{} is a dangling symlink", escape(l))],
                        Probe::NotFile(f) => vec![format!("{} is not a file", escape(f))],
                        _ => vec![format!("{} does not exist", escape(interp))],
                    },
                    dangling: match other {
                        Probe::Dangling(l) => Some(l),
                        _ => None,
                    },
                }),
            }
        }
        // Breadth-first, as ld.so maps the dependencies. Each name is
        // decided once: loaded (ld.so reuses the object) or failed.
        let mut decided: HashSet<Vec<u8>> = p
            .objects
            .iter()
            .flat_map(|o| o.names.iter().cloned())
            .collect();
        let mut next = 0;
        while next < p.objects.len() && p.objects.len() < MAX_OBJECTS {
            let needed = p.objects[next].info.needed.clone();
            for name in needed {
                if decided.contains(&name) {
                    continue;
                }
                let before = p.objects.len();
                self.load_one(&mut p, next, &name);
                decided.insert(name);
                if let Some(o) = p.objects.get(before..) {
                    decided.extend(o.iter().flat_map(|o| o.names.iter().cloned()));
                }
            }
            next += 1;
        }
        Some(p)
    }

    fn load_one(&self, p: &mut Process, requester: usize, name: &[u8]) {
        // musl: its reserved names are the loader itself.
        if let Flavor::Musl(_) = p.flavor
            && is_musl_reserved(name)
            && let Some(i) = p.interp
        {
            p.objects[i].names.push(name.to_vec());
            return;
        }
        let req = p.objects[requester].info.clone();
        let mut tried = Vec::new();
        let mut dangling = None;
        let candidates: Vec<(Vec<u8>, String)> = if name.contains(&b'/') {
            let origin = self.origin(p, requester);
            vec![(expand(name, &origin, &req), "named by path".into())]
        } else {
            self.search_paths(p, requester, name)
        };
        for (cand, how) in candidates {
            match self.probe(&cand) {
                Probe::Missing => {}
                Probe::Dangling(l) => {
                    tried.push(format!("{} is a dangling symlink", escape(&l)));
                    dangling.get_or_insert(l);
                }
                Probe::NotFile(f) => tried.push(format!("{} is not a file", escape(&f))),
                Probe::NotElf(f) => {
                    p.failures.push(Failure::Unusable {
                        name: name.to_vec(),
                        needed_by: Some(requester),
                        file: f,
                        reason: "it is not an ELF file (ld.so stops: invalid ELF header)".into(),
                    });
                    return;
                }
                Probe::Elf(f, i) => {
                    if (i.class, i.machine) != (req.class, req.machine) {
                        tried.push(format!(
                            "{} skipped: {}, not {}",
                            escape(f.at_fault()),
                            i.describe(),
                            req.describe()
                        ));
                        continue;
                    }
                    if i.truncated {
                        p.failures.push(Failure::Unusable {
                            name: name.to_vec(),
                            needed_by: Some(requester),
                            file: f,
                            reason: "it is truncated (shorter than its loadable segments)".into(),
                        });
                        return;
                    }
                    // The same file under another name: ld.so reuses it too.
                    if let Some(o) = p.objects.iter_mut().find(|o| o.file.node == f.node) {
                        o.names.push(name.to_vec());
                        return;
                    }
                    let mut names = vec![name.to_vec(), f.opened.clone()];
                    names.extend(i.soname.clone());
                    p.objects.push(Loaded {
                        names,
                        file: f,
                        info: i,
                        loader: Some(requester),
                        how,
                    });
                    return;
                }
            }
        }
        p.failures.push(Failure::NotFound {
            name: name.to_vec(),
            needed_by: requester,
            tried,
            dangling,
        });
    }

    /// `$ORIGIN` of an object: the program's resolved directory, a library's
    /// directory as opened.
    fn origin(&self, p: &Process, i: usize) -> Vec<u8> {
        let o = &p.objects[i];
        let from = if i == 0 { &o.file.file } else { &o.file.opened };
        path::split_last(from).0
    }

    /// Every path the loader would try for `name` needed by object `requester`, in order.
    fn search_paths(&self, p: &Process, requester: usize, name: &[u8]) -> Vec<(Vec<u8>, String)> {
        let mut dirs: Vec<SearchDir> = Vec::new();
        let req = &p.objects[requester].info;
        let mut chain = Vec::new();
        let mut at = Some(requester);
        while let Some(i) = at {
            if chain.contains(&i) || chain.len() > MAX_OBJECTS {
                break;
            }
            chain.push(i);
            at = p.objects[i].loader;
        }
        if !chain.contains(&0) {
            chain.push(0);
        }
        match &p.flavor {
            Flavor::Musl(arch) => {
                for &i in &chain {
                    let o = &p.objects[i];
                    if let Some(rp) = o.info.runpath.as_ref().or(o.info.rpath.as_ref()) {
                        self.push_rpath(&mut dirs, rp, p, i, "DT_RUNPATH/DT_RPATH");
                    }
                }
                dirs.extend(self.musl_dirs(arch));
            }
            Flavor::Glibc => {
                if req.runpath.is_none() {
                    for &i in &chain {
                        let o = &p.objects[i];
                        if o.info.runpath.is_none()
                            && let Some(rp) = &o.info.rpath
                        {
                            self.push_rpath(&mut dirs, rp, p, i, "DT_RPATH");
                        }
                    }
                }
                if let Some(rp) = &req.runpath {
                    self.push_rpath(&mut dirs, rp, p, requester, "DT_RUNPATH");
                }
            }
        }
        let mut out: Vec<(Vec<u8>, String)> = dirs
            .iter()
            .map(|d| {
                (
                    path::join(&d.dir, name),
                    format!("in {} ({})", escape(&d.dir), d.source),
                )
            })
            .collect();
        if p.flavor == Flavor::Glibc && !req.nodeflib {
            if let Some(c) = &self.cache
                && let Some(v) = c.lookup(name, req.class, req.machine)
            {
                out.push((v.to_vec(), "via /etc/ld.so.cache".into()));
            }
            for d in self.default_dirs(req.class, req.machine, req.big_endian) {
                out.push((
                    path::join(&d.dir, name),
                    format!("in the default directory {}", escape(&d.dir)),
                ));
            }
        }
        out
    }

    fn push_rpath(&self, dirs: &mut Vec<SearchDir>, rp: &[u8], p: &Process, i: usize, tag: &str) {
        let origin = self.origin(p, i);
        let info = &p.objects[i].info;
        for d in rp.split(|&c| c == b':').take(MAX_DIRS) {
            // An empty element is the current directory: `/` at boot.
            let d = if d.is_empty() { &b"."[..] } else { d };
            let dir = expand(d, &origin, info);
            dirs.push(SearchDir {
                dir,
                source: format!("{tag} of {}", escape(&p.objects[i].file.opened)),
            });
        }
    }
}

/// musl's names that always mean the loader itself (`ldso/dynlink.c`).
fn is_musl_reserved(name: &[u8]) -> bool {
    [
        &b"libc."[..],
        b"libpthread.",
        b"librt.",
        b"libm.",
        b"libdl.",
        b"libutil.",
        b"libxnet.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Debian's multiarch triplet for a class and machine.
pub fn triplet(class: u8, machine: u16, big_endian: bool) -> Option<&'static str> {
    Some(match (class, machine) {
        (64, 62) => "x86_64-linux-gnu",
        (32, 62) => "x86_64-linux-gnux32",
        (32, 3) => "i386-linux-gnu",
        (64, 183) => "aarch64-linux-gnu",
        (32, 40) => "arm-linux-gnueabihf",
        (64, 21) if !big_endian => "powerpc64le-linux-gnu",
        (64, 21) => "powerpc64-linux-gnu",
        (64, 22) => "s390x-linux-gnu",
        (64, 243) => "riscv64-linux-gnu",
        (64, 8) if !big_endian => "mips64el-linux-gnuabi64",
        (32, 8) if !big_endian => "mipsel-linux-gnu",
        _ => return None,
    })
}

/// `$ORIGIN`, `$LIB`, `$PLATFORM` (and their `${…}` forms) expanded.
fn expand(s: &[u8], origin: &[u8], info: &ElfInfo) -> Vec<u8> {
    if !s.contains(&b'$') {
        return s.to_vec();
    }
    let lib: &[u8] = if info.class == 64 && matches!(info.machine, 62 | 183 | 21 | 22) {
        b"lib64"
    } else {
        b"lib"
    };
    let platform: &[u8] = match info.machine {
        62 => b"x86_64",
        3 => b"i686",
        183 => b"aarch64",
        _ => b"",
    };
    let tokens: [(&[u8], &[u8]); 3] = [(b"ORIGIN", origin), (b"LIB", lib), (b"PLATFORM", platform)];
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'$' {
            let rest = &s[i + 1..];
            let mut hit = None;
            for (t, v) in tokens {
                if rest.starts_with(t)
                    && !rest
                        .get(t.len())
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    hit = Some((t.len() + 1, v));
                } else if rest.first() == Some(&b'{')
                    && rest.get(1..).is_some_and(|r| r.starts_with(t))
                    && rest.get(t.len() + 1) == Some(&b'}')
                {
                    hit = Some((t.len() + 3, v));
                }
                if hit.is_some() {
                    break;
                }
            }
            if let Some((skip, v)) = hit {
                out.extend_from_slice(v);
                i += skip;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
        if out.len() > path::MAX_PATH {
            break;
        }
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;

    #[test]
    fn tokens_expand() {
        let info = ElfInfo {
            class: 64,
            machine: 62,
            ..ElfInfo::default()
        };
        assert_eq!(
            expand(b"$ORIGIN/../lib:${LIB}/x/$PLATFORM", b"/opt/app/bin", &info),
            b"/opt/app/bin/../lib:lib64/x/x86_64".to_vec()
        );
        assert_eq!(expand(b"$ORIGINAL", b"/o", &info), b"$ORIGINAL".to_vec());
    }

    #[test]
    fn musl_flavor_and_reserved_names() {
        assert_eq!(
            Flavor::of_interp(b"/lib/ld-musl-x86_64.so.1"),
            Flavor::Musl("x86_64".into())
        );
        assert_eq!(
            Flavor::of_interp(b"/lib64/ld-linux-x86-64.so.2"),
            Flavor::Glibc
        );
        assert!(is_musl_reserved(b"libc.musl-x86_64.so.1"));
        assert!(!is_musl_reserved(b"libz.so.1"));
    }

    /// A guest with the host's `true`, `libc.so.6` and ld.so; `libc` is
    /// put in each (dir, bytes) given.
    fn host_guest(libcs: &[(&[u8], &[u8])]) -> Option<MemFs> {
        let exe = std::fs::read("/usr/bin/true").ok()?;
        let ld = std::fs::read("/lib64/ld-linux-x86-64.so.2").ok()?;
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let bin = fs.add_dir(root, b"bin", 0o755);
        fs.add_file(bin, b"true", 0o755, &exe);
        let lib64 = fs.add_dir(root, b"lib64", 0o755);
        fs.add_file(lib64, b"ld-linux-x86-64.so.2", 0o755, &ld);
        let lib = fs.add_dir(root, b"lib", 0o755);
        let lib_ma = fs.add_dir(lib, b"x86_64-linux-gnu", 0o755);
        let usr = fs.add_dir(root, b"usr", 0o755);
        let usr_lib = fs.add_dir(usr, b"lib", 0o755);
        let usr_ma = fs.add_dir(usr_lib, b"x86_64-linux-gnu", 0o755);
        for (dir, data) in libcs {
            let d = if *dir == b"/lib/x86_64-linux-gnu" {
                lib_ma
            } else {
                usr_ma
            };
            fs.add_file(d, b"libc.so.6", 0o755, data);
        }
        Some(fs)
    }

    #[test]
    fn a_wrong_machine_library_is_skipped_as_ld_so_does() {
        let Ok(libc) = std::fs::read("/usr/lib/x86_64-linux-gnu/libc.so.6") else {
            return;
        };
        // The same file claiming to be i386 (e_machine 3).
        let mut i386 = libc.clone();
        i386[18..20].copy_from_slice(&3u16.to_le_bytes());
        let Some(fs) = host_guest(&[
            (b"/lib/x86_64-linux-gnu", &i386),
            (b"/usr/lib/x86_64-linux-gnu", &libc),
        ]) else {
            return;
        };
        let read = |n: NodeId| crate::elf::read(&fs, n);
        let l = Loader::new(&fs, &read);
        let p = l.load(b"/bin/true").expect("ELF");
        assert!(p.failures.is_empty(), "{:?}", p.failures);
        assert_eq!(p.interp, Some(1));
        let libc_obj = &p.objects[2];
        assert_eq!(libc_obj.file.file, b"/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(
            libc_obj.how,
            "in the default directory /usr/lib/x86_64-linux-gnu"
        );
        // libc needs ld-linux-x86-64.so.2: the interpreter, by its SONAME.
        assert_eq!(p.objects.len(), 3);

        // Without the right one, the skipped one is the evidence.
        let Some(fs) = host_guest(&[(b"/lib/x86_64-linux-gnu", &i386)]) else {
            return;
        };
        let read = |n: NodeId| crate::elf::read(&fs, n);
        let l = Loader::new(&fs, &read);
        let p = l.load(b"/bin/true").expect("ELF");
        match &p.failures[..] {
            [Failure::NotFound { name, tried, .. }] => {
                assert_eq!(name, b"libc.so.6");
                assert_eq!(
                    tried,
                    &["/lib/x86_64-linux-gnu/libc.so.6 skipped: ELF64 i386, not ELF64 x86-64"]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn default_dirs_follow_the_guest() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let lib = fs.add_dir(root, b"lib", 0o755);
        fs.add_dir(lib, b"x86_64-linux-gnu", 0o755);
        let read = |_: NodeId| None;
        let l = Loader::new(&fs, &read);
        let d: Vec<Vec<u8>> = l
            .default_dirs(64, 62, false)
            .into_iter()
            .map(|d| d.dir)
            .collect();
        assert_eq!(
            d,
            vec![
                b"/lib/x86_64-linux-gnu".to_vec(),
                b"/usr/lib/x86_64-linux-gnu".to_vec(),
                b"/lib".to_vec(),
                b"/usr/lib".to_vec()
            ]
        );
        let d: Vec<Vec<u8>> = l
            .default_dirs(64, 183, false)
            .into_iter()
            .map(|d| d.dir)
            .collect();
        assert_eq!(d, vec![b"/lib64".to_vec(), b"/usr/lib64".to_vec()]);
        let d: Vec<Vec<u8>> = l.musl_dirs("x86_64").into_iter().map(|d| d.dir).collect();
        assert_eq!(d[0], b"/lib".to_vec());
    }
}
