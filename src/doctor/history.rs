//! The package manager's own history: the last transactions before the
//! guest stopped.
//!
//! * `/var/log/apt/history.log` (and its rotations `.1.gz`…): one event per
//!   transaction, from `Start-Date:` to `End-Date:`, with its
//!   `Commandline:` and the `Install:`, `Upgrade:`, `Downgrade:`,
//!   `Reinstall:`, `Remove:`, `Purge:` lists;
//! * `/var/log/dpkg.log` (`.1`, `.2.gz`…): one event per dpkg run (from one
//!   `startup` line to the next) with its `install`, `upgrade`, `remove`
//!   and `purge` actions, unless an apt transaction of the same time already
//!   says it;
//! * `/var/log/yum.log` (and `yum.log-YYYYMMDD`): one event a line
//!   (`Mar 02 10:29:36 Installed: glibc-2.12-1.132.el6.x86_64`, the year
//!   taken from the file's change time as logrotate leaves it);
//! * `/var/log/dnf.rpm.log` (`.1`…): one event per `SUBDEBUG` action line
//!   (`Installed:`, `Upgrade:`, `Erase:`…; the old side of an upgrade is not
//!   repeated).
//!
//! Reads are bounded: the last [`TAIL_BYTES`] of each file (decompressed up
//! to [`MAX_DECOMPRESSED`]), at most [`MAX_ROTATIONS`] older files per log,
//! and older files only while fewer than the events asked for are found.

use std::io::Read;

use crate::fs::{FileType, FsView, NodeId, path};
use crate::ops::pager::source::{Format, decoder};

/// How many transactions are listed.
pub const HISTORY_COUNT: usize = 10;
/// The end of each log that is read.
pub const TAIL_BYTES: u64 = 1 << 20;
/// Most bytes decompressed from one rotated log.
pub const MAX_DECOMPRESSED: u64 = 64 << 20;
/// Most rotated files read per log.
pub const MAX_ROTATIONS: usize = 4;
/// Most packages named in one event.
const MAX_NAMED: usize = 6;
/// Longest `what` of one event, in characters.
const MAX_WHAT: usize = 400;

/// One package transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEvent {
    /// When, as the log gives it (`2017-03-02 10:29:36`).
    pub when: String,
    /// What (`install glibc-2.12-1.132.el6`).
    pub what: String,
    /// The log it came from.
    pub source: Vec<u8>,
}

/// An event with the key it sorts by (`YYYY-MM-DD HH:MM:SS`) and, for apt,
/// when it ended.
struct Dated {
    key: String,
    end: Option<String>,
    /// (action, package) of each package named, as dpkg names the action.
    actions: Vec<(String, String)>,
    event: PackageEvent,
}

/// The logs, each with the parser of its lines.
const LOGS: &[(&str, Kind)] = &[
    ("/var/log/apt/history.log", Kind::Apt),
    ("/var/log/dpkg.log", Kind::Dpkg),
    ("/var/log/yum.log", Kind::Yum),
    ("/var/log/dnf.rpm.log", Kind::Dnf),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Apt,
    Dpkg,
    Yum,
    Dnf,
}

/// The last `count` transactions of the guest's package logs, newest last.
pub fn last_transactions(fs: &dyn FsView, count: usize) -> Vec<PackageEvent> {
    if count == 0 {
        return Vec::new();
    }
    let mut all: Vec<Dated> = Vec::new();
    for (log, kind) in LOGS {
        let mut found: Vec<Dated> = Vec::new();
        for file in rotations(fs, log.as_bytes()) {
            let Some((text, year)) = read_tail(fs, &file) else {
                continue;
            };
            let mut events = match kind {
                Kind::Apt => parse_apt(&text),
                Kind::Dpkg => parse_dpkg(&text),
                Kind::Yum => parse_yum(&text, year),
                Kind::Dnf => parse_dnf(&text),
            };
            for e in &mut events {
                e.event.source = file.clone();
            }
            // Older files come after: put them before what was found.
            let enough = found.len() + events.len() >= count;
            events.append(&mut found);
            found = events;
            if enough {
                break;
            }
        }
        all.extend(found);
    }
    // A dpkg run inside an apt transaction that did the same is that
    // transaction.
    type Window = (String, String, Vec<(String, String)>);
    let apt: Vec<Window> = all
        .iter()
        .filter_map(|d| Some((d.key.clone(), d.end.clone()?, d.actions.clone())))
        .collect();
    all.retain(|d| {
        !(d.event.source.starts_with(b"/var/log/dpkg.log")
            && apt.iter().any(|(start, end, done)| {
                *start <= d.key && d.key <= *end && d.actions.iter().all(|a| done.contains(a))
            }))
    });
    all.sort_by(|a, b| a.key.cmp(&b.key));
    let skip = all.len().saturating_sub(count);
    all.into_iter().skip(skip).map(|d| d.event).collect()
}

