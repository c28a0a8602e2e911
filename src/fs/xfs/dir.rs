//! XFS version 2/3 directories: shortform (entries inside the inode), and
//! block, leaf and node directories, whose entries all live in the data
//! blocks of the directory's data space (below `XFS_DIR2_LEAF_OFFSET`).
//! Listing reads every data block; the leaf and free-index blocks above
//! that offset are only an index and are not needed.

use super::Xfs;
use super::bmap;
use super::inode::{Dinode, Fork, format};
use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileType, NodeId};
use crate::io::be;
use crate::problem::Problem;

/// Byte offset where a directory's leaf blocks start (32 GiB).
const XFS_DIR2_LEAF_OFFSET: u64 = 32 << 30;
/// Data block magics: block directory ("XD2B"/"XDB3"), data block ("XD2D"/"XDD3").
const XFS_DIR2_BLOCK_MAGIC: u32 = 0x5844_3242;
const XFS_DIR3_BLOCK_MAGIC: u32 = 0x5844_4233;
const XFS_DIR2_DATA_MAGIC: u32 = 0x5844_3244;
const XFS_DIR3_DATA_MAGIC: u32 = 0x5844_4433;
/// Data block header sizes.
const DATA_HDR_V4: usize = 16;
const DATA_HDR_V5: usize = 64;
/// Offset of the CRC in a v5 directory block.
const DIR3_CRC_OFF: usize = 4;
/// `xfs_dir2_data_unused` free tag.
const FREE_TAG: u16 = 0xffff;

/// The file type a directory entry records (`XFS_DIR3_FT_*`).
fn ftype(t: u8) -> Option<FileType> {
    Some(match t {
        1 => FileType::Regular,
        2 => FileType::Directory,
        3 => FileType::CharDevice,
        4 => FileType::BlockDevice,
        5 => FileType::Fifo,
        6 => FileType::Socket,
        7 => FileType::Symlink,
        _ => return None,
    })
}

/// Every entry of directory `inode` except `.` and `..`, in on-disk order.
pub(super) fn list(fs: &Xfs, inode: &Dinode) -> Result<Vec<DirEntry>> {
    match inode.di_format {
        format::LOCAL => shortform(fs, inode),
        format::EXTENTS | format::BTREE => blocks(fs, inode),
        f => Err(Error::corrupt(
            format!("xfs directory inode {}", inode.ino),
            inode.pos,
            format!("data fork format {f} is not one a directory has"),
        )),
    }
}

fn shortform(fs: &Xfs, inode: &Dinode) -> Result<Vec<DirEntry>> {
    let raw = inode.fork(Fork::Data);
    let what = || format!("xfs directory inode {}: shortform entries", inode.ino);
    let size = usize::try_from(inode.di_size).unwrap_or(usize::MAX);
    if size > raw.len() || size < 6 {
        return Err(Error::corrupt(
            what(),
            inode.pos,
            format!(
                "size {} does not fit the {} bytes of the data fork",
                inode.di_size,
                raw.len()
            ),
        ));
    }
    let raw = &raw[..size];
    let count = usize::from(raw[0]);
    let i8count = raw[1];
    let ino_len = if i8count > 0 { 8 } else { 4 };
    let has_ftype = fs.sb.has_ftype();
    let mut at = 2 + ino_len;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let bad = |detail: String| Error::corrupt(what(), inode.pos, detail);
        let namelen = usize::from(
            *raw.get(at)
                .ok_or_else(|| bad(format!("entry {i} starts past the end")))?,
        );
        let name_at = at + 3;
        let after_name = name_at + namelen;
        let ino_at = after_name + usize::from(has_ftype);
        let end = ino_at + ino_len;
        if namelen == 0 || end > raw.len() {
            return Err(bad(format!(
                "entry {i} (name of {namelen} bytes) runs past the end"
            )));
        }
        let name = raw[name_at..after_name].to_vec();
        let ino = if ino_len == 8 {
            be::u64(raw, ino_at).unwrap_or(0)
        } else {
            u64::from(be::u32(raw, ino_at).unwrap_or(0))
        };
        let file_type = if has_ftype {
            ftype(raw[after_name])
        } else {
            None
        };
        out.push(DirEntry {
            name,
            node: NodeId(ino),
            file_type,
        });
        at = end;
    }
    Ok(out)
}

/// Read directory block `db` (of `fsbcount` fs blocks) through `map`;
/// `None` when none of it is mapped.
fn read_dir_block(
    fs: &Xfs,
    inode: &Dinode,
    map: &[bmap::Bmx],
    db: u64,
    fsbcount: u64,
) -> Result<Vec<u8>> {
    let bs = fs.block_size;
    let mut buf = vec![0u8; (fsbcount * bs) as usize];
    for i in 0..fsbcount {
        let lblk = db * fsbcount + i;
        let x = bmap::find(map, lblk).map_err(|_| {
            Error::corrupt(
                format!("xfs directory inode {}", inode.ino),
                inode.pos,
                format!("directory block {db}: fs block {lblk} is a hole"),
            )
        })?;
        let block = x.block + (lblk - x.off);
        let at = (i * bs) as usize;
        fs.read_meta(
            block * bs,
            &mut buf[at..at + bs as usize],
            "xfs directory block",
        )?;
    }
    Ok(buf)
}

