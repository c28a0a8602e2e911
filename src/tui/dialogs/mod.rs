//! The windows drawn over the two panes. They stack: the help over the
//! restore dialog, a question over it before writing; Esc closes the top one
//! and shows the one under it ([`crate::tui::App::under`]). A question about
//! the running copy is drawn over the progress window, which is not a dialog.
//!
//! The dialogs with a life of their own have their own module here, with
//! their state and an `update(&Action, &mut Ctx) -> Outcome`: [`copy`] (the
//! copy dialog), [`restore`] (the symlink restore dialog) and [`doctor`]
//! (the doctor view), [`viewer`] (the file viewer). The
//! [`crate::tui::App`] holds the stack, gives the top window the action and
//! does what the [`Outcome`] asks of it. Their drawing stays with the other
//! windows' in [`crate::tui::views`] (`views/copy.rs`, `views/restore.rs`,
//! `views/doctor.rs`).

pub mod copy;
pub mod doctor;
pub mod find;
pub mod passphrase;
pub mod restore;
pub mod viewer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::copier::{CopyProgress, CopySummary};
use super::details::Details;
use super::event::{Effect, RelinkSetup};
use super::keymap::Context;
use crate::tui::tree::Tree;

pub use copy::{CopySetup, IfExists};
pub use doctor::DoctorView;
pub use find::FindDialog;
pub use passphrase::PassphraseDialog;
pub use restore::{CandidateRow, RestoreDialog};
pub use viewer::ViewerDialog;

/// What a dialog may use of the app while it takes an action.
pub struct Ctx<'a> {
    /// Where symlink repairs save their undo files.
    pub undo_dir: &'a Path,
    /// The Proxmox configuration root.
    pub pve_root: &'a Path,
    /// Rows of a page in a dialog.
    pub page: usize,
    /// A repair is being written.
    pub writing: bool,
    /// The app's last request number.
    pub last_req: &'a mut u64,
    /// Work for the runtime.
    pub effects: &'a mut Vec<Effect>,
}

impl Ctx<'_> {
    /// A new request number.
    pub fn next_req(&mut self) -> u64 {
        *self.last_req += 1;
        *self.last_req
    }

    /// How a symlink repair is planned and written.
    pub fn relink_setup(&self, force: bool) -> RelinkSetup {
        restore::relink_setup(self.undo_dir, self.pve_root, force)
    }
}

/// What the app does after a dialog took an action.
pub enum Outcome {
    /// Nothing more: the dialog took it.
    Stay,
    /// Close the dialog (the window under it shows again).
    Close,
    /// Show the key help over the dialog.
    Help,
    /// Ask whether to quit (the dialog stays).
    AskQuit,
    /// Close every window, then ask whether to quit.
    CloseAllAndQuit,
    /// Show a window over the dialog (a question).
    Push(Dialog),
    /// A message on the status line.
    Say(String),
    /// An error on the status line.
    SayError(String),
    /// A message shown first on the status line until the next action.
    Announce(String, bool),
    /// The copy started: the dialog closes and its progress shows.
    CopyStarted(CopyJob),
    /// Close the window and show `name` in folder `dir` of `volume` in the
    /// right pane (the find dialog's Enter on a result).
    JumpTo {
        /// The tree.
        tree: Tree,
        /// The folder, a guest path.
        dir: Vec<u8>,
        /// The entry to put the cursor on (none: the folder is the root).
        name: Option<Vec<u8>>,
    },
    /// Open the viewer on a file, over this window.
    View {
        /// The tree the path is in.
        tree: Tree,
        /// The file's guest path.
        path: Vec<u8>,
    },
    /// Go to a link and open its restore dialog in place of this window.
    RestoreLink {
        /// The tree the link's path is in.
        tree: Tree,
        /// The link's guest path, as stored.
        link: Vec<u8>,
        /// Its current target, escaped.
        target: String,
        /// What is wrong with it.
        problems: Vec<String>,
    },
}

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
    /// The doctor view (`!`): why the guest would not boot.
    Doctor(Box<DoctorView>),
    /// The file viewer (Enter, `F3` or `v` on a file).
    Viewer(Box<ViewerDialog>),
    /// The find dialog (`Ctrl-F`, `F7`).
    Find(Box<FindDialog>),
    /// The passphrase of a locked LUKS volume (Enter on it).
    Passphrase(Box<PassphraseDialog>),
}

impl Dialog {
    /// Where keys are read while this window is shown.
    pub fn context(&self) -> Context {
        match self {
            Dialog::CopySetup(_) | Dialog::Find(_) | Dialog::Passphrase(_) => Context::Edit,
            Dialog::Restore(r) if r.typing.is_some() => Context::Edit,
            Dialog::Confirm(_) => Context::Confirm,
            Dialog::Restore(_) | Dialog::Doctor(_) => Context::Repair,
            Dialog::Viewer(v) if v.typing.is_some() => Context::Edit,
            Dialog::Viewer(_) => Context::Viewer,
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
            Dialog::Find(f) => Some(&mut f.scroll),
            Dialog::CopySetup(_)
            | Dialog::Confirm(_)
            | Dialog::Viewer(_)
            | Dialog::Passphrase(_) => None,
        }
    }
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
