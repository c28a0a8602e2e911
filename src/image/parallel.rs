//! Spreading independent jobs of one large read over the CPUs: qcow2's
//! compressed clusters and VMDK's compressed grains are decompressed this
//! way, each into its own part of the caller's buffer, so the result is in
//! order whatever thread finished first.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Run `work` on every job, spread over [`crate::io::parallelism`] threads when there
/// is more than one job (the calling thread is one of them). Workers take
/// jobs one at a time from a shared queue, so a worker the scheduler pauses
/// holds up at most one job. The first error is returned (the other
/// workers stop at their next job).
pub(crate) fn for_each<J: Send>(
    jobs: Vec<J>,
    work: impl Fn(J) -> std::io::Result<()> + Sync,
) -> std::io::Result<()> {
    let workers = crate::io::parallelism().min(jobs.len());
    if workers <= 1 {
        for j in jobs {
            work(j)?;
        }
        return Ok(());
    }
    let queue: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let worker = || -> std::io::Result<()> {
        // Each turn takes a new index: at most `queue.len()` turns do work.
        loop {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = queue.get(i) else {
                return Ok(());
            };
            let job = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(j) = job
                && let Err(e) = work(j)
            {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..workers).map(|_| scope.spawn(worker)).collect();
        let mut result = worker();
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a decompression thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}
