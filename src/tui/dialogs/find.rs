//! The find dialog (`Ctrl-F`, `F7`): a name glob, a type, a size and "changed
//! within"; Enter walks the guest from `/` on a job thread and the results
//! stream into the list below the fields; `Ctrl-R` lists the newest changes
//! across the guest instead, newest first (the timeline of "what changed
//! before it broke?"). Enter on a result opens its folder in the right pane
//! with the cursor on it. Drawn by [`crate::tui::views::find`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Ctx, Outcome};
use crate::fs::path::split_last;
use crate::fs::{FsView, Timestamp};
use crate::ops::find::{Counts, NameTest, Query, SizeTest, TimeTest, TypeSet};
use crate::tui::action::Action;
use crate::tui::event::Effect;
use crate::tui::strings as s;
use crate::tui::text_field::TextField;
use crate::tui::tree::Tree;

/// Most results a search keeps; it stops there (narrow the search).
pub const MAX_RESULTS: usize = 10_000;
/// How many of the newest changes "changed recently" keeps.
pub const RECENT_KEEP: usize = 1000;

/// The fields, in order.
pub const FIELDS: usize = 4;
/// Field indexes.
pub const NAME: usize = 0;
/// Field indexes.
pub const TYPE: usize = 1;
/// Field indexes.
pub const SIZE: usize = 2;
/// Field indexes.
pub const CHANGED: usize = 3;

pub use crate::tui::event::Hit;

/// Where the keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// One of the fields ([`NAME`], [`TYPE`], [`SIZE`], [`CHANGED`]).
    Field(usize),
    /// The result list.
    Results,
}

/// A search running or done.
#[derive(Debug, Clone)]
pub struct Search {
    /// Request number.
    pub req: u64,
    /// Set to stop it.
    pub cancel: Arc<AtomicBool>,
    /// Whether it is the "changed recently" preset.
    pub recent: bool,
    /// Still running.
    pub running: bool,
    /// Stopped by Esc.
    pub cancelled: bool,
    /// Stopped at [`MAX_RESULTS`].
    pub truncated: bool,
    /// How far it went.
    pub counts: Counts,
    /// The first problems met (directories that could not be read).
    pub problems: Vec<String>,
}

/// The find dialog.
pub struct FindDialog {
    /// The tree searched (the guest, or one volume).
    pub tree: Tree,
    /// Its name, as shown.
    pub volume_name: String,
    /// Its filesystem.
    pub fs: Arc<dyn FsView>,
    /// The fields: name, type, size, changed within.
    pub fields: [TextField; FIELDS],
    /// Where the keys go.
    pub focus: Focus,
    /// The results.
    pub results: Vec<Hit>,
    /// The highlighted result.
    pub selected: usize,
    /// First result shown.
    pub scroll: usize,
    /// The last search.
    pub search: Option<Search>,
    /// Why the fields cannot be searched (shown until the next edit).
    pub error: Option<String>,
}

impl std::fmt::Debug for FindDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindDialog")
            .field("tree", &self.tree)
            .field("fields", &self.fields)
            .field("focus", &self.focus)
            .field("results", &self.results.len())
            .finish()
    }
}

/// Whether a name field is a glob (else it matches as a part of the name, any case).
fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// "changed within" as minutes: `30m`, `6h`, `2d`, or a number of hours.
pub fn parse_within(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 'h'),
    };
    let per = match unit {
        'm' => 1,
        'h' => 60,
        'd' => 24 * 60,
        'w' => 7 * 24 * 60,
        _ => return Err(s::find_bad_within(s)),
    };
    let n: u64 = num.trim().parse().map_err(|_| s::find_bad_within(s))?;
    n.checked_mul(per)
        .filter(|&m| m > 0)
        .ok_or_else(|| s::find_bad_within(s))
}

impl FindDialog {
    /// A dialog over `fs` (tree `tree`), fields empty.
    pub fn new(tree: Tree, volume_name: String, fs: Arc<dyn FsView>) -> FindDialog {
        FindDialog {
            tree,
            volume_name,
            fs,
            fields: Default::default(),
            focus: Focus::Field(NAME),
            results: Vec::new(),
            selected: 0,
            scroll: 0,
            search: None,
            error: None,
        }
    }

    /// Whether a search is running.
    pub fn running(&self) -> bool {
        self.search.as_ref().is_some_and(|s| s.running)
    }

    /// The query the fields ask for, relative to `now`.
    pub fn query(&self, now: Timestamp) -> Result<Query, String> {
        let mut q = Query {
            want_metadata: true,
            ..Query::default()
        };
        let name = self.fields[NAME].text.trim();
        if !name.is_empty() {
            let (glob, fold) = if is_glob(name) {
                (name.as_bytes().to_vec(), false)
            } else {
                (format!("*{name}*").into_bytes(), true)
            };
            q.names.push(NameTest { glob, fold });
        }
        let t = self.fields[TYPE].text.trim();
        if !t.is_empty() {
            q.types = Some(TypeSet::parse(t).map_err(|e| e.to_string())?);
        }
        let size = self.fields[SIZE].text.trim();
        if !size.is_empty() {
            q.sizes
                .push(SizeTest::parse(size).map_err(|e| e.to_string())?);
        }
        let within = self.fields[CHANGED].text.trim();
        if !within.is_empty() {
            let minutes = parse_within(within)?;
            q.times
                .push(TimeTest::mmin(&format!("-{minutes}"), now).map_err(|e| e.to_string())?);
        }
        Ok(q)
    }

