//! `doctor`: why won't the guest boot? Each check looks at what the guest
//! needs to start, on the guest as it boots (every volume its fstab mounts),
//! and reports [`Finding`]s: what breaks, how badly, the evidence chain, and
//! the repair where a safe one exists.
//!
//! The checks, in the order they run:
//! * [`closure`] — the dynamic-linking closure of what boots (init, the
//!   shells, login, getty, sshd), resolved as `ld.so` would inside the guest;
//! * [`links`] — suspicious symlinks in library and program directories not
//!   already explained by the closure;
//! * [`mounts`] — the fstab entries the boot needs resolve to volumes;
//! * [`boot`] — the boot loader's default entry: kernel, initramfs, `root=`;
//! * [`space`] — full filesystems (blocks or inodes);
//! * [`accounts`] — `/etc/passwd`, `shadow`, `group`, `nsswitch.conf`;
//! * [`notes`] — SELinux relabel, a read-only root;
//!
//! then [`recent`] lists the newest changes, the files the findings point at
//! first, and [`history`] the package manager's last transactions.
//!
//! Every check reads only what it needs (ELF headers, small text files,
//! superblock counters), so the whole doctor takes well under a second.

pub mod accounts;
pub mod boot;
pub mod closure;
mod context;
pub mod history;
pub mod links;
pub mod mounts;
pub mod notes;
pub mod recent;
pub mod space;

pub use context::Context;
pub use history::PackageEvent;
pub use recent::RecentChange;

use crate::repair::candidates::Analysis;

/// How badly a finding breaks the guest, most urgent last (so `Ord` sorts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing fails because of it.
    Note,
    /// Something may fail, or fails only for some.
    Warning,
    /// A part of the guest fails (a mount, logins, a service).
    Error,
    /// The guest does not start.
    Critical,
}

impl Severity {
    /// The word shown and put in `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// What a finding breaks: findings are grouped by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impact {
    /// The guest cannot start: the kernel, the initramfs, the root mount, init.
    Boot,
    /// The guest starts but cannot mount this mountpoint.
    Mount(Vec<u8>),
    /// Logins fail (console and ssh).
    Login,
    /// A service fails to start (`sshd`, `agetty`).
    Service(String),
    /// A filesystem is full (its mountpoint).
    Space(Vec<u8>),
    /// Nothing fails, but the operator should know.
    Other,
}

impl Impact {
    /// The group's heading: "the guest cannot start".
    pub fn heading(&self) -> String {
        match self {
            Impact::Boot => "The guest cannot start".into(),
            Impact::Mount(m) => format!(
                "The guest starts but cannot mount {}",
                crate::text::escape(m)
            ),
            Impact::Login => "Logins will fail".into(),
            Impact::Service(s) => format!("{s} will not start"),
            Impact::Space(m) => format!("{} is full", crate::text::escape(m)),
            Impact::Other => "Worth knowing".into(),
        }
    }

    /// One word for `--json`: `boot`, `mount`, `login`, `service`, `space`, `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            Impact::Boot => "boot",
            Impact::Mount(_) => "mount",
            Impact::Login => "login",
            Impact::Service(_) => "service",
            Impact::Space(_) => "space",
            Impact::Other => "other",
        }
    }
}

/// Which check made a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// [`closure`]: libraries, interpreters, symbol versions.
    Linking,
    /// [`links`]: suspicious symlinks.
    Links,
    /// [`mounts`]: fstab entries.
    Mounts,
    /// [`boot`]: boot loader entries.
    Boot,
    /// [`space`]: full filesystems.
    Space,
    /// [`accounts`]: passwd, shadow, group, nsswitch.
    Accounts,
    /// [`notes`]: SELinux, read-only root.
    Notes,
    /// A Windows guest: what was looked at instead of the Linux checks.
    Windows,
}

impl Check {
    /// One word for `--json` and the text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Linking => "linking",
            Check::Links => "links",
            Check::Mounts => "mounts",
            Check::Boot => "boot",
            Check::Space => "space",
            Check::Accounts => "accounts",
            Check::Notes => "notes",
            Check::Windows => "windows",
        }
    }
}

/// The repair proposed for a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Give a symlink another target (`vmrescue relink`, `r` in the TUI):
    /// the analysis carries the link, its target, what is wrong and the
    /// candidates, best first.
    Relink(Box<Analysis>),
    /// Nothing safe to do automatically: look at this guest file (the
    /// viewer opens it; `line` is 1-based when one line is at fault).
    View {
        /// Absolute guest path.
        path: Vec<u8>,
        /// The line at fault, if one.
        line: Option<u32>,
        /// What to look for or do there.
        hint: String,
    },
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check that found it.
    pub check: Check,
    /// How bad it is.
    pub severity: Severity,
    /// What it breaks.
    pub impact: Impact,
    /// One sentence: what is wrong (`/sbin/init cannot start: libc.so.6 …`).
    pub summary: String,
    /// The chain of evidence, one step a line
    /// (`/sbin/init needs libc.so.6`, `libc.so.6 → /opt/glibc-2.14/lib/libc-2.14.so`, …).
    pub evidence: Vec<String>,
    /// The guest file at fault (Enter in the TUI goes there).
    pub path: Option<Vec<u8>>,
    /// The proposed repair.
    pub repair: Option<Repair>,
}

