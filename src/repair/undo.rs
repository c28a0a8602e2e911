//! Writing repair bytes with an undo record, and undoing them.
//!
//! Before any byte of an image changes, the old bytes of every range that
//! will be written (and a SHA-256 of the new ones) are saved to an undo file
//! on the host and synced. Then the new bytes are written, synced, read back
//! and compared. `vmrescue undo FILE` puts the old bytes back, after checking
//! that the image still holds exactly what vmrescue wrote.
//!
//! The bytes go through a [`WriteAt`]: a host file or device, or a disk on
//! the network (an NBD export, an RBD image), whose records are keyed by
//! its URI (`nbd://…`, `rbd:POOL/IMAGE`) in the same `image` field that
//! holds a host file's path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::io::{DiskId, HostWriter, WriteAt};

/// One range of an image to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteWrite {
    /// Byte offset in the image file.
    pub offset: u64,
    /// What is there now (checked before writing).
    pub old: Vec<u8>,
    /// What to write.
    pub new: Vec<u8>,
}

/// A set of writes to one image file, with a description for the undo record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    /// The image file (raw image or block device), or a network disk's key
    /// (`nbd://…`, `rbd:POOL/IMAGE`).
    pub image: PathBuf,
    /// The disk of the layout written, for a network disk (its writer
    /// comes from its reader); `None` for a host file.
    pub disk: Option<DiskId>,
    /// What the writes do ("relink /lib64/libc.so.6: … → libc-2.12.so").
    pub description: String,
    /// The ranges.
    pub writes: Vec<ByteWrite>,
}

impl WritePlan {
    /// How the browser names the disk written: a host file's name, a
    /// network disk's URI (`rbd:POOL/IMAGE` without the options that reach
    /// the cluster).
    pub fn shown_image(&self) -> String {
        let text = self.image.to_string_lossy();
        if self.disk.is_some() {
            if let Some(rest) = text.strip_prefix("rbd:") {
                return format!("rbd:{}", rest.split(':').next().unwrap_or(rest));
            }
            return text.into_owned();
        }
        self.image
            .file_name()
            .map_or_else(|| text.to_string(), |n| n.to_string_lossy().into_owned())
    }

    /// Total bytes that will be written.
    pub fn bytes(&self) -> usize {
        self.writes.iter().map(|w| w.new.len()).sum()
    }
}

/// An undo record as stored on the host (JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UndoRecord {
    /// Bytes written straight into an image by the userspace engine.
    Bytes {
        /// Absolute path of the image.
        image: PathBuf,
        /// Its size when the repair was made.
        image_size: u64,
        /// Seconds since the epoch.
        created: i64,
        /// What the repair did.
        description: String,
        /// The ranges written.
        writes: Vec<UndoWrite>,
    },
    /// A symlink replaced through the kernel engine (a mounted filesystem).
    Symlink {
        /// Absolute path of the image (the first disk).
        image: PathBuf,
        /// The other disks of the VM, in order (`--disk`), so volumes that
        /// span disks can be found again.
        #[serde(default)]
        other_disks: Vec<PathBuf>,
        /// The volume (`vg/lv`).
        volume: String,
        /// The btrfs subvolume (id) the path starts in, when the link lies
        /// in one outside the volume's default subvolume (`None`: the
        /// path starts at the default subvolume).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subvolume: Option<u64>,
        /// The link's guest path, hex-encoded bytes.
        path_hex: String,
        /// The target before, hex-encoded bytes.
        old_target_hex: String,
        /// The target written, hex-encoded bytes.
        new_target_hex: String,
        /// Seconds since the epoch.
        created: i64,
        /// What the repair did.
        description: String,
    },
}

/// One range in an undo record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UndoWrite {
    /// Byte offset in the image.
    pub offset: u64,
    /// The bytes before the repair, hex.
    pub old_hex: String,
    /// SHA-256 of the bytes vmrescue wrote, hex.
    pub new_sha256: String,
}

