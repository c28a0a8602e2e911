//! The boot loader's default entry: does what it loads exist?
//!
//! The configuration is looked for where the loaders read it, first found
//! wins:
//! * GRUB 2 ([`grub`]): `/boot/efi/EFI/*/grub.cfg` when it holds a menu
//!   (not a stub that only loads another), `/boot/grub/grub.cfg`,
//!   `/boot/grub2/grub.cfg`; with `grubenv` (next to it, else
//!   `/boot/grub/grubenv`, `/boot/grub2/grubenv`, `/boot/efi/EFI/*/grubenv`)
//!   loaded first, and `blscfg` reading `/boot/loader/entries` ([`bls`]);
//! * systemd-boot: `loader/loader.conf` and `loader/entries/*.conf` on the
//!   ESP (`/boot/efi`, `/efi`, `/boot`) and on `/boot` (XBOOTLDR);
//! * GRUB legacy ([`legacy`]): `/boot/grub/grub.conf`, `/boot/grub/menu.lst`.
//!
//! Paths in an entry are relative to the filesystem the loader reads them
//! from: the one holding the configuration (or the BLS entry). With a
//! separate `/boot`, `/vmlinuz-x` is the guest's `/boot/vmlinuz-x`; the
//! path as written and under `/boot` are tried too, and `/@/boot/x` (a
//! btrfs subvolume GRUB names) as `/boot/x`.
//!
//! The default entry's kernel and every initramfs must exist and be
//! non-empty; `root=` and `rd.lvm.lv=` (`rd_LVM_LV=`) must name volumes of
//! the guest's disks; `/lib/modules/<version>` (or `/usr/lib/modules`)
//! must exist for its kernel unless the kernel's config says it has no
//! loadable modules. With an encrypted volume on the disks, `/dev/mapper`
//! names in `root=` and `rd.lvm.lv=` are not judged (they appear once the
//! initramfs unlocked it).

pub mod bls;
pub mod grub;
pub mod legacy;

use super::{Check, Checked, Context, Finding, Impact, Repair, Severity};
use crate::fs::path::{self, components};
use crate::fs::{FileType, read_small};
use crate::layers::fstab::SpecMatch;
use crate::text::{escape, escape_str};

/// The largest configuration file read (bytes).
const MAX_CONFIG: usize = 1 << 20;
/// The most BLS entry files read from one directory.
const MAX_BLS: usize = 256;

/// A file an entry loads, as written, with the line that names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRef {
    /// The path as the entry gives it (a `(device)` prefix may lead it).
    pub path: String,
    /// 1-based line in the entry's file.
    pub line: u32,
}

/// One boot entry, as its loader would run it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// Its title (for a GRUB submenu's entry, the title alone).
    pub title: String,
    /// Its id (`--id`, or the BLS file name without `.conf`).
    pub id: Option<String>,
    /// The guest file that holds it when it is not the configuration
    /// itself (a BLS entry).
    pub file: Option<Vec<u8>>,
    /// 1-based line of the entry in its file.
    pub line: u32,
    /// The kernel (`linux`, `kernel`).
    pub kernel: Option<FileRef>,
    /// The initramfs files, in order.
    pub initrds: Vec<FileRef>,
    /// The kernel command line, variables expanded.
    pub cmdline: String,
    /// The kernel version, when the entry says it (BLS `version`).
    pub version: Option<String>,
    /// What it runs when it is not a Linux kernel (`chainloader`, `efi`…).
    pub other: Option<String>,
}

/// A loader's configuration, read.
struct Loaded {
    /// "GRUB 2", "systemd-boot", "GRUB legacy".
    loader: &'static str,
    /// The configuration file (guest path).
    config: Vec<u8>,
    /// Every entry in menu order, with its title path (`submenu>entry`).
    entries: Vec<(String, Entry)>,
    /// The default entry's index.
    default: Option<usize>,
    /// How the default was chosen, one step a line.
    why: Vec<String>,
    /// The guest file holding a `kernelopts` the BLS entries use (grubenv).
    kernelopts_from: Option<Vec<u8>>,
}

