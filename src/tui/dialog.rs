//! The windows drawn over the two panes. One at a time (a question about the
//! running copy is drawn over the progress window, which is not a dialog).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::copier::{CopyProgress, CopySummary, PlanSummary, PlannedCopy};
use super::details::Details;
use super::files::TextField;
use super::keymap::Context;

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
    /// The symlink restore dialog (`r`). Issue 5 turns this into the repair:
    /// candidates, plan and `y` to apply (through [`ConfirmKind`]).
    Restore(RestoreDialog),
    /// The doctor view (`!`). Issue 5 fills it with the whole guest's findings.
    Doctor(DoctorView),
}

impl Dialog {
    /// Where keys are read while this window is shown.
    pub fn context(&self) -> Context {
        match self {
            Dialog::CopySetup(_) => Context::Edit,
            Dialog::Confirm(_) => Context::Confirm,
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

/// The copy dialog.
pub struct CopySetup {
    /// The destination folder (editable).
    pub dest: TextField,
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

/// The restore dialog's content until issue 5 brings the repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreDialog {
    /// The link's guest path, escaped.
    pub path: String,
    /// Its current target, escaped.
    pub target: String,
    /// What looks wrong with it.
    pub problems: Vec<String>,
    /// First line shown.
    pub scroll: usize,
}

/// The doctor view's content until issue 5 brings the whole-guest scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorView {
    /// Flagged entries of the directory shown: (name, reason), escaped.
    pub flagged: Vec<(String, String)>,
    /// The directory, escaped.
    pub dir: String,
    /// First line shown.
    pub scroll: usize,
}
