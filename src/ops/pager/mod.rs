//! The file viewer's model, outside the TUI: what a page of a guest file
//! shows, read lazily.
//!
//! Only what is on screen is read: the first page of a multi-GiB log reads
//! one 64 KiB window, and the end (`G`) is found by reading backwards from
//! the last byte, never the middle. Lines are found with `memchr` from a
//! known line start; a line longer than [`MAX_LINE`] bytes is shown in
//! pieces of that many bytes.
//!
//! **Line numbers** are counted, not guessed: the first line is 1, and
//! moving a line up or down from a numbered line keeps counting. After a
//! jump to the end of a file larger than [`COUNT_CAP`] (whose lines would
//! all have to be read) the numbers show as `?` until the start is visited
//! again or a search from a numbered line lands on a match (the search
//! counts the newlines it passes). Positions whose numbers were learned are
//! kept in a sparse index ([`Pager::known_lines`]), so coming back to one
//! numbers it again.
//!
//! Text is shown escaped as [`crate::text::escape`] does (control
//! characters and bytes that are not UTF-8 as `\xNN`), tabs expanded to
//! stops every [`TAB`] columns. The hex view shows offset, bytes and the
//! printable ASCII; it is chosen automatically when the first block looks
//! binary ([`looks_binary`]).
//!
//! [`source`] says where the bytes come from (the file in place, or a
//! decompressed copy in memory) and [`search`] finds a pattern from a
//! position, forwards or backwards.

pub mod search;
pub mod source;

use std::collections::BTreeMap;

pub use source::{Content, Format};

/// Longest line shown as one line, in bytes; a longer one is shown in pieces.
pub const MAX_LINE: usize = 4096;
/// Tab stops, in columns.
pub const TAB: usize = 8;
/// Below this offset the pager counts the newlines itself to number a
/// line reached by a jump (4 MiB).
pub const COUNT_CAP: u64 = 4 << 20;
/// Bytes read at once when what is needed is not in the window held.
const WINDOW: usize = 64 << 10;
/// Bytes looked at to decide whether a file is binary.
pub const SNIFF: usize = 4096;

/// How the bytes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lines of text.
    Text,
    /// Offset, hex bytes and printable ASCII.
    Hex,
}

/// One row on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line's number on its first row, when known (`None` on the rows
    /// that continue a line, and where it is not known).
    pub number: Option<u64>,
    /// Whether this row starts a line (numbered or not; not a row that
    /// continues a wrapped line or a piece of a line longer than [`MAX_LINE`]).
    pub first: bool,
    /// The text, escaped.
    pub text: String,
    /// Whether the last search's match is on this line.
    pub hit: bool,
}

/// Whether `head` (the first bytes of a file) looks binary: a NUL, or more
/// than one byte in ten that is neither UTF-8 text nor a usual control
/// character (tab, newline, carriage return, form feed, escape).
pub fn looks_binary(head: &[u8]) -> bool {
    if head.contains(&0) {
        return true;
    }
    let mut bad = 0usize;
    for chunk in head.utf8_chunks() {
        bad += chunk.invalid().len();
        bad += chunk
            .valid()
            .chars()
            .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b'))
            .count();
    }
    // An incomplete character cut at the end of the block is not a sign.
    bad.saturating_sub(3) * 10 > head.len()
}

/// A line as read from its start.
struct Line {
    bytes: Vec<u8>,
    next: u64,
    newline: bool,
}

/// The viewer's state over one file.
pub struct Pager {
    content: Content,
    /// What the file is (plain, or decompressed from which format).
    pub format: Format,
    /// Text or hex.
    pub mode: Mode,
    /// Whether the operator chose the mode (it is then not changed by the sniffing).
    pub mode_chosen: bool,
    sniffed: bool,
    /// Long lines wrap (on) or are cut, scrolled sideways (off).
    pub wrap: bool,
    /// Columns scrolled sideways (wrap off).
    pub hscroll: usize,
    top: u64,
    top_row: usize,
    top_line: Option<u64>,
    known: BTreeMap<u64, u64>,
    window: (u64, Vec<u8>, bool),
    /// Bytes read from the content so far (for tests and benchmarks).
    pub bytes_read: u64,
    /// The last search's match (offset, length).
    pub hit: Option<(u64, u64)>,
    /// Where the last page drawn ends (for the position shown).
    pub shown_end: u64,
    /// The last read error.
    pub error: Option<String>,
}

impl Pager {
    /// A pager at the start of `content`.
    pub fn new(content: Content, format: Format) -> Pager {
        let mut p = Pager {
            content,
            format,
            mode: Mode::Text,
            mode_chosen: false,
            sniffed: false,
            wrap: true,
            hscroll: 0,
            top: 0,
            top_row: 0,
            top_line: Some(1),
            known: BTreeMap::from([(0, 1)]),
            window: (0, Vec::new(), false),
            bytes_read: 0,
            hit: None,
            shown_end: 0,
            error: None,
        };
        p.sniff();
        p
    }

