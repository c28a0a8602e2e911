//! Unit tests of the VHDX reader.
