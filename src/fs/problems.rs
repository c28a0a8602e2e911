//! The problems a filesystem reader finds while reading (bad checksums,
//! broken structures): each recorded once, at most [`MAX_PROBLEMS`] kept,
//! the rest counted, for [`super::FsStatus::problems`].

use std::sync::Mutex;

/// Most problems kept word for word; further ones are only counted.
pub const MAX_PROBLEMS: usize = 200;

#[derive(Default)]
struct Inner {
    list: Vec<String>,
    more: u64,
}

/// A reader's problem log, shared by its threads.
#[derive(Default)]
pub struct ProblemLog {
    inner: Mutex<Inner>,
}

impl ProblemLog {
    /// Record `text` unless it was recorded already.
    pub fn record(&self, text: String) {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if p.list.contains(&text) {
            return;
        }
        if p.list.len() < MAX_PROBLEMS {
            p.list.push(text);
        } else {
            p.more += 1;
        }
    }

    /// The problems, with a last line counting those not kept.
    pub fn list(&self) -> Vec<String> {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = p.list.clone();
        if p.more > 0 {
            out.push(format!("... and {} more problems", p.more));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_once_then_counted() {
        let log = ProblemLog::default();
        log.record("a".into());
        log.record("a".into());
        assert_eq!(log.list(), ["a"]);
        for i in 0..MAX_PROBLEMS + 2 {
            log.record(format!("p{i}"));
        }
        let l = log.list();
        assert_eq!(l.len(), MAX_PROBLEMS + 1);
        assert_eq!(l[MAX_PROBLEMS], "... and 3 more problems");
    }
}