    /// The bytes shown.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// Choose hex for a binary file, once enough bytes are there (call
    /// again while a decompressed file grows).
    pub fn sniff(&mut self) {
        if self.sniffed || self.mode_chosen {
            return;
        }
        let len = self.content.len();
        if len < SNIFF as u64 && !self.content.complete() {
            return;
        }
        self.sniffed = true;
        let head = self.read(0, SNIFF);
        if looks_binary(&head) {
            self.mode = Mode::Hex;
        }
    }

    /// The byte offset of the first row shown.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The number of the first line shown, when known.
    pub fn top_line(&self) -> Option<u64> {
        self.top_line
    }

    /// Line starts whose numbers are known (offset → line number).
    pub fn known_lines(&self) -> &BTreeMap<u64, u64> {
        &self.known
    }

    fn set_top(&mut self, top: u64, line: Option<u64>) {
        self.top = top;
        self.top_row = 0;
        self.top_line = line.or_else(|| self.known.get(&top).copied());
        if let Some(n) = self.top_line
            && self.mode == Mode::Text
        {
            self.remember(top, n);
        }
    }

    fn remember(&mut self, offset: u64, line: u64) {
        // A sparse index: a few thousand entries at most.
        if self.known.len() < 4096 {
            self.known.insert(offset, line);
        }
    }

    /// Up to `len` bytes at `offset` (fewer at the end).
    fn read(&mut self, offset: u64, len: usize) -> Vec<u8> {
        self.read_in(offset, len, offset)
    }

    /// As [`Pager::read`], loading a window that ends a line's length after
    /// `offset + len` (reading backwards, line by line: the line found is
    /// read next, from the same window).
    fn read_back(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let end = offset.saturating_add(len as u64);
        let load_at = end
            .saturating_add(MAX_LINE as u64 + 1)
            .saturating_sub(WINDOW as u64)
            .min(offset);
        self.read_in(offset, len, load_at)
    }

