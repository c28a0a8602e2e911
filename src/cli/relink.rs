//! `vmrescue relink`: show the plan ([`relink::plan_with`]), ask, and apply it
//! in place (ext2/3/4 and inline XFS links, userspace engine) or through a read-write kernel mount
//! (`--engine kernel`).

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use clap::Args;
use vmrescue::engine::{Engine, EngineChoice, Engines, select};
use vmrescue::guest::Namespace;
use vmrescue::layers::{Layout, VolumeId};
use vmrescue::repair::relink::{self, Applier, GuestView, Options, Plan, Writer};
use vmrescue::repair::undo::default_undo_dir;
use vmrescue::text::escape;

use super::guest::GuestArgs;
use super::{SourceArgs, Target, exit, open_found_layout, report};

/// Arguments of `relink`.
#[derive(Args, Debug)]
#[command(override_usage = "vmrescue relink [OPTIONS] <IMAGE> <PATH>\n       \
                            vmrescue relink [OPTIONS] --demo <PATH>")]
pub(super) struct RelinkArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The volume (or btrfs subvolume, `p2@/@`) holding the link, the path
    /// being inside it (default: the guest as it boots; the volume is found
    /// from the path).
    #[arg(long, value_name = "V")]
    volume: Option<String>,
    /// The new target, as the link will hold it (`libc-2.12.so`); default:
    /// the best candidate vmrescue finds.
    #[arg(long, value_name = "TARGET")]
    to: Option<OsString>,
    /// Show the plan and what would stop it; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before writing.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Write a target even if it does not resolve inside the guest.
    #[arg(long)]
    force: bool,
    /// Where to save the undo file (default: ~/.local/state/vmrescue/undo;
    /// with --demo, beside the temporary demo image).
    #[arg(long, value_name = "DIR")]
    undo_dir: Option<PathBuf>,
    /// With --demo: unpack the demo image to this new file and repair it
    /// there, so the result (and its undo file) outlive this command.
    #[arg(long, value_name = "FILE", requires = "demo")]
    demo_keep: Option<PathBuf>,
    /// IMAGE (unless --demo), then the link's guest path.
    #[arg(value_name = "IMAGE | PATH")]
    args: Vec<OsString>,
}

/// Run `relink`.
pub(super) fn run(args: &RelinkArgs) -> u8 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}

