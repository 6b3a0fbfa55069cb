//! Who gets an answer: one policy for every chat app, OpenClaw's rules.
//!
//! Direct messages follow `dmPolicy`: `pairing` (the default) answers
//! allowed senders and gives everyone else a code for the owner to
//! approve; `allowlist` answers only allowed senders; `open` answers
//! anyone; `disabled` no one. Allowed senders are `allowFrom` (`"*"` for
//! anyone) and those approved by pairing.
//!
//! Group messages follow `groupPolicy`: `allowlist` (the default) answers
//! only in the groups `groups` lists (`"*"`: all; none listed: no group),
//! and only the senders of the group's `allowFrom`, else `groupAllowFrom`,
//! else `allowFrom` (never the pairing store); `open` answers anyone in
//! any group; `disabled` no group. Then a group message must mention the
//! assistant (or reply to it) unless the group says `requireMention:
//! false`; a `/command` from a sender the config names needs no mention.

use pincer_config::{ChannelAccess, DmPolicy, GroupPolicy, GroupSettings};

use crate::{ChatKind, Inbound};

/// What to do with an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// An unknown sender in `pairing` mode: reply with a pairing code,
    /// nothing reaches the model.
    Pair,
    /// Dropped, with the reason (logged, never sent).
    Ignore(&'static str),
    /// Not for the model: the sender is told this.
    Refuse(&'static str),
}

const NOT_YOURS_TO_APPROVE_DM: &str =
    "Only a sender named in allowFrom, or paired, may approve commands.";
const NOT_YOURS_TO_APPROVE_GROUP: &str =
    "Only a sender named in allowFrom or groupAllowFrom may approve commands in a group.";

/// Whether `id` is one of `list`, OpenClaw's way: `"*"` matches anyone,
/// and prefixes such as `telegram:` or `tg:` and a leading `+` are ignored.
pub fn listed(list: &[String], ids: &[String]) -> bool {
    let norm = |s: &str| {
        let s = s.trim();
        let s = s
            .split_once(':')
            .filter(|(p, _)| {
                matches!(
                    p.to_ascii_lowercase().as_str(),
                    "telegram" | "tg" | "whatsapp" | "wa"
                )
            })
            .map_or(s, |(_, rest)| rest);
        s.trim_start_matches(['+', '@']).to_ascii_lowercase()
    };
    list.iter().any(|entry| {
        entry.trim() == "*"
            || ids
                .iter()
                .any(|id| !id.is_empty() && norm(entry) == norm(id))
    })
}

/// The group's own settings, else the `"*"` entry's.
fn group_settings<'a>(a: &'a ChannelAccess, chat: &str) -> Option<&'a GroupSettings> {
    a.groups.get(chat).or_else(|| a.groups.get("*"))
}

