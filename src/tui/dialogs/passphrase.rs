//! The passphrase dialog: Enter on a locked LUKS volume in the left pane.
//! What is typed is kept as bytes that are wiped when dropped and is never
//! shown (one `*` per character); Enter unlocks the volume on a job thread
//! ([`Effect::Unlock`]: the disks are scanned again with the key, so what
//! the volume holds shows beneath it), Esc cancels. A wrong passphrase
//! leaves the dialog open with a message, up to
//! [`crate::layers::luks::MAX_ATTEMPTS`] tries. Drawn by
//! [`crate::tui::views::passphrase`].

use super::{Ctx, Outcome};
use crate::layers::luks::{MAX_ATTEMPTS, Secret};
use crate::tui::action::Action;
use crate::tui::event::Effect;
use crate::tui::strings as s;

/// The passphrase dialog.
pub struct PassphraseDialog {
    /// The volume's name (`p3`, `vg/lv`), as the scan names it.
    pub volume: String,
    /// What `layers` says of it (cipher, keyslots), escaped.
    pub describe: String,
    /// What is typed so far; wiped when dropped.
    pub typed: Secret,
    /// Characters typed (one `*` each).
    pub chars: usize,
    /// Tries that failed.
    pub failed: u32,
    /// Why the last try failed (escaped).
    pub error: Option<String>,
    /// The unlock running, by request number.
    pub req: Option<u64>,
    /// The passphrases that opened other volumes, scanned with this one.
    pub known: Vec<(String, Secret)>,
}

impl PassphraseDialog {
    /// A dialog for `volume`.
    pub fn new(volume: &str, describe: String, known: Vec<(String, Secret)>) -> PassphraseDialog {
        PassphraseDialog {
            volume: volume.to_string(),
            describe,
            // Room for the longest: typing never moves it (a copy left behind).
            typed: Secret::new(Vec::with_capacity(MAX_PASSPHRASE)),
            chars: 0,
            failed: 0,
            error: None,
            req: None,
            known,
        }
    }

    /// The volume's name, escaped for the screen.
    pub fn volume_shown(&self) -> String {
        crate::text::escape_str(&self.volume)
    }

    /// Whether an unlock runs.
    pub fn busy(&self) -> bool {
        self.req.is_some()
    }

    fn clear(&mut self) {
        self.typed.fill(0);
        self.typed.clear();
        self.chars = 0;
    }

    /// Take an action (keys are read in [`crate::tui::keymap::Context::Edit`]).
    pub fn update(&mut self, action: &Action, ctx: &mut Ctx<'_>) -> Outcome {
        if self.busy() {
            // Only Esc while the key is being tried: the dialog closes, the
            // result is dropped.
            return match action {
                Action::Cancel => Outcome::Close,
                _ => Outcome::Stay,
            };
        }
        match action {
            Action::Cancel => return Outcome::Close,
            Action::Insert(c) => {
                let mut b = [0u8; 4];
                let bytes = c.encode_utf8(&mut b).as_bytes();
                if self.typed.len().saturating_add(bytes.len()) <= MAX_PASSPHRASE {
                    self.typed.extend_from_slice(bytes);
                    self.chars += 1;
                }
                b.fill(0);
            }
            Action::DeleteBack => {
                // The last character: its continuation bytes, then its first.
                while self.typed.last().is_some_and(|b| b & 0xc0 == 0x80) {
                    self.typed.pop();
                }
                self.typed.pop();
                self.chars = self.chars.saturating_sub(1);
            }
            Action::DeleteWord | Action::DeleteToStart => self.clear(),
            Action::Confirm => {
                if self.typed.is_empty() {
                    return Outcome::Say(s::PASSPHRASE_EMPTY.into());
                }
                let req = ctx.next_req();
                let pass = std::mem::replace(
                    &mut self.typed,
                    Secret::new(Vec::with_capacity(MAX_PASSPHRASE)),
                );
                self.chars = 0;
                self.req = Some(req);
                self.error = None;
                ctx.effects.push(Effect::Unlock {
                    req,
                    volume: self.volume.clone(),
                    pass,
                    known: self.known.clone(),
                });
            }
            _ => {}
        }
        Outcome::Stay
    }

    /// The unlock of request `req` failed with `why`: another try, or the
    /// end after [`MAX_ATTEMPTS`]. Returns whether the dialog stays.
    pub fn failed(&mut self, req: u64, why: String) -> bool {
        if self.req != Some(req) {
            return true;
        }
        self.req = None;
        self.failed += 1;
        self.error = Some(why);
        self.failed < MAX_ATTEMPTS
    }
}

/// The longest passphrase taken (cryptsetup's bound for a typed one is 512 characters).
pub const MAX_PASSPHRASE: usize = 2048;
