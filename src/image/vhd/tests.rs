//! Unit tests of the VHD reader.
