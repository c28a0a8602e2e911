//! LUKS1 and LUKS2 encrypted volumes, unlocked in userspace.
//!
//! [`header::read`] reads the header (LUKS2: both copies, checksums
//! checked, the newer valid copy used); [`unlock`] turns a passphrase into
//! the volume key (keyslot KDF → key material decrypted → AF-merge →
//! checked against the digest); [`Decrypted`] reads the plain bytes of the
//! data segment, sector by sector, as a [`ReadAt`] the layer scan reads
//! again as a disk. Keys live in memory only and are wiped when dropped.

pub mod crypto;
pub mod header;
pub mod make;

use std::sync::Arc;

use crate::io::{ReadAt, past_end};
pub use crypto::Secret;
pub use header::Header;

/// One keyslot as `layers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyslotSummary {
    /// Its number.
    pub index: u32,
    /// `pbkdf2`, `argon2i`, `argon2id`.
    pub kdf: String,
    /// `active`, `inactive`, or `damaged` (the reason is a problem).
    pub state: String,
}

/// What `layers` shows of a LUKS volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LuksSummary {
    /// 1 or 2.
    pub version: u16,
    /// Its UUID.
    pub uuid: String,
    /// The LUKS2 label.
    pub label: Option<String>,
    /// Cipher and mode (`aes-xts-plain64`).
    pub cipher: String,
    /// Master key length in bits.
    pub key_bits: u32,
    /// Encryption sector size in bytes.
    pub sector_size: u32,
    /// First byte of the encrypted data.
    pub payload_offset: u64,
    /// The header copy used (`primary`, `secondary at byte 16384`, `LUKS1 header`).
    pub header: String,
    /// The keyslots.
    pub keyslots: Vec<KeyslotSummary>,
    /// The keyslot that opened it, once unlocked.
    pub unlocked_by: Option<u32>,
}

impl LuksSummary {
    /// From a header read.
    pub fn of(h: &Header) -> LuksSummary {
        LuksSummary {
            version: h.version,
            uuid: h.uuid.clone(),
            label: h.label.clone(),
            cipher: h.cipher.clone(),
            key_bits: h.key_bytes.saturating_mul(8),
            sector_size: h.sector_size,
            payload_offset: h.payload_offset,
            header: h.copy.clone(),
            keyslots: h
                .keyslots
                .iter()
                .filter(|k| k.active || h.version == 1)
                .map(|k| KeyslotSummary {
                    index: k.index,
                    kdf: k.kdf_name.clone(),
                    state: if !k.active {
                        "inactive"
                    } else if k.unusable.is_some() {
                        "damaged"
                    } else {
                        "active"
                    }
                    .into(),
                })
                .collect(),
            unlocked_by: None,
        }
    }

    /// One line: `LUKS2 aes-xts-plain64 512-bit, keyslots 0 argon2id, 1 pbkdf2`.
    pub fn describe(&self) -> String {
        let slots: Vec<String> = self
            .keyslots
            .iter()
            .filter(|k| k.state != "inactive")
            .map(|k| {
                if k.state == "active" {
                    format!("{} {}", k.index, k.kdf)
                } else {
                    format!("{} {} ({})", k.index, k.kdf, k.state)
                }
            })
            .collect();
        let mut s = format!(
            "{} {}-bit, sector {}, keyslots {}",
            self.cipher,
            self.key_bits,
            self.sector_size,
            if slots.is_empty() {
                "none".to_string()
            } else {
                slots.join(", ")
            }
        );
        match self.unlocked_by {
            Some(k) => s.push_str(&format!("; unlocked with keyslot {k}")),
            None => s.push_str("; locked"),
        }
        s
    }
}

/// Why [`unlock`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockError {
    /// No keyslot opened with the passphrase (the slots tried are listed).
    WrongPassphrase(String),
    /// The volume cannot be unlocked at all (no usable keyslot, unsupported cipher...).
    Unusable(String),
}

impl std::fmt::Display for UnlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnlockError::WrongPassphrase(s) | UnlockError::Unusable(s) => f.write_str(s),
        }
    }
}