/// Run the check.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
    let Some(l) = load(ctx) else {
        // /boot (or the ESP) is a volume that is not here: the mounts check
        // says why; nothing can be told of the entries.
        let away = ctx.namespace.and_then(|ns| {
            ns.mounts().iter().find(|m| {
                m.state.is_unavailable()
                    && [b"/boot".as_slice(), b"/boot/efi", b"/efi"]
                        .contains(&m.mountpoint.as_slice())
            })
        });
        if let Some(m) = away {
            return Checked {
                check: Check::Boot,
                summary: format!(
                    "boot entries not checked: {} is not here ({})",
                    escape(&m.mountpoint),
                    m.state.reason().unwrap_or_default()
                ),
            };
        }
        // Only a guest root is expected to hold one.
        if is_root(ctx) {
            out.push(Finding {
                check: Check::Boot,
                severity: Severity::Note,
                impact: Impact::Other,
                summary: "no boot loader configuration found in the guest: the host may boot it directly".into(),
                evidence: vec!["none of /boot/grub/grub.cfg, /boot/grub2/grub.cfg, /boot/efi/EFI/*/grub.cfg, loader/entries, /boot/grub/grub.conf, /boot/grub/menu.lst".into()],
                path: None,
                repair: None,
            });
        }
        return Checked {
            check: Check::Boot,
            summary: "no boot loader configuration found".into(),
        };
    };
    let config = escape(&l.config);
    let Some((d, (title, entry))) = l.default.and_then(|d| Some((d, l.entries.get(d)?))) else {
        out.push(Finding {
            check: Check::Boot,
            severity: Severity::Critical,
            impact: Impact::Boot,
            summary: format!("{} finds no boot entry in {config}", l.loader),
            evidence: vec![format!("{config}: no menu entry")],
            path: Some(l.config.clone()),
            repair: Some(Repair::View {
                path: l.config.clone(),
                line: None,
                hint: "the menu is empty: the loader stops at its prompt".into(),
            }),
        });
        return Checked {
            check: Check::Boot,
            summary: format!("{} {config}: no entries", l.loader),
        };
    };
    if entry.kernel.is_none() {
        let what = entry.other.as_deref().unwrap_or("no kernel");
        return Checked {
            check: Check::Boot,
            summary: format!(
                "{} {config}: default entry '{title}' is not a Linux kernel ({what}): not checked",
                l.loader
            ),
        };
    }
    let found = faults(ctx, &l, entry);
    let file = entry.file.clone().unwrap_or_else(|| l.config.clone());
    let fname = escape(&file);
    let head = if entry.file.is_some() {
        format!("BLS entry {fname} ('{title}')")
    } else {
        format!(
            "{} '{title}' ({fname} line {})",
            entry_word(l.loader),
            entry.line
        )
    };
    let good = if found.is_empty() {
        None
    } else {
        l.entries
            .iter()
            .enumerate()
            .filter(|(i, (_, e))| *i != d && e.kernel.is_some() && e.other.is_none())
            .find(|(_, (_, e))| faults(ctx, &l, e).is_empty())
            .map(|(_, (t, _))| t.clone())
    };
    for f in &found {
        let mut evidence = l.why.clone();
        evidence.push(head.clone());
        evidence.push(f.evidence.clone());
        if let Some(g) = &good {
            evidence.push(format!("the entry '{g}' has all its files"));
        }
        let mut hint = f.hint.clone();
        if let Some(g) = &good {
            hint.push_str(&format!(
                "; or make '{g}' the default (it has all its files)"
            ));
        }
        let (path, line) = match &f.at {
            At::Line(n) => (file.clone(), Some(*n)),
            At::File(p) => (p.clone(), None),
        };
        out.push(Finding {
            check: Check::Boot,
            severity: f.severity,
            impact: Impact::Boot,
            summary: format!("the default boot entry '{title}' {}", f.summary),
            evidence,
            path: Some(path.clone()),
            repair: Some(Repair::View { path, line, hint }),
        });
    }
    let state = match found.len() {
        0 => "its files are there".to_string(),
        1 => "1 finding".to_string(),
        n => format!("{n} findings"),
    };
    let entries = match l.entries.len() {
        1 => "1 entry".to_string(),
        n => format!("{n} entries"),
    };
    Checked {
        check: Check::Boot,
        summary: format!(
            "{} {config} ({entries}): default '{title}', {} initramfs; {state}",
            l.loader,
            entry.initrds.len()
        ),
    }
}

/// The kernel command line of the default boot entry, if one is found.
pub fn default_cmdline(ctx: &Context<'_>) -> Option<String> {
    let l = load(ctx)?;
    let (_, e) = l.entries.get(l.default?)?;
    e.kernel.as_ref()?;
    Some(e.cmdline.clone())
}

fn entry_word(loader: &str) -> &'static str {
    match loader {
        "GRUB legacy" => "title",
        "systemd-boot" => "entry",
        _ => "menuentry",
    }
}

// ------------------------------------------------------------------ faults

/// Where a fault is fixed.
enum At {
    /// This line of the entry's file.
    Line(u32),
    /// Another file (grubenv's `kernelopts`).
    File(Vec<u8>),
}

struct Fault {
    severity: Severity,
    /// After "the default boot entry 'X' …".
    summary: String,
    /// The last step of the evidence chain.
    evidence: String,
    at: At,
    hint: String,
}

/// What is wrong with a file an entry loads.
enum State {
    Missing,
    Dangling(Vec<u8>),
    Empty,
    Not(FileType),
}

impl State {
    fn words(&self) -> String {
        match self {
            State::Missing => "missing".into(),
            State::Dangling(t) => format!("a link to {}, which is missing", escape(t)),
            State::Empty => "empty (0 bytes)".into(),
            State::Not(t) => format!("not a regular file ({})", t.ls_char()),
        }
    }
}

/// The guest path of an entry's `path` read from the filesystem mounted at
/// `base`, and its problem if it has one.
fn look(ctx: &Context<'_>, base: &[u8], p: &str) -> (Vec<u8>, Result<Vec<u8>, State>) {
    let bare = strip_device(p);
    let mut tries: Vec<Vec<u8>> = Vec::new();
    let mut candidates = vec![under(base, &bare), bare.clone(), under(b"/boot", &bare)];
    // GRUB names a file of a btrfs subvolume through it (`/@/boot/…`);
    // the guest's tree is that subvolume mounted.
    if bare.starts_with(b"/@") {
        let rest: Vec<&[u8]> = components(&bare).skip(1).collect();
        candidates.push(under(b"/", &rest.join(&b'/')));
    }
    for c in candidates {
        if !tries.contains(&c) {
            tries.push(c);
        }
    }
    let mut first_bad: Option<(Vec<u8>, State)> = None;
    for t in &tries {
        let Ok(r) = path::resolve(ctx.fs, t, true) else {
            // A link whose target is not there.
            if first_bad.is_none()
                && let Ok(l) = path::resolve(ctx.fs, t, false)
                && let Ok(target) = ctx.fs.read_link(l.node)
            {
                first_bad = Some((t.clone(), State::Dangling(target)));
            }
            continue;
        };
        let Ok(meta) = ctx.fs.metadata(r.node) else {
            continue;
        };
        if meta.file_type == FileType::Regular && meta.size > 0 {
            return (t.clone(), Ok(r.path));
        }
        if first_bad.is_none() {
            let s = if meta.file_type == FileType::Regular {
                State::Empty
            } else {
                State::Not(meta.file_type)
            };
            first_bad = Some((t.clone(), s));
        }
    }
    match first_bad {
        Some((t, s)) => (t, Err(s)),
        None => (tries.swap_remove(0), Err(State::Missing)),
    }
}

