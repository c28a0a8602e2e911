//! Boot Loader Specification type #1 entries (`loader/entries/*.conf`), as
//! GRUB's `blscfg` and systemd-boot read them, and systemd-boot's
//! `loader/loader.conf`.
//!
//! An entry is lines of `key value` (whitespace between; `#` starts a
//! comment line): `title`, `version`, `machine-id`, `sort-key`, `linux`,
//! `initrd` (may repeat), `options` (may repeat, joined with spaces), `efi`
//! (an EFI program: not a Linux entry). Its id is the file name without
//! `.conf`.

use std::cmp::Ordering;

use super::{Entry, FileRef};

/// One BLS entry file, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlsEntry {
    /// The file name without `.conf`.
    pub id: String,
    /// `title`.
    pub title: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `sort-key`.
    pub sort_key: Option<String>,
    /// `linux`, with its line.
    pub linux: Option<FileRef>,
    /// Every `initrd`, with its line.
    pub initrds: Vec<FileRef>,
    /// Every `options` value, joined by a space.
    pub options: String,
    /// `efi` (an EFI program entry), if any.
    pub efi: Option<String>,
    /// 1-based line of the `linux` key, else 1.
    pub line: u32,
}

/// Parse the entry file `file_name` (`<machine-id>-<version>.conf`).
pub fn parse_entry(file_name: &str, text: &[u8]) -> BlsEntry {
    let text = String::from_utf8_lossy(text);
    let mut e = BlsEntry {
        id: file_name
            .strip_suffix(".conf")
            .unwrap_or(file_name)
            .to_string(),
        line: 1,
        ..BlsEntry::default()
    };
    let mut options: Vec<String> = Vec::new();
    for (n, raw) in text.lines().enumerate().take(10_000) {
        let line = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (key, value) = match l.split_once(|c: char| c.is_whitespace()) {
            Some((k, v)) => (k, v.trim()),
            None => (l, ""),
        };
        match key {
            "title" => e.title = Some(value.to_string()),
            "version" => e.version = Some(value.to_string()),
            "sort-key" => e.sort_key = Some(value.to_string()),
            "linux" => {
                e.linux = Some(FileRef {
                    path: value.to_string(),
                    line,
                });
                e.line = line;
            }
            "initrd" => {
                // One file per line in the spec; GRUB's blscfg also splits
                // a line on spaces.
                for p in value.split_whitespace().take(64) {
                    e.initrds.push(FileRef {
                        path: p.to_string(),
                        line,
                    });
                }
            }
            "options" if options.len() < 256 => options.push(value.to_string()),
            "efi" => e.efi = Some(value.to_string()),
            _ => {}
        }
    }
    e.options = options.join(" ");
    e
}

impl BlsEntry {
    /// The entry as a menu entry, its options as given (variables unexpanded).
    pub fn to_entry(&self) -> Entry {
        Entry {
            title: self.title.clone().unwrap_or_else(|| self.id.clone()),
            id: Some(self.id.clone()),
            file: None,
            line: self.line,
            kernel: self.linux.clone(),
            initrds: self.initrds.clone(),
            cmdline: self.options.clone(),
            version: self.version.clone(),
            other: if self.linux.is_none() {
                self.efi.as_ref().map(|_| "efi".to_string())
            } else {
                None
            },
        }
    }
}

/// GRUB `blscfg`'s order: newest `version` first (rpm's `vercmp`), an
/// entry without one after those with one, then by id, newest first.
pub fn sort_for_grub(entries: &mut [BlsEntry]) {
    entries.sort_by(|a, b| {
        match (&a.version, &b.version) {
            (Some(x), Some(y)) => vercmp(y, x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| vercmp(&b.id, &a.id))
    });
}

/// systemd-boot's order: entries with a `sort-key` first, by it, then by
/// version newest first; the others by id, newest first.
pub fn sort_for_systemd_boot(entries: &mut [BlsEntry]) {
    entries.sort_by(|a, b| match (&a.sort_key, &b.sort_key) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| match (&a.version, &b.version) {
            (Some(v), Some(w)) => vercmp(w, v),
            _ => Ordering::Equal,
        }),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => vercmp(&b.id, &a.id),
    });
}

