//! LUKS headers on arbitrary bytes, and LUKS1/LUKS2 volumes made in memory
//! (`layers::luks::make`) with bytes of the input written over their
//! headers and JSON areas (the LUKS2 checksums set right afterwards, so the
//! JSON parser, keyslots and digests are reached): the header read, then an
//! unlock with the volume's passphrase when its KDF costs stay small, and
//! reads of the decrypted volume; then the whole layer scan.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmrescue::image::ImageFormat;
use vmrescue::io::ReadAt;
use vmrescue::layers::luks::{self, header, make};
use vmrescue::layers::{DiskOrigin, DiskSource, ScanOptions, scan_sources};

/// Whether unlocking `h` stays cheap (the fuzzer's memory and time bounds).
fn cheap(h: &header::Header) -> bool {
    h.keyslots.iter().all(|k| match &k.kdf {
        Some(header::Kdf::Pbkdf2 { iterations, .. }) => *iterations <= 5000,
        Some(header::Kdf::Argon2 { memory, time, .. }) => *memory <= 4096 && *time <= 4,
        None => true,
    }) && h.digests.iter().all(|d| d.iterations <= 5000)
}

fn run(img: Vec<u8>) {
    let src: Arc<dyn ReadAt> = Arc::new(img);
    let Ok(h) = header::read(&*src) else { return };
    let _ = luks::LuksSummary::of(&h).describe();
    if !cheap(&h) {
        return;
    }
    if let Ok((key, _)) = luks::unlock(&*src, &h, b"secret")
        && let Ok(d) = luks::Decrypted::new(Arc::clone(&src), &h, &key)
    {
        let mut buf = vec![0u8; 9000];
        for at in [0u64, 1, 511, 4095] {
            let n = (d.size().saturating_sub(at) as usize).min(buf.len());
            let _ = d.read_exact_at(at, &mut buf[..n]);
        }
    }
    let unlock = |r: &luks::UnlockRequest<'_>| {
        (r.attempt == 0).then(|| luks::Secret::new(b"secret".to_vec()))
    };
    let _ = scan_sources(
        vec![DiskSource {
            origin: DiskOrigin::Host("fuzz.img".into()),
            source: src,
            format: ImageFormat::Raw,
            format_details: Vec::new(),
            snapshot: None,
            problems: Vec::new(),
        }],
        ScanOptions {
            unlock: Some(&unlock),
            ..ScanOptions::default()
        },
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => run(rest.to_vec()),
        m => {
            let payload = vec![0u8; 8192];
            let mut img = make::make(&make::Spec {
                version: if m == 1 { 1 } else { 2 },
                kdf: if rest.first().is_some_and(|b| b & 1 == 1) {
                    "argon2id"
                } else {
                    "pbkdf2"
                },
                stripes: 8,
                payload: &payload,
                ..make::Spec::default()
            });
            // Patches: (offset u16 big-endian, length u8, bytes), in the
            // first 16 KiB (LUKS1 header and key material, LUKS2 header and JSON).
            let mut p = rest.get(1..).unwrap_or(&[]);
            while let [a, b, n, tail @ ..] = p {
                let at = usize::from(u16::from_be_bytes([*a, *b])) % 16384;
                let n = usize::from(*n).min(tail.len());
                let end = (at + n).min(img.len());
                img[at..end].copy_from_slice(&tail[..end - at]);
                p = &tail[n..];
            }
            if m == 2 {
                make::reseal(&mut img, 0);
                make::reseal(&mut img, 16384);
            }
            run(img);
        }
    }
});
