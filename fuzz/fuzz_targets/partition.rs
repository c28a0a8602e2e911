//! Partition tables (MBR, EBR chain, GPT) and the content probe on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::io::ReadAt;

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    let src: &dyn ReadAt = &bytes;
    let _ = vmrescue::layers::partition::read(src);
    let _ = vmrescue::layers::probe::probe(src);
});
