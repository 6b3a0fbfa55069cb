//! The agent runtime: conversations that live in the gateway, fit the
//! model's window, and obey chat commands. [`Runtime::deliver`] is the one
//! entry point every surface calls. Its rules live apart, without I/O:
//!
//! - `budget`: what of a conversation fits a model's context window (chars/4
//!   estimates, OpenClaw's compaction reserve), dropping whole turns from
//!   the oldest and never a tool result without its call;
//! - `compact`: what a compaction summarises and keeps, and its requests;
//! - `command`: the chat commands (`/new`, `/model`, `/compact`…), parsed
//!   from a message with OpenClaw's rules;
//! - `prompt`: the system prompt, full or lean, from the workspace files;
//! - `queue`: what happens to messages that arrive while a session is busy
//!   (`collect`, `followup`, `interrupt`);
//! - `reply`: the final text a user receives.
//!
//! The conversation itself is the session's transcript tree
//! (`pincer_sessions::Tree`).

pub mod budget;
pub mod command;
pub mod compact;
pub mod prompt;
pub mod queue;
pub mod reply;
mod runtime;

pub use budget::{Budget, Fit, Overflow, estimate};
pub use command::{Command, ModelArg, parse};
pub use queue::QueueSettings;
pub use reply::final_text;
pub use runtime::{
    AgentError, AgentEvent, CONTEXT_OVERFLOW_TEXT, Delivered, Delivery, MidAnswer, Queued, Runtime,
    ToolEvent,
};