    fn read_in(&mut self, offset: u64, len: usize, load_at: u64) -> Vec<u8> {
        let (start, data, eof) = &self.window;
        let wend = start + data.len() as u64;
        let end = offset.saturating_add(len as u64);
        let covered = *start <= offset && (end <= wend || (*eof && offset <= wend));
        if !covered {
            let size = WINDOW.max(usize::try_from(end - load_at).unwrap_or(usize::MAX));
            let mut buf = vec![0u8; size];
            let n = match self.content.read_at(load_at, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    self.error = Some(e);
                    0
                }
            };
            buf.truncate(n);
            self.bytes_read += n as u64;
            let eof = n < size && self.content.complete();
            self.window = (load_at, buf, eof);
        }
        let (start, data, _) = &self.window;
        let from = usize::try_from(offset - start)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let to = from.saturating_add(len).min(data.len());
        data[from..to].to_vec()
    }

    /// Forget the window held (the content grew, or was read again).
    pub fn forget_window(&mut self) {
        self.window = (0, Vec::new(), false);
    }

    fn line_at(&mut self, start: u64) -> Line {
        let data = self.read(start, MAX_LINE + 1);
        match memchr::memchr(b'\n', &data) {
            Some(i) => Line {
                next: start + i as u64 + 1,
                bytes: data[..i].to_vec(),
                newline: true,
            },
            None if data.len() <= MAX_LINE => Line {
                next: start + data.len() as u64,
                bytes: data,
                newline: false,
            },
            None => Line {
                next: start + MAX_LINE as u64,
                bytes: data[..MAX_LINE].to_vec(),
                newline: false,
            },
        }
    }

    /// The start of the line (or piece of a long line) before the one at
    /// `start`, and whether that line ends with a newline.
    fn prev_start(&mut self, start: u64) -> Option<(u64, bool)> {
        if start == 0 {
            return None;
        }
        let lo = start.saturating_sub(MAX_LINE as u64 + 1);
        let data = self.read_back(lo, usize::try_from(start - lo).unwrap_or(0));
        let (body, last) = data.split_at(data.len().saturating_sub(1));
        let newline = last == b"\n";
        let prev = match memchr::memrchr(b'\n', body) {
            Some(i) => lo + i as u64 + 1,
            None if lo == 0 => 0,
            None => lo + 1,
        };
        Some((prev, newline))
    }

    /// The start of the line holding byte `offset`.
    fn line_start(&mut self, offset: u64) -> u64 {
        self.prev_start(offset.saturating_add(1))
            .map_or(0, |(p, _)| p)
    }

    /// The rows of the line `bytes` at `width` columns.
    fn pieces(&self, bytes: &[u8], width: usize) -> Vec<String> {
        let text = crate::text::escape_tabs(bytes, Some(TAB));
        if self.wrap {
            split_columns(&text, width.max(1))
        } else {
            vec![cut_columns(&text, self.hscroll, width)]
        }
    }

    /// Bytes a hex row shows at `width` columns: 16, 8 or 4.
    pub fn hex_row_bytes(width: usize) -> usize {
        [16, 8, 4]
            .into_iter()
            .find(|n| 11 + 4 * n <= width)
            .unwrap_or(4)
    }

    /// The rows shown from the top, at most `rows` of `width` columns.
    pub fn page(&mut self, rows: usize, width: usize) -> Vec<Row> {
        let mut out = Vec::with_capacity(rows);
        let len = self.content.len();
        match self.mode {
            Mode::Hex => {
                let bpr = Pager::hex_row_bytes(width) as u64;
                let mut pos = self.top;
                while out.len() < rows && pos < len {
                    let bytes = self.read(pos, bpr as usize);
                    if bytes.is_empty() {
                        break;
                    }
                    let hit = self
                        .hit
                        .is_some_and(|(o, l)| o < pos + bpr && o + l.max(1) > pos);
                    out.push(Row {
                        number: None,
                        first: true,
                        text: hex_row(pos, &bytes, bpr as usize),
                        hit,
                    });
                    pos += bytes.len() as u64;
                }
                self.shown_end = pos;
            }
            Mode::Text => {
                let mut pos = self.top;
                let mut line = self.top_line;
                let mut skip = self.top_row;
                // Whether `pos` starts a line (not a piece of a long one).
                let mut starts = pos == 0 || self.read(pos - 1, 1) == b"\n";
                while out.len() < rows && pos < len {
                    let l = self.line_at(pos);
                    let hit = self.hit.is_some_and(|(o, _)| o >= pos && o < l.next);
                    for (i, text) in self.pieces(&l.bytes, width).into_iter().enumerate() {
                        if i < skip {
                            continue;
                        }
                        if out.len() == rows {
                            break;
                        }
                        out.push(Row {
                            number: if i == 0 && starts { line } else { None },
                            first: i == 0 && starts,
                            text,
                            hit,
                        });
                    }
                    skip = 0;
                    starts = l.newline;
                    if l.next <= pos {
                        break;
                    }
                    pos = l.next;
                    line = line.map(|n| if l.newline { n + 1 } else { n });
                }
                self.shown_end = pos;
            }
        }
        out
    }

    /// Rows the line at `start` takes at `width`.
    fn rows_of(&mut self, start: u64, width: usize) -> usize {
        if !self.wrap {
            return 1;
        }
        let l = self.line_at(start);
        self.pieces(&l.bytes, width).len().max(1)
    }

    /// Scroll down `n` rows (a page at most past what is left: the last
    /// page stays full).
    pub fn down(&mut self, n: usize, rows: usize, width: usize) {
        let len = self.content.len();
        match self.mode {
            Mode::Hex => {
                let bpr = Pager::hex_row_bytes(width) as u64;
                let last = last_hex_top(len, bpr, rows);
                self.top = (self.top + bpr.saturating_mul(n as u64)).min(last.max(self.top));
            }
            Mode::Text => {
                for _ in 0..n {
                    if self.top_row + 1 < self.rows_of(self.top, width) {
                        self.top_row += 1;
                        continue;
                    }
                    let l = self.line_at(self.top);
                    if l.next >= len || l.next <= self.top {
                        break;
                    }
                    let line = self.top_line.map(|k| if l.newline { k + 1 } else { k });
                    self.set_top(l.next, line);
                }
                // Not past the point where the last page is full.
                if self.content.complete() && self.page(rows, width).len() < rows {
                    self.end(rows, width);
                }
            }
        }
    }

    /// Scroll up `n` rows.
    pub fn up(&mut self, n: usize, width: usize) {
        match self.mode {
            Mode::Hex => {
                let bpr = Pager::hex_row_bytes(width) as u64;
                self.top = self.top.saturating_sub(bpr.saturating_mul(n as u64));
            }
            Mode::Text => {
                for _ in 0..n {
                    if self.top_row > 0 {
                        self.top_row -= 1;
                        continue;
                    }
                    let Some((prev, newline)) = self.prev_start(self.top) else {
                        break;
                    };
                    let line = self
                        .top_line
                        .map(|k| if newline { k.saturating_sub(1) } else { k });
                    self.set_top(prev, line);
                    self.top_row = self.rows_of(prev, width).saturating_sub(1);
                }
            }
        }
    }

    /// The first page.
    pub fn home(&mut self) {
        self.set_top(0, Some(1));
        self.hscroll = 0;
    }

    /// The last page, found by reading backwards from the end.
    pub fn end(&mut self, rows: usize, width: usize) {
        let len = self.content.len();
        match self.mode {
            Mode::Hex => {
                let bpr = Pager::hex_row_bytes(width) as u64;
                self.top = last_hex_top(len, bpr, rows);
            }
            Mode::Text => {
                let mut start = self.line_start(len.saturating_sub(1));
                let mut total = self.rows_of(start, width);
                while total < rows {
                    let Some((prev, _)) = self.prev_start(start) else {
                        break;
                    };
                    start = prev;
                    total += self.rows_of(start, width);
                }
                let line = self.count_line(start);
                self.set_top(start, line);
                self.top_row = total.saturating_sub(rows);
            }
        }
    }

    /// The number of the line starting at `offset`, counted when it is
    /// near enough to a known one (within [`COUNT_CAP`] bytes after it).
    fn count_line(&mut self, offset: u64) -> Option<u64> {
        let (&from, &line) = self.known.range(..=offset).next_back()?;
        if offset - from > COUNT_CAP {
            return None;
        }
        let mut n = line;
        let mut pos = from;
        while pos < offset {
            let chunk = self.read(
                pos,
                usize::try_from(offset - pos).unwrap_or(WINDOW).min(WINDOW),
            );
            if chunk.is_empty() {
                return None;
            }
            n += memchr::memchr_iter(b'\n', &chunk).count() as u64;
            pos += chunk.len() as u64;
        }
        Some(n)
    }

    /// Show the line holding byte `offset` at the top; `line` is its
    /// number when the caller counted it.
    pub fn goto(&mut self, offset: u64, line: Option<u64>, width: usize) {
        match self.mode {
            Mode::Hex => {
                let bpr = Pager::hex_row_bytes(width) as u64;
                self.top = offset / bpr * bpr;
            }
            Mode::Text => {
                let start = self.line_start(offset);
                let line = line.or_else(|| self.count_line(start));
                self.set_top(start, line);
            }
        }
    }

    /// Where a search for the next match starts: just after the current
    /// match, or at the top, and the number of the line there when known.
    pub fn search_from(&self, forward: bool) -> (u64, Option<(u64, u64)>) {
        let base = self.top_line.map(|n| (self.top, n));
        match (self.hit, forward) {
            (Some((o, _)), true) if o >= self.top => (o + 1, base),
            (Some((o, _)), false) if o >= self.top => (o, base),
            (_, true) => (self.top, base),
            (_, false) => (self.top, base),
        }
    }

    /// Switch between text and hex, keeping the position.
    pub fn toggle_hex(&mut self, width: usize) {
        self.mode_chosen = true;
        let at = self.top;
        match self.mode {
            Mode::Text => {
                self.mode = Mode::Hex;
                self.goto(at, None, width);
            }
            Mode::Hex => {
                self.mode = Mode::Text;
                self.goto(at, None, width);
            }
        }
    }

    /// Wrap long lines, or cut them.
    pub fn toggle_wrap(&mut self) {
        self.wrap = !self.wrap;
        self.top_row = 0;
        self.hscroll = 0;
    }

    /// The position shown, in percent of the bytes known.
    pub fn percent(&self) -> u64 {
        let len = self.content.len();
        if len == 0 {
            return 100;
        }
        self.shown_end.min(len).saturating_mul(100) / len
    }
}

