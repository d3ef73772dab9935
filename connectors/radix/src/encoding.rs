//! The code pages RADIX installations write live in `gsko-codepages`, shared with the bank
//! connector; re-exported here so a CSV mapping names them as before.

pub use gsko_codepages::*;
