//! `find` over a guest filesystem: a depth-first walk from a start path with
//! GNU find's tests and their rounding (`-name`, `-iname`, `-type`, `-size`,
//! `-mmin`, `-mtime`, `-newer`, `-xdev`, `-mindepth`, `-maxdepth`), all joined
//! by an implicit AND.
//!
//! Shared by `vmrescue find` and the TUI's find dialog. Results stream
//! through a callback while the walk runs ([`walk`]); a cancel flag stops it.
//! Directories are read in on-disk order, as GNU find reads them; metadata is
//! read only when a test or the caller needs it (in inode order within a
//! directory). A damaged directory is reported and the walk goes on; a
//! directory met twice (a loop in a damaged directory graph) is not entered
//! again.

use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::fs::path::{is_safe_name, resolve};
use crate::fs::{FileType, FsView, Metadata, NodeId, Timestamp};
use crate::ops::list::display_name;
use crate::text::escape;

/// Deepest nesting the walk descends into (below it a problem is reported).
pub const MAX_DEPTH: usize = 4096;

/// Nanoseconds in a second.
const NS: i128 = 1_000_000_000;
/// Seconds in find's day.
const DAY: i128 = 86_400;

/// How a number is compared, as find writes it: `+N` more than N, `-N` less
/// than N, `N` exactly N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `-N`.
    Less,
    /// `N`.
    Exactly,
    /// `+N`.
    More,
}

impl Cmp {
    /// Split a leading `+` or `-` off `s`.
    fn split(s: &str) -> (Cmp, &str) {
        if let Some(rest) = s.strip_prefix('+') {
            (Cmp::More, rest)
        } else if let Some(rest) = s.strip_prefix('-') {
            (Cmp::Less, rest)
        } else {
            (Cmp::Exactly, s)
        }
    }
}

/// A `-name` or `-iname` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTest {
    /// The glob, as bytes.
    pub glob: Vec<u8>,
    /// `-iname`: ASCII letters match either case.
    pub fold: bool,
}

/// A `-size` test: the size in `unit`-byte units, rounded up, compared with `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeTest {
    /// How it compares.
    pub cmp: Cmp,
    /// The number of units.
    pub n: u64,
    /// Bytes per unit (512 for find's default blocks).
    pub unit: u64,
}

impl SizeTest {
    /// Parse find's `[+-]N[cwbkMG]` (no suffix: 512-byte blocks).
    pub fn parse(s: &str) -> Result<SizeTest> {
        let (cmp, rest) = Cmp::split(s);
        let (digits, unit) = match rest.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let unit = match c {
                    'c' => 1,
                    'w' => 2,
                    'b' => 512,
                    'k' => 1024,
                    'M' => 1 << 20,
                    'G' => 1 << 30,
                    _ => return Err(invalid("-size", s)),
                };
                (&rest[..i], unit)
            }
            _ => (rest, 512),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("-size", s));
        }
        let n = digits.parse().map_err(|_| invalid("-size", s))?;
        Ok(SizeTest { cmp, n, unit })
    }

    /// Whether a file of `size` bytes passes.
    pub fn matches(&self, size: u64) -> bool {
        let units = size.div_ceil(self.unit);
        match self.cmp {
            Cmp::Less => units < self.n,
            Cmp::Exactly => units == self.n,
            Cmp::More => units > self.n,
        }
    }
}

/// A `-mmin` or `-mtime` test, turned into find's reference time and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeTest {
    /// How the modification time compares with `reference`: `Less` older,
    /// `More` newer, `Exactly` within `window` after it.
    pub cmp: Cmp,
    /// The reference time, in nanoseconds since the epoch.
    pub reference: i128,
    /// The window of `Exactly`, in nanoseconds.
    pub window: i128,
}

impl TimeTest {
    /// `-mmin ARG` relative to `now`: `N` is an age in (N-1, N] minutes
    /// as GNU find counts it (`[N-1, N)` minutes old), `+N` older than N
    /// minutes, `-N` newer than N minutes.
    pub fn mmin(arg: &str, now: Timestamp) -> Result<TimeTest> {
        TimeTest::relative(arg, "-mmin", ns(now), 60, 60)
    }

    /// `-mtime ARG` relative to `now`: the age in 24-hour periods, rounded
    /// down, with GNU find's edges (`-mtime -1` takes up to one day and one
    /// second, `+N` strictly more than N+1 days).
    pub fn mtime(arg: &str, now: Timestamp) -> Result<TimeTest> {
        let (cmp, _) = Cmp::split(arg);
        // findutils' parse_time: the origin is a day before the start, and
        // a day minus one second later for `-N`.
        let mut origin = ns(now) - DAY * NS;
        if cmp == Cmp::Less {
            origin += (DAY - 1) * NS;
        }
        TimeTest::relative(arg, "-mtime", origin, DAY as u32, DAY as u32)
    }