fn run_inner(args: &RelinkArgs) -> Result<u8, vmrescue::Error> {
    let guest = GuestArgs {
        source: args.source.clone(),
        volume: args.volume.clone(),
        no_journal: false,
    };
    let (mut target, rest) = guest
        .split(args.args.clone())
        .map_err(vmrescue::Error::Invalid)?;
    let [link] = rest.as_slice() else {
        return Err(vmrescue::Error::Invalid(format!(
            "relink takes one guest path (the link){}",
            if rest.is_empty() { "" } else { ", not several" }
        )));
    };
    // The demo: a temporary copy, or one the operator keeps.
    let mut temporary_demo = None;
    if let Some(keep) = &args.demo_keep {
        if keep.exists() {
            return Err(vmrescue::Error::Invalid(format!(
                "{}: already exists (--demo-keep writes a new file)",
                keep.display()
            )));
        }
        vmrescue::demo::unpack(vmrescue::demo::asset(), keep)?;
        eprintln!(
            "vmrescue: unpacked the demo image to {} (open it later with `vmrescue {}`)",
            keep.display(),
            keep.display()
        );
        target = Target {
            image: Some(keep.clone()),
            source: SourceArgs {
                demo: false,
                ..args.source.clone()
            },
        };
    } else if args.source.demo {
        temporary_demo = Some(vmrescue::demo::path()?);
    }
    let undo_dir = match (&args.undo_dir, &temporary_demo) {
        (Some(d), _) => d.clone(),
        (None, Some(demo)) => demo
            .parent()
            .map(|p| p.join("undo"))
            .unwrap_or_else(default_undo_dir),
        (None, None) => default_undo_dir(),
    };
    let engines = Engines::new(args.source.engine);
    let layout = open_found_layout(&target, &engines)?;
    let sel = select(&layout, args.volume.as_deref())?;
    let root = sel.volume;
    // In the whole guest (no --volume): the volume the link lies on, the
    // link's path inside it, and the guest's tree for the checks.
    let (id, subvolume, link, view) = if sel.guest {
        let opts = vmrescue::fs::FsOptions::default();
        let ns = Namespace::build(&layout, root, &|v| engines.open_fs(&layout, v, &opts));
        let fs = ns.fs();
        // `C:\Windows\...` on a Windows guest: the tree's `/C:/Windows/...`.
        let asked = vmrescue::guest::operator_path(&*fs, Some(&ns), None, link.as_bytes());
        let seen = vmrescue::fs::path::resolve(&*fs, &asked, false)?.path;
        let (id, outside, inner) = ns.locate_in_subvolume(&seen)?;
        (
            id,
            outside.map(|o| o.id),
            inner,
            Some(GuestView { fs, link: seen }),
        )
    } else if let Some(sub) = sel.subvolume {
        // A subvolume's path as the volume shows it (from its default
        // subvolume), where both appliers find it; a subvolume outside the
        // default one by its own path (the kernel engine mounts it).
        let subs = layout
            .subvolumes
            .iter()
            .find(|(v, _)| *v == root)
            .map(|(_, s)| s.as_slice())
            .unwrap_or_default();
        let join = |prefix: Vec<u8>| {
            vmrescue::fs::path::components(link.as_bytes())
                .fold(prefix, |acc, c| vmrescue::fs::path::join(&acc, c))
        };
        match vmrescue::fs::rooted::path_from_default(subs, sub) {
            Ok(prefix) => (root, None, join(prefix), None),
            Err(_) => (root, Some(sub), join(b"/".to_vec()), None),
        }
    } else {
        // `C:\Windows\...` on the volume a Windows guest calls C:
        // (`--volume C:`): `/Windows/...` of that volume.
        let link = match super::guest::drive_letter(&layout, root) {
            Some(drive) if vmrescue::guest::drive_path(link.as_bytes()).is_some() => {
                let fs = engines.open_fs(&layout, root, &vmrescue::fs::FsOptions::default())?;
                let asked =
                    vmrescue::guest::operator_path(&*fs, None, Some(&drive), link.as_bytes());
                // Not found: said with the path looked for, as in the whole
                // guest; not a link: said before what the volume refuses.
                let found = vmrescue::fs::path::resolve(&*fs, &asked, false)?;
                let shown = vmrescue::guest::windows_display(Some(&drive), &found.path)
                    .unwrap_or_else(|| escape(&found.path));
                relink::must_be_link(&*fs, found.node, &shown)?;
                asked
            }
            _ => link.as_bytes().to_vec(),
        };
        (root, None, link, None)
    };
    let decision = engines.decide(&layout, id);
    if args.source.engine == EngineChoice::Kernel && decision.engine != Some(Engine::Kernel) {
        if let Err(why) = vmrescue::engine::kernel_available() {
            return Err(vmrescue::Error::Unsupported(why));
        }
        return Err(vmrescue::Error::Unsupported(decision.reason));
    }
    let at = Spot {
        layout: &layout,
        id,
        subvolume,
        link: &link,
        view: view.as_ref(),
    };
    let code = Writer::for_volume(&engines, &layout, id)
        .and_then(|writer| relink(args, &writer, &at, &undo_dir, &temporary_demo));
    for p in engines.close() {
        report(&p);
    }
    code
}

/// Where the link is: its volume, its path inside it, and (in the whole
/// guest) the guest's tree and the link's path there.
struct Spot<'a> {
    layout: &'a Layout,
    id: VolumeId,
    /// The btrfs subvolume `link` starts in, outside the default one.
    subvolume: Option<u64>,
    link: &'a [u8],
    view: Option<&'a GuestView>,
}

