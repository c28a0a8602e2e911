//! The doctor view (`!`): the guest's suspicious links and recent changes;
//! Enter opens the restore dialog of the highlighted link. Drawn by
//! [`crate::tui::views::doctor`].

use super::{Ctx, Outcome};
use crate::doctor::Report;
use crate::text::escape;
use crate::tui::action::Action;
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
                let finding = self
                    .report
                    .as_ref()
                    .and_then(|r| r.findings.get(self.selected));
                if let Some(a) = finding.and_then(|f| f.relink()) {
                    return Outcome::RestoreLink {
                        tree: self.tree,
                        link: a.link.clone(),
                        target: escape(&a.target),
                        problems: a.problems.clone(),
                    };
                }
            }
            _ => {}
        }
        Outcome::Stay
    }
}
