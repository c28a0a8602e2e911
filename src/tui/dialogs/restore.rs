//! The symlink restore dialog (`r` on a symlink): the link's problems, the
//! ranked candidates, the plan for the chosen one, `y` to write it (through
//! [`super::ConfirmKind::ApplyRelink`]). Drawn by [`crate::tui::views::restore`].

use std::path::Path;

use super::{Confirm, ConfirmKind, Ctx, Dialog, Outcome};
use crate::layers::VolumeId;
use crate::repair::candidates::Analysis;
use crate::repair::relink::{self, Applier, GuestView, Plan};
use crate::text::{escape, escape_str};
use crate::tui::action::Action;
use crate::tui::event::{Effect, RelinkSetup};
use crate::tui::strings as s;
use crate::tui::text_field::TextField;

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
    /// The btrfs subvolume [`RestoreDialog::link`] starts in, when it lies
    /// outside the volume's default subvolume.
    pub subvolume: Option<u64>,
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
    /// In the guest's tree: the tree and the link's path in it, where every
    /// plan judges its target (on other volumes too).
    pub guest: Option<GuestView>,
}

impl RestoreDialog {
    /// Whether `y` would write: a plan without blockers.
    pub fn can_apply(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| p.can_apply())
    }

    /// The dialog for the link at `link` on `volume` (its target and
    /// problems as the file list knows them), while analysis job `req` looks
    /// for candidates. `shown` is the link's path as the operator found it
    /// (in the guest's tree, where `link` is the path on its own volume).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        volume: VolumeId,
        link: Vec<u8>,
        shown: &[u8],
        target: String,
        problems: Vec<String>,
        req: u64,
        undo_dir: &Path,
    ) -> RestoreDialog {
        RestoreDialog {
            volume,
            subvolume: None,
            path: escape(shown),
            link,
            target,
            problems,
            req,
            analyzing: true,
            analysis_error: None,
            candidates: Vec::new(),
            selected: 0,
            chosen: None,
            planning: false,
            plan: None,
            plan_error: None,
            undo_dir: escape_str(&undo_dir.display().to_string()),
            typing: None,
            force: false,
            scroll: 0,
            guest: None,
        }
    }

    /// Take an action (keys are read in [`crate::tui::keymap::Context::Repair`],
    /// or [`crate::tui::keymap::Context::Edit`] while a target is typed).
    pub fn update(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        if let Some(field) = &mut self.typing {
            if field.edit(action) {
                return Outcome::Stay;
            }
            return match action {
                Action::Confirm => {
                    self.take_typed_target(ctx);
                    Outcome::Stay
                }
                Action::Cancel => {
                    self.typing = None;
                    Outcome::Stay
                }
                Action::Quit => Outcome::AskQuit,
                _ => Outcome::Stay,
            };
        }
        match action {
            Action::Cancel => Outcome::Close,
            Action::ToggleHelp => Outcome::Help,
            Action::Quit => Outcome::CloseAllAndQuit,
            Action::PageUp => {
                self.scroll = self.scroll.saturating_sub(ctx.page);
                Outcome::Stay
            }
            Action::PageDown => {
                self.scroll = self.scroll.saturating_add(ctx.page);
                Outcome::Stay
            }
            Action::MoveUp => {
                self.selected = self.selected.saturating_sub(1);
                Outcome::Stay
            }
            Action::MoveDown => {
                self.selected = (self.selected + 1).min(self.candidates.len().saturating_sub(1));
                Outcome::Stay
            }
            Action::TypeTarget => {
                if self.analyzing {
                    return Outcome::Announce(s::RESTORE_STILL_LOOKING.into(), false);
                }
                self.typing = Some(TextField::default());
                Outcome::Stay
            }
            Action::Open => {
                self.plan_candidate(false, ctx);
                Outcome::Stay
            }
            Action::Confirm => self.ask_relink(ctx),
            Action::Force => self.toggle_force(ctx),
            _ => Outcome::Stay,
        }
    }

    /// The analysis arrived: fill the dialog.
    pub fn analyzed(
        &mut self,
        analysis: Result<Box<Analysis>, String>,
        plan: Option<Result<Box<Plan>, String>>,
    ) {
        self.analyzing = false;
        match analysis {
            Err(e) => self.analysis_error = Some(e),
            Ok(a) => {
                self.target = escape(&a.target);
                self.problems = a.problems.clone();
                self.candidates = a
                    .candidates
                    .iter()
                    .map(|c| CandidateRow {
                        target: c.target.clone(),
                        shown: escape(&c.target),
                        reasons: c.reasons.clone(),
                        guess: c.guess,
                        current: c.current,
                    })
                    .collect();
                let best = a.candidates.iter().position(|c| !c.current);
                self.selected = best.unwrap_or(0);
                self.chosen = best;
                match plan {
                    Some(Ok(p)) => self.plan = Some(p),
                    Some(Err(e)) => self.plan_error = Some(e),
                    None => {}
                }
            }
        }
    }

    /// The plan for the chosen candidate arrived (or could not be made).
    pub fn planned(&mut self, result: Result<Box<Plan>, String>) {
        self.planning = false;
        match result {
            Ok(p) => self.plan = Some(p),
            Err(e) => self.plan_error = Some(e),
        }
    }

    /// `f`: allow (or no longer allow) a target that does not resolve, and
    /// plan the chosen candidate again.
    fn toggle_force(&mut self, ctx: &mut Ctx<'_>) -> Outcome {
        let Some(chosen) = self.chosen else {
            return Outcome::Announce(s::FORCE_NEEDS_PLAN.into(), false);
        };
        self.force = !self.force;
        self.selected = chosen;
        self.plan_candidate(true, ctx);
        Outcome::Stay
    }

    /// Plan the highlighted candidate (again, when `again`).
    fn plan_candidate(&mut self, again: bool, ctx: &mut Ctx<'_>) {
        let req = ctx.next_req();
        let setup = ctx.relink_setup(self.force);
        let Some(c) = self.candidates.get(self.selected) else {
            return;
        };
        if !again && self.chosen == Some(self.selected) && (self.plan.is_some() || self.planning) {
            return;
        }
        let target = c.target.clone();
        self.chosen = Some(self.selected);
        self.planning = true;
        self.plan = None;
        self.plan_error = None;
        self.req = req;
        ctx.effects.push(Effect::PlanRelink {
            req,
            volume: self.volume,
            subvolume: self.subvolume,
            link: self.link.clone(),
            guest: self.guest.clone(),
            target,
            setup,
        });
    }

    /// Enter on a typed target: add it to the candidates (or select the
    /// candidate that has it already) and plan it.
    fn take_typed_target(&mut self, ctx: &mut Ctx<'_>) {
        let Some(field) = self.typing.take() else {
            return;
        };
        if field.text.is_empty() {
            return;
        }
        let target = field.text.into_bytes();
        let at = match self.candidates.iter().position(|c| c.target == target) {
            Some(i) => i,
            None => {
                self.candidates.push(CandidateRow {
                    shown: escape(&target),
                    current: escape(&target) == self.target,
                    target,
                    reasons: vec![s::TYPED_TARGET.into()],
                    guess: false,
                });
                self.candidates.len() - 1
            }
        };
        self.selected = at;
        self.plan_candidate(false, ctx);
    }

    /// `y`: ask before writing the plan.
    fn ask_relink(&self, ctx: &Ctx<'_>) -> Outcome {
        if ctx.writing {
            return Outcome::Announce(s::ALREADY_WRITING.into(), false);
        }
        let Some(plan) = self.plan.as_ref() else {
            return Outcome::Announce(s::RESTORE_NOT_READY.into(), false);
        };
        if !plan.can_apply() {
            let why = if plan.blockers.is_empty() {
                "nothing to write".to_string()
            } else {
                plan.blockers
                    .join("; ")
                    .replace(s::CLI_FORCE_HINT, s::TUI_FORCE_HINT)
            };
            return Outcome::Announce(s::cannot_apply(&crate::tui::format::safe(&why)), true);
        }
        if plan.applier == Applier::Kernel {
            return Outcome::Push(Dialog::Confirm(Confirm {
                kind: ConfirmKind::ApplyRelink,
                title: s::APPLY_TITLE.into(),
                lines: s::apply_question_kernel(
                    &escape(&plan.link),
                    &escape(&plan.old_target),
                    &escape(&plan.new_target),
                    &escape_str(&plan.volume),
                ),
            }));
        }
        let images: Vec<String> = plan
            .writes
            .iter()
            .map(|w| escape_str(&w.shown_image()))
            .collect();
        let lines = s::apply_question(
            &escape(&plan.link),
            &escape(&plan.old_target),
            &escape(&plan.new_target),
            plan.bytes(),
            &images.join(" and "),
        );
        Outcome::Push(Dialog::Confirm(Confirm {
            kind: ConfirmKind::ApplyRelink,
            title: s::APPLY_TITLE.into(),
            lines,
        }))
    }
}

/// How a symlink repair is planned and written: undo files in `undo_dir`,
/// running guests looked up under `pve_root`.
pub fn relink_setup(undo_dir: &Path, pve_root: &Path, force: bool) -> RelinkSetup {
    RelinkSetup {
        undo_dir: undo_dir.to_path_buf(),
        options: relink::Options {
            force,
            pve_root: Some(pve_root.to_path_buf()),
            now: None,
        },
    }
}
