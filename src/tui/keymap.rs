//! The keymap, kept as data in `assets/keymap.txt` and embedded in the binary.
//!
//! Each line binds keys to an [`Action`] in a [`Context`]. The help overlay
//! and the README's key table are generated from the same data, so what is
//! listed is what works.

use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;
pub use super::action::Context;

/// The keymap text shipped with vmrescue.
pub const BUILTIN: &str = include_str!("../../assets/keymap.txt");

/// A key as the keymap names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A character (shift is part of the character).
    Char(char),
    /// Control plus a character (lower case).
    Ctrl(char),
    /// A named key.
    Named(NamedKey),
    /// A function key.
    F(u8),
}

/// Keys with names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum NamedKey {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Backspace,
    Tab,
    BackTab,
    Space,
    Insert,
    Delete,
    Esc,
}

const NAMES: &[(&str, NamedKey, &str)] = &[
    ("Up", NamedKey::Up, "↑"),
    ("Down", NamedKey::Down, "↓"),
    ("Left", NamedKey::Left, "←"),
    ("Right", NamedKey::Right, "→"),
    ("PageUp", NamedKey::PageUp, "PgUp"),
    ("PageDown", NamedKey::PageDown, "PgDn"),
    ("Home", NamedKey::Home, "Home"),
    ("End", NamedKey::End, "End"),
    ("Enter", NamedKey::Enter, "Enter"),
    ("Backspace", NamedKey::Backspace, "Backspace"),
    ("Tab", NamedKey::Tab, "Tab"),
    ("BackTab", NamedKey::BackTab, "Shift-Tab"),
    ("Space", NamedKey::Space, "Space"),
    ("Insert", NamedKey::Insert, "Insert"),
    ("Delete", NamedKey::Delete, "Delete"),
    ("Esc", NamedKey::Esc, "Esc"),
];

impl Key {
    /// Parse a key as written in the keymap.
    pub fn parse(s: &str) -> Option<Key> {
        if let Some((_, k, _)) = NAMES.iter().find(|(n, _, _)| *n == s) {
            return Some(Key::Named(*k));
        }
        if let Some(rest) = s.strip_prefix("Ctrl-") {
            let mut chars = rest.chars();
            let c = chars.next()?;
            return chars
                .next()
                .is_none()
                .then(|| Key::Ctrl(c.to_ascii_lowercase()));
        }
        if let Some(n) = s.strip_prefix('F')
            && let Ok(n) = n.parse::<u8>()
            && (1..=12).contains(&n)
        {
            return Some(Key::F(n));
        }
        let mut chars = s.chars();
        let c = chars.next()?;
        (chars.next().is_none() && !c.is_control()).then_some(Key::Char(c))
    }

    /// The key a terminal event stands for, if the keymap can name it.
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        Some(match ev.code {
            KeyCode::Char(c) if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
            KeyCode::Char(' ') => Key::Named(NamedKey::Space),
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Up => Key::Named(NamedKey::Up),
            KeyCode::Down => Key::Named(NamedKey::Down),
            KeyCode::Left => Key::Named(NamedKey::Left),
            KeyCode::Right => Key::Named(NamedKey::Right),
            KeyCode::PageUp => Key::Named(NamedKey::PageUp),
            KeyCode::PageDown => Key::Named(NamedKey::PageDown),
            KeyCode::Home => Key::Named(NamedKey::Home),
            KeyCode::End => Key::Named(NamedKey::End),
            KeyCode::Enter => Key::Named(NamedKey::Enter),
            KeyCode::Backspace => Key::Named(NamedKey::Backspace),
            KeyCode::Tab => Key::Named(NamedKey::Tab),
            KeyCode::BackTab => Key::Named(NamedKey::BackTab),
            KeyCode::Insert => Key::Named(NamedKey::Insert),
            KeyCode::Delete => Key::Named(NamedKey::Delete),
            KeyCode::Esc => Key::Named(NamedKey::Esc),
            KeyCode::F(n) => Key::F(n),
            _ => return None,
        })
    }
}

impl fmt::Display for Key {
    /// How the help shows the key: `↑`, `PgDn`, `Ctrl-C`, `F5`, `q`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Char(c) => write!(f, "{c}"),
            Key::Ctrl(c) => write!(f, "Ctrl-{}", c.to_ascii_uppercase()),
            Key::F(n) => write!(f, "F{n}"),
            Key::Named(k) => {
                let shown = NAMES.iter().find(|(_, n, _)| n == k).map_or("?", |x| x.2);
                f.write_str(shown)
            }
        }
    }
}

