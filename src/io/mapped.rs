//! Volumes mapped onto disks: linear, striped and RAID segments.
//!
//! A [`Mapping`] says where each byte of a volume (a partition, a logical
//! volume) lives on the disks of the image. It is the single source of truth
//! for both engines: the userspace engine reads through a [`MappedView`],
//! the kernel engine turns the same segments into device-mapper `linear` and
//! `striped` table lines.
//!
//! All offsets are in bytes and all targets are on *disks* (the images given
//! on the command line), never on other volumes: a logical volume on a PV in
//! partition 2 maps straight to `partition start + pe_start + extent offset`.

use std::sync::Arc;

use super::raid::Raid;
use super::{HostExtent, ReadAt, past_end};

fn serialize_raid<S: serde::Serializer>(r: &Arc<Raid>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&**r, s)
}

/// Index of a disk in the set of disks opened together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct DiskId(pub usize);

/// A position on a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Area {
    /// Which disk.
    pub disk: DiskId,
    /// Byte offset on that disk.
    pub offset: u64,
}

/// Where one segment of a volume lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    /// The segment's bytes are contiguous from `Area`.
    Linear(Area),
    /// The segment is striped over `stripes` in chunks of `chunk_size` bytes,
    /// as device-mapper `striped` and LVM2 lay them out: chunk *k* of the
    /// segment is chunk *k / N* of stripe *k mod N*. Each stripe area holds
    /// `segment length / N` bytes.
    Striped {
        /// Chunk (stripe) size in bytes, a multiple of 512.
        chunk_size: u64,
        /// Start of each stripe's area.
        stripes: Vec<Area>,
    },
    /// A segment that reads as zeros (LVM `zero` or `error` segment types are not this:
    /// only explicit zero segments).
    Zero,
    /// The segment is the first `len` bytes of a RAID array (raid0/1/10/4/5/6
    /// over legs that are mappings of their own), read through
    /// [`Raid::read`]: the bytes lie on several legs, so it has no single
    /// place on a disk ([`Mapping::locate`] refuses it).
    Raid(#[serde(serialize_with = "serialize_raid")] Arc<Raid>),
    /// A segment vmrescue cannot read (yet): a thin pool itself, raid, mirror, snapshot, cache, vdo,
    /// or a segment on a missing PV. Reads fail with `reason`.
    Unreadable {
        /// Why, for messages: "segment type thin-pool is not readable yet".
        reason: String,
    },
}

/// One contiguous range of a volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Segment {
    /// First byte of the segment in the volume.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Where the bytes are.
    pub target: Target,
}

impl Segment {
    /// One past the last byte of the segment in the volume.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// The segments of a volume, in order, covering `0..size` without gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Mapping {
    segments: Vec<Segment>,
}

/// A located run of volume bytes on one disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Where the first byte is.
    pub area: Area,
    /// How many bytes are contiguous on that disk from there.
    pub len: u64,
}

/// Why a volume byte has no place on a disk ([`Mapping::ranges`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmapped {
    /// Byte `at` lies in a zero segment.
    Zero {
        /// The volume byte.
        at: u64,
    },
    /// Byte `at` lies in an unreadable segment, or past the end.
    Unreadable {
        /// The volume byte.
        at: u64,
        /// Why (the segment's reason).
        reason: String,
    },
}

impl Mapping {
    /// A mapping from segments, checked: they start at 0, follow each other without
    /// gaps or overlap, have non-zero length, and striped segments divide evenly.
    pub fn new(segments: Vec<Segment>) -> Result<Mapping, String> {
        let mut next = 0u64;
        for (i, s) in segments.iter().enumerate() {
            if s.start != next {
                return Err(format!(
                    "segment {i} starts at byte {} but the previous one ends at {next}",
                    s.start
                ));
            }
            if s.len == 0 {
                return Err(format!("segment {i} is empty"));
            }
            next = s
                .start
                .checked_add(s.len)
                .ok_or_else(|| format!("segment {i} ends past 2^64"))?;
            if let Target::Striped {
                chunk_size,
                stripes,
            } = &s.target
            {
                if stripes.is_empty() {
                    return Err(format!("segment {i} is striped over no stripes"));
                }
                if *chunk_size == 0 || chunk_size % 512 != 0 {
                    return Err(format!(
                        "segment {i} has a stripe size of {chunk_size} bytes"
                    ));
                }
                if s.len % stripes.len() as u64 != 0 {
                    return Err(format!(
                        "segment {i} of {} bytes does not divide over {} stripes",
                        s.len,
                        stripes.len()
                    ));
                }
            }
            if let Target::Raid(r) = &s.target
                && s.len > r.size()
            {
                return Err(format!(
                    "segment {i} of {} bytes is longer than its {} array ({} bytes)",
                    s.len,
                    r.level().words(),
                    r.size()
                ));
            }
        }
        Ok(Mapping { segments })
    }

