//! What a failure means, in one place: for each kind of error, whether the
//! turn moves on to the next model, whether the provider's next key is tried
//! first, what is cooled down, and which HTTP status a client of the gateway
//! gets when that failure decides the turn. The router, the cooldown table
//! and the gateway all read this table; nothing else decides.

use pincer_types::ErrorKind;

/// What to do after a candidate failed with this kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the next candidate.
    Next,
    /// Only a candidate with a larger context window can help.
    NextLargerWindow,
    /// Stop: the request itself is wrong and would fail everywhere.
    Stop,
}

/// What a failure cools down, by what failed: the server (every model on
/// it), one model on it, or the key it was called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nothing: the failure says nothing about the server's health.
    None,
    /// The server is unreachable: every model of the provider.
    Provider,
    /// That model only: a sibling model of the same provider may still
    /// answer, or continue an answer it broke off.
    Model,
    /// The key (it cools down on its own and the next key is tried); with
    /// no key to blame, the provider.
    Key,
}

/// The whole answer for one kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub decision: Decision,
    /// The failure belongs to the key: it cools down on its own and the
    /// provider's next key is tried before the turn moves on.
    pub rotates_key: bool,
    pub cooldown: Scope,
    /// The gateway's status when this failure decides the turn.
    pub http_status: u16,
}

pub fn policy(kind: ErrorKind) -> Policy {
    use Decision::{Next, NextLargerWindow, Stop};
    let (decision, rotates_key, cooldown, http_status) = match kind {
        ErrorKind::BadRequest => (Stop, false, Scope::None, 400),
        ErrorKind::ContextOverflow => (NextLargerWindow, false, Scope::None, 400),
        ErrorKind::ModelLoading => (Next, false, Scope::None, 503),
        ErrorKind::RateLimit => (Next, true, Scope::Model, 429),
        ErrorKind::Auth | ErrorKind::Billing => (Next, true, Scope::Key, 502),
        ErrorKind::Connection => (Next, false, Scope::Provider, 502),
        ErrorKind::Reset => (Next, false, Scope::Model, 502),
        ErrorKind::Overloaded => (Next, false, Scope::Model, 503),
        ErrorKind::Timeout => (Next, false, Scope::Model, 504),
        ErrorKind::Server
        | ErrorKind::ModelNotFound
        | ErrorKind::Protocol
        | ErrorKind::EmptyReply => (Next, false, Scope::Model, 502),
    };
    Policy {
        decision,
        rotates_key,
        cooldown,
        http_status,
    }
}

/// The next candidate's move after this failure.
pub fn decide(kind: ErrorKind) -> Decision {
    policy(kind).decision
}

/// The cooldown entry a failure is recorded under (besides the key's own,
/// which the router keeps), if any. `keyed`: the call used a key.
pub fn cooldown_key(
    kind: ErrorKind,
    provider: &str,
    reference: &str,
    keyed: bool,
) -> Option<String> {
    match policy(kind).cooldown {
        Scope::None => None,
        Scope::Key if keyed => None,
        Scope::Provider | Scope::Key => Some(provider.to_string()),
        Scope::Model => Some(reference.to_string()),
    }
}

/// The status a gateway client gets when every candidate failed: from the
/// failure that decided the turn, else 503 (every candidate was cooling down).
pub fn http_status(last: Option<ErrorKind>) -> u16 {
    last.map_or(503, |k| policy(k).http_status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Next, NextLargerWindow, Stop};

    /// Every kind, and every consequence of it.
    #[test]
    fn one_row_per_error_kind() {
        let table: [(ErrorKind, Decision, bool, Scope, u16); 14] = [
            (ErrorKind::Auth, Next, true, Scope::Key, 502),
            (ErrorKind::Billing, Next, true, Scope::Key, 502),
            (ErrorKind::RateLimit, Next, true, Scope::Model, 429),
            (ErrorKind::Overloaded, Next, false, Scope::Model, 503),
            (ErrorKind::ModelLoading, Next, false, Scope::None, 503),
            (ErrorKind::Timeout, Next, false, Scope::Model, 504),
            (ErrorKind::Connection, Next, false, Scope::Provider, 502),
            (ErrorKind::Reset, Next, false, Scope::Model, 502),
            (
                ErrorKind::ContextOverflow,
                NextLargerWindow,
                false,
                Scope::None,
                400,
            ),
            (ErrorKind::ModelNotFound, Next, false, Scope::Model, 502),
            (ErrorKind::BadRequest, Stop, false, Scope::None, 400),
            (ErrorKind::Server, Next, false, Scope::Model, 502),
            (ErrorKind::Protocol, Next, false, Scope::Model, 502),
            (ErrorKind::EmptyReply, Next, false, Scope::Model, 502),
        ];
        for (kind, decision, rotates_key, cooldown, http_status) in table {
            assert_eq!(
                policy(kind),
                Policy {
                    decision,
                    rotates_key,
                    cooldown,
                    http_status
                },
                "{kind}"
            );
        }
        let key = |kind, keyed| cooldown_key(kind, "openai", "openai/gpt-5", keyed);
        assert_eq!(
            key(ErrorKind::RateLimit, true).as_deref(),
            Some("openai/gpt-5")
        );
        assert_eq!(
            key(ErrorKind::Server, true).as_deref(),
            Some("openai/gpt-5")
        );
        assert_eq!(key(ErrorKind::Connection, false).as_deref(), Some("openai"));
        assert_eq!(
            key(ErrorKind::Auth, true),
            None,
            "the key cools down on its own"
        );
        assert_eq!(key(ErrorKind::Auth, false).as_deref(), Some("openai"));
        assert_eq!(key(ErrorKind::BadRequest, true), None);
        assert_eq!(http_status(None), 503);
    }
}
