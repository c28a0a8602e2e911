//! `vmrescue layers`.

use clap::Args;
use vmrescue::engine::{self, Decision, EngineChoice};
use vmrescue::layers::{Layout, VolumeKind, tree};
use vmrescue::text::escape_str;

use super::{Target, exit, open_layout_with, report};

/// Arguments of `layers`.
#[derive(Args, Debug)]
pub(super) struct LayersArgs {
    #[command(flatten)]
    target: Target,
    /// Print the tree as JSON (see the README for the format).
    #[arg(long)]
    json: bool,
    /// Search the disks for lost volumes (filesystems, swap, LVM PVs whose
    /// partition table is gone) even when a table is there; shown as r1, r2...
    #[arg(long)]
    scan: bool,
}

/// Run `layers`.
pub(super) fn run(args: &LayersArgs) -> u8 {
    let engines = engine::Engines::new(args.target.source.engine);
    let layout = match open_layout_with(&args.target, &engines, args.scan) {
        Ok(l) => l,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let roots = tree::build(&layout);
    let problems = layout.all_problems();
    let engines = engine_rows(&layout, args.target.source.engine);
    if args.json {
        let doc = serde_json::json!({
            "disks": roots,
            "notes": layout.notes,
            "problems": problems,
            "engine_choice": args.target.source.engine,
            "engines": engines,
        });
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                report(&e);
                return exit::ERROR;
            }
        }
    } else {
        out!("{}", tree::render_text(&roots));
        for n in &layout.notes {
            outln!("{}", vmrescue::text::escape_str(n));
        }
        out!("{}", render_engines(&engines, args.target.source.engine));
    }
    for p in &problems {
        report(p);
    }
    // Nothing to show but the disk itself: the job could not be done.
    if let Some(why) = super::nothing_found(&layout) {
        report(&why);
        return exit::ERROR;
    }
    if problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

/// Which engine serves a volume, for `layers`.
#[derive(Debug, serde::Serialize)]
struct EngineRow {
    volume: String,
    #[serde(flatten)]
    decision: Decision,
}

/// A row for every volume that holds (or should hold) a filesystem.
fn engine_rows(layout: &Layout, choice: EngineChoice) -> Vec<EngineRow> {
    layout
        .volumes
        .iter()
        .filter(|v| !matches!(v.kind, VolumeKind::LogicalVolume { hidden: true, .. }))
        .filter(|v| v.content.kind.is_filesystem() || !v.mapping.unreadable().is_empty())
        .map(|v| EngineRow {
            volume: v.name.clone(),
            decision: engine::decide(layout, v.id, choice),
        })
        .collect()
}

fn render_engines(rows: &[EngineRow], choice: EngineChoice) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let w = rows
        .iter()
        .map(|r| vmrescue::text::columns(&escape_str(&r.volume)))
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!("\n{:<w$}  ENGINE     WHY (--engine {choice})\n", "VOLUME");
    for r in rows {
        let e = r.decision.engine.map_or("none", |e| e.name());
        out.push_str(&format!(
            "{}  {:<9}  {}\n",
            vmrescue::text::pad(&escape_str(&r.volume), w, false),
            e,
            r.decision.reason
        ));
    }
    out
}
