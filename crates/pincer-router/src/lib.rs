//! From a chosen model to its answer.
//!
//! - `providers`: calls any model of the catalog, HTTP or embedded, as one
//!   event stream;
//! - `router`: an agent's candidates tried in order, with decisions by error
//!   kind, every attempt recorded, and an all-failed summary;
//! - `cooldown`: failing providers skipped for a while (OpenClaw's schedule),
//!   kept in a state file across restarts;
//! - `discovery`: the models local servers list, asked at once and kept
//!   for a minute;
//! - `policy`: what each kind of failure means (fail over, rotate the key,
//!   cool down what, which HTTP status), in one table.

mod cooldown;
mod discovery;
mod keys;
mod policy;
mod providers;
mod router;

pub use cooldown::{Cooldowns, now_ms, state_path, write_whole};
pub use discovery::{DISCOVERY_TTL, discovery_path};
pub use keys::{Credential, Credentials, KeyStatus, store_path};
pub use policy::{Decision, Policy, Scope, cooldown_key, decide, http_status, policy};
pub use providers::{AnswerStream, Gguf, Providers};
pub use router::{AllFailed, Answering, Attempt, Completed, Next, Notice, Router};
