//! Checks before a request leaves: output capped at the model's `maxTokens`,
//! and a prompt that cannot fit the context window refused with the numbers.

use crate::target::Target;
use pincer_types::ChatRequest;
use pincer_types::{ErrorKind, Overflow, ProviderError};

/// Tokens a message costs beyond its text (role markers, separators).
const PER_MESSAGE_OVERHEAD: u64 = 4;

/// A conservative token estimate without the model's tokenizer: one token
/// per 4 bytes of UTF-8 (OpenClaw's chars/4 on English; bytes count CJK text
/// closer to its real token cost than chars do).
pub fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    let text: usize = req.messages.iter().map(|m| m.prompt_chars()).sum();
    let tools: usize = req
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
        .sum();
    let bytes = u64::try_from(text + tools).unwrap_or(u64::MAX);
    bytes.div_ceil(4) + PER_MESSAGE_OVERHEAD * req.messages.len() as u64
}

/// The output cap to send: the request's, never above the model's `maxTokens`.
/// Fails with `ContextOverflow` when prompt + output cannot fit.
pub fn preflight(t: &Target, req: &ChatRequest) -> Result<u64, ProviderError> {
    let max_out = req.output_cap(t.max_tokens);
    let prompt = estimate_prompt_tokens(req);
    let needed = prompt.saturating_add(max_out);
    if needed > t.context_window {
        let mut e = ProviderError::new(
            ErrorKind::ContextOverflow,
            format!(
                "not sent: about {prompt} prompt tokens + {max_out} reserved for output = {needed}, \
                 over {}'s context window of {} by {}; shorten the conversation or lower maxTokens",
                t.reference,
                t.context_window,
                needed - t.context_window
            ),
        );
        e.overflow = Some(Overflow {
            requested: Some(needed),
            limit: Some(t.context_window),
        });
        return Err(e);
    }
    Ok(max_out)
}
