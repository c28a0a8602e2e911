//! Every command's JSON against the schema in docs/json.md: the tables there
//! are read by this test, so the documentation and the output cannot drift
//! apart. A key printed but not documented, a documented key missing, or a
//! value of another type fails.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{fixture, fixture_file, vmrescue};

#[derive(Debug, Clone)]
enum Ty {
    Number,
    Str,
    Bool,
    Object,
    Array(Box<Ty>),
    Named(String),
}

#[derive(Debug, Clone)]
struct Field {
    ty: Ty,
    nullable: bool,
    optional: bool,
}

type Schemas = BTreeMap<String, BTreeMap<String, Field>>;

fn parse_ty(s: &str) -> Ty {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("array of ") {
        return Ty::Array(Box::new(parse_ty(inner)));
    }
    match s {
        "number" => Ty::Number,
        "string" => Ty::Str,
        "bool" => Ty::Bool,
        "object" => Ty::Object,
        name => Ty::Named(name.to_string()),
    }
}

/// The `<!-- schema: NAME -->` tables of docs/json.md.
fn schemas() -> Schemas {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let mut out = Schemas::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(name) = line
            .strip_prefix("<!-- schema: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            current = Some(name.to_string());
            out.insert(name.to_string(), BTreeMap::new());
            continue;
        }
        let Some(name) = &current else { continue };
        if !line.starts_with("| `") {
            if !line.starts_with('|') {
                current = None;
            }
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let key = cells[1].trim_matches('`').to_string();
        let mut ty = cells[2];
        let optional = ty.ends_with(", optional");
        ty = ty.trim_end_matches(", optional");
        let nullable = ty.ends_with(" or null");
        ty = ty.trim_end_matches(" or null");
        let field = Field {
            ty: parse_ty(ty),
            nullable,
            optional,
        };
        out.get_mut(name).unwrap().insert(key, field);
    }
    // Every named type is a table.
    fn names(t: &Ty, acc: &mut Vec<String>) {
        match t {
            Ty::Array(i) => names(i, acc),
            Ty::Named(n) => acc.push(n.clone()),
            _ => {}
        }
    }
    let mut used = Vec::new();
    for fields in out.values() {
        for f in fields.values() {
            names(&f.ty, &mut used);
        }
    }
    for n in used {
        assert!(
            out.contains_key(&n),
            "docs/json.md names a type {n:?} it has no table for"
        );
    }
    out
}

fn check(schemas: &Schemas, ty: &Ty, v: &Value, at: &str) {
    match ty {
        Ty::Number => assert!(v.is_number(), "{at}: not a number: {v}"),
        Ty::Str => assert!(v.is_string(), "{at}: not a string: {v}"),
        Ty::Bool => assert!(v.is_boolean(), "{at}: not a bool: {v}"),
        Ty::Object => assert!(v.is_object(), "{at}: not an object: {v}"),
        Ty::Array(inner) => {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array: {v}"));
            for (i, x) in a.iter().enumerate() {
                check(schemas, inner, x, &format!("{at}[{i}]"));
            }
        }
        Ty::Named(name) => {
            let fields = &schemas[name];
            let o = v
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object ({name}): {v}"));
            for k in o.keys() {
                assert!(
                    fields.contains_key(k),
                    "{at}: key {k:?} is not in docs/json.md's {name} table"
                );
            }
            for (k, f) in fields {
                match o.get(k) {
                    None => assert!(f.optional, "{at}: {name}.{k} missing"),
                    Some(Value::Null) => {
                        assert!(f.nullable, "{at}: {name}.{k} is null");
                    }
                    Some(x) => check(schemas, &f.ty, x, &format!("{at}.{k}")),
                }
            }
        }
    }
}

fn output(args: &[&str]) -> Value {
    let o = vmrescue(args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn check_doc(schemas: &Schemas, name: &str, args: &[&str]) {
    let v = output(args);
    check(schemas, &Ty::Named(name.into()), &v, &format!("{args:?}"));
    assert_eq!(v["version"], 1, "{args:?}");
}

#[test]
fn every_command_prints_what_docs_json_md_says() {
    let s = schemas();
    let f = |name: &str| fixture(name).to_str().unwrap().to_owned();
    // layers: partitions, LVM, MD, thin pools and nested VM disks with their
    // Proxmox guests, btrfs subvolumes, damage.
    check_doc(&s, "layers", &["layers", "--json", "--demo"]);
    for img in ["pve-host", "thin", "btrfs-main", "part-gpt-damaged"] {
        check_doc(&s, "layers", &["layers", "--json", &f(img)]);
    }
    check_doc(
        &s,
        "layers",
        &["layers", "--json", "--scan", &f("part-gpt-damaged")],
    );
    check_doc(
        &s,
        "layers",
        &[
            "layers",
            "--json",
            &f("md-r5-degraded-d0"),
            "--disk",
            &f("md-r5-degraded-d1"),
        ],
    );
    // A LUKS volume, locked (no key) and unlocked.
    check_doc(&s, "layers", &["layers", "--json", &f("luks2-argon2id-4k")]);
    let key = fixture_file("luks.pass").to_str().unwrap().to_owned();
    check_doc(
        &s,
        "layers",
        &["layers", "--json", "--key-file", &key, &f("luks1-xts")],
    );
    // A Windows guest: what its hives say, its drive letters; doctor on it.
    check_doc(&s, "layers", &["layers", "--json", &f("windows")]);
    check_doc(&s, "doctor", &["doctor", "--json", &f("windows")]);
    check_doc(&s, "doctor", &["doctor", "--json", "--demo"]);
    check_doc(
        &s,
        "doctor",
        &["doctor", "--json", &f("doctor-linking-missing")],
    );
    for img in [
        "qcow2-snap",
        "qcow2-chain-top",
        "qcow2-datafile",
        "qcow2-zstd",
        "bare-ext4",
    ] {
        check_doc(&s, "info", &["info", "--output", "json", &f(img)]);
    }
    for img in ["vmdk-chain-child.vmdk", "vmdk-streamOptimized.vmdk"] {
        let p = crate::common::fixture_file(img);
        check_doc(
            &s,
            "info",
            &["info", "--output", "json", p.to_str().unwrap()],
        );
    }
    // Records: ls and find, symlinks, devices and directories among them.
    for args in [
        &["ls", "--json", "-R", "-a", "--demo", "/"][..],
        &["find", "--json", "--demo", "/"][..],
    ] {
        let v = output(args);
        let a = v.as_array().expect("an array of records");
        assert!(a.len() > 50, "{args:?}");
        for (i, r) in a.iter().enumerate() {
            check(
                &s,
                &Ty::Named("record".into()),
                r,
                &format!("{args:?}[{i}]"),
            );
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().to_str().unwrap();
    check_doc(
        &s,
        "cp_plan",
        &["cp", "--dry-run", "--json", "--demo", "/etc", dest],
    );
    check_doc(&s, "cp", &["cp", "--json", "--demo", "/etc", dest]);
    // Again: every file exists, so each one fails and is listed.
    let v = output(&["cp", "--json", "--demo", "/etc", dest]);
    check(&s, &Ty::Named("cp".into()), &v, "cp again");
    assert!(v["failed_count"].as_u64().unwrap() > 0);
}