/// rpm's `rpmvercmp`: alternating runs of digits (compared as numbers) and
/// letters (compared as bytes), other characters separating them; `~`
/// sorts before anything.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        while i < a.len() && !a[i].is_ascii_alphanumeric() && a[i] != b'~' {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() && b[j] != b'~' {
            j += 1;
        }
        let (ta, tb) = (a.get(i) == Some(&b'~'), b.get(j) == Some(&b'~'));
        if ta || tb {
            if !(ta && tb) {
                return if ta {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            return (a.len() - i.min(a.len())).cmp(&(b.len() - j.min(b.len())));
        }
        let digits = a[i].is_ascii_digit();
        let run = |s: &[u8], k: usize| {
            let mut e = k;
            while e < s.len()
                && (if digits {
                    s[e].is_ascii_digit()
                } else {
                    s[e].is_ascii_alphabetic()
                })
            {
                e += 1;
            }
            e
        };
        let (ea, eb) = (run(a, i), run(b, j));
        if eb == j {
            // Different kinds of segment: a number is newer.
            return if digits {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (&a[i..ea], &b[j..eb]);
        let ord = if digits {
            let strip = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
            let (sa, sb) = (&sa[strip(sa)..], &sb[strip(sb)..]);
            sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        i = ea;
        j = eb;
    }
}

/// systemd-boot's `loader.conf`: the `default` pattern, if set.
pub fn loader_default(text: &[u8]) -> Option<(String, u32)> {
    let text = String::from_utf8_lossy(text);
    let mut found = None;
    for (n, raw) in text.lines().enumerate().take(10_000) {
        let l = raw.trim();
        if l.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = l.split_once(|c: char| c.is_whitespace())
            && k == "default"
        {
            found = Some((
                v.trim().to_string(),
                u32::try_from(n + 1).unwrap_or(u32::MAX),
            ));
        }
    }
    found
}

/// The index of the entry systemd-boot boots by default: the first (in its
/// order) whose id matches the `default` glob (with or without `.conf`),
/// else the first.
pub fn systemd_boot_default(entries: &[BlsEntry], pattern: Option<&str>) -> Option<usize> {
    if entries.is_empty() {
        return None;
    }
    if let Some(p) = pattern {
        let p = p.to_ascii_lowercase();
        let hit = entries.iter().position(|e| {
            let id = e.id.to_ascii_lowercase();
            crate::ops::find::fnmatch(p.as_bytes(), id.as_bytes(), false)
                || crate::ops::find::fnmatch(p.as_bytes(), format!("{id}.conf").as_bytes(), false)
        });
        if hit.is_some() {
            return hit;
        }
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhel_entry() {
        let e = parse_entry(
            "abc-5.14.0-362.el9.x86_64.conf",
            b"title Red Hat Enterprise Linux (5.14.0-362.el9.x86_64) 9.3\nversion 5.14.0-362.el9.x86_64\nlinux /vmlinuz-5.14.0-362.el9.x86_64\ninitrd /initramfs-5.14.0-362.el9.x86_64.img $tuned_initrd\noptions root=/dev/mapper/rhel-root ro\noptions $kernelopts\ngrub_users $grub_users\n",
        );
        assert_eq!(e.id, "abc-5.14.0-362.el9.x86_64");
        assert_eq!(e.linux.as_ref().unwrap().line, 3);
        assert_eq!(e.initrds.len(), 2);
        assert_eq!(e.options, "root=/dev/mapper/rhel-root ro $kernelopts");
    }

    #[test]
    fn versions_as_rpm() {
        assert_eq!(vercmp("5.14.0-362", "5.14.0-70"), Ordering::Greater);
        assert_eq!(vercmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(vercmp("1.0a", "1.0"), Ordering::Greater);
        assert_eq!(vercmp("2.0", "2.0"), Ordering::Equal);
        assert_eq!(vercmp("1.01", "1.1"), Ordering::Equal);
        assert_eq!(vercmp("1.a", "1.1"), Ordering::Less);
        let mut v: Vec<BlsEntry> = ["a-5.14.0-70", "a-5.14.0-362", "a-0-rescue"]
            .iter()
            .map(|id| BlsEntry {
                id: id.to_string(),
                version: id.strip_prefix("a-").map(str::to_string),
                ..BlsEntry::default()
            })
            .collect();
        sort_for_grub(&mut v);
        assert_eq!(v[0].id, "a-5.14.0-362");
        assert_eq!(v[2].id, "a-0-rescue");
        assert_eq!(systemd_boot_default(&v, Some("a-5.14.0-7*")), Some(1));
        assert_eq!(systemd_boot_default(&v, Some("a-5.14.0-70.conf")), Some(1));
        assert_eq!(systemd_boot_default(&v, Some("zzz")), Some(0));
    }

    #[test]
    fn loader_conf() {
        assert_eq!(
            loader_default(b"timeout 3\n#default x\ndefault  arch-*.conf \n"),
            Some(("arch-*.conf".into(), 3))
        );
    }
}