/// Plan, show, ask, apply with `writer`.
fn relink(
    args: &RelinkArgs,
    writer: &Writer,
    at: &Spot<'_>,
    undo_dir: &Path,
    temporary_demo: &Option<PathBuf>,
) -> Result<u8, vmrescue::Error> {
    let (layout, id) = (at.layout, at.id);
    let opts = Options {
        force: args.force,
        pve_root: Some(args.source.pve_root.clone()),
        now: None,
    };
    let to = args.to.as_ref().map(|t| t.as_bytes().to_vec());
    let plan = relink::plan_in_subvolume(
        writer,
        layout,
        id,
        at.subvolume,
        at.link,
        at.view,
        to.as_deref(),
        &opts,
    )?;
    let out = std::io::stdout();
    let mut out = out.lock();
    for line in relink::render(&plan, undo_dir) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(demo) = temporary_demo {
        let _ = writeln!(
            out,
            "  note: --demo works on a temporary copy ({}) that is removed when vmrescue exits; \
             --demo-keep FILE keeps the repaired copy",
            demo.display()
        );
    }
    if !plan.blockers.is_empty() {
        for b in &plan.blockers {
            let _ = writeln!(out, "  cannot apply: {b}");
        }
        let _ = out.flush();
        let verb = if args.dry_run {
            "would be refused"
        } else {
            "refused"
        };
        report(&format!(
            "{verb}: {}; nothing was written",
            plan.blockers.join("; ")
        ));
        return Ok(exit::ERROR);
    }
    if !plan.can_apply() {
        report(&"nothing to write");
        return Ok(exit::ERROR);
    }
    if args.dry_run {
        let _ = writeln!(out, "dry run: nothing was written");
        return Ok(exit::OK);
    }
    let _ = out.flush();
    drop(out);
    if !args.yes && !ask(&plan)? {
        outln!("nothing was written");
        return Ok(exit::PROBLEMS);
    }
    let applied = relink::apply_with(writer, layout, id, &plan, undo_dir, &opts)?;
    match plan.applier {
        Applier::InPlace => outln!(
            "relinked {} -> {} ({} bytes written)",
            escape(&plan.link),
            escape(&plan.new_target),
            plan.bytes()
        ),
        Applier::Kernel => outln!(
            "{}: {} -> {}",
            escape(&applied.link),
            escape(&plan.old_target),
            escape(&plan.new_target)
        ),
    }
    for f in &applied.undo_files {
        outln!("undo: vmrescue undo {}", f.display());
    }
    for n in &applied.notes {
        report(n);
    }
    if let Some(demo) = temporary_demo {
        outln!(
            "note: this was a temporary copy of the demo image ({}), removed when vmrescue \
             exits, and its undo file with it; use --demo-keep FILE to keep them",
            demo.display()
        );
    }
    Ok(if applied.notes.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    })
}

/// Ask a yes/no question on the terminal; without one, refuse (scripts say --yes).
pub(super) fn ask_yes(question: &str) -> Result<bool, vmrescue::Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(vmrescue::Error::Refused(
            "standard input is not a terminal to ask on: add --yes to write (or --dry-run to \
             only look); nothing was written"
                .into(),
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| vmrescue::Error::io("standard input", e))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Ask on the terminal; without one, refuse (scripts say --yes).
fn ask(plan: &Plan) -> Result<bool, vmrescue::Error> {
    if plan.applier == Applier::Kernel {
        return ask_yes(&format!(
            "Replace {} through a read-write mount of {}?",
            escape(&plan.link),
            plan.volume
        ));
    }
    let images: Vec<String> = plan.writes.iter().map(|w| image_name(&w.image)).collect();
    ask_yes(&format!(
        "Write {} bytes to {}?",
        plan.bytes(),
        images.join(" and ")
    ))
}

fn image_name(p: &Path) -> String {
    vmrescue::text::escape_str(&p.display().to_string())
}
