//! From a chosen model to its answer: `providers` calls any model of the
//! catalog, HTTP or embedded, as one event stream.

mod providers;

pub use providers::{AnswerStream, Providers};
