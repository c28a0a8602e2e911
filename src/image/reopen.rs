//! A reader that is opened again on [`ReadAt::refresh`]: VMDK, VHD, VHDX
//! and VDI images keep their grain directories, block maps and cached
//! tables from when they were opened; after the file was written (a VM
//! still running, a copy finished), the TUI's reload reads them again.

use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::io::{HostExtent, ReadAt};

/// How to open the reader again.
type Opener = Box<dyn Fn() -> Result<Arc<dyn ReadAt>> + Send + Sync>;

/// A reader replaced by a new one, opened the same way, on refresh.
pub(crate) struct Reopen {
    open: Opener,
    current: RwLock<Arc<dyn ReadAt>>,
}

impl Reopen {
    /// `first`, opened by `open`, which [`ReadAt::refresh`] calls again.
    pub(crate) fn new(
        first: Arc<dyn ReadAt>,
        open: impl Fn() -> Result<Arc<dyn ReadAt>> + Send + Sync + 'static,
    ) -> Reopen {
        Reopen {
            open: Box::new(open),
            current: RwLock::new(first),
        }
    }

    fn reader(&self) -> Arc<dyn ReadAt> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ReadAt for Reopen {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.reader().read_exact_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.reader().size()
    }
    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        self.reader().host_extent(offset, len)
    }
    fn refresh(&self) -> std::io::Result<()> {
        let fresh = (self.open)().map_err(std::io::Error::other)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}
