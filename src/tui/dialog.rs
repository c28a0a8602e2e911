//! The windows drawn over the two panes. They stack: the help over the
//! restore dialog, a question over it before writing; Esc closes the top one
//! and shows the one under it ([`crate::tui::App::under`]). A question about
//! the running copy is drawn over the progress window, which is not a dialog.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::copier::{CopyProgress, CopySummary, PlanSummary, PlannedCopy};
use super::details::Details;
use super::keymap::Context;
use super::text_field::TextField;
use crate::layers::VolumeId;
use crate::repair::doctor::Report;
use crate::repair::relink::Plan;

/// The window shown over the panes.
pub enum Dialog {
    /// The key help (`?`).
    Help {
        /// First line shown.
        scroll: usize,
    },
    /// Details of a file (`i`).
    Details {
        /// Request number of the details job.
        req: u64,
        /// The file, escaped (until the details arrive).
        title: String,
        /// The details, once read.
        details: Option<Box<Details>>,
        /// First line shown.
        scroll: usize,
    },
    /// Facts about the selected layer node, or any other text.
    Message {
        /// Title.
        title: String,
        /// Lines (already escaped).
        lines: Vec<String>,
        /// First line shown.
        scroll: usize,
    },
    /// Choosing where to copy, with the plan's summary.
    CopySetup(CopySetup),
    /// A yes/no question.
    Confirm(Confirm),
    /// The end of a copy.
    Summary {
        /// What happened.
        summary: CopySummary,
        /// First line shown.
        scroll: usize,
    },
    /// The symlink restore dialog (`r`): the link's problems, the ranked
    /// candidates, the plan for the chosen one, `y` to write it (through
    /// [`ConfirmKind::ApplyRelink`]).
    Restore(Box<RestoreDialog>),
    /// The doctor view (`!`): the guest's suspicious links and recent changes.
    Doctor(Box<DoctorView>),
}

impl Dialog {
    /// Where keys are read while this window is shown.
    pub fn context(&self) -> Context {
        match self {
            Dialog::CopySetup(_) => Context::Edit,
            Dialog::Restore(r) if r.typing.is_some() => Context::Edit,
            Dialog::Confirm(_) => Context::Confirm,
            Dialog::Restore(_) | Dialog::Doctor(_) => Context::Repair,
            _ => Context::Dialog,
        }
    }

    /// The scroll position of windows that scroll.
    pub fn scroll_mut(&mut self) -> Option<&mut usize> {
        match self {
            Dialog::Help { scroll }
            | Dialog::Details { scroll, .. }
            | Dialog::Message { scroll, .. }
            | Dialog::Summary { scroll, .. } => Some(scroll),
            Dialog::Restore(r) => Some(&mut r.scroll),
            Dialog::Doctor(d) => Some(&mut d.scroll),
            Dialog::CopySetup(_) | Dialog::Confirm(_) => None,
        }
    }
}

/// What a copy does with a name that exists in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    /// Leave it, and list the file as skipped.
    #[default]
    Skip,
    /// Replace it (a directory is never replaced by a file).
    Overwrite,
    /// Copy into a new folder beside the destination instead.
    NewFolder,
}

impl IfExists {
    /// The next choice (Tab).
    pub fn next(self) -> IfExists {
        match self {
            IfExists::Skip => IfExists::Overwrite,
            IfExists::Overwrite => IfExists::NewFolder,
            IfExists::NewFolder => IfExists::Skip,
        }
    }
}

