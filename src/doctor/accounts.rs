//! `/etc/passwd`, `/etc/shadow`, `/etc/group` and `/etc/nsswitch.conf`:
//! what logins need.
//!
//! The files are read as shadow-utils reads them (`pwck`, `grpck`): a
//! passwd line has 7 fields with a numeric uid and gid, a shadow line 9
//! (or the old 5) with numeric or empty dates, a group line 4 with a
//! numeric gid; `+`/`-` lines are NIS compat entries and accepted. glibc
//! skips a line it cannot parse, so the user it names cannot log in: an
//! error. A comment line is skipped by glibc but refused by `pwck`: a note.
//!
//! Then: root exists with uid 0; root's shell (the passwd field, `/bin/sh`
//! when empty) exists in the guest, symlinks followed, and is an
//! executable file; every user who can log in (root, and users whose shell
//! is in `/etc/shells`) and whose password field is `x` has a shadow entry
//! (else `pam_unix` refuses the login); and the NSS modules
//! `nsswitch.conf` names for `passwd`, `group` and `shadow` are
//! `libnss_<module>.so.2` files in the guest's library directories —
//! `files` and `dns` are built into glibc from 2.34 on. A module that is
//! missing is skipped by glibc (its users are not found): an error when no
//! module of the database is left, a warning otherwise.

use super::{Check, Checked, Context, Finding, Impact, Repair, Severity};
use crate::fs::{FileType, FsView, path, read_small};
use crate::text::{count, escape};

/// Largest account file read.
const MAX_FILE: usize = 4 << 20;
/// Most lines looked at in one file.
const MAX_LINES: usize = 100_000;
/// Most names listed in one finding's evidence.
const MAX_LISTED: usize = 10;

const PASSWD: &[u8] = b"/etc/passwd";
const SHADOW: &[u8] = b"/etc/shadow";
const GROUP: &[u8] = b"/etc/group";
const NSSWITCH: &[u8] = b"/etc/nsswitch.conf";

/// One account file: its name, the fields a line must have, and which
/// must be numbers (`true`) or numbers or empty.
struct Format {
    path: &'static [u8],
    fields: &'static [usize],
    /// (index, may be empty)
    numeric: &'static [(usize, bool)],
    /// Its second field is a password hash, never shown.
    secret: bool,
}

const PASSWD_FORMAT: Format = Format {
    path: PASSWD,
    fields: &[7],
    numeric: &[(2, false), (3, false)],
    secret: false,
};
const SHADOW_FORMAT: Format = Format {
    path: SHADOW,
    fields: &[9, 5],
    numeric: &[
        (2, true),
        (3, true),
        (4, true),
        (5, true),
        (6, true),
        (7, true),
    ],
    secret: true,
};
const GROUP_FORMAT: Format = Format {
    path: GROUP,
    fields: &[4],
    numeric: &[(2, false)],
    secret: true,
};

/// A line of a file with password hashes as it may be shown: the hash
/// (second field) replaced by `…` when there is one.
fn redacted(fields: &[Vec<u8>]) -> String {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == 1 && f.len() > 2 {
                "…".to_string()
            } else {
                escape(f)
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// A parsed line: its number (from 1) and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Line number, from 1.
    pub line: usize,
    /// The fields, split at `:`.
    pub fields: Vec<Vec<u8>>,
}

/// A line that does not parse: its number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Line number, from 1.
    pub line: usize,
    /// The line, escaped.
    pub text: String,
    /// Why it does not parse.
    pub why: String,
    /// A comment: glibc skips it, pwck refuses it.
    pub comment: bool,
}

fn is_number(f: &[u8]) -> bool {
    !f.is_empty()
        && f.len() <= 20
        && f.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(f).is_ok_and(|s| s.parse::<u64>().is_ok())
}

