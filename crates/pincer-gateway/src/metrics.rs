//! Prometheus metrics, kept in memory and written out in the text format:
//! requests by route and status with latency histograms, tokens and cost by
//! model, fallbacks by reason, turns in flight and cancelled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pincer_llm::Usage;

use crate::Gateway;

/// Seconds; from sub-millisecond proxying to long answers.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Default)]
struct Tables {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    streams: Histogram,
    tokens: BTreeMap<(String, &'static str), u64>,
    cost: BTreeMap<String, f64>,
    turns: BTreeMap<String, u64>,
    fallbacks: BTreeMap<(String, &'static str), u64>,
}

#[derive(Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    active: AtomicI64,
    cancelled: AtomicU64,
}

/// Counts a turn in flight until dropped.
pub struct Active<'m>(&'m AtomicI64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Tables)) {
        if let Ok(mut t) = self.tables.lock() {
            f(&mut t);
        }
    }

    pub fn active(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        Active(&self.active)
    }

    pub fn cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn turn(&self, model: &str, u: &Usage, usd: f64) {
        self.with(|t| {
            for (kind, n) in [
                ("input", u.input),
                ("output", u.output),
                ("cache_read", u.cache_read),
                ("cache_write", u.cache_write),
            ] {
                *t.tokens.entry((model.to_string(), kind)).or_default() += n;
            }
            *t.cost.entry(model.to_string()).or_default() += usd;
            *t.turns.entry(model.to_string()).or_default() += 1;
        });
    }

    /// A candidate that failed or was skipped (`reason`), and what followed
    /// (`next`: the same model again, the next key, the next model, none).
    pub fn fallback(&self, reason: &str, next: &'static str) {
        self.with(|t| *t.fallbacks.entry((reason.to_string(), next)).or_default() += 1);
    }

    pub fn stream_time(&self, d: Duration) {
        self.with(|t| t.streams.observe(d.as_secs_f64()));
    }

    fn request(&self, route: &str, status: u16, d: Duration) {
        self.with(|t| {
            *t.requests.entry((route.to_string(), status)).or_default() += 1;
            t.latency
                .entry(route.to_string())
                .or_default()
                .observe(d.as_secs_f64());
        });
    }

    fn text(&self, cooldowns: usize) -> String {
        let mut s = String::new();
        let Ok(t) = self.tables.lock() else {
            return s;
        };
        let _ = writeln!(s, "# TYPE pincer_requests_total counter");
        for ((route, status), n) in &t.requests {
            let _ = writeln!(
                s,
                "pincer_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# TYPE pincer_request_duration_seconds histogram");
        for (route, h) in &t.latency {
            histogram(
                &mut s,
                "pincer_request_duration_seconds",
                &format!("route=\"{route}\""),
                h,
            );
        }
        let _ = writeln!(s, "# TYPE pincer_stream_duration_seconds histogram");
        histogram(&mut s, "pincer_stream_duration_seconds", "", &t.streams);
        let _ = writeln!(s, "# TYPE pincer_turns_total counter");
        for (model, n) in &t.turns {
            let _ = writeln!(s, "pincer_turns_total{{model=\"{model}\"}} {n}");
        }
        let _ = writeln!(s, "# TYPE pincer_tokens_total counter");
        for ((model, kind), n) in &t.tokens {
            let _ = writeln!(
                s,
                "pincer_tokens_total{{model=\"{model}\",kind=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# TYPE pincer_cost_usd_total counter");
        for (model, usd) in &t.cost {
            let _ = writeln!(s, "pincer_cost_usd_total{{model=\"{model}\"}} {usd}");
        }
        let _ = writeln!(s, "# TYPE pincer_fallbacks_total counter");
        for ((reason, next), n) in &t.fallbacks {
            let _ = writeln!(
                s,
                "pincer_fallbacks_total{{reason=\"{reason}\",next=\"{next}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# TYPE pincer_turns_active gauge");
        let _ = writeln!(
            s,
            "pincer_turns_active {}",
            self.active.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# TYPE pincer_turns_cancelled_total counter");
        let _ = writeln!(
            s,
            "pincer_turns_cancelled_total {}",
            self.cancelled.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# TYPE pincer_cooldowns_active gauge");
        let _ = writeln!(s, "pincer_cooldowns_active {cooldowns}");
        s
    }
}

fn histogram(s: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (b, n) in BUCKETS.iter().zip(h.counts) {
        let _ = writeln!(s, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {n}");
    }
    let _ = writeln!(s, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(s, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(s, "{name}_count{braces} {}", h.count);
}

/// Times every request up to its response head (for a stream: its first byte).
pub async fn track(State(gw): State<&'static Gateway>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    gw.metrics
        .request(&route, response.status().as_u16(), started.elapsed());
    response
}

pub async fn render(State(gw): State<&'static Gateway>) -> impl IntoResponse {
    let cooling = gw.rt.router().cooling_now();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        gw.metrics.text(cooling),
    )
}