    fn relative(arg: &str, what: &str, origin: i128, unit: u32, window: u32) -> Result<TimeTest> {
        let (cmp, rest) = Cmp::split(arg);
        if rest.is_empty()
            || rest.starts_with(['+', '-'])
            || !rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return Err(invalid(what, arg));
        }
        let n: f64 = rest.parse().map_err(|_| invalid(what, arg))?;
        // As findutils: whole seconds and the fraction apart.
        let total = n * f64::from(unit);
        if !total.is_finite() || total > 1e15 {
            return Err(invalid(what, arg));
        }
        let secs = total.trunc();
        let nanos = ((total - secs) * 1e9).trunc();
        let offset = secs as i128 * NS + nanos as i128;
        Ok(TimeTest {
            cmp,
            reference: origin - offset,
            window: i128::from(window) * NS,
        })
    }

    /// Whether a node modified at `t` passes.
    pub fn matches(&self, t: Timestamp) -> bool {
        let t = ns(t);
        match self.cmp {
            // find inverts the sense: `+N` (older) is "before the reference".
            Cmp::More => t < self.reference,
            Cmp::Less => t > self.reference,
            Cmp::Exactly => {
                let delta = t - self.reference;
                delta > 0 && delta <= self.window
            }
        }
    }
}

/// A time in nanoseconds since the epoch.
fn ns(t: Timestamp) -> i128 {
    i128::from(t.sec) * NS + i128::from(t.nsec)
}

fn invalid(what: &str, arg: &str) -> Error {
    Error::Invalid(format!("invalid argument `{arg}' to `{what}'"))
}

/// Types for `-type`, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeSet(u8);

impl TypeSet {
    /// Parse find's `f`, `d`, `l`, `b`, `c`, `p`, `s`, or a comma list of them (`f,l`).
    pub fn parse(s: &str) -> Result<TypeSet> {
        let mut set = 0u8;
        for part in s.split(',') {
            let t = match part {
                "f" => FileType::Regular,
                "d" => FileType::Directory,
                "l" => FileType::Symlink,
                "b" => FileType::BlockDevice,
                "c" => FileType::CharDevice,
                "p" => FileType::Fifo,
                "s" => FileType::Socket,
                _ => {
                    return Err(Error::Invalid(format!(
                        "unknown argument to -type: {s} (f, d, l, b, c, p, s, or a comma list)"
                    )));
                }
            };
            set |= TypeSet::bit(t);
        }
        Ok(TypeSet(set))
    }

    /// The set of the one type `t`.
    pub fn of(t: FileType) -> TypeSet {
        TypeSet(TypeSet::bit(t))
    }

    fn bit(t: FileType) -> u8 {
        match t {
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::Symlink => 4,
            FileType::BlockDevice => 8,
            FileType::CharDevice => 16,
            FileType::Fifo => 32,
            FileType::Socket => 64,
            FileType::Unknown => 128,
        }
    }

    /// The types in both sets (two `-type` tests).
    pub fn and(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & other.0)
    }

    /// Whether `t` is in the set.
    pub fn contains(&self, t: FileType) -> bool {
        self.0 & TypeSet::bit(t) != 0
    }
}

/// What to look for: every test given must pass (an implicit AND).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `-name` and `-iname` patterns, matched against the last component.
    pub names: Vec<NameTest>,
    /// `-type`.
    pub types: Option<TypeSet>,
    /// `-size`.
    pub sizes: Vec<SizeTest>,
    /// `-mmin` and `-mtime`.
    pub times: Vec<TimeTest>,
    /// `-newer`: modified strictly after these times.
    pub newer: Vec<Timestamp>,
    /// `-xdev`: do not descend into directories on another device than the start.
    pub xdev: bool,
    /// `-mindepth`: no test or output above this depth (the start is 0).
    pub min_depth: usize,
    /// `-maxdepth`: nothing below this depth.
    pub max_depth: Option<usize>,
    /// Read the metadata of every result (for `-ls`, `--json`, the TUI).
    pub want_metadata: bool,
}

impl Query {
    /// Whether a test needs the node's metadata (not only its name and type).
    fn needs_metadata(&self) -> bool {
        self.want_metadata
            || !self.sizes.is_empty()
            || !self.times.is_empty()
            || !self.newer.is_empty()
    }

    /// Whether a node passes every test that needs no metadata.
    fn matches_name(&self, name: &[u8]) -> bool {
        self.names.iter().all(|n| fnmatch(&n.glob, name, n.fold))
    }

    /// Whether a node passes every test on its metadata.
    fn matches_metadata(&self, m: &Metadata) -> bool {
        self.sizes.iter().all(|s| s.matches(m.size))
            && self.times.iter().all(|t| t.matches(m.mtime))
            && self.newer.iter().all(|&t| m.mtime > t)
    }
}

/// One node found.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its guest path, as the walk built it (the start path as given, then names).
    pub path: Vec<u8>,
    /// The path shown: escaped, names as [`display_name`] shows them.
    pub shown: String,
    /// The node.
    pub node: NodeId,
    /// Its type.
    pub file_type: FileType,
    /// Its depth below the start (the start is 0).
    pub depth: usize,
    /// Its metadata, when a test or [`Query::want_metadata`] read it.
    pub meta: Option<Metadata>,
}

