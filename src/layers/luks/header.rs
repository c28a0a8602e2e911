//! LUKS1 (`phdr`) and LUKS2 (binary headers and JSON area) headers, read
//! into one description ([`Header`]). Every number from the image is
//! checked against the volume's size and the bounds below before use.

use base64::Engine as _;
use serde_json::Value;

use super::crypto::{self, Hash};
use crate::error::{Error, Result};
use crate::io::{ReadAt, be};
use crate::problem::Problem;

/// LUKS1 and LUKS2 primary magic.
pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
/// LUKS2 secondary header magic.
pub const MAGIC2: &[u8; 6] = b"SKUL\xba\xbe";

/// The most stripes a keyslot may have (cryptsetup writes 4000).
pub const MAX_STRIPES: u32 = 65_536;
/// The most key-material bytes a keyslot may hold.
pub const MAX_MATERIAL: u64 = 64 << 20;
/// The longest master key (bytes).
pub const MAX_KEY: u32 = 128;
/// The largest LUKS2 header (binary header and JSON area), as the specification bounds it.
pub const MAX_HDR2: u64 = 4 << 20;
/// The most keyslots / digests / segments read from a LUKS2 JSON area.
pub const MAX_ITEMS: usize = 32;
/// The most Argon2 memory (KiB) a keyslot may ask for (cryptsetup's own bound, 4 GiB).
pub const MAX_ARGON2_MEMORY: u32 = 4 << 20;

/// How a keyslot turns a passphrase into its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-HMAC.
    Pbkdf2 {
        /// Its hash.
        hash: Hash,
        /// Iterations.
        iterations: u32,
        /// Salt.
        salt: Vec<u8>,
    },
    /// Argon2i or Argon2id.
    Argon2 {
        /// Which.
        kind: crypto::Argon2Type,
        /// Passes.
        time: u32,
        /// KiB.
        memory: u32,
        /// Lanes.
        cpus: u32,
        /// Salt.
        salt: Vec<u8>,
    },
}

impl Kdf {
    /// `pbkdf2`, `argon2i`, `argon2id`.
    pub fn name(&self) -> &'static str {
        match self {
            Kdf::Pbkdf2 { .. } => "pbkdf2",
            Kdf::Argon2 {
                kind: crypto::Argon2Type::I,
                ..
            } => "argon2i",
            Kdf::Argon2 {
                kind: crypto::Argon2Type::Id,
                ..
            } => "argon2id",
        }
    }
}

/// A keyslot as read, active or not.
#[derive(Clone, Debug)]
pub struct Keyslot {
    /// Its number.
    pub index: u32,
    /// Whether it holds a key (LUKS1's `LUKS_KEY_ENABLED`; every LUKS2 slot listed).
    pub active: bool,
    /// The KDF's name as written (`pbkdf2`, `argon2id`), for a slot that could not be read.
    pub kdf_name: String,
    /// Its KDF, when understood.
    pub kdf: Option<Kdf>,
    /// Byte offset of the key material on the volume.
    pub area_offset: u64,
    /// The cipher of the key material area.
    pub area_cipher: String,
    /// The key length of that cipher (bytes): the KDF's output length.
    pub area_key_bytes: u32,
    /// The length of the key the material hides (the master key's).
    pub key_bytes: u32,
    /// AF stripes.
    pub stripes: u32,
    /// The AF hash.
    pub af_hash: Option<Hash>,
    /// Why it cannot be used (damaged or unsupported), naming the field.
    pub unusable: Option<String>,
}

/// What checks a master key.
#[derive(Clone, Debug)]
pub struct KeyDigest {
    /// PBKDF2 hash.
    pub hash: Hash,
    /// Iterations.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// The expected output.
    pub digest: Vec<u8>,
    /// The keyslots it checks (LUKS1: all).
    pub keyslots: Vec<u32>,
}

