//! The prompt for a conversation, rendered with the chat template the GGUF
//! carries (`tokenizer.chat_template`), as llama.cpp's own server does.

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use pincer_types::Message;

use crate::error::EngineError;

/// The model's own template, or ChatML when the GGUF has none (what
/// llama.cpp falls back to as well).
/// The flag says whether the template came from the GGUF.
pub fn model_template(model: &LlamaModel) -> Result<(LlamaChatTemplate, bool), EngineError> {
    match model.chat_template(None) {
        Ok(t) => Ok((t, true)),
        Err(_) => LlamaChatTemplate::new("chatml")
            .map(|t| (t, false))
            .map_err(|e| EngineError::BadPrompt(e.to_string())),
    }
}

/// Role and content of each message, as chat templates expect them. Tool
/// calls are written into the assistant's content so the model sees them.
pub fn roles(messages: &[Message]) -> Vec<(&'static str, String)> {
    messages
        .iter()
        .map(|m| match m {
            Message::System { text } => ("system", text.clone()),
            Message::User { text } => ("user", text.clone()),
            Message::Assistant {
                text, tool_calls, ..
            } => {
                let mut content = text.clone();
                for call in tool_calls {
                    if !content.is_empty() {
                        content.push('\n');
                    }
                    content.push_str(&format!(
                        "<tool_call>{{\"name\": {:?}, \"arguments\": {}}}</tool_call>",
                        call.name, call.arguments
                    ));
                }
                ("assistant", content)
            }
            Message::Tool { content, .. } => ("tool", content.clone()),
        })
        .collect()
}

/// The prompt for `messages`. A final assistant message (text, no tool
/// call) is a prefill: the prompt ends inside it, so the model continues it.
pub fn render(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[Message],
) -> Result<String, EngineError> {
    if let Some((
        Message::Assistant {
            text, tool_calls, ..
        },
        before,
    )) = messages.split_last()
        && tool_calls.is_empty()
    {
        return Ok(render(model, template, before)? + text);
    }
    let chat = roles(messages)
        .into_iter()
        .map(|(role, content)| {
            LlamaChatMessage::new(role.to_string(), content)
                .map_err(|_| EngineError::BadPrompt("a message contains a NUL character".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| EngineError::BadPrompt(format!("the model's chat template failed: {e}")))
}
