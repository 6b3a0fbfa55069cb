//! The agent runtime's rules, kept apart from any I/O so the gateway, `pincer
//! chat` and later the channels and the web chat share them:
//!
//! - `budget`: what of a conversation fits a model's context window (chars/4
//!   estimates, OpenClaw's compaction reserve), dropping whole turns from
//!   the oldest and never a tool result without its call;
//! - `command`: the chat commands (`/new`, `/model`, `/compact`…), parsed
//!   from a message with OpenClaw's rules.
//!
//! The conversation itself is the session's transcript tree
//! (`pincer_sessions::Tree`).

pub mod budget;
pub mod command;

pub use budget::{Budget, Fit, Overflow, estimate};
pub use command::{Command, ModelArg, parse};
