//! Bearer auth for every route but the health checks: constant-time
//! comparison, and an address that keeps failing is locked out for a while
//! (429 with Retry-After), by `gateway.auth.rateLimit`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Gateway;
use crate::error::ApiError;
use crate::settings::{Auth, RateLimit};

const PRUNE_AT: usize = 4096;

#[derive(Default)]
pub struct Failures(Mutex<HashMap<IpAddr, Window>>);

struct Window {
    started: Instant,
    count: u32,
    locked_until: Option<Instant>,
}

impl Failures {
    /// Seconds left on this address's lockout.
    pub(crate) fn locked(&self, ip: IpAddr) -> Option<u64> {
        let map = self.0.lock().ok()?;
        let until = map.get(&ip)?.locked_until?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(left.as_secs().max(1))
    }

    pub(crate) fn fail(&self, ip: IpAddr, limit: &RateLimit) {
        let Ok(mut map) = self.0.lock() else { return };
        let now = Instant::now();
        // Many addresses guessing must not grow the table without bound:
        // windows that ended and lockouts that ran out are forgotten.
        if map.len() >= PRUNE_AT {
            map.retain(|_, w| {
                now.duration_since(w.started) <= limit.window
                    || w.locked_until.is_some_and(|u| u > now)
            });
        }
        let w = map.entry(ip).or_insert(Window {
            started: now,
            count: 0,
            locked_until: None,
        });
        if now.duration_since(w.started) > limit.window {
            *w = Window {
                started: now,
                count: 0,
                locked_until: None,
            };
        }
        w.count += 1;
        if w.count >= limit.max_attempts {
            w.locked_until = Some(now + limit.lockout);
        }
    }

    pub(crate) fn succeed(&self, ip: IpAddr) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&ip);
        }
    }
}

fn peer(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// Whether the request carries the secret. Both sides are hashed first so
/// that neither the comparison's time nor its early exit on a length
/// mismatch tells a guesser anything.
fn presents(req: &Request, secret: &secrecy::SecretString) -> bool {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    matches(given, secret)
}

/// Whether `given` is the secret, in constant time.
pub(crate) fn matches(given: &str, secret: &secrecy::SecretString) -> bool {
    let (given, expected) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(secret.expose_secret().as_bytes()),
    );
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

/// May this caller see details (what is failing, and why)? Local callers and
/// authenticated ones may, as in OpenClaw.
pub fn may_see_details(gw: &Gateway, req: &Request) -> bool {
    match &gw.settings.auth {
        Auth::Secret(secret) => peer(req).is_loopback() || presents(req, secret),
        Auth::None | Auth::TrustedProxy => true,
    }
}

pub async fn require(State(gw): State<&'static Gateway>, req: Request, next: Next) -> Response {
    let Auth::Secret(secret) = &gw.settings.auth else {
        return next.run(req).await;
    };
    let ip = peer(&req);
    let limit = &gw.settings.rate_limit;
    let counted = !(limit.exempt_loopback && ip.is_loopback());
    if counted && let Some(left) = gw.failures.locked(ip) {
        return ApiError::LockedOut(left).into_response();
    }
    if presents(&req, secret) {
        if counted {
            gw.failures.succeed(ip);
        }
        next.run(req).await
    } else {
        if counted {
            gw.failures.fail(ip, limit);
        }
        ApiError::Unauthorized.into_response()
    }
}
