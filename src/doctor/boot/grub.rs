//! GRUB 2: `grub.cfg` read the way GRUB's script lexer and `normal` module
//! read it, far enough to know the menu and which entry boots by default.
//!
//! * The lexer quotes as GRUB does: `'…'` literal, `"…"` with `\\`, `\$`,
//!   `\"` and `$var` inside, `\x` outside quotes, `\` + newline continues
//!   the line, `#` starts a comment at a word's start, `;` and newlines end
//!   a command, `{` `}` open and close blocks; `$name`, `${name}`, `$1`.
//!   An unquoted variable is split into words on whitespace.
//! * The script is run without side effects: `set`, `unset`, `name=value`,
//!   `if`/`elif`/`else` with `[ … ]`/`test` (strings, `-n`, `-z`, `=`,
//!   `!=`, and `-e`/`-f`/`-s`/`-d` asked of the guest), `blscfg`,
//!   `menuentry` and `submenu` (`--id`, `--class`, `--users`, `--hotkey`,
//!   `--unrestricted`, extra arguments as `$1`…). Loops and functions are
//!   parsed and skipped. Each entry's body is run to find its `linux`
//!   (`linuxefi`, `linux16`) and `initrd` (`initrdefi`, `initrd16`, several
//!   files) commands.
//! * The default entry is chosen as `normal/menu.c` does from the variable
//!   `default`: an entry id, else a title, else a leading number
//!   (`strtoul` base 0; upstream GRUB tries the number first, Fedora's the
//!   id: they differ only for an id that starts with a digit), `>` leading
//!   into a submenu (`>>` is a `>` of a title), out of range or unset
//!   meaning entry 0.
//!
//! [`parse_env`] reads a `grubenv` block.
//!
//! Everything is bounded: the text (the caller caps it), nesting depth,
//! variable count and size, words per command, entries.

use std::collections::BTreeMap;

use super::{Entry, FileRef};

/// Deepest nesting of blocks followed (`if` in `submenu` in …).
const MAX_DEPTH: usize = 32;
/// Most bytes a variable's value or an expanded word may hold.
const MAX_VALUE: usize = 64 * 1024;
/// Most variables kept.
const MAX_VARS: usize = 4096;
/// Most menu entries kept (each submenu's entries count).
const MAX_ENTRIES: usize = 4096;
/// Most words in one command.
const MAX_WORDS: usize = 4096;

/// Variables, by name.
pub type Vars = BTreeMap<String, String>;

/// What the script asks of the guest while it runs.
pub trait Host {
    /// `[ -e|-f|-s|-d PATH ]` for a GRUB path (a `(device)` prefix may
    /// lead it); `None` when it cannot be told.
    fn file_test(&self, op: &str, path: &str) -> Option<bool>;
    /// The entries the `blscfg` command makes, in GRUB's order, with `vars`
    /// as they are when it runs.
    fn blscfg(&self, vars: &Vars) -> Vec<Entry>;
}

/// A host that knows nothing: every file test unknown, no BLS entries.
pub struct NoHost;

impl Host for NoHost {
    fn file_test(&self, _op: &str, _path: &str) -> Option<bool> {
        None
    }
    fn blscfg(&self, _vars: &Vars) -> Vec<Entry> {
        Vec::new()
    }
}

/// One item of a GRUB menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A `menuentry` (or a BLS entry `blscfg` made).
    Entry(Entry),
    /// A `submenu` and its items.
    Submenu {
        /// Its title.
        title: String,
        /// Its `--id`.
        id: Option<String>,
        /// 1-based line of the `submenu` command.
        line: u32,
        /// Its items.
        items: Vec<Item>,
    },
}

impl Item {
    fn title(&self) -> &str {
        match self {
            Item::Entry(e) => &e.title,
            Item::Submenu { title, .. } => title,
        }
    }
    fn id(&self) -> Option<&str> {
        match self {
            Item::Entry(e) => e.id.as_deref(),
            Item::Submenu { id, .. } => id.as_deref(),
        }
    }
}

/// The menu a `grub.cfg` makes, and the variables when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Menu {
    /// The top-level items, in order.
    pub items: Vec<Item>,
    /// The variables after the script ran (`default`, `fallback`…).
    pub vars: Vars,
    /// Whether a `blscfg` command ran.
    pub blscfg: bool,
    /// 1-based line of the last `set default=…` that ran, if one did.
    pub default_line: Option<u32>,
}

