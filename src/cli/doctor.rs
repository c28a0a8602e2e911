//! `vmrescue doctor`.

use clap::Args;
use vmrescue::doctor::{self, Impact, Repair, Report};
use vmrescue::engine::Engines;
use vmrescue::fs::FsOptions;
use vmrescue::text::{escape, format_time};

use super::{Target, exit, open_selection, report};

/// Arguments of `doctor`.
#[derive(Args, Debug)]
pub(super) struct DoctorArgs {
    #[command(flatten)]
    target: Target,
    /// Examine this volume (or btrfs subvolume, `p2@/@`) alone (default: the
    /// guest as it boots, every volume its fstab mounts).
    #[arg(long, value_name = "V")]
    volume: Option<String>,
    /// Show the on-disk state: do not replay the journal in memory.
    #[arg(long)]
    no_journal: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// Run `doctor`.
pub(super) fn run(args: &DoctorArgs) -> u8 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}

fn run_inner(args: &DoctorArgs) -> Result<u8, vmrescue::Error> {
    // Through the engine --engine picks (a kernel mount for XFS, as root).
    let engines = Engines::new(args.target.source.engine);
    let (layout, sel) = open_selection(&args.target, args.volume.as_deref(), &engines)?;
    let id = sel.volume;
    let options = FsOptions {
        no_journal: args.no_journal,
    };
    let (fs, namespace) = super::guest::open_guest_or_volume(
        &layout,
        id,
        !sel.guest,
        sel.subvolume,
        &engines,
        &options,
    )?;
    let volume = &layout.volume(id).name;
    let mut ctx = doctor::Context::new(&*fs, namespace.as_ref(), Some(&layout));
    // One volume of a Windows guest (`--volume C:`): its paths from `C:\`.
    ctx.drive = super::guest::drive_letter(&layout, id)
        .filter(|_| namespace.is_none() && sel.subvolume.is_none());
    let found = doctor::examine(&ctx);
    // In the whole guest, relink needs no --volume: it finds the volume itself.
    // A guest chosen by the volume holding its disk keeps that --volume.
    let pin = match (&namespace, &args.volume) {
        (None, _) => format!(" --volume {}", shell_word(volume)),
        (Some(_), Some(holder)) => format!(" --volume {}", shell_word(holder)),
        (Some(_), None) => String::new(),
    };
    // Every word as the shell needs it: a path with a space or a quote
    // still gives a command that can be pasted.
    let image = match (&args.target.image, &args.target.source.vmid) {
        (Some(p), _) => shell_word(&p.display().to_string()),
        (None, Some(id)) => format!("--vmid {}", shell_word(&id.to_string())),
        (None, None) => "--demo".into(),
    };
    let how = Commands { image, pin };
    if args.json {
        outln!("{}", to_json(&found, volume, namespace.is_some(), &how));
    } else {
        let shown = if namespace.is_some() {
            format!("the guest (root {volume}, with the volumes it mounts)")
        } else {
            volume.clone()
        };
        out!("{}", render(&found, &shown, &how));
    }
    Ok(if found.has_problems() {
        exit::PROBLEMS
    } else {
        exit::OK
    })
}

/// How the commands a finding proposes name the image (and volume).
struct Commands {
    /// The image argument (`--demo` for the demo).
    image: String,
    /// ` --volume V` when one volume was examined, else empty.
    pin: String,
}

impl Commands {
    /// The command that carries out a repair.
    fn repair(&self, r: &Repair) -> String {
        match r {
            Repair::Relink(a) => format!(
                "vmrescue relink {}{} {}",
                self.image,
                self.pin,
                shell_word(&escape(&a.link))
            ),
            Repair::View { path, .. } => format!(
                "vmrescue cat {}{} {}",
                self.image,
                self.pin,
                shell_word(&escape(path))
            ),
        }
    }
}

