//! One module per command group; each returns the process exit code.

mod chat;
mod config;
mod doctor;
mod gateway;
mod models;
mod progress;
mod pull;
mod sessions;
mod tools;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use pincer_catalog::Catalog;
use pincer_config::{Diagnostic, Env, Loaded};

use crate::cli::{Cli, Command, ConfigCommand, ModelsCommand, ToolsCommand};

pub fn run(cli: Cli) -> Result<ExitCode> {
    let env = Env::Process;
    match cli.command {
        Command::Models(ModelsCommand::List(args)) => {
            models::list(&usable_config(cli.config.as_deref(), &env)?, &env, &args)
        }
        Command::Models(ModelsCommand::Resolve(args)) => {
            models::resolve(&usable_config(cli.config.as_deref(), &env)?, &env, &args)
        }
        Command::Models(ModelsCommand::Pull(args)) => pull::run(&env, &args),
        Command::Models(ModelsCommand::Status(args)) => {
            doctor::status(&usable_config(cli.config.as_deref(), &env)?, &env, &args)
        }
        Command::Doctor(args) => doctor::run(
            &pincer_config::load(cli.config.as_deref(), &env)?,
            &env,
            &args,
        ),
        Command::Config(ConfigCommand::Validate(args)) => {
            let path = args.path.as_deref().or(cli.config.as_deref());
            config::validate(&pincer_config::load(path, &env)?, args.json)
        }
        Command::Gateway(args) => {
            gateway::run(usable_config(cli.config.as_deref(), &env)?, &env, &args)
        }
        Command::Sessions(command) => {
            sessions::run(&usable_config(cli.config.as_deref(), &env)?, &env, &command)
        }
        Command::Chat(args) => chat::run(&usable_config(cli.config.as_deref(), &env)?, &env, &args),
        Command::Tools(ToolsCommand::List(args)) => {
            tools::list(&usable_config(cli.config.as_deref(), &env)?, &args)
        }
        Command::Config(ConfigCommand::Show) => {
            config::show(&pincer_config::load(cli.config.as_deref(), &env)?)
        }
    }
}

/// Providers with each agent's own auth profiles (the first is the one a
/// command is about); a profile store that cannot be read is reported and
/// skipped.
pub(crate) fn providers(
    loaded: &Loaded,
    env: &Env,
    agents: &[&str],
    progress: std::sync::Arc<dyn pincer_gguf::Progress>,
) -> Result<pincer_router::Providers> {
    let mut providers = pincer_router::Providers::new(env.clone(), progress)?;
    for agent in agents {
        let (credentials, problem) =
            pincer_router::Credentials::load(&loaded.config.auth, env, agent);
        if let Some(p) = problem {
            eprintln!("warning: {p}; its auth profiles are not used");
        }
        providers = providers.with_credentials(agent, credentials);
    }
    Ok(providers)
}

/// Config problems plus the catalog's reference checks, in file order.
pub fn diagnostics(loaded: &Loaded, catalog: &Catalog<'_>) -> Vec<Diagnostic> {
    let mut all = loaded.diagnostics.clone();
    // The typed config holds every value that was valid, so reference checks
    // still run beside structural errors: all problems in one run.
    all.extend(pincer_catalog::check(&loaded.config, catalog));
    pincer_config::sort_by_location(&mut all);
    all
}

/// Load the config for a command that needs a valid one: errors stop it,
/// warnings are counted on stderr.
fn usable_config(path: Option<&Path>, env: &Env) -> Result<Loaded> {
    let loaded = pincer_config::load(path, env)?;
    let catalog = Catalog::new(&loaded.config.models);
    let diags = diagnostics(&loaded, &catalog);
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        let file = loaded
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        bail!(
            "config {file} has {} error(s); fix them or run `pincer config validate`",
            errors.len()
        );
    }
    let warnings = diags.len();
    if warnings > 0 {
        eprintln!(
            "note: the config has {warnings} warning(s); `pincer config validate` lists them"
        );
    }
    Ok(loaded)
}
