//! The problems a filesystem reader finds while reading (bad checksums,
//! broken structures): each recorded once, at most [`MAX_PROBLEMS`] kept,
//! the rest counted, for [`super::FsStatus::problems`].

use std::sync::Mutex;

use crate::problem::Problem;

/// Most problems kept word for word; further ones are only counted.
pub const MAX_PROBLEMS: usize = 200;

#[derive(Default)]
struct Inner {
    list: Vec<Problem>,
    more: u64,
}

/// A reader's problem log, shared by its threads.
#[derive(Default)]
pub struct ProblemLog {
    inner: Mutex<Inner>,
}

impl ProblemLog {
    /// Record `problem` unless it was recorded already.
    pub fn record(&self, problem: impl Into<Problem>) {
        let problem = problem.into();
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if p.list.contains(&problem) {
            return;
        }
        if p.list.len() < MAX_PROBLEMS {
            p.list.push(problem);
        } else {
            p.more += 1;
        }
    }

    /// How many lines [`ProblemLog::list`] gives, without copying them.
    pub fn count(&self) -> usize {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        p.list.len() + usize::from(p.more > 0)
    }

    /// The problems, with a last line counting those not kept.
    pub fn list(&self) -> Vec<Problem> {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = p.list.clone();
        if p.more > 0 {
            out.push(Problem::text(format!("... and {} more problems", p.more)));
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
        log.record("a");
        log.record("a");
        assert_eq!(log.list(), ["a"]);
        assert_eq!(log.count(), 1);
        for i in 0..MAX_PROBLEMS + 2 {
            log.record(format!("p{i}"));
        }
        let l = log.list();
        assert_eq!(l.len(), MAX_PROBLEMS + 1);
        assert_eq!(l[MAX_PROBLEMS], "... and 3 more problems");
        assert_eq!(log.count(), l.len());
    }
}