/// A path as one shell word (quoted when it holds anything but plain characters).
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn render(r: &Report, volume: &str, how: &Commands) -> String {
    let mut out = String::new();
    if r.findings.is_empty() {
        out.push_str(&format!("No reason found why {volume} would not boot.\n"));
    } else {
        out.push_str(&format!(
            "{} finding{} in {volume}, most urgent first:\n",
            r.findings.len(),
            if r.findings.len() == 1 { "" } else { "s" }
        ));
    }
    let mut heading = None;
    for (i, f) in r.findings.iter().enumerate() {
        let h = f.impact.heading();
        if heading.as_ref() != Some(&h) {
            out.push_str(&format!("\n{h}\n"));
            heading = Some(h);
        }
        out.push_str(&format!(
            "{:>3}. [{}] {}\n",
            i + 1,
            f.severity.as_str(),
            f.summary
        ));
        for e in &f.evidence {
            out.push_str(&format!("       {e}\n"));
        }
        match &f.repair {
            Some(rep @ Repair::Relink(a)) => match a.proposal() {
                Some(c) => {
                    out.push_str(&format!(
                        "       proposed: {}{} ({})\n",
                        escape(&c.target),
                        if c.guess { " (a guess)" } else { "" },
                        c.reasons.join("; ")
                    ));
                    out.push_str(&format!("       repair:   {}\n", how.repair(rep)));
                }
                None => out.push_str("       no candidate target found\n"),
            },
            Some(rep @ Repair::View { line, hint, .. }) => {
                out.push_str(&format!(
                    "       look:     {}{}\n",
                    how.repair(rep),
                    line.map(|l| format!("   # line {l}")).unwrap_or_default()
                ));
                if !f.summary.starts_with(hint.as_str()) {
                    out.push_str(&format!("                 {hint}\n"));
                }
            }
            None => {}
        }
    }
    if !r.checked.is_empty() {
        out.push_str("\nChecked:\n");
        for c in &r.checked {
            out.push_str(&format!("  {:<9} {}\n", c.check.as_str(), c.summary));
        }
    }
    if !r.history.is_empty() {
        out.push_str("\nThe package manager's last transactions (oldest first):\n");
        for h in &r.history {
            out.push_str(&format!("  {}  {}\n", h.when, h.what));
        }
    }
    let shown = |p: &[u8]| windows_path(r, p).unwrap_or_else(|| escape(p));
    if let Some(dir) = r.windows.as_deref().filter(|_| !r.recent.is_empty()) {
        out.push_str(&format!(
            "\nFiles under {} written or installed last (the newer of modification and creation time):\n",
            shown(dir)
        ));
    } else if !r.recent.is_empty() {
        out.push_str(
            "\nMost recently changed files (by inode change time; * a finding points at it):\n",
        );
    }
    for c in &r.recent {
        out.push_str(&format!(
            "{} {}  {} {}\n",
            if c.pointed { '*' } else { ' ' },
            format_time(c.ctime.sec),
            c.file_type.ls_char(),
            shown(&c.path)
        ));
    }
    out
}

/// On a Windows guest, guest path `p` as Windows writes it
/// (`C:\Windows\System32`); `None` elsewhere.
fn windows_path(r: &Report, p: &[u8]) -> Option<String> {
    r.windows
        .as_ref()
        .and_then(|_| vmrescue::guest::windows_display(r.drive.as_deref(), p))
}

/// `doctor --json`: see the README's "doctor --json" section for the shape.
fn to_json(r: &Report, volume: &str, guest: bool, how: &Commands) -> String {
    let findings: Vec<serde_json::Value> = r
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (mountpoint, service) = match &f.impact {
                Impact::Mount(m) | Impact::Space(m) => (Some(escape(m)), None),
                Impact::Service(s) => (None, Some(s.clone())),
                _ => (None, None),
            };
            serde_json::json!({
                "rank": i + 1,
                "check": f.check.as_str(),
                "severity": f.severity.as_str(),
                "impact": {
                    "kind": f.impact.kind(),
                    "heading": f.impact.heading(),
                    "mountpoint": mountpoint,
                    "service": service,
                },
                "summary": f.summary,
                "evidence": f.evidence,
                "path": f.path.as_deref().map(escape),
                "windows_path": f.path.as_deref().and_then(|p| windows_path(r, p)),
                "repair": f.repair.as_ref().map(|rep| repair_json(rep, how)),
            })
        })
        .collect();
    let checked: Vec<serde_json::Value> = r
        .checked
        .iter()
        .map(|c| serde_json::json!({"check": c.check.as_str(), "summary": c.summary}))
        .collect();
    let history: Vec<serde_json::Value> = r
        .history
        .iter()
        .map(|h| serde_json::json!({"when": h.when, "what": h.what, "source": escape(&h.source)}))
        .collect();
    let recent: Vec<serde_json::Value> = r
        .recent
        .iter()
        .map(|c| {
            serde_json::json!({
                "path": escape(&c.path),
                "windows_path": windows_path(r, &c.path),
                "ctime": c.ctime.sec,
                "type": c.file_type,
                "pointed": c.pointed,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "version": super::JSON_VERSION,
        "volume": volume,
        "scope": if guest { "guest" } else { "volume" },
        "findings": findings,
        "checked": checked,
        "history": history,
        "recent": recent,
        // On a Windows guest, `recent` is by the newer of mtime and
        // creation time, under this folder.
        "windows_system32": r.windows.as_deref().map(escape),
        "system32_windows_path": r.windows.as_deref().and_then(|p| windows_path(r, p)),
    }))
    .unwrap_or_default()
}

fn repair_json(rep: &Repair, how: &Commands) -> serde_json::Value {
    match rep {
        Repair::Relink(a) => serde_json::json!({
            "kind": "relink",
            "link": escape(&a.link),
            "target": escape(&a.target),
            "problems": a.problems,
            "changed": a.meta.ctime.sec,
            "candidates": a.candidates.iter().map(|c| serde_json::json!({
                "target": escape(&c.target),
                "path": escape(&c.path),
                "reasons": c.reasons,
                "guess": c.guess,
                "current": c.current,
            })).collect::<Vec<_>>(),
            "command": how.repair(rep),
        }),
        Repair::View { path, line, hint } => serde_json::json!({
            "kind": "view",
            "path": escape(path),
            "line": line,
            "hint": hint,
            "command": how.repair(rep),
        }),
    }
}