/// Parse an account file as `fmt` says (at most 100,000 lines): the
/// entries that parse and the lines that do not. Empty lines are skipped;
/// `+`/`-` NIS lines are kept as entries whatever their fields.
fn parse(text: &[u8], fmt: &Format) -> (Vec<Entry>, Vec<Malformed>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').take(MAX_LINES).enumerate() {
        let line_no = i + 1;
        if line.is_empty() {
            continue;
        }
        let fields: Vec<Vec<u8>> = line.split(|&b| b == b':').map(<[u8]>::to_vec).collect();
        if matches!(line.first(), Some(b'+' | b'-')) {
            ok.push(Entry {
                line: line_no,
                fields,
            });
            continue;
        }
        let why = if line.first() == Some(&b'#') {
            Some("a comment, which pwck refuses (glibc skips it)".to_string())
        } else if !fmt.fields.contains(&fields.len()) {
            Some(format!(
                "{} fields, not {}",
                fields.len(),
                fmt.fields
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        } else if fields.first().is_none_or(|n| n.is_empty()) {
            Some("no name".to_string())
        } else {
            fmt.numeric.iter().find_map(|&(i, may_be_empty)| {
                let f = fields.get(i)?;
                if (may_be_empty && f.is_empty()) || is_number(f) || (may_be_empty && f == b"-1") {
                    None
                } else {
                    Some(format!("field {} ({:?}) is not a number", i + 1, escape(f)))
                }
            })
        };
        match why {
            Some(why) => bad.push(Malformed {
                line: line_no,
                text: if fmt.secret {
                    redacted(&fields)
                } else {
                    escape(line)
                },
                comment: line.first() == Some(&b'#'),
                why,
            }),
            None => ok.push(Entry {
                line: line_no,
                fields,
            }),
        }
    }
    (ok, bad)
}

/// Run the check.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
    let fs = ctx.fs;
    let Some(passwd_text) = read_small(fs, PASSWD, MAX_FILE) else {
        if fs.metadata(fs.root()).is_ok() && path::resolve(fs, b"/etc", true).is_ok() {
            out.push(finding(
                Severity::Error,
                "/etc/passwd is missing or unreadable: no user can log in".into(),
                vec!["/etc/passwd cannot be read as a regular file".into()],
                PASSWD,
                None,
                "restore /etc/passwd (shadow-utils keeps a copy in /etc/passwd-)",
            ));
        }
        return Checked {
            check: Check::Accounts,
            summary: "no /etc/passwd".into(),
        };
    };
    let before = out.len();
    let (users, bad) = parse(&passwd_text, &PASSWD_FORMAT);
    report_malformed(&bad, &PASSWD_FORMAT, out);
    let shadow = read_small(fs, SHADOW, MAX_FILE).map(|t| parse(&t, &SHADOW_FORMAT));
    if let Some((_, bad)) = &shadow {
        report_malformed(bad, &SHADOW_FORMAT, out);
    }
    let groups = read_small(fs, GROUP, MAX_FILE).map(|t| parse(&t, &GROUP_FORMAT));
    if let Some((_, bad)) = &groups {
        report_malformed(bad, &GROUP_FORMAT, out);
    }
    check_root(fs, &users, out);
    check_shadow(fs, &users, shadow.as_ref().map(|(e, _)| e.as_slice()), out);
    let modules = check_nsswitch(ctx, out);
    Checked {
        check: Check::Accounts,
        summary: format!(
            "{}, {}, {}{modules}: {}",
            count(users.len() as u64, "user", "users"),
            count(
                shadow.as_ref().map_or(0, |(e, _)| e.len()) as u64,
                "shadow entry",
                "shadow entries"
            ),
            count(
                groups.as_ref().map_or(0, |(e, _)| e.len()) as u64,
                "group",
                "groups"
            ),
            count((out.len() - before) as u64, "finding", "findings")
        ),
    }
}

fn finding(
    severity: Severity,
    summary: String,
    evidence: Vec<String>,
    at: &[u8],
    line: Option<usize>,
    hint: &str,
) -> Finding {
    Finding {
        check: Check::Accounts,
        severity,
        impact: if severity >= Severity::Error {
            Impact::Login
        } else {
            Impact::Other
        },
        summary,
        evidence,
        path: Some(at.to_vec()),
        repair: Some(Repair::View {
            path: at.to_vec(),
            line: line.and_then(|l| u32::try_from(l).ok()),
            hint: hint.to_string(),
        }),
    }
}

