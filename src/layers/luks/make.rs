//! LUKS1 and LUKS2 volumes made in memory, for tests, fuzzing seeds and
//! benchmarks: a header with one keyslot opened by a passphrase, and the
//! payload encrypted with the volume key. Not for real use (the "random"
//! bytes are a fixed pattern).

use base64::Engine as _;
use sha2::Digest;

use super::crypto::{self, Hash, SectorCipher};

/// What to make.
pub struct Spec<'a> {
    /// 1 or 2.
    pub version: u16,
    /// Data and keyslot cipher (`aes-xts-plain64`).
    pub cipher: &'a str,
    /// Volume key length in bytes.
    pub key_bytes: usize,
    /// Encryption sector size (LUKS2; LUKS1 is 512).
    pub sector_size: usize,
    /// `pbkdf2` or `argon2id` (LUKS2).
    pub kdf: &'a str,
    /// AF stripes.
    pub stripes: usize,
    /// The passphrase.
    pub pass: &'a [u8],
    /// The plain payload (a multiple of the sector size).
    pub payload: &'a [u8],
    /// LUKS2: the size of each header copy (binary header and JSON area), a
    /// power of two from 16 KiB to 4 MiB; the secondary copy is there.
    pub hdr_size: usize,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            version: 2,
            cipher: "aes-xts-plain64",
            key_bytes: 64,
            sector_size: 512,
            kdf: "pbkdf2",
            stripes: 40,
            pass: b"secret",
            payload: &[],
            hdr_size: 16384,
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// The volume key [`make`] uses.
pub fn volume_key(len: usize) -> Vec<u8> {
    pattern(len, 0x5a)
}

/// Where the key material starts (LUKS2: after both 16 KiB header copies,
/// with the default [`Spec::hdr_size`]).
pub const LUKS2_AREA: usize = 32768;

