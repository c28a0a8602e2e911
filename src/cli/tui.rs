//! `vmrescue IMAGE` and `vmrescue --demo` with no command: the full-screen browser.

use std::io::IsTerminal;
use std::sync::Arc;

use vmrescue::engine::{Engines, FsOptions};
use vmrescue::fs::FsView;
use vmrescue::layers::{Layout, VolumeId};
use vmrescue::tui::jobs::VolumeOpener;
use vmrescue::tui::{self, AppConfig, Options};

use super::{Target, exit, open_layout, report};

/// What the browser is started with.
#[derive(Debug, Clone)]
pub struct TuiArgs {
    /// The disks.
    pub target: Target,
    /// `--volume`: the volume to open first (else the guest root).
    pub volume: Option<String>,
}

/// Run the browser.
pub fn run(args: &TuiArgs) -> u8 {
    if !std::io::stdout().is_terminal() {
        report(&tui::strings::NOT_A_TERMINAL);
        return exit::ERROR;
    }
    let layout = match open_layout(&args.target) {
        Ok(l) => l,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let config = AppConfig {
        volume: args.volume.clone(),
        pve_root: args.target.source.pve_root.clone(),
        ..AppConfig::default()
    };
    let mut opts = Options::new(layout, config);
    opts.opener = Arc::new(EngineOpener {
        engines: Engines::new(args.target.source.engine),
    });
    // Mounts, dm and loop devices go when the browser ends, however it ends.
    tui::terminal::register_teardown(|| {
        for p in vmrescue::engine::kernel::teardown_all(true) {
            eprintln!("vmrescue: {p}");
        }
    });
    match tui::run(opts) {
        Ok(None) => exit::OK,
        // Killed by a signal: the shell's convention, 128 + its number.
        Ok(Some(sig)) => u8::try_from(128 + sig).unwrap_or(exit::ERROR),
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}

/// Opens volumes with the engine `--engine` picks for each (`auto`:
/// userspace where vmrescue reads the filesystem, else the kernel engine).
struct EngineOpener {
    engines: Engines,
}

impl VolumeOpener for EngineOpener {
    fn engine(&self) -> String {
        self.engines.choice().to_string()
    }
    fn open(&self, layout: &Layout, id: VolumeId) -> Result<Arc<dyn FsView>, String> {
        self.engines
            .open_fs(layout, id, &FsOptions::default())
            .map_err(|e| e.to_string())
    }
    fn engine_for(&self, layout: &Layout, id: VolumeId) -> String {
        match self.engines.decide(layout, id).engine {
            Some(e) => e.name().to_string(),
            None => self.engine(),
        }
    }
    fn repair_blocker(&self, layout: &Layout, id: VolumeId) -> Option<String> {
        (self.engines.decide(layout, id).engine == Some(vmrescue::engine::Engine::Kernel)).then(
            || {
                format!(
                    "{} is mounted through the kernel engine here: quit and run `vmrescue relink \
                 --engine kernel IMAGE --volume {} PATH`",
                    layout.volume(id).name,
                    layout.volume(id).name
                )
            },
        )
    }
}
