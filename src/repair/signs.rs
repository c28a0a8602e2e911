//! The signs of a wrong symlink, shared by the TUI's flags and `doctor`, so
//! both call the same links suspicious.
//!
//! A hard sign makes a link wrong by itself:
//! * dangling inside the guest: the target does not resolve (with the guest's
//!   `/` as root, as the guest would see it), unless it points into a
//!   directory the running guest fills ([`RUNTIME_DIRS`]);
//! * for a shared-library link in a library directory, what its target is:
//!   not ELF, truncated, of another class or machine, with the SONAME of
//!   another library, or a glibc file of another release than ld.so
//!   (`repair::candidates` reads the ELF facts).
//!
//! Soft signs are only evidence, shown next to a hard sign, never alone
//! (Debian's `libdevmapper-event-lvm2*.so -> device-mapper/…` point outside
//! the library directories, and a package update changes a few links long
//! after their neighbours):
//! * a shared-library link in a library directory that points outside the
//!   library directories (`/lib64/libc.so.6 -> /opt/glibc-2.14/lib/libc.so.6`);
//! * changed (ctime) much more recently than its neighbours: more than
//!   [`RECENT_MARGIN_SECS`] after 90 % of the other entries of the directory.

use crate::fs::path::components;

/// How much newer than its neighbours a link must be to be flagged: 30 days.
pub const RECENT_MARGIN_SECS: i64 = 30 * 86_400;
/// Fewest neighbours needed before the ctime comparison means anything.
pub const MIN_NEIGHBOURS: usize = 4;

/// The directories the guest's dynamic linker searches by default (and
/// common multiarch ones); `/etc/ld.so.conf` additions are the doctor's job.
pub const LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/lib32",
    "/libx32",
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/usr/libx32",
    "/usr/local/lib",
    "/usr/local/lib64",
];

/// Whether `dir` is a library directory (one of [`LIBRARY_DIRS`] or a
/// multiarch directory right below one, like `/usr/lib/x86_64-linux-gnu`).
pub fn is_library_dir(dir: &[u8]) -> bool {
    let d = trim_slash(dir);
    LIBRARY_DIRS.iter().any(|l| {
        let l = l.as_bytes();
        d == l
            || (d.len() > l.len()
                && d.starts_with(l)
                && d[l.len()] == b'/'
                && is_multiarch(&d[l.len() + 1..]))
    })
}

/// Whether `dir` holds programs (`/usr/bin`, `/sbin`, `/opt/x/bin`): a
/// library-like name there (`/usr/bin/ld.so`) is a command, not a library link.
pub fn is_program_dir(dir: &[u8]) -> bool {
    let (_, last) = crate::fs::path::split_last(trim_slash(dir));
    matches!(last.as_deref(), Some(b"bin") | Some(b"sbin"))
}

/// Whether a directory name is a multiarch triplet (`x86_64-linux-gnu`).
pub fn is_multiarch(name: &[u8]) -> bool {
    // `x86_64-linux-gnu`, `i386-linux-gnu`, `aarch64-linux-gnu`, `arm-linux-gnueabihf`.
    !name.contains(&b'/') && name.windows(7).any(|w| w == b"-linux-")
}

fn trim_slash(p: &[u8]) -> &[u8] {
    if p.len() > 1 && p.ends_with(b"/") {
        &p[..p.len() - 1]
    } else {
        p
    }
}

/// Directories the guest fills only while it runs (sockets, pid files, device
/// nodes): a link into them is dangling on a stopped guest by nature.
pub const RUNTIME_DIRS: &[&str] = &["/run", "/var/run", "/var/lock", "/proc", "/sys", "/dev"];

/// Whether `path` is inside one of [`RUNTIME_DIRS`].
pub fn is_runtime_path(path: &[u8]) -> bool {
    RUNTIME_DIRS.iter().any(|d| {
        let d = d.as_bytes();
        path.starts_with(d) && (path.len() == d.len() || path[d.len()] == b'/')
    })
}

/// Whether a name looks like a shared library's SONAME (`libX.so.N`, `ld-*.so.N`).
pub fn is_library_name(name: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    let Some(pos) = s.find(".so") else {
        return false;
    };
    let (stem, rest) = s.split_at(pos);
    let rest = &rest[3..];
    (stem.starts_with("lib") || stem.starts_with("ld"))
        && !stem.is_empty()
        && (rest.is_empty()
            || (rest.starts_with('.')
                && rest[1..]
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))))
}

/// The directory part of a guest path (`/opt/glibc-2.14/lib/libc.so.6` → `/opt/glibc-2.14/lib`).
pub fn parent(path: &[u8]) -> Vec<u8> {
    crate::fs::path::split_last(path).0
}

