//! A small block cache for metadata reads.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{HostExtent, ReadAt, past_end};

/// Caches aligned blocks of a source. Meant for metadata (superblocks,
/// directory and index blocks) that parsers read again and again; bulk file
/// data should bypass it.
pub struct CachedSource {
    inner: Arc<dyn ReadAt>,
    block: u64,
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    blocks: HashMap<u64, Arc<[u8]>>,
    order: VecDeque<u64>,
}

impl CachedSource {
    /// Cache `inner` in blocks of `block` bytes (a power of two), keeping at most `capacity` blocks.
    pub fn new(inner: Arc<dyn ReadAt>, block: u64, capacity: usize) -> CachedSource {
        let block = block.max(512).next_power_of_two();
        CachedSource {
            inner,
            block,
            capacity: capacity.max(1),
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The source beneath the cache.
    pub fn inner(&self) -> &Arc<dyn ReadAt> {
        &self.inner
    }

    fn get_block(&self, index: u64) -> std::io::Result<Arc<[u8]>> {
        if let Some(b) = self.lock().blocks.get(&index) {
            return Ok(Arc::clone(b));
        }
        let start = index * self.block;
        let len = self.block.min(self.inner.size() - start) as usize;
        let mut buf = vec![0u8; len];
        self.inner.read_exact_at(start, &mut buf)?;
        let data: Arc<[u8]> = buf.into();
        let mut st = self.lock();
        if st.blocks.insert(index, Arc::clone(&data)).is_none() {
            st.order.push_back(index);
        }
        while st.order.len() > self.capacity {
            if let Some(old) = st.order.pop_front() {
                st.blocks.remove(&old);
            }
        }
        Ok(data)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves only a cache behind; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget every cached block.
    pub fn clear(&self) {
        let mut st = self.lock();
        st.blocks.clear();
        st.order.clear();
    }
}

impl ReadAt for CachedSource {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let size = self.inner.size();
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| past_end(offset, buf.len(), size))?;
        if end > size {
            return Err(past_end(offset, buf.len(), size));
        }
        // Large reads go straight through.
        if buf.len() as u64 > self.block * 4 {
            return self.inner.read_exact_at(offset, buf);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / self.block;
            let within = (pos % self.block) as usize;
            let data = self.get_block(index)?;
            let n = (data.len() - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[within..within + n]);
            done += n;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        self.inner.host_extent(offset, len)
    }

    fn prefetch(&self, offset: u64, len: u64) {
        self.inner.prefetch(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_reads_equal_direct_reads() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let inner: Arc<dyn ReadAt> = Arc::new(data.clone());
        let c = CachedSource::new(inner, 512, 3);
        for (off, len) in [
            (0usize, 10usize),
            (500, 30),
            (511, 1),
            (9990, 10),
            (1000, 3000),
            (4000, 600),
        ] {
            let mut buf = vec![0u8; len];
            c.read_exact_at(off as u64, &mut buf).unwrap();
            assert_eq!(buf, &data[off..off + len]);
        }
        let mut buf = [0u8; 11];
        assert!(c.read_exact_at(9990, &mut buf).is_err());
    }
}
