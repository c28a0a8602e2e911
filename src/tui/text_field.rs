//! A one-line text field with a cursor, edited by [`Action`]s: the file
//! filter, the copy destination, the restore dialog's typed target.

use super::action::Action;

/// A one-line text field with a cursor (the filter, the copy destination).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextField {
    /// The text.
    pub text: String,
    /// Cursor position, in characters.
    pub cursor: usize,
}

impl TextField {
    /// A field holding `text`, cursor at the end.
    pub fn new(text: &str) -> TextField {
        TextField {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    /// The cursor's byte offset in the text.
    pub fn cursor_byte(&self) -> usize {
        self.byte_at(self.cursor)
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Type a character at the cursor.
    pub fn insert(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Delete the character before the cursor.
    pub fn delete_back(&mut self) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        let at = self.byte_at(self.cursor);
        self.text.remove(at);
    }

    /// Move the cursor.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Move the cursor.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.chars().count());
    }

    /// Cursor to the start.
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Cursor to the end.
    pub fn end(&mut self) {
        self.cursor = self.text.chars().count();
    }

    /// Delete everything before the cursor (Ctrl-U).
    pub fn delete_to_start(&mut self) {
        let at = self.cursor_byte();
        self.text.replace_range(..at, "");
        self.cursor = 0;
    }

    /// Delete the word before the cursor (Ctrl-W): the spaces or slashes
    /// right before it, then back to the previous space or slash, so a path
    /// loses its last component.
    pub fn delete_word(&mut self) {
        let chars: Vec<char> = self.text.chars().collect();
        let end = self.cursor.min(chars.len());
        let sep = |c: char| c == ' ' || c == '/';
        let mut start = end;
        while start > 0 && sep(chars[start - 1]) {
            start -= 1;
        }
        while start > 0 && !sep(chars[start - 1]) {
            start -= 1;
        }
        let (a, b) = (self.byte_at(start), self.byte_at(end));
        self.text.replace_range(a..b, "");
        self.cursor = start;
    }

    /// Apply an editing action; false when `action` does not edit text.
    pub fn edit(&mut self, action: &Action) -> bool {
        match action {
            Action::Insert(c) => self.insert(*c),
            Action::DeleteBack => self.delete_back(),
            Action::DeleteWord => self.delete_word(),
            Action::DeleteToStart => self.delete_to_start(),
            Action::CursorLeft => self.left(),
            Action::CursorRight => self.right(),
            Action::Home => self.home(),
            Action::End => self.end(),
            _ => return false,
        }
        true
    }
}
