//! A file of a filesystem read as a byte source: a disk image stored in a
//! guest or host filesystem ([`FileReader`]), opened again as a disk.

use std::sync::Arc;

use super::{FileType, FsView, NodeId};
use crate::error::{Error, Result};
use crate::io::{HostExtent, ReadAt, past_end};
use crate::text::escape;

/// A regular file of an [`FsView`] as a [`ReadAt`]: reads are exact (a read
/// past the end is an error, never a short read), holes read as zeros (as
/// the filesystem reader gives them), and the reader is shared between
/// threads like the filesystem it reads.
pub struct FileReader {
    fs: Arc<dyn FsView>,
    node: NodeId,
    size: u64,
    /// The file's path, for messages.
    name: String,
}

impl FileReader {
    /// The regular file `node` of `fs`; `path` names it in messages. Its
    /// size is read once, here.
    pub fn new(fs: Arc<dyn FsView>, node: NodeId, path: &[u8]) -> Result<FileReader> {
        let meta = fs.metadata(node)?;
        if meta.file_type != FileType::Regular {
            return Err(Error::Invalid(format!(
                "{} is not a regular file (it is a {}), so it cannot hold a disk image",
                escape(path),
                meta.file_type.words()
            )));
        }
        Ok(FileReader {
            fs,
            node,
            size: meta.size,
            name: escape(path),
        })
    }

    /// The filesystem the file is in.
    pub fn fs(&self) -> &Arc<dyn FsView> {
        &self.fs
    }

    /// The file's node in it.
    pub fn node(&self) -> NodeId {
        self.node
    }
}

impl ReadAt for FileReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = self
                .fs
                .read_at(self.node, at, &mut buf[done..])
                .map_err(|e| std::io::Error::other(format!("{}: {e}", self.name)))?;
            if n == 0 {
                // The file ends before the size it had when opened.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: the file ends at byte {at}, before {end} (its size was {} bytes)",
                        self.name, self.size
                    ),
                ));
            }
            done += n;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        self.fs.host_extent(self.node, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;

    #[test]
    fn reads_exactly_and_refuses_past_the_end() {
        let mut m = MemFs::new();
        let data: Vec<u8> = (0..10000u32).map(|i| (i % 251) as u8).collect();
        let root = m.root_id();
        let node = m.add_file(root, b"img", 0o644, &data);
        let fs: Arc<dyn FsView> = Arc::new(m);
        let r = FileReader::new(Arc::clone(&fs), node, b"/img").unwrap();
        assert_eq!(r.size(), 10000);
        let mut buf = vec![0u8; 5000];
        r.read_exact_at(4000, &mut buf).unwrap();
        assert_eq!(buf, data[4000..9000]);
        assert!(r.read_exact_at(6000, &mut buf).is_err());
        assert!(r.read_exact_at(u64::MAX, &mut buf).is_err());
        let dir = fs.root();
        let e = FileReader::new(fs, dir, b"/").err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