/// The volume key from `pass`, trying each usable active keyslot in order;
/// returns the key and the keyslot that opened.
pub fn unlock(src: &dyn ReadAt, h: &Header, pass: &[u8]) -> Result<(Secret, u32), UnlockError> {
    if let Some(why) = &h.unusable {
        return Err(UnlockError::Unusable(why.clone()));
    }
    let mut tried = Vec::new();
    let mut failures = Vec::new();
    for slot in h.keyslots.iter().filter(|k| k.active) {
        if let Some(why) = &slot.unusable {
            failures.push(format!("keyslot {}: {why}", slot.index));
            continue;
        }
        tried.push(slot.index.to_string());
        match try_slot(src, h, slot, pass) {
            Ok(Some(key)) => return Ok((key, slot.index)),
            Ok(None) => {}
            Err(e) => failures.push(format!("keyslot {}: {e}", slot.index)),
        }
    }
    if tried.is_empty() {
        let mut why = "no usable keyslot".to_string();
        if !failures.is_empty() {
            why.push_str(&format!(" ({})", failures.join("; ")));
        }
        return Err(UnlockError::Unusable(why));
    }
    let mut why = format!(
        "no keyslot opens with this passphrase (tried keyslot {}): wrong passphrase, or the keyslot's key material is damaged",
        tried.join(", ")
    );
    if !failures.is_empty() {
        why.push_str(&format!("; {}", failures.join("; ")));
    }
    Err(UnlockError::WrongPassphrase(why))
}

/// The key slot `slot` hides, if `pass` opens it.
fn try_slot(
    src: &dyn ReadAt,
    h: &Header,
    slot: &header::Keyslot,
    pass: &[u8],
) -> Result<Option<Secret>, String> {
    let kdf = slot.kdf.as_ref().ok_or("KDF not understood")?;
    let af_hash = slot.af_hash.ok_or("AF hash not understood")?;
    let mut slot_key = Secret::new(vec![0u8; slot.area_key_bytes as usize]);
    match kdf {
        header::Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => hash.pbkdf2(pass, salt, *iterations, &mut slot_key),
        header::Kdf::Argon2 {
            kind,
            time,
            memory,
            cpus,
            salt,
        } => crypto::argon2(*kind, pass, salt, *time, *memory, *cpus, &mut slot_key)?,
    }
    let cipher = crypto::SectorCipher::new(&slot.area_cipher, &slot_key)?;
    let len = u64::from(slot.key_bytes) * u64::from(slot.stripes);
    let mut material = Secret::new(
        crate::io::read_vec(
            src,
            slot.area_offset,
            len.div_ceil(512) * 512,
            header::MAX_MATERIAL,
        )
        .map_err(|e| format!("key material at byte {}: {e}", slot.area_offset))?,
    );
    cipher.decrypt_sectors(&mut material, 512, 0);
    let key = crypto::af_merge(
        &material,
        slot.key_bytes as usize,
        slot.stripes as usize,
        af_hash,
    )
    .ok_or("key material shorter than its stripes")?;
    let checked = h
        .digests
        .iter()
        .filter(|d| d.keyslots.contains(&slot.index))
        .any(|d| {
            let mut out = Secret::new(vec![0u8; d.digest.len()]);
            d.hash.pbkdf2(&key, &d.salt, d.iterations, &mut out);
            crypto::same(&out, &d.digest)
        });
    Ok(checked.then_some(key))
}

/// The plain bytes of a LUKS volume's data segment.
pub struct Decrypted {
    src: Arc<dyn ReadAt>,
    start: u64,
    size: u64,
    sector: u64,
    iv_tweak: u64,
    /// The sector size in 512-byte units: IVs count 512-byte sectors, as
    /// dm-crypt's do when cryptsetup opens LUKS1 or LUKS2.
    iv_unit: u64,
    cipher: crypto::SectorCipher,
}