impl Finding {
    /// The relink analysis, when the repair is a relink.
    pub fn relink(&self) -> Option<&Analysis> {
        match &self.repair {
            Some(Repair::Relink(a)) => Some(a),
            _ => None,
        }
    }
}

/// What one check looked at, for the report's last lines ("linking: 214
/// objects of 9 programs"): a clean report says what was clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The check.
    pub check: Check,
    /// What it looked at, in words.
    pub summary: String,
}

/// What `doctor` found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Findings, most urgent first (see [`rank`]).
    pub findings: Vec<Finding>,
    /// What each check looked at.
    pub checked: Vec<Checked>,
    /// Most recently changed files, the ones findings point at first, then newest first.
    pub recent: Vec<RecentChange>,
    /// The package manager's last transactions, newest last.
    pub history: Vec<PackageEvent>,
    /// On a Windows guest: the guest path whose files `recent` lists
    /// (`/C:/Windows/System32`), by the newer of mtime and creation time.
    pub windows: Option<Vec<u8>>,
    /// With `windows`, on one volume examined alone: the drive the guest
    /// gives it (`C:\`), where the paths of `windows` and `recent` start.
    pub drive: Option<String>,
}

impl Report {
    /// Whether anything above a note was found.
    pub fn has_problems(&self) -> bool {
        self.findings.iter().any(|f| f.severity > Severity::Note)
    }
}

/// Run every check on the guest.
pub fn examine(ctx: &Context<'_>) -> Report {
    // A Windows guest, its system volume alone (`--volume C:`), or another
    // of its drives alone (`--volume D:`).
    let windows = match ctx.namespace {
        Some(ns) => ns.is_windows(),
        None => ctx.drive.is_some() || crate::layers::windows::is_system_volume(ctx.fs),
    };
    if windows {
        return examine_windows(ctx);
    }
    let mut findings = Vec::new();
    let checked = vec![
        closure::check(ctx, &mut findings),
        links::check(ctx, &mut findings),
        mounts::check(ctx, &mut findings),
        boot::check(ctx, &mut findings),
        space::check(ctx, space::Os::Linux, &mut findings),
        accounts::check(ctx, &mut findings),
        notes::check(ctx, &mut findings),
    ];
    rank(&mut findings);
    let pointed: Vec<Vec<u8>> = findings.iter().filter_map(|f| f.path.clone()).collect();
    Report {
        recent: recent::recent_changes(ctx.fs, recent::RECENT_COUNT, &pointed),
        history: history::last_transactions(ctx.fs, history::HISTORY_COUNT),
        findings,
        checked,
        windows: None,
        drive: None,
    }
}

/// A Windows guest: the Linux checks (ELF linking, symlinks, fstab, boot
/// loader, accounts) do not apply; space does. As a start, the files under
/// `Windows\System32` written or installed last (drivers, DLLs).
fn examine_windows(ctx: &Context<'_>) -> Report {
    // On a drive of the guest's tree (`/C:/Windows/System32`), or in the
    // system volume alone.
    let system32 = ctx
        .fs
        .read_dir(ctx.fs.root())
        .ok()
        .into_iter()
        .flatten()
        .map(|e| [b"/".as_slice(), &e.name, b"/Windows/System32"].concat())
        .chain(std::iter::once(b"/Windows/System32".to_vec()))
        .find(|p| {
            crate::fs::path::resolve(ctx.fs, p, true)
                .and_then(|r| ctx.fs.metadata(r.node))
                .is_ok_and(|m| m.file_type == crate::fs::FileType::Directory)
        });
    let recent = system32
        .as_deref()
        .map(|p| recent::windows_changes(ctx.fs, p, recent::RECENT_COUNT))
        .unwrap_or_default();
    // The drive holding it: `/C:`, or `/` for the volume alone.
    let system = system32
        .as_deref()
        .and_then(|p| p.strip_suffix(b"/Windows/System32".as_slice()))
        .map(|d| if d.is_empty() { b"/".as_slice() } else { d });
    let mut findings = Vec::new();
    let space = space::check(ctx, space::Os::Windows { system }, &mut findings);
    rank(&mut findings);
    let looked = match &system32 {
        Some(p) => format!(
            "a Windows guest: the Linux checks do not apply; the {} files written or installed last under {} are listed",
            recent.len(),
            crate::guest::windows_display(ctx.drive.as_deref(), p)
                .unwrap_or_else(|| crate::text::escape(p))
        ),
        None => match ctx.drive.as_deref() {
            Some(d) => format!(
                "{d} of a Windows guest: the Linux checks do not apply; no Windows\\System32 folder on it"
            ),
            None => {
                "a Windows guest: the Linux checks do not apply; no Windows\\System32 folder found"
                    .into()
            }
        },
    };
    Report {
        findings,
        checked: vec![
            Checked {
                check: Check::Windows,
                summary: looked,
            },
            space,
        ],
        recent,
        history: Vec::new(),
        windows: system32,
        drive: ctx.drive.clone(),
    }
}

/// Most urgent first: severity, then what it breaks (boot before mounts
/// before logins…), then the check's order; findings otherwise keep the
/// order their check gave them.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.impact.cmp(&b.impact))
            .then_with(|| a.check.cmp(&b.check))
    });
}