/// Build a volume: the header, the key material, the encrypted payload.
pub fn make(spec: &Spec<'_>) -> Vec<u8> {
    let key = volume_key(spec.key_bytes);
    let salt = pattern(32, 1);
    let material = crypto::af_split(
        &key,
        &pattern(spec.key_bytes * spec.stripes, 2),
        spec.stripes,
        Hash::Sha256,
    );
    let mut material = material;
    material.resize(material.len().div_ceil(4096) * 4096, 0);
    let mut slot_key = vec![0u8; spec.key_bytes];
    if spec.kdf == "pbkdf2" {
        Hash::Sha256.pbkdf2(spec.pass, &salt, 1000, &mut slot_key);
    } else {
        let _ = crypto::argon2(
            crypto::Argon2Type::Id,
            spec.pass,
            &salt,
            1,
            64,
            1,
            &mut slot_key,
        );
    }
    let Ok(sc) = SectorCipher::new(spec.cipher, &slot_key) else {
        return Vec::new();
    };
    sc.encrypt_sectors(&mut material, 512, 0);
    let mut dsalt = pattern(32, 3);
    let mut digest = vec![0u8; if spec.version == 1 { 20 } else { 32 }];
    Hash::Sha256.pbkdf2(&key, &dsalt, 1000, &mut digest);
    let (area, sector) = if spec.version == 1 {
        (4096, 512)
    } else {
        (spec.hdr_size.saturating_mul(2), spec.sector_size)
    };
    let payload_at = (area + material.len()).div_ceil(4096) * 4096;
    let mut out = vec![0u8; payload_at];
    out[area..area + material.len()].copy_from_slice(&material);
    let mut payload = spec.payload.to_vec();
    // IVs count 512-byte sectors, as dm-crypt's for LUKS.
    if let Ok(dc) = SectorCipher::new(spec.cipher, &key) {
        dc.with_iv_step((sector / 512).max(1) as u64)
            .encrypt_sectors(&mut payload, sector, 0);
    }
    out.extend_from_slice(&payload);
    if spec.version == 1 {
        let (name, mode) = spec
            .cipher
            .split_once('-')
            .unwrap_or(("aes", "xts-plain64"));
        out[..6].copy_from_slice(super::header::MAGIC);
        out[6..8].copy_from_slice(&1u16.to_be_bytes());
        out[8..8 + name.len()].copy_from_slice(name.as_bytes());
        out[40..40 + mode.len()].copy_from_slice(mode.as_bytes());
        out[72..78].copy_from_slice(b"sha256");
        out[104..108].copy_from_slice(&((payload_at / 512) as u32).to_be_bytes());
        out[108..112].copy_from_slice(&(spec.key_bytes as u32).to_be_bytes());
        out[112..132].copy_from_slice(&digest);
        out[132..164].copy_from_slice(&dsalt);
        out[164..168].copy_from_slice(&1000u32.to_be_bytes());
        let uuid = b"3f0a1b2c-0000-4000-8000-00000000abcd";
        out[168..168 + uuid.len()].copy_from_slice(uuid);
        for i in 0..8 {
            let o = 208 + 48 * i;
            let active: u32 = if i == 0 { 0x00AC_71F3 } else { 0x0000_DEAD };
            out[o..o + 4].copy_from_slice(&active.to_be_bytes());
            if i == 0 {
                out[o + 4..o + 8].copy_from_slice(&1000u32.to_be_bytes());
                out[o + 8..o + 40].copy_from_slice(&salt);
                out[o + 40..o + 44].copy_from_slice(&((area / 512) as u32).to_be_bytes());
            }
            out[o + 44..o + 48].copy_from_slice(&(spec.stripes as u32).to_be_bytes());
        }
        return out;
    }
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let kdf = if spec.kdf == "pbkdf2" {
        serde_json::json!({"type": "pbkdf2", "hash": "sha256", "iterations": 1000, "salt": b64(&salt)})
    } else {
        serde_json::json!({"type": "argon2id", "time": 1, "memory": 64, "cpus": 1, "salt": b64(&salt)})
    };
    let json = serde_json::json!({
        "keyslots": {"0": {
            "type": "luks2", "key_size": spec.key_bytes,
            "af": {"type": "luks1", "stripes": spec.stripes, "hash": "sha256"},
            "area": {"type": "raw", "offset": area.to_string(), "size": material.len().to_string(),
                     "encryption": spec.cipher, "key_size": spec.key_bytes},
            "kdf": kdf,
        }},
        "tokens": {},
        "segments": {"0": {
            "type": "crypt", "offset": payload_at.to_string(), "size": "dynamic",
            "iv_tweak": "0", "encryption": spec.cipher, "sector_size": spec.sector_size,
        }},
        "digests": {"0": {
            "type": "pbkdf2", "keyslots": ["0"], "segments": ["0"], "hash": "sha256",
            "iterations": 1000, "salt": b64(&dsalt), "digest": b64(&digest),
        }},
        "config": {"json_size": (spec.hdr_size - 4096).to_string(), "keyslots_size": (payload_at - area).to_string()},
    });
    let text = json.to_string();
    for (at, magic) in [
        (0usize, super::header::MAGIC),
        (spec.hdr_size, super::header::MAGIC2),
    ] {
        let h = &mut out[at..at + spec.hdr_size];
        h.fill(0);
        h[..6].copy_from_slice(magic);
        h[6..8].copy_from_slice(&2u16.to_be_bytes());
        h[8..16].copy_from_slice(&(spec.hdr_size as u64).to_be_bytes());
        h[16..24].copy_from_slice(&7u64.to_be_bytes());
        h[24..29].copy_from_slice(b"tests");
        h[72..78].copy_from_slice(b"sha256");
        let uuid = b"3f0a1b2c-0000-4000-8000-00000000abcd";
        h[168..168 + uuid.len()].copy_from_slice(uuid);
        h[256..264].copy_from_slice(&(at as u64).to_be_bytes());
        h[4096..4096 + text.len()].copy_from_slice(text.as_bytes());
        let sum = sha2::Sha256::digest(&*h);
        h[448..480].copy_from_slice(&sum);
    }
    dsalt.fill(0);
    out
}

/// Write a new checksum into the LUKS2 header copy at `at` of `img`
/// (after a test changed its JSON). A header whose size field does not fit
/// in `img` (or is shorter than the binary header) is left as it is.
pub fn reseal(img: &mut [u8], at: usize) {
    let size = img
        .get(at + 8..at + 16)
        .and_then(|b| b.try_into().ok())
        .map_or(16384, u64::from_be_bytes);
    let Some(h) = usize::try_from(size)
        .ok()
        .filter(|&n| n >= 512)
        .and_then(|n| img.get_mut(at..at.checked_add(n)?))
    else {
        return;
    };
    h[448..512].fill(0);
    let sum = sha2::Sha256::digest(&*h);
    h[448..480].copy_from_slice(&sum);
}