/// The verdict for `m`; `approved` says whether pairing approved a sender.
pub fn decide(a: &ChannelAccess, m: &Inbound, approved: &dyn Fn(&[String]) -> bool) -> Verdict {
    if a.enabled == Some(false) {
        return Verdict::Ignore("the channel is disabled");
    }
    if m.from_me && !m.self_chat {
        return Verdict::Ignore("sent by this account");
    }
    let ids = m.sender.ids();
    // `/approve` runs a command in the agent's workspace: only a sender the
    // owner let in by name (or by pairing, in a direct chat) may say it.
    let approving = matches!(
        pincer_agent::parse(&m.text),
        Some(pincer_agent::Command::Approve { .. })
    );
    let named = |list: &[String]| {
        let explicit: Vec<String> = list.iter().filter(|e| e.trim() != "*").cloned().collect();
        listed(&explicit, &ids)
    };
    match m.chat.kind {
        ChatKind::Direct => {
            let trusted = m.self_chat || named(&a.allow_from) || approved(&ids);
            let allowed = trusted || listed(&a.allow_from, &ids);
            let verdict = match a.dm_policy.unwrap_or(DmPolicy::Pairing) {
                DmPolicy::Disabled => Verdict::Ignore("direct messages are disabled"),
                DmPolicy::Open => Verdict::Answer,
                DmPolicy::Allowlist if allowed => Verdict::Answer,
                DmPolicy::Allowlist => Verdict::Ignore("the sender is not in allowFrom"),
                DmPolicy::Pairing if allowed => Verdict::Answer,
                DmPolicy::Pairing => Verdict::Pair,
            };
            if verdict == Verdict::Answer && approving && !trusted {
                return Verdict::Refuse(NOT_YOURS_TO_APPROVE_DM);
            }
            verdict
        }
        ChatKind::Group => {
            let settings = group_settings(a, &m.chat.id);
            if settings.and_then(|g| g.enabled) == Some(false) {
                return Verdict::Ignore("the group is disabled");
            }
            match a.group_policy.unwrap_or(GroupPolicy::Allowlist) {
                GroupPolicy::Disabled => return Verdict::Ignore("groups are disabled"),
                GroupPolicy::Open => {}
                GroupPolicy::Allowlist => {
                    if settings.is_none() {
                        return Verdict::Ignore("the group is not in groups");
                    }
                    let senders = settings
                        .and_then(|g| g.allow_from.as_ref())
                        .or(a.group_allow_from.as_ref())
                        .unwrap_or(&a.allow_from);
                    if !listed(senders, &ids) {
                        return Verdict::Ignore("the sender is not allowed in groups");
                    }
                }
            }
            let require_mention = settings.and_then(|g| g.require_mention).unwrap_or(true);
            // A sender named in the config (not merely let in by "*" or an
            // open policy) owns commands here: they need no mention, and
            // only they may approve.
            let owner = named(&a.allow_from)
                || a.group_allow_from.as_deref().is_some_and(named)
                || settings
                    .and_then(|g| g.allow_from.as_deref())
                    .is_some_and(named);
            let owner_command = m.text.trim_start().starts_with('/')
                && pincer_agent::parse(&m.text).is_some()
                && owner;
            if require_mention && !m.mentioned && !owner_command {
                return Verdict::Ignore("the assistant was not mentioned");
            }
            if approving && !owner {
                return Verdict::Refuse(NOT_YOURS_TO_APPROVE_GROUP);
            }
            Verdict::Answer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Chat, Sender};
    use std::collections::BTreeMap;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[derive(Clone, Copy)]
    struct Case {
        name: &'static str,
        dm: Option<DmPolicy>,
        group_policy: Option<GroupPolicy>,
        allow_from: &'static [&'static str],
        group_allow_from: Option<&'static [&'static str]>,
        /// `groups`: (id, requireMention).
        groups: &'static [(&'static str, Option<bool>)],
        group: bool,
        sender: &'static str,
        mentioned: bool,
        text: &'static str,
        approved: bool,
        want: Verdict,
    }

    const BASE: Case = Case {
        name: "",
        dm: None,
        group_policy: None,
        allow_from: &[],
        group_allow_from: None,
        groups: &[],
        group: false,
        sender: "42",
        mentioned: false,
        text: "hello",
        approved: false,
        want: Verdict::Answer,
    };

    #[test]
    fn the_policy_table() {
        use Verdict::*;
        let cases = [
            Case {
                name: "unknown DM pairs by default",
                want: Pair,
                ..BASE
            },
            Case {
                name: "approved DM answers",
                approved: true,
                ..BASE
            },
            Case {
                name: "allowFrom DM answers",
                allow_from: &["42"],
                ..BASE
            },
            Case {
                name: "prefixes are ignored",
                allow_from: &["tg:42"],
                ..BASE
            },
            Case {
                name: "allowlist refuses strangers",
                dm: Some(DmPolicy::Allowlist),
                want: Ignore("the sender is not in allowFrom"),
                ..BASE
            },
            Case {
                name: "allowlist takes approved",
                dm: Some(DmPolicy::Allowlist),
                approved: true,
                ..BASE
            },
            Case {
                name: "open answers anyone",
                dm: Some(DmPolicy::Open),
                ..BASE
            },
            Case {
                name: "disabled answers no one",
                dm: Some(DmPolicy::Disabled),
                allow_from: &["42"],
                want: Ignore("direct messages are disabled"),
                ..BASE
            },
            Case {
                name: "group: no groups listed, no group",
                group: true,
                mentioned: true,
                allow_from: &["*"],
                want: Ignore("the group is not in groups"),
                ..BASE
            },
            Case {
                name: "group: no sender allowlist, nobody",
                group: true,
                mentioned: true,
                groups: &[("*", None)],
                want: Ignore("the sender is not allowed in groups"),
                ..BASE
            },
            Case {
                name: "group: pairing does not open groups",
                group: true,
                mentioned: true,
                approved: true,
                groups: &[("*", None)],
                want: Ignore("the sender is not allowed in groups"),
                ..BASE
            },
            Case {
                name: "group: allowFrom sender, mentioned",
                group: true,
                mentioned: true,
                allow_from: &["42"],
                groups: &[("-100", None)],
                ..BASE
            },
            Case {
                name: "group: not mentioned",
                group: true,
                allow_from: &["42"],
                groups: &[("*", None)],
                want: Ignore("the assistant was not mentioned"),
                ..BASE
            },
            Case {
                name: "group: a command needs no mention",
                group: true,
                text: "/status",
                allow_from: &["42"],
                groups: &[("*", None)],
                ..BASE
            },
            Case {
                name: "group: mention not required",
                group: true,
                allow_from: &["*"],
                groups: &[("-100", Some(false))],
                ..BASE
            },
            Case {
                name: "group: groupAllowFrom wins",
                group: true,
                mentioned: true,
                allow_from: &["42"],
                group_allow_from: Some(&["7"]),
                groups: &[("*", None)],
                want: Ignore("the sender is not allowed in groups"),
                ..BASE
            },
            Case {
                name: "group: unlisted group",
                group: true,
                mentioned: true,
                allow_from: &["*"],
                groups: &[("-5", None)],
                want: Ignore("the group is not in groups"),
                ..BASE
            },
            Case {
                name: "group: star group",
                group: true,
                mentioned: true,
                allow_from: &["*"],
                groups: &[("*", None)],
                ..BASE
            },
            Case {
                name: "group: open policy",
                group: true,
                mentioned: true,
                group_policy: Some(GroupPolicy::Open),
                ..BASE
            },
            Case {
                name: "group: open still needs a mention",
                group: true,
                group_policy: Some(GroupPolicy::Open),
                want: Ignore("the assistant was not mentioned"),
                ..BASE
            },
            Case {
                name: "open DM: a stranger cannot approve",
                dm: Some(DmPolicy::Open),
                text: "/approve 1a2b3c4d allow-once",
                want: Refuse(NOT_YOURS_TO_APPROVE_DM),
                ..BASE
            },
            Case {
                name: "DM: a paired sender approves",
                approved: true,
                text: "/approve 1a2b3c4d allow-once",
                ..BASE
            },
            Case {
                name: "DM: \"*\" lets in but does not name",
                allow_from: &["*"],
                text: "/approve 1a2b3c4d allow-once",
                want: Refuse(NOT_YOURS_TO_APPROVE_DM),
                ..BASE
            },
            Case {
                name: "group: a member let in by \"*\" cannot approve",
                group: true,
                mentioned: true,
                allow_from: &["*"],
                groups: &[("*", None)],
                text: "/approve 1a2b3c4d allow-once",
                want: Refuse(NOT_YOURS_TO_APPROVE_GROUP),
                ..BASE
            },
            Case {
                name: "group: an unmentioned stranger's approve is not answered at all",
                group: true,
                allow_from: &["*"],
                groups: &[("*", None)],
                text: "/approve 1a2b3c4d allow-once",
                want: Ignore("the assistant was not mentioned"),
                ..BASE
            },
            Case {
                name: "group: the named owner approves",
                group: true,
                allow_from: &["42"],
                groups: &[("*", None)],
                text: "/approve 1a2b3c4d allow-once",
                ..BASE
            },
            Case {
                name: "group: disabled",
                group: true,
                mentioned: true,
                group_policy: Some(GroupPolicy::Disabled),
                allow_from: &["*"],
                want: Ignore("groups are disabled"),
                ..BASE
            },
        ];
        for c in cases {
            let access = ChannelAccess {
                dm_policy: c.dm,
                group_policy: c.group_policy,
                allow_from: strings(c.allow_from),
                group_allow_from: c.group_allow_from.map(strings),
                groups: c
                    .groups
                    .iter()
                    .map(|(id, rm)| {
                        (
                            id.to_string(),
                            GroupSettings {
                                require_mention: *rm,
                                ..GroupSettings::default()
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
                ..ChannelAccess::default()
            };
            let m = Inbound {
                chat: Chat {
                    id: if c.group {
                        "-100".into()
                    } else {
                        c.sender.into()
                    },
                    kind: if c.group {
                        ChatKind::Group
                    } else {
                        ChatKind::Direct
                    },
                    thread: None,
                },
                sender: Sender {
                    id: c.sender.into(),
                    ..Sender::default()
                },
                mentioned: c.mentioned,
                text: c.text.into(),
                ..Inbound::default()
            };
            let approved = c.approved;
            assert_eq!(decide(&access, &m, &|_| approved), c.want, "{}", c.name);
        }
    }

    #[test]
    fn own_messages_are_ignored_outside_the_self_chat() {
        let a = ChannelAccess::default();
        let mut m = Inbound {
            from_me: true,
            ..Inbound::default()
        };
        assert_eq!(
            decide(&a, &m, &|_| false),
            Verdict::Ignore("sent by this account")
        );
        m.self_chat = true;
        assert_eq!(decide(&a, &m, &|_| false), Verdict::Answer);
    }
}