/// The log and its rotations, newest first: `log`, `log.1`, `log.2.gz`…,
/// then `log-YYYYMMDD[.gz]` newest first; at most [`MAX_ROTATIONS`] older ones.
fn rotations(fs: &dyn FsView, log: &[u8]) -> Vec<Vec<u8>> {
    let (dir, Some(name)) = path::split_last(log) else {
        return Vec::new();
    };
    let Ok(r) = path::resolve(fs, &dir, true) else {
        return Vec::new();
    };
    let Ok(entries) = fs.read_dir(r.node) else {
        return Vec::new();
    };
    let mut numbered: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut dated: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut out = Vec::new();
    for e in entries.iter().take(100_000) {
        let Some(rest) = e.name.strip_prefix(&name[..]) else {
            continue;
        };
        let rest = rest.strip_suffix(b".gz").unwrap_or(rest);
        if rest.is_empty() {
            if e.name == name {
                out.push(path::join(&dir, &e.name));
            }
        } else if let Some(n) = rest.strip_prefix(b".")
            && let Some(n) = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok())
        {
            numbered.push((n, path::join(&dir, &e.name)));
        } else if let Some(d) = rest.strip_prefix(b"-")
            && !d.is_empty()
            && d.iter().all(u8::is_ascii_digit)
        {
            dated.push((d.to_vec(), path::join(&dir, &e.name)));
        }
    }
    numbered.sort();
    dated.sort_by(|a, b| b.0.cmp(&a.0));
    out.extend(
        numbered
            .into_iter()
            .map(|(_, p)| p)
            .chain(dated.into_iter().map(|(_, p)| p))
            .take(MAX_ROTATIONS),
    );
    out
}

/// A guest file as a `Read`, from its start.
struct FileReader<'a> {
    fs: &'a dyn FsView,
    node: NodeId,
    pos: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .fs
            .read_at(self.node, self.pos, buf)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The last [`TAIL_BYTES`] of a log (decompressed if it is), from a line
/// start, and the year of its change time (for yum's dates without one).
fn read_tail(fs: &dyn FsView, file: &[u8]) -> Option<(String, i32)> {
    let r = path::resolve(fs, file, true).ok()?;
    let meta = fs.metadata(r.node).ok()?;
    if meta.file_type != FileType::Regular {
        return None;
    }
    let year = year_of(meta.mtime.sec);
    let mut head = [0u8; 8];
    let n = fs.read_at(r.node, 0, &mut head).ok()?;
    let format = Format::detect(&head[..n]);
    let mut tail: Vec<u8> = Vec::new();
    let mut cut = false;
    if format == Format::Plain {
        let start = meta.size.saturating_sub(TAIL_BYTES);
        cut = start > 0;
        let len = usize::try_from(meta.size - start).ok()?;
        tail = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = fs
                .read_at(r.node, start + done as u64, &mut tail[done..])
                .ok()?;
            if n == 0 {
                break;
            }
            done += n;
        }
        tail.truncate(done);
    } else {
        let reader = FileReader {
            fs,
            node: r.node,
            pos: 0,
        };
        let mut dec = decoder(format, reader)?.take(MAX_DECOMPRESSED);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match dec.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            tail.extend_from_slice(&chunk[..n]);
            let limit = usize::try_from(TAIL_BYTES).unwrap_or(usize::MAX);
            if tail.len() > 2 * limit {
                tail.drain(..tail.len() - limit);
                cut = true;
            }
        }
        let limit = usize::try_from(TAIL_BYTES).unwrap_or(usize::MAX);
        if tail.len() > limit {
            tail.drain(..tail.len() - limit);
            cut = true;
        }
    }
    if cut && let Some(i) = tail.iter().position(|&c| c == b'\n') {
        tail.drain(..=i);
    }
    Some((String::from_utf8_lossy(&tail).into_owned(), year))
}

/// The year of a Unix time (UTC).
fn year_of(secs: i64) -> i32 {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    i32::try_from(year).unwrap_or(1970)
}

