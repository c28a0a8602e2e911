//! `vmrescue undo`.

use std::path::PathBuf;

use clap::Args;
use vmrescue::repair::undo::{self, UndoRecord};

use super::{exit, report};

/// Arguments of `undo`.
#[derive(Args, Debug)]
pub struct UndoArgs {
    /// The undo file a repair printed (under ~/.local/state/vmrescue/undo/).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Run `undo`.
pub fn run(args: &UndoArgs) -> u8 {
    let result = undo::load_record(&args.file).and_then(|rec| match &rec {
        UndoRecord::Bytes { .. } => undo::undo_bytes(&rec),
        UndoRecord::Symlink { .. } => Err(vmrescue::Error::Unsupported(
            "undoing a kernel-engine repair needs the kernel engine".into(),
        )),
    });
    match result {
        Ok(msg) => {
            println!("{msg}");
            exit::OK
        }
        Err(e) => {
            report(&e);
            exit::ERROR
        }
    }
}