fn last_hex_top(len: u64, bpr: u64, rows: usize) -> u64 {
    let last_row = len.saturating_sub(1) / bpr * bpr;
    last_row.saturating_sub(bpr.saturating_mul(rows.saturating_sub(1) as u64))
}

/// `text` in rows of at most `width` columns (at least one row).
pub fn split_columns(text: &str, width: usize) -> Vec<String> {
    let mut rows = vec![String::new()];
    let mut col = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if col + w > width && col > 0 {
            rows.push(String::new());
            col = 0;
        }
        if let Some(r) = rows.last_mut() {
            r.push(c);
        }
        col += w;
    }
    rows
}

/// The columns `skip..skip + width` of `text`.
pub fn cut_columns(text: &str, skip: usize, width: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if col >= skip && col + w <= skip + width {
            out.push(c);
        }
        col += w;
        if col >= skip + width {
            break;
        }
    }
    out
}

/// One hex row: offset, `bpr` byte columns, the printable ASCII.
pub fn hex_row(offset: u64, bytes: &[u8], bpr: usize) -> String {
    let mut s = format!("{offset:08x} ");
    for i in 0..bpr {
        match bytes.get(i) {
            Some(b) => s.push_str(&format!(" {b:02x}")),
            None => s.push_str("   "),
        }
    }
    s.push_str("  ");
    s.extend(bytes.iter().map(|&b| {
        if b.is_ascii_graphic() || b == b' ' {
            b as char
        } else {
            '.'
        }
    }));
    s
}