/// Shorten a list of packages to [`MAX_NAMED`], saying how many more.
fn named(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(MAX_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_NAMED {
        s.push_str(&format!(" and {} more", items.len() - MAX_NAMED));
    }
    s
}

fn clip(mut s: String) -> String {
    if s.chars().count() > MAX_WHAT {
        s = s.chars().take(MAX_WHAT - 1).collect();
        s.push('…');
    }
    s
}

/// `2026-12-02  11:53:01` (apt) or `2026-12-02T11:53:01+0000` (dnf) as
/// `2026-12-02 11:53:01`, when it looks like a date and time.
fn iso_key(s: &str) -> Option<String> {
    let s = s.trim();
    let date = s.get(..10)?;
    let time = s.get(10..)?.trim_start_matches(['T', ' ']);
    let time = time.get(..8)?;
    let ok = |t: &str, sep: u8| {
        t.bytes().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                c == sep
            } else {
                c.is_ascii_digit()
            }
        })
    };
    let date_ok = date.len() == 10
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && date
            .bytes()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    (date_ok && ok(time, b':')).then(|| format!("{date} {time}"))
}

/// `/var/log/apt/history.log`: one event per transaction.
fn parse_apt(text: &str) -> Vec<Dated> {
    let mut out = Vec::new();
    type Open = (
        String,
        String,
        Option<String>,
        Vec<String>,
        Vec<(String, String)>,
    );
    let mut cur: Option<Open> = None;
    let finish = |cur: Open, end: Option<String>| {
        let (when, key, command, parts, actions) = cur;
        let mut what = command.unwrap_or_else(|| "apt".into());
        if !parts.is_empty() {
            what.push_str(": ");
            what.push_str(&parts.join("; "));
        }
        Dated {
            key: key.clone(),
            end: Some(end.unwrap_or(key)),
            actions,
            event: PackageEvent {
                when,
                what: clip(what),
                source: Vec::new(),
            },
        }
    };
    for line in text.lines() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match field {
            "Start-Date" => {
                if let Some(c) = cur.take() {
                    out.push(finish(c, None));
                }
                if let Some(key) = iso_key(value) {
                    let when = value.split_whitespace().collect::<Vec<_>>().join(" ");
                    cur = Some((when, key, None, Vec::new(), Vec::new()));
                }
            }
            "Commandline" => {
                if let Some(c) = &mut cur {
                    c.2 = Some(value.to_string());
                }
            }
            "Install" | "Upgrade" | "Downgrade" | "Reinstall" | "Remove" | "Purge" => {
                if let Some(c) = &mut cur {
                    let pkgs = apt_packages(value);
                    // What dpkg logs for each: a downgrade or a reinstall is
                    // an `upgrade`, a purge a `remove` then a `purge`.
                    let dpkg: &[&str] = match field {
                        "Install" => &["install"],
                        "Upgrade" | "Downgrade" | "Reinstall" => &["upgrade"],
                        "Remove" => &["remove"],
                        _ => &["remove", "purge"],
                    };
                    for (name, _) in &pkgs {
                        for a in dpkg {
                            c.4.push(((*a).to_string(), name.clone()));
                        }
                    }
                    let shown: Vec<String> = pkgs.iter().map(|(n, v)| format!("{n} {v}")).collect();
                    c.3.push(format!("{} {}", field.to_lowercase(), named(&shown)));
                }
            }
            "End-Date" => {
                if let Some(c) = cur.take() {
                    out.push(finish(c, iso_key(value)));
                }
            }
            _ => {}
        }
    }
    if let Some(c) = cur.take() {
        out.push(finish(c, None));
    }
    out
}

/// `foo:amd64 (1.0, automatic), bar:amd64 (2.0, 2.1)` as
/// (`foo`, `1.0`), (`bar`, `2.0 -> 2.1`).
fn apt_packages(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.trim().is_empty() {
        let Some(open) = rest.find('(') else {
            break;
        };
        let Some(close) = rest[open..].find(')').map(|c| open + c) else {
            break;
        };
        let name = rest[..open].trim().trim_start_matches(',').trim();
        let name = name.split(':').next().unwrap_or(name);
        let versions: Vec<&str> = rest[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|v| *v != "automatic")
            .collect();
        out.push((name.to_string(), versions.join(" -> ")));
        rest = &rest[close + 1..];
    }
    out
}

