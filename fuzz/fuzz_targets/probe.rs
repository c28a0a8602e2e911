//! The content probe on arbitrary bytes: every magic table entry, read both
//! from a buffer and through a byte source (the staged reads must agree
//! with the buffer whenever they find something).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::io::ReadAt;
use vmrescue::layers::probe::{self, ContentKind};

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    let src: &dyn ReadAt = &bytes;
    let staged = probe::probe(src);
    let direct = probe::probe_bytes(data);
    if !matches!(direct.kind, ContentKind::Zeros | ContentKind::Unknown) {
        assert_eq!(staged, direct, "staged reads decided differently");
    }
    let _ = staged.describe();
});