/// One line of the keymap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Where it applies.
    pub context: Context,
    /// What it does.
    pub action: Action,
    /// The keys, in the order written.
    pub keys: Vec<Key>,
}

/// All bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    /// In file order.
    pub bindings: Vec<Binding>,
}

impl Keymap {
    /// Parse keymap text; errors name the line.
    pub fn parse(text: &str) -> Result<Keymap, String> {
        let mut bindings: Vec<Binding> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(ctx), Some(act)) = (words.next(), words.next()) else {
                return Err(format!(
                    "keymap line {}: expected CONTEXT ACTION KEY...",
                    i + 1
                ));
            };
            let context = Context::from_name(ctx)
                .ok_or_else(|| format!("keymap line {}: unknown context {ctx:?}", i + 1))?;
            let action = Action::from_name(act)
                .ok_or_else(|| format!("keymap line {}: unknown action {act:?}", i + 1))?;
            let mut keys = Vec::new();
            for w in words {
                let key = Key::parse(w)
                    .ok_or_else(|| format!("keymap line {}: unknown key {w:?}", i + 1))?;
                if bindings
                    .iter()
                    .any(|b| b.context == context && b.keys.contains(&key))
                    || keys.contains(&key)
                {
                    return Err(format!("keymap line {}: {w} is bound twice", i + 1));
                }
                keys.push(key);
            }
            if keys.is_empty() {
                return Err(format!("keymap line {}: no keys for {act}", i + 1));
            }
            bindings.push(Binding {
                context,
                action,
                keys,
            });
        }
        Ok(Keymap { bindings })
    }

    /// The keymap shipped with vmrescue (checked by a test, so it always parses).
    pub fn builtin() -> Keymap {
        Keymap::parse(BUILTIN).unwrap_or_else(|e| panic!("assets/keymap.txt: {e}"))
    }

    /// The action bound to `key` in `context`.
    pub fn lookup(&self, context: Context, key: Key) -> Option<Action> {
        self.bindings
            .iter()
            .find(|b| b.context == context && b.keys.contains(&key))
            .map(|b| b.action)
    }

    /// The bindings of one context, in file order.
    pub fn in_context(&self, context: Context) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.context == context)
    }

    /// The keys for `action` in `context`, as the help shows them (`c F5`).
    pub fn keys_for(&self, context: Context, action: Action) -> String {
        self.in_context(context)
            .filter(|b| b.action == action)
            .flat_map(|b| b.keys.iter().map(|k| k.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The key table as Markdown, for the README.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for ctx in Context::ALL {
            out.push_str(&format!(
                "\n**{}**\n\n| Keys | Action |\n| --- | --- |\n",
                super::strings::context_title(ctx)
            ));
            for b in self.in_context(ctx) {
                let keys: Vec<String> = b.keys.iter().map(|k| format!("`{k}`")).collect();
                out.push_str(&format!(
                    "| {} | {} |\n",
                    keys.join(" "),
                    super::strings::action_help(ctx, b.action)
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_keymap_parses_and_binds_the_issue_keys() {
        let k = Keymap::builtin();
        let m = |s: &str| k.lookup(Context::Main, Key::parse(s).unwrap());
        assert_eq!(m("j"), Some(Action::MoveDown));
        assert_eq!(m("Down"), Some(Action::MoveDown));
        assert_eq!(m("Enter"), Some(Action::Open));
        assert_eq!(m("Backspace"), Some(Action::Back));
        assert_eq!(m("Space"), Some(Action::MarkToggle));
        assert_eq!(m("Insert"), Some(Action::MarkToggle));
        assert_eq!(m("F5"), Some(Action::CopyMarked));
        assert_eq!(m("F10"), Some(Action::Quit));
        assert_eq!(m("?"), Some(Action::ToggleHelp));
        assert_eq!(m("!"), Some(Action::Doctor));
        assert_eq!(m("Ctrl-c"), Some(Action::Quit));
        assert_eq!(k.keys_for(Context::Main, Action::CopyMarked), "c F5");
        let r = |s: &str| k.lookup(Context::Repair, Key::parse(s).unwrap());
        assert_eq!(r("Enter"), Some(Action::Open));
        assert_eq!(r("y"), Some(Action::Confirm));
        assert_eq!(r("Esc"), Some(Action::Cancel));
    }

    #[test]
    fn bad_keymaps_are_rejected_with_the_line() {
        assert!(Keymap::parse("main nope x").unwrap_err().contains("line 1"));
        assert!(
            Keymap::parse("main quit q\nmain open q")
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            Keymap::parse("\nmain quit Foo")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(Keymap::parse("main quit").is_err());
    }
}
