//! `pincer config validate|show`.

use std::process::ExitCode;

use anyhow::Result;
use pincer_catalog::Catalog;
use pincer_config::{Loaded, Severity};
use serde_json::json;

pub fn validate(loaded: &Loaded, as_json: bool) -> Result<ExitCode> {
    let catalog = Catalog::new(&loaded.config.models);
    let diags = super::diagnostics(loaded, &catalog);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let path = loaded.path.as_ref().map(|p| p.display().to_string());
    if as_json {
        let out = json!({
            "ok": errors == 0,
            "path": path,
            "errors": errors,
            "warnings": warnings,
            "issues": diags,
            "notUsed": loaded.config.not_used,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match &path {
            Some(p) => println!("{p}"),
            None => println!("no config file: using built-in defaults"),
        }
        for d in &diags {
            let tag = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!("  {tag}: {d}");
        }
        if !loaded.config.not_used.is_empty() {
            println!(
                "  not used by Pincer (kept as is): {}",
                loaded.config.not_used.join(", ")
            );
        }
        let verdict = if errors == 0 { "valid" } else { "invalid" };
        println!("{verdict}: {errors} error(s), {warnings} warning(s)");
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn show(loaded: &Loaded) -> Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&loaded.to_redacted_json())?
    );
    Ok(ExitCode::SUCCESS)
}
