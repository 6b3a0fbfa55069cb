//! Chat commands, with OpenClaw's parsing rules: a command is a message of
//! its own that starts with `/name` (a `:` may follow the name:
//! `/think: high`), names are case-insensitive, and a `/word` Pincer does not
//! know is not a command (it goes to the model as text, or is a model alias
//! for the caller to resolve). A bare stop word (`stop`, `abort`…) aborts the
//! turn, as in OpenClaw's web chat.

/// Thinking levels, from none to the most.
pub const THINKING_LEVELS: [&str; 6] = ["off", "minimal", "low", "medium", "high", "xhigh"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/new [model]`: a fresh session, optionally on another model.
    New {
        model: Option<String>,
    },
    /// `/reset`: a fresh session on the same model.
    Reset,
    /// `/stop` and the bare stop words: abort the turn under way.
    Stop,
    /// `/compact [instructions]`.
    Compact {
        instructions: Option<String>,
    },
    Model(ModelArg),
    /// `/think [level]`; `None` shows the current level.
    Think {
        level: Option<String>,
    },
    Status,
    /// `/usage [off|tokens|full|cost]`; `None` cycles off → tokens → full.
    Usage {
        mode: Option<String>,
    },
    /// `/verbose [on|full|off]`.
    Verbose {
        mode: Option<String>,
    },
    /// `/reasoning [on|off|stream]`.
    Reasoning {
        mode: Option<String>,
    },
    /// `/context [list|detail|json]`.
    Context {
        mode: Option<String>,
    },
    Help,
    Whoami,
    /// `/approve <id> allow-once|allow-always|deny` (exec approvals).
    Approve {
        id: String,
        decision: String,
    },
    /// A known command with an argument it does not take: say so, and how.
    Invalid {
        name: String,
        hint: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelArg {
    /// `/model`, `/model list`: the numbered picker.
    List,
    /// `/model status`: the current model in detail.
    Status,
    /// `/model 3`: a number from the picker.
    Pick(usize),
    /// `/model default`: back to the agent's own model.
    Default,
    /// `/model provider/id`, an alias, or `model@profile`.
    Set(String),
}

/// The commands, for chat apps' command menus (Telegram's
/// `setMyCommands`): name and a one-line description.
pub const MENU: &[(&str, &str)] = &[
    ("new", "Start a new session (optionally on another model)"),
    ("reset", "Start over on the same model"),
    ("stop", "Stop the answer under way"),
    ("compact", "Summarise old history to free the context"),
    ("model", "Show or switch the model"),
    ("think", "Set the thinking level"),
    ("status", "Show the session's model, context and usage"),
    ("usage", "Show tokens and cost under answers"),
    ("context", "Show what fills the context"),
    ("reasoning", "Show or hide the model's reasoning"),
    ("verbose", "Show tool calls"),
    ("whoami", "Show who you are to the assistant"),
    ("help", "List the commands"),
];

/// Bare words that abort the turn (OpenClaw's web chat list).
const STOP_WORDS: [&str; 6] = ["stop", "esc", "abort", "wait", "exit", "interrupt"];

/// The command `text` is, if it is one.
pub fn parse(text: &str) -> Option<Command> {
    let text = text.trim();
    if STOP_WORDS.iter().any(|w| text.eq_ignore_ascii_case(w)) {
        return Some(Command::Stop);
    }
    let body = text.strip_prefix('/')?;
    let (name, rest) = match body.find(|c: char| c.is_whitespace() || c == ':') {
        Some(i) => (&body[..i], body[i..].trim_start_matches(':').trim()),
        None => (body, ""),
    };
    let arg = (!rest.is_empty()).then(|| rest.to_string());
    let name = name.to_ascii_lowercase();
    let one_of = |allowed: &[&str], usage: &str| -> Result<Option<String>, Command> {
        match &arg {
            None => Ok(None),
            Some(a) if allowed.contains(&a.to_ascii_lowercase().as_str()) => {
                Ok(Some(a.to_ascii_lowercase()))
            }
            Some(a) => Err(Command::Invalid {
                name: name.clone(),
                hint: format!("unknown option {a:?}; use {usage}"),
            }),
        }
    };
    let mode = |allowed: &[&str], usage: &str, make: fn(Option<String>) -> Command| {
        Some(one_of(allowed, usage).map_or_else(|e| e, make))
    };
    match name.as_str() {
        "new" => Some(Command::New { model: arg }),
        "reset" => Some(Command::Reset),
        "stop" | "abort" => Some(Command::Stop),
        "compact" => Some(Command::Compact { instructions: arg }),
        "model" | "models" => Some(Command::Model(model_arg(arg))),
        "think" | "thinking" | "t" => mode(
            &THINKING_LEVELS,
            "/think off|minimal|low|medium|high|xhigh",
            |level| Command::Think { level },
        ),
        "status" => Some(Command::Status),
        "usage" => mode(
            &["off", "tokens", "full", "cost"],
            "/usage off|tokens|full|cost",
            |mode| Command::Usage { mode },
        ),
        "verbose" | "v" => mode(&["on", "full", "off"], "/verbose on|full|off", |mode| {
            Command::Verbose { mode }
        }),
        "reasoning" | "reason" => mode(
            &["on", "off", "stream"],
            "/reasoning on|off|stream",
            |mode| Command::Reasoning { mode },
        ),
        "context" => mode(
            &["list", "detail", "json"],
            "/context list|detail|json",
            |mode| Command::Context { mode },
        ),
        "help" | "commands" => Some(Command::Help),
        "whoami" | "id" => Some(Command::Whoami),
        "approve" => Some(approve(rest)),
        _ => None,
    }
}

fn model_arg(arg: Option<String>) -> ModelArg {
    let Some(a) = arg else {
        return ModelArg::List;
    };
    match a.to_ascii_lowercase().as_str() {
        "list" => ModelArg::List,
        "status" => ModelArg::Status,
        "default" | "reset" => ModelArg::Default,
        _ => match a.parse::<usize>() {
            Ok(n) => ModelArg::Pick(n),
            Err(_) => ModelArg::Set(a),
        },
    }
}

fn approve(rest: &str) -> Command {
    let mut words = rest.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(id), Some(d), None)
            if ["allow-once", "allow-always", "deny"]
                .contains(&d.to_ascii_lowercase().as_str()) =>
        {
            Command::Approve {
                id: id.to_string(),
                decision: d.to_ascii_lowercase(),
            }
        }
        _ => Command::Invalid {
            name: "approve".into(),
            hint: "use /approve <id> allow-once|allow-always|deny".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_its_arguments() {
        let s = |v: &str| Some(v.to_string());
        let table: Vec<(&str, Option<Command>)> = vec![
            ("/new", Some(Command::New { model: None })),
            (
                "/new lmstudio/qwen3",
                Some(Command::New {
                    model: s("lmstudio/qwen3"),
                }),
            ),
            ("  /RESET  ", Some(Command::Reset)),
            ("/stop", Some(Command::Stop)),
            ("Stop", Some(Command::Stop)),
            ("abort", Some(Command::Stop)),
            ("/compact", Some(Command::Compact { instructions: None })),
            (
                "/compact: keep the file names",
                Some(Command::Compact {
                    instructions: s("keep the file names"),
                }),
            ),
            ("/model", Some(Command::Model(ModelArg::List))),
            ("/model list", Some(Command::Model(ModelArg::List))),
            ("/model status", Some(Command::Model(ModelArg::Status))),
            ("/model 3", Some(Command::Model(ModelArg::Pick(3)))),
            ("/model default", Some(Command::Model(ModelArg::Default))),
            (
                "/model fast",
                Some(Command::Model(ModelArg::Set("fast".into()))),
            ),
            ("/think", Some(Command::Think { level: None })),
            ("/think: HIGH", Some(Command::Think { level: s("high") })),
            ("/t off", Some(Command::Think { level: s("off") })),
            (
                "/think ultra",
                Some(Command::Invalid {
                    name: "think".into(),
                    hint: "unknown option \"ultra\"; use /think off|minimal|low|medium|high|xhigh"
                        .into(),
                }),
            ),
            ("/status", Some(Command::Status)),
            ("/usage cost", Some(Command::Usage { mode: s("cost") })),
            ("/v full", Some(Command::Verbose { mode: s("full") })),
            (
                "/reason stream",
                Some(Command::Reasoning { mode: s("stream") }),
            ),
            ("/context json", Some(Command::Context { mode: s("json") })),
            ("/commands", Some(Command::Help)),
            ("/id", Some(Command::Whoami)),
            (
                "/approve a1b2 allow-once",
                Some(Command::Approve {
                    id: "a1b2".into(),
                    decision: "allow-once".into(),
                }),
            ),
            (
                "/approve a1b2 maybe",
                Some(Command::Invalid {
                    name: "approve".into(),
                    hint: "use /approve <id> allow-once|allow-always|deny".into(),
                }),
            ),
            // Not commands: text for the model (or an alias for the caller).
            ("/sonnet", None),
            ("please stop the build", None),
            ("what does /new do?", None),
            ("", None),
            ("/", None),
        ];
        for (text, want) in table {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }
}
