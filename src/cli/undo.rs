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
    /// Write without asking (a record of a disk served over NBD asks first:
    /// nobody can tell whether the guest uses the export).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Run `undo`.
pub(super) fn run(args: &UndoArgs) -> u8 {
    let result = undo::load_record(&args.file).and_then(|rec| match &rec {
        UndoRecord::Bytes { image, .. } if vmrescue::image::nbd::is_uri_path(image) => {
            let uri = image.display().to_string();
            outln!(
                "{}: {}",
                vmrescue::text::escape_str(&uri),
                vmrescue::image::nbd::NO_HOLDER_LIST
            );
            if args.yes
                || super::relink::ask_yes(&format!(
                    "Write the old bytes back to {}?",
                    vmrescue::text::escape_str(&uri)
                ))?
            {
                undo::undo_bytes(&rec)
            } else {
                Err(vmrescue::Error::Refused(
                    "not confirmed; nothing was changed".into(),
                ))
            }
        }
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