/// What the kernel's dm-crypt needs to show the same plain bytes as
/// [`Decrypted`]: the `crypt` target's parameters. The key is wiped when
/// this is dropped and never shown (`Debug` leaves it out).
pub struct DmCrypt {
    /// The cipher as dm-crypt spells it (`aes-xts-plain64`, `aes-cbc-essiv:sha256`).
    pub cipher: String,
    key: Secret,
    /// The IV's sector number at the first byte of the data, in 512-byte
    /// sectors (LUKS2 `iv_tweak`; 0 for LUKS1).
    pub iv_offset: u64,
    /// Encryption sector size in bytes (`sector_size:` above 512).
    pub sector_size: u32,
    /// First byte of the encrypted data on the LUKS volume.
    pub offset: u64,
    /// Bytes of plain data (as [`Decrypted`] reads them).
    pub size: u64,
}

impl DmCrypt {
    /// Parameters for `cipher` with `key`, the data at byte `offset` of
    /// the LUKS volume, `size` bytes of it, IVs from `iv_offset` (in
    /// 512-byte sectors), sectors of `sector_size` bytes.
    pub fn new(
        cipher: &str,
        key: &[u8],
        iv_offset: u64,
        sector_size: u32,
        offset: u64,
        size: u64,
    ) -> DmCrypt {
        DmCrypt {
            cipher: cipher.to_string(),
            key: Secret::new(key.to_vec()),
            iv_offset,
            sector_size,
            offset,
            size,
        }
    }

    /// The volume key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl std::fmt::Debug for DmCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmCrypt")
            .field("cipher", &self.cipher)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("iv_offset", &self.iv_offset)
            .field("sector_size", &self.sector_size)
            .field("offset", &self.offset)
            .field("size", &self.size)
            .finish()
    }
}

/// Reads at least this long are decrypted on several threads.
const PARALLEL_FROM: usize = 256 << 10;

impl Decrypted {
    /// The data segment of `h` on `src`, decrypted with `key`.
    pub fn new(src: Arc<dyn ReadAt>, h: &Header, key: &[u8]) -> Result<Decrypted, String> {
        let sector = u64::from(h.sector_size.max(512));
        let iv_unit = sector / 512;
        let cipher = crypto::SectorCipher::new(&h.cipher, key)?.with_iv_step(iv_unit);
        let avail = src.size().saturating_sub(h.payload_offset);
        let size = h.payload_size.map_or(avail, |s| s.min(avail));
        Ok(Decrypted {
            src,
            start: h.payload_offset,
            size: size - size % sector,
            sector,
            iv_tweak: h.iv_tweak,
            iv_unit,
            cipher,
        })
    }

    /// The dm-crypt parameters that show these same plain bytes.
    pub fn dm_crypt(&self, h: &Header, key: &[u8]) -> DmCrypt {
        DmCrypt::new(
            &h.cipher,
            key,
            self.iv_tweak,
            self.sector as u32,
            self.start,
            self.size,
        )
    }

    /// The IV sector number of data sector `n`.
    fn iv_of(&self, n: u64) -> u64 {
        self.iv_tweak.wrapping_add(n.wrapping_mul(self.iv_unit))
    }

    /// Decrypt whole sectors in place, the first being sector `first`.
    fn decrypt(&self, buf: &mut [u8], first: u64) {
        let sector = self.sector as usize;
        // 1 on a copy job's reader threads, which share the work already.
        let threads = crate::io::parallelism().min(8);
        if buf.len() < PARALLEL_FROM || threads < 2 {
            self.cipher.decrypt_sectors(buf, sector, self.iv_of(first));
            return;
        }
        let per = buf.len().div_ceil(threads).div_ceil(sector) * sector;
        // The first part on this thread, the others on scoped threads.
        let (head, rest) = buf.split_at_mut(per.min(buf.len()));
        std::thread::scope(|s| {
            for (i, chunk) in rest.chunks_mut(per).enumerate() {
                let n = first.wrapping_add(((i + 1) * per / sector) as u64);
                let iv = self.iv_of(n);
                s.spawn(move || self.cipher.decrypt_sectors(chunk, sector, iv));
            }
            self.cipher.decrypt_sectors(head, sector, self.iv_of(first));
        });
    }
}