/// `/var/log/dpkg.log`: one event per dpkg run.
fn parse_dpkg(text: &str) -> Vec<Dated> {
    let mut out = Vec::new();
    type Run = (String, Vec<String>, Vec<(String, String)>);
    let mut cur: Option<Run> = None;
    let flush = |cur: Option<Run>, out: &mut Vec<Dated>| {
        if let Some((key, shown, actions)) = cur
            && !shown.is_empty()
        {
            out.push(Dated {
                key: key.clone(),
                end: None,
                actions,
                event: PackageEvent {
                    when: key,
                    what: clip(format!("dpkg: {}", named(&shown))),
                    source: Vec::new(),
                },
            });
        }
    };
    for line in text.lines() {
        let Some(key) = line.get(..19).and_then(iso_key) else {
            continue;
        };
        let words: Vec<&str> = line[19..].split_whitespace().collect();
        match words.as_slice() {
            ["startup", ..] => {
                flush(cur.take(), &mut out);
                cur = Some((key, Vec::new(), Vec::new()));
            }
            [
                action @ ("install" | "upgrade" | "remove" | "purge"),
                pkg,
                old,
                new,
                ..,
            ] => {
                let pkg = pkg.split(':').next().unwrap_or(pkg);
                let versions = match (*old, *new) {
                    ("<none>", n) => n.to_string(),
                    (o, "<none>") => o.to_string(),
                    (o, n) if o == n => n.to_string(),
                    (o, n) => format!("{o} -> {n}"),
                };
                let c = cur.get_or_insert_with(|| (key.clone(), Vec::new(), Vec::new()));
                c.1.push(format!("{action} {pkg} {versions}"));
                c.2.push(((*action).to_string(), pkg.to_string()));
            }
            _ => {}
        }
    }
    flush(cur.take(), &mut out);
    out
}

/// `/var/log/yum.log`: `Mar 02 10:29:36 Installed: glibc-…`, one event a line.
fn parse_yum(text: &str, year: i32) -> Vec<Dated> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut out: Vec<Dated> = Vec::new();
    // Lines are in time order: a month smaller than the previous one is the
    // next year. Count back from the file's year at the end.
    let mut parsed: Vec<(usize, String, String, String)> = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(4, ' ').filter(|w| !w.is_empty());
        let (Some(mon), Some(day), Some(time)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Some(m) = MONTHS.iter().position(|x| *x == mon) else {
            continue;
        };
        let Some((_, rest)) = line.split_once(time) else {
            continue;
        };
        let what = rest.trim();
        if !what.contains(": ") || iso_key(&format!("2000-01-01 {time}")).is_none() {
            continue;
        }
        let day: u32 = day.parse().unwrap_or(0);
        parsed.push((
            m,
            format!("{:02}-{:02} {time}", m + 1, day),
            format!("{mon} {day:02} {time}"),
            what.to_string(),
        ));
    }
    let mut y = year;
    let mut next_month = usize::MAX;
    for (m, md, when, what) in parsed.into_iter().rev() {
        if m > next_month {
            y -= 1;
        }
        next_month = m;
        out.push(Dated {
            key: format!("{y:04}-{md}"),
            end: None,
            actions: Vec::new(),
            event: PackageEvent {
                when: format!("{when} {y}"),
                what: clip(what),
                source: Vec::new(),
            },
        });
    }
    out.reverse();
    out
}