/// The default folder for undo files: `$XDG_STATE_HOME/vmrescue/undo` or
/// `~/.local/state/vmrescue/undo`.
pub fn default_undo_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("vmrescue/undo");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".local/state/vmrescue/undo")
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes from lower- or upper-case hex.
pub fn unhex(s: &str) -> Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err(Error::Invalid("malformed hex string in undo file".into()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| Error::Invalid(format!("bad hex {:?} in undo file", &s[i..i + 2])))
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn read_exact(file: &dyn WriteAt, offset: u64, len: usize, what: &Path) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(offset, &mut buf).with_path(what)?;
    Ok(buf)
}

/// Whether `image` is a network disk's key rather than a host path.
pub fn is_network_key(image: &Path) -> bool {
    crate::image::nbd::is_uri_path(image) || crate::image::rbd::is_rbd(image)
}

/// Write an undo record to a new file in `dir`, synced; returns its path.
pub fn save_record(record: &UndoRecord, dir: &Path, stem: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_path(dir)?;
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let json = serde_json::to_vec_pretty(record).map_err(|e| Error::Invalid(e.to_string()))?;
    for n in 0..1000 {
        let name = format!(
            "{}-{safe}{}.json",
            now(),
            if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            }
        );
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(&json).with_path(&path)?;
                f.sync_all().with_path(&path)?;
                File::open(dir).and_then(|d| d.sync_all()).with_path(dir)?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io_path(&path, e)),
        }
    }
    Err(Error::Invalid(format!(
        "{}: could not create an undo file",
        dir.display()
    )))
}

/// Apply `plan` to a host file: [`apply_to`] through a [`HostWriter`].
pub fn apply(plan: &WritePlan, undo_dir: &Path) -> Result<PathBuf> {
    apply_to(plan, &HostWriter::open(&plan.image)?, undo_dir)
}

/// Apply `plan` through `file`: check the old bytes, save the undo record
/// in `undo_dir`, write, sync, read back and verify. Returns the undo
/// file's path.
pub fn apply_to(plan: &WritePlan, file: &dyn WriteAt, undo_dir: &Path) -> Result<PathBuf> {
    let image = &plan.image;
    let size = file.size();
    for w in &plan.writes {
        if w.old.len() != w.new.len() {
            return Err(Error::Invalid(
                "a write changes the length of a range".into(),
            ));
        }
        let now_bytes = read_exact(file, w.offset, w.old.len(), image)?;
        if now_bytes != w.old {
            return Err(Error::Refused(format!(
                "{}: the bytes at offset {} changed since the repair was planned; nothing was written",
                image.display(),
                w.offset
            )));
        }
    }
    let record = UndoRecord::Bytes {
        image: file.key(),
        image_size: size,
        created: now(),
        description: plan.description.clone(),
        writes: plan
            .writes
            .iter()
            .map(|w| UndoWrite {
                offset: w.offset,
                old_hex: hex(&w.old),
                new_sha256: sha256_hex(&w.new),
            })
            .collect(),
    };
    let stem = image
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let undo = save_record(&record, undo_dir, &stem)?;
    for w in &plan.writes {
        file.write_all_at(&w.new, w.offset).with_path(image)?;
    }
    file.sync().with_path(image)?;
    for w in &plan.writes {
        let back = read_exact(file, w.offset, w.new.len(), image)?;
        if back != w.new {
            return Err(Error::Invalid(format!(
                "{}: reading back offset {} did not give the bytes written; undo with `vmrescue undo {}`",
                image.display(),
                w.offset,
                undo.display()
            )));
        }
    }
    Ok(undo)
}

/// Read an undo file.
pub fn load_record(path: &Path) -> Result<UndoRecord> {
    let data = std::fs::read(path).with_path(path)?;
    if data.len() > 16 << 20 {
        return Err(Error::Invalid(format!(
            "{}: too large for an undo file",
            path.display()
        )));
    }
    serde_json::from_slice(&data)
        .map_err(|e| Error::Invalid(format!("{}: not a vmrescue undo file: {e}", path.display())))
}

/// Put back the bytes an undo record saved. Refuses, writing nothing, unless
/// every range still holds exactly what vmrescue wrote.
pub fn undo_bytes(record: &UndoRecord) -> Result<String> {
    undo_bytes_with(record, None)
}

