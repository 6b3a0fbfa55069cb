//! How a server's error reply becomes a `ProviderError`: the wording tables
//! come from what the servers really answer: llama.cpp's
//! `exceed_context_size_error` and "Loading model", LM Studio's "Trying to keep
//! the first N tokens…" and "No models loaded", vLLM's "This model's maximum
//! context length is…", Ollama's "not found, try pulling it first", OpenAI's
//! `context_length_exceeded` / `insufficient_quota`, Anthropic's "prompt is too
//! long" / `overloaded_error`.

use std::time::Duration;

use pincer_types::{ErrorKind, Overflow, ProviderError};

/// The message and the type/code fields of an error body, in any of the shapes servers use.
fn parse_body(body: &str) -> (String, String) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return (body.trim().chars().take(2000).collect(), String::new());
    };
    let err = v.get("error").unwrap_or(&v);
    let message = err
        .get("message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("detail"))
        .and_then(|m| m.as_str())
        .or_else(|| err.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().chars().take(2000).collect());
    let code = [
        err.get("type"),
        err.get("code"),
        v.get("type"),
        v.get("code"),
    ]
    .into_iter()
    .flatten()
    .filter_map(|c| c.as_str())
    .collect::<Vec<_>>()
    .join(" ");
    (message, code)
}

/// Remove credentials from upstream text: the keys we sent, and anything
/// shaped like a bearer key (`sk-…`).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "***");
    }
    out.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
        .map(|word| {
            let core = word
                .trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',');
            let looks_like_key = ["sk-", "sk_", "xai-", "gsk_"]
                .iter()
                .any(|p| core.starts_with(p))
                && core.len() >= 12;
            if looks_like_key {
                format!("{}***{}", &core[..3], &word[core.len()..])
            } else {
                word.to_string()
            }
        })
        .collect()
}

