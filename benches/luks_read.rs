//! AES-XTS decryption throughput of a LUKS2 volume read through vmrescue's
//! reader (`layers::luks`), against `cryptsetup benchmark -c aes-xts-plain64
//! -s 512` (the kernel's aes-xts, in memory) measured in the same run.
//!
//! `cargo bench --bench luks_read`. The volume (256 MiB, `VMRESCUE_BENCH_MIB`
//! sets another size) is made in memory with a LUKS2 header and a pbkdf2
//! keyslot, so the figure is the cipher and the reader, not a disk. Prints
//! MiB/s (best of three) on one thread (the sector cipher alone) and through
//! the reader (4 MiB reads, decrypted on several threads), and the ratio to
//! cryptsetup's decryption figure (above 1: vmrescue is faster); asserts
//! nothing about time. Without cryptsetup (or its kernel crypto API) the
//! ratio is said to be unavailable.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use vmrescue::io::ReadAt;
use vmrescue::layers::luks::{self, crypto, make};

const CHUNK: usize = 4 << 20;

/// cryptsetup's aes-xts 512-bit decryption figure in MiB/s, or why not.
fn cryptsetup_figure() -> Result<f64, String> {
    let out = Command::new("cryptsetup")
        .args(["benchmark", "-c", "aes-xts-plain64", "-s", "512"])
        .output()
        .map_err(|e| format!("cryptsetup: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "        aes-xts        512b      2345.6 MiB/s      2350.1 MiB/s"
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 6 && w[0] == "aes-xts" && w[1] == "512b" {
            return w[4]
                .parse()
                .map_err(|_| format!("cryptsetup: cannot read {line:?}"));
        }
    }
    Err(format!(
        "cryptsetup benchmark gave no aes-xts figure: {}{}",
        text.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

fn best_of_three(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    // `cargo test --all-targets` runs bench programs too, without `--bench`:
    // then a 4 MiB smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let mib: usize = if full {
        std::env::var("VMRESCUE_BENCH_MIB")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256)
    } else {
        4
    };
    let payload = vec![0x5au8; mib << 20];
    let img = make::make(&make::Spec {
        payload: &payload,
        ..make::Spec::default()
    });
    drop(payload);
    let src: Arc<dyn ReadAt> = Arc::new(img);
    let h = luks::header::read(&*src).unwrap();
    let (key, _) = luks::unlock(&*src, &h, b"secret").unwrap();
    let vol = luks::Decrypted::new(Arc::clone(&src), &h, &key).unwrap();
    let size = vol.size() as usize;
    let mb = size as f64 / f64::from(1 << 20);

    // One thread, the sector cipher alone, over a 4 MiB buffer again and again.
    let cipher = crypto::SectorCipher::new(&h.cipher, &key).unwrap();
    let mut buf = vec![0u8; CHUNK];
    let one = best_of_three(|| {
        for i in 0..size / CHUNK {
            cipher.decrypt_sectors(&mut buf, 512, (i * CHUNK / 512) as u64);
        }
    });
    // Through the reader: 4 MiB reads, as a copy does.
    let reader = best_of_three(|| {
        let mut at = 0usize;
        while at < size {
            let n = CHUNK.min(size - at);
            vol.read_exact_at(at as u64, &mut buf[..n]).unwrap();
            at += n;
        }
    });
    let one = mb / one;
    let reader = mb / reader;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("luks_read: aes-xts-plain64 512-bit key, {mib} MiB, {threads} cores");
    println!("  vmrescue, one thread:       {one:8.1} MiB/s");
    println!("  vmrescue, reader:           {reader:8.1} MiB/s");
    match cryptsetup_figure() {
        Ok(cs) => {
            println!(
                "  cryptsetup benchmark:       {cs:8.1} MiB/s (decryption, kernel, one thread)"
            );
            println!(
                "  ratio one thread / cryptsetup: {:.2}; reader / cryptsetup: {:.2}",
                one / cs,
                reader / cs
            );
        }
        Err(why) => println!("  cryptsetup figure unavailable, no ratio: {why}"),
    }
}
