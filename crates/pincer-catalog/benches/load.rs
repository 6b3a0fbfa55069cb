//! Cold-start cost of reading a config: parse + $include + ${VAR} + validate,
//! the built-in catalog parse, and the catalog reference checks.
//! Run: `cargo bench -p pincer-catalog --bench load`

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use pincer_catalog::{Catalog, check, parse_builtin_catalog};
use pincer_config::{Env, load_text};

fn largest_fixture() -> (PathBuf, String) {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/openclaw-configs");
    let mut best = (PathBuf::new(), String::new());
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if text.len() > best.1.len() {
                best = (e.path(), text);
            }
        }
    }
    best
}

fn bench(c: &mut Criterion) {
    let (path, text) = largest_fixture();
    let env = Env::Map(HashMap::new());
    c.bench_function("config: load + validate largest fixture", |b| {
        b.iter(|| black_box(load_text(black_box(&text), &path, &env)))
    });
    c.bench_function("catalog: parse built-in models.dev snapshot", |b| {
        b.iter(|| black_box(parse_builtin_catalog()))
    });
    let loaded = load_text(&text, &path, &env);
    // Warm the process-wide catalog once; the cold parse is measured above.
    let _ = Catalog::new(&loaded.config.models);
    c.bench_function("catalog: merge config + reference checks", |b| {
        b.iter(|| {
            let catalog = Catalog::new(&loaded.config.models);
            black_box(check(&loaded.config, &catalog))
        })
    });
    c.bench_function(
        "total cold: load + validate + catalog parse + checks",
        |b| {
            b.iter(|| {
                let loaded = load_text(black_box(&text), &path, &env);
                let n = parse_builtin_catalog();
                let catalog = Catalog::new(&loaded.config.models);
                black_box((check(&loaded.config, &catalog), n))
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