/// How far a walk went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Directories read.
    pub dirs: u64,
    /// Nodes looked at.
    pub seen: u64,
    /// Nodes that passed.
    pub found: u64,
    /// Problems reported.
    pub problems: u64,
}

/// What the walk reports, in order.
#[derive(Debug)]
pub enum Event {
    /// A node passed every test.
    Found(Found),
    /// Something could not be read (the walk goes on): `‘path’: why`.
    Problem(String),
    /// Progress, every few hundred nodes.
    Progress(Counts),
}

/// Nodes between two [`Event::Progress`].
const PROGRESS_EVERY: u64 = 512;

/// One directory being walked.
struct Frame {
    entries: Vec<Child>,
    next: usize,
    path: Rc<Vec<u8>>,
    shown: Rc<String>,
    depth: usize,
}

/// Where a node was met: the start path itself, or an entry of a folder
/// (whose path and shown path its entries share, so that a child's own are
/// made only when it is reported or entered).
enum At {
    Start {
        path: Vec<u8>,
        shown: String,
    },
    Under {
        path: Rc<Vec<u8>>,
        shown: Rc<String>,
    },
}

impl At {
    /// The node's path and its path as shown.
    fn paths(self, name: &[u8]) -> (Vec<u8>, String) {
        match self {
            At::Start { path, shown } => (path, shown),
            At::Under {
                path: dir,
                shown: dir_shown,
            } => {
                let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
                path.extend_from_slice(&dir);
                if path.last() != Some(&b'/') {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
                let mut shown = String::with_capacity(dir_shown.len() + 1 + name.len());
                shown.push_str(&dir_shown);
                if !shown.ends_with('/') {
                    shown.push('/');
                }
                shown.push_str(&display_name(name));
                (path, shown)
            }
        }
    }
}

/// One entry of a directory, with what is known of it.
struct Child {
    name: Vec<u8>,
    node: NodeId,
    file_type: Option<FileType>,
    meta: Option<std::result::Result<Metadata, String>>,
}

/// The last component of a start path as find takes it (`/` for the root).
fn start_name(path: &[u8]) -> &[u8] {
    let trimmed = {
        let mut end = path.len();
        while end > 1 && path[end - 1] == b'/' {
            end -= 1;
        }
        &path[..end]
    };
    if trimmed == b"/" {
        return trimmed;
    }
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Walk `fs` from guest path `start` (resolved inside the guest; a symlink
/// at the end is followed only with a trailing `/`, as find's `-P`),
/// reporting every node that passes `query` through `emit`, until done or
/// `cancel` is set. Returns the counts; an error only when `start` cannot be
/// resolved or read.
pub fn walk(
    fs: &dyn FsView,
    start: &[u8],
    query: &Query,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Event),
) -> Result<Counts> {
    let follow = start.ends_with(b"/");
    let r = resolve(fs, start, follow)?;
    let meta = fs.metadata(r.node)?;
    let mut w = Walker {
        fs,
        query,
        cancel,
        emit,
        counts: Counts::default(),
        visited: HashSet::new(),
        start_dev: fs.dev(r.node),
        needs_meta: query.needs_metadata(),
    };
    let shown = escape(start);
    let root = Child {
        name: start_name(start).to_vec(),
        node: r.node,
        file_type: Some(meta.file_type),
        meta: Some(Ok(meta)),
    };
    let at = At::Start {
        path: start.to_vec(),
        shown,
    };
    w.visit(root, at, 0, None);
    Ok(w.counts)
}

struct Walker<'a> {
    fs: &'a dyn FsView,
    query: &'a Query,
    cancel: &'a AtomicBool,
    emit: &'a mut dyn FnMut(Event),
    counts: Counts,
    visited: HashSet<(u64, NodeId)>,
    start_dev: u64,
    needs_meta: bool,
}

impl Walker<'_> {
    fn problem(&mut self, msg: String) {
        self.counts.problems += 1;
        (self.emit)(Event::Problem(msg));
    }

