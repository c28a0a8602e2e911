//! Suspicious symlinks in the library and program directories (dangling,
//! pointing at the wrong library), each with the relink proposed. A link the
//! closure check already reported is not reported again.

use super::{Check, Checked, Context, Finding, Impact, Repair, Severity};
use crate::fs::{FileType, path};
use crate::repair::candidates::is_glibc_soname;
use crate::repair::signs;
use crate::text::escape;

/// Directories with programs, looked at besides the library directories.
const BIN_DIRS: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin"];

/// Look at every symlink of the library and program directories.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
    let fs = ctx.fs;
    let guest = &ctx.guest;
    let mut dirs: Vec<Vec<u8>> = guest.lib_dirs.clone();
    for d in BIN_DIRS {
        if let Ok(r) = path::resolve(fs, d.as_bytes(), true)
            && !dirs.contains(&r.path)
        {
            dirs.push(r.path);
        }
    }
    let mut looked = 0usize;
    let mut found = Vec::new();
    for dir in &dirs {
        let Ok(r) = path::resolve(fs, dir, true) else {
            continue;
        };
        let Ok(entries) = fs.read_dir(r.node) else {
            continue;
        };
        for e in entries {
            let Ok(m) = fs.metadata(e.node) else { continue };
            if m.file_type != FileType::Symlink {
                continue;
            }
            looked += 1;
            let link = path::join(dir, &e.name);
            if out.iter().any(|f| f.path.as_deref() == Some(&link[..])) {
                continue;
            }
            let Ok(a) = guest.analyze(&link) else {
                continue;
            };
            if a.problems.is_empty() {
                continue;
            }
            let (_, name) = path::split_last(&a.link);
            let (severity, rank) = match name {
                Some(n) if a.library && is_glibc_soname(&n) => (Severity::Critical, 3u8),
                _ if a.library => (Severity::Error, 2),
                _ => (Severity::Warning, 1),
            };
            found.push((rank, a, severity));
        }
    }
    // A link dangling only because the link it points at is wrong
    // (`/usr/bin/ld.so -> /lib64/ld-linux-x86-64.so.2`) is that one's
    // evidence, not a finding of its own.
    // The same for a link an earlier check (the closure) reported.
    let mut via: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut explained: Vec<Vec<u8>> = Vec::new();
    for (_, a, _) in &found {
        if a.meta.file_type != FileType::Symlink || path::resolve(fs, &a.link, true).is_ok() {
            continue;
        }
        let (dir, _) = path::split_last(&a.link);
        let Ok(next) = path::resolve(fs, &signs::lexical(&dir, &a.target), false) else {
            continue;
        };
        if next.path == a.link {
            continue;
        }
        if let Some(f) = out
            .iter_mut()
            .find(|f| f.path.as_deref() == Some(&next.path[..]))
        {
            f.evidence.push(format!(
                "{} points at it and dangles with it",
                escape(&a.link)
            ));
            explained.push(a.link.clone());
        } else if found.iter().any(|(_, b, _)| b.link == next.path) {
            via.push((a.link.clone(), next.path));
        }
    }
    found.retain(|(_, a, _)| !explained.contains(&a.link));
    found.retain(|(_, a, _)| {
        !via.iter()
            .any(|(from, to)| *from == a.link && !via.iter().any(|(f, _)| f == to))
    });
    for (_, a, _) in &mut found {
        for (from, to) in &via {
            if *to == a.link {
                a.problems
                    .push(format!("{} points at it and dangles with it", escape(from)));
            }
        }
    }
    found.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| b.1.problems.len().cmp(&a.1.problems.len()))
            .then_with(|| b.1.meta.ctime.cmp(&a.1.meta.ctime))
    });
    let n = found.len();
    for (_, a, severity) in found {
        out.push(Finding {
            check: Check::Links,
            severity,
            impact: if severity == Severity::Critical {
                Impact::Boot
            } else {
                Impact::Other
            },
            summary: format!(
                "{} -> {}: {}",
                escape(&a.link),
                escape(&a.target),
                a.problems.first().cloned().unwrap_or_default()
            ),
            // The first problem is in the summary.
            evidence: a.problems.iter().skip(1).cloned().collect(),
            path: Some(a.link.clone()),
            repair: Some(Repair::Relink(Box::new(a))),
        });
    }
    Checked {
        check: Check::Links,
        summary: format!(
            "{looked} symlinks in {} library and program directories, {n} suspicious",
            dirs.len()
        ),
    }
}
