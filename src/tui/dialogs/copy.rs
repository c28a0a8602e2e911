//! The copy dialog (`c`): where to copy, what to do with names that exist
//! there, and the plan's summary once counted. Drawn by
//! [`crate::tui::views::copy`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{CopyJob, Ctx, Outcome};
use crate::ops::copy::Existing;
use crate::tui::action::Action;
use crate::tui::copier::{CopyProgress, PlanSummary, PlannedCopy};
use crate::tui::event::Effect;
use crate::tui::strings as s;
use crate::tui::text_field::TextField;

/// What a copy does with a name that exists in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    /// Leave it: a file that is the same (size and mtime, or a symlink's
    /// target) is counted as unchanged, one that differs is listed as a
    /// conflict (`cp --skip-existing`, [`Existing::SkipSame`]).
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
    /// Bytes free where the copy would go (`df`'s available), when known.
    pub dest_free: Option<u64>,
    /// Enter was pressed once with a plan larger than `dest_free`, and the
    /// operator told so: Enter again copies what fits.
    pub told_too_big: bool,
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

impl CopySetup {
    /// The dialog for `sources` paths from `volumes` (`first`: the first
    /// path, escaped), copying to `dest` by default, while planning job
    /// `req` counts (stopped by `cancel`).
    pub fn new(
        dest: &str,
        req: u64,
        sources: usize,
        volumes: Vec<String>,
        first: String,
        cancel: Arc<AtomicBool>,
    ) -> CopySetup {
        let mut setup = CopySetup {
            dest: TextField::new(dest),
            dest_default: true,
            dest_entries: 0,
            new_folder: String::new(),
            if_exists: IfExists::Skip,
            dest_free: None,
            told_too_big: false,
            req,
            sources,
            volumes,
            first,
            plan: None,
            summary: None,
            error: None,
            cancel,
        };
        setup.look_at_dest();
        setup
    }

    /// Take an action (keys are read in [`crate::tui::keymap::Context::Edit`]).
    pub fn update(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        // An absolute path typed over the default destination replaces it.
        if self.dest_default && *action == Action::Insert('/') {
            self.dest = TextField::default();
        }
        if self.dest.edit(action) {
            if !matches!(
                action,
                Action::CursorLeft | Action::CursorRight | Action::Home | Action::End
            ) {
                self.dest_default = false;
                self.told_too_big = false;
            }
            self.look_at_dest();
            return Outcome::Stay;
        }
        match action {
            Action::CycleExisting => {
                self.if_exists = self.if_exists.next();
                Outcome::Stay
            }
            Action::Confirm => self.start(ctx),
            Action::Cancel => {
                self.cancel.store(true, Ordering::Relaxed);
                Outcome::Close
            }
            Action::Quit => Outcome::AskQuit,
            _ => Outcome::Stay,
        }
    }

    /// The planning job's answer.
    pub fn planned(&mut self, result: Result<Box<dyn PlannedCopy>, String>) {
        match result {
            Ok(plan) => {
                self.summary = Some(plan.summary());
                self.plan = Some(plan);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Enter: start the copy, if the plan is ready and the destination can
    /// be written.
    fn start(&mut self, ctx: &mut Ctx<'_>) -> Outcome {
        if self.error.is_some() {
            return Outcome::Stay;
        }
        if self.dest.text.trim().is_empty() {
            return Outcome::SayError(s::NEED_DESTINATION.into());
        }
        // What is in the destination now, not when the dialog opened.
        self.look_at_dest();
        let Some(mut plan) = self.plan.take() else {
            return Outcome::Say(s::STILL_COUNTING.into());
        };
        let mut dest = expand_home(self.dest.text.trim());
        match self.if_exists {
            IfExists::Skip => plan.set_existing(Existing::SkipSame),
            IfExists::Overwrite => plan.set_existing(Existing::Overwrite),
            IfExists::NewFolder if self.dest_entries > 0 => {
                dest = expand_home(&self.new_folder);
                plan.set_existing(Existing::SkipSame);
            }
            IfExists::NewFolder => plan.set_existing(Existing::SkipSame),
        }
        // Before the first byte: can files be created there at all? The
        // dialog stays open so the operator can type another folder.
        if let Err(e) = crate::ops::copy::check_destination_and_parents(&dest) {
            self.plan = Some(plan);
            return Outcome::SayError(s::cannot_copy_there(&e.to_string()));
        }
        // Larger than the space there: said once; Enter again copies what
        // fits (holes of sparse files take none, so it may all fit).
        if let Some((needs, free)) = self.too_big()
            && !self.told_too_big
        {
            self.told_too_big = true;
            self.plan = Some(plan);
            return Outcome::SayError(s::copy_too_big(
                &crate::tui::format::size(needs),
                &crate::tui::format::size(free),
            ));
        }
        let progress = CopyProgress {
            bytes_total: self.summary.as_ref().map_or(0, |s| s.bytes),
            files_total: self.summary.as_ref().map_or(0, |s| s.files),
            ..Default::default()
        };
        let cancel = Arc::new(AtomicBool::new(false));
        ctx.effects.push(Effect::StartCopy {
            plan,
            dest: dest.clone(),
            cancel: Arc::clone(&cancel),
        });
        Outcome::CopyStarted(CopyJob {
            progress,
            cancel,
            dest,
            hidden: false,
            cancelling: false,
        })
    }

    /// The bytes the plan needs and those free at the destination, when
    /// the plan is larger.
    pub fn too_big(&self) -> Option<(u64, u64)> {
        let needs = self.summary.as_ref()?.allocated;
        let free = self.dest_free?;
        (needs > free).then_some((needs, free))
    }

    /// Look at the destination on the host: how many entries it holds, the
    /// space free there, and the first free `NAME-2`, `NAME-3`... beside it
    /// for a copy into a new folder.
    fn look_at_dest(&mut self) {
        let text = self.dest.text.trim();
        let path = expand_home(text);
        self.dest_free = crate::ops::copy::free_bytes(&path).ok();
        self.dest_entries = std::fs::read_dir(&path)
            .map(|d| d.take(DEST_COUNT_MAX).count())
            .unwrap_or(0);
        self.new_folder.clear();
        if self.dest_entries == 0 {
            return;
        }
        let base = text.trim_end_matches('/');
        for n in 2..1000u32 {
            let candidate = format!("{base}-{n}/");
            if std::fs::symlink_metadata(expand_home(&candidate)).is_err() {
                self.new_folder = candidate;
                return;
            }
        }
    }
}

/// Most entries of a destination folder counted.
const DEST_COUNT_MAX: usize = 10_000;

/// A destination as typed, with `~/` for the home folder.
fn expand_home(dest: &str) -> PathBuf {
    if let Some(rest) = dest.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(dest)
}