/// Everything read from a LUKS header.
#[derive(Clone, Debug)]
pub struct Header {
    /// 1 or 2.
    pub version: u16,
    /// UUID as written.
    pub uuid: String,
    /// LUKS2 label.
    pub label: Option<String>,
    /// LUKS2 subsystem.
    pub subsystem: Option<String>,
    /// The data segment's cipher (`aes-xts-plain64`).
    pub cipher: String,
    /// The master key's length (bytes).
    pub key_bytes: u32,
    /// The LUKS1 header's hash spec, or the digest's hash.
    pub hash: String,
    /// First byte of the encrypted data.
    pub payload_offset: u64,
    /// Its length, or `None` for "to the end of the device".
    pub payload_size: Option<u64>,
    /// Encryption sector size (512 for LUKS1).
    pub sector_size: u32,
    /// IV of the first data sector (LUKS2 `iv_tweak`).
    pub iv_tweak: u64,
    /// Keyslots, in index order.
    pub keyslots: Vec<Keyslot>,
    /// Master key digests.
    pub digests: Vec<KeyDigest>,
    /// Which header copy was used (`primary`, `secondary at byte 16384`).
    pub copy: String,
    /// LUKS2 sequence id of the copy used.
    pub seqid: Option<u64>,
    /// Damage found (one header copy bad, a keyslot unreadable...).
    pub problems: Vec<Problem>,
    /// Why the data segment cannot be decrypted, when it cannot (unsupported cipher...).
    pub unusable: Option<String>,
}