/// `/var/log/dnf.rpm.log`: `2023-03-07T10:17:30+0000 SUBDEBUG Upgrade: bash-…`.
fn parse_dnf(text: &str) -> Vec<Dated> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ' ');
        let (Some(stamp), Some(level), Some(msg)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if level != "SUBDEBUG" {
            continue;
        }
        let Some((action, _)) = msg.split_once(": ") else {
            continue;
        };
        if !matches!(
            action,
            "Installed"
                | "Installing"
                | "Upgrade"
                | "Upgrading"
                | "Downgrade"
                | "Downgrading"
                | "Reinstall"
                | "Reinstalling"
                | "Erase"
                | "Erasing"
                | "Removed"
                | "Obsoleting"
        ) {
            continue;
        }
        let Some(key) = iso_key(stamp) else { continue };
        out.push(Dated {
            key,
            end: None,
            actions: Vec::new(),
            event: PackageEvent {
                when: stamp.to_string(),
                what: clip(msg.trim().to_string()),
                source: Vec::new(),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_transactions() {
        let text = "\nStart-Date: 2024-05-02  10:00:01\nCommandline: apt-get install zstd\n\
            Install: zstd:amd64 (1.5.4+dfsg2-5), libzstd1:amd64 (1.5.4+dfsg2-5, automatic)\n\
            Upgrade: libc6:amd64 (2.36-9, 2.36-9+deb12u4)\nEnd-Date: 2024-05-02  10:00:09\n";
        let e = parse_apt(text);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key, "2024-05-02 10:00:01");
        assert_eq!(e[0].end.as_deref(), Some("2024-05-02 10:00:09"));
        assert_eq!(e[0].event.when, "2024-05-02 10:00:01");
        assert_eq!(
            e[0].event.what,
            "apt-get install zstd: install zstd 1.5.4+dfsg2-5, libzstd1 1.5.4+dfsg2-5; \
             upgrade libc6 2.36-9 -> 2.36-9+deb12u4"
        );
    }

    #[test]
    fn dpkg_runs() {
        let text = "2024-05-02 10:00:02 startup archives unpack\n\
            2024-05-02 10:00:02 install zstd:amd64 <none> 1.5.4\n\
            2024-05-02 10:00:02 status half-installed zstd:amd64 1.5.4\n\
            2024-05-02 10:00:03 startup packages remove\n\
            2024-05-02 10:00:03 remove vim:amd64 2:9.0 <none>\n\
            garbage\n2024-05-02 10:00:04 startup packages configure\n";
        let e = parse_dpkg(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].event.what, "dpkg: install zstd 1.5.4");
        assert_eq!(e[1].event.what, "dpkg: remove vim 2:9.0");
    }

    #[test]
    fn a_dpkg_run_of_an_apt_transaction_is_not_repeated() {
        let mut fs = crate::fs::mem::MemFs::new();
        let root = fs.root_id();
        let log = fs.add_dir(root, b"var", 0o755);
        let log = fs.add_dir(log, b"log", 0o755);
        let apt = fs.add_dir(log, b"apt", 0o755);
        fs.add_file(
            apt,
            b"history.log",
            0o644,
            b"Start-Date: 2024-05-02  10:00:01\nCommandline: apt-get install zstd\n\
              Install: zstd:amd64 (1.5.4)\nEnd-Date: 2024-05-02  10:00:05\n",
        );
        fs.add_file(
            log,
            b"dpkg.log",
            0o644,
            b"2024-05-02 10:00:02 startup archives unpack\n\
              2024-05-02 10:00:02 install zstd:amd64 <none> 1.5.4\n\
              2024-05-02 10:00:05 startup packages remove\n\
              2024-05-02 10:00:05 remove zstd:amd64 1.5.4 <none>\n",
        );
        let h = last_transactions(&fs, 10);
        let what: Vec<&str> = h.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "apt-get install zstd: install zstd 1.5.4",
                "dpkg: remove zstd 1.5.4"
            ]
        );
        assert_eq!(h[1].source, b"/var/log/dpkg.log");
        assert_eq!(last_transactions(&fs, 1).len(), 1);
    }

    #[test]
    fn yum_lines_across_a_new_year() {
        let text = "Dec 30 23:00:00 Installed: a-1.0-1.el6.x86_64\n\
            Jan 02 10:29:36 Updated: glibc-2.12-1.132.el6.x86_64\nnot a line\n";
        let e = parse_yum(text, 2017);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, "2016-12-30 23:00:00");
        assert_eq!(e[1].key, "2017-01-02 10:29:36");
        assert_eq!(e[1].event.what, "Updated: glibc-2.12-1.132.el6.x86_64");
        assert_eq!(e[1].event.when, "Jan 02 10:29:36 2017");
    }

    #[test]
    fn dnf_lines() {
        let text = "2023-03-07T10:17:30+0000 SUBDEBUG Upgrade: bash-5.2.15-3.fc38.x86_64\n\
            2023-03-07T10:17:31+0000 SUBDEBUG Upgraded: bash-5.2.15-2.fc38.x86_64\n\
            2023-03-07T10:17:31+0000 INFO --- logging initialized ---\n";
        let e = parse_dnf(text);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key, "2023-03-07 10:17:30");
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        let sample = "Start-Date: 2024-05-02  10:00:01\nInstall: a (1\nUpgrade: é:x (,), (\n\
            2024-05-02 10:00:02 install é <none>\n2024-05-02 10:00:0é startup\n\
            Mar 02 10:29:36 Installed: x\nMar 99 é\n\
            2023-03-07T10:17:30+0000 SUBDEBUG Upgrade: \nEnd-Date: é\n";
        let mut seed = 7u64;
        let mut noise = String::new();
        for _ in 0..4000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let chars: Vec<char> = " :-(),T+\n0123456789éabz".chars().collect();
            noise.push(chars[(seed >> 33) as usize % chars.len()]);
        }
        for text in [sample, noise.as_str()] {
            for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                let t = &text[..end];
                let _ = (
                    parse_apt(t),
                    parse_dpkg(t),
                    parse_yum(t, 2017),
                    parse_dnf(t),
                );
            }
        }
    }

    #[test]
    fn years() {
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(1_764_300_000), 2025);
        assert_eq!(year_of(-1), 1969);
    }
}