fn has(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

/// The first integer after `phrase` in `text`.
fn number_after(text: &str, phrase: &str) -> Option<u64> {
    let rest = &text[text.find(phrase)? + phrase.len()..];
    let digits: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn overflow_counts(lower: &str, body: &str) -> Overflow {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let e = v.get("error").unwrap_or(&v);
        let n = |k: &str| e.get(k).and_then(|x| x.as_u64());
        if n("n_ctx").is_some() {
            return Overflow {
                requested: n("n_prompt_tokens"),
                limit: n("n_ctx"),
            };
        }
    }
    let pairs: [(&str, &str); 5] = [
        ("you requested", "maximum context length is"),
        ("trying to keep the first", "context length of only"),
        ("prompt is too long:", "> "),
        ("requested tokens (", "context window of"),
        ("n_keep (", "n_ctx ("),
    ];
    for (req, lim) in pairs {
        if lower.contains(req) {
            return Overflow {
                requested: number_after(lower, req),
                limit: number_after(lower, lim),
            };
        }
    }
    Overflow {
        requested: None,
        limit: None,
    }
}

/// Classify an HTTP error reply. `retry_after` is the Retry-After header
/// (seconds); `secrets` are the credentials sent with the request.
pub fn classify_http(
    status: u16,
    body: &str,
    retry_after: Option<&str>,
    secrets: &[&str],
) -> ProviderError {
    let (message, code) = parse_body(body);
    let lower = format!("{} {}", message.to_lowercase(), code.to_lowercase());
    let kind = kind_of(status, &lower);
    let retry_after = retry_after
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
    ProviderError {
        kind,
        status: Some(status),
        message: scrub(&message, secrets),
        retry_after,
        overflow: (kind == ErrorKind::ContextOverflow)
            .then(|| overflow_counts(&message.to_lowercase(), body)),
    }
}

/// Classify an error that arrived inside a stream (after a 200): the body's
/// own code stands in for the status, and a bare error counts as server-side.
pub fn classify_stream_error(payload: &str, secrets: &[&str]) -> ProviderError {
    let v: Option<serde_json::Value> = serde_json::from_str(payload).ok();
    let err = v.as_ref().map(|v| v.get("error").unwrap_or(v));
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_u64())
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    let name = |k: &str| {
        err.and_then(|e| e.get(k))
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let typed = format!("{} {}", name("type"), name("code"));
    let status = code.unwrap_or(if typed.contains("overloaded") {
        529
    } else if typed.contains("rate_limit") {
        429
    } else if typed.contains("authentication") || typed.contains("permission") {
        401
    } else if typed.contains("invalid_request") {
        400
    } else {
        500
    });
    let mut e = classify_http(status, payload, None, secrets);
    e.status = None;
    e
}

/// Whether a refusal is the server declining an assistant prefill (the
/// conversation ending on the assistant's words, as a continuation sends
/// it), rather than something wrong with the request itself.
pub fn refuses_prefill(e: &ProviderError) -> bool {
    e.kind == ErrorKind::BadRequest
        && has(
            &e.message.to_lowercase(),
            &[
                "prefill",
                "must end with a user message",
                "expected last role user",
                "last message must be from the user",
                "last message must have role `user`",
                "final assistant content",
            ],
        )
}

fn kind_of(status: u16, t: &str) -> ErrorKind {
    // Wording first: servers disagree on status codes (llama.cpp once sent
    // context overflows as 500, LM Studio sends "no models loaded" as 400).
    if has(
        t,
        &[
            "exceed_context_size_error",
            "exceeds the available context size",
            "context_length_exceeded",
            "maximum context length",
            "prompt is too long",
            "request_too_large",
            "context the overflows",
            "tokens to keep from the initial prompt is greater than the context length",
            "cannot truncate prompt with n_keep",
            "exceed context window",
            "context length exceeded",
            "input exceeds the maximum number of tokens",
            "input length exceeds the context length",
            "prompt is longer than the context length",
        ],
    ) {
        return ErrorKind::ContextOverflow;
    }
    if has(
        t,
        &[
            "loading model",
            "model is loading",
            "model is still loading",
            "model loading",
        ],
    ) {
        return ErrorKind::ModelLoading;
    }
    if has(
        t,
        &[
            "insufficient_quota",
            "credit balance",
            "insufficient credits",
            "payment required",
            "billing",
        ],
    ) || status == 402
    {
        return ErrorKind::Billing;
    }
    if has(
        t,
        &[
            "model_not_found",
            "model not found",
            "no models loaded",
            "try pulling it first",
            "does not exist",
            "unknown model",
            "invalid model",
        ],
    ) || (t.contains("not_found_error") && t.contains("model"))
    {
        return ErrorKind::ModelNotFound;
    }
    match status {
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::RateLimit,
        408 | 504 | 522 | 524 => ErrorKind::Timeout,
        404 => ErrorKind::ModelNotFound,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 if has(t, &["overloaded", "at capacity", "temporarily unavailable"]) => {
            ErrorKind::Overloaded
        }
        500..=599 => ErrorKind::Server,
        _ if has(t, &["rate limit", "rate_limit", "too many requests"]) => ErrorKind::RateLimit,
        _ if has(
            t,
            &[
                "authentication_error",
                "invalid api key",
                "incorrect api key",
                "invalid x-api-key",
            ],
        ) =>
        {
            ErrorKind::Auth
        }
        _ => ErrorKind::BadRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_http(status, body, None, &[]).kind
    }

    #[test]
    fn prefill_refusals_in_servers_own_words() {
        let refusal = |status, body| refuses_prefill(&classify_http(status, body, None, &[]));
        for body in [
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}"#,
            r#"{"object":"error","message":"Expected last role User or Tool (got Assistant)","type":"BadRequestError","code":400}"#,
            r#"{"error":{"message":"Assistant message prefill is not supported for this model","code":400}}"#,
        ] {
            assert!(refusal(400, body), "{body}");
        }
        // Other refusals, and the same words on a server error, are not.
        assert!(!refusal(
            400,
            r#"{"error":{"message":"temperature must be at most 2"}}"#
        ));
        assert!(!refusal(
            500,
            r#"{"error":{"message":"prefill failed: out of memory"}}"#
        ));
    }

    #[test]
    fn context_overflow_in_each_servers_words() {
        let llama = r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":14429,"n_ctx":8192}}"#;
        let e = classify_http(400, llama, None, &[]);
        assert_eq!(e.kind, ErrorKind::ContextOverflow);
        assert_eq!(
            e.overflow,
            Some(Overflow {
                requested: Some(14429),
                limit: Some(8192)
            })
        );
        // Older llama.cpp: same error with code 500.
        assert_eq!(
            kind(500, &llama.replace("400", "500")),
            ErrorKind::ContextOverflow
        );

        let vllm = r#"{"object":"error","message":"This model's maximum context length is 131072 tokens. However, you requested 156632 tokens (152536 in the messages, 4096 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#;
        let e = classify_http(400, vllm, None, &[]);
        assert_eq!(e.kind, ErrorKind::ContextOverflow);
        assert_eq!(
            e.overflow,
            Some(Overflow {
                requested: Some(156632),
                limit: Some(131072)
            })
        );

        let lmstudio = r#"{"error":"Trying to keep the first 10136 tokens when context the overflows. However, the model is loaded with context length of only 7866 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input"}"#;
        let e = classify_http(400, lmstudio, None, &[]);
        assert_eq!(e.kind, ErrorKind::ContextOverflow);
        assert_eq!(
            e.overflow,
            Some(Overflow {
                requested: Some(10136),
                limit: Some(7866)
            })
        );
        assert_eq!(
            kind(
                400,
                r#"{"error":"Cannot truncate prompt with n_keep (15028) >= n_ctx (7424)"}"#
            ),
            ErrorKind::ContextOverflow
        );

        let openai = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(kind(400, openai), ErrorKind::ContextOverflow);

        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208000 tokens > 200000 maximum"}}"#;
        let e = classify_http(400, anthropic, None, &[]);
        assert_eq!(e.kind, ErrorKind::ContextOverflow);
        assert_eq!(
            e.overflow,
            Some(Overflow {
                requested: Some(208000),
                limit: Some(200000)
            })
        );

        assert_eq!(
            kind(500, "Requested tokens (2285) exceed context window of 2048"),
            ErrorKind::ContextOverflow
        );
    }

    /// Ollama's own API, in its own words (its sources and API reference).
    #[test]
    fn ollamas_errors() {
        let table: [(u16, &str, ErrorKind); 9] = [
            (
                404,
                r#"{"error":"model 'qwen3:8b' not found"}"#,
                ErrorKind::ModelNotFound,
            ),
            (
                404,
                r#"{"error":"model \"qwen3\" not found, try pulling it first"}"#,
                ErrorKind::ModelNotFound,
            ),
            (
                503,
                r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
                ErrorKind::Overloaded,
            ),
            (
                500,
                r#"{"error":"model requires more system memory (5.3 GiB) than is available (4.4 GiB)"}"#,
                ErrorKind::Server,
            ),
            (
                500,
                r#"{"error":"llama runner process has terminated: CUDA error: out of memory"}"#,
                ErrorKind::Server,
            ),
            (
                500,
                r#"{"error":"timed out waiting for llama runner to start - progress 0.00 - "}"#,
                ErrorKind::Server,
            ),
            (
                400,
                r#"{"error":"the input length exceeds the context length"}"#,
                ErrorKind::ContextOverflow,
            ),
            (
                400,
                r#"{"error":"the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length"}"#,
                ErrorKind::ContextOverflow,
            ),
            (
                400,
                r#"{"error":"registry.ollama.ai/library/gemma3:4b does not support tools"}"#,
                ErrorKind::BadRequest,
            ),
        ];
        for (status, body, want) in table {
            assert_eq!(kind(status, body), want, "{body}");
        }
        // Mid-stream, the last NDJSON line.
        let e = classify_stream_error(
            r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#,
            &[],
        );
        assert_eq!(e.kind, ErrorKind::Server);
    }

    #[test]
    fn cold_and_missing_models() {
        assert_eq!(
            kind(
                503,
                r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#
            ),
            ErrorKind::ModelLoading
        );
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"No models loaded. Please load a model in the developer page or use the `lms load` command.","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
            ),
            ErrorKind::ModelNotFound
        );
        assert_eq!(
            kind(
                404,
                r#"{"error":"model \"llama3\" not found, try pulling it first"}"#
            ),
            ErrorKind::ModelNotFound
        );
        assert_eq!(
            kind(
                404,
                r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#
            ),
            ErrorKind::ModelNotFound
        );
        assert_eq!(
            kind(
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#
            ),
            ErrorKind::ModelNotFound
        );
    }

    #[test]
    fn status_families() {
        assert_eq!(
            kind(
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#
            ),
            ErrorKind::Auth
        );
        assert_eq!(kind(403, "forbidden"), ErrorKind::Auth);
        assert_eq!(
            kind(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            ErrorKind::Overloaded
        );
        assert_eq!(
            kind(503, "Service temporarily unavailable"),
            ErrorKind::Overloaded
        );
        assert_eq!(kind(500, "internal error"), ErrorKind::Server);
        assert_eq!(kind(504, "gateway timeout"), ErrorKind::Timeout);
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error"}}"#
            ),
            ErrorKind::BadRequest
        );
        assert_eq!(kind(422, "unprocessable"), ErrorKind::BadRequest);
        assert_eq!(
            kind(
                429,
                r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#
            ),
            ErrorKind::Billing
        );
        assert_eq!(
            kind(
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#
            ),
            ErrorKind::Billing
        );
    }

    #[test]
    fn rate_limit_keeps_retry_after() {
        let e = classify_http(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#,
            Some("12"),
            &[],
        );
        assert_eq!(e.kind, ErrorKind::RateLimit);
        assert_eq!(e.retry_after, Some(Duration::from_secs(12)));
        assert_eq!(classify_http(429, "", Some("soon"), &[]).retry_after, None);
        assert!(e.kind.is_transient() && !ErrorKind::BadRequest.is_transient());
    }

    #[test]
    fn upstream_messages_lose_their_secrets() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-proj-abcdefghijklmnop1234. You can find your API key at the dashboard.","code":"invalid_api_key"}}"#;
        let e = classify_http(401, body, None, &[]);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(!e.message.contains("abcdefghijklmnop1234"), "{}", e.message);
        assert!(e.message.contains("sk-***"));
        let e = classify_http(
            401,
            "bad key my-local-token-42 rejected",
            None,
            &["my-local-token-42"],
        );
        assert_eq!(e.message, "bad key *** rejected");
        assert!(!e.to_string().contains("my-local-token-42"));
    }
}
