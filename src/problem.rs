//! Damage as data: what was damaged, where, and what is wrong with it.
//!
//! Readers keep going past damage and list what they found; each finding is
//! a [`Problem`]. Its [`Display`](std::fmt::Display) is the sentence shown to
//! a person (`GPT header at byte 512: bad signature`); `layers --json` also
//! gives its parts, with the byte position as a number.

use std::fmt;

/// One piece of damage found while reading.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// What was damaged ("GPT header", "ext inode 12", "directory block");
    /// empty when the message names it in its own words.
    pub structure: String,
    /// Absolute byte position of the structure, where known.
    pub offset: Option<u64>,
    /// What is wrong (and what was expected).
    pub detail: String,
}

impl Problem {
    /// A structure at a known byte position: shown as
    /// `{structure} at byte {offset}: {detail}`.
    pub fn at(structure: impl Into<String>, offset: u64, detail: impl Into<String>) -> Self {
        Problem {
            structure: structure.into(),
            offset: Some(offset),
            detail: detail.into(),
        }
    }

    /// A structure without a byte position: shown as `{structure}: {detail}`.
    pub fn of(structure: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            structure: structure.into(),
            offset: None,
            detail: detail.into(),
        }
    }

    /// A message whose parts are not separated: shown as it is.
    pub fn text(detail: impl Into<String>) -> Self {
        Problem {
            structure: String::new(),
            offset: None,
            detail: detail.into(),
        }
    }
}

/// The sentences of `problems`, as shown to a person.
pub fn texts(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

impl Problem {
    /// The same problem named from further out (`disk.img`, `VG vg0`):
    /// `where` goes before the structure, and the sentence becomes
    /// `{where}: {sentence}`.
    pub fn within(mut self, r#where: impl Into<String>) -> Self {
        let w = r#where.into();
        self.structure = if self.structure.is_empty() {
            w
        } else {
            format!("{w}: {}", self.structure)
        };
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.structure.is_empty(), self.offset) {
            (_, Some(o)) => write!(f, "{} at byte {o}: {}", self.structure, self.detail),
            (true, None) => f.write_str(&self.detail),
            (false, None) => write!(f, "{}: {}", self.structure, self.detail),
        }
    }
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::text(s)
    }
}

impl From<&str> for Problem {
    fn from(s: &str) -> Self {
        Problem::text(s)
    }
}

impl From<crate::error::Error> for Problem {
    fn from(e: crate::error::Error) -> Self {
        Problem::from(&e)
    }
}

impl From<&crate::error::Error> for Problem {
    fn from(e: &crate::error::Error) -> Self {
        match e {
            crate::error::Error::Corrupt {
                structure,
                offset,
                detail,
            } => Problem::at(structure.clone(), *offset, detail.clone()),
            other => Problem::text(other.to_string()),
        }
    }
}

impl PartialEq<str> for Problem {
    fn eq(&self, other: &str) -> bool {
        let text = self.to_string();
        text == other
    }
}

impl PartialEq<&str> for Problem {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for Problem {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// As JSON: `{"structure", "offset", "detail", "text"}`, `structure` and
/// `offset` null when unknown, `text` the sentence [`Display`](fmt::Display) gives.
impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Problem", 4)?;
        let structure = (!self.structure.is_empty()).then_some(self.structure.as_str());
        st.serialize_field("structure", &structure)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("detail", &self.detail)?;
        st.serialize_field("text", &self.to_string())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_old_sentence() {
        let p = Problem::at("GPT header", 512, "bad signature");
        assert_eq!(p.to_string(), "GPT header at byte 512: bad signature");
        assert_eq!(Problem::of("LV x", "too big").to_string(), "LV x: too big");
        assert_eq!(Problem::text("as is").to_string(), "as is");
        assert_eq!(
            p.clone().within("d.img").to_string(),
            "d.img: GPT header at byte 512: bad signature"
        );
        assert_eq!(Problem::text("x").within("VG v").to_string(), "VG v: x");
        let e = crate::error::Error::corrupt("ext superblock", 1024, "bad magic");
        let q = Problem::from(&e);
        assert_eq!(q.offset, Some(1024));
        assert_eq!(q.to_string(), e.to_string());
    }

    #[test]
    fn json_has_a_numeric_offset_and_the_text() {
        let p = Problem::at("GPT header", 512, "bad signature");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["offset"], 512);
        assert_eq!(v["structure"], "GPT header");
        assert_eq!(v["text"], "GPT header at byte 512: bad signature");
        let t = serde_json::to_value(Problem::text("x")).unwrap();
        assert!(t["offset"].is_null() && t["structure"].is_null());
    }
}
