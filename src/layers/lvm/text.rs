//! The LVM2 metadata text: the configuration grammar lvm2 writes into its
//! metadata areas and backup files.
//!
//! ```text
//! vg_name {                       # a section
//!     id = "ab12cd-..."           # a string (backslash escapes \" and \\)
//!     seqno = 7                   # an integer
//!     status = ["READ", "WRITE"]  # an array of strings and numbers
//! }
//! ```
//!
//! Items are `name = value` or `name { items }`; values are quoted strings,
//! integers, decimal numbers, or flat arrays of those; `#` starts a comment
//! that runs to the end of the line. Nesting depth, the number of items and
//! the number of array elements are bounded, so hostile text cannot make the
//! parser recurse or allocate without limit.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::fmt;

/// Deepest section nesting accepted (lvm2 metadata uses 5 levels).
pub const MAX_DEPTH: usize = 32;
/// Most items (values, sections and array elements together) in one text.
pub const MAX_ITEMS: usize = 2_000_000;

/// A value on the right of `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer (lvm2 writes sizes and counts as 64-bit integers).
    Int(i128),
    /// A number with a decimal point, kept as written.
    Float(String),
    /// A string, escapes resolved (bytes that are not UTF-8 are replaced).
    Str(String),
    /// A flat array of scalars.
    Array(Vec<Value>),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a decimal number",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
        }
    }
}

/// One item of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `name = value`.
    Value(Value),
    /// `name { ... }`.
    Section(Section),
}

/// A section: its items in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// `(name, item)` pairs, in order (names may repeat; lookups take the first).
    pub entries: Vec<(String, Entry)>,
}

impl Section {
    /// The first value called `key`.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find_map(|(k, e)| match e {
            Entry::Value(v) if k == key => Some(v),
            _ => None,
        })
    }

    /// The first subsection called `key`.
    pub fn section(&self, key: &str) -> Option<&Section> {
        self.entries.iter().find_map(|(k, e)| match e {
            Entry::Section(s) if k == key => Some(s),
            _ => None,
        })
    }

    /// Every subsection, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, e)| match e {
            Entry::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }

    /// The string value `key`.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Value::as_str)
    }

    /// The integer value `key`.
    pub fn int(&self, key: &str) -> Option<i128> {
        self.value(key).and_then(Value::as_int)
    }
}

/// Why a text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the text.
    pub offset: usize,
    /// Line number (from 1).
    pub line: usize,
    /// What was wrong.
    pub detail: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} (byte {}): {}",
            self.line, self.offset, self.detail
        )
    }
}

impl std::error::Error for ParseError {}

/// Parse a metadata text. Trailing NUL bytes (lvm2 stores one) are ignored.
pub fn parse(text: &[u8]) -> Result<Section, ParseError> {
    let text = text
        .iter()
        .rposition(|&b| b != 0)
        .and_then(|last| text.get(..=last))
        .unwrap_or_default();
    let mut p = Parser {
        s: text,
        pos: 0,
        items: 0,
    };
    let root = p.items_until(None, 0)?;
    Ok(root)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    ArrOpen,
    ArrClose,
    Comma,
    Equals,
    Str(String),
    Word(String),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Open => "'{'".into(),
            Tok::Close => "'}'".into(),
            Tok::ArrOpen => "'['".into(),
            Tok::ArrClose => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::Equals => "'='".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Word(w) => format!("'{}'", crate::text::escape_str(w)),
            Tok::Eof => "the end of the text".into(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    items: usize,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'{' | b'}' | b'[' | b']' | b',' | b'=' | b'"' | b'\'' | b'#' | 0
        )
}

