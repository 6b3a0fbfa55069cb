//! Small display helpers shared by the commands.

use comfy_table::{Table, presets};
use pincer_catalog::Cost;
use pincer_router::KeyStatus;

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.to_vec());
    t
}

/// `200000` → `200k`, `1048576` → `1M`.
pub fn tokens(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{}k", (n as f64 / 1000.0).round() as u64)
    } else {
        n.to_string()
    }
}

fn money(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A spent amount: `$0.0123`, or `$0` for free turns.
pub fn usd(x: f64) -> String {
    if x == 0.0 {
        "$0".into()
    } else if x < 0.01 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

/// How long ago a millisecond Unix time was: `12s ago`, `3m ago`, `5h ago`, `2d ago`.
pub fn ago(ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// `$3 / $15` per million tokens, or `free`.
pub fn cost(c: &Cost) -> String {
    if c.input == 0.0 && c.output == 0.0 {
        "free".into()
    } else {
        format!("${} / ${}", money(c.input), money(c.output))
    }
}

/// The keys a model has, by name: `openai:work`, `2 keys (env:X#1, …)`,
/// `missing ($OPENAI_API_KEY)`, or `-` when none is needed.
pub fn key(k: &KeyStatus) -> String {
    match k {
        KeyStatus::Present { names } if names.len() == 1 => names[0].clone(),
        KeyStatus::Present { names } => format!("{} keys ({}, …)", names.len(), names[0]),
        KeyStatus::Missing { env } => match env.first() {
            Some(v) => format!("missing (${v})"),
            None => "missing".into(),
        },
        KeyStatus::NotNeeded => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_read_like_model_cards() {
        assert_eq!(tokens(196_608), "197k");
        assert_eq!(tokens(200_000), "200k");
        assert_eq!(tokens(1_000_000), "1M");
        assert_eq!(tokens(1_048_576), "1.0M");
        assert_eq!(tokens(512), "512");
    }

    #[test]
    fn costs() {
        let c = Cost {
            input: 3.0,
            output: 15.0,
            ..Cost::default()
        };
        assert_eq!(cost(&c), "$3 / $15");
        assert_eq!(cost(&Cost::default()), "free");
    }
}
