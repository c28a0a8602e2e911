//! The dynamic-linking closure of what boots: the init the kernel runs,
//! the shells, `login`, the gettys, `sshd` and the programs the default
//! systemd target's units start, each loaded as the guest's `ld.so` would
//! ([`crate::elf::loader`]). Reported, once per broken object with the
//! programs it breaks: an interpreter or library that is missing, not ELF,
//! truncated or of another architecture; a needed symbol version the
//! provider does not define (`DT_VERNEED` against `DT_VERDEF`); a
//! `libc.so.6` of another glibc release than the `ld.so` it runs under.

use std::collections::{BTreeMap, HashSet};

use super::{Check, Checked, Context, Finding, Impact, Repair, Severity};
use crate::elf::loader::{Failure, Flavor, Loaded, Loader, Probe, Process};
use crate::elf::{self, compare_versions};
use crate::fs::{FileType, FsView, NodeId, path};
use crate::repair::candidates::version_from_name;
use crate::text::escape;

/// Most interpreters of interpreters followed (the kernel's `BINPRM_MAX_RECURSION`).
const MAX_SCRIPT_DEPTH: usize = 4;
/// Most programs looked at.
const MAX_PROGRAMS: usize = 512;
/// Most systemd units looked at.
const MAX_UNITS: usize = 1024;
/// What the kernel runs when no `init=` is given, the first that exists
/// (`init/main.c`, `kernel_init`).
const KERNEL_INITS: &[&str] = &["/sbin/init", "/etc/init", "/bin/init", "/bin/sh"];
/// Where systemd looks for unit files, in order.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// Where systemd looks for a command given without a path.
const EXEC_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Why a program is looked at, and what breaks with it.
#[derive(Debug, Clone)]
struct Root {
    /// `init`, `/bin/sh`, `root's shell`, `ssh.service`.
    label: String,
    severity: Severity,
    impact: Impact,
}

/// One broken object and what it breaks.
struct Broken {
    summary: String,
    evidence: Vec<String>,
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    /// Labels of the roots it breaks, in order met.
    roots: Vec<Root>,
    /// Other problems met with the same object, one line each (at most [`MAX_MORE`]).
    more: Vec<String>,
    /// How many more were left out.
    more_count: usize,
}

/// Most further problems of one object said in its evidence.
const MAX_MORE: usize = 4;
/// Most roots named in a finding's evidence.
const MAX_ROOTS_SHOWN: usize = 12;