/// A NUL-terminated text field.
fn cstr(b: &[u8], off: usize, len: usize) -> String {
    let f = b.get(off..off + len).unwrap_or(&[]);
    let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// Read the LUKS header of `src` (LUKS1, or LUKS2 with both copies checked).
pub fn read(src: &dyn ReadAt) -> Result<Header> {
    let mut b = [0u8; 592];
    if src.size() < 592 {
        return Err(Error::corrupt(
            "LUKS header",
            0,
            format!(
                "volume of {} bytes is too small for a LUKS header",
                src.size()
            ),
        ));
    }
    src.read_exact_at(0, &mut b)
        .map_err(|e| Error::io("LUKS header at byte 0", e))?;
    let version = be::u16(&b, 6).unwrap_or(0);
    if &b[..6] != MAGIC {
        // A damaged primary LUKS2 header: the secondary may still be there.
        if let Ok(h) = read_luks2(src, true) {
            return Ok(h);
        }
        return Err(Error::corrupt("LUKS header", 0, "no LUKS magic"));
    }
    match version {
        1 => read_luks1(src, &b),
        2 => read_luks2(src, false),
        v => Err(Error::corrupt(
            "LUKS header",
            6,
            format!("version {v} unknown (LUKS1 and LUKS2 are read)"),
        )),
    }
}

fn read_luks1(src: &dyn ReadAt, b: &[u8; 592]) -> Result<Header> {
    let cipher_name = cstr(b, 8, 32);
    let cipher_mode = cstr(b, 40, 32);
    let hash_spec = cstr(b, 72, 32);
    let payload_sectors = be::u32(b, 104).unwrap_or(0);
    let key_bytes = be::u32(b, 108).unwrap_or(0);
    let mk_digest = b[112..132].to_vec();
    let mk_salt = b[132..164].to_vec();
    let mk_iter = be::u32(b, 164).unwrap_or(0);
    let uuid = cstr(b, 168, 40);
    let cipher = format!("{cipher_name}-{cipher_mode}");
    let mut problems = Vec::new();
    if key_bytes == 0 || key_bytes > MAX_KEY {
        return Err(Error::corrupt(
            "LUKS1 header",
            108,
            format!("key length {key_bytes} bytes (expected 1 to {MAX_KEY})"),
        ));
    }
    let payload_offset = u64::from(payload_sectors) * 512;
    if payload_offset > src.size() {
        return Err(Error::corrupt(
            "LUKS1 header",
            104,
            format!(
                "payload offset {payload_sectors} sectors (byte {payload_offset}) is past the volume's end ({} bytes)",
                src.size()
            ),
        ));
    }
    let hash = Hash::from_name(&hash_spec);
    let mut unusable = crypto::check_spec(&cipher, key_bytes as usize).err();
    if let Err(e) = &hash {
        unusable.get_or_insert_with(|| e.clone());
    }
    let mut keyslots = Vec::new();
    for i in 0..8u32 {
        let off = 208 + 48 * i as usize;
        let active = be::u32(b, off).unwrap_or(0);
        let iterations = be::u32(b, off + 4).unwrap_or(0);
        let salt = b[off + 8..off + 40].to_vec();
        let material_sector = be::u32(b, off + 40).unwrap_or(0);
        let stripes = be::u32(b, off + 44).unwrap_or(0);
        let mut slot = Keyslot {
            index: i,
            active: active == 0x00AC_71F3,
            kdf_name: "pbkdf2".into(),
            kdf: hash.clone().ok().map(|hash| Kdf::Pbkdf2 {
                hash,
                iterations,
                salt,
            }),
            area_offset: u64::from(material_sector) * 512,
            area_cipher: cipher.clone(),
            area_key_bytes: key_bytes,
            key_bytes,
            stripes,
            af_hash: hash.clone().ok(),
            unusable: None,
        };
        if active != 0x00AC_71F3 && active != 0x0000_DEAD {
            slot.unusable = Some(format!(
                "state word {active:#010x} is neither enabled nor disabled"
            ));
        }
        if slot.active {
            if slot.unusable.is_none() {
                slot.unusable = check_slot(src, &slot, iterations == 0);
            }
            if let Some(why) = &slot.unusable {
                problems.push(Problem::at(
                    format!("LUKS1 keyslot {i}"),
                    off as u64,
                    why.clone(),
                ));
            }
        }
        keyslots.push(slot);
    }
    let digests = match hash {
        Ok(hash) => vec![KeyDigest {
            hash,
            iterations: mk_iter,
            salt: mk_salt,
            digest: mk_digest,
            keyslots: (0..8).collect(),
        }],
        Err(_) => Vec::new(),
    };
    Ok(Header {
        version: 1,
        uuid,
        label: None,
        subsystem: None,
        cipher,
        key_bytes,
        hash: hash_spec,
        payload_offset,
        payload_size: None,
        sector_size: 512,
        iv_tweak: 0,
        keyslots,
        digests,
        copy: "LUKS1 header".into(),
        seqid: None,
        problems,
        unusable,
    })
}

/// Why a keyslot's numbers cannot be right, if they cannot.
fn check_slot(src: &dyn ReadAt, s: &Keyslot, zero_iterations: bool) -> Option<String> {
    if zero_iterations {
        return Some("PBKDF2 iterations is 0".into());
    }
    if s.stripes == 0 || s.stripes > MAX_STRIPES {
        return Some(format!(
            "{} AF stripes (expected 1 to {MAX_STRIPES})",
            s.stripes
        ));
    }
    let len = u64::from(s.key_bytes) * u64::from(s.stripes);
    if len > MAX_MATERIAL {
        return Some(format!(
            "key material of {len} bytes (the bound is {MAX_MATERIAL})"
        ));
    }
    let end = s.area_offset.checked_add(len.div_ceil(512) * 512);
    if end.is_none_or(|e| e > src.size()) {
        return Some(format!(
            "key material at byte {} ({len} bytes) is past the volume's end ({} bytes)",
            s.area_offset,
            src.size()
        ));
    }
    if let Err(e) = crypto::check_spec(&s.area_cipher, s.area_key_bytes as usize) {
        return Some(e);
    }
    None
}

/// One LUKS2 binary header copy: its fields, and whether its checksum holds.
struct Bin {
    at: u64,
    hdr_size: u64,
    seqid: u64,
    label: String,
    subsystem: String,
    uuid: String,
    json: Vec<u8>,
}

fn read_bin(src: &dyn ReadAt, at: u64, magic: &[u8; 6]) -> Result<Bin> {
    let name = if magic == MAGIC {
        "LUKS2 primary header"
    } else {
        "LUKS2 secondary header"
    };
    let mut b = vec![0u8; 4096];
    if at.checked_add(4096).is_none_or(|e| e > src.size()) {
        return Err(Error::corrupt(name, at, "past the volume's end"));
    }
    src.read_exact_at(at, &mut b)
        .map_err(|e| Error::io(format!("{name} at byte {at}"), e))?;
    if &b[..6] != magic {
        return Err(Error::corrupt(name, at, "bad magic"));
    }
    if be::u16(&b, 6) != Some(2) {
        return Err(Error::corrupt(name, at + 6, "version is not 2"));
    }
    let hdr_size = be::u64(&b, 8).unwrap_or(0);
    if !(hdr_size.is_power_of_two() && (16384..=MAX_HDR2).contains(&hdr_size)) {
        return Err(Error::corrupt(
            name,
            at + 8,
            format!("header size {hdr_size} (expected a power of two from 16384 to {MAX_HDR2})"),
        ));
    }
    let offset = be::u64(&b, 256).unwrap_or(u64::MAX);
    if offset != at {
        return Err(Error::corrupt(
            name,
            at + 256,
            format!("says it is at byte {offset}, found at byte {at}"),
        ));
    }
    let alg = cstr(&b, 72, 32);
    if alg != "sha256" {
        return Err(Error::corrupt(
            name,
            at + 72,
            format!("checksum algorithm {alg} not supported (sha256 is read)"),
        ));
    }
    if at.checked_add(hdr_size).is_none_or(|e| e > src.size()) {
        return Err(Error::corrupt(
            name,
            at + 8,
            format!("header of {hdr_size} bytes goes past the volume's end"),
        ));
    }
    let mut all = vec![0u8; hdr_size as usize];
    src.read_exact_at(at, &mut all)
        .map_err(|e| Error::io(format!("{name} at byte {at}"), e))?;
    let stored = all[448..480].to_vec();
    all[448..512].fill(0);
    let computed = <sha2::Sha256 as sha2::Digest>::digest(&all);
    if computed.as_slice() != stored.as_slice() {
        return Err(Error::corrupt(
            name,
            at + 448,
            "checksum mismatch (SHA-256 over the header and its JSON area)",
        ));
    }
    let json = all.split_off(4096);
    Ok(Bin {
        at,
        hdr_size,
        seqid: be::u64(&b, 16).unwrap_or(0),
        label: cstr(&b, 24, 48),
        subsystem: cstr(&b, 208, 48),
        uuid: cstr(&b, 168, 40),
        json,
    })
}

/// Read both LUKS2 header copies and use the valid one with the higher
/// sequence id. `primary_gone`: the primary's magic is not there.
fn read_luks2(src: &dyn ReadAt, primary_gone: bool) -> Result<Header> {
    let primary = if primary_gone {
        Err(Error::corrupt("LUKS2 primary header", 0, "bad magic"))
    } else {
        read_bin(src, 0, MAGIC)
    };
    // The secondary follows the primary: at its hdr_size, one of the sizes
    // the specification allows.
    let mut candidates: Vec<u64> = Vec::new();
    if let Ok(p) = &primary {
        candidates.push(p.hdr_size);
    }
    let mut s = 16384u64;
    while s <= MAX_HDR2 {
        if !candidates.contains(&s) {
            candidates.push(s);
        }
        s *= 2;
    }
    let mut secondary = Err(Error::corrupt(
        "LUKS2 secondary header",
        candidates.first().copied().unwrap_or(16384),
        "not found",
    ));
    for at in candidates {
        let mut magic = [0u8; 6];
        if at.checked_add(6).is_none_or(|e| e > src.size())
            || src.read_exact_at(at, &mut magic).is_err()
            || &magic != MAGIC2
        {
            continue;
        }
        secondary = read_bin(src, at, MAGIC2);
        break;
    }
    let mut problems = Vec::new();
    let chosen = match (primary, secondary) {
        (Ok(p), Ok(s)) => {
            if p.seqid != s.seqid {
                problems.push(Problem::of(
                    "LUKS2 headers",
                    format!(
                        "the copies differ (sequence id {} in the primary, {} in the secondary at byte {}): the newer is used",
                        p.seqid, s.seqid, s.at
                    ),
                ));
            }
            if s.seqid > p.seqid { s } else { p }
        }
        (Ok(p), Err(e)) => {
            problems.push(Problem::text(format!("{e}: the primary header is used")));
            p
        }
        (Err(e), Ok(s)) => {
            problems.push(Problem::text(format!(
                "{e}: the secondary header at byte {} is used",
                s.at
            )));
            s
        }
        (Err(e), Err(e2)) => {
            return Err(Error::corrupt(
                "LUKS2 header",
                0,
                format!("both copies are damaged ({e}; {e2})"),
            ));
        }
    };
    let mut h = parse_json(src, &chosen)?;
    h.problems.splice(0..0, problems);
    Ok(h)
}

fn json_err(b: &Bin, detail: impl Into<String>) -> Error {
    let name = if b.at == 0 {
        "LUKS2 JSON area"
    } else {
        "LUKS2 secondary JSON area"
    };
    Error::corrupt(name, b.at + 4096, detail)
}

/// A LUKS2 number written as a decimal string (offsets and sizes) or a number.
fn num(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn b64(v: &Value) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The objects of a JSON map keyed by decimal index, in index order.
fn indexed<'a>(b: &Bin, root: &'a Value, what: &str) -> Result<Vec<(u32, &'a Value)>> {
    let map = root
        .get(what)
        .and_then(Value::as_object)
        .ok_or_else(|| json_err(b, format!("no `{what}` object")))?;
    if map.len() > MAX_ITEMS {
        return Err(json_err(
            b,
            format!("{} {what} (the bound is {MAX_ITEMS})", map.len()),
        ));
    }
    let mut out = Vec::new();
    for (k, v) in map {
        let i: u32 = k
            .parse()
            .map_err(|_| json_err(b, format!("{what} key {k:?} is not a number")))?;
        out.push((i, v));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

fn parse_json(src: &dyn ReadAt, b: &Bin) -> Result<Header> {
    let end = b.json.iter().position(|&c| c == 0).unwrap_or(b.json.len());
    let root: Value = serde_json::from_slice(&b.json[..end])
        .map_err(|e| json_err(b, format!("not JSON: {e}")))?;
    let mut problems = Vec::new();
    // The data segment: the first of type crypt.
    let segments = indexed(b, &root, "segments")?;
    let (seg_index, seg) = segments
        .iter()
        .find(|(_, s)| s.get("type").and_then(Value::as_str) == Some("crypt"))
        .ok_or_else(|| json_err(b, "no segment of type crypt"))?;
    let seg_name = format!("segment {seg_index}");
    let payload_offset = seg
        .get("offset")
        .and_then(num)
        .ok_or_else(|| json_err(b, format!("{seg_name}: no offset")))?;
    if payload_offset > src.size() {
        return Err(json_err(
            b,
            format!(
                "{seg_name}: offset {payload_offset} is past the volume's end ({} bytes)",
                src.size()
            ),
        ));
    }
    let payload_size = match seg.get("size") {
        Some(Value::String(s)) if s == "dynamic" => None,
        Some(v) => Some(num(v).ok_or_else(|| json_err(b, format!("{seg_name}: bad size")))?),
        None => return Err(json_err(b, format!("{seg_name}: no size"))),
    };
    if let Some(size) = payload_size
        && payload_offset
            .checked_add(size)
            .is_none_or(|e| e > src.size())
    {
        problems.push(Problem::of(
            format!("LUKS2 {seg_name}"),
            format!(
                "{size} bytes at byte {payload_offset} go past the volume's end ({} bytes): the image may be truncated",
                src.size()
            ),
        ));
    }
    let cipher = seg
        .get("encryption")
        .and_then(Value::as_str)
        .ok_or_else(|| json_err(b, format!("{seg_name}: no encryption")))?
        .to_string();
    let sector_size = seg
        .get("sector_size")
        .and_then(Value::as_u64)
        .unwrap_or(512);
    if !matches!(sector_size, 512 | 1024 | 2048 | 4096) {
        return Err(json_err(
            b,
            format!("{seg_name}: sector size {sector_size} (expected 512 to 4096, a power of two)"),
        ));
    }
    let iv_tweak = seg.get("iv_tweak").and_then(num).unwrap_or(0);
    // Digests.
    let mut digests = Vec::new();
    for (i, d) in indexed(b, &root, "digests")? {
        let kind = d.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "pbkdf2" {
            problems.push(Problem::of(
                format!("LUKS2 digest {i}"),
                format!("type {kind:?} not supported (pbkdf2 is read)"),
            ));
            continue;
        }
        let parsed = (|| {
            let hash = Hash::from_name(d.get("hash")?.as_str()?).ok()?;
            let iterations = u32::try_from(d.get("iterations")?.as_u64()?).ok()?;
            let salt = b64(d.get("salt")?)?;
            let digest = b64(d.get("digest")?)?;
            let keyslots = d
                .get("keyslots")?
                .as_array()?
                .iter()
                .filter_map(|k| num(k).and_then(|k| u32::try_from(k).ok()))
                .collect();
            Some(KeyDigest {
                hash,
                iterations,
                salt,
                digest,
                keyslots,
            })
        })();
        match parsed {
            Some(kd) if kd.iterations > 0 && !kd.digest.is_empty() => digests.push(kd),
            _ => problems.push(Problem::of(
                format!("LUKS2 digest {i}"),
                "damaged (hash, iterations, salt, digest or keyslots missing or bad)",
            )),
        }
    }
    // Keyslots.
    let mut keyslots = Vec::new();
    let mut key_bytes = 0u32;
    for (i, k) in indexed(b, &root, "keyslots")? {
        let (slot, ks) = keyslot2(src, i, k);
        if let Some(why) = &slot.unusable {
            problems.push(Problem::of(format!("LUKS2 keyslot {i}"), why.clone()));
        }
        if key_bytes == 0 {
            key_bytes = ks;
        }
        keyslots.push(slot);
    }
    if key_bytes == 0 {
        // No keyslot: the key length from the cipher's usual one.
        key_bytes = if cipher.contains("xts") { 64 } else { 32 };
    }
    let unusable = crypto::check_spec(&cipher, key_bytes as usize).err();
    let hash = digests
        .first()
        .map(|d| format!("{:?}", d.hash).to_ascii_lowercase())
        .unwrap_or_default();
    Ok(Header {
        version: 2,
        uuid: b.uuid.clone(),
        label: (!b.label.is_empty()).then(|| b.label.clone()),
        subsystem: (!b.subsystem.is_empty()).then(|| b.subsystem.clone()),
        cipher,
        key_bytes,
        hash,
        payload_offset,
        payload_size,
        sector_size: sector_size as u32,
        iv_tweak,
        keyslots,
        digests,
        copy: if b.at == 0 {
            "primary".into()
        } else {
            format!("secondary at byte {}", b.at)
        },
        seqid: Some(b.seqid),
        problems,
        unusable,
    })
}

/// One LUKS2 keyslot, and its key size (the master key's length).
fn keyslot2(src: &dyn ReadAt, index: u32, k: &Value) -> (Keyslot, u32) {
    let mut slot = Keyslot {
        index,
        active: true,
        kdf_name: k
            .pointer("/kdf/type")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        kdf: None,
        area_offset: 0,
        area_cipher: String::new(),
        area_key_bytes: 0,
        key_bytes: 0,
        stripes: 0,
        af_hash: None,
        unusable: None,
    };
    let key_size = k
        .get("key_size")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let why = (|| -> std::result::Result<(), String> {
        let kind = k.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "luks2" {
            return Err(format!("type {kind:?} not supported (luks2 is read)"));
        }
        if key_size == 0 || key_size > MAX_KEY {
            return Err(format!("key size {key_size} (expected 1 to {MAX_KEY})"));
        }
        let af = k.get("af").ok_or("no af object")?;
        if af.get("type").and_then(Value::as_str) != Some("luks1") {
            return Err("AF type is not luks1".into());
        }
        slot.stripes = af
            .get("stripes")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or("AF stripes missing")?;
        slot.af_hash = Some(Hash::from_name(
            af.get("hash")
                .and_then(Value::as_str)
                .ok_or("AF hash missing")?,
        )?);
        let area = k.get("area").ok_or("no area object")?;
        if area.get("type").and_then(Value::as_str) != Some("raw") {
            return Err("area type is not raw".into());
        }
        slot.area_offset = area
            .get("offset")
            .and_then(num)
            .ok_or("area offset missing")?;
        slot.area_cipher = area
            .get("encryption")
            .and_then(Value::as_str)
            .ok_or("area encryption missing")?
            .to_string();
        slot.area_key_bytes = area
            .get("key_size")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0 && v <= MAX_KEY)
            .ok_or("area key size missing or out of bounds")?;
        let kdf = k.get("kdf").ok_or("no kdf object")?;
        let salt = kdf
            .get("salt")
            .and_then(b64)
            .ok_or("KDF salt missing or not base64")?;
        let field = |name: &str| -> std::result::Result<u32, String> {
            kdf.get(name)
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(format!("KDF {name} missing or out of bounds"))
        };
        slot.kdf = Some(match slot.kdf_name.as_str() {
            "pbkdf2" => Kdf::Pbkdf2 {
                hash: Hash::from_name(
                    kdf.get("hash")
                        .and_then(Value::as_str)
                        .ok_or("KDF hash missing")?,
                )?,
                iterations: field("iterations")?.max(1),
                salt,
            },
            "argon2i" | "argon2id" => {
                let memory = field("memory")?;
                if memory > MAX_ARGON2_MEMORY {
                    return Err(format!(
                        "argon2 memory {memory} KiB (the bound is {MAX_ARGON2_MEMORY} KiB)"
                    ));
                }
                Kdf::Argon2 {
                    kind: if slot.kdf_name == "argon2i" {
                        crypto::Argon2Type::I
                    } else {
                        crypto::Argon2Type::Id
                    },
                    time: field("time")?,
                    memory,
                    cpus: field("cpus")?,
                    salt,
                }
            }
            other => {
                return Err(format!(
                    "KDF {other} not supported (pbkdf2, argon2i, argon2id are read)"
                ));
            }
        });
        slot.key_bytes = key_size;
        match check_slot(src, &slot, false) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    })();
    slot.unusable = why.err();
    (slot, key_size)
}
