//! A whole scan (partition tables, probe, LVM2, the tree and its text and
//! JSON forms) of arbitrary bytes taken as a disk image.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::image::{Image, ImageFormat};

fuzz_target!(|data: &[u8]| {
    let image = Image::from_source("fuzz.img", Arc::new(data.to_vec()), ImageFormat::Raw);
    let layout = vmrescue::layers::scan(vec![image]);
    let roots = vmrescue::layers::tree::build(&layout);
    let _ = vmrescue::layers::tree::render_text(&roots);
    let _ = serde_json_len(&roots);
    let _ = layout.all_problems();
    for v in &layout.volumes {
        let _ = layout.find_volume(&v.name);
    }
});

fn serde_json_len(roots: &[vmrescue::layers::tree::Node]) -> usize {
    format!("{roots:?}").len()
}