/// Run `grub.cfg` text with the variables `vars` already set (the
/// `grubenv` block, `prefix`): the menu it makes.
pub fn read(text: &str, vars: Vars, host: &dyn Host) -> Menu {
    let toks = lex(text);
    let mut p = Parser {
        toks,
        pos: 0,
        pending: None,
    };
    let script = p.list(&[], false, 0).0;
    let mut ev = Eval {
        host,
        vars,
        entries: 0,
        blscfg: false,
        default_line: None,
    };
    ev.vars
        .entry("menuentry_id_option".into())
        .or_insert_with(|| "--id".into());
    let mut items = Vec::new();
    ev.run(&script, &mut Sink::Menu(&mut items), 0);
    Menu {
        items,
        vars: ev.vars,
        blscfg: ev.blscfg,
        default_line: ev.default_line,
    }
}

/// The path of indices (into `items`, then into the chosen submenu's
/// items…) of the entry GRUB boots when `default` is `spec`. Empty when
/// the menu is empty (or the path ends in an empty submenu).
pub fn select(items: &[Item], spec: Option<&str>) -> Vec<usize> {
    let mut path = Vec::new();
    let mut items = items;
    let mut spec = spec.map(str::to_string);
    for _ in 0..MAX_DEPTH {
        if items.is_empty() {
            return Vec::new();
        }
        let (i, rest) = match spec.as_deref() {
            Some(s) => pick(items, s),
            None => (None, None),
        };
        let i = i.filter(|&i| i < items.len()).unwrap_or(0);
        path.push(i);
        match items.get(i) {
            Some(Item::Submenu { items: inner, .. }) => {
                items = inner;
                spec = rest;
            }
            _ => return path,
        }
    }
    Vec::new()
}

/// Which item `spec` names (id, then title, then number) and what follows
/// its first `>` (for the submenu), as `get_entry_number` and
/// `grub_menu_execute_entry` do.
fn pick(items: &[Item], spec: &str) -> (Option<usize>, Option<String>) {
    let spec = spec.trim_start();
    // The first segment, `>>` read as `>`; the rest after a single `>`.
    let b = spec.as_bytes();
    let mut seg = String::new();
    let mut rest = None;
    let mut k = 0;
    let mut start = 0;
    while k < b.len() {
        if b[k] == b'>' {
            if b.get(k + 1) == Some(&b'>') {
                seg.push_str(&spec[start..k + 1]);
                k += 2;
                start = k;
                continue;
            }
            seg.push_str(&spec[start..k]);
            rest = Some(spec[k + 1..].to_string());
            start = b.len();
            break;
        }
        k += 1;
    }
    if start < b.len() {
        seg.push_str(&spec[start..]);
    }
    let word = seg.split_whitespace().next().unwrap_or("");
    if let Some(i) = items.iter().position(|it| it.id() == Some(word)) {
        return (Some(i), rest);
    }
    if let Some(i) = items.iter().position(|it| it.title() == seg) {
        return (Some(i), rest);
    }
    (strtoul(word).and_then(|n| usize::try_from(n).ok()), rest)
}

/// `grub_strtoul (s, 0, 0)`: the leading number (`0x…` hex, `0…` octal,
/// else decimal), what follows ignored; `None` without a digit.
fn strtoul(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if h.starts_with(|c: char| c.is_ascii_hexdigit()) => (h, 16),
        _ if s.starts_with('0') => (s, 8),
        _ => (s, 10),
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let mut n: u64 = 0;
    for c in digits[..end].chars() {
        n = n
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(c.to_digit(radix)?));
    }
    (end > 0).then_some(n)
}

/// Read a `grubenv` block (`# GRUB Environment Block`, `name=value` lines
/// with `\\` and `\n` escaped, `#` padding).
pub fn parse_env(bytes: &[u8]) -> Vars {
    let mut vars = Vars::new();
    let text = String::from_utf8_lossy(bytes);
    for line in text.split('\n') {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if vars.len() >= MAX_VARS {
            break;
        }
        // grub-editenv escapes a backslash and a newline with a backslash.
        let mut v = String::with_capacity(value.len());
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => v.push('\n'),
                    Some(o) => v.push(o),
                    None => {}
                }
            } else {
                v.push(c);
            }
        }
        vars.insert(name.to_string(), v);
    }
    vars
}

/// Expand GRUB variables in `text` as an unquoted command tail would be
/// (BLS `options $kernelopts`): the words, joined by single spaces.
pub fn expand_line(text: &str, vars: &Vars) -> String {
    let mut out: Vec<String> = Vec::new();
    for t in lex(text) {
        if let Tok::Word(w) = t {
            out.extend(expand(&w, vars));
        }
        if out.len() >= MAX_WORDS {
            break;
        }
    }
    out.join(" ")
}

// ------------------------------------------------------------------ lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text { text: String, quoted: bool },
    Var { name: String, quoted: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    parts: Vec<Part>,
    line: u32,
}