/// [`undo_bytes`] through `writer` when given (a network disk's writer on
/// the connection already open), else through a writer opened for the
/// record's image.
pub fn undo_bytes_with(record: &UndoRecord, writer: Option<&dyn WriteAt>) -> Result<String> {
    let UndoRecord::Bytes {
        image,
        writes,
        description,
        ..
    } = record
    else {
        return Err(Error::Invalid("not a byte-level undo record".into()));
    };
    let opened: Box<dyn WriteAt>;
    let file: &dyn WriteAt = if let Some(w) = writer {
        w
    } else if is_network_key(image) {
        // Its writer checks who holds it (RBD watchers and locks) and
        // refuses a read-only export.
        opened = crate::image::open_writer(image)?;
        &*opened
    } else {
        // The same refusal as the repair itself: nothing is written while a VM,
        // a loop device, a device-mapper map or a mount on this host uses the image.
        if let Some(why) = crate::pve::is_image_in_use(image)? {
            return Err(Error::Refused(format!(
                "{} is in use ({why}): release it first; nothing was changed",
                image.display()
            )));
        }
        opened = Box::new(HostWriter::open(image)?);
        &*opened
    };
    let mut olds = Vec::new();
    let mut already = 0;
    for w in writes {
        let old = unhex(&w.old_hex)?;
        let now_bytes = read_exact(file, w.offset, old.len(), image)?;
        if now_bytes == old {
            already += 1;
        } else if sha256_hex(&now_bytes) != w.new_sha256 {
            return Err(Error::Refused(format!(
                "{}: the bytes at offset {} are neither what vmrescue wrote nor what was there before; nothing was changed",
                image.display(),
                w.offset
            )));
        }
        olds.push((w.offset, old));
    }
    if already == writes.len() {
        return Err(Error::Refused(format!(
            "{}: already undone (the old bytes are in place)",
            image.display()
        )));
    }
    for (offset, old) in &olds {
        file.write_all_at(old, *offset).with_path(image)?;
    }
    file.sync().with_path(image)?;
    for (offset, old) in &olds {
        if read_exact(file, *offset, old.len(), image)? != *old {
            return Err(Error::Invalid(format!(
                "{}: reading back offset {offset} after undo did not give the old bytes",
                image.display()
            )));
        }
    }
    Ok(format!("undid: {description}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_then_undo_restores_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::write(&img, vec![7u8; 8192]).unwrap();
        let plan = WritePlan {
            image: img.clone(),
            disk: None,
            description: "test".into(),
            writes: vec![ByteWrite {
                offset: 1000,
                old: vec![7u8; 4],
                new: b"abcd".to_vec(),
            }],
        };
        let undo = apply(&plan, &dir.path().join("undo")).unwrap();
        assert_eq!(&std::fs::read(&img).unwrap()[1000..1004], b"abcd");
        let rec = load_record(&undo).unwrap();
        undo_bytes(&rec).unwrap();
        assert_eq!(std::fs::read(&img).unwrap(), vec![7u8; 8192]);
        // A second undo is refused; so is a plan whose old bytes do not match.
        assert!(matches!(undo_bytes(&rec), Err(Error::Refused(_))));
        let mut bad = plan.clone();
        bad.writes[0].old = b"zzzz".to_vec();
        assert!(matches!(
            apply(&bad, &dir.path().join("undo")),
            Err(Error::Refused(_))
        ));
        assert_eq!(std::fs::read(&img).unwrap(), vec![7u8; 8192]);
    }

    #[test]
    fn undo_refuses_foreign_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        let plan = WritePlan {
            image: img.clone(),
            disk: None,
            description: "t".into(),
            writes: vec![ByteWrite {
                offset: 0,
                old: vec![0; 2],
                new: vec![1, 2],
            }],
        };
        let undo = apply(&plan, dir.path()).unwrap();
        std::fs::write(&img, vec![9u8; 4096]).unwrap();
        let rec = load_record(&undo).unwrap();
        assert!(matches!(undo_bytes(&rec), Err(Error::Refused(_))));
        assert_eq!(std::fs::read(&img).unwrap(), vec![9u8; 4096]);
    }
}
