//! Checks that need the catalog: references to providers and models,
//! aliases, fallbacks, custom providers without a base URL.

use std::collections::HashMap;

use pincer_config::{AgentSettings, Api, Config, Diagnostic, Spanned};

use crate::builtin::builtin;
use crate::catalog::{Catalog, DEFAULT_CONTEXT_WINDOW, DEFAULT_MAX_TOKENS};
use crate::model_ref::ModelRef;
use crate::selection::{Aliases, ResolveError, resolve};

/// Every reference problem in the config, as diagnostics with path and line:column.
pub fn check(config: &Config, catalog: &Catalog<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_providers(config, catalog, &mut out);
    let defaults = &config.agents.defaults;
    check_aliases(defaults, &mut out);
    check_settings(
        catalog,
        &Aliases::from_settings([defaults]),
        defaults,
        &mut out,
    );
    for e in &config.agents.entries {
        check_aliases(&e.settings, &mut out);
        check_settings(
            catalog,
            &Aliases::from_settings([defaults, &e.settings]),
            &e.settings,
            &mut out,
        );
    }
    out
}

fn check_providers(config: &Config, catalog: &Catalog<'_>, out: &mut Vec<Diagnostic>) {
    for p in &config.models.providers {
        if builtin().provider(&p.id.value).is_some() {
            continue;
        }
        let embedded = p.api.as_ref().is_some_and(|a| a.value == Api::Embedded);
        if embedded {
            // In-process models need a file, not a server.
            for m in p.models.iter().flatten() {
                let model_embedded = m.api.as_ref().is_none_or(|a| a.value == Api::Embedded);
                if model_embedded && m.path.is_none() {
                    out.push(Diagnostic::error(
                        m.id.path.as_str(),
                        format!(
                            "embedded model {:?} needs \"path\": its GGUF file (absolute, ~/…, or relative to Pincer's models dir, where `pincer models pull` puts files)",
                            m.id.value
                        ),
                        m.id.loc.clone(),
                    ));
                }
            }
        }
        if p.base_url.is_none() && !embedded {
            out.push(Diagnostic::error(
                p.id.path.as_str(),
                format!(
                    "custom provider {:?} needs \"baseUrl\" (only built-in providers may omit it), e.g. \"http://127.0.0.1:1234/v1\"",
                    p.id.value
                ),
                p.id.loc.clone(),
            ));
        }
        if p.models.is_none() && crate::discovery::is_discoverable(catalog, &p.id.value) {
            out.push(Diagnostic::warning(
                p.id.path.as_str(),
                format!(
                    "custom provider {:?} has no \"models\": they are listed from its server (model discovery); \
                     list them under models to state their limits, or for OpenClaw, which needs them",
                    p.id.value
                ),
                p.id.loc.clone(),
            ));
        } else if p.models.is_none() {
            out.push(Diagnostic::error(
                p.id.path.as_str(),
                format!(
                    "custom provider {:?} needs \"models\": the models its server offers",
                    p.id.value
                ),
                p.id.loc.clone(),
            ));
        }
    }
}

fn check_aliases(settings: &AgentSettings, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, &Spanned<String>> = HashMap::new();
    for e in &settings.models {
        let Some(alias) = &e.alias else { continue };
        if ModelRef::is_wildcard(&e.reference.value) {
            out.push(Diagnostic::warning(
                alias.path.as_str(),
                "a wildcard entry cannot have an alias; it is ignored",
                alias.loc.clone(),
            ));
            continue;
        }
        if ModelRef::parse(&alias.value).is_ok() {
            out.push(Diagnostic::warning(
                alias.path.as_str(),
                format!(
                    "alias {:?} looks like a model ref; pick a name without '/'",
                    alias.value
                ),
                alias.loc.clone(),
            ));
        }
        let key = alias.value.to_lowercase();
        if let Some(first) = seen.get(&key) {
            let at = first
                .loc
                .as_ref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            out.push(Diagnostic::error(
                alias.path.as_str(),
                format!(
                    "alias {:?} is already used{at} (aliases are case-insensitive); give each model its own",
                    alias.value
                ),
                alias.loc.clone(),
            ));
        } else {
            seen.insert(key, alias);
        }
    }
}