    /// Test one node, report it, and walk below it when it is a directory.
    fn visit(&mut self, child: Child, at: At, depth: usize, stack: Option<&mut Vec<Frame>>) {
        self.counts.seen += 1;
        if self.counts.seen.is_multiple_of(PROGRESS_EVERY) {
            (self.emit)(Event::Progress(self.counts));
        }
        let Child {
            name,
            node,
            file_type,
            mut meta,
        } = child;
        // The type: from the directory entry, else from the inode.
        let need_meta_now = self.needs_meta || file_type.is_none();
        if need_meta_now && meta.is_none() {
            meta = Some(self.fs.metadata(node).map_err(|e| e.to_string()));
        }
        let meta = match meta {
            Some(Err(e)) => {
                let shown = match &at {
                    At::Start { shown, .. } => shown.clone(),
                    At::Under { shown, .. } => {
                        let mut t = String::clone(shown);
                        if !t.ends_with('/') {
                            t.push('/');
                        }
                        t.push_str(&display_name(&name));
                        t
                    }
                };
                self.problem(format!("‘{shown}’: {e}"));
                None
            }
            Some(Ok(m)) => Some(m),
            None => None,
        };
        let file_type = meta.as_ref().map(|m| m.file_type).or(file_type);
        let in_range = depth >= self.query.min_depth;
        let passes = in_range && self.passes(&name, file_type, meta.as_ref());
        let is_dir = file_type == Some(FileType::Directory);
        if !passes && !is_dir {
            return;
        }
        let (path, shown) = at.paths(&name);
        if passes {
            self.counts.found += 1;
            let found = |path, shown| Found {
                path,
                shown,
                node,
                file_type: file_type.unwrap_or(FileType::Unknown),
                depth,
                meta,
            };
            if !is_dir {
                (self.emit)(Event::Found(found(path, shown)));
                return;
            }
            (self.emit)(Event::Found(found(path.clone(), shown.clone())));
        }
        if !is_dir {
            return;
        }
        if self.query.max_depth.is_some_and(|m| depth >= m) {
            return;
        }
        if depth > 0 && !is_safe_name(&name) {
            // A name no directory may hold ("", ".", "..", with '/'): not entered.
            return;
        }
        let dev = self.fs.dev(node);
        if self.query.xdev && dev != self.start_dev {
            return;
        }
        if depth >= MAX_DEPTH {
            self.problem(format!(
                "‘{shown}’: nested more than {MAX_DEPTH} directories deep: not descending"
            ));
            return;
        }
        if !self.visited.insert((dev, node)) {
            self.problem(format!(
                "‘{shown}’: a directory already walked (a loop in a damaged directory graph): not descending"
            ));
            return;
        }
        let frame = match self.read(node, path, shown, depth + 1) {
            Some(f) => f,
            None => return,
        };
        match stack {
            Some(s) => s.push(frame),
            None => self.run(frame),
        }
    }

    /// Whether a node passes the query.
    fn passes(&self, name: &[u8], t: Option<FileType>, meta: Option<&Metadata>) -> bool {
        if let Some(types) = self.query.types
            && !t.is_some_and(|t| types.contains(t))
        {
            return false;
        }
        if !self.query.matches_name(name) {
            return false;
        }
        if self.needs_meta {
            return meta.is_some_and(|m| self.query.matches_metadata(m));
        }
        true
    }

    /// Read a directory into a frame (its entries' metadata in inode order
    /// when the tests need it).
    fn read(&mut self, dir: NodeId, path: Vec<u8>, shown: String, depth: usize) -> Option<Frame> {
        self.counts.dirs += 1;
        // A reader records damage it reads past (a bad checksum, a broken
        // entry) as a problem of the filesystem rather than an error: say
        // which directory it was found in.
        let before = self.fs.problem_count();
        let entries = match self.fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.problem(format!("‘{shown}’: {e}"));
                return None;
            }
        };
        let problems = if self.fs.problem_count() > before {
            self.fs.status().problems
        } else {
            Vec::new()
        };
        if let Some(first) = problems.get(before) {
            let more = problems.len() - before - 1;
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            self.problem(format!(
                "‘{shown}’: damaged directory: {}{more}",
                crate::text::escape_str(&first.to_string())
            ));
        }
        let mut children: Vec<Child> = entries
            .into_iter()
            .map(|e| Child {
                name: e.name,
                node: e.node,
                file_type: e.file_type,
                meta: None,
            })
            .collect();
        if self.needs_meta && children.len() > 1 {
            let mut order: Vec<usize> = (0..children.len()).collect();
            order.sort_by_key(|&i| children[i].node);
            for i in order {
                let node = children[i].node;
                children[i].meta = Some(self.fs.metadata(node).map_err(|e| e.to_string()));
            }
        }
        Some(Frame {
            entries: children,
            next: 0,
            path: Rc::new(path),
            shown: Rc::new(shown),
            depth,
        })
    }

    /// Walk below a directory, depth first, entries in on-disk order.
    fn run(&mut self, first: Frame) {
        let mut stack = vec![first];
        while let Some(top) = stack.last_mut() {
            if self.cancel.load(Ordering::Relaxed) {
                return;
            }
            let Some(slot) = top.entries.get_mut(top.next) else {
                stack.pop();
                continue;
            };
            top.next += 1;
            let child = Child {
                name: std::mem::take(&mut slot.name),
                node: slot.node,
                file_type: slot.file_type,
                meta: slot.meta.take(),
            };
            let at = At::Under {
                path: Rc::clone(&top.path),
                shown: Rc::clone(&top.shown),
            };
            let depth = top.depth;
            self.visit(child, at, depth, Some(&mut stack));
        }
    }
}

