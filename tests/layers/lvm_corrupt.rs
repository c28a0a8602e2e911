//! Damaged LVM2 metadata: every LVM fixture is truncated at many points
//! inside its labels, metadata areas and metadata text, and bytes are
//! flipped in the label sector (label_header, pv_header and the rest),
//! every mda_header and the metadata text. Each case must give an error or
//! a listed problem from the LVM layer — never a panic, a hang, or silence.

use crate::common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use vmrescue::image::{self, Image, ImageFormat};
use vmrescue::io::ReadAt;
use vmrescue::layers::{self, ContentKind, Layout, VolumeKind};

/// A disk image with one byte changed or cut short, over the fixture.
struct Damaged {
    base: Arc<dyn ReadAt>,
    size: u64,
    flip: Option<u64>,
}

impl ReadAt for Damaged {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.size {
            return Err(vmrescue::io::past_end(offset, buf.len(), self.size));
        }
        self.base.read_exact_at(offset, buf)?;
        if let Some(at) = self.flip
            && at >= offset
            && at < end
        {
            buf[(at - offset) as usize] ^= 0x01;
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Flip(u64),
    Truncate(u64),
}

/// Everything the LVM layer said about a layout.
fn lvm_problems(l: &Layout) -> Vec<String> {
    let mut out = Vec::new();
    for pv in &l.pvs {
        out.extend(pv.scan.problems.iter().map(ToString::to_string));
    }
    for g in &l.groups {
        out.extend(g.problems.iter().map(ToString::to_string));
    }
    for v in &l.volumes {
        let lvm_volume = matches!(v.kind, VolumeKind::LogicalVolume { .. })
            || v.content.kind == ContentKind::LvmPv;
        for p in v.problems.iter().map(ToString::to_string) {
            if lvm_volume || p.contains("LVM2") {
                out.push(p);
            }
        }
    }
    out
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The damage cases for one PV of a scanned layout: (disk, what, damage).
fn cases_for(l: &Layout, images: &[Image]) -> Vec<(usize, String, Damage)> {
    let mut cases = Vec::new();
    for pv in &l.pvs {
        let disk = pv.area.disk.0;
        let src = &images[disk].source;
        let base = pv.area.offset;
        let label = base + pv.scan.label_sector * 512;
        // Every byte of the label sector: label_header, pv_header, lists, the rest.
        for i in 0..512 {
            cases.push((
                disk,
                format!("{} label byte {i}", pv.volume),
                Damage::Flip(label + i),
            ));
        }
        // Cut inside the label once "LABELONE" is there (a shorter cut leaves
        // nothing that says LVM2 was ever there).
        for i in [8, 24, 32, 72, 100, 300, 511] {
            cases.push((
                disk,
                format!("{} cut in label at {i}", pv.volume),
                Damage::Truncate(label + i),
            ));
        }
        for (m, &(mda, mda_size)) in pv.scan.metadata_areas.iter().enumerate() {
            let at = base + mda;
            for i in 0..512 {
                cases.push((
                    disk,
                    format!("{} mda {m} header byte {i}", pv.volume),
                    Damage::Flip(at + i),
                ));
            }
            for i in [0, 1, 40, 100, 511, 512] {
                cases.push((
                    disk,
                    format!("{} cut in mda {m} at {i}", pv.volume),
                    Damage::Truncate(at + i),
                ));
            }
            let mut h = vec![0u8; 512];
            src.read_exact_at(at, &mut h).unwrap();
            let (off, len) = (u64_at(&h, 40), u64_at(&h, 48));
            if off == 0 || len == 0 {
                continue;
            }
            // Text byte i, following the circular buffer round its end.
            let place = |i: u64| {
                let p = off + i;
                if p < mda_size {
                    at + p
                } else {
                    at + 512 + (p - mda_size)
                }
            };
            for k in 0..=96 {
                let i = (k * (len - 1)) / 96;
                cases.push((
                    disk,
                    format!("{} mda {m} text byte {i}", pv.volume),
                    Damage::Flip(place(i)),
                ));
            }
            for k in 0..8 {
                let i = (k * len) / 8 + 1;
                cases.push((
                    disk,
                    format!("{} cut in mda {m} text at {i}", pv.volume),
                    Damage::Truncate(place(i)),
                ));
            }
        }
        if let Some(d) = pv.scan.data_offset {
            cases.push((
                disk,
                format!("{} cut at pe_start", pv.volume),
                Damage::Truncate(base + d),
            ));
            cases.push((
                disk,
                format!("{} cut after pe_start", pv.volume),
                Damage::Truncate(base + d + 4096),
            ));
        }
        cases.push((
            disk,
            format!("{} cut before its end", pv.volume),
            Damage::Truncate(base + pv.size - 512),
        ));
    }
    cases
}

fn run_fixture(names: &'static [&'static str]) -> usize {
    let images: Vec<Image> = names
        .iter()
        .map(|n| image::open(&common::fixture(n)).unwrap())
        .collect();
    let good = layers::scan(images.clone());
    assert!(lvm_problems(&good).is_empty(), "{:?}", lvm_problems(&good));
    assert!(!good.groups.is_empty());
    let cases = cases_for(&good, &images);
    for (disk, what, damage) in &cases {
        let mut imgs = images.clone();
        let base = Arc::clone(&images[*disk].source);
        let (size, flip) = match *damage {
            Damage::Flip(at) => (base.size(), Some(at)),
            Damage::Truncate(at) => (at, None),
        };
        imgs[*disk] = Image::from_source(
            images[*disk].path.clone(),
            Arc::new(Damaged { base, size, flip }),
            ImageFormat::Raw,
        );
        let l = layers::scan(imgs);
        let problems = lvm_problems(&l);
        assert!(
            !problems.is_empty(),
            "{}: {what} ({damage:?}) went unnoticed; all problems: {:?}",
            names.join("+"),
            l.all_problems()
        );
        // Whatever is still shown stays readable through its mapping or says why not.
        for v in &l.volumes {
            let _ = v.mapping.unreadable();
        }
    }
    cases.len()
}

/// Run `f` on a thread and fail if it takes longer than `secs` (a hang).
fn within(secs: u64, f: fn() -> usize) -> usize {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(n) => n,
        Err(_) => {
            // A panic on the thread shows as a closed channel: report it.
            if h.is_finished() {
                match h.join() {
                    Err(e) => std::panic::resume_unwind(e),
                    Ok(()) => panic!("worker ended without a result"),
                }
            }
            panic!("corruption cases did not finish within {secs} s: a hang?");
        }
    }
}

#[test]
fn damaged_gpt_two_disk_vg() {
    let n = within(600, || run_fixture(&["lvm-gpt", "lvm-gpt-disk1"]));
    assert!(n > 3000, "{n} cases");
}

#[test]
fn damaged_wrapped_and_two_copy_metadata() {
    let n = within(600, || run_fixture(&["lvm-wrap"]));
    assert!(n > 2000, "{n} cases");
}

#[test]
fn damaged_segment_types_vg() {
    let n = within(600, || run_fixture(&["lvm-types"]));
    assert!(n > 1000, "{n} cases");
}