    /// A single linear segment of `len` bytes from `area`.
    pub fn linear(area: Area, len: u64) -> Mapping {
        if len == 0 {
            return Mapping::default();
        }
        Mapping {
            segments: vec![Segment {
                start: 0,
                len,
                target: Target::Linear(area),
            }],
        }
    }

    /// The segments in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The volume's size in bytes.
    pub fn size(&self) -> u64 {
        self.segments.last().map_or(0, Segment::end)
    }

    /// Reasons why parts of the volume cannot be read, if any.
    pub fn unreadable(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter_map(|s| match &s.target {
                Target::Unreadable { reason } => Some(reason.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The segment holding byte `offset`.
    fn segment_at(&self, offset: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.end() <= offset);
        self.segments.get(i).filter(|s| s.start <= offset)
    }

    /// Where byte `offset` of the volume is, and how many bytes follow it
    /// contiguously on the same disk. `Ok(None)` for zero segments,
    /// `Err(reason)` for unreadable ones and offsets past the end.
    pub fn locate(&self, offset: u64) -> Result<Option<Located>, String> {
        let seg = self
            .segment_at(offset)
            .ok_or_else(|| format!("offset {offset} is past the end ({} bytes)", self.size()))?;
        let rel = offset - seg.start;
        match &seg.target {
            Target::Linear(area) => Ok(Some(Located {
                area: Area {
                    disk: area.disk,
                    offset: area
                        .offset
                        .checked_add(rel)
                        .ok_or_else(|| "mapped offset overflows".to_string())?,
                },
                len: seg.len - rel,
            })),
            Target::Striped {
                chunk_size,
                stripes,
            } => {
                let n = stripes.len() as u64;
                let chunk = rel / chunk_size;
                let within = rel % chunk_size;
                let stripe = &stripes[(chunk % n) as usize];
                let row = chunk / n;
                let off = row
                    .checked_mul(*chunk_size)
                    .and_then(|o| o.checked_add(within))
                    .and_then(|o| o.checked_add(stripe.offset))
                    .ok_or_else(|| "mapped offset overflows".to_string())?;
                let left_in_chunk = chunk_size - within;
                Ok(Some(Located {
                    area: Area {
                        disk: stripe.disk,
                        offset: off,
                    },
                    len: left_in_chunk.min(seg.len - rel),
                }))
            }
            Target::Zero => Ok(None),
            Target::Unreadable { reason } => Err(reason.clone()),
            Target::Raid(r) => Err(format!(
                "byte {offset} is on a {} array: its bytes lie on several legs",
                r.level().words()
            )),
        }
    }

    /// Where the volume bytes `offset..offset + len` lie on the disks: one
    /// run per contiguous piece, in volume order, split where the mapping
    /// splits (segment boundaries, stripe chunks). Runs are not merged, even
    /// when two happen to touch on a disk. A byte in a zero or unreadable
    /// segment, or past the end, has no place to be written to.
    pub fn ranges(&self, offset: u64, len: u64) -> Result<Vec<Located>, Unmapped> {
        let mut out = Vec::new();
        let mut done = 0u64;
        // Each step covers at least one byte: at most `len` steps.
        while done < len {
            let at = offset
                .checked_add(done)
                .ok_or_else(|| Unmapped::Unreadable {
                    at: u64::MAX,
                    reason: "offset overflows".into(),
                })?;
            let loc = self
                .locate(at)
                .map_err(|reason| Unmapped::Unreadable { at, reason })?
                .ok_or(Unmapped::Zero { at })?;
            let n = loc.len.min(len - done).max(1);
            out.push(Located {
                area: loc.area,
                len: n,
            });
            done += n;
        }
        Ok(out)
    }

    /// The volume bytes `offset..offset + len` as targets of their own, in
    /// volume order: linear runs on the disks as [`Mapping::ranges`] gives
    /// them, and the bytes of a RAID segment as a window of its array
    /// ([`Raid::window`]). For a volume mapped onto a part of this one (a
    /// thin LV onto its pool's data LV). Zero and unreadable bytes as
    /// [`Mapping::ranges`] says them.
    pub fn pieces(&self, offset: u64, len: u64) -> Result<Vec<(u64, Target)>, Unmapped> {
        let mut out = Vec::new();
        let mut done = 0u64;
        // Each step covers at least one byte: at most `len` steps.
        while done < len {
            let at = offset
                .checked_add(done)
                .ok_or_else(|| Unmapped::Unreadable {
                    at: u64::MAX,
                    reason: "offset overflows".into(),
                })?;
            if let Some(seg) = self.segment_at(at)
                && let Target::Raid(r) = &seg.target
            {
                let n = (seg.end() - at).min(len - done).max(1);
                let w = r
                    .window(at - seg.start, n)
                    .map_err(|reason| Unmapped::Unreadable { at, reason })?;
                out.push((n, Target::Raid(Arc::new(w))));
                done += n;
                continue;
            }
            let loc = self
                .locate(at)
                .map_err(|reason| Unmapped::Unreadable { at, reason })?
                .ok_or(Unmapped::Zero { at })?;
            let n = loc.len.min(len - done).max(1);
            out.push((n, Target::Linear(loc.area)));
            done += n;
        }
        Ok(out)
    }

    /// The disks this mapping reads from.
    pub fn disks(&self) -> Vec<DiskId> {
        let mut v: Vec<DiskId> = self
            .segments
            .iter()
            .flat_map(|s| match &s.target {
                Target::Linear(a) => vec![a.disk],
                Target::Striped { stripes, .. } => stripes.iter().map(|a| a.disk).collect(),
                Target::Raid(r) => r.disks(),
                _ => vec![],
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A volume read through its [`Mapping`] over the disks' sources.
#[derive(Clone)]
pub struct MappedView {
    mapping: Mapping,
    disks: Vec<Arc<dyn ReadAt>>,
}

impl MappedView {
    /// A view of `mapping` over `disks` (indexed by [`DiskId`]).
    pub fn new(mapping: Mapping, disks: Vec<Arc<dyn ReadAt>>) -> MappedView {
        MappedView { mapping, disks }
    }

    /// The mapping this view follows.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }
}

impl ReadAt for MappedView {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        read_mapping(&self.mapping, &self.disks, offset, buf)
    }

    fn size(&self) -> u64 {
        self.mapping.size()
    }

    fn host_extent(&self, offset: u64, len: u64) -> Option<HostExtent> {
        let loc = self.mapping.locate(offset).ok()??;
        let disk = self.disks.get(loc.area.disk.0)?;
        disk.host_extent(loc.area.offset, len.min(loc.len))
    }

    fn prefetch(&self, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.mapping.size());
        let mut pos = offset;
        // A prefetch is a hint: the first 64 disk runs are enough.
        for _ in 0..64 {
            if pos >= end {
                break;
            }
            let Ok(Some(loc)) = self.mapping.locate(pos) else {
                break;
            };
            let n = loc.len.min(end - pos);
            if n == 0 {
                break;
            }
            if let Some(d) = self.disks.get(loc.area.disk.0) {
                d.prefetch(loc.area.offset, n);
            }
            pos += n;
        }
    }
}

/// Fill `buf` with the bytes at `offset` of the volume `mapping` describes,
/// reading `disks` (indexed by [`DiskId`]).
pub(super) fn read_mapping(
    mapping: &Mapping,
    disks: &[Arc<dyn ReadAt>],
    offset: u64,
    buf: &mut [u8],
) -> std::io::Result<()> {
    let size = mapping.size();
    let end = offset
        .checked_add(buf.len() as u64)
        .ok_or_else(|| past_end(offset, buf.len(), size))?;
    if end > size {
        return Err(past_end(offset, buf.len(), size));
    }
    let disk = |id: DiskId| {
        disks.get(id.0).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("mapping refers to disk {} which is not open", id.0),
            )
        })
    };
    let mut done = 0usize;
    while done < buf.len() {
        let pos = offset + done as u64;
        let left = (buf.len() - done) as u64;
        if let Some(seg) = mapping.segment_at(pos)
            && let Target::Raid(r) = &seg.target
        {
            let n = (seg.end() - pos).min(left) as usize;
            r.read(disks, pos - seg.start, &mut buf[done..done + n])
                .map_err(|e| std::io::Error::new(e.kind(), format!("byte {pos}: {e}")))?;
            done += n;
            continue;
        }
        let located = mapping
            .locate(pos)
            .map_err(|e| std::io::Error::other(format!("byte {pos}: {e}")))?;
        match located {
            Some(loc) => {
                let n = loc.len.min(left) as usize;
                disk(loc.area.disk)?.read_exact_at(loc.area.offset, &mut buf[done..done + n])?;
                done += n;
            }
            None => {
                // A zero segment: fill up to its end.
                let seg_end = mapping.segment_at(pos).map_or(end, Segment::end);
                let n = (seg_end - pos).min(left) as usize;
                buf[done..done + n].fill(0);
                done += n;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(disk: usize, offset: u64) -> Area {
        Area {
            disk: DiskId(disk),
            offset,
        }
    }

    #[test]
    fn striped_layout_matches_dm() {
        // Two stripes of 4 KiB chunks, each stripe area at its own disk offset.
        let m = Mapping::new(vec![Segment {
            start: 0,
            len: 32768,
            target: Target::Striped {
                chunk_size: 4096,
                stripes: vec![area(0, 1 << 20), area(1, 2 << 20)],
            },
        }])
        .unwrap();
        // chunk 0 -> stripe 0 row 0; chunk 1 -> stripe 1 row 0; chunk 2 -> stripe 0 row 1
        assert_eq!(m.locate(0).unwrap().unwrap().area, area(0, 1 << 20));
        assert_eq!(m.locate(4096).unwrap().unwrap().area, area(1, 2 << 20));
        assert_eq!(
            m.locate(8192 + 5).unwrap().unwrap().area,
            area(0, (1 << 20) + 4096 + 5)
        );
        assert_eq!(m.locate(8192 + 5).unwrap().unwrap().len, 4096 - 5);
        assert!(m.locate(32768).is_err());
    }

    #[test]
    fn ranges_split_at_segments_and_stripes() {
        let m = Mapping::new(vec![
            Segment {
                start: 0,
                len: 1024,
                target: Target::Linear(area(0, 10_000)),
            },
            Segment {
                start: 1024,
                len: 4096,
                target: Target::Striped {
                    chunk_size: 1024,
                    stripes: vec![area(1, 0), area(2, 512)],
                },
            },
            Segment {
                start: 5120,
                len: 512,
                target: Target::Zero,
            },
        ])
        .unwrap();
        let run = |disk, offset, len| Located {
            area: area(disk, offset),
            len,
        };
        // Inside one linear segment: one run.
        assert_eq!(m.ranges(10, 20).unwrap(), vec![run(0, 10_010, 20)]);
        // Across the linear end into the stripes, then across a chunk.
        assert_eq!(
            m.ranges(1000, 1100).unwrap(),
            vec![run(0, 11_000, 24), run(1, 0, 1024), run(2, 512, 52)]
        );
        // Chunks 2 and 3 of the striped segment: row 1 of each stripe.
        assert_eq!(
            m.ranges(1024 + 2048 + 1000, 100).unwrap(),
            vec![run(1, 1024 + 1000, 24), run(2, 512 + 1024, 76)]
        );
        // Nothing asked, nothing to write.
        assert_eq!(m.ranges(7, 0).unwrap(), vec![]);
        // Zero segments and the end have no place on a disk.
        assert_eq!(m.ranges(5100, 40), Err(Unmapped::Zero { at: 5120 }));
        assert!(matches!(
            m.ranges(5632, 1),
            Err(Unmapped::Unreadable { at: 5632, .. })
        ));
    }

    #[test]
    fn reads_across_segments() {
        let disk: Arc<dyn ReadAt> = Arc::new((0..=255u8).cycle().take(8192).collect::<Vec<u8>>());
        let m = Mapping::new(vec![
            Segment {
                start: 0,
                len: 100,
                target: Target::Linear(area(0, 1000)),
            },
            Segment {
                start: 100,
                len: 50,
                target: Target::Zero,
            },
            Segment {
                start: 150,
                len: 100,
                target: Target::Linear(area(0, 10)),
            },
        ])
        .unwrap();
        let v = MappedView::new(m, vec![disk]);
        let mut buf = vec![0xffu8; 250];
        v.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(buf[0], (1000 % 256) as u8);
        assert_eq!(buf[99], (1099 % 256) as u8);
        assert!(buf[100..150].iter().all(|&b| b == 0));
        assert_eq!(buf[150], 10);
        assert!(v.read_exact_at(200, &mut buf).is_err());
    }

    #[test]
    fn rejects_gaps_and_uneven_stripes() {
        assert!(
            Mapping::new(vec![Segment {
                start: 512,
                len: 512,
                target: Target::Zero
            }])
            .is_err()
        );
        assert!(
            Mapping::new(vec![Segment {
                start: 0,
                len: 4096 * 2,
                target: Target::Striped {
                    chunk_size: 4096,
                    stripes: vec![area(0, 0), area(0, 8192), area(0, 16384)]
                }
            }])
            .is_err()
        );
    }
}
