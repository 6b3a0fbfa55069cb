//! Which session a chat message belongs to: OpenClaw's session keys.
//! Direct messages follow `session.dmScope`; a group is one session of its
//! own (a Telegram forum topic one per topic). Replies go back to the chat
//! the message came from; the key only picks the conversation.

use pincer_config::DmScope;

use crate::{ChatKind, Inbound};

/// The session key for `m`, answered by `agent`.
pub fn session_key(agent: &str, main_key: &str, scope: DmScope, m: &Inbound) -> String {
    let agent = agent.to_ascii_lowercase();
    let channel = m.channel.as_str();
    match m.chat.kind {
        ChatKind::Group => {
            let mut key = format!("agent:{agent}:{channel}:group:{}", m.chat.id);
            if let Some(t) = &m.chat.thread {
                key.push_str(&format!(":topic:{t}"));
            }
            key
        }
        ChatKind::Direct => {
            let peer = &m.sender.id;
            match scope {
                DmScope::Main => format!("agent:{agent}:{main_key}"),
                DmScope::PerPeer => format!("agent:{agent}:direct:{peer}"),
                DmScope::PerChannelPeer => format!("agent:{agent}:{channel}:direct:{peer}"),
                DmScope::PerAccountChannelPeer => {
                    format!("agent:{agent}:{channel}:{}:direct:{peer}", m.account)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Chat, Sender};

    fn msg(kind: ChatKind, chat: &str, thread: Option<&str>) -> Inbound {
        Inbound {
            channel: "telegram".into(),
            account: "default".into(),
            chat: Chat {
                id: chat.into(),
                kind,
                thread: thread.map(str::to_string),
            },
            sender: Sender {
                id: "42".into(),
                ..Sender::default()
            },
            ..Inbound::default()
        }
    }

    #[test]
    fn keys_follow_openclaws_rules() {
        let dm = msg(ChatKind::Direct, "42", None);
        let group = msg(ChatKind::Group, "-100", None);
        let topic = msg(ChatKind::Group, "-100", Some("7"));
        let table = [
            (&dm, DmScope::Main, "agent:main:main"),
            (&dm, DmScope::PerPeer, "agent:main:direct:42"),
            (
                &dm,
                DmScope::PerChannelPeer,
                "agent:main:telegram:direct:42",
            ),
            (
                &dm,
                DmScope::PerAccountChannelPeer,
                "agent:main:telegram:default:direct:42",
            ),
            (&group, DmScope::Main, "agent:main:telegram:group:-100"),
            (
                &topic,
                DmScope::PerPeer,
                "agent:main:telegram:group:-100:topic:7",
            ),
        ];
        for (m, scope, want) in table {
            assert_eq!(session_key("Main", "main", scope, m), want, "{scope:?}");
        }
    }
}
