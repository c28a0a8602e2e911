//! A whole scan (partition tables, probe, LVM2, the tree and its text and
//! JSON forms) of arbitrary bytes taken as a disk image, searched for lost
//! volumes too; and the same bytes placed at 1 MiB of an empty disk, where
//! the search for lost volumes looks.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::image::{Image, ImageFormat};

fuzz_target!(|data: &[u8]| {
    let image = Image::from_source("fuzz.img", Arc::new(data.to_vec()), ImageFormat::Raw);
    let search = vmrescue::layers::ScanOptions {
        search: true,
        ..Default::default()
    };
    let layout = vmrescue::layers::scan_with(vec![image], search);
    let roots = vmrescue::layers::tree::build(&layout);
    let _ = vmrescue::layers::tree::render_text(&roots);
    let _ = serde_json_len(&roots);
    let _ = layout.all_problems();
    for v in &layout.volumes {
        let _ = layout.find_volume(&v.name);
    }
    let shifted: Arc<dyn vmrescue::io::ReadAt> = Arc::new(AtOneMib(data.to_vec()));
    let found = vmrescue::layers::recover::search(&shifted, None);
    for f in &found.found {
        assert!(f.start.saturating_add(f.size) <= shifted.size());
        let _ = f.describe();
    }
});

/// `data` at byte 1 MiB of a disk that is zeros before it.
struct AtOneMib(Vec<u8>);

impl vmrescue::io::ReadAt for AtOneMib {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        const MIB: u64 = 1 << 20;
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            *b = if at < MIB {
                0
            } else {
                self.0[(at - MIB) as usize]
            };
        }
        let _ = end;
        Ok(())
    }
    fn size(&self) -> u64 {
        (1 << 20) + self.0.len() as u64
    }
}

fn serde_json_len(roots: &[vmrescue::layers::tree::Node]) -> usize {
    format!("{roots:?}").len()
}
