//! `vmrescue IMAGE` and `vmrescue --demo` with no command: the full-screen browser.

use std::io::IsTerminal;
use std::sync::Arc;

use vmrescue::engine::Engines;
use vmrescue::tui::{self, AppConfig, Options};

use super::{Target, exit, open_layout_asking, report};

/// What the browser is started with.
#[derive(Debug, Clone)]
pub(super) struct TuiArgs {
    /// The disks.
    pub target: Target,
    /// `--volume`: the volume to open first (else the guest root).
    pub volume: Option<String>,
}

/// Whether the full-screen browser can run: standard input and output are
/// a terminal.
pub(super) fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// `vmrescue` alone on a Proxmox host, in a terminal: pick a guest from
/// `guests`, then browse its disks as `vmrescue ID` would.
pub(super) fn pick_guest(target: &Target, guests: &[vmrescue::pve::Guest]) -> u8 {
    let rows = guests
        .iter()
        .map(|g| {
            let (cells, lines) = vmrescue::pve::describe(g);
            let (disks, skipped) = g.openable_disks();
            let unopenable = disks.is_empty().then(|| {
                let why = if skipped.is_empty() {
                    "it has no disks".to_string()
                } else {
                    skipped.join("; ")
                };
                format!(
                    "{} {}: no disk can be opened: {why}",
                    g.kind.short(),
                    g.vmid
                )
            });
            let total = g.disks.len() as u64;
            let mut summary = vmrescue::text::count(total, "disk", "disks");
            if disks.len() as u64 != total {
                summary.push_str(&format!(", {} can be opened", disks.len()));
            }
            tui::picker::PickRow {
                vmid: g.vmid,
                cells,
                disks: summary,
                lines,
                unopenable,
            }
        })
        .collect();
    let source = target.source.pve_root.display().to_string();
    let mut picker = tui::picker::Picker::new(rows, &source);
    loop {
        match tui::picker::run(picker.clone()) {
            Ok(tui::picker::Picked::Open(vmid)) => {
                let mut target = target.clone();
                target.source.vmid = Some(vmid);
                let args = TuiArgs {
                    target,
                    volume: None,
                };
                match open_then_run(&args) {
                    Ok(code) => return code,
                    // Its disks listed but not readable (a Ceph cluster
                    // out of reach): back to the list, the guest marked.
                    Err(e) => {
                        let Some(row) = picker.rows.iter_mut().find(|r| r.vmid == vmid) else {
                            report(&e);
                            return exit::ERROR;
                        };
                        let kind = guests
                            .iter()
                            .find(|g| g.vmid == vmid)
                            .map_or("guest", |g| g.kind.short());
                        let why = format!("{kind} {vmid}: no disk can be opened: {e}");
                        row.unopenable = Some(why.clone());
                        picker.selected =
                            picker.rows.iter().position(|r| r.vmid == vmid).unwrap_or(0);
                        picker.message = Some(why);
                    }
                }
            }
            Ok(tui::picker::Picked::Quit) => return exit::OK,
            Err(e) => {
                report(&e);
                return exit::ERROR;
            }
        }
    }
}

/// Run the browser.
pub(super) fn run(args: &TuiArgs) -> u8 {
    open_then_run(args).unwrap_or_else(|e| {
        report(&e);
        exit::ERROR
    })
}

/// [`run`]; a target whose disks cannot be opened is the error, for the
/// caller to report (or to go back to the guest list with).
fn open_then_run(args: &TuiArgs) -> Result<u8, vmrescue::Error> {
    if !std::io::stdout().is_terminal() {
        report(&tui::strings::NOT_A_TERMINAL);
        return Ok(exit::ERROR);
    }
    // `auto`: userspace where vmrescue reads the filesystem, else the kernel engine.
    let engines = Arc::new(Engines::new(args.target.source.engine));
    // A LUKS volume's passphrase is asked in the browser, when it is opened.
    let layout = open_layout_asking(&args.target, &engines, false, false)?;
    let config = AppConfig {
        volume: args.volume.clone(),
        pve_root: args.target.source.pve_root.clone(),
        snapshot: args.target.source.snapshot.clone(),
        ..AppConfig::default()
    };
    let mut opts = Options::new(layout, config);
    opts.opener = engines;
    // Mounts, dm and loop devices go when the browser ends, however it ends:
    // a kernel session registers its teardown (`vmrescue::teardown`), which
    // the browser runs when it ends.
    Ok(match tui::run(opts) {
        Ok(None) => exit::OK,
        // Killed by a signal: the shell's convention, 128 + its number.
        Ok(Some(sig)) => u8::try_from(128 + sig).unwrap_or(exit::ERROR),
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    })
}