impl Parser<'_> {
    /// Step past the byte at `pos` (just read, so `pos` stays within `s`).
    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn error(&self, at: usize, detail: impl Into<String>) -> ParseError {
        let at = at.min(self.s.len());
        let before = self.s.get(..at).unwrap_or_default();
        let line = before
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            .saturating_add(1);
        ParseError {
            offset: at,
            line,
            detail: detail.into(),
        }
    }

    fn count_item(&mut self, at: usize) -> Result<(), ParseError> {
        self.items = self.items.saturating_add(1);
        if self.items > MAX_ITEMS {
            return Err(self.error(at, format!("more than {MAX_ITEMS} items")));
        }
        Ok(())
    }

    fn skip_space(&mut self) {
        while let Some(&b) = self.s.get(self.pos) {
            if b.is_ascii_whitespace() {
                self.bump();
            } else if b == b'#' {
                while let Some(&c) = self.s.get(self.pos) {
                    if c == b'\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    /// The next token and where it starts.
    fn next(&mut self) -> Result<(usize, Tok), ParseError> {
        self.skip_space();
        let start = self.pos;
        let Some(&b) = self.s.get(self.pos) else {
            return Ok((start, Tok::Eof));
        };
        self.bump();
        let tok = match b {
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b'[' => Tok::ArrOpen,
            b']' => Tok::ArrClose,
            b',' => Tok::Comma,
            b'=' => Tok::Equals,
            b'"' => Tok::Str(self.quoted(start, b'"', true)?),
            b'\'' => Tok::Str(self.quoted(start, b'\'', false)?),
            0 => return Err(self.error(start, "NUL byte inside the text")),
            _ => {
                while let Some(&c) = self.s.get(self.pos) {
                    if is_delimiter(c) {
                        break;
                    }
                    self.bump();
                }
                let word = self.s.get(start..self.pos).unwrap_or_default();
                Tok::Word(String::from_utf8_lossy(word).into_owned())
            }
        };
        Ok((start, tok))
    }

    /// A quoted string whose opening quote was at `start`.
    fn quoted(&mut self, start: usize, quote: u8, escapes: bool) -> Result<String, ParseError> {
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.error(start, "string not closed"));
            };
            self.bump();
            if c == quote {
                break;
            }
            if c == b'\\' && escapes {
                let Some(&e) = self.s.get(self.pos) else {
                    return Err(self.error(start, "string not closed"));
                };
                self.bump();
                out.push(e);
            } else {
                out.push(c);
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Items until `}` (inside a section) or the end of the text (top level).
    fn items_until(
        &mut self,
        opened_at: Option<usize>,
        depth: usize,
    ) -> Result<Section, ParseError> {
        let mut section = Section::default();
        loop {
            let (at, tok) = self.next()?;
            let name = match tok {
                Tok::Eof => {
                    return match opened_at {
                        None => Ok(section),
                        Some(o) => Err(self.error(o, "section not closed before the end")),
                    };
                }
                Tok::Close if opened_at.is_some() => return Ok(section),
                Tok::Word(w) => w,
                other => {
                    return Err(
                        self.error(at, format!("expected a name, found {}", other.describe()))
                    );
                }
            };
            self.count_item(at)?;
            let (at2, tok) = self.next()?;
            let entry = match tok {
                Tok::Equals => Entry::Value(self.value()?),
                Tok::Open => {
                    if depth >= MAX_DEPTH {
                        return Err(
                            self.error(at2, format!("sections nested deeper than {MAX_DEPTH}"))
                        );
                    }
                    Entry::Section(self.items_until(Some(at2), depth.saturating_add(1))?)
                }
                other => {
                    return Err(self.error(
                        at2,
                        format!(
                            "expected '=' or '{{' after '{}', found {}",
                            crate::text::escape_str(&name),
                            other.describe()
                        ),
                    ));
                }
            };
            section.entries.push((name, entry));
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        let (at, tok) = self.next()?;
        match tok {
            Tok::ArrOpen => {
                let mut items = Vec::new();
                loop {
                    let (at, tok) = self.next()?;
                    match tok {
                        Tok::ArrClose => break,
                        Tok::Comma if !items.is_empty() => continue,
                        other => {
                            self.count_item(at)?;
                            items.push(self.scalar(at, other)?);
                        }
                    }
                    // After an element: ',' or ']'.
                    let (at, tok) = self.next()?;
                    match tok {
                        Tok::Comma => {}
                        Tok::ArrClose => break,
                        other => {
                            return Err(self.error(
                                at,
                                format!(
                                    "expected ',' or ']' in an array, found {}",
                                    other.describe()
                                ),
                            ));
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            other => self.scalar(at, other),
        }
    }

    fn scalar(&self, at: usize, tok: Tok) -> Result<Value, ParseError> {
        match tok {
            Tok::Str(s) => Ok(Value::Str(s)),
            Tok::Word(w) => number(&w).ok_or_else(|| {
                self.error(
                    at,
                    format!(
                        "expected a number or a quoted string, found '{}'",
                        crate::text::escape_str(&w)
                    ),
                )
            }),
            other => Err(self.error(at, format!("expected a value, found {}", other.describe()))),
        }
    }
}

/// An integer (`-12`, `+3`, `18446744073709551615`) or decimal number (`1.5`).
fn number(w: &str) -> Option<Value> {
    let digits = w.strip_prefix(['-', '+']).unwrap_or(w);
    if digits.is_empty() {
        return None;
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return w.parse::<i128>().ok().map(Value::Int);
    }
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next()?;
    let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (ok(int) && ok(frac) && !(int.is_empty() && frac.is_empty()))
        .then(|| Value::Float(w.to_string()))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_lvm_metadata() {
        let t = b"vg0 {\n id = \"abc\" # comment\n seqno = 12\n status = [\"READ\", \"WRITE\"]\n flags = []\n\n physical_volumes {\n pv0 {\n dev_size = 18446744073709551615\n }\n }\n}\n# Generated\ncontents = \"Text Format Volume Group\"\nversion = 1\ndescription = \"say \\\"hi\\\" \\\\ there\"\nratio = -1.5\n\0";
        let root = parse(t).unwrap();
        let vg = root.section("vg0").unwrap();
        assert_eq!(vg.str("id"), Some("abc"));
        assert_eq!(vg.int("seqno"), Some(12));
        assert_eq!(
            vg.value("status"),
            Some(&Value::Array(vec![
                Value::Str("READ".into()),
                Value::Str("WRITE".into())
            ]))
        );
        assert_eq!(vg.value("flags"), Some(&Value::Array(vec![])));
        let pv0 = vg
            .section("physical_volumes")
            .unwrap()
            .section("pv0")
            .unwrap();
        assert_eq!(pv0.int("dev_size"), Some(u64::MAX as i128));
        assert_eq!(root.str("description"), Some("say \"hi\" \\ there"));
        assert_eq!(root.int("version"), Some(1));
        assert_eq!(root.value("ratio"), Some(&Value::Float("-1.5".into())));
        assert_eq!(root.sections().count(), 1);
    }

    #[test]
    fn arrays_of_pairs_and_trailing_commas() {
        let root = parse(b"stripes = [\n\"pv0\", 0,\n\"pv1\", 12,\n]").unwrap();
        let a = root.value("stripes").unwrap().as_array().unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[3], Value::Int(12));
    }

    #[test]
    fn rejects_bad_text_with_position() {
        for (bad, what) in [
            (&b"a = "[..], "value"),
            (b"a { b = 1", "not closed"),
            (b"a = \"open", "not closed"),
            (b"a = [1 2]", "expected ','"),
            (b"a = [[1]]", "expected a value"),
            (b"a = word", "number or a quoted string"),
            (b"}", "expected a name"),
            (b"a b", "expected '='"),
            (b"a = 99999999999999999999999999999999999999999", "number"),
            (b"a = 1\0b = 2", "NUL"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.detail.contains(what), "{bad:?}: {e}");
        }
        let e = parse(b"a = 1\nb = 2\nc = ?").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert!(
            parse(deep.as_bytes())
                .unwrap_err()
                .detail
                .contains("nested")
        );
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let many = format!("a = [{}]", "1,".repeat(MAX_ITEMS + 1));
        assert!(parse(many.as_bytes()).unwrap_err().detail.contains("items"));
    }
}
