//! green: run plain synchronous code on `may` coroutines.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod error;

pub use error::GreenError;
