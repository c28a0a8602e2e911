//! `vmrescue doctor`.

use clap::Args;
use vmrescue::doctor::{self, Report};
use vmrescue::engine::Engines;
use vmrescue::fs::FsOptions;
use vmrescue::text::{escape, format_time};

use super::{Target, exit, open_volume, report};

/// Arguments of `doctor`.
#[derive(Args, Debug)]
pub(super) struct DoctorArgs {
    #[command(flatten)]
    target: Target,
    /// Examine this volume alone (default: the guest as it boots, every
    /// volume its fstab mounts).
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
    let (layout, id) = open_volume(&args.target, args.volume.as_deref(), &engines)?;
    let options = FsOptions {
        no_journal: args.no_journal,
    };
    let (fs, namespace) =
        super::guest::open_guest_or_volume(&layout, id, args.volume.is_some(), &engines, &options)?;
    let volume = &layout.volume(id).name;
    let ctx = doctor::Context::new(&*fs, namespace.as_ref(), Some(&layout));
    let found = doctor::examine(&ctx);
    // In the whole guest, relink needs no --volume: it finds the volume itself.
    let pin = if namespace.is_some() {
        String::new()
    } else {
        format!(" --volume {volume}")
    };
    let image = args
        .target
        .image
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "--demo".into());
    if args.json {
        outln!("{}", to_json(&found, volume));
    } else {
        let shown = if namespace.is_some() {
            format!("the guest (root {volume}, with the volumes it mounts)")
        } else {
            volume.clone()
        };
        out!("{}", render(&found, &shown, &image, &pin));
    }
    Ok(if found.findings.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    })
}

fn render(r: &Report, volume: &str, image: &str, pin: &str) -> String {
    let mut out = String::new();
    if r.findings.is_empty() {
        out.push_str(&format!(
            "No suspicious links in the library and program directories of {volume}.\n"
        ));
    } else {
        out.push_str(&format!(
            "Suspicious links in {volume}, most urgent first:\n"
        ));
    }
    for (i, f) in r.findings.iter().enumerate() {
        let Some(a) = f.relink() else { continue };
        out.push_str(&format!(
            "\n{:>2}. {} -> {}\n",
            i + 1,
            escape(&a.link),
            escape(&a.target)
        ));
        for p in &a.problems {
            out.push_str(&format!("      - {p}\n"));
        }
        match a.proposal() {
            Some(c) => {
                out.push_str(&format!(
                    "      proposed: {}{} ({})\n",
                    escape(&c.target),
                    if c.guess { " (a guess)" } else { "" },
                    c.reasons.join("; ")
                ));
                out.push_str(&format!(
                    "      repair:   vmrescue relink {image}{pin} {}\n",
                    escape(&a.link)
                ));
            }
            None => out.push_str("      no candidate target found\n"),
        }
    }
    if !r.recent.is_empty() {
        out.push_str("\nMost recently changed files (by inode change time, newest first):\n");
        for c in &r.recent {
            out.push_str(&format!(
                "  {}  {} {}\n",
                format_time(c.ctime.sec),
                c.file_type.ls_char(),
                escape(&c.path)
            ));
        }
    }
    out
}

fn to_json(r: &Report, volume: &str) -> String {
    let findings: Vec<serde_json::Value> = r
        .findings
        .iter()
        .filter_map(|f| {
            let a = f.relink()?;
            Some(serde_json::json!({
                "path": escape(&a.link),
                "target": escape(&a.target),
                "severity": f.severity.as_str(),
                "problems": a.problems,
                "changed": a.meta.ctime.sec,
                "candidates": a.candidates.iter().map(|c| serde_json::json!({
                    "target": escape(&c.target),
                    "path": escape(&c.path),
                    "reasons": c.reasons,
                    "guess": c.guess,
                    "current": c.current,
                })).collect::<Vec<_>>(),
            }))
        })
        .collect();
    let recent: Vec<serde_json::Value> = r
        .recent
        .iter()
        .map(|c| serde_json::json!({"path": escape(&c.path), "ctime": c.ctime.sec, "type": c.file_type}))
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "volume": volume,
        "findings": findings,
        "recent": recent,
    }))
    .unwrap_or_default()
}