fn report_malformed(bad: &[Malformed], fmt: &Format, out: &mut Vec<Finding>) {
    let file = escape(fmt.path);
    for m in bad {
        let name = m.text.split(':').next().unwrap_or_default();
        let (severity, summary) = if m.comment {
            (
                Severity::Note,
                format!("{file} line {}: a comment, which pwck refuses", m.line),
            )
        } else {
            (
                Severity::Error,
                format!(
                    "{file} line {} does not parse ({}): glibc skips it, so {name:?} cannot log in",
                    m.line, m.why
                ),
            )
        };
        out.push(finding(
            severity,
            summary,
            vec![format!("{file} line {}: {}", m.line, m.text), m.why.clone()],
            fmt.path,
            Some(m.line),
            "correct or remove the line (pwck -r lists what is wrong)",
        ));
    }
}

fn field(e: &Entry, i: usize) -> &[u8] {
    e.fields.get(i).map_or(&[][..], Vec::as_slice)
}

fn check_root(fs: &dyn FsView, users: &[Entry], out: &mut Vec<Finding>) {
    let root = users
        .iter()
        .find(|e| field(e, 0) == b"root" && !matches!(field(e, 0).first(), Some(b'+' | b'-')));
    let Some(root) = root else {
        out.push(finding(
            Severity::Error,
            "/etc/passwd has no root entry: root cannot log in, and the emergency shell refuses to start".into(),
            vec!["no line of /etc/passwd names root".into()],
            PASSWD,
            None,
            "add root:x:0:0:root:/root:/bin/bash",
        ));
        return;
    };
    if field(root, 2) != b"0" {
        out.push(finding(
            Severity::Error,
            format!(
                "root has uid {} in /etc/passwd, not 0",
                escape(field(root, 2))
            ),
            vec![format!(
                "/etc/passwd line {}: uid {}",
                root.line,
                escape(field(root, 2))
            )],
            PASSWD,
            Some(root.line),
            "give root uid 0",
        ));
    }
    let shell = match field(root, 6) {
        b"" => b"/bin/sh".as_slice(),
        s => s,
    };
    let why = match path::resolve(fs, shell, true) {
        Err(e) => Some(format!(
            "{} cannot be found in the guest: {e}",
            escape(shell)
        )),
        Ok(r) => match fs.metadata(r.node) {
            Err(e) => Some(format!("{} cannot be read: {e}", escape(&r.path))),
            Ok(m) if m.file_type != FileType::Regular => {
                Some(format!("{} is not a regular file", escape(&r.path)))
            }
            Ok(m) if m.perm & 0o111 == 0 => Some(format!(
                "{} is not executable (mode {:o})",
                escape(&r.path),
                m.perm
            )),
            Ok(_) => None,
        },
    };
    if let Some(why) = why {
        out.push(finding(
            Severity::Error,
            format!("root's shell {} cannot run: {why}", escape(shell)),
            vec![
                format!(
                    "/etc/passwd line {}: root's shell is {}",
                    root.line,
                    escape(shell)
                ),
                why,
                "login, su and ssh start the shell: root cannot log in".into(),
            ],
            PASSWD,
            Some(root.line),
            "set root's shell to one the guest has (/bin/bash, /bin/sh)",
        ));
    }
}