/// `(hd0,msdos1)/x` → `/x`; always absolute.
fn strip_device(p: &str) -> Vec<u8> {
    let rest = if p.starts_with('(') {
        p.find(')').map_or(p, |i| &p[i + 1..])
    } else {
        p
    };
    let mut out = Vec::with_capacity(rest.len() + 1);
    if !rest.starts_with('/') {
        out.push(b'/');
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// `base` + absolute `p`.
fn under(base: &[u8], p: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for c in components(base).chain(components(p)) {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The mountpoint of the guest filesystem holding guest path `p` (`/` when
/// the guest is one volume).
fn base_of(ctx: &Context<'_>, p: &[u8]) -> Vec<u8> {
    let Some(ns) = ctx.namespace else {
        return b"/".to_vec();
    };
    let parts: Vec<&[u8]> = components(p).collect();
    ns.mounts()
        .iter()
        .filter(|m| m.state == crate::guest::MountState::Mounted)
        .filter_map(|m| {
            let mp: Vec<&[u8]> = components(&m.mountpoint).collect();
            parts
                .starts_with(&mp)
                .then_some((mp.len(), m.mountpoint.clone()))
        })
        .max_by_key(|(n, _)| *n)
        .map_or_else(|| b"/".to_vec(), |(_, m)| m)
}

/// The problems of the files an entry loads (kernel, initramfs).
/// The guest directory an entry's paths are relative to: the filesystem
/// holding its file, or for a BLS entry the one holding `loader/entries`
/// (the ESP or XBOOTLDR, even when the view does not show it mounted).
fn entry_base(ctx: &Context<'_>, l: &Loaded, e: &Entry) -> Vec<u8> {
    let file = e.file.as_deref().unwrap_or(&l.config);
    let marker = b"/loader/entries/";
    match file.windows(marker.len()).position(|w| w == marker) {
        Some(i) if i > 0 => file[..i].to_vec(),
        Some(_) => b"/".to_vec(),
        None => base_of(ctx, file),
    }
}

fn faults_files(ctx: &Context<'_>, l: &Loaded, e: &Entry) -> Vec<Fault> {
    let mut out = Vec::new();
    let base = entry_base(ctx, l, e);
    let Some(k) = &e.kernel else {
        return out;
    };
    let files = std::iter::once((k, "kernel")).chain(e.initrds.iter().map(|i| (i, "initrd")));
    for (f, cmd) in files {
        let (shown, Err(s)) = look(ctx, &base, &f.path) else {
            continue;
        };
        let shown = escape(&shown);
        let (what, hint) = if cmd == "kernel" {
            (
                "kernel",
                format!("restore {shown} (reinstall the kernel package)"),
            )
        } else {
            (
                "initramfs",
                format!(
                    "rebuild {shown} (update-initramfs -c -k VERSION or dracut -f) or remove it from the entry"
                ),
            )
        };
        out.push(Fault {
            severity: Severity::Critical,
            summary: format!("cannot start: its {what} {shown} is {}", s.words()),
            evidence: format!("{cmd} {}: {}", escape_str(&f.path), s.words()),
            at: At::Line(f.line),
            hint,
        });
    }
    out
}

/// Every problem of the default entry.
fn faults(ctx: &Context<'_>, l: &Loaded, e: &Entry) -> Vec<Fault> {
    let mut out = faults_files(ctx, l, e);
    let Some(k) = &e.kernel else {
        return out;
    };
    let at = || match &l.kernelopts_from {
        Some(f) if e.file.is_some() => At::File(f.clone()),
        _ => At::Line(k.line),
    };
    let params = kernel_params(&e.cmdline);
    // Behind an encrypted volume, device-mapper names and logical volumes
    // exist only once the initramfs unlocked it: they cannot be told here.
    let sealed = ctx.layout.is_some_and(|l| {
        l.volumes
            .iter()
            .any(|v| matches!(v.content.kind, crate::layers::probe::ContentKind::Luks))
    });
    let behind_dm = |v: &str| v.starts_with("/dev/mapper/") || v.contains("/dm-name-");
    // root=: the last one counts.
    if let Some(layout) = ctx.layout
        && let Some((_, root)) = params.iter().rev().find(|(n, _)| n == "root")
        && names_device(root)
        && !(sealed && behind_dm(root))
        && let SpecMatch::NotFound(why) = layout.resolve_spec(root)
    {
        let actual = ctx
            .namespace
            .and_then(|ns| ns.root_volume())
            .and_then(|v| layout.volume(v).content.uuid.clone())
            .map(|u| format!(" (the guest's root filesystem is UUID={})", escape_str(&u)))
            .unwrap_or_default();
        let (root, why) = (escape_str(root), escape_str(&why));
        out.push(Fault {
            severity: Severity::Critical,
            summary: format!(
                "cannot mount its root: root={root} names no volume of this guest{actual}"
            ),
            evidence: format!("root={root}: {why}"),
            at: at(),
            hint: format!("correct root={root}{actual}"),
        });
    }
    for (n, v) in &params {
        if (n != "rd.lvm.lv" && n != "rd_LVM_LV") || sealed {
            continue;
        }
        let (Some(layout), Some((vg, lv))) = (ctx.layout, v.split_once('/')) else {
            continue;
        };
        if let SpecMatch::NotFound(why) = layout.resolve_spec(&format!("/dev/{vg}/{lv}")) {
            let (n, v, why) = (escape_str(n), escape_str(v), escape_str(&why));
            out.push(Fault {
                severity: Severity::Critical,
                summary: format!(
                    "cannot start: {n}={v} names a logical volume these disks do not have"
                ),
                evidence: format!("{n}={v}: {why}"),
                at: at(),
                hint: format!("correct {n}={v} to a logical volume of the guest"),
            });
        }
    }
    // /lib/modules/<version>.
    let (_, resolved) = look(ctx, &entry_base(ctx, l, e), &k.path);
    let version = e.version.clone().or_else(|| {
        let from = resolved
            .as_ref()
            .ok()
            .cloned()
            .unwrap_or_else(|| strip_device(&k.path));
        kernel_version(&from)
    });
    if let (Some(v), Ok(kpath)) = (version, &resolved)
        && !v.is_empty()
        && !v.contains('/')
        // A lone /boot volume does not hold the modules.
        && is_root(ctx)
        && !has_modules(ctx, &v)
        // A rescue kernel (`vmlinuz-0-rescue-…`) is named apart from its
        // release: the image's own version string tells it.
        && !image_version(ctx, kpath).is_some_and(|r| has_modules(ctx, &r))
        && modular(ctx, kpath, &v)
    {
        let v = escape_str(&v);
        out.push(Fault {
            severity: Severity::Error,
            summary: format!(
                "has no modules for its kernel: /lib/modules/{v} is missing (drivers the initramfs does not hold will not load)"
            ),
            evidence: format!("/lib/modules/{v}: missing"),
            at: At::Line(k.line),
            hint: format!("reinstall the kernel package of {v}, or boot a kernel whose modules are there"),
        });
    }
    out
}

/// Whether the view is a guest's root (the whole guest, or a volume with `/etc`).
fn is_root(ctx: &Context<'_>) -> bool {
    ctx.namespace.is_some() || path::resolve(ctx.fs, b"/etc", true).is_ok()
}

/// Whether a `root=` value names a block device the disks can tell.
fn names_device(v: &str) -> bool {
    ["UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/"]
        .iter()
        .any(|t| v.starts_with(t))
        && !v.contains("/PARTNROFF=")
        && v != "/dev/nfs"
        && !v.starts_with("/dev/ram")
}

/// The kernel's parameters as it splits them: spaces outside double
/// quotes, quotes removed; `name` and `value` (empty without `=`).
pub fn kernel_params(cmdline: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut push = |cur: &mut String| {
        if !cur.is_empty() && out.len() < 4096 {
            let p = std::mem::take(cur);
            let (n, v) = p.split_once('=').unwrap_or((&p, ""));
            out.push((n.to_string(), v.to_string()));
        }
        cur.clear();
    };
    for c in cmdline.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => push(&mut cur),
            c => cur.push(c),
        }
    }
    push(&mut cur);
    out
}

/// `vmlinuz-6.1.0-13-amd64` → `6.1.0-13-amd64`.
fn kernel_version(p: &[u8]) -> Option<String> {
    let name = components(p).last()?;
    let name = String::from_utf8_lossy(name);
    ["vmlinuz-", "vmlinux-", "bzImage-", "kernel-"]
        .iter()
        .find_map(|pre| name.strip_prefix(pre))
        .map(str::to_string)
}

/// The release an x86 `bzImage` names in its setup header (`HdrS` at
/// 0x202, the `kernel_version` pointer at 0x20e, +0x200): its first word,
/// as `uname -r` gives it.
fn image_version(ctx: &Context<'_>, kernel: &[u8]) -> Option<String> {
    let r = path::resolve(ctx.fs, kernel, true).ok()?;
    let mut hdr = [0u8; 16];
    if ctx.fs.read_at(r.node, 0x200, &mut hdr).ok()? < hdr.len() || &hdr[2..6] != b"HdrS" {
        return None;
    }
    let ptr = u64::from(u16::from_le_bytes([hdr[14], hdr[15]]));
    let mut buf = [0u8; 128];
    let n = ctx.fs.read_at(r.node, ptr + 0x200, &mut buf).ok()?;
    let text = buf.get(..n)?;
    let end = text
        .iter()
        .position(|&b| b == 0 || b == b' ')
        .unwrap_or(text.len());
    let v = std::str::from_utf8(&text[..end]).ok()?;
    let plausible = v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c));
    plausible.then(|| v.to_string())
}

fn has_modules(ctx: &Context<'_>, v: &str) -> bool {
    ["/lib/modules/", "/usr/lib/modules/"].iter().any(|d| {
        let p = format!("{d}{v}");
        path::resolve(ctx.fs, p.as_bytes(), true)
            .ok()
            .and_then(|r| ctx.fs.metadata(r.node).ok())
            .is_some_and(|m| m.file_type == FileType::Directory)
    })
}

/// Whether the kernel at `kernel` loads modules: its `config-<version>`
/// next to it says `CONFIG_MODULES=y`, or there is no config to tell.
fn modular(ctx: &Context<'_>, kernel: &[u8], v: &str) -> bool {
    let (dir, _) = path::split_last(kernel);
    let cfg = path::join(&dir, format!("config-{v}").as_bytes());
    match read_small(ctx.fs, &cfg, 4 * MAX_CONFIG) {
        Some(text) => text
            .split(|&b| b == b'\n')
            .any(|l| l == b"CONFIG_MODULES=y"),
        None => true,
    }
}

// ------------------------------------------------------------------ finding the configuration

fn read_config(ctx: &Context<'_>, p: &[u8]) -> Option<Vec<u8>> {
    read_small(ctx.fs, p, MAX_CONFIG)
}

/// Names in guest directory `dir` (none when it cannot be read).
fn names_in(ctx: &Context<'_>, dir: &[u8]) -> Vec<Vec<u8>> {
    let Ok(r) = path::resolve(ctx.fs, dir, true) else {
        return Vec::new();
    };
    let mut v: Vec<Vec<u8>> = ctx
        .fs
        .read_dir(r.node)
        .map(|es| es.into_iter().map(|e| e.name).take(4096).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Where `/boot` is for this view: `/boot`, and `/` too when the view is
/// one volume (it may be the `/boot` filesystem itself).
fn boot_dirs(ctx: &Context<'_>) -> Vec<&'static [u8]> {
    if ctx.namespace.is_some() {
        vec![b"/boot"]
    } else {
        vec![b"/boot", b""]
    }
}

fn load(ctx: &Context<'_>) -> Option<Loaded> {
    load_grub2(ctx)
        .or_else(|| load_systemd_boot(ctx))
        .or_else(|| load_legacy(ctx))
}

fn esp_grub_dirs(ctx: &Context<'_>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for b in boot_dirs(ctx) {
        let efi = [b, b"/efi/EFI".as_slice()].concat();
        for n in names_in(ctx, &efi) {
            out.push(path::join(&efi, &n));
        }
    }
    out
}

fn load_grub2(ctx: &Context<'_>) -> Option<Loaded> {
    let mut cfgs: Vec<Vec<u8>> = esp_grub_dirs(ctx)
        .into_iter()
        .map(|d| path::join(&d, b"grub.cfg"))
        .collect();
    let on_esp = cfgs.len();
    for b in boot_dirs(ctx) {
        for g in [b"/grub/grub.cfg".as_slice(), b"/grub2/grub.cfg"] {
            cfgs.push([b, g].concat());
        }
    }
    // A grub.cfg with no entry: GRUB stops at its prompt, unless another
    // configuration is the one it reads.
    let mut empty: Option<Loaded> = None;
    for (n, cfg) in cfgs.into_iter().enumerate() {
        let Some(text) = read_config(ctx, &cfg) else {
            continue;
        };
        let (dir, _) = path::split_last(&cfg);
        // grubenv: next to grub.cfg, else the usual places.
        let mut envs = vec![path::join(&dir, b"grubenv")];
        for b in boot_dirs(ctx) {
            envs.push([b, b"/grub/grubenv".as_slice()].concat());
            envs.push([b, b"/grub2/grubenv".as_slice()].concat());
        }
        envs.extend(
            esp_grub_dirs(ctx)
                .into_iter()
                .map(|d| path::join(&d, b"grubenv")),
        );
        let env = envs
            .iter()
            .find_map(|p| read_small(ctx.fs, p, 64 * 1024).map(|b| (p.clone(), b)));
        let mut vars = env
            .as_ref()
            .map(|(_, b)| grub::parse_env(b))
            .unwrap_or_default();
        let base = base_of(ctx, &cfg);
        // GRUB's own paths, relative to the filesystem it reads.
        let rel = String::from_utf8_lossy(&dir).to_string();
        let rel = rel
            .strip_prefix(&*String::from_utf8_lossy(&base))
            .filter(|_| base != b"/")
            .map_or(rel.clone(), |r| format!("/{}", r.trim_start_matches('/')));
        vars.insert("prefix".into(), rel.clone());
        vars.insert("config_directory".into(), rel);
        vars.insert("feature_menuentry_id".into(), "y".into());
        let env_vars = vars.clone();
        let host = GuestHost { ctx, base };
        let menu = grub::read(&String::from_utf8_lossy(&text), vars, &host);
        // On the ESP, a stub that loads the grub.cfg of /boot.
        let stub = menu.items.is_empty() && !menu.blscfg;
        if stub && (n < on_esp || empty.is_some()) {
            continue;
        }
        let spec = menu.vars.get("default").cloned();
        let chosen = grub::select(&menu.items, spec.as_deref());
        let mut entries = Vec::new();
        let mut default = None;
        flatten(
            &menu.items,
            &mut Vec::new(),
            "",
            &chosen,
            &mut entries,
            &mut default,
        );
        let cfg_name = escape(&cfg);
        let mut why = Vec::new();
        if let (Some((env_path, _)), Some(s)) = (&env, &spec) {
            for k in ["next_entry", "saved_entry"] {
                if env_vars.get(k) == Some(s) {
                    why.push(format!(
                        "grubenv {k}={} ({})",
                        escape_str(s),
                        escape(env_path)
                    ));
                    break;
                }
            }
        }
        let line = menu
            .default_line
            .map(|n| format!(" line {n}"))
            .unwrap_or_default();
        why.push(match spec.as_deref() {
            Some(s) if !s.is_empty() => format!("{cfg_name}{line}: default={}", escape_str(s)),
            _ => format!("{cfg_name}: no default set: the first entry"),
        });
        let kernelopts_from = env
            .as_ref()
            .filter(|_| env_vars.contains_key("kernelopts"))
            .map(|(p, _)| p.clone());
        let l = Loaded {
            loader: "GRUB 2",
            config: cfg,
            entries,
            default,
            why,
            kernelopts_from,
        };
        if stub {
            empty = Some(l);
            continue;
        }
        return Some(l);
    }
    empty
}

fn flatten(
    items: &[grub::Item],
    at: &mut Vec<usize>,
    prefix: &str,
    chosen: &[usize],
    out: &mut Vec<(String, Entry)>,
    default: &mut Option<usize>,
) {
    for (i, it) in items.iter().enumerate() {
        at.push(i);
        match it {
            grub::Item::Entry(e) => {
                if at.as_slice() == chosen {
                    *default = Some(out.len());
                }
                out.push((escape_str(&format!("{prefix}{}", e.title)), e.clone()));
            }
            grub::Item::Submenu { title, items, .. } => {
                if at.len() < 32 {
                    let p = format!("{prefix}{title}>");
                    flatten(items, at, &p, chosen, out, default);
                }
            }
        }
        at.pop();
    }
}

/// The guest as GRUB's script sees it.
struct GuestHost<'c, 'a> {
    ctx: &'c Context<'a>,
    /// The mountpoint of the filesystem grub.cfg is on.
    base: Vec<u8>,
}

impl grub::Host for GuestHost<'_, '_> {
    fn file_test(&self, op: &str, p: &str) -> Option<bool> {
        let full = under(&self.base, &strip_device(p));
        let Ok(r) = path::resolve(self.ctx.fs, &full, true) else {
            return Some(false);
        };
        let m = self.ctx.fs.metadata(r.node).ok()?;
        Some(match op {
            "-d" => m.file_type == FileType::Directory,
            "-f" => m.file_type == FileType::Regular,
            "-s" => m.size > 0,
            _ => true,
        })
    }

    fn blscfg(&self, vars: &grub::Vars) -> Vec<Entry> {
        let mut found = Vec::new();
        for b in boot_dirs(self.ctx) {
            found = bls_dir(self.ctx, &[b, b"/loader/entries".as_slice()].concat());
            if !found.is_empty() {
                break;
            }
        }
        let mut order: Vec<bls::BlsEntry> = found.iter().map(|(_, e)| e.clone()).collect();
        bls::sort_for_grub(&mut order);
        order
            .into_iter()
            .map(|b| {
                let path = found
                    .iter()
                    .find(|(_, f)| f.id == b.id)
                    .map(|(p, _)| p.clone());
                let mut e = b.to_entry();
                e.file = path;
                e.cmdline = grub::expand_line(&e.cmdline, vars);
                e.initrds = e
                    .initrds
                    .into_iter()
                    .flat_map(|i| {
                        grub::expand_line(&i.path, vars)
                            .split_whitespace()
                            .map(|p| FileRef {
                                path: p.to_string(),
                                line: i.line,
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if let Some(k) = &mut e.kernel {
                    k.path = grub::expand_line(&k.path, vars);
                }
                e
            })
            .collect::<Vec<_>>()
    }
}

/// The BLS entries of guest directory `dir`: (guest path, entry).
fn bls_dir(ctx: &Context<'_>, dir: &[u8]) -> Vec<(Vec<u8>, bls::BlsEntry)> {
    let mut out = Vec::new();
    for n in names_in(ctx, dir) {
        if out.len() >= MAX_BLS {
            break;
        }
        if n.starts_with(b".") || !n.ends_with(b".conf") {
            continue;
        }
        let p = path::join(dir, &n);
        if let Some(text) = read_small(ctx.fs, &p, 64 * 1024) {
            let e = bls::parse_entry(&String::from_utf8_lossy(&n), &text);
            out.push((p, e));
        }
    }
    out
}

fn load_systemd_boot(ctx: &Context<'_>) -> Option<Loaded> {
    let esps: [&[u8]; 3] = [b"/boot/efi", b"/efi", b"/boot"];
    let mut conf = None;
    for esp in esps {
        let p = [esp, b"/loader/loader.conf".as_slice()].concat();
        if let Some(t) = read_config(ctx, &p) {
            conf = Some((p, t));
            break;
        }
    }
    let mut found: Vec<(Vec<u8>, bls::BlsEntry)> = Vec::new();
    let mut dirs = Vec::new();
    for esp in esps {
        let d = [esp, b"/loader/entries".as_slice()].concat();
        // The same directory reached twice (the ESP mounted at /boot).
        let Ok(r) = path::resolve(ctx.fs, &d, true) else {
            continue;
        };
        if dirs.contains(&r.path) {
            continue;
        }
        dirs.push(r.path);
        found.extend(bls_dir(ctx, &d));
    }
    // Without loader.conf, entries alone are GRUB's (read by blscfg) or
    // nobody's; systemd-boot needs its loader.conf or its own directory.
    let sd = conf.is_some()
        || esps.iter().any(|esp| {
            path::resolve(ctx.fs, &[esp, b"/EFI/systemd".as_slice()].concat(), true).is_ok()
        });
    if !sd || found.is_empty() {
        return None;
    }
    let mut order: Vec<bls::BlsEntry> = found.iter().map(|(_, e)| e.clone()).collect();
    bls::sort_for_systemd_boot(&mut order);
    let pattern = conf.as_ref().and_then(|(_, t)| bls::loader_default(t));
    let idx = bls::systemd_boot_default(&order, pattern.as_ref().map(|(p, _)| p.as_str()));
    let entries: Vec<(String, Entry)> = order
        .iter()
        .map(|b| {
            let mut e = b.to_entry();
            e.file = found
                .iter()
                .find(|(_, f)| f.id == b.id)
                .map(|(p, _)| p.clone());
            (escape_str(&e.title), e)
        })
        .collect();
    let config = conf
        .as_ref()
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| dirs.first().cloned().unwrap_or_default());
    let mut why = Vec::new();
    match &pattern {
        Some((p, n)) => why.push(format!(
            "{} line {n}: default {}",
            escape(&config),
            escape_str(p)
        )),
        None => why.push("no default set: the first entry in systemd-boot's order".into()),
    }
    Some(Loaded {
        loader: "systemd-boot",
        config,
        entries,
        default: idx,
        why,
        kernelopts_from: None,
    })
}

fn load_legacy(ctx: &Context<'_>) -> Option<Loaded> {
    for b in boot_dirs(ctx) {
        for name in [b"/grub/grub.conf".as_slice(), b"/grub/menu.lst"] {
            let p = [b, name].concat();
            let Some(text) = read_config(ctx, &p) else {
                continue;
            };
            let c = legacy::parse(&text);
            let mut why = Vec::new();
            let index = match c.default {
                Some((legacy::Default::Index(i), line)) => {
                    why.push(format!("{} line {line}: default {i}", escape(&p)));
                    i
                }
                Some((legacy::Default::Saved, line)) => {
                    let dp = [b, b"/grub/default".as_slice()].concat();
                    let i = read_small(ctx.fs, &dp, 4096)
                        .and_then(|t| legacy::saved_default(&t))
                        .unwrap_or(0);
                    why.push(format!(
                        "{} line {line}: default saved; {}: {i}",
                        escape(&p),
                        escape(&dp)
                    ));
                    i
                }
                None => {
                    why.push(format!("{}: no default: the first entry", escape(&p)));
                    0
                }
            };
            let default = if c.entries.is_empty() {
                None
            } else if index < c.entries.len() {
                Some(index)
            } else {
                Some(0)
            };
            return Some(Loaded {
                loader: "GRUB legacy",
                config: p,
                entries: c
                    .entries
                    .into_iter()
                    .map(|e| (escape_str(&e.title), e))
                    .collect(),
                default,
                why,
                kernelopts_from: None,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsView;
    use crate::fs::mem::MemFs;

    /// A guest of `files` (path, contents; a contents of `->x` is a
    /// symlink to `x`), directories made on the way.
    fn guest(files: &[(&str, &str)]) -> MemFs {
        let mut fs = MemFs::new();
        for (p, data) in files {
            let parts: Vec<&[u8]> = components(p.as_bytes()).collect();
            let Some((name, dirs)) = parts.split_last() else {
                continue;
            };
            let mut at = fs.root_id();
            for d in dirs {
                at = match fs.lookup(at, d).unwrap() {
                    Some(n) => n,
                    None => fs.add_dir(at, d, 0o755),
                };
            }
            match data.strip_prefix("->") {
                Some(t) => fs.add_symlink(at, name, t.as_bytes()),
                None => fs.add_file(at, name, 0o644, data.as_bytes()),
            };
        }
        fs
    }

    fn run(fs: &MemFs) -> (Vec<Finding>, Checked) {
        let ctx = Context::new(fs, None, None);
        let mut out = Vec::new();
        let c = check(&ctx, &mut out);
        (out, c)
    }

    const K: &str = "6.1.0-13-amd64";

    #[test]
    fn no_configuration_is_a_note_on_a_guest_root() {
        let (f, c) = run(&guest(&[("/etc/hostname", "x\n")]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Note);
        assert_eq!(
            f[0].summary,
            "no boot loader configuration found in the guest: the host may boot it directly"
        );
        assert_eq!(c.summary, "no boot loader configuration found");
        // A volume that is not a root (no /etc): nothing to say.
        let (f, _) = run(&guest(&[("/data/x", "x")]));
        assert!(f.is_empty());
    }

    #[test]
    fn legacy_default_saved_on_a_lone_boot_volume() {
        // The /boot filesystem alone: paths in grub.conf are relative to it.
        let conf = "default saved\ntitle A\n\tkernel /vmlinuz-1 ro root=/dev/sda1\n\tinitrd /initrd-1.img\ntitle B\n\tkernel /vmlinuz-2 ro\n\tinitrd /initrd-2.img\n";
        let fs = guest(&[
            ("/grub/grub.conf", conf),
            ("/grub/default", "1\n"),
            ("/vmlinuz-1", "k"),
            ("/initrd-1.img", "i"),
            ("/vmlinuz-2", "k"),
        ]);
        let (f, c) = run(&fs);
        assert!(
            c.summary
                .starts_with("GRUB legacy /grub/grub.conf (2 entries): default 'B'"),
            "{}",
            c.summary
        );
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            f[0].summary,
            "the default boot entry 'B' cannot start: its initramfs /initrd-2.img is missing"
        );
        assert_eq!(
            f[0].evidence[0],
            "/grub/grub.conf line 1: default saved; /grub/default: 1"
        );
        assert_eq!(
            f[0].evidence.last().unwrap(),
            "the entry 'A' has all its files"
        );
        assert_eq!(
            f[0].repair,
            Some(Repair::View {
                path: b"/grub/grub.conf".to_vec(),
                line: Some(7),
                hint: "rebuild /initrd-2.img (update-initramfs -c -k VERSION or dracut -f) or remove it from the entry; or make 'A' the default (it has all its files)".into(),
            })
        );
    }

    #[test]
    fn systemd_boot_entries_on_the_esp() {
        let fs = guest(&[
            ("/etc/hostname", "x"),
            (
                "/boot/efi/loader/loader.conf",
                "timeout 3\ndefault arch-*\n",
            ),
            (
                "/boot/efi/loader/entries/arch-lts.conf",
                "title Arch LTS\nlinux /vmlinuz-linux-lts\ninitrd /initramfs-linux-lts.img\noptions root=PARTUUID=x rw\n",
            ),
            (
                "/boot/efi/loader/entries/fallback.conf",
                "title Fallback\nlinux /vmlinuz-linux\ninitrd /initramfs-linux-fallback.img\n",
            ),
            ("/boot/efi/vmlinuz-linux-lts", ""),
            ("/boot/efi/initramfs-linux-lts.img", "i"),
        ]);
        let (f, c) = run(&fs);
        assert!(
            c.summary.starts_with(
                "systemd-boot /boot/efi/loader/loader.conf (2 entries): default 'Arch LTS'"
            ),
            "{}",
            c.summary
        );
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            f[0].summary,
            "the default boot entry 'Arch LTS' cannot start: its kernel /boot/efi/vmlinuz-linux-lts is empty (0 bytes)"
        );
        assert_eq!(
            f[0].path.as_deref(),
            Some(b"/boot/efi/loader/entries/arch-lts.conf".as_slice())
        );
        assert_eq!(
            f[0].evidence[0],
            "/boot/efi/loader/loader.conf line 2: default arch-*"
        );
        let ctx = Context::new(&fs, None, None);
        assert_eq!(default_cmdline(&ctx).as_deref(), Some("root=PARTUUID=x rw"));
    }

    #[test]
    fn grub2_submenu_default_and_an_esp_stub() {
        let cfg = format!(
            "set default=\"1>0\"\nmenuentry 'A' {{\n linux /boot/vmlinuz-{K} root=/dev/vda1\n}}\nsubmenu 'Adv' {{\n menuentry 'B' {{\n  linux /vmlinuz-{K} init=/bin/bash\n  initrd /initrd.img-{K}\n }}\n}}\n"
        );
        let fs = guest(&[
            ("/etc/hostname", "x"),
            (
                "/boot/efi/EFI/debian/grub.cfg",
                "search.fs_uuid X root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
            ),
            ("/boot/grub/grub.cfg", &cfg),
            (&format!("/boot/vmlinuz-{K}"), "k"),
            (&format!("/boot/initrd.img-{K}"), "i"),
            (&format!("/usr/lib/modules/{K}/modules.dep"), ""),
            ("/lib", "->usr/lib"),
        ]);
        let (f, c) = run(&fs);
        assert!(f.is_empty(), "{f:#?}");
        assert!(
            c.summary
                .starts_with("GRUB 2 /boot/grub/grub.cfg (2 entries): default 'Adv>B'"),
            "{}",
            c.summary
        );
        let ctx = Context::new(&fs, None, None);
        assert_eq!(ctx.kernel_cmdline(), Some("init=/bin/bash"));
    }

    #[test]
    fn empty_menu_and_non_linux_default() {
        let fs = guest(&[
            ("/etc/hostname", "x"),
            ("/boot/grub/grub.cfg", "set timeout=5\n"),
        ]);
        let (f, _) = run(&fs);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            f[0].summary,
            "GRUB 2 finds no boot entry in /boot/grub/grub.cfg"
        );
        let fs = guest(&[(
            "/boot/grub/grub.cfg",
            "menuentry 'Windows' {\n chainloader +1\n}\n",
        )]);
        let (f, c) = run(&fs);
        assert!(f.is_empty());
        assert!(
            c.summary.contains("not a Linux kernel (chainloader)"),
            "{}",
            c.summary
        );
    }

    #[test]
    fn modules_missing_unless_the_kernel_has_none() {
        let cfg = format!("menuentry 'A' {{\n linux /boot/vmlinuz-{K}\n}}\n");
        let mut files = vec![
            ("/etc/hostname".to_string(), "x".to_string()),
            ("/boot/grub/grub.cfg".to_string(), cfg),
            (format!("/boot/vmlinuz-{K}"), "k".to_string()),
            (
                "/usr/lib/modules/5.10.0-1-amd64/modules.dep".to_string(),
                String::new(),
            ),
        ];
        let as_refs = |v: &Vec<(String, String)>| -> MemFs {
            let r: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            guest(&r)
        };
        let (f, _) = run(&as_refs(&files));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(
            f[0].summary
                .contains(&format!("/lib/modules/{K} is missing"))
        );
        // A kernel built without loadable modules needs none.
        files.push((
            format!("/boot/config-{K}"),
            "CONFIG_64BIT=y\n# CONFIG_MODULES is not set\n".into(),
        ));
        let (f, _) = run(&as_refs(&files));
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn params_as_the_kernel_splits_them() {
        let p = kernel_params("root=UUID=x ro  quiet opt=\"a b\" rd.lvm.lv=vg/root");
        assert_eq!(p[0], ("root".into(), "UUID=x".into()));
        assert_eq!(p[1], ("ro".into(), "".into()));
        assert_eq!(p[3], ("opt".into(), "a b".into()));
        assert_eq!(p[4], ("rd.lvm.lv".into(), "vg/root".into()));
    }

    #[test]
    fn btrfs_subvolume_paths_and_a_dangling_kernel_link() {
        let fs = guest(&[
            (
                "/boot/grub/grub.cfg",
                "menuentry 'U' {\n linux /@/boot/vmlinuz-1\n initrd /@/boot/initrd.img\n}\n",
            ),
            ("/boot/vmlinuz-1", "k"),
            ("/boot/initrd.img", "->initrd.img-1"),
        ]);
        let (f, _) = run(&fs);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            f[0].summary,
            "the default boot entry 'U' cannot start: its initramfs /boot/initrd.img is a link to initrd.img-1, which is missing"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(strip_device("(hd0,msdos1)/vmlinuz"), b"/vmlinuz");
        assert_eq!(strip_device("vmlinuz"), b"/vmlinuz");
        assert_eq!(under(b"/boot", b"/vmlinuz"), b"/boot/vmlinuz");
        assert_eq!(under(b"/", b"/vmlinuz"), b"/vmlinuz");
        assert_eq!(
            kernel_version(b"/boot/vmlinuz-6.1.0-13-amd64").as_deref(),
            Some("6.1.0-13-amd64")
        );
        assert_eq!(kernel_version(b"/boot/vmlinuz"), None);
    }
}