fn check_settings(
    catalog: &Catalog<'_>,
    aliases: &Aliases,
    s: &AgentSettings,
    out: &mut Vec<Diagnostic>,
) {
    let mut primary_ref = None;
    if let Some(m) = &s.model {
        if let Some(p) = &m.primary {
            primary_ref = check_ref(catalog, aliases, p, out);
        }
        let mut seen: Vec<String> = Vec::new();
        for f in m.fallbacks.iter().flatten() {
            let Some(r) = check_ref(catalog, aliases, f, out) else {
                continue;
            };
            if primary_ref.as_ref() == Some(&r) {
                out.push(Diagnostic::warning(
                    f.path.as_str(),
                    format!("fallback {:?} is the primary model; it is skipped", f.value),
                    f.loc.clone(),
                ));
            } else if seen.contains(&r) {
                out.push(Diagnostic::warning(
                    f.path.as_str(),
                    format!("fallback {:?} is listed twice; it is tried once", f.value),
                    f.loc.clone(),
                ));
            }
            seen.push(r);
        }
    }
    for e in &s.models {
        let r = &e.reference;
        if ModelRef::is_wildcard(&r.value) {
            check_wildcard(catalog, r, out);
        } else if ModelRef::parse(&r.value).is_err() {
            out.push(Diagnostic::error(
                r.path.as_str(),
                format!(
                    "{:?} is not a model ref: keys of \"models\" are \"provider/model\"",
                    r.value
                ),
                r.loc.clone(),
            ));
        } else {
            check_ref(catalog, &Aliases::default(), r, out);
        }
    }
    for a in s.allow.iter().flatten() {
        if ModelRef::is_wildcard(&a.value) {
            check_wildcard(catalog, a, out);
        } else {
            check_ref(catalog, aliases, a, out);
        }
    }
}

fn check_wildcard(catalog: &Catalog<'_>, pattern: &Spanned<String>, out: &mut Vec<Diagnostic>) {
    let provider = pattern
        .value
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if catalog.provider(&provider).is_none() {
        out.push(Diagnostic::error(
            pattern.path.as_str(),
            format!("unknown provider {provider:?} in {:?}", pattern.value),
            pattern.loc.clone(),
        ));
    }
}

/// Resolve one reference; report what is wrong with it. Returns the model's ref when known.
fn check_ref(
    catalog: &Catalog<'_>,
    aliases: &Aliases,
    r: &Spanned<String>,
    out: &mut Vec<Diagnostic>,
) -> Option<String> {
    match resolve(catalog, aliases, &r.value) {
        Ok(res) => Some(res.spec.reference),
        Err(ResolveError::UnknownModel {
            provider,
            model,
            suggestion,
            exhaustive: false,
        }) => {
            let hint = suggestion
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            out.push(Diagnostic::warning(
                r.path.as_str(),
                format!(
                    "model {model:?} is not in the built-in catalog for {provider:?}{hint}; \
                     it will be tried with default limits (context {DEFAULT_CONTEXT_WINDOW}, output {DEFAULT_MAX_TOKENS}) \
                     — add it under models.providers.{provider}.models to state its limits"
                ),
                r.loc.clone(),
            ));
            Some(format!("{provider}/{model}"))
        }
        Err(ResolveError::UnknownModel {
            provider, model, ..
        }) if catalog.provider(&provider).is_some() => {
            let listed: Vec<String> = catalog
                .models_of(&provider)
                .into_iter()
                .map(|m| m.id)
                .collect();
            let hint = pincer_config::did_you_mean(&model, listed.iter().map(String::as_str))
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            let known = if listed.is_empty() {
                "it lists none".to_string()
            } else {
                format!("it lists {}", listed.join(", "))
            };
            out.push(Diagnostic::error(
                r.path.as_str(),
                format!("provider {provider:?} has no model {model:?}{hint}; {known}"),
                r.loc.clone(),
            ));
            None
        }
        Err(e) => {
            out.push(Diagnostic::error(
                r.path.as_str(),
                e.to_string(),
                r.loc.clone(),
            ));
            None
        }
    }
}