    /// Start a search (the "changed recently" preset when `recent`).
    fn start(&mut self, recent: bool, ctx: &mut Ctx<'_>) -> Outcome {
        self.stop();
        let query = match self.query(Timestamp::now()) {
            Ok(q) => q,
            Err(e) => {
                self.error = Some(e);
                return Outcome::Stay;
            }
        };
        self.error = None;
        let req = ctx.next_req();
        let cancel = Arc::new(AtomicBool::new(false));
        self.results.clear();
        self.selected = 0;
        self.scroll = 0;
        self.search = Some(Search {
            req,
            cancel: cancel.clone(),
            recent,
            running: true,
            cancelled: false,
            truncated: false,
            counts: Counts::default(),
            problems: Vec::new(),
        });
        ctx.effects.push(Effect::Find {
            req,
            fs: self.fs.clone(),
            start: b"/".to_vec(),
            query: Box::new(query),
            keep: recent.then_some(RECENT_KEEP),
            cancel,
        });
        Outcome::Stay
    }

    /// Stop the running search, if any.
    pub fn stop(&mut self) {
        if let Some(s) = &mut self.search
            && s.running
        {
            s.cancel.store(true, Ordering::Relaxed);
            s.running = false;
            s.cancelled = true;
        }
    }

    /// Results arrived for request `req`.
    pub fn found(&mut self, req: u64, hits: Vec<Hit>, replace: bool) {
        let Some(s) = &mut self.search else { return };
        if s.req != req {
            return;
        }
        if replace {
            self.results.clear();
        }
        let room = MAX_RESULTS.saturating_sub(self.results.len());
        if hits.len() > room {
            s.truncated = true;
            s.cancel.store(true, Ordering::Relaxed);
        }
        self.results.extend(hits.into_iter().take(room));
    }

    /// Progress of request `req`.
    pub fn progress(&mut self, req: u64, counts: Counts) {
        if let Some(s) = &mut self.search
            && s.req == req
        {
            s.counts = counts;
        }
    }

    /// Request `req` ended.
    pub fn done(&mut self, req: u64, counts: Counts, problems: Vec<String>, error: Option<String>) {
        if let Some(s) = &mut self.search
            && s.req == req
        {
            s.running = false;
            s.counts = counts;
            s.problems = problems;
            if let Some(e) = error {
                self.error = Some(e);
            }
        }
    }

    /// Take an action (keys are read in [`crate::tui::keymap::Context::Edit`]).
    pub fn update(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        match action {
            Action::Cancel => {
                if self.running() {
                    self.stop();
                    return Outcome::Stay;
                }
                return Outcome::Close;
            }
            Action::Quit => {
                self.stop();
                return Outcome::CloseAllAndQuit;
            }
            Action::ToggleHelp => return Outcome::Help,
            Action::RecentChanges => return self.start(true, ctx),
            _ => {}
        }
        match self.focus {
            Focus::Field(i) => self.update_field(i, action, ctx),
            Focus::Results => self.update_results(action, ctx),
        }
    }

    fn update_field(&mut self, i: usize, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        match action {
            Action::Confirm => return self.start(false, ctx),
            Action::CycleExisting | Action::MoveDown => {
                if i + 1 < FIELDS {
                    self.focus = Focus::Field(i + 1);
                } else if !self.results.is_empty() {
                    self.focus = Focus::Results;
                } else if *action == Action::CycleExisting {
                    self.focus = Focus::Field(NAME);
                }
            }
            Action::MoveUp => self.focus = Focus::Field(i.saturating_sub(1)),
            Action::PageDown if !self.results.is_empty() => self.focus = Focus::Results,
            a => {
                if let Some(f) = self.fields.get_mut(i)
                    && f.edit(a)
                {
                    self.error = None;
                }
            }
        }
        Outcome::Stay
    }

    fn update_results(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        let last = self.results.len().saturating_sub(1);
        match action {
            Action::MoveUp if self.selected == 0 => self.focus = Focus::Field(CHANGED),
            Action::MoveUp => self.selected -= 1,
            Action::MoveDown => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(ctx.page),
            Action::PageDown => self.selected = (self.selected + ctx.page).min(last),
            Action::Home => self.selected = 0,
            Action::End => self.selected = last,
            Action::CycleExisting => self.focus = Focus::Field(NAME),
            Action::Confirm | Action::Open => {
                if let Some(h) = self.results.get(self.selected) {
                    let (dir, name) = split_last(&h.path);
                    return Outcome::JumpTo {
                        tree: self.tree,
                        dir,
                        name,
                    };
                }
            }
            Action::Insert(_) => {
                // Typing goes to the name field.
                self.focus = Focus::Field(NAME);
                self.fields[NAME].edit(action);
            }
            _ => {}
        }
        Outcome::Stay
    }

    /// Keep the highlighted result on a screen of `rows` rows.
    pub fn scroll_into_view(&mut self, rows: usize) {
        let rows = rows.max(1);
        if self.selected < self.scroll {
            self.scroll = self.selected;
        } else if self.selected >= self.scroll + rows {
            self.scroll = self.selected + 1 - rows;
        }
    }
}

impl Drop for FindDialog {
    /// A closed dialog's search stops.
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_takes_minutes_hours_days() {
        assert_eq!(parse_within("30m"), Ok(30));
        assert_eq!(parse_within("6h"), Ok(360));
        assert_eq!(parse_within("6"), Ok(360));
        assert_eq!(parse_within("2d"), Ok(2880));
        assert_eq!(parse_within("1w"), Ok(10080));
        assert!(parse_within("0h").is_err());
        assert!(parse_within("x").is_err());
        assert!(parse_within("5y").is_err());
    }
}
