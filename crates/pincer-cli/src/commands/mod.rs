//! One module per command group; each returns the process exit code.

mod channels;
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
    let path = cli.config.as_deref();
    match cli.command {
        Command::Models(ModelsCommand::List(args)) => {
            let which = if args.local {
                Discover::EveryLocal
            } else {
                Discover::Named
            };
            let (loaded, found) = discovered_config(path, &env, which, args.refresh)?;
            models::list(&loaded, &env, &args, &found)
        }
        Command::Models(ModelsCommand::Resolve(args)) => {
            let (loaded, _) = discovered_config(path, &env, Discover::Named, false)?;
            models::resolve(&loaded, &env, &args)
        }
        Command::Models(ModelsCommand::Pull(args)) => pull::run(&env, &args),
        Command::Models(ModelsCommand::Status(args)) => {
            let (loaded, _) = discovered_config(path, &env, Discover::Named, false)?;
            doctor::status(&loaded, &env, &args)
        }
        Command::Doctor(args) => {
            let mut loaded = pincer_config::load(path, &env)?;
            let found = discover(&mut loaded, &env, Discover::Named, false)?;
            doctor::run(&loaded, &env, &args, &found)
        }
        Command::Config(ConfigCommand::Validate(args)) => {
            let path = args.path.as_deref().or(cli.config.as_deref());
            config::validate(&pincer_config::load(path, &env)?, args.json)
        }
        Command::Gateway(args) => {
            let (loaded, _) = discovered_config(path, &env, Discover::Named, false)?;
            gateway::run(loaded, &env, &args)
        }
        Command::Sessions(command) => {
            sessions::run(&usable_config(cli.config.as_deref(), &env)?, &env, &command)
        }
        Command::Chat(args) => {
            let (loaded, _) = discovered_config(path, &env, Discover::Named, false)?;
            chat::run(&loaded, &env, &args)
        }
        Command::Pairing(command) => {
            channels::pairing(&usable_config(cli.config.as_deref(), &env)?, &env, &command)
        }
        Command::Channels(command) => {
            channels::run(&usable_config(cli.config.as_deref(), &env)?, &env, &command)
        }
        Command::Tools(ToolsCommand::List(args)) => {
            let (loaded, _) = discovered_config(path, &env, Discover::Named, false)?;
            tools::list(&loaded, &env, &args)
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

/// Which providers' servers are asked for their models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discover {
    /// Those the config relies on (configured without models, or named by
    /// the agents' models).
    Named,
    /// Every local one (`pincer models list --local`).
    EveryLocal,
}

/// Asks the servers whose models come from them (see
/// `pincer_catalog::discovery`) and adds what they list to the config's
/// providers; returns what each said (a server that is down says so).
fn discover(
    loaded: &mut Loaded,
    env: &Env,
    which: Discover,
    fresh: bool,
) -> Result<Vec<pincer_catalog::discovery::Discovery>> {
    let found = {
        let catalog = Catalog::new(&loaded.config.models);
        let ids = pincer_catalog::discovery::providers_to_discover(
            &loaded.config,
            &catalog,
            which == Discover::EveryLocal,
        );
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let agent = pincer_catalog::agents(&loaded.config)
            .into_iter()
            .find(|a| a.is_default)
            .map(|a| a.id)
            .unwrap_or_else(|| pincer_catalog::DEFAULT_AGENT_ID.to_string());
        let providers = providers(
            loaded,
            env,
            &[&agent],
            std::sync::Arc::new(pincer_gguf::Silent),
        )?;
        let cache = env.state_dir().map(|d| pincer_router::discovery_path(&d));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(providers.discover(&catalog, &ids, &agent, cache.as_deref(), fresh))
    };
    pincer_catalog::discovery::apply(&mut loaded.config.models, &found);
    Ok(found)
}

/// `usable_config` with the discovered models added.
fn discovered_config(
    path: Option<&Path>,
    env: &Env,
    which: Discover,
    fresh: bool,
) -> Result<(Loaded, Vec<pincer_catalog::discovery::Discovery>)> {
    let mut loaded = pincer_config::load(path, env)?;
    let found = discover(&mut loaded, env, which, fresh)?;
    for d in &found {
        if let Some(e) = &d.error
            && which == Discover::Named
        {
            let kept = if d.models.is_empty() {
                String::new()
            } else {
                format!(" (using the {} model(s) it listed before)", d.models.len())
            };
            eprintln!(
                "note: cannot list the models of {} at {}: {e}{kept}",
                d.provider, d.base_url
            );
        }
    }
    Ok((check_usable(loaded)?, found))
}

/// Load the config for a command that needs a valid one: errors stop it,
/// warnings are counted on stderr.
fn usable_config(path: Option<&Path>, env: &Env) -> Result<Loaded> {
    check_usable(pincer_config::load(path, env)?)
}

fn check_usable(loaded: Loaded) -> Result<Loaded> {
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
