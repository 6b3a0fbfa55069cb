//! What a model call cost, from the model's price table.

use pincer_catalog::{Cost, ModelSpec};
use pincer_types::Usage;

/// USD for this usage: prices are per million tokens; local models cost 0.
/// Above a price tier's context size (prompt tokens), that tier's prices apply.
pub fn cost(spec: &ModelSpec, usage: &Usage) -> f64 {
    if spec.local {
        return 0.0;
    }
    let prompt = usage.prompt_tokens();
    let price: &Cost = spec
        .cost_tiers
        .iter()
        .filter(|(min, _)| prompt > *min)
        .max_by_key(|(min, _)| *min)
        .map(|(_, c)| c)
        .unwrap_or(&spec.cost);
    let per = |tokens: u64, usd_per_m: f64| tokens as f64 * usd_per_m / 1e6;
    per(usage.input, price.input)
        + per(usage.output, price.output)
        + per(usage.cache_read, price.cache_read)
        + per(usage.cache_write, price.cache_write)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use pincer_catalog::{Catalog, ModelRef};
    use pincer_config::{Env, load_text};

    use super::*;

    fn spec(config: &str, r: &str) -> ModelSpec {
        let env = Env::Map(HashMap::new());
        let loaded = load_text(config, Path::new("/nonexistent/openclaw.json"), &env);
        let catalog = Catalog::new(&loaded.config.models);
        catalog.model(&ModelRef::parse(r).unwrap()).unwrap()
    }

    #[test]
    fn hosted_cost_counts_cache_apart() {
        let s = spec(
            "{ models: { providers: { p: { baseUrl: 'https://api.example.com/v1', models: [{ id: 'm', cost: { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 } }] } } } }",
            "p/m",
        );
        let u = Usage {
            input: 1_000_000,
            output: 100_000,
            cache_read: 2_000_000,
            cache_write: 10_000,
            reasoning: 50_000,
        };
        let want = 3.0 + 1.5 + 0.6 + 0.0375;
        assert!((cost(&s, &u) - want).abs() < 1e-9, "{}", cost(&s, &u));
    }

    #[test]
    fn local_models_cost_nothing() {
        let s = spec(
            "{ models: { providers: { p: { baseUrl: 'http://127.0.0.1:8080/v1', models: [{ id: 'm', cost: { input: 3, output: 15 } }] } } } }",
            "p/m",
        );
        assert_eq!(
            cost(
                &s,
                &Usage {
                    input: 1000,
                    output: 1000,
                    ..Usage::default()
                }
            ),
            0.0
        );
    }

    #[test]
    fn price_tiers_apply_above_their_context_size() {
        let mut s = spec("{}", "anthropic/claude-opus-4-5");
        s.cost = Cost {
            input: 1.0,
            output: 2.0,
            cache_read: 0.0,
            cache_write: 0.0,
        };
        s.cost_tiers = vec![(
            200_000,
            Cost {
                input: 10.0,
                output: 20.0,
                cache_read: 0.0,
                cache_write: 0.0,
            },
        )];
        let small = Usage {
            input: 100_000,
            output: 1_000_000,
            ..Usage::default()
        };
        let big = Usage {
            input: 300_000,
            output: 1_000_000,
            ..Usage::default()
        };
        assert!((cost(&s, &small) - (0.1 + 2.0)).abs() < 1e-9);
        assert!((cost(&s, &big) - (3.0 + 20.0)).abs() < 1e-9);
    }
}