impl Word {
    /// The word when it is plain unquoted text (a keyword).
    fn keyword(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [
                Part::Text {
                    text,
                    quoted: false,
                },
            ] => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    /// `;` or a newline.
    Sep,
    /// `{`
    Open,
    /// `}`
    Close,
}

fn lex(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut cur: Option<Word> = None;
    let mut line: u32 = 1;
    let mut i = 0usize;
    fn push_text(cur: &mut Option<Word>, line: u32, s: &str, quoted: bool) {
        let w = cur.get_or_insert_with(|| Word {
            parts: Vec::new(),
            line,
        });
        if let Some(Part::Text { text, quoted: q }) = w.parts.last_mut()
            && *q == quoted
        {
            if text.len() < MAX_VALUE {
                text.push_str(s);
            }
            return;
        }
        w.parts.push(Part::Text {
            text: s.to_string(),
            quoted,
        });
    }
    fn push_var(cur: &mut Option<Word>, line: u32, name: String, quoted: bool) {
        let w = cur.get_or_insert_with(|| Word {
            parts: Vec::new(),
            line,
        });
        w.parts.push(Part::Var { name, quoted });
    }
    // A variable reference after `$` at `i`: its name and the index after it.
    fn var_at(c: &[char], i: usize) -> Option<(String, usize)> {
        let first = *c.get(i)?;
        if first == '{' {
            let end = c[i + 1..].iter().position(|&x| x == '}' || x == '\n')?;
            if c[i + 1 + end] != '}' {
                return None;
            }
            return Some((c[i + 1..i + 1 + end].iter().collect(), i + end + 2));
        }
        if first.is_ascii_alphabetic() || first == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            return Some((c[i..j].iter().collect(), j));
        }
        if first.is_ascii_digit() {
            let mut j = i;
            while j < c.len() && c[j].is_ascii_digit() {
                j += 1;
            }
            return Some((c[i..j].iter().collect(), j));
        }
        if "?#*@".contains(first) {
            return Some((first.to_string(), i + 1));
        }
        None
    }
    // A `$` at `i`: a variable, or a `$` as text; the index after it.
    fn dollar(c: &[char], i: usize, cur: &mut Option<Word>, line: u32, quoted: bool) -> usize {
        match var_at(c, i + 1) {
            Some((name, next)) => {
                push_var(cur, line, name, quoted);
                next
            }
            None => {
                push_text(cur, line, "$", quoted);
                i + 1
            }
        }
    }
    let flush = |cur: &mut Option<Word>, toks: &mut Vec<Tok>| {
        if let Some(w) = cur.take() {
            toks.push(Tok::Word(w));
        }
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\r' => {
                flush(&mut cur, &mut toks);
                i += 1;
            }
            '\n' => {
                flush(&mut cur, &mut toks);
                toks.push(Tok::Sep);
                line = line.saturating_add(1);
                i += 1;
            }
            ';' => {
                flush(&mut cur, &mut toks);
                toks.push(Tok::Sep);
                i += 1;
            }
            '#' if cur.is_none() => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '{' if cur.is_none() => {
                toks.push(Tok::Open);
                i += 1;
            }
            '}' if cur.is_none() => {
                toks.push(Tok::Close);
                i += 1;
            }
            '\\' => {
                match c.get(i + 1) {
                    Some('\n') => line = line.saturating_add(1),
                    Some(&n) => push_text(&mut cur, line, &n.to_string(), false),
                    None => {}
                }
                i += 2;
            }
            '\'' => {
                let start_line = line;
                i += 1;
                let mut s = String::new();
                while i < c.len() && c[i] != '\'' {
                    if c[i] == '\n' {
                        line = line.saturating_add(1);
                    }
                    s.push(c[i]);
                    i += 1;
                }
                i += 1;
                push_text(&mut cur, start_line, &s, true);
            }
            '"' => {
                let start_line = line;
                i += 1;
                // An empty quoted part, so `""` is a word.
                push_text(&mut cur, start_line, "", true);
                while i < c.len() && c[i] != '"' {
                    match c[i] {
                        '\\' if matches!(c.get(i + 1), Some('\\' | '$' | '"')) => {
                            push_text(&mut cur, start_line, &c[i + 1].to_string(), true);
                            i += 2;
                        }
                        '\\' if c.get(i + 1) == Some(&'\n') => {
                            line = line.saturating_add(1);
                            i += 2;
                        }
                        '$' => i = dollar(&c, i, &mut cur, start_line, true),
                        other => {
                            if other == '\n' {
                                line = line.saturating_add(1);
                            }
                            push_text(&mut cur, start_line, &other.to_string(), true);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '$' => i = dollar(&c, i, &mut cur, line, false),
            other => {
                push_text(&mut cur, line, &other.to_string(), false);
                i += 1;
            }
        }
    }
    flush(&mut cur, &mut toks);
    toks
}

/// A word's fields after expansion: unquoted variables split on whitespace.
fn expand(w: &Word, vars: &Vars) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut total = 0usize;
    for p in &w.parts {
        match p {
            Part::Text { text, .. } => {
                cur.push_str(text);
                has = true;
            }
            Part::Var { name, quoted } => {
                let v = vars.get(name).map_or("", String::as_str);
                if *quoted {
                    cur.push_str(v);
                    has = true;
                } else {
                    let mut pieces = v.split_whitespace().peekable();
                    if v.starts_with(char::is_whitespace) && has {
                        fields.push(std::mem::take(&mut cur));
                        has = false;
                    }
                    while let Some(piece) = pieces.next() {
                        cur.push_str(piece);
                        has = true;
                        if pieces.peek().is_some() {
                            fields.push(std::mem::take(&mut cur));
                        }
                    }
                    if v.ends_with(char::is_whitespace) && has {
                        fields.push(std::mem::take(&mut cur));
                        has = false;
                    }
                }
            }
        }
        total = total.saturating_add(cur.len());
        if total > MAX_VALUE || fields.len() > MAX_WORDS {
            break;
        }
    }
    if has {
        fields.push(cur);
    }
    for f in &mut fields {
        if f.len() > MAX_VALUE {
            let mut end = MAX_VALUE;
            while !f.is_char_boundary(end) {
                end -= 1;
            }
            f.truncate(end);
        }
    }
    fields
}

// ------------------------------------------------------------------ parser

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stmt {
    Cmd(Vec<Word>),
    If {
        arms: Vec<(Vec<Stmt>, Vec<Stmt>)>,
        otherwise: Vec<Stmt>,
    },
    Menu {
        submenu: bool,
        args: Vec<Word>,
        body: Vec<Stmt>,
        line: u32,
    },
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// The words after a keyword that began a command (`then set x=1`).
    pending: Option<Vec<Word>>,
}

/// What ended a list.
enum End {
    /// A keyword of the stop set, with the words after it pushed back.
    Keyword(String),
    /// A `}` (consumed).
    Close,
    /// The end of the text (or of the depth allowed).
    Eof,
}

impl Parser {
    /// The next command's words (empty for an empty command); `None` at a
    /// `{`, a `}` (not consumed) or the end.
    fn command(&mut self) -> Option<Vec<Word>> {
        if let Some(w) = self.pending.take() {
            return Some(w);
        }
        let mut words = Vec::new();
        loop {
            match self.toks.get(self.pos) {
                None => return (!words.is_empty()).then_some(words),
                Some(Tok::Sep) => {
                    self.pos += 1;
                    return Some(words);
                }
                Some(Tok::Open | Tok::Close) => {
                    return (!words.is_empty()).then_some(words);
                }
                Some(Tok::Word(w)) => {
                    if words.len() < MAX_WORDS {
                        words.push(w.clone());
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// Statements until a command starting with one of `stop`, a `}` when
    /// `braced`, or the end.
    fn list(&mut self, stop: &[&str], braced: bool, depth: usize) -> (Vec<Stmt>, End) {
        let mut out = Vec::new();
        if depth > MAX_DEPTH {
            self.pos = self.toks.len();
            return (out, End::Eof);
        }
        loop {
            let Some(mut words) = self.command() else {
                match self.toks.get(self.pos) {
                    Some(Tok::Close) => {
                        self.pos += 1;
                        if braced {
                            return (out, End::Close);
                        }
                        continue;
                    }
                    Some(Tok::Open) => {
                        // A block with no command before it: read and drop.
                        self.pos += 1;
                        self.list(&[], true, depth + 1);
                        continue;
                    }
                    _ => return (out, End::Eof),
                }
            };
            if words.is_empty() {
                continue;
            }
            let kw = words[0].keyword().map(str::to_string);
            let Some(kw) = kw else {
                out.push(Stmt::Cmd(words));
                continue;
            };
            if stop.contains(&kw.as_str()) {
                words.remove(0);
                if !words.is_empty() {
                    self.pending = Some(words);
                }
                return (out, End::Keyword(kw));
            }
            match kw.as_str() {
                "if" => {
                    words.remove(0);
                    if !words.is_empty() {
                        self.pending = Some(words);
                    }
                    out.push(self.if_stmt(depth + 1));
                }
                "while" | "until" | "for" => {
                    words.remove(0);
                    if !words.is_empty() {
                        self.pending = Some(words);
                    }
                    if let (_, End::Keyword(_)) = self.list(&["do"], false, depth + 1) {
                        self.list(&["done"], false, depth + 1);
                    }
                }
                "function" => {
                    if let Some(Tok::Open) = self.toks.get(self.pos) {
                        self.pos += 1;
                        self.list(&[], true, depth + 1);
                    }
                }
                "menuentry" | "submenu" => {
                    let line = words[0].line;
                    words.remove(0);
                    if let Some(Tok::Open) = self.toks.get(self.pos) {
                        self.pos += 1;
                        let (body, _) = self.list(&[], true, depth + 1);
                        out.push(Stmt::Menu {
                            submenu: kw == "submenu",
                            args: words,
                            body,
                            line,
                        });
                    }
                }
                _ => out.push(Stmt::Cmd(words)),
            }
        }
    }

    /// After `if`: conditions and bodies up to `fi`.
    fn if_stmt(&mut self, depth: usize) -> Stmt {
        let mut arms = Vec::new();
        let mut otherwise = Vec::new();
        loop {
            let (cond, end) = self.list(&["then"], false, depth);
            if !matches!(end, End::Keyword(_)) {
                break;
            }
            let (body, end) = self.list(&["elif", "else", "fi"], false, depth);
            arms.push((cond, body));
            match end {
                End::Keyword(k) if k == "elif" => continue,
                End::Keyword(k) if k == "else" => {
                    otherwise = self.list(&["fi"], false, depth).0;
                    break;
                }
                _ => break,
            }
        }
        Stmt::If { arms, otherwise }
    }
}

// ------------------------------------------------------------------ evaluation

enum Sink<'a> {
    /// Items of a menu (top level or a submenu).
    Menu(&'a mut Vec<Item>),
    /// The body of one entry.
    Entry(&'a mut Entry),
}

struct Eval<'h> {
    host: &'h dyn Host,
    vars: Vars,
    entries: usize,
    blscfg: bool,
    default_line: Option<u32>,
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl Eval<'_> {
    fn set(&mut self, name: &str, value: &str, line: u32) {
        if !valid_name(name) {
            return;
        }
        if self.vars.len() >= MAX_VARS && !self.vars.contains_key(name) {
            return;
        }
        let mut v = value.to_string();
        if v.len() > MAX_VALUE {
            let mut end = MAX_VALUE;
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v.truncate(end);
        }
        if name == "default" {
            self.default_line = Some(line);
        }
        self.vars.insert(name.to_string(), v);
    }

    /// Run statements; the status of the last command (`None`: unknown).
    fn run(&mut self, stmts: &[Stmt], sink: &mut Sink<'_>, depth: usize) -> Option<bool> {
        let mut status = Some(true);
        if depth > MAX_DEPTH {
            return None;
        }
        for s in stmts {
            status = match s {
                Stmt::Cmd(words) => self.command(words, sink),
                Stmt::If { arms, otherwise } => {
                    let mut taken = false;
                    let mut st = Some(true);
                    for (cond, body) in arms {
                        // An unknown condition is taken as true.
                        if self.run(cond, sink, depth + 1) != Some(false) {
                            st = self.run(body, sink, depth + 1);
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        st = self.run(otherwise, sink, depth + 1);
                    }
                    st
                }
                Stmt::Menu {
                    submenu,
                    args,
                    body,
                    line,
                } => {
                    self.menu(*submenu, args, body, *line, sink, depth);
                    Some(true)
                }
            };
        }
        status
    }

    fn command(&mut self, words: &[Word], sink: &mut Sink<'_>) -> Option<bool> {
        let line = words.first().map_or(0, |w| w.line);
        let mut args: Vec<String> = Vec::new();
        for w in words {
            args.extend(expand(w, &self.vars));
            if args.len() >= MAX_WORDS {
                break;
            }
        }
        let Some(cmd) = args.first().cloned() else {
            return Some(true);
        };
        let rest = &args[1..];
        // `name=value` as a command.
        if let Some((name, value)) = cmd.split_once('=')
            && valid_name(name)
            && rest.is_empty()
        {
            self.set(name, value, line);
            return Some(true);
        }
        match cmd.as_str() {
            "set" => {
                for a in rest {
                    if let Some((n, v)) = a.split_once('=') {
                        self.set(n, v, line);
                    }
                }
                Some(true)
            }
            "unset" => {
                for a in rest {
                    self.vars.remove(a);
                }
                Some(true)
            }
            "true" => Some(true),
            "false" => Some(false),
            "[" => match rest.split_last() {
                Some((last, inner)) if last == "]" => self.test(inner),
                _ => None,
            },
            "test" => self.test(rest),
            "blscfg" => {
                self.blscfg = true;
                if let Sink::Menu(items) = sink {
                    for e in self.host.blscfg(&self.vars) {
                        if self.entries >= MAX_ENTRIES {
                            break;
                        }
                        self.entries += 1;
                        items.push(Item::Entry(e));
                    }
                }
                Some(true)
            }
            "linux" | "linuxefi" | "linux16" => {
                if let Sink::Entry(e) = sink
                    && let Some(path) = rest.first()
                {
                    e.kernel = Some(FileRef {
                        path: path.clone(),
                        line,
                    });
                    e.cmdline = rest[1..].join(" ");
                }
                Some(true)
            }
            "initrd" | "initrdefi" | "initrd16" => {
                if let Sink::Entry(e) = sink {
                    e.initrds = rest
                        .iter()
                        .filter(|a| !a.starts_with("--"))
                        .map(|p| FileRef {
                            path: p.clone(),
                            line,
                        })
                        .collect();
                }
                Some(true)
            }
            "chainloader" | "multiboot" | "multiboot2" | "kfreebsd" | "knetbsd" | "kopenbsd"
            | "appleloader" | "ntldr" | "freedos" | "plan9" | "truecrypt" | "fwsetup"
            | "reboot" | "halt" | "configfile" | "source" | "legacy_configfile" => {
                if let Sink::Entry(e) = sink
                    && e.kernel.is_none()
                {
                    e.other = Some(cmd.clone());
                }
                None
            }
            _ => None,
        }
    }

    fn test(&self, a: &[String]) -> Option<bool> {
        fn s(x: &str) -> &str {
            x
        }
        match a {
            [] => Some(false),
            [bang, rest @ ..] if bang == "!" => self.test(rest).map(|b| !b),
            [x] => Some(!x.is_empty()),
            [op, x] if op == "-n" => Some(!x.is_empty()),
            [op, x] if op == "-z" => Some(x.is_empty()),
            [op, p] if matches!(s(op), "-e" | "-f" | "-s" | "-d") => self.host.file_test(op, p),
            [x, op, y] if op == "=" || op == "==" => Some(x == y),
            [x, op, y] if op == "!=" => Some(x != y),
            [x, op, y] if matches!(s(op), "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge") => {
                let (x, y) = (x.parse::<i64>().ok()?, y.parse::<i64>().ok()?);
                Some(match s(op) {
                    "-eq" => x == y,
                    "-ne" => x != y,
                    "-lt" => x < y,
                    "-le" => x <= y,
                    "-gt" => x > y,
                    _ => x >= y,
                })
            }
            _ => None,
        }
    }

    fn menu(
        &mut self,
        submenu: bool,
        words: &[Word],
        body: &[Stmt],
        line: u32,
        sink: &mut Sink<'_>,
        depth: usize,
    ) {
        let Sink::Menu(items) = sink else {
            return;
        };
        if self.entries >= MAX_ENTRIES {
            return;
        }
        self.entries += 1;
        let mut args: Vec<String> = Vec::new();
        for w in words {
            args.extend(expand(w, &self.vars));
            if args.len() >= MAX_WORDS {
                break;
            }
        }
        // Options as menuentry's extcmd parses them; positionals in order.
        let mut id = None;
        let mut positional = Vec::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if let Some(v) = a.strip_prefix("--id=") {
                id = Some(v.to_string());
            } else if a == "--id" {
                id = it.next();
            } else if matches!(a.as_str(), "--class" | "--users" | "--hotkey") {
                it.next();
            } else if a.starts_with("--") {
                // --class=x, --unrestricted, --source…
            } else {
                positional.push(a);
            }
        }
        let mut positional = positional.into_iter();
        let title = positional.next().unwrap_or_default();
        // The body runs with the extra arguments as $1, $2…
        let saved = self.vars.clone();
        for (k, a) in positional.enumerate() {
            self.set_positional(k + 1, a);
        }
        if submenu {
            let mut inner = Vec::new();
            self.run(body, &mut Sink::Menu(&mut inner), depth + 1);
            items.push(Item::Submenu {
                title,
                id,
                line,
                items: inner,
            });
        } else {
            let mut e = Entry {
                title,
                id,
                line,
                ..Entry::default()
            };
            let outer_default = self.default_line;
            let blscfg = self.blscfg;
            self.run(body, &mut Sink::Entry(&mut e), depth + 1);
            self.default_line = outer_default;
            self.blscfg = blscfg;
            items.push(Item::Entry(e));
        }
        // What a body sets stays in it (it runs only when chosen).
        self.vars = saved;
    }

    fn set_positional(&mut self, n: usize, v: String) {
        if n <= 64 {
            self.vars.insert(n.to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(text: &str, vars: &[(&str, &str)]) -> Menu {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(text, vars, &NoHost)
    }

    fn entry(items: &[Item], path: &[usize]) -> Entry {
        let mut items = items;
        for (k, &i) in path.iter().enumerate() {
            match &items[i] {
                Item::Entry(e) if k + 1 == path.len() => return e.clone(),
                Item::Submenu { items: inner, .. } => items = inner,
                _ => panic!("bad path"),
            }
        }
        panic!("path ends in a submenu")
    }

    const DEBIAN: &str = r#"
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
else
   set default="${saved_entry}"
fi
function gfxmode {
	set gfxpayload="${1}"
}
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-X' {
	linux	/boot/vmlinuz-6.1 root=UUID=X ro  quiet
	initrd	/boot/initrd.img-6.1
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-X' {
	menuentry 'Debian GNU/Linux, with Linux 6.1' --class debian $menuentry_id_option 'gnulinux-6.1-advanced-X' {
		linux	/boot/vmlinuz-6.1 root=UUID=X ro  quiet
		initrd	/boot/initrd.img-6.1
	}
	menuentry 'Debian GNU/Linux, with Linux 5.10 (recovery mode)' $menuentry_id_option 'gnulinux-5.10-recovery-X' {
		linux	/boot/vmlinuz-5.10 root=UUID=X ro single
		initrd	/boot/intel-ucode.img /boot/initrd.img-5.10
	}
}
"#;

    #[test]
    fn debian_menu_and_saved_entry() {
        let m = menu(DEBIAN, &[("saved_entry", "0")]);
        assert_eq!(m.items.len(), 2);
        assert_eq!(m.vars.get("default").map(String::as_str), Some("0"));
        let path = select(&m.items, m.vars.get("default").map(String::as_str));
        assert_eq!(path, vec![0]);
        let e = entry(&m.items, &path);
        assert_eq!(e.title, "Debian GNU/Linux");
        assert_eq!(e.id.as_deref(), Some("gnulinux-simple-X"));
        assert_eq!(e.kernel.as_ref().unwrap().path, "/boot/vmlinuz-6.1");
        assert_eq!(e.kernel.as_ref().unwrap().line, 12);
        assert_eq!(e.cmdline, "root=UUID=X ro quiet");
        assert_eq!(e.initrds[0].path, "/boot/initrd.img-6.1");
        assert_eq!(e.line, 11);
    }

    #[test]
    fn submenu_paths_by_id_title_and_number() {
        let m = menu(DEBIAN, &[]);
        let sel = |s: &str| select(&m.items, Some(s));
        assert_eq!(
            sel("gnulinux-advanced-X>gnulinux-5.10-recovery-X"),
            vec![1, 1]
        );
        assert_eq!(
            sel("Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1"),
            vec![1, 0]
        );
        assert_eq!(sel("1>1"), vec![1, 1]);
        assert_eq!(sel("1"), vec![1, 0]);
        assert_eq!(sel("0x1>0"), vec![1, 0]);
        assert_eq!(sel("7"), vec![0], "out of range: the first entry");
        assert_eq!(sel("nonsense"), vec![0]);
        assert_eq!(sel("1 "), vec![1, 0], "what follows the number is ignored");
        assert_eq!(sel("01"), vec![1, 0], "octal");
        assert_eq!(sel(""), vec![0]);
        let e = entry(&m.items, &sel("1>1"));
        assert_eq!(e.initrds.len(), 2);
        // next_entry wins once (grub-reboot).
        let m = menu(DEBIAN, &[("next_entry", "1>1"), ("saved_entry", "0")]);
        assert_eq!(m.vars.get("default").map(String::as_str), Some("1>1"));
    }

    #[test]
    fn quoting_as_grub_lexes() {
        let m = menu(
            "menuentry \"a \\\"q\\\" $x\" 'it''s' --id=i\\ d {\n linux /k a\\ b \"c d\" 'e $f' $opts\n}\n",
            &[("x", "X"), ("opts", " p  q ")],
        );
        let Item::Entry(e) = &m.items[0] else {
            panic!()
        };
        assert_eq!(e.title, "a \"q\" X");
        assert_eq!(e.id.as_deref(), Some("i d"));
        assert_eq!(e.cmdline, "a b c d e $f p q");
    }

    /// Ubuntu's 10_linux: `$vt_handoff` set by the header, the
    /// initramfs-less first try in the `else` of `initrdfail`, a `for` loop
    /// and a function that are not run.
    #[test]
    fn ubuntu_shapes() {
        let text = r#"
if [ "${linux_gfx_mode}" != "text" ]; then set vt_handoff=vt.handoff=7; else set vt_handoff= ; fi
function initrdfail {
    if [ -n "${have_grubenv}" ]; then if [ -n "${partuuid}" ]; then
      if [ -z "${initrdfail}" ]; then
        set initrdfail=1
      fi
    fi; fi
}
for i in 1 2; do menuentry 'never' { linux /x }; done
menuentry 'Ubuntu' --class ubuntu $menuentry_id_option 'gnulinux-simple-u' {
	recordfail
	if [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi
	if [ "${initrdfail}" = 1 ]; then
	  linux	/boot/vmlinuz-5.15.0-91-generic root=PARTUUID=p ro  console=tty1 $vt_handoff
	  initrd	/boot/initrd.img-5.15.0-91-generic
	elif [ "${initrdfail}" = 2 ]; then
	  linux	/boot/vmlinuz-5.15.0-91-generic root=PARTUUID=p ro single
	else
	  linux	/boot/vmlinuz-5.15.0-91-generic root=PARTUUID=p ro  console=tty1 $vt_handoff
	  try_initrdless_boot
	fi
}
"#;
        let m = menu(text, &[]);
        assert_eq!(m.items.len(), 1, "{:?}", m.items);
        let e = entry(&m.items, &select(&m.items, None));
        assert_eq!(e.id.as_deref(), Some("gnulinux-simple-u"));
        assert_eq!(e.cmdline, "root=PARTUUID=p ro console=tty1 vt.handoff=7");
        assert!(e.initrds.is_empty(), "the initramfs-less first boot");
        let m = menu(text, &[("initrdfail", "1")]);
        let e = entry(&m.items, &select(&m.items, None));
        assert_eq!(e.initrds.len(), 1);
        let m = menu(text, &[("initrdfail", "2")]);
        let e = entry(&m.items, &select(&m.items, None));
        assert_eq!(e.cmdline, "root=PARTUUID=p ro single");
    }

    #[test]
    fn titles_with_gt_and_escaped_spec() {
        let m = menu("submenu 'a>b' {\n menuentry 'c' { linux /k\n }\n}\n", &[]);
        assert_eq!(select(&m.items, Some("a>>b>c")), vec![0, 0]);
    }

    #[test]
    fn env_block() {
        let mut block =
            b"# GRUB Environment Block\nsaved_entry=x\\\\y\nkernelopts=root=/dev/a ro\n".to_vec();
        block.resize(1024, b'#');
        let v = parse_env(&block);
        assert_eq!(v.get("saved_entry").map(String::as_str), Some("x\\y"));
        assert_eq!(expand_line("$kernelopts quiet", &v), "root=/dev/a ro quiet");
    }

    /// Random scripts from GRUB's vocabulary (a cheap stand-in for the
    /// `grub_cfg` fuzz target): no panic, and the default always found.
    #[test]
    fn random_scripts() {
        const VOCAB: &[&str] = &[
            "if",
            "then",
            "fi",
            "else",
            "elif",
            "{",
            "}",
            ";",
            "\n",
            "menuentry",
            "submenu",
            "'a'",
            "\"b $x\"",
            "$x",
            "${y}",
            "set",
            "x=$x$x",
            "default=1>0",
            "linux",
            "/k",
            "initrd",
            "[",
            "]",
            "=",
            "\\",
            "'",
            "\"",
            "function",
            "f",
            "for",
            "do",
            "done",
            "blscfg",
            "#",
            ">",
            "--id",
            "$menuentry_id_option",
            "-s",
            "!",
            "true",
            "false",
            "while",
            "unset",
            "x",
            "${",
            "$",
            "é",
            "\t",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let n = (next() % 120) as usize;
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(VOCAB[(next() % VOCAB.len() as u64) as usize]);
                if next() % 3 == 0 {
                    text.push(' ');
                }
            }
            let m = menu(&text, &[("y", "1 2")]);
            let path = select(&m.items, m.vars.get("default").map(String::as_str));
            if let Some(Item::Entry(_)) = m.items.first() {
                assert!(!path.is_empty(), "{text:?}");
            }
            let _ = expand_line(&text, &m.vars);
        }
    }

    #[test]
    fn hostile_text_is_bounded() {
        let deep = "if true; then ".repeat(10_000) + &"fi\n".repeat(10_000);
        let _ = menu(&deep, &[]);
        let braces = "{".repeat(10_000);
        let _ = menu(&braces, &[]);
        let grow = "set a=xxxxxxxxxxxxxxxx\n".to_string() + &"set a=\"$a$a\"\n".repeat(64);
        let m = menu(&grow, &[]);
        assert!(m.vars["a"].len() <= MAX_VALUE);
        let _ = menu("\"unterminated $ ${ '", &[]);
        let _ = select(&[], Some("1>2>3"));
    }
}
