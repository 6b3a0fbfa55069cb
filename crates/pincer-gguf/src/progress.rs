//! How long downloads report how far they are, without this crate knowing
//! about terminals: the CLI draws a bar, tests and servers stay silent.

pub trait Progress: Send + Sync {
    /// A new step: `total` bytes when known.
    fn begin(&self, label: &str, total: Option<u64>);
    /// Bytes done so far in this step.
    fn set(&self, done: u64);
    /// A one-line remark (a retry, a source that failed).
    fn note(&self, message: &str);
    fn end(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &str, _: Option<u64>) {}
    fn set(&self, _: u64) {}
    fn note(&self, _: &str) {}
    fn end(&self) {}
}
