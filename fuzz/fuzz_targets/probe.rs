//! The content probe on arbitrary bytes: every magic table entry, read both
//! from a buffer and through a byte source (the staged reads must agree
//! with the buffer whenever they find something, but for labels read from
//! elsewhere — FAT/exFAT root directories, NTFS's $Volume, Joliet — and MD
//! superblocks at the end, which only a source has).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::io::ReadAt;
use vmrescue::layers::probe::{self, ContentKind};

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    let src: &dyn ReadAt = &bytes;
    let staged = probe::probe(src);
    let direct = probe::probe_bytes(data);
    if !matches!(direct.kind, ContentKind::Zeros | ContentKind::Unknown)
        && staged.kind != ContentKind::MdRaid
    {
        let (mut s, mut d) = (staged.clone(), direct.clone());
        if matches!(
            d.kind,
            ContentKind::Vfat | ContentKind::Exfat | ContentKind::Ntfs | ContentKind::Iso9660
        ) {
            s.label = None;
            d.label = None;
        }
        assert_eq!(s, d, "staged reads decided differently");
    }
    let _ = staged.describe();
});
