//! `pincer pairing` and `pincer channels`: approving chat-app senders, and
//! what each channel is doing (as the gateway last wrote it).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pincer_channels::pairing::{APPROVED_TEXT, Pairing};
use pincer_channels::status::{Link, StatusFile};
use pincer_channels::whatsapp;
use pincer_config::{Env, Loaded};
use serde_json::json;
use std::time::Duration;

use crate::cli::{ChannelsCommand, PairingCommand};
use crate::format;

const CHANNELS: [&str; 2] = ["telegram", "whatsapp"];

fn channel_name(name: &str) -> Result<String> {
    let name = name.trim().to_ascii_lowercase();
    if !CHANNELS.contains(&name.as_str()) {
        bail!("unknown channel {name:?}: Pincer's chat apps are telegram and whatsapp");
    }
    Ok(name)
}

pub fn pairing(loaded: &Loaded, env: &Env, command: &PairingCommand) -> Result<ExitCode> {
    let state_dir = env
        .state_dir()
        .context("no state dir: set OPENCLAW_STATE_DIR or HOME")?;
    match command {
        PairingCommand::List(args) => {
            let channels = match &args.channel {
                Some(c) => vec![channel_name(c)?],
                None => CHANNELS.iter().map(|c| c.to_string()).collect(),
            };
            let mut rows = Vec::new();
            for c in &channels {
                for r in Pairing::new(&state_dir, c).pending()? {
                    rows.push((c.clone(), r));
                }
            }
            if args.json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(c, r)| {
                        json!({"channel": c, "id": r.id, "code": r.code,
                        "createdAt": r.created_at, "lastSeenAt": r.last_seen_at,
                        "username": r.meta.username, "name": r.meta.name})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "requests": list }))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("No pairing requests waiting.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = format::table(&["Channel", "Code", "Sender", "Name", "Requested"]);
            for (c, r) in &rows {
                let name = [
                    r.meta.name.clone(),
                    r.meta.username.as_ref().map(|u| format!("@{u}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
                t.add_row(vec![
                    c.clone(),
                    r.code.clone(),
                    r.id.clone(),
                    name,
                    r.created_at.clone(),
                ]);
            }
            println!("{t}");
            println!("Approve one with: pincer pairing approve <channel> <code>");
            Ok(ExitCode::SUCCESS)
        }
        PairingCommand::Approve(args) => {
            let channel = channel_name(&args.channel)?;
            let approved = Pairing::new(&state_dir, &channel).approve(&args.code)?;
            println!("Approved {channel} sender {}.", approved.id);
            if args.notify {
                notify(loaded, env, &channel, &approved.id);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Tells an approved Telegram sender (a failure is reported, not fatal:
/// the approval stands).
fn notify(loaded: &Loaded, env: &Env, channel: &str, id: &str) {
    let sent = (|| -> Result<()> {
        if channel != "telegram" {
            bail!("--notify works for telegram only; the gateway owns the WhatsApp link");
        }
        let cfg = loaded
            .config
            .channels
            .telegram
            .as_ref()
            .context("channels.telegram is not configured")?;
        let token = pincer_channels::telegram::token(cfg, env).map_err(anyhow::Error::msg)?;
        let api = pincer_channels::telegram::api::Api::new(
            cfg.api_root.as_ref().map(|r| r.value.as_str()),
            token,
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(
            api.send_message(&pincer_channels::telegram::api::SendMessage {
                chat_id: id,
                text: APPROVED_TEXT,
                message_thread_id: None,
            }),
        )?;
        Ok(())
    })();
    match sent {
        Ok(()) => println!("Told them so."),
        Err(e) => eprintln!("warning: could not tell them: {e}"),
    }
}

/// Whether the process that wrote the status is still running.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub fn run(loaded: &Loaded, env: &Env, command: &ChannelsCommand) -> Result<ExitCode> {
    let state_dir = env
        .state_dir()
        .context("no state dir: set OPENCLAW_STATE_DIR or HOME")?;
    let args = match command {
        ChannelsCommand::Status(args) => args,
        ChannelsCommand::Login(args) => {
            return login(loaded, &state_dir, &args.channel, args.timeout);
        }
        ChannelsCommand::Logout(args) => return logout(loaded, &state_dir, &args.channel),
    };
    let file = StatusFile::read(&state_dir).map_err(anyhow::Error::msg)?;
    let channels = &loaded.config.channels;
    let configured = [
        (
            "telegram",
            channels
                .telegram
                .as_ref()
                .map(|c| c.access.enabled != Some(false)),
        ),
        (
            "whatsapp",
            channels
                .whatsapp
                .as_ref()
                .map(|c| c.access.enabled != Some(false)),
        ),
    ];
    let mut rows = Vec::new();
    for (name, enabled) in configured {
        let status = file.channels.get(name);
        let running = status.is_some_and(|s| alive(s.pid));
        let unlinked = name == "whatsapp"
            && !whatsapp::is_linked(&whatsapp::auth_dir(&state_dir, channels.whatsapp.as_ref()));
        let state = match (enabled, status) {
            (None, _) => "not configured".to_string(),
            (Some(false), _) => "disabled".to_string(),
            (Some(true), _) if unlinked => {
                "not linked (pincer channels login whatsapp)".to_string()
            }
            (Some(true), None) => "not started (is the gateway running?)".to_string(),
            (Some(true), Some(s)) if !running && s.link != Link::LoggedOut => {
                "gateway not running".to_string()
            }
            (Some(true), Some(s)) => serde_json::to_value(s.link)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        rows.push((name, state, status.cloned(), running));
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, state, s, running)| {
                json!({"channel": name, "state": state,
                "gatewayRunning": running, "status": s})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "channels": list }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = format::table(&[
        "Channel",
        "State",
        "Account",
        "Last message",
        "Detail / last error",
    ]);
    for (name, state, s, _) in &rows {
        let (account, last, detail) = match s {
            Some(s) => (
                s.identity.clone().unwrap_or_default(),
                s.last_inbound_ms
                    .max(s.last_outbound_ms)
                    .map(format::ago)
                    .unwrap_or_else(|| "—".into()),
                match (&s.detail, &s.last_error) {
                    (Some(d), Some(e)) => format!("{d}; last error: {e}"),
                    (Some(d), None) => d.clone(),
                    (None, Some(e)) => format!("last error: {e}"),
                    (None, None) => String::new(),
                },
            ),
            None => (String::new(), "—".into(), String::new()),
        };
        t.add_row(vec![name.to_string(), state.clone(), account, last, detail]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// WhatsApp's credentials folder and a runtime to link or unlink it in.
fn whatsapp_setup(
    loaded: &Loaded,
    state_dir: &std::path::Path,
    channel: &str,
) -> Result<(std::path::PathBuf, tokio::runtime::Runtime)> {
    if channel_name(channel)? == "telegram" {
        bail!(
            "Telegram needs no login: create a bot with @BotFather and set channels.telegram.botToken (or TELEGRAM_BOT_TOKEN)"
        );
    }
    let dir = whatsapp::auth_dir(state_dir, loaded.config.channels.whatsapp.as_ref());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok((dir, rt))
}

fn login(
    loaded: &Loaded,
    state_dir: &std::path::Path,
    channel: &str,
    timeout: u64,
) -> Result<ExitCode> {
    let (dir, rt) = whatsapp_setup(loaded, state_dir, channel)?;
    eprintln!(
        "Linking WhatsApp (credentials in {}); waiting for a QR code…",
        dir.display()
    );
    let linked = rt.block_on(whatsapp::login(&dir, Duration::from_secs(timeout), |qr| {
        println!("{qr}");
    }));
    match linked {
        Ok(number) => {
            println!(
                "Linked WhatsApp {number}. Start (or restart) `pincer gateway` to answer in it."
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bail!("WhatsApp: {e}"),
    }
}

fn logout(loaded: &Loaded, state_dir: &std::path::Path, channel: &str) -> Result<ExitCode> {
    let (dir, rt) = whatsapp_setup(loaded, state_dir, channel)?;
    if rt
        .block_on(whatsapp::logout(&dir))
        .map_err(anyhow::Error::msg)?
    {
        println!(
            "Unlinked WhatsApp; its credentials in {} are deleted.",
            dir.display()
        );
    } else {
        println!(
            "WhatsApp is not linked ({} holds no credentials).",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
