//! Finding a pattern in the viewer's content, forwards or backwards from a
//! position, over large buffers with `memchr::memmem` (SIMD), with progress
//! and cancel. A match across two buffers is found: each buffer overlaps
//! the one before by the pattern's length less one. When the line number of
//! a position is known, the newlines passed are counted so the match's line
//! is known too.

use std::sync::atomic::{AtomicBool, Ordering};

use memchr::memmem;

use super::Content;

/// Bytes searched at once.
pub const CHUNK: usize = 8 << 20;

/// A match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Its first byte.
    pub offset: u64,
    /// The number of the line holding it, when the search started from a numbered line.
    pub line: Option<u64>,
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A match.
    Found(Found),
    /// No match between the start and the end (or the start of the file).
    NotFound,
    /// Stopped by the operator.
    Cancelled,
    /// The content could not be read.
    Failed(String),
}

/// What to look for, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The bytes to find.
    pub pattern: Vec<u8>,
    /// Where from.
    pub from: u64,
    /// Forwards (the first match at or after `from`) or backwards (the last
    /// one that starts before it).
    pub forward: bool,
    /// A position and its line number, to number the match.
    pub base: Option<(u64, u64)>,
}

impl Query {
    /// A query for `pattern` from `from`, forwards or not, numbered from `base`.
    pub fn new(pattern: &[u8], from: u64, forward: bool, base: Option<(u64, u64)>) -> Query {
        Query {
            pattern: pattern.to_vec(),
            from,
            forward,
            base,
        }
    }
}

/// Look for the query's pattern in `content`. `progress` gets the bytes
/// searched so far and the bytes to search.
pub fn find(
    content: &Content,
    query: &Query,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(u64, u64),
) -> Outcome {
    let Query {
        pattern,
        from,
        forward,
        base,
    } = query;
    let (pattern, from, forward, base) = (pattern.as_slice(), *from, *forward, *base);
    if pattern.is_empty() {
        return Outcome::NotFound;
    }
    let len = content.len();
    let keep = pattern.len() - 1;
    let mut buf = vec![0u8; CHUNK + keep];
    if forward {
        let finder = memmem::Finder::new(pattern);
        let total = len.saturating_sub(from);
        // Line counting starts at the base (at or before `from`).
        let (mut counted_to, mut line) = match base {
            Some((o, n)) if o <= from => (o, Some(n)),
            _ => (from, None),
        };
        if let Some(n) = line.as_mut() {
            match count_newlines(content, counted_to, from, &mut buf) {
                Ok(k) => *n += k,
                Err(e) => return Outcome::Failed(e),
            }
            counted_to = from;
        }
        let mut pos = from;
        while pos < len {
            if cancel.load(Ordering::Relaxed) {
                return Outcome::Cancelled;
            }
            let want = usize::try_from(len - pos)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = match content.read_at(pos, &mut buf[..want]) {
                Ok(n) => n,
                Err(e) => return Outcome::Failed(e),
            };
            if n == 0 {
                break;
            }
            let hay = &buf[..n];
            if let Some(i) = finder.find(hay) {
                let offset = pos + i as u64;
                let line = line.map(|k| {
                    let skip = usize::try_from(counted_to - pos).unwrap_or(0).min(i);
                    k + memchr::memchr_iter(b'\n', &hay[skip..i]).count() as u64
                });
                return Outcome::Found(Found { offset, line });
            }
            // Everything but the overlap is done.
            let step = if pos + n as u64 >= len {
                n
            } else {
                n.saturating_sub(keep).max(1)
            };
            if let Some(k) = line.as_mut() {
                let skip = usize::try_from(counted_to - pos).unwrap_or(0).min(step);
                *k += memchr::memchr_iter(b'\n', &hay[skip..step]).count() as u64;
                counted_to = pos + step as u64;
            }
            pos += step as u64;
            progress(pos - from, total);
        }
        Outcome::NotFound
    } else {
        let finder = memmem::FinderRev::new(pattern);
        // A match starts before `from`: it may end up to `keep` bytes after.
        let end_all = from.saturating_add(keep as u64).min(len);
        let total = end_all;
        let mut end = end_all;
        while end > 0 {
            if cancel.load(Ordering::Relaxed) {
                return Outcome::Cancelled;
            }
            let start = end.saturating_sub(buf.len() as u64);
            let want = usize::try_from(end - start).unwrap_or(0);
            let n = match content.read_at(start, &mut buf[..want]) {
                Ok(n) => n,
                Err(e) => return Outcome::Failed(e),
            };
            let hay = &buf[..n];
            if let Some(i) = finder.rfind(hay) {
                let offset = start + i as u64;
                let line = match base {
                    Some((o, k)) if o >= offset => {
                        match count_newlines(content, offset, o, &mut buf) {
                            Ok(c) => Some(k.saturating_sub(c)),
                            Err(_) => None,
                        }
                    }
                    _ => None,
                };
                return Outcome::Found(Found { offset, line });
            }
            if start == 0 {
                break;
            }
            end = (start + keep as u64).min(end - 1);
            progress(end_all - end, total);
        }
        Outcome::NotFound
    }
}

/// Newlines in `from..to` of `content`, read through `buf`.
fn count_newlines(content: &Content, from: u64, to: u64, buf: &mut [u8]) -> Result<u64, String> {
    let mut pos = from;
    let mut n = 0u64;
    while pos < to {
        let want = usize::try_from(to - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let got = content.read_at(pos, &mut buf[..want])?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        pos += got as u64;
    }
    Ok(n)
}