/// Whether `name` matches the shell glob `pattern` as `fnmatch(3)` with no
/// flags matches bytes (so `*` matches a leading `.`, as in find's `-name`):
/// `*`, `?`, `[...]` with ranges, `!`/`^` negation and `[:class:]`, and `\`
/// quoting the next byte. `fold`: ASCII letters match either case (`-iname`).
pub fn fnmatch(pattern: &[u8], name: &[u8], fold: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matching with one backtrack point for the last `*`.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                b'?' if n < name.len() => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' if n < name.len() => match bracket(pattern, p, name[n], fold) {
                    Some((true, next)) => {
                        p = next;
                        n += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    None => {
                        // No closing `]`: a literal `[`.
                        if eq(b'[', name[n]) {
                            p += 1;
                            n += 1;
                            continue;
                        }
                    }
                },
                b'\\' if p + 1 < pattern.len() && n < name.len() && eq(pattern[p + 1], name[n]) => {
                    p += 2;
                    n += 1;
                    continue;
                }
                // A quoted byte that does not match.
                b'\\' if p + 1 < pattern.len() => {}
                c if n < name.len() && c != b'?' && c != b'[' && eq(c, name[n]) => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return true;
        }
        // Mismatch: let the last `*` take one more byte.
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

/// Match byte `c` against the bracket expression at `pattern[start]` (`[`).
/// `Some((matched, index after ']'))`, or `None` when it has no closing `]`.
fn bracket(pattern: &[u8], start: usize, c: u8, fold: bool) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    let lower = c.to_ascii_lowercase();
    let upper = c.to_ascii_uppercase();
    let hit = |lo: u8, hi: u8| {
        (lo..=hi).contains(&c)
            || (fold && ((lo..=hi).contains(&lower) || (lo..=hi).contains(&upper)))
    };
    loop {
        let b = *pattern.get(i)?;
        if b == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if b == b'['
            && pattern.get(i + 1) == Some(&b':')
            && let Some(len) = pattern[i + 2..].windows(2).position(|w| w == b":]")
        {
            {
                let class = &pattern[i + 2..i + 2 + len];
                if class_matches(class, c)
                    || (fold && (class_matches(class, lower) || class_matches(class, upper)))
                {
                    matched = true;
                }
                i += 2 + len + 2;
                continue;
            }
        }
        let (lo, after) = if b == b'\\' {
            (*pattern.get(i + 1)?, i + 2)
        } else {
            (b, i + 1)
        };
        if pattern.get(after) == Some(&b'-') && pattern.get(after + 1).is_some_and(|&x| x != b']') {
            let hi_at = after + 1;
            let (hi, next) = if pattern[hi_at] == b'\\' {
                (*pattern.get(hi_at + 1)?, hi_at + 2)
            } else {
                (pattern[hi_at], hi_at + 1)
            };
            if hit(lo, hi) {
                matched = true;
            }
            i = next;
        } else {
            if hit(lo, lo) {
                matched = true;
            }
            i = after;
        }
    }
}

