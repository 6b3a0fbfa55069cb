//! `pincer models pull`: a GGUF from Hugging Face or a URL into the models dir.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use pincer_config::Env;
use pincer_gguf::{Download, PullSource, download, models_dir};
use serde_json::json;

use super::progress::Bar;
use crate::cli::PullArgs;

pub fn run(env: &Env, args: &PullArgs) -> Result<ExitCode> {
    let source = PullSource::parse(&args.source, env)?;
    let dir =
        models_dir(env).ok_or_else(|| anyhow!("no data directory: set PINCER_DATA_DIR or HOME"))?;
    let dest = dir.join(&source.relative);
    let relative = source.relative.display().to_string();
    if dest.is_file() && !args.force {
        report(args, &dest, &relative, None)?;
        if !args.json {
            eprintln!("note: already downloaded (--force to fetch again)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.force {
        let _ = std::fs::remove_file(&dest);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let http = reqwest::Client::builder()
        .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(15))
        .build()?;
    let d = Download {
        url: source.url.clone(),
        dest: dest.clone(),
        sha256: args.sha256.clone(),
        token: source.hugging_face.then(|| env.var("HF_TOKEN")).flatten(),
        attempts: 5,
    };
    let done = runtime.block_on(download(&http, &d, &Bar::new()))?;
    if done.resumed_from > 0 && !args.json {
        eprintln!("note: resumed from byte {}", done.resumed_from);
    }
    report(args, &done.path, &relative, Some(&done))?;
    Ok(ExitCode::SUCCESS)
}

fn report(
    args: &PullArgs,
    path: &std::path::Path,
    relative: &str,
    done: Option<&pincer_gguf::Downloaded>,
) -> Result<()> {
    if args.json {
        let out = json!({
            "path": path,
            "bytes": done.map(|d| d.bytes).or_else(|| std::fs::metadata(path).ok().map(|m| m.len())),
            "sha256": done.map(|d| d.sha256.clone()),
            "verified": done.map(|d| d.verified),
            "resumedFrom": done.map(|d| d.resumed_from),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{}", path.display());
    if let Some(d) = done {
        let how = if d.verified {
            "verified"
        } else {
            "not checked: no SHA-256 given or advertised"
        };
        eprintln!("{} bytes, sha256 {} ({how})", d.bytes, d.sha256);
    }
    let id = std::path::Path::new(relative)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    eprintln!(
        "use it: models.providers.local = {{ api: \"embedded\", models: [{{ id: \"{id}\", path: \"{relative}\" }}] }}"
    );
    Ok(())
}