/// A lexical absolute path for `target` seen from directory `dir` (no symlinks followed).
pub fn lexical(dir: &[u8], target: &[u8]) -> Vec<u8> {
    let mut stack: Vec<&[u8]> = Vec::new();
    if target.first() != Some(&b'/') {
        stack.extend(components(dir));
    }
    for c in components(target) {
        match c {
            b"." => {}
            b".." => {
                stack.pop();
            }
            c => stack.push(c),
        }
    }
    let mut out = Vec::new();
    for c in stack {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The ctimes of a directory's entries, sorted once, to compare each link
/// with the others in O(log n).
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    sorted: Vec<i64>,
}

impl Neighbours {
    /// From the ctimes of every entry of a directory.
    pub fn new(mut ctimes: Vec<i64>) -> Neighbours {
        ctimes.sort_unstable();
        Neighbours { sorted: ctimes }
    }

    /// For an entry changed at `ctime` (one of the entries): the ctime it
    /// must exceed to be "much newer than its neighbours" (90th percentile of
    /// the others plus [`RECENT_MARGIN_SECS`]) and the others' median.
    pub fn threshold_without(&self, ctime: i64) -> Option<(i64, i64)> {
        let n = self.sorted.len();
        if n < MIN_NEIGHBOURS + 1 {
            return None;
        }
        let pos = self.sorted.partition_point(|&x| x < ctime);
        // Index `k` among the others (the entry itself taken out).
        let others = |k: usize| {
            if k < pos {
                self.sorted[k]
            } else {
                self.sorted[(k + 1).min(n - 1)]
            }
        };
        let m = n - 1;
        let p90 = others((m * 9 / 10).min(m - 1));
        let median = others(m / 2);
        Some((p90.saturating_add(RECENT_MARGIN_SECS), median))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_dirs_and_names() {
        assert!(is_library_dir(b"/lib64"));
        assert!(is_library_dir(b"/usr/lib/x86_64-linux-gnu"));
        assert!(!is_library_dir(b"/opt/glibc-2.14/lib"));
        assert!(!is_library_dir(b"/usr/lib/python2.6"));
        assert!(is_program_dir(b"/usr/bin"));
        assert!(is_program_dir(b"/sbin/"));
        assert!(!is_program_dir(b"/usr/lib64"));
        assert!(!is_program_dir(b"/"));
    }

    #[test]
    fn runtime_paths() {
        assert!(is_runtime_path(b"/var/run/mysqld/mysqld.sock"));
        assert!(is_runtime_path(b"/dev"));
        assert!(!is_runtime_path(b"/devices/x"));
        assert!(!is_runtime_path(b"/var/lib/x"));
    }

    #[test]
    fn library_names() {
        assert!(is_library_name(b"libc.so.6"));
        assert!(is_library_name(b"ld-linux-x86-64.so.2"));
        assert!(is_library_name(b"libz.so"));
        assert!(!is_library_name(b"python2.6"));
        assert!(!is_library_name(b"libc-2.12.so.bak"));
    }

    #[test]
    fn lexical_paths() {
        assert_eq!(lexical(b"/lib64", b"libc-2.12.so"), b"/lib64/libc-2.12.so");
        assert_eq!(
            lexical(b"/usr/lib64", b"../../lib64/libz.so.1"),
            b"/lib64/libz.so.1"
        );
        assert_eq!(lexical(b"/lib64", b"/opt/x/libc.so.6"), b"/opt/x/libc.so.6");
        assert_eq!(lexical(b"/", b"../.."), b"/");
    }

    #[test]
    fn recent_needs_neighbours() {
        assert_eq!(Neighbours::new(vec![1, 2, 3, 4]).threshold_without(4), None);
        // One newer entry among four old ones: compared with the old ones only.
        let n = Neighbours::new(vec![100, 100, 100, 100, 5_000_000]);
        assert_eq!(
            n.threshold_without(5_000_000),
            Some((100 + RECENT_MARGIN_SECS, 100))
        );
        // An old entry is compared with the others, the new one included.
        let (t, median) = n.threshold_without(100).unwrap();
        assert_eq!((t, median), (5_000_000 + RECENT_MARGIN_SECS, 100));
        // When more than a tenth of the directory changed together (a package
        // update), none of them stands out.
        let mut v = vec![100; 17];
        v.extend([9_000_000, 9_000_000, 9_000_000]);
        let n = Neighbours::new(v);
        let (t, _) = n.threshold_without(9_000_000).unwrap();
        assert!(9_000_000 <= t);
    }
}
