//! `vmrescue undo`.

use std::path::PathBuf;

use clap::Args;
use vmrescue::repair::undo::{self, UndoRecord};

use super::{exit, report};

/// Arguments of `undo`.
#[derive(Args, Debug)]
pub(super) struct UndoArgs {
    /// The undo file a repair printed (under ~/.local/state/vmrescue/undo/).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Run `undo`.
pub(super) fn run(args: &UndoArgs) -> u8 {
    let result = undo::load_record(&args.file).and_then(|rec| match &rec {
        UndoRecord::Bytes { .. } => undo::undo_bytes(&rec),
        UndoRecord::Symlink { .. } => vmrescue::engine::kernel::repair::undo(&rec),
    });
    match result {
        Ok(msg) => {
            outln!("{msg}");
            exit::OK
        }
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}