/// Resolve what boots and report what cannot load.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
    let fs = ctx.fs;
    let read = |node: NodeId| ctx.guest.elf(node);
    let loader = Loader::new(fs, &read);
    let programs = roots(ctx);
    let mut broken: BTreeMap<Vec<u8>, Broken> = BTreeMap::new();
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut objects: HashSet<NodeId> = HashSet::new();
    let mut releases: BTreeMap<NodeId, Option<String>> = BTreeMap::new();
    let mut programs_seen = 0usize;
    for (program, why) in &programs {
        let Some(start) = path::resolve(fs, program, true).ok() else {
            if let Some(init) = why.iter().find(|r| r.impact == Impact::Boot)
                && looks_like_root(fs)
            {
                note(
                    &mut broken,
                    &mut order,
                    program.clone(),
                    None,
                    format!("{} does not exist", escape(program)),
                    vec![format!("{} is {}", init.label, escape(program))],
                    why,
                );
            }
            continue;
        };
        // Scripts run their interpreter: follow the #! lines.
        let mut exe = start.path.clone();
        let mut chain = vec![describe_root(program, &start.path)];
        let mut ok = true;
        for _ in 0..MAX_SCRIPT_DEPTH {
            let Some(interp) = shebang(fs, &exe) else {
                break;
            };
            chain.push(format!(
                "{} is a script run by {}",
                escape(&exe),
                escape(&interp)
            ));
            match path::resolve(fs, &interp, true) {
                Ok(r)
                    if fs
                        .metadata(r.node)
                        .is_ok_and(|m| m.file_type == FileType::Regular) =>
                {
                    exe = r.path;
                }
                _ => {
                    let dangling = match loader.probe(&interp) {
                        Probe::Dangling(l) => Some(l),
                        _ => None,
                    };
                    note(
                        &mut broken,
                        &mut order,
                        dangling.clone().unwrap_or_else(|| exe.clone()),
                        dangling,
                        format!(
                            "the interpreter {} of {} does not exist",
                            escape(&interp),
                            escape(&exe)
                        ),
                        chain.clone(),
                        why,
                    );
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let Some(process) = loader.load(&exe) else {
            continue;
        };
        programs_seen += 1;
        for o in &process.objects {
            objects.insert(o.file.node);
        }
        examine(
            &process,
            &loader,
            fs,
            &chain,
            why,
            &mut broken,
            &mut order,
            &mut releases,
        );
    }
    for key in order {
        let Some(b) = broken.remove(&key) else {
            continue;
        };
        out.push(finding(ctx, b));
    }
    let mut summary = format!("{} ELF objects for {programs_seen} programs", objects.len());
    if let Some(p) = &loader.cache_problem {
        summary.push_str(&format!(" ({p})"));
    }
    Checked {
        check: Check::Linking,
        summary,
    }
}

/// The checks of one loaded program: failures, symbol versions, glibc pairing.
#[allow(clippy::too_many_arguments)]
fn examine(
    p: &Process,
    loader: &Loader<'_>,
    fs: &dyn FsView,
    chain: &[String],
    why: &[Root],
    broken: &mut BTreeMap<Vec<u8>, Broken>,
    order: &mut Vec<Vec<u8>>,
    releases: &mut BTreeMap<NodeId, Option<String>>,
) {
    for f in &p.failures {
        match f {
            Failure::NotFound {
                name,
                needed_by,
                tried,
                dangling,
            } => {
                let is_interp = p.objects.first().and_then(|o| o.info.interp.as_ref())
                    == Some(name)
                    && name.contains(&b'/');
                let requester = p.objects.get(*needed_by);
                let mut evidence = chain.to_vec();
                if requester.is_some() {
                    evidence.extend(needs_chain(p, *needed_by));
                }
                let summary = if is_interp {
                    evidence.push(format!("{} is its interpreter (PT_INTERP)", escape(name)));
                    format!("the program interpreter {} does not exist", escape(name))
                } else {
                    let by = requester.map(|r| escape(&r.file.file)).unwrap_or_default();
                    evidence.push(format!("{by} needs {}", escape(name)));
                    format!(
                        "{} (needed by {by}) is not found where ld.so looks",
                        escape(name)
                    )
                };
                evidence.extend(tried.iter().cloned());
                if !is_interp {
                    evidence.push(searched(loader, p, *needed_by));
                }
                let key = match dangling {
                    Some(l) => l.clone(),
                    None if is_interp => name.clone(),
                    None => [b"\0missing:".as_slice(), name].concat(),
                };
                let at = dangling
                    .clone()
                    .or_else(|| is_interp.then(|| name.clone()))
                    .or_else(|| requester.map(|r| r.file.file.clone()))
                    .unwrap_or_default();
                note_keyed(
                    broken,
                    order,
                    key,
                    at,
                    dangling.clone(),
                    summary,
                    evidence,
                    why,
                );
            }
            Failure::Unusable {
                name,
                needed_by,
                file,
                reason,
            } => {
                let mut evidence = chain.to_vec();
                match needed_by {
                    Some(i) => {
                        evidence.extend(needs_chain(p, *i));
                        if let Some(r) = p.objects.get(*i) {
                            evidence.push(format!(
                                "{} needs {}",
                                escape(&r.file.file),
                                escape(name)
                            ));
                        }
                    }
                    None => {
                        evidence.push(format!("{} is its interpreter (PT_INTERP)", escape(name)))
                    }
                }
                evidence.push(file.describe(name));
                evidence.push(format!("{}: {reason}", escape(&file.file)));
                let summary = format!("{} cannot be loaded: {reason}", escape(&file.file));
                note(
                    broken,
                    order,
                    file.at_fault().to_vec(),
                    file.link.clone(),
                    summary,
                    evidence,
                    why,
                );
            }
        }
    }
    if p.flavor != Flavor::Glibc {
        return;
    }
    // Symbol versions: each needed version defined by the provider.
    for (i, o) in p.objects.iter().enumerate() {
        for need in &o.info.verneed {
            let Some(provider) = p.objects.iter().find(|x| x.names.contains(&need.file)) else {
                continue;
            };
            let defs = &provider.info.versions;
            if defs.is_empty() && provider.info.version_base.is_none() {
                // No version information: ld.so only warns.
                continue;
            }
            let mut missing: Vec<&str> = need
                .versions
                .iter()
                .filter(|v| !v.weak)
                .filter(|v| {
                    !defs.contains(&v.name) && provider.info.version_base.as_ref() != Some(&v.name)
                })
                .map(|v| v.name.as_str())
                .collect();
            if missing.is_empty() {
                continue;
            }
            missing.sort_by(|a, b| compare_versions(version_tail(a), version_tail(b)));
            let mut evidence = chain.to_vec();
            evidence.extend(needs_chain(p, i));
            evidence.push(format!(
                "{} needs {} of {}",
                escape(&o.file.file),
                missing.join(", "),
                escape(&need.file)
            ));
            evidence.push(provider.file.describe(&need.file));
            let have = highest_like(defs, missing.first().copied().unwrap_or_default());
            let provides = match &have {
                Some(h) => format!("provides up to {h}"),
                None => format!("defines {}", list(defs)),
            };
            evidence.push(format!("{} here {provides}", escape(&need.file)));
            let summary = format!(
                "{} lacks {} that {} needs ({} here {provides})",
                escape(&provider.file.file),
                missing.join(", "),
                escape(&o.file.file),
                escape(&need.file),
            );
            note(
                broken,
                order,
                provider.file.at_fault().to_vec(),
                provider.file.link.clone(),
                summary,
                evidence,
                why,
            );
        }
    }
    // libc.so.6 and ld.so of one glibc release.
    let Some(ld) = p.interp.and_then(|i| p.objects.get(i)) else {
        return;
    };
    let Some((li, libc)) = p
        .objects
        .iter()
        .enumerate()
        .find(|(_, o)| o.info.soname.as_deref() == Some(b"libc.so.6"))
    else {
        return;
    };
    let (Some(lv), Some(dv)) = (release(fs, libc, releases), release(fs, ld, releases)) else {
        return;
    };
    if lv == dv {
        return;
    }
    let mut evidence = chain.to_vec();
    evidence.extend(needs_chain(p, li));
    evidence.push(libc.file.describe(b"libc.so.6"));
    let ld_name = ld
        .info
        .soname
        .clone()
        .unwrap_or_else(|| ld.file.file.clone());
    let private = libc
        .info
        .verneed
        .iter()
        .find(|n| ld.names.contains(&n.file))
        .and_then(|n| n.versions.iter().find(|v| v.name == "GLIBC_PRIVATE"));
    if private.is_some() {
        evidence.push(format!(
            "needs GLIBC_PRIVATE of {}; {} is glibc {dv}",
            escape(&ld_name),
            escape(&ld.file.file)
        ));
    }
    evidence.push(format!(
        "{} is glibc {lv} but the interpreter {} is glibc {dv}",
        escape(&libc.file.file),
        if ld.file.opened == ld.file.file {
            escape(&ld.file.file)
        } else {
            format!("{} -> {}", escape(&ld.file.opened), escape(&ld.file.file))
        }
    ));
    let summary = format!(
        "libc.so.6 is glibc {lv} ({}) but ld.so is glibc {dv} ({})",
        escape(&libc.file.file),
        escape(&ld.file.file)
    );
    let key = libc.file.at_fault().to_vec();
    note(
        broken,
        order,
        key.clone(),
        libc.file.link.clone(),
        summary.clone(),
        evidence,
        why,
    );
    // The pairing is said whatever else was found first about that libc.
    if let Some(b) = broken.get_mut(&key)
        && b.summary != summary
        && !b.more.contains(&summary)
    {
        b.more.insert(0, summary);
        if b.more.len() > MAX_MORE {
            b.more.truncate(MAX_MORE);
        } else {
            b.more_count = b.more_count.saturating_sub(1);
        }
    }
}

/// The glibc release of a libc or ld.so: from a versioned file name
/// (`libc-2.12.so`), else from its release banner. Read once per file.
fn release(
    fs: &dyn FsView,
    o: &Loaded,
    cache: &mut BTreeMap<NodeId, Option<String>>,
) -> Option<String> {
    cache
        .entry(o.file.node)
        .or_insert_with(|| {
            let (_, name) = path::split_last(&o.file.file);
            name.as_deref()
                .and_then(version_from_name)
                .or_else(|| elf::release_version(fs, o.file.node))
        })
        .clone()
}

/// `2.34` of `GLIBC_2.34`.
fn version_tail(v: &str) -> &str {
    v.trim_start_matches(|c: char| !c.is_ascii_digit())
}

/// The highest version of the same family (`GLIBC_`, `DEMO_`) as `like`.
fn highest_like(defs: &[String], like: &str) -> Option<String> {
    let prefix: String = like
        .chars()
        .take_while(|c| !c.is_ascii_digit())
        .collect::<String>();
    defs.iter()
        .filter(|d| !prefix.is_empty() && d.starts_with(&prefix))
        .filter(|d| d[prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
        .max_by(|a, b| compare_versions(&a[prefix.len()..], &b[prefix.len()..]))
        .cloned()
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "no versions".into()
    } else {
        v.join(", ")
    }
}

/// `/usr/bin/x needs libfoo.so.1`, … from the program down to object `i`.
fn needs_chain(p: &Process, i: usize) -> Vec<String> {
    let mut steps = Vec::new();
    let mut at = i;
    let mut guard = 0;
    while let Some(parent) = p.objects.get(at).and_then(|o| o.loader) {
        guard += 1;
        if guard > 64 {
            break;
        }
        let (Some(o), Some(par)) = (p.objects.get(at), p.objects.get(parent)) else {
            break;
        };
        let name = o.names.first().cloned().unwrap_or_default();
        steps.push(format!(
            "{} needs {}: {} ({})",
            escape(&par.file.file),
            escape(&name),
            escape(&o.file.file),
            o.how
        ));
        at = parent;
    }
    steps.reverse();
    steps
}

/// Where ld.so looked, in one line.
fn searched(loader: &Loader<'_>, p: &Process, i: usize) -> String {
    let Some(o) = p.objects.get(i) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if o.info.runpath.is_none()
        && let Some(rp) = &o.info.rpath
    {
        parts.push(format!("DT_RPATH {}", escape(rp)));
    }
    if let Some(rp) = &o.info.runpath {
        parts.push(format!("DT_RUNPATH {}", escape(rp)));
    }
    match &p.flavor {
        Flavor::Glibc => {
            if loader.cache().is_some() {
                parts.push("/etc/ld.so.cache".into());
            }
            let dirs: Vec<String> = loader
                .default_dirs(o.info.class, o.info.machine, o.info.big_endian)
                .iter()
                .map(|d| escape(&d.dir))
                .collect();
            parts.push(dirs.join(", "));
        }
        Flavor::Musl(arch) => {
            let dirs: Vec<String> = loader
                .musl_dirs(arch)
                .iter()
                .map(|d| escape(&d.dir))
                .collect();
            parts.push(dirs.join(", "));
        }
    }
    format!("searched: {}", parts.join("; "))
}

fn describe_root(program: &[u8], resolved: &[u8]) -> String {
    if program == resolved {
        escape(program)
    } else {
        format!("{} -> {}", escape(program), escape(resolved))
    }
}

#[allow(clippy::too_many_arguments)]
fn note(
    broken: &mut BTreeMap<Vec<u8>, Broken>,
    order: &mut Vec<Vec<u8>>,
    at: Vec<u8>,
    link: Option<Vec<u8>>,
    summary: String,
    evidence: Vec<String>,
    why: &[Root],
) {
    note_keyed(broken, order, at.clone(), at, link, summary, evidence, why);
}

#[allow(clippy::too_many_arguments)]
fn note_keyed(
    broken: &mut BTreeMap<Vec<u8>, Broken>,
    order: &mut Vec<Vec<u8>>,
    key: Vec<u8>,
    at: Vec<u8>,
    link: Option<Vec<u8>>,
    summary: String,
    evidence: Vec<String>,
    why: &[Root],
) {
    let b = broken.entry(key.clone()).or_insert_with(|| {
        order.push(key);
        Broken {
            summary: summary.clone(),
            evidence: Vec::new(),
            path: at,
            link,
            roots: Vec::new(),
            more: Vec::new(),
            more_count: 0,
        }
    });
    // The first chain in full; later ones (other objects with the same
    // problem, another problem of the same object) in one line each, a few.
    if b.evidence.is_empty() {
        b.evidence = evidence;
    } else if b.summary != summary && !b.more.contains(&summary) {
        if b.more.len() < MAX_MORE {
            b.more.push(summary);
        } else {
            b.more_count += 1;
        }
    }
    for r in why {
        if !b.roots.iter().any(|x| x.label == r.label) {
            b.roots.push(r.clone());
        }
    }
}

fn finding(ctx: &Context<'_>, b: Broken) -> Finding {
    let severity = b
        .roots
        .iter()
        .map(|r| r.severity)
        .max()
        .unwrap_or(Severity::Error);
    let impact = b
        .roots
        .iter()
        .filter(|r| r.severity == severity)
        .map(|r| r.impact.clone())
        .min()
        .unwrap_or(Impact::Other);
    let labels: Vec<&str> = b.roots.iter().map(|r| r.label.as_str()).collect();
    let breaks = match labels.len() {
        0 => String::new(),
        1..=4 => labels.join(", "),
        n => format!("{} and {} more", labels[..3].join(", "), n - 3),
    };
    let mut evidence = b.evidence;
    evidence.extend(b.more);
    if b.more_count > 0 {
        evidence.push(format!("… and {} more like these", b.more_count));
    }
    let shown = labels.len().min(MAX_ROOTS_SHOWN);
    let mut all = labels[..shown].join(", ");
    if labels.len() > shown {
        all.push_str(&format!(" and {} more", labels.len() - shown));
    }
    evidence.push(format!("breaks: {all}"));
    let repair = b
        .link
        .as_ref()
        .and_then(|l| ctx.guest.analyze(l).ok())
        .filter(|a| a.proposal().is_some())
        .map(|a| Repair::Relink(Box::new(a)))
        .or_else(|| {
            Some(Repair::View {
                path: b.path.clone(),
                line: None,
                hint: b.summary.clone(),
            })
        });
    Finding {
        check: Check::Linking,
        severity,
        impact,
        summary: format!("{}: {breaks} cannot start", b.summary),
        evidence,
        path: Some(b.path),
        repair,
    }
}

/// The `#!` interpreter of a script, when `file` is one.
fn shebang(fs: &dyn FsView, file: &[u8]) -> Option<Vec<u8>> {
    let r = path::resolve(fs, file, true).ok()?;
    let mut buf = [0u8; 256];
    let n = fs.read_at(r.node, 0, &mut buf).ok()?;
    let head = buf.get(..n)?;
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&c| c == b'\n').next()?;
    let word = line
        .split(|&c| c == b' ' || c == b'\t')
        .find(|w| !w.is_empty())?;
    Some(word.to_vec())
}

/// The programs looked at, each with why (one program may be several roots).
fn roots(ctx: &Context<'_>) -> Vec<(Vec<u8>, Vec<Root>)> {
    let fs = ctx.fs;
    // (program, its resolved path, why), the resolved path deciding sameness.
    let mut out: Vec<(Vec<u8>, Vec<u8>, Vec<Root>)> = Vec::new();
    let add = |program: Vec<u8>, root: Root, out: &mut Vec<(Vec<u8>, Vec<u8>, Vec<Root>)>| {
        let key = path::resolve(fs, &program, true)
            .map(|r| r.path)
            .unwrap_or_else(|_| program.clone());
        let full = out.len() >= MAX_PROGRAMS;
        if let Some((_, _, why)) = out.iter_mut().find(|(_, k, _)| *k == key) {
            if !why.iter().any(|w| w.label == root.label) {
                why.push(root);
            }
        } else if !full {
            out.push((program, key, vec![root]));
        }
    };
    // init= must work (the kernel panics otherwise); without it the kernel
    // runs the first of its fallbacks that exists.
    let (init, label) = match ctx.kernel_cmdline().and_then(init_from_cmdline) {
        Some(init) => (init, "init".to_string()),
        None => match KERNEL_INITS.iter().find(|p| exists(fs, p.as_bytes())) {
            Some(&"/sbin/init") | None => (b"/sbin/init".to_vec(), "init".to_string()),
            Some(p) => (
                p.as_bytes().to_vec(),
                format!("init ({p}: /sbin/init does not exist)"),
            ),
        },
    };
    add(
        init,
        Root {
            label,
            severity: Severity::Critical,
            impact: Impact::Boot,
        },
        &mut out,
    );
    let login = |label: &str| Root {
        label: label.into(),
        severity: Severity::Error,
        impact: Impact::Login,
    };
    for p in ["/bin/sh", "/bin/bash"] {
        if exists(fs, p.as_bytes()) {
            add(p.as_bytes().to_vec(), login(p), &mut out);
        }
    }
    if let Some(shell) = root_shell(fs)
        && exists(fs, &shell)
    {
        add(shell, login("root's shell"), &mut out);
    }
    for p in ["/bin/login", "/sbin/agetty", "/sbin/mingetty"] {
        if exists(fs, p.as_bytes()) {
            add(p.as_bytes().to_vec(), login(p), &mut out);
        }
    }
    if exists(fs, b"/usr/sbin/sshd") {
        add(
            b"/usr/sbin/sshd".to_vec(),
            Root {
                label: "sshd".into(),
                severity: Severity::Error,
                impact: Impact::Service("sshd".into()),
            },
            &mut out,
        );
    }
    for (unit, program) in unit_programs(fs) {
        if exists(fs, &program) {
            add(
                program,
                Root {
                    label: unit.clone(),
                    severity: Severity::Error,
                    impact: Impact::Service(unit),
                },
                &mut out,
            );
        }
    }
    out.into_iter().map(|(p, _, why)| (p, why)).collect()
}

/// The `init=` of a kernel command line: the last one before `--` (what
/// follows `--` is for init itself), as the kernel's `init_setup` keeps it.
fn init_from_cmdline(cmdline: &str) -> Option<Vec<u8>> {
    cmdline
        .split_whitespace()
        .take_while(|w| *w != "--")
        .filter_map(|w| w.strip_prefix("init="))
        .filter(|v| !v.is_empty())
        .last()
        .map(|s| s.as_bytes().to_vec())
}

/// Whether the tree is an operating system's root with programs (not a
/// data volume, not a skeleton): `/etc` and a shell, `login` or `sshd`.
fn looks_like_root(fs: &dyn FsView) -> bool {
    exists(fs, b"/etc")
        && [
            "/bin/sh",
            "/bin/bash",
            "/bin/busybox",
            "/bin/login",
            "/usr/sbin/sshd",
        ]
        .iter()
        .any(|p| exists(fs, p.as_bytes()))
}

fn exists(fs: &dyn FsView, p: &[u8]) -> bool {
    path::resolve(fs, p, true).is_ok()
}

/// Root's login shell, from `/etc/passwd`.
fn root_shell(fs: &dyn FsView) -> Option<Vec<u8>> {
    let text = crate::fs::read_small(fs, b"/etc/passwd", 1 << 20)?;
    text.split(|&c| c == b'\n')
        .map(|l| l.split(|&c| c == b':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&&b"root"[..]) && f.len() >= 7)
        .and_then(|f| f.get(6).map(|s| s.to_vec()))
        .filter(|s| s.starts_with(b"/"))
}

/// A unit file by name, where systemd would find it first (an instance
/// falls back to its template). `None` when absent or masked.
fn unit_file(fs: &dyn FsView, name: &str) -> Option<(Vec<u8>, String)> {
    let template = name.split_once('@').and_then(|(a, b)| {
        let (_, ext) = b.rsplit_once('.')?;
        Some(format!("{a}@.{ext}"))
    });
    for n in std::iter::once(name.to_string()).chain(template) {
        for d in UNIT_DIRS {
            let p = path::join(d.as_bytes(), n.as_bytes());
            let Ok(r) = path::resolve(fs, &p, true) else {
                continue;
            };
            if r.path == b"/dev/null" {
                return None;
            }
            if fs
                .metadata(r.node)
                .is_ok_and(|m| m.file_type == FileType::Regular)
            {
                let real = path::split_last(&r.path)
                    .1
                    .map(|n| String::from_utf8_lossy(&n).to_string())
                    .unwrap_or(n.clone());
                return Some((r.path, real));
            }
        }
    }
    None
}

/// The programs (`ExecStart=`) of the services the default target pulls
/// in: its `.wants`/`.requires` directories and `Wants=`/`Requires=`
/// lines, targets followed.
fn unit_programs(fs: &dyn FsView) -> Vec<(String, Vec<u8>)> {
    let Some((_, default)) = unit_file(fs, "default.target") else {
        return Vec::new();
    };
    let mut queue = vec![default];
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < queue.len() && seen.len() < MAX_UNITS {
        let unit = queue[i].clone();
        i += 1;
        if !seen.insert(unit.clone()) {
            continue;
        }
        let file = unit_file(fs, &unit);
        let text = file
            .as_ref()
            .and_then(|(p, _)| crate::fs::read_small(fs, p, 256 * 1024))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        if unit.ends_with(".target") {
            for d in UNIT_DIRS {
                for suffix in [".wants", ".requires"] {
                    let dir = format!("{d}/{unit}{suffix}");
                    let Ok(r) = path::resolve(fs, dir.as_bytes(), true) else {
                        continue;
                    };
                    let Ok(entries) = fs.read_dir(r.node) else {
                        continue;
                    };
                    for e in entries.iter().take(MAX_UNITS) {
                        queue.push(String::from_utf8_lossy(&e.name).to_string());
                    }
                }
            }
            for line in text.lines() {
                let line = line.trim();
                for key in ["Wants=", "Requires="] {
                    if let Some(v) = line.strip_prefix(key) {
                        queue.extend(v.split_whitespace().map(str::to_string));
                    }
                }
            }
        } else if unit.ends_with(".service") {
            for line in text.lines() {
                let Some(v) = line.trim().strip_prefix("ExecStart=") else {
                    continue;
                };
                let word = v.split_whitespace().next().unwrap_or("");
                let word = word.trim_start_matches(['@', '-', ':', '+', '!']);
                if word.is_empty() {
                    continue;
                }
                let program = if word.starts_with('/') {
                    Some(word.as_bytes().to_vec())
                } else {
                    EXEC_DIRS
                        .iter()
                        .map(|d| path::join(d.as_bytes(), word.as_bytes()))
                        .find(|p| exists(fs, p))
                };
                if let Some(p) = program {
                    out.push((unit.clone(), p));
                }
            }
        }
        if queue.len() > MAX_UNITS * 4 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;

    #[test]
    fn init_script_whose_interpreter_is_missing() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        fs.add_dir(root, b"etc", 0o755);
        let sbin = fs.add_dir(root, b"sbin", 0o755);
        fs.add_file(sbin, b"init", 0o755, b"#! /bin/busybox-gone sh\necho\n");
        let ctx = Context::new(&fs, None, None);
        let mut out = Vec::new();
        let checked = check(&ctx, &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.impact, Impact::Boot);
        assert_eq!(
            f.summary,
            "the interpreter /bin/busybox-gone of /sbin/init does not exist: init cannot start"
        );
        assert_eq!(f.path.as_deref(), Some(&b"/sbin/init"[..]));
        assert_eq!(checked.summary, "0 ELF objects for 0 programs");
    }

    #[test]
    fn init_of_the_kernel_command_line() {
        let init = |c: &str| init_from_cmdline(c).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(init("ro quiet"), None);
        assert_eq!(
            init("root=/dev/sda1 init=/bin/sh ro init=/lib/systemd/systemd").as_deref(),
            Some("/lib/systemd/systemd")
        );
        assert_eq!(
            init("init=/bin/bash -- init=/x").as_deref(),
            Some("/bin/bash")
        );
    }

    #[test]
    fn missing_init_only_in_a_root_with_programs() {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        fs.add_dir(root, b"etc", 0o755);
        let ctx = Context::new(&fs, None, None);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert!(out.is_empty(), "{out:#?}");
        let bin = fs.add_dir(root, b"bin", 0o755);
        fs.add_file(bin, b"login", 0o755, b"not a program");
        let ctx = Context::new(&fs, None, None);
        check(&ctx, &mut out);
        assert!(
            out.iter()
                .any(|f| f.summary == "/sbin/init does not exist: init cannot start"),
            "{out:#?}"
        );
        // Without /sbin/init the kernel runs /bin/sh: that one's closure counts.
        out.clear();
        fs.add_file(bin, b"sh", 0o755, b"#!/bin/sh-elsewhere\n");
        let ctx = Context::new(&fs, None, None);
        check(&ctx, &mut out);
        assert!(
            out.iter().all(|f| !f.summary.starts_with("/sbin/init")),
            "{out:#?}"
        );
        let f = out
            .iter()
            .find(|f| f.impact == Impact::Boot)
            .expect("/bin/sh as init");
        assert!(
            f.summary
                .contains("init (/bin/sh: /sbin/init does not exist)"),
            "{}",
            f.summary
        );
    }
}
