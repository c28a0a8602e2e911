//! Disks made from fuzz input, scanned together, and the volumes of one
//! kind exercised: shared by the layout fuzz targets (LDM, MD).

use std::sync::Arc;

use vmrescue::image::ImageFormat;
use vmrescue::io::ReadAt;
use vmrescue::layers::{DiskOrigin, DiskSource, Layout, ScanOptions, VolumeKind, scan_sources, tree};

/// A raw disk `d<i>.img` holding `bytes`.
pub fn raw_disk(i: usize, bytes: Vec<u8>) -> DiskSource {
    DiskSource {
        origin: DiskOrigin::Host(format!("d{i}.img").into()),
        source: Arc::new(bytes),
        format: ImageFormat::Raw,
        format_details: Vec::new(),
        snapshot: None,
        problems: Vec::new(),
    }
}

/// Scan `disks` together, draw the tree, list the problems, and read the
/// first bytes of every volume `wanted` picks (and find it by its name).
pub fn scan_and_read(disks: Vec<DiskSource>, wanted: impl Fn(&VolumeKind) -> bool) -> Layout {
    let layout = scan_sources(disks, ScanOptions::default());
    let _ = tree::render_text(&tree::build(&layout));
    let _ = layout.all_problems();
    for v in &layout.volumes {
        if wanted(&v.kind) {
            let src = layout.open_volume(v.id);
            let mut buf = vec![0u8; 4096.min(src.size() as usize)];
            let _ = src.read_exact_at(0, &mut buf);
            let _ = layout.find_volume(&v.name);
        }
    }
    layout
}
