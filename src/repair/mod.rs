//! Repairs: choosing the right target for a broken symlink, and writing the
//! repair with an undo record.

pub mod candidates;
pub mod relink;
pub mod signs;
pub mod undo;
