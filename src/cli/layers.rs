//! `vmrescue layers`.

use clap::Args;
use vmrescue::engine::{self, Decision, EngineChoice};
use vmrescue::guest::Namespace;
use vmrescue::layers::{Layout, VolumeKind, tree};
use vmrescue::text::{escape, escape_str};

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
    let mounts = mount_rows(&layout, &engines);
    let engines = engine_rows(&layout, args.target.source.engine);
    if args.json {
        let doc = serde_json::json!({
            "version": super::JSON_VERSION,
            "disks": roots,
            "notes": layout.notes,
            "problems": problems,
            "engine_choice": args.target.source.engine,
            "engines": engines,
            "mounts": mounts,
        });
        if !super::print_json(&doc) {
            return exit::ERROR;
        }
    } else {
        out!("{}", tree::render_text(&roots));
        for n in &layout.notes {
            outln!("{}", vmrescue::text::escape_str(n));
        }
        out!("{}", render_mounts(&mounts));
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

/// One entry of a guest's mount table, for `layers`.
#[derive(Debug, serde::Serialize)]
struct MountRow {
    /// The guest root whose fstab this is.
    guest_root: String,
    mountpoint: String,
    spec: String,
    /// The volume's name, when the spec names one here.
    volume: Option<String>,
    fstype: String,
    options: String,
    /// `mounted`, `virtual`, `bind`, `missing`, `unreadable`, `noauto`, `swap`, `failed`.
    state: &'static str,
    reason: Option<String>,
    /// Found by disk order and partition number (`/dev/sda1`).
    guessed: bool,
}

/// The mount table of every guest root, as the commands assemble it. A
/// volume the kernel engine would serve is not mounted for this table (a
/// listing of layers sets up no loop device): it stands as an empty folder,
/// mounted, and the engines' table says who reads it.
fn mount_rows(layout: &Layout, engines: &engine::Engines) -> Vec<MountRow> {
    let opts = vmrescue::fs::FsOptions::default();
    let open = |v| {
        if engines.decide(layout, v).engine == Some(engine::Engine::Kernel) {
            let stand_in: std::sync::Arc<dyn vmrescue::fs::FsView> =
                std::sync::Arc::new(vmrescue::fs::mem::MemFs::new());
            return Ok(stand_in);
        }
        engines.open_fs(layout, v, &opts)
    };
    let mut rows = Vec::new();
    for root in layout.guest_roots() {
        let ns = Namespace::build(layout, root, &open);
        for m in ns.mounts() {
            rows.push(MountRow {
                guest_root: layout.volume(root).name.clone(),
                mountpoint: escape(&m.mountpoint),
                spec: m.spec.clone(),
                volume: m.volume.map(|v| layout.volume(v).name.clone()),
                fstype: m.fstype.clone(),
                options: m.options.clone(),
                state: m.state.name(),
                reason: m.state.reason(),
                guessed: m.guessed,
            });
        }
    }
    rows
}

fn render_mounts(rows: &[MountRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let several = rows.iter().any(|r| r.guest_root != rows[0].guest_root);
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let mut volume = r.volume.as_deref().map_or_else(|| "-".into(), escape_str);
            if r.guessed {
                volume.push_str(" (guessed)");
            }
            let mut state = r.state.to_string();
            if let Some(why) = &r.reason {
                state.push_str(&format!(": {}", escape_str(why)));
            }
            [
                r.mountpoint.clone(),
                escape_str(&r.spec),
                volume,
                escape_str(&r.fstype),
                state,
            ]
        })
        .collect();
    let heads = ["MOUNTPOINT", "SOURCE", "VOLUME", "FSTYPE", "STATE"];
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| vmrescue::text::columns(&c[i]))
            .chain([heads[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..4).map(width).collect();
    let line = |c: [&str; 5]| {
        let mut l = String::new();
        for (i, cell) in c.iter().enumerate().take(4) {
            l.push_str(&vmrescue::text::pad(cell, w[i], false));
            l.push_str("  ");
        }
        l.push_str(c[4]);
        l.push('\n');
        l
    };
    let mut out = String::new();
    // Several guests (a host and the guests on its nested disks): one
    // table each, under the guest root whose fstab it is.
    let mut guest: Option<&str> = None;
    for (r, c) in rows.iter().zip(&cells) {
        if guest != Some(r.guest_root.as_str()) {
            guest = Some(&r.guest_root);
            out.push('\n');
            if several {
                out.push_str(&format!("fstab of {}:\n", escape_str(&r.guest_root)));
            }
            out.push_str(&line(heads));
        }
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
    }
    out
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