/// The copy dialog.
pub struct CopySetup {
    /// The destination folder (editable).
    pub dest: TextField,
    /// The destination is still the default, untouched: typing `/` there
    /// starts a new path instead of adding to it.
    pub dest_default: bool,
    /// Entries in the destination folder now (0: missing or empty).
    pub dest_entries: usize,
    /// The folder used instead with [`IfExists::NewFolder`].
    pub new_folder: String,
    /// What to do with names that exist.
    pub if_exists: IfExists,
    /// Request number of the planning job.
    pub req: u64,
    /// How many marked paths (or 1 for the selected file).
    pub sources: usize,
    /// The volumes copied from.
    pub volumes: Vec<String>,
    /// The first source, escaped (for "copy libc.so.6").
    pub first: String,
    /// The plan, once made.
    pub plan: Option<Box<dyn PlannedCopy>>,
    /// Its summary.
    pub summary: Option<PlanSummary>,
    /// Why planning failed.
    pub error: Option<String>,
    /// Stops the planning job.
    pub cancel: Arc<AtomicBool>,
}

/// What a yes/no question decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmKind {
    /// Stop the running copy.
    CancelCopy,
    /// Stop the running copy and quit when it has stopped.
    QuitDuringCopy,
    /// Write the planned symlink repair (the restore dialog waits behind).
    ApplyRelink,
}

/// A yes/no question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// What "yes" does.
    pub kind: ConfirmKind,
    /// Title.
    pub title: String,
    /// The question, in lines.
    pub lines: Vec<String>,
}

/// A copy running on its job thread.
#[derive(Debug, Clone)]
pub struct CopyJob {
    /// Latest progress.
    pub progress: CopyProgress,
    /// Set to stop it.
    pub cancel: Arc<AtomicBool>,
    /// Where to.
    pub dest: PathBuf,
    /// Whether the progress window is hidden (the copy goes on).
    pub hidden: bool,
    /// Whether a stop was asked for.
    pub cancelling: bool,
}

/// A candidate target as the restore dialog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateRow {
    /// The target as the link would hold it.
    pub target: Vec<u8>,
    /// The target, escaped.
    pub shown: String,
    /// Why it is proposed.
    pub reasons: Vec<String>,
    /// A name-based guess.
    pub guess: bool,
    /// What the link points at now.
    pub current: bool,
}

/// The restore dialog (`r` on a symlink).
#[derive(Debug, Clone)]
pub struct RestoreDialog {
    /// The volume holding the link.
    pub volume: VolumeId,
    /// The link's guest path, as stored.
    pub link: Vec<u8>,
    /// The link's guest path, escaped.
    pub path: String,
    /// Its current target, escaped.
    pub target: String,
    /// What is wrong with it (from the file list until the analysis arrives).
    pub problems: Vec<String>,
    /// Request number of the analysis or planning job whose answer is awaited.
    pub req: u64,
    /// The candidates are being looked for.
    pub analyzing: bool,
    /// Why the link could not be analysed.
    pub analysis_error: Option<String>,
    /// Candidate targets, best first.
    pub candidates: Vec<CandidateRow>,
    /// The highlighted candidate.
    pub selected: usize,
    /// The candidate the plan is for.
    pub chosen: Option<usize>,
    /// The plan is being made.
    pub planning: bool,
    /// The plan for the chosen candidate.
    pub plan: Option<Box<Plan>>,
    /// Why no plan could be made for it.
    pub plan_error: Option<String>,
    /// Where the undo file goes, escaped.
    pub undo_dir: String,
    /// A target being typed (`t`), not yet a candidate.
    pub typing: Option<TextField>,
    /// Plans allow a target that does not resolve inside the guest (`f`,
    /// as `relink --force`).
    pub force: bool,
    /// First line shown.
    pub scroll: usize,
}

impl RestoreDialog {
    /// Whether `y` would write: a plan without blockers.
    pub fn can_apply(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| p.can_apply())
    }
}

/// The doctor view (`!`).
#[derive(Debug, Clone)]
pub struct DoctorView {
    /// The volume examined.
    pub volume: VolumeId,
    /// Its name.
    pub volume_name: String,
    /// Request number of the scan.
    pub req: u64,
    /// What the scan found (`None` while it runs).
    pub report: Option<Report>,
    /// The highlighted finding.
    pub selected: usize,
    /// First line shown.
    pub scroll: usize,
}