impl ReadAt for Decrypted {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(past_end(offset, buf.len(), self.size));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let first = offset / self.sector;
        let at = self.start + first * self.sector;
        if offset.is_multiple_of(self.sector) && len.is_multiple_of(self.sector) {
            self.src.read_exact_at(at, buf)?;
            self.decrypt(buf, first);
            return Ok(());
        }
        let end = (offset + len).div_ceil(self.sector);
        let mut tmp = vec![0u8; ((end - first) * self.sector) as usize];
        self.src.read_exact_at(at, &mut tmp)?;
        self.decrypt(&mut tmp, first);
        let skip = (offset - first * self.sector) as usize;
        buf.copy_from_slice(&tmp[skip..skip + buf.len()]);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// What the scan asks of whoever holds the passphrases.
pub struct UnlockRequest<'a> {
    /// The volume's name (`p3`, `vg/lv`).
    pub volume: &'a str,
    /// Its header, as `layers` shows it.
    pub luks: &'a LuksSummary,
    /// 0 for the first ask; 1, 2 after a wrong passphrase.
    pub attempt: u32,
}

/// Gives the passphrase for a LUKS volume, or `None` (no key: the volume
/// stays locked). Asked again after a wrong passphrase, up to [`MAX_ATTEMPTS`] times.
pub type Unlocker<'a> = &'a dyn Fn(&UnlockRequest<'_>) -> Option<Secret>;

/// How many passphrases are asked for one volume at most.
pub const MAX_ATTEMPTS: u32 = 3;

/// What opening a LUKS volume for the scan came to.
pub enum Opened {
    /// Unlocked: its plain bytes, its summary (with the keyslot used), and
    /// what dm-crypt needs to show the same bytes (the kernel engine).
    Unlocked(Arc<dyn ReadAt>, LuksSummary, Arc<DmCrypt>),
    /// Not unlocked: the summary, and the reason (a problem when
    /// `damage`, else a note: no key given).
    Locked {
        /// What `layers` shows.
        summary: Option<LuksSummary>,
        /// Why.
        why: String,
        /// Whether that is damage or a wrong key rather than no key given.
        damage: bool,
    },
}

/// Read the LUKS header of `src` (the volume `name`) and unlock it with
/// passphrases from `unlocker`. Problems of the header go to `problems`.
pub fn open(
    src: &Arc<dyn ReadAt>,
    name: &str,
    unlocker: Option<Unlocker<'_>>,
    problems: &mut Vec<crate::problem::Problem>,
) -> Opened {
    let h = match header::read(&**src) {
        Ok(h) => h,
        Err(e) => {
            return Opened::Locked {
                summary: None,
                why: e.to_string(),
                damage: true,
            };
        }
    };
    problems.extend(h.problems.iter().cloned());
    let mut summary = LuksSummary::of(&h);
    if let Some(why) = &h.unusable {
        return Opened::Locked {
            summary: Some(summary),
            why: why.clone(),
            damage: true,
        };
    }
    let Some(unlocker) = unlocker else {
        return no_key(summary);
    };
    let mut last = None;
    for attempt in 0..MAX_ATTEMPTS {
        let req = UnlockRequest {
            volume: name,
            luks: &summary,
            attempt,
        };
        let Some(pass) = unlocker(&req) else { break };
        match unlock(&**src, &h, &pass) {
            Ok((key, slot)) => match Decrypted::new(Arc::clone(src), &h, &key) {
                Ok(d) => {
                    summary.unlocked_by = Some(slot);
                    let dm = Arc::new(d.dm_crypt(&h, &key));
                    return Opened::Unlocked(Arc::new(d), summary, dm);
                }
                Err(why) => {
                    return Opened::Locked {
                        summary: Some(summary),
                        why,
                        damage: true,
                    };
                }
            },
            Err(UnlockError::Unusable(why)) => {
                return Opened::Locked {
                    summary: Some(summary),
                    why,
                    damage: true,
                };
            }
            Err(UnlockError::WrongPassphrase(why)) => last = Some(why),
        }
    }
    match last {
        Some(why) => Opened::Locked {
            summary: Some(summary),
            why,
            damage: true,
        },
        None => no_key(summary),
    }
}

fn no_key(summary: LuksSummary) -> Opened {
    Opened::Locked {
        summary: Some(summary),
        why: "locked: give --key-file or run on a terminal to unlock it".into(),
        damage: false,
    }
}

#[cfg(test)]
mod tests;
