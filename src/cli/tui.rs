//! `vmrescue IMAGE` and `vmrescue --demo` with no command: the full-screen browser.

use std::io::IsTerminal;

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
    match tui::run(Options::new(layout, config)) {
        Ok(None) => exit::OK,
        // Killed by a signal: the shell's convention, 128 + its number.
        Ok(Some(sig)) => u8::try_from(128 + sig).unwrap_or(exit::ERROR),
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}
