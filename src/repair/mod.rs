//! Repairs: choosing the right target for a broken symlink, finding broken
//! links (`doctor`), and (for ext2/3/4) writing the repair with an undo record.

pub mod candidates;
pub mod doctor;
pub mod elf;
pub mod relink;
pub mod signs;
pub mod undo;
