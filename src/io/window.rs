//! A byte range of a parent source.

use std::sync::Arc;

use super::{HostExtent, ReadAt, past_end};

/// Bytes `offset..offset + len` of a parent, seen as a source of their own.
#[derive(Clone)]
pub struct Window {
    parent: Arc<dyn ReadAt>,
    offset: u64,
    len: u64,
}

impl Window {
    /// A window on `parent`. The range is clipped to the parent's end, so a
    /// partition that claims to run past the disk reads as short rather than
    /// failing on every access.
    pub fn new(parent: Arc<dyn ReadAt>, offset: u64, len: u64) -> Window {
        let size = parent.size();
        let offset = offset.min(size);
        let len = len.min(size - offset);
        Window {
            parent,
            offset,
            len,
        }
    }

    /// Offset of the window in its parent.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl ReadAt for Window {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| past_end(offset, buf.len(), self.len))?;
        if end > self.len {
            return Err(past_end(offset, buf.len(), self.len));
        }
        self.parent.read_exact_at(self.offset + offset, buf)
    }

    fn size(&self) -> u64 {
        self.len
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        if offset >= self.len {
            return None;
        }
        let len = len.min(self.len - offset);
        self.parent.host_extent(self.offset + offset, len)
    }

    fn prefetch(&self, offset: u64, len: u64) {
        if offset < self.len {
            self.parent
                .prefetch(self.offset + offset, len.min(self.len - offset));
        }
    }
}