/// The login shells of the guest: `/etc/shells`, one path a line.
fn login_shells(fs: &dyn FsView) -> Option<Vec<Vec<u8>>> {
    let text = read_small(fs, b"/etc/shells", MAX_FILE)?;
    Some(
        text.split(|&b| b == b'\n')
            .take(MAX_LINES)
            .map(<[u8]>::trim_ascii)
            .filter(|l| l.starts_with(b"/"))
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// Whether a user with this passwd shell field can log in: the shell is
/// one of `/etc/shells` (without that file, a name ending in `sh`); an
/// empty field is `/bin/sh`. `nologin`, `false`, `/bin/sync` are not.
fn can_log_in(shell: &[u8], shells: Option<&[Vec<u8>]>) -> bool {
    let shell = if shell.is_empty() { b"/bin/sh" } else { shell };
    match shells {
        Some(list) => list.iter().any(|s| s == shell),
        None => shell.ends_with(b"sh"),
    }
}

fn check_shadow(
    fs: &dyn FsView,
    users: &[Entry],
    shadow: Option<&[Entry]>,
    out: &mut Vec<Finding>,
) {
    // Only users who can log in: root, and those with a login shell
    // (a nologin user is refused whatever shadow says).
    let shells = login_shells(fs);
    let needs: Vec<&Entry> = users
        .iter()
        .filter(|e| !matches!(field(e, 0).first(), Some(b'+' | b'-')) && field(e, 1) == b"x")
        .filter(|e| field(e, 0) == b"root" || can_log_in(field(e, 6), shells.as_deref()))
        .collect();
    if needs.is_empty() {
        return;
    }
    let Some(shadow) = shadow else {
        out.push(finding(
            Severity::Error,
            format!(
                "/etc/shadow is missing but {} users keep their password there: password logins fail",
                needs.len()
            ),
            vec![
                "the password field of /etc/passwd is x: the hash is in /etc/shadow".into(),
                "/etc/shadow cannot be read as a regular file".into(),
            ],
            SHADOW,
            None,
            "restore /etc/shadow (shadow-utils keeps a copy in /etc/shadow-; pwconv makes one)",
        ));
        return;
    };
    // NIS `+` lines in shadow can supply any user: nothing is missing then.
    if shadow.iter().any(|e| field(e, 0).first() == Some(&b'+')) {
        return;
    }
    let missing: Vec<&Entry> = needs
        .into_iter()
        .filter(|u| !shadow.iter().any(|s| field(s, 0) == field(u, 0)))
        .collect();
    if missing.is_empty() {
        return;
    }
    let names: Vec<String> = missing.iter().map(|e| escape(field(e, 0))).collect();
    let mut evidence: Vec<String> = missing
        .iter()
        .take(MAX_LISTED)
        .map(|e| {
            format!(
                "/etc/passwd line {}: {} has password x, and /etc/shadow has no line for it",
                e.line,
                escape(field(e, 0))
            )
        })
        .collect();
    if missing.len() > MAX_LISTED {
        evidence.push(format!("and {} more", missing.len() - MAX_LISTED));
    }
    evidence.push("pam_unix refuses a password login for a user without a shadow entry".into());
    let root = names.iter().any(|n| n == "root");
    out.push(finding(
        Severity::Error,
        format!(
            "{} without a shadow entry: {}{}",
            if missing.len() == 1 {
                "a user"
            } else {
                "users"
            },
            names
                .iter()
                .take(MAX_LISTED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if root { " (root among them)" } else { "" }
        ),
        evidence,
        SHADOW,
        None,
        "add the missing lines (pwconv adds them from /etc/passwd)",
    ));
}

/// glibc's version from ld.so, as (major, minor).
fn glibc_version(ctx: &Context<'_>) -> Option<(u32, u32)> {
    let (_, v) = ctx.guest.ld_so.as_ref()?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether the guest has glibc at all (musl has no NSS modules).
fn has_glibc(ctx: &Context<'_>) -> bool {
    ctx.guest.ld_so.is_some()
        || ctx
            .guest
            .lib_dirs
            .iter()
            .any(|d| path::resolve(ctx.fs, &path::join(d, b"libc.so.6"), true).is_ok())
}

/// The library file of NSS module `module` in the guest, if any.
fn module_file(ctx: &Context<'_>, module: &str) -> Option<Vec<u8>> {
    let name = format!("libnss_{module}.so.2");
    ctx.guest.lib_dirs.iter().find_map(|d| {
        let p = path::join(d, name.as_bytes());
        let r = path::resolve(ctx.fs, &p, true).ok()?;
        let m = ctx.fs.metadata(r.node).ok()?;
        (m.file_type == FileType::Regular).then_some(p)
    })
}

/// The services of each database line of an nsswitch.conf: (line, database, services).
pub fn parse_nsswitch(text: &[u8]) -> Vec<(usize, String, Vec<String>)> {
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').take(MAX_LINES).enumerate() {
        let line = String::from_utf8_lossy(line);
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((db, rest)) = line.split_once(':') else {
            continue;
        };
        let mut services = Vec::new();
        let mut in_action = false;
        for word in rest.split_ascii_whitespace() {
            // `[NOTFOUND=return]` and the like, possibly split over words.
            if word.starts_with('[') {
                in_action = true;
            }
            if in_action {
                if word.ends_with(']') {
                    in_action = false;
                }
                continue;
            }
            services.push(word.to_string());
        }
        out.push((i + 1, db.trim().to_string(), services));
    }
    out
}

/// Check the modules of passwd, group and shadow; a phrase for the summary.
fn check_nsswitch(ctx: &Context<'_>, out: &mut Vec<Finding>) -> String {
    if !has_glibc(ctx) {
        return String::new();
    }
    let Some(text) = read_small(ctx.fs, NSSWITCH, MAX_FILE) else {
        return String::new();
    };
    // From 2.34 `files` and `dns` are in libc itself; with the version
    // unknown they are taken as built in (no finding rather than a false one).
    let builtin_files = glibc_version(ctx).is_none_or(|v| v >= (2, 34));
    let mut looked = 0usize;
    for (line, db, services) in parse_nsswitch(&text) {
        if !["passwd", "group", "shadow"].contains(&db.as_str()) {
            continue;
        }
        let mut missing = Vec::new();
        let mut present = 0usize;
        for s in &services {
            looked += 1;
            let builtin = builtin_files && (s == "files" || s == "dns");
            if builtin || module_file(ctx, s).is_some() {
                present += 1;
            } else {
                missing.push(s.clone());
            }
        }
        if missing.is_empty() {
            continue;
        }
        let severity = if present == 0 && db != "group" {
            Severity::Error
        } else {
            Severity::Warning
        };
        let dirs: Vec<String> = ctx.guest.lib_dirs.iter().map(|d| escape(d)).collect();
        let mut evidence = vec![format!(
            "/etc/nsswitch.conf line {line}: {db}: {}",
            services.join(" ")
        )];
        for m in &missing {
            evidence.push(format!(
                "libnss_{m}.so.2 is in none of the library directories ({})",
                dirs.join(", ")
            ));
        }
        evidence.push(if present == 0 {
            format!("glibc skips a module it cannot load: no source of {db} entries is left")
        } else {
            "glibc skips a module it cannot load: the entries it alone knows are not found".into()
        });
        out.push(finding(
            severity,
            format!(
                "nsswitch.conf's {db} module{} {} cannot be loaded",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
            evidence,
            NSSWITCH,
            Some(line),
            "install the module's package or remove it from the line",
        ));
    }
    format!(", {looked} NSS modules")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_as_pwck() {
        let t = b"root:x:0:0:root:/root:/bin/bash\n\
games:x:5:60:games\n\
#comment\n\
\n\
+@netgroup\n\
bad:x:abc:0::/:/bin/sh\n\
:x:1:1::/:/bin/sh\n\
ok:x:1000:1000:,,,:/home/ok:/bin/bash";
        let (ok, bad) = parse(t, &PASSWD_FORMAT);
        assert_eq!(ok.iter().map(|e| e.line).collect::<Vec<_>>(), vec![1, 5, 8]);
        let lines: Vec<(usize, bool)> = bad.iter().map(|m| (m.line, m.comment)).collect();
        assert_eq!(lines, vec![(2, false), (3, true), (6, false), (7, false)]);
        assert_eq!(bad[0].why, "5 fields, not 7");
    }

    #[test]
    fn shadow_accepts_empty_and_old_format() {
        let t = b"root:$6$x:19000:0:99999:7:::\nold:*:1:2:3\nbad:*:x:::::::\n";
        let (ok, bad) = parse(t, &SHADOW_FORMAT);
        assert_eq!(ok.len(), 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        // A hash is never shown.
        let (_, bad) = parse(b"root:$6$salt$hash:x:::::::\n", &SHADOW_FORMAT);
        assert_eq!(bad[0].text, "root:…:x:::::::");
    }

    /// A small glibc guest in memory: ld.so of `glibc`, libc, the NSS
    /// modules `modules`, and the account files given.
    fn guest(glibc: &str, modules: &[&str], files: &[(&str, &str)]) -> crate::fs::mem::MemFs {
        let mut fs = crate::fs::mem::MemFs::new();
        let root = fs.root_id();
        let etc = fs.add_dir(root, b"etc", 0o755);
        for (name, text) in files {
            fs.add_file(etc, name.as_bytes(), 0o644, text.as_bytes());
        }
        let bin = fs.add_dir(root, b"bin", 0o755);
        fs.add_file(bin, b"bash", 0o755, b"\x7fELF");
        let lib = fs.add_dir(root, b"lib64", 0o755);
        fs.add_file(lib, format!("ld-{glibc}.so").as_bytes(), 0o755, b"\x7fELF");
        fs.add_symlink(
            lib,
            b"ld-linux-x86-64.so.2",
            format!("ld-{glibc}.so").as_bytes(),
        );
        fs.add_file(lib, b"libc.so.6", 0o755, b"\x7fELF");
        for m in modules {
            fs.add_file(
                lib,
                format!("libnss_{m}.so.2").as_bytes(),
                0o755,
                b"\x7fELF",
            );
        }
        fs
    }

    fn run(fs: &crate::fs::mem::MemFs) -> Vec<Finding> {
        let ctx = Context::new(fs, None, None);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        out
    }

    const PASSWD_OK: &str =
        "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\n";
    const SHADOW_OK: &str = "root:*:19000:0:99999:7:::\n";

    #[test]
    fn nss_modules_resolve_or_are_built_in() {
        let files = |ns: &'static str| {
            vec![
                ("passwd", PASSWD_OK),
                ("shadow", SHADOW_OK),
                ("group", "root:x:0:\n"),
                ("nsswitch.conf", ns),
            ]
        };
        // glibc 2.36: files is built in; systemd's module is there.
        let fs = guest(
            "2.36",
            &["systemd"],
            &files("passwd: files systemd\nshadow: files\n"),
        );
        assert_eq!(run(&fs), vec![]);
        // glibc 2.17 needs libnss_files.so.2, and sss is missing: no source left.
        let fs = guest("2.17", &[], &files("passwd: files sss\ngroup: files\n"));
        let got = run(&fs);
        let s: Vec<(Severity, &str)> = got
            .iter()
            .map(|f| (f.severity, f.summary.as_str()))
            .collect();
        assert_eq!(
            s,
            vec![
                (
                    Severity::Error,
                    "nsswitch.conf's passwd modules files, sss cannot be loaded"
                ),
                (
                    Severity::Warning,
                    "nsswitch.conf's group module files cannot be loaded"
                ),
            ]
        );
        assert_eq!(
            got[0].repair,
            Some(Repair::View {
                path: NSSWITCH.to_vec(),
                line: Some(1),
                hint: "install the module's package or remove it from the line".into()
            })
        );
        // One module missing beside files: a warning.
        let fs = guest("2.36", &[], &files("passwd: files ldap\n"));
        let got = run(&fs);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].severity, Severity::Warning);
    }

    #[test]
    fn root_and_shadow_entries() {
        // No root, a login user without a shadow line, a nologin one without.
        let fs = guest(
            "2.36",
            &[],
            &[
                (
                    "passwd",
                    "ta:x:1000:1000::/home/ta:/bin/bash\nadm:x:3:4::/:/sbin/nologin\n",
                ),
                ("shadow", "other:*:1::::::\n"),
                ("shells", "/bin/sh\n/bin/bash\n"),
            ],
        );
        let got = run(&fs);
        let s: Vec<&str> = got.iter().map(|f| f.summary.as_str()).collect();
        assert_eq!(
            s,
            vec![
                "/etc/passwd has no root entry: root cannot log in, and the emergency shell refuses to start",
                "a user without a shadow entry: ta",
            ]
        );
        assert!(got.iter().all(|f| f.impact == Impact::Login));
        // A healthy pair gives nothing.
        let fs = guest("2.36", &[], &[("passwd", PASSWD_OK), ("shadow", SHADOW_OK)]);
        assert_eq!(run(&fs), vec![]);
    }

    #[test]
    fn nsswitch_services_without_actions() {
        let t = b"# comment\npasswd:  files systemd\ngroup: sss [NOTFOUND=return] files\nhosts: files dns\nshadow: files [ SUCCESS=return ] nis # tail\n";
        let p = parse_nsswitch(t);
        assert_eq!(
            p[0],
            (2, "passwd".into(), vec!["files".into(), "systemd".into()])
        );
        assert_eq!(p[1].2, vec!["sss".to_string(), "files".into()]);
        assert_eq!(p[3].2, vec!["files".to_string(), "nis".into()]);
    }
}
