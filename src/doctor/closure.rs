//! The dynamic-linking closure of what boots. (Being written.)

use super::{Check, Checked, Context, Finding};

/// Resolve what boots and report what cannot load.
pub fn check(_ctx: &Context<'_>, _out: &mut Vec<Finding>) -> Checked {
    Checked {
        check: Check::Linking,
        summary: "not yet".into(),
    }
}
