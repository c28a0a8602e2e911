//! The doctor view (`!`): why the guest would not boot, findings grouped by
//! what they break; Enter goes to the highlighted finding's file, `r` opens
//! the restore dialog of a link it proposes to repair, `v` views the file.
//! Drawn by [`crate::tui::views::doctor`].

use super::{Ctx, Outcome};
use crate::doctor::{Finding, Repair, Report};
use crate::fs::path;
use crate::text::escape;
use crate::tui::action::Action;
use crate::tui::strings as s;
use crate::tui::tree::Tree;

/// The doctor view (`!`).
#[derive(Debug, Clone)]
pub struct DoctorView {
    /// The tree examined.
    pub tree: Tree,
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

impl DoctorView {
    fn finding(&self) -> Option<&Finding> {
        self.report.as_ref()?.findings.get(self.selected)
    }

    /// Take an action (keys are read in [`crate::tui::keymap::Context::Repair`]).
    pub fn update(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        match action {
            Action::Cancel => return Outcome::Close,
            Action::ToggleHelp => return Outcome::Help,
            Action::Quit => return Outcome::CloseAllAndQuit,
            Action::PageUp => self.scroll = self.scroll.saturating_sub(ctx.page),
            Action::PageDown => self.scroll = self.scroll.saturating_add(ctx.page),
            Action::MoveUp => self.selected = self.selected.saturating_sub(1),
            Action::MoveDown => {
                let n = self.report.as_ref().map_or(0, |r| r.findings.len());
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
            }
            Action::Open => {
                let Some(f) = self.finding() else {
                    return Outcome::Stay;
                };
                let Some(file) = &f.path else {
                    return Outcome::Say(s::DOCTOR_NO_FILE.into());
                };
                let (dir, name) = path::split_last(file);
                return Outcome::JumpTo {
                    tree: self.tree,
                    dir,
                    name,
                };
            }
            Action::RestoreSymlink => {
                let Some(f) = self.finding() else {
                    return Outcome::Stay;
                };
                return match f.relink() {
                    Some(a) => Outcome::RestoreLink {
                        tree: self.tree,
                        link: a.link.clone(),
                        target: escape(&a.target),
                        problems: a.problems.clone(),
                    },
                    None => Outcome::Say(s::DOCTOR_NO_REPAIR.into()),
                };
            }
            Action::View => {
                let Some(f) = self.finding() else {
                    return Outcome::Stay;
                };
                let file = match &f.repair {
                    Some(Repair::View { path, .. }) => Some(path.clone()),
                    _ => f.path.clone(),
                };
                return match file {
                    Some(path) => Outcome::View {
                        tree: self.tree,
                        path,
                    },
                    None => Outcome::Say(s::DOCTOR_NO_FILE.into()),
                };
            }
            _ => {}
        }
        Outcome::Stay
    }
}