/// The POSIX character classes in the C locale.
fn class_matches(class: &[u8], c: u8) -> bool {
    match class {
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"alnum" => c.is_ascii_alphanumeric(),
        b"upper" => c.is_ascii_uppercase(),
        b"lower" => c.is_ascii_lowercase(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b"blank" => matches!(c, b' ' | b'\t'),
        b"punct" => c.is_ascii_punctuation(),
        b"print" => (0x20..0x7f).contains(&c),
        b"graph" => c.is_ascii_graphic(),
        b"cntrl" => c.is_ascii_control(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

/// The newest changes under `start`: up to `keep` nodes with the latest
/// modification times, newest first (a bounded heap: memory stays at `keep`
/// whatever the tree's size). `on_progress` gets the counts as the walk goes.
pub fn newest(
    fs: &dyn FsView,
    start: &[u8],
    query: &Query,
    keep: usize,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<(Vec<Found>, Counts)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    /// A heap entry ordered by mtime, then path (for a stable order).
    struct ByTime(Timestamp, Vec<u8>, Found);
    impl PartialEq for ByTime {
        fn eq(&self, o: &Self) -> bool {
            self.0 == o.0 && self.1 == o.1
        }
    }
    impl Eq for ByTime {}
    impl PartialOrd for ByTime {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for ByTime {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            (self.0, &o.1).cmp(&(o.0, &self.1))
        }
    }
    let mut q = query.clone();
    q.want_metadata = true;
    let mut heap: BinaryHeap<Reverse<ByTime>> = BinaryHeap::new();
    let counts = walk(fs, start, &q, cancel, &mut |ev| {
        if let Event::Found(f) = ev {
            let Some(t) = f.meta.as_ref().map(|m| m.mtime) else {
                return;
            };
            if keep == 0 {
                return;
            }
            if heap.len() < keep {
                heap.push(Reverse(ByTime(t, f.path.clone(), f)));
            } else if heap.peek().is_some_and(|Reverse(min)| min.0 < t) {
                heap.pop();
                heap.push(Reverse(ByTime(t, f.path.clone(), f)));
            }
        } else {
            on_event(&ev);
        }
    })?;
    let mut out: Vec<ByTime> = heap.into_iter().map(|Reverse(b)| b).collect();
    out.sort_by(|a, b| b.cmp(a));
    Ok((out.into_iter().map(|b| b.2).collect(), counts))
}

/// The columns of `find -ls`, whose widths only grow (as GNU find's do), so
/// the lines of one run line up once wide values were seen.
#[derive(Debug, Clone)]
pub struct LsColumns {
    inode: usize,
    blocks: usize,
    nlink: usize,
    user: usize,
    group: usize,
    size: usize,
    major: usize,
    minor: usize,
    /// "Now", for the recent/old date format.
    now: Timestamp,
}

impl LsColumns {
    /// GNU find's starting widths; dates are recent within six months before `now`.
    pub fn new(now: Timestamp) -> LsColumns {
        LsColumns {
            inode: 9,
            blocks: 6,
            nlink: 3,
            user: 8,
            group: 8,
            size: 8,
            major: 3,
            minor: 3,
            now,
        }
    }

    /// One `find -ls` line: inode, KiB allocated, mode, links, owner, group,
    /// size (or `major, minor`), date (UTC), path, ` -> target`.
    pub fn line(
        &mut self,
        shown: &str,
        m: &Metadata,
        owners: &crate::ops::list::Owners,
        target: Option<&[u8]>,
    ) -> String {
        fn col(width: &mut usize, s: &str, right: bool) -> String {
            *width = (*width).max(s.chars().count());
            if right {
                format!("{s:>w$}", w = *width)
            } else {
                format!("{s:<w$}", w = *width)
            }
        }
        let blocks = m.allocated.unwrap_or(m.size).div_ceil(1024).to_string();
        let size = match m.file_type {
            FileType::CharDevice | FileType::BlockDevice => {
                let major = col(&mut self.major, &m.rdev.0.to_string(), true);
                let minor = col(&mut self.minor, &m.rdev.1.to_string(), true);
                let s = format!("{major}, {minor}");
                self.size = self.size.max(s.len());
                s
            }
            _ => col(&mut self.size, &m.size.to_string(), true),
        };
        let mut line = format!(
            "{} {} {} {} {} {} {} {} {shown}",
            col(&mut self.inode, &m.ino.to_string(), true),
            col(&mut self.blocks, &blocks, true),
            m.mode_string(),
            col(&mut self.nlink, &m.nlink.to_string(), true),
            col(&mut self.user, &owners.user(m.uid), false),
            col(&mut self.group, &owners.group(m.gid), false),
            size,
            ls_date(m.mtime, self.now),
        );
        if let Some(t) = target {
            line.push_str(" -> ");
            line.push_str(&escape(t));
        }
        line
    }
}

/// A date as `find -ls` shows it, in UTC: `Dec  2 08:45` within the six
/// months before `now`, else `Dec  2  2013`.
pub fn ls_date(t: Timestamp, now: Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // A Gregorian year is 31556952 seconds on average; half of it, as findutils.
    let six_months_ago = Timestamp {
        sec: now.sec.saturating_sub(31_556_952 / 2),
        nsec: now.nsec,
    };
    let recent = six_months_ago < t && t < now;
    let (y, m, d) = crate::text::civil_from_days(t.sec.div_euclid(86_400));
    let month = MONTHS
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    if recent {
        let s = t.sec.rem_euclid(86_400);
        format!("{month} {d:>2} {:02}:{:02}", s / 3600, (s % 3600) / 60)
    } else {
        format!("{month} {d:>2} {y:>5}")
    }
}

/// A time as ISO 8601 in UTC with nanoseconds: `2013-02-21T14:03:00.000000000Z`.
pub fn iso_time(t: Timestamp) -> String {
    let (y, m, d) = crate::text::civil_from_days(t.sec.div_euclid(86_400));
    let s = t.sec.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60,
        t.nsec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_fnmatch() {
        let yes: &[(&str, &str)] = &[
            ("*", ".bashrc"),
            ("*.conf", "a.conf"),
            (".*", ".x"),
            ("?", "a"),
            ("a[bc]d", "acd"),
            ("a[!bc]d", "aed"),
            ("a[^bc]d", "aed"),
            ("[a-c]x", "bx"),
            ("[]]", "]"),
            ("[!]]", "a"),
            ("\\*", "*"),
            ("lib*.so.*", "libc.so.6"),
            ("[[:digit:]]*", "9lives"),
            ("a[", "a["),
            ("*a*b", "xxaxxb"),
            ("", ""),
        ];
        for (p, n) in yes {
            assert!(fnmatch(p.as_bytes(), n.as_bytes(), false), "{p} {n}");
        }
        let no: &[(&str, &str)] = &[
            ("*.conf", "a.confx"),
            ("?", ""),
            ("a[bc]d", "aed"),
            ("a[!bc]d", "abd"),
            ("\\*", "a"),
            ("[a-c]x", "dx"),
            ("abc", "ABC"),
            ("*a*b", "xxaxxbc"),
        ];
        for (p, n) in no {
            assert!(!fnmatch(p.as_bytes(), n.as_bytes(), false), "{p} {n}");
        }
        assert!(fnmatch(b"ABC*", b"abcd", true));
        assert!(fnmatch(b"[A-C]x", b"bX", true));
        // A negated bracket folds both sides, as glibc's FNM_CASEFOLD does.
        assert!(fnmatch(b"[!a]", b"A", false));
        assert!(!fnmatch(b"[!a]", b"A", true));
        assert!(fnmatch(b"\xff*", b"\xff\xfe", false));
    }

    #[test]
    fn sizes_round_up_to_units() {
        let t = |s: &str, size: u64| SizeTest::parse(s).unwrap().matches(size);
        assert!(t("-1M", 0));
        assert!(!t("-1M", 1));
        assert!(t("1M", 1));
        assert!(t("1M", 1 << 20));
        assert!(!t("1M", (1 << 20) + 1));
        assert!(t("+1M", (1 << 20) + 1));
        assert!(t("1", 512));
        assert!(t("2", 513));
        assert!(t("10c", 10));
        assert!(t("0", 0));
        assert!(SizeTest::parse("1x").is_err());
        assert!(SizeTest::parse("k").is_err());
        assert!(SizeTest::parse("+-1").is_err());
    }

    #[test]
    fn times_round_like_gnu_find() {
        let now = Timestamp {
            sec: 1_000_000_000,
            nsec: 500_000_000,
        };
        let age = |secs: i64, ms: u32| {
            let t = ns(now) - i128::from(secs) * NS - i128::from(ms) * 1_000_000;
            Timestamp {
                sec: (t.div_euclid(NS)) as i64,
                nsec: t.rem_euclid(NS) as u32,
            }
        };
        let mmin = |a: &str, t| TimeTest::mmin(a, now).unwrap().matches(t);
        let mtime = |a: &str, t| TimeTest::mtime(a, now).unwrap().matches(t);
        // What GNU find 4.9 answered for files of these ages (tests/find_cli.rs checks it live).
        assert!(mmin("1", age(59, 900)));
        assert!(!mmin("1", age(60, 0)));
        assert!(mmin("-1", age(59, 999)));
        assert!(mmin("+1", age(60, 1)));
        assert!(!mmin("+1", age(60, 0)));
        assert!(mmin("0", age(-1, 0)));
        assert!(!mmin("0", age(0, 1)));
        assert!(mtime("0", age(86_399, 900)));
        assert!(!mtime("0", age(86_400, 0)));
        assert!(mtime("-1", age(86_400, 500)));
        assert!(!mtime("-1", age(86_401, 0)));
        assert!(mtime("+0", age(86_400, 1)));
        assert!(mtime("1", age(86_400, 0)));
        assert!(!mtime("+1", age(172_800, 0)));
        assert!(mtime("+1", age(172_800, 1)));
        assert!(mtime("-0", age(0, 999)));
        assert!(mmin("-1.5", age(89, 0)));
        assert!(!mmin("-1.5", age(90, 1)));
        assert!(TimeTest::mmin("x", now).is_err());
        assert!(TimeTest::mmin("--1", now).is_err());
    }

    #[test]
    fn start_names_as_find_takes_them() {
        assert_eq!(start_name(b"/"), b"/");
        assert_eq!(start_name(b"///"), b"/");
        assert_eq!(start_name(b"/etc/"), b"etc");
        assert_eq!(start_name(b"/usr/lib"), b"lib");
        assert_eq!(start_name(b"etc"), b"etc");
    }

    #[test]
    fn ls_dates_like_find() {
        let now = Timestamp {
            sec: 1_764_665_100, // 2025-12-02 08:45 UTC
            nsec: 0,
        };
        assert_eq!(
            ls_date(
                Timestamp {
                    sec: 1_764_665_000,
                    nsec: 0
                },
                now
            ),
            "Dec  2 08:43"
        );
        assert_eq!(
            ls_date(
                Timestamp {
                    sec: 1_361_455_380,
                    nsec: 0
                },
                now
            ),
            "Feb 21  2013"
        );
        assert_eq!(
            ls_date(
                Timestamp {
                    sec: 1_764_665_200,
                    nsec: 0
                },
                now
            ),
            "Dec  2  2025"
        );
        assert_eq!(
            iso_time(Timestamp {
                sec: 1_361_455_380,
                nsec: 5
            }),
            "2013-02-21T14:03:00.000000005Z"
        );
    }

    use crate::fs::mem::MemFs;
    use crate::fs::{DirEntry, FileExtent, FsStatus, Xattr};

    /// `find` over `fs` from `start`: the paths shown, and the problems.
    fn run(fs: &dyn FsView, start: &[u8], q: &Query) -> (Vec<String>, Vec<String>) {
        let (mut found, mut problems) = (Vec::new(), Vec::new());
        walk(fs, start, q, &AtomicBool::new(false), &mut |ev| match ev {
            Event::Found(f) => found.push(f.shown),
            Event::Problem(p) => problems.push(p),
            Event::Progress(_) => {}
        })
        .unwrap();
        (found, problems)
    }

    #[test]
    fn loops_end_and_are_reported() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let a = fs.add_dir(root, b"a", 0o755);
        let b = fs.add_dir(a, b"b", 0o755);
        fs.add_file(b, b"f", 0o644, b"x");
        // b holds its own grandparent: a loop.
        fs.link(b, b"up", a);
        let (found, problems) = run(&fs, b"/", &Query::default());
        assert_eq!(found, ["/", "/a", "/a/b", "/a/b/f", "/a/b/up"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("‘/a/b/up’: a directory already walked"));
    }

    #[test]
    fn impossible_names_are_shown_escaped_and_not_entered() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let d = fs.add_dir(root, b"x/y", 0o755);
        fs.add_file(d, b"inside", 0o644, b"");
        fs.add_file(root, b"\x1b[2J", 0o644, b"");
        let (found, _) = run(&fs, b"/", &Query::default());
        assert_eq!(found, ["/", "/x\\x2fy", "/\\x1b[2J"]);
    }

    /// A view whose nodes under one directory report another device.
    struct TwoDevices {
        inner: MemFs,
        other: Vec<NodeId>,
    }

    impl FsView for TwoDevices {
        fn status(&self) -> FsStatus {
            self.inner.status()
        }
        fn root(&self) -> NodeId {
            self.inner.root()
        }
        fn metadata(&self, node: NodeId) -> Result<Metadata> {
            self.inner.metadata(node)
        }
        fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
            self.inner.read_dir(dir)
        }
        fn read_link(&self, node: NodeId) -> Result<Vec<u8>> {
            self.inner.read_link(node)
        }
        fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
            self.inner.read_at(node, offset, buf)
        }
        fn extents(&self, node: NodeId) -> Result<Vec<FileExtent>> {
            self.inner.extents(node)
        }
        fn xattrs(&self, node: NodeId) -> Result<Vec<Xattr>> {
            self.inner.xattrs(node)
        }
        fn dev(&self, node: NodeId) -> u64 {
            u64::from(self.other.contains(&node))
        }
    }

    #[test]
    fn xdev_tests_the_mountpoint_but_does_not_enter_it() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let home = fs.add_dir(root, b"home", 0o755);
        let etc = fs.add_dir(root, b"etc", 0o755);
        fs.add_file(etc, b"passwd", 0o644, b"");
        let mut node = fs.node_mut(home).unwrap().clone();
        node.entries.clear();
        let user = fs.add(home, b"user", node);
        let fs = TwoDevices {
            inner: fs,
            other: vec![home, user],
        };
        let all = run(&fs, b"/", &Query::default()).0;
        assert_eq!(all, ["/", "/home", "/home/user", "/etc", "/etc/passwd"]);
        let q = Query {
            xdev: true,
            ..Query::default()
        };
        assert_eq!(run(&fs, b"/", &q).0, ["/", "/home", "/etc", "/etc/passwd"]);
        // Started inside the other volume, -xdev stays there.
        assert_eq!(run(&fs, b"/home", &q).0, ["/home", "/home/user"]);
    }

    #[test]
    fn cancel_stops_the_walk() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        for i in 0..10 {
            let d = fs.add_dir(root, format!("d{i}").as_bytes(), 0o755);
            fs.add_file(d, b"f", 0o644, b"");
        }
        let cancel = AtomicBool::new(false);
        let mut found = 0;
        walk(&fs, b"/", &Query::default(), &cancel, &mut |ev| {
            if let Event::Found(_) = ev {
                found += 1;
                if found == 3 {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        })
        .unwrap();
        assert!(found < 6, "{found}");
    }

    #[test]
    fn newest_keeps_the_latest_changes_newest_first() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        for i in 0..50i64 {
            let f = fs.add_file(root, format!("f{i}").as_bytes(), 0o644, b"");
            // Times out of order: 0, 17, 34, 1, ...
            let t = (i * 17) % 50;
            fs.node_mut(f).unwrap().meta.mtime = Timestamp { sec: t, nsec: 0 };
        }
        fs.node_mut(root).unwrap().meta.mtime = Timestamp { sec: -5, nsec: 0 };
        let (top, counts) = newest(
            &fs,
            b"/",
            &Query::default(),
            5,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
        let times: Vec<i64> = top
            .iter()
            .map(|f| f.meta.as_ref().unwrap().mtime.sec)
            .collect();
        assert_eq!(times, [49, 48, 47, 46, 45]);
        assert_eq!(counts.seen, 51);
    }

    #[test]
    fn types_take_comma_lists() {
        let t = TypeSet::parse("f,l").unwrap();
        assert!(t.contains(FileType::Regular) && t.contains(FileType::Symlink));
        assert!(!t.contains(FileType::Directory));
        assert!(TypeSet::parse("x").is_err());
        assert!(TypeSet::parse("f,").is_err());
    }
}