fn blocks(fs: &Xfs, inode: &Dinode) -> Result<Vec<DirEntry>> {
    let map = bmap::extents(fs, inode, Fork::Data)?;
    let bs = fs.block_size;
    let dbs = fs.sb.dir_block_size();
    let fsbcount = dbs / bs;
    let data_end = XFS_DIR2_LEAF_OFFSET / bs;
    let v5 = fs.sb.is_v5();
    let has_ftype = fs.sb.has_ftype();
    let mut out = Vec::new();
    let mut last_db = None;
    for x in &map {
        if x.off >= data_end {
            break;
        }
        let first = x.off / fsbcount;
        let last = (x.end().min(data_end) - 1) / fsbcount;
        for db in first..=last {
            if last_db.is_some_and(|l| db <= l) {
                continue;
            }
            last_db = Some(db);
            let what = format!("xfs directory inode {}: directory block {db}", inode.ino);
            let pos = bmap::find(&map, db * fsbcount)
                .map(|x| (x.block + (db * fsbcount - x.off)) * bs)
                .unwrap_or(0);
            let buf = match read_dir_block(fs, inode, &map, db, fsbcount) {
                Ok(b) => b,
                Err(e) => {
                    fs.problem(&e);
                    continue;
                }
            };
            let magic = be::u32(&buf, 0).unwrap_or(0);
            let (want_block, want_data) = if v5 {
                (XFS_DIR3_BLOCK_MAGIC, XFS_DIR3_DATA_MAGIC)
            } else {
                (XFS_DIR2_BLOCK_MAGIC, XFS_DIR2_DATA_MAGIC)
            };
            if magic != want_block && magic != want_data {
                fs.problem(Problem::at(what.to_string(), pos, format!("bad magic {magic:#010x} (expected {want_block:#010x} or {want_data:#010x}): its entries are not listed")));
                continue;
            }
            if v5 {
                if let Some(m) = super::sb::crc_mismatch(&buf, DIR3_CRC_OFF) {
                    fs.problem(Problem::at(what.to_string(), pos, m.to_string()));
                }
                let owner = be::u64(&buf, 40).unwrap_or(0);
                if owner != inode.ino {
                    fs.problem(Problem::at(
                        what.to_string(),
                        pos,
                        format!("belongs to inode {owner}: its entries are not listed"),
                    ));
                    continue;
                }
            }
            let mut end = buf.len();
            if magic == want_block {
                // The block tail (count, stale) and the leaf entries before it.
                let count = u64::from(be::u32(&buf, buf.len() - 8).unwrap_or(0));
                match count
                    .checked_mul(8)
                    .and_then(|l| (buf.len() as u64).checked_sub(8 + l))
                {
                    Some(e) => end = e as usize,
                    None => {
                        fs.problem(Problem::at(
                            what.to_string(),
                            pos,
                            format!("{count} leaf entries do not fit the block"),
                        ));
                        continue;
                    }
                }
            }
            let hdr = if v5 { DATA_HDR_V5 } else { DATA_HDR_V4 };
            if let Err(e) = entries(&buf, hdr, end, has_ftype, &mut out) {
                fs.problem(Problem::at(what.to_string(), pos, e.to_string()));
            }
        }
    }
    Ok(out)
}

/// Decode the data entries of one directory block between `start` and `end`.
fn entries(
    buf: &[u8],
    start: usize,
    end: usize,
    has_ftype: bool,
    out: &mut Vec<DirEntry>,
) -> std::result::Result<(), String> {
    let mut at = start;
    while at + 8 <= end {
        if be::u16(buf, at) == Some(FREE_TAG) {
            let len = usize::from(be::u16(buf, at + 2).unwrap_or(0));
            if len < 8 || len % 8 != 0 || at + len > end {
                return Err(format!(
                    "free space of {len} bytes at block offset {at} is not valid"
                ));
            }
            at += len;
            continue;
        }
        let ino = be::u64(buf, at).unwrap_or(0);
        let namelen = usize::from(buf[at + 8]);
        let size = (8 + 1 + namelen + usize::from(has_ftype) + 2).div_ceil(8) * 8;
        if namelen == 0 || at + size > end {
            return Err(format!(
                "entry at block offset {at} (name of {namelen} bytes) runs past the data"
            ));
        }
        let name = &buf[at + 9..at + 9 + namelen];
        if name != b"." && name != b".." {
            if out.len() >= super::MAX_DIR_ENTRIES {
                return Err(format!("more than {} entries", super::MAX_DIR_ENTRIES));
            }
            let file_type = if has_ftype {
                ftype(buf[at + 9 + namelen])
            } else {
                None
            };
            out.push(DirEntry {
                name: name.to_vec(),
                node: NodeId(ino),
                file_type,
            });
        }
        at += size;
    }
    Ok(())
}
