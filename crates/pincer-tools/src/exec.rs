//! `exec` and `process`: shell commands in the workspace.
//!
//! Whether a command may run is one decision ([`decide`], table-tested):
//! `tools.exec.security` (`deny`, `allowlist`, `full`) and `ask` (`off`,
//! `on-miss`, `always`), with the agent's allowlist from OpenClaw's
//! `exec-approvals.json`. Pincer's default is `allowlist` + `on-miss` with
//! an empty allowlist: every command waits for the user's `/approve`
//! until they allow it always.
//!
//! A command runs in a bubblewrap sandbox where the machine has one (no
//! network, the workspace read-write, the rest of the system read-only,
//! the home and state folders and `/run` hidden), with a clean
//! environment (no variable of the gateway's reaches a command), a time
//! limit, and bounded output (invalid UTF-8 replaced). One still running
//! after `yieldMs` continues in the background for `process`. Without the
//! sandbox (no bubblewrap, or `host: "gateway"`) a command runs as the
//! gateway's user and could read what that user can, the gateway's
//! `/proc` entry included: approvals say so, and `pincer doctor` warns.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

/// The most output kept per command (the tail), and the most given to the model.
const KEEP_BYTES: usize = 256 * 1024;
pub const RESULT_CHARS: usize = 30_000;
/// Background commands kept per runtime.
const MAX_BACKGROUND: usize = 32;
const BACKGROUND_PER_SESSION: usize = 8;
/// Approvals waiting, and how long one waits (OpenClaw: 30 min).
const MAX_PENDING: usize = 256;
const PENDING_PER_SESSION: usize = 8;
const APPROVAL_TTL: Duration = Duration::from_secs(1800);
/// Environment variables a call may not set.
const BLOCKED_ENV: &[&str] = &[
    "LD_",
    "DYLD_",
    "BASH_ENV",
    "BASH_FUNC_",
    "ENV",
    "PATH",
    "HOME",
    "IFS",
    "SHELLOPTS",
    "PROMPT_COMMAND",
    "NODE_OPTIONS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "GIT_",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Security {
    Deny,
    Allowlist,
    Full,
}

impl Security {
    pub fn parse(s: &str) -> Option<Security> {
        match s {
            "deny" => Some(Security::Deny),
            "allowlist" => Some(Security::Allowlist),
            "full" => Some(Security::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Security::Deny => "deny",
            Security::Allowlist => "allowlist",
            Security::Full => "full",
        }
    }
}

/// Ordered from least to most asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ask {
    Off,
    OnMiss,
    Always,
}

impl Ask {
    pub fn parse(s: &str) -> Option<Ask> {
        match s {
            "off" => Some(Ask::Off),
            "on-miss" => Some(Ask::OnMiss),
            "always" => Some(Ask::Always),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ask::Off => "off",
            Ask::OnMiss => "on-miss",
            Ask::Always => "always",
        }
    }
}

/// How `exec` runs, resolved once from `tools.exec`.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    pub security: Security,
    pub ask: Ask,
    /// Run inside bubblewrap when the machine has it (`host: "sandbox"`,
    /// the default); `host: "gateway"` runs commands directly.
    pub sandbox: bool,
    pub timeout: Duration,
    pub yield_after: Duration,
    pub safe_bins: Vec<String>,
}

impl ExecSettings {
    pub fn from_config(e: &pincer_config::ExecConfig) -> ExecSettings {
        let security = e
            .security
            .as_deref()
            .and_then(Security::parse)
            .unwrap_or(Security::Allowlist);
        let ask = e.ask.as_deref().and_then(Ask::parse).unwrap_or(Ask::OnMiss);
        let sandbox = e.host.as_deref() != Some("gateway");
        let timeout = e.timeout_sec.unwrap_or(1800);
        let yield_ms = e.background_ms.unwrap_or(10_000);
        let safe_bins = e
            .safe_bins
            .clone()
            .map(|l| l.into_iter().map(|s| s.value).collect())
            .unwrap_or_default();
        ExecSettings {
            security,
            ask,
            sandbox,
            timeout: Duration::from_secs(timeout),
            yield_after: Duration::from_millis(yield_ms),
            safe_bins,
        }
    }
}

impl ExecSettings {
    /// These settings, made stricter by the host's `exec-approvals.json`
    /// (it can only tighten, as in OpenClaw).
    pub fn tightened(&self, host: &HostPolicy) -> ExecSettings {
        ExecSettings {
            security: host
                .security
                .map_or(self.security, |h| h.min(self.security)),
            ask: host.ask.map_or(self.ask, |h| h.max(self.ask)),
            ..self.clone()
        }
    }
}

/// What `exec-approvals.json` says for one agent: its allowlist, and the
/// `security` and `ask` of its entry (or the file's `defaults`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    pub allowlist: Vec<String>,
    pub security: Option<Security>,
    pub ask: Option<Ask>,
}

/// The parts of OpenClaw's `exec-approvals.json` Pincer reads.
#[derive(Debug, Default, serde::Deserialize)]
struct ApprovalsFile {
    #[serde(default)]
    defaults: HostEntry,
    #[serde(default)]
    agents: HashMap<String, HostEntry>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct HostEntry {
    security: Option<String>,
    ask: Option<String>,
    #[serde(default)]
    allowlist: Vec<AllowEntry>,
}

#[derive(Debug, serde::Deserialize)]
struct AllowEntry {
    /// An entry without one is skipped, not the whole file.
    pattern: Option<String>,
}

/// What may happen to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// Waits for the user's `/approve`; `always` when allow-always is not offered.
    Ask {
        why: String,
        every_time: bool,
    },
    Deny(String),
}

/// The one rule for whether `command` runs, given the settings and the
/// agent's allowlist (binary names, or absolute paths with `*`).
pub fn decide(s: &ExecSettings, allowlist: &[String], command: &str, env_set: bool) -> Decision {
    match s.security {
        Security::Deny => Decision::Deny(
            "exec is turned off (security \"deny\", from tools.exec or exec-approvals.json)".into(),
        ),
        Security::Full if s.ask == Ask::Always => Decision::Ask {
            why: ASK_ALWAYS.into(),
            every_time: true,
        },
        Security::Full => Decision::Run,
        Security::Allowlist => {
            let miss = if env_set {
                Some("a command that sets environment variables always needs approval".into())
            } else {
                allowlist_miss(command, allowlist, &s.safe_bins)
            };
            match (miss, s.ask) {
                (None, Ask::Always) => Decision::Ask {
                    why: ASK_ALWAYS.into(),
                    every_time: true,
                },
                (None, _) => Decision::Run,
                (Some(why), Ask::Off) => Decision::Deny(format!(
                    "{why}, and ask is \"off\" (allowlist mode; tools.exec or exec-approvals.json)"
                )),
                (Some(why), _) => Decision::Ask {
                    why,
                    every_time: false,
                },
            }
        }
    }
}

/// Why every command waits, wherever the setting came from.
const ASK_ALWAYS: &str = "ask is \"always\" (tools.exec or exec-approvals.json)";

/// The `PATH` every command runs with (and binaries are looked up in).
pub const COMMAND_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The characters an allowlisted command may use: plain words and the
/// separators `|`, `;`, `&`. Anything a shell reads specially (quotes,
/// `\`, `#`, `$`, globs, redirections, groups, `~`, newlines, inline
/// `VAR=value`) makes the command a miss, so what is checked is what the
/// shell runs.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || " \t_./:@%+,-|;&".contains(c)
}

/// Why `command` is not covered by the allowlist, or `None` when every
/// part of it is.
fn allowlist_miss(command: &str, allowlist: &[String], safe_bins: &[String]) -> Option<String> {
    if let Some(c) = command.chars().find(|c| !plain(*c)) {
        return Some(format!(
            "{c:?} in a command (quotes, variables, redirections, globs and other shell syntax) always needs approval"
        ));
    }
    let segments = segments(command);
    if segments.is_empty() {
        return Some("an empty command".into());
    }
    for words in &segments {
        let Some(bin) = words.first() else {
            return Some("an empty command part".into());
        };
        if bin.contains('/') && !bin.starts_with('/') {
            return Some(format!(
                "{bin:?} is a relative path: only names and absolute paths can be allowlisted"
            ));
        }
        // Its arguments are the real command: never covered by a listing.
        if is_one_of(RUNS_ANYTHING, bin) {
            return Some(format!("{bin:?} runs other programs, so it always asks"));
        }
        let resolved = located(bin);
        let allowed = if bin.contains('/') {
            // A path: only path patterns, against the real file.
            allowlist.iter().filter(|p| p.contains('/')).any(|p| {
                resolved
                    .as_ref()
                    .is_some_and(|r| glob_path(p, &r.to_string_lossy()))
            })
        } else {
            safe_bins.contains(bin)
                || allowlist.iter().any(|p| {
                    if p.contains('/') {
                        resolved
                            .as_ref()
                            .is_some_and(|r| glob_path(p, &r.to_string_lossy()))
                    } else {
                        p == bin
                    }
                })
        };
        if !allowed {
            return Some(format!("{bin:?} is not in the exec allowlist"));
        }
    }
    None
}

/// The words of each part of a plain command (see [`plain`]) between
/// `|`, `||`, `&&`, `&` and `;`.
fn segments(command: &str) -> Vec<Vec<String>> {
    command
        .split(['|', ';', '&'])
        .map(|part| {
            part.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn glob_path(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, rest)) => path.strip_prefix(head).is_some_and(|tail| {
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob_path(rest, &tail[i..]))
        }),
    }
}

/// Where `bin` is on the commands' `PATH` (or itself when it names a path).
/// Where `bin` is, its folder resolved but not the file itself: a link to
/// a multi-call binary (busybox, uutils) keeps its own name, so allowing
/// `ls` never allows everything that binary can be.
fn located(bin: &str) -> Option<PathBuf> {
    let p = which(bin)?;
    let dir = p.parent()?.canonicalize().ok()?;
    Some(dir.join(p.file_name()?))
}

/// Programs whose arguments are themselves a command (shells and their
/// builtins, wrappers, interpreters): they always ask, whatever a listing
/// says, since "`env` is allowed" would allow everything.
const RUNS_ANYTHING: &[&str] = &[
    "sh",
    "bash",
    "rbash",
    "dash",
    "ash",
    "zsh",
    "ksh",
    "mksh",
    "csh",
    "tcsh",
    "fish",
    "busybox",
    "eval",
    "exec",
    "command",
    "builtin",
    ".",
    "source",
    "trap",
    "env",
    "xargs",
    "find",
    "timeout",
    "nice",
    "nohup",
    "stdbuf",
    "setsid",
    "time",
    "sudo",
    "doas",
    "su",
    "chroot",
    "unshare",
    "nsenter",
    "flock",
    "ionice",
    "taskset",
    "watch",
    "parallel",
    "script",
    "strace",
    "gdb",
    "systemd-run",
    "run-parts",
    "start-stop-daemon",
    "crontab",
    "at",
    "batch",
    "xdg-open",
    "python",
    "python3",
    "perl",
    "ruby",
    "node",
    "php",
    "lua",
    "tclsh",
    "expect",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "sed",
];

/// Programs that can run others through options, hooks or scripts: a
/// listing written by hand is honoured, but allow-always never adds them
/// ("always allow `git status`" would also allow `git -c core.pager=…`).
const RUNS_SOME: &[&str] = &[
    "git",
    "make",
    "ssh",
    "tar",
    "zip",
    "rsync",
    "npm",
    "npx",
    "pip",
    "pip3",
    "cargo",
    "go",
    "docker",
    "podman",
    "sqlite3",
    "psql",
    "vi",
    "vim",
    "nvim",
    "ex",
    "ed",
    "emacs",
    "less",
    "more",
    "man",
    "editor",
    "pager",
    "sensible-editor",
    "sensible-pager",
];

/// Whether `bin` (a name or a path) is in `list`, by its own name or by the
/// file it finally links to (`editor` → `vim.basic`).
fn is_one_of(list: &[&str], bin: &str) -> bool {
    let listed = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        // `python3.12` is `python`, `vim.basic` is `vim`.
        let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        let stem = name.split('.').next().unwrap_or(name);
        [name, family, stem].iter().any(|n| list.contains(n))
    };
    listed(bin)
        || which(bin)
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|real| listed(&real.to_string_lossy()))
}

pub fn which(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Some(PathBuf::from(bin));
    }
    std::env::split_paths(COMMAND_PATH)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// bubblewrap, wherever the gateway's own `PATH` has it.
fn bwrap_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::env::split_paths(COMMAND_PATH))
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
}

// ---- the sandbox ----

/// bubblewrap's path when it is installed and works here, else why not.
pub fn sandbox() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let Some(bwrap) = bwrap_path() else {
                return Err(
                    "bubblewrap is not installed (Debian: apt-get install bubblewrap)".into(),
                );
            };
            let ok = std::process::Command::new(&bwrap)
                .args([
                    "--ro-bind",
                    "/",
                    "/",
                    "--unshare-all",
                    "--die-with-parent",
                    "true",
                ])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match ok {
                Ok(s) if s.success() => Ok(bwrap),
                Ok(s) => Err(format!(
                    "bubblewrap cannot make a sandbox here ({s}; user namespaces may be disabled)"
                )),
                Err(e) => Err(format!("bubblewrap did not start: {e}")),
            }
        })
        .clone()
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub command: String,
    pub workdir: PathBuf,
    /// The workspace: writable inside the sandbox.
    pub workspace: PathBuf,
    /// Folders hidden from the command (the state dir, the home folder).
    pub hidden: Vec<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub sandbox: bool,
}

impl Job {
    /// Whether `other` would run the same thing in the same place.
    fn same_as(&self, other: &Job) -> bool {
        self.command == other.command
            && self.workdir == other.workdir
            && self.env == other.env
            && self.sandbox == other.sandbox
    }

    fn command(&self) -> Result<(tokio::process::Command, Option<String>), String> {
        for k in self.env.keys() {
            if BLOCKED_ENV
                .iter()
                .any(|b| k == b || (b.ends_with('_') && k.starts_with(b)))
            {
                return Err(format!("env {k} may not be set by a tool call"));
            }
        }
        let script = format!("exec 2>&1\n{}", self.command);
        let home = self.workspace.to_string_lossy().into_owned();
        let (mut cmd, note) = match (self.sandbox, sandbox()) {
            (true, Ok(bwrap)) => {
                let mut c = tokio::process::Command::new(bwrap);
                c.args([
                    "--ro-bind",
                    "/",
                    "/",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                    "--tmpfs",
                    "/tmp",
                    // Sockets there (the session bus, docker.sock) would
                    // reach outside the sandbox.
                    "--tmpfs",
                    "/run",
                ]);
                // A hidden folder that holds the workspace is hidden first
                // and the workspace bound again over it; one inside the
                // workspace is hidden after the bind.
                let (outer, inner): (Vec<&PathBuf>, Vec<&PathBuf>) = self
                    .hidden
                    .iter()
                    .filter(|h| h.is_dir() && **h != self.workspace)
                    .partition(|h| !h.starts_with(&self.workspace));
                for h in outer {
                    c.arg("--tmpfs").arg(h);
                }
                c.arg("--bind").arg(&self.workspace).arg(&self.workspace);
                for h in inner {
                    c.arg("--tmpfs").arg(h);
                }
                c.args([
                    "--unshare-all",
                    "--die-with-parent",
                    "--new-session",
                    "--chdir",
                ]);
                c.arg(&self.workdir);
                c.args(["--", "/bin/sh", "-c", &script]);
                (c, None)
            }
            (true, Err(why)) => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.args(["-c", &script]).current_dir(&self.workdir);
                (c, Some(format!("(not sandboxed: {why})")))
            }
            (false, _) => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.args(["-c", &script]).current_dir(&self.workdir);
                (c, None)
            }
        };
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .envs(&self.env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        Ok((cmd, note))
    }
}

/// A running or finished command.
pub struct Proc {
    pub id: String,
    pub command: String,
    pub pid: u32,
    pub started: Instant,
    /// The agent and session that started it ([`owner`]): only they see it.
    pub owner: String,
    output: Mutex<Ring>,
    exit: Mutex<Option<String>>,
    done: tokio::sync::Notify,
}

#[derive(Default)]
struct Ring {
    bytes: VecDeque<u8>,
    dropped: u64,
    /// Where the last poll stopped (total bytes seen).
    polled: u64,
}

impl Ring {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        while self.bytes.len() > KEEP_BYTES {
            let over = self.bytes.len() - KEEP_BYTES;
            self.bytes.drain(..over);
            self.dropped += over as u64;
        }
    }

    fn total(&self) -> u64 {
        self.dropped + self.bytes.len() as u64
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// What came since the last poll.
    fn since_poll(&mut self) -> String {
        let start = self.polled.saturating_sub(self.dropped) as usize;
        let v: Vec<u8> = self.bytes.iter().skip(start).copied().collect();
        self.polled = self.total();
        String::from_utf8_lossy(&v).into_owned()
    }
}

impl Proc {
    pub fn exit(&self) -> Option<String> {
        self.exit.lock().ok().and_then(|e| e.clone())
    }

    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.text()).unwrap_or_default()
    }

    fn dropped(&self) -> u64 {
        self.output.lock().map(|o| o.dropped).unwrap_or(0)
    }

    /// Kills the command's process group (while it runs: a finished
    /// one's group id may belong to someone else by now).
    pub fn kill(&self) {
        if self.exit().is_some() {
            return;
        }
        let pgid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }

    /// Waits at most `limit` for the command to end; whether it did.
    pub async fn wait(&self, limit: Duration) -> bool {
        if self.exit().is_some() {
            return true;
        }
        let notified = self.done.notified();
        if self.exit().is_some() {
            return true;
        }
        tokio::time::timeout(limit, notified).await.is_ok() || self.exit().is_some()
    }
}

/// Who a background command belongs to: the agent and the session that
/// started it, so one chat's commands are not another's to read or kill.
pub fn owner(agent: &str, session_key: &str) -> String {
    format!("{agent}\u{0}{session_key}")
}

/// Starts `job` for `owner`; the returned process collects its output and
/// exit status.
pub fn spawn(job: &Job, owner: &str) -> Result<(Arc<Proc>, Option<String>), String> {
    let (mut cmd, note) = job.command()?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start the command: {e}"))?;
    let pid = child.id().unwrap_or(0);
    let short = uuid::Uuid::new_v4().simple().to_string();
    let proc = Arc::new(Proc {
        id: format!("exec-{}", &short[..8]),
        command: job.command.clone(),
        pid,
        started: Instant::now(),
        owner: owner.to_string(),
        output: Mutex::new(Ring::default()),
        exit: Mutex::new(None),
        done: tokio::sync::Notify::new(),
    });
    let p = Arc::clone(&proc);
    let mut stdout = child.stdout.take();
    tokio::spawn(async move {
        if let Some(out) = stdout.as_mut() {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match out.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut o) = p.output.lock() {
                            o.push(&buf[..n]);
                        }
                    }
                }
            }
        }
        let status = child.wait().await;
        let text = match status {
            Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => format!("code {c}"),
                (None, Some(sig)) => format!("signal {sig}"),
                (None, None) => "unknown".into(),
            },
            Err(e) => format!("wait failed: {e}"),
        };
        if let Ok(mut e) = p.exit.lock() {
            *e = Some(text);
        }
        p.done.notify_waiters();
    });
    Ok((proc, note))
}

/// The model's view of a finished command's output.
pub fn result_text(p: &Proc, timed_out: Option<Duration>, max_chars: usize) -> (String, bool) {
    let out = p.output();
    let mut text = tail_chars(&out, max_chars.min(RESULT_CHARS));
    let dropped = p.dropped() as usize + out.len().saturating_sub(text.len());
    if dropped > 0 {
        text = format!("[… {dropped} bytes of earlier output omitted …]\n{text}");
    }
    if text.trim().is_empty() {
        text = "(no output)".into();
    }
    if let Some(t) = timed_out {
        return (
            format!("{text}\n\nCommand timed out after {} seconds.", t.as_secs()),
            true,
        );
    }
    match p.exit().as_deref() {
        Some("code 0") => (text, false),
        Some("code 127") => (format!("{text}\n\nCommand not found"), true),
        Some(other) => {
            let other = other.replace("code ", "");
            if other.chars().all(|c| c.is_ascii_digit()) {
                (
                    format!("{text}\n\n(Command exited with code {other})"),
                    false,
                )
            } else {
                (format!("{text}\n\nCommand aborted by {other}"), true)
            }
        }
        None => (text, false),
    }
}

fn tail_chars(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

/// Background commands.
#[derive(Default)]
pub struct Processes {
    procs: Mutex<HashMap<String, Arc<Proc>>>,
}

impl Processes {
    pub fn add(&self, p: Arc<Proc>) -> Result<(), String> {
        let mut procs = self
            .procs
            .lock()
            .map_err(|_| "process table poisoned".to_string())?;
        // Finished ones make room first.
        if procs.len() >= MAX_BACKGROUND {
            let done: Vec<String> = procs
                .iter()
                .filter(|(_, p)| p.exit().is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for k in done.into_iter().take(procs.len() + 1 - MAX_BACKGROUND) {
                procs.remove(&k);
            }
        }
        // One session cannot take every slot from the others.
        let mine = procs
            .values()
            .filter(|q| q.owner == p.owner && q.exit().is_none())
            .count();
        if mine >= BACKGROUND_PER_SESSION {
            p.kill();
            return Err(format!(
                "{BACKGROUND_PER_SESSION} background commands of this session are running already; kill one with process"
            ));
        }
        if procs.len() >= MAX_BACKGROUND {
            p.kill();
            return Err(format!(
                "{MAX_BACKGROUND} background commands are running on this gateway already; try again when one has ended"
            ));
        }
        procs.insert(p.id.clone(), p);
        Ok(())
    }

    fn get(&self, owner: &str, id: &str) -> Option<Arc<Proc>> {
        self.procs
            .lock()
            .ok()?
            .get(id)
            .filter(|p| p.owner == owner)
            .cloned()
    }

    /// The `process` tool.
    pub async fn act(
        &self,
        owner: &str,
        args: &crate::catalog::ProcessArgs,
    ) -> Result<String, String> {
        if args.action == "list" {
            let procs = self
                .procs
                .lock()
                .map_err(|_| "process table poisoned".to_string())?;
            let mut rows: Vec<&Arc<Proc>> = procs.values().filter(|p| p.owner == owner).collect();
            rows.sort_by_key(|p| p.started);
            if rows.is_empty() {
                return Ok("No background exec sessions.".into());
            }
            return Ok(rows
                .iter()
                .map(|p| {
                    format!(
                        "{} · {} · {}s · {}",
                        p.id,
                        p.exit()
                            .map_or("running".to_string(), |e| format!("exited ({e})")),
                        p.started.elapsed().as_secs(),
                        p.command
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"));
        }
        let id = args
            .session_id
            .as_deref()
            .ok_or_else(|| format!("process {} needs sessionId", args.action))?;
        let p = self
            .get(owner, id)
            .ok_or_else(|| format!("no exec session {id:?} (see process list)"))?;
        match args.action.as_str() {
            "poll" => {
                let wait = Duration::from_millis(args.timeout.unwrap_or(0).min(30_000));
                p.wait(wait).await;
                let new = p
                    .output
                    .lock()
                    .map(|mut o| o.since_poll())
                    .unwrap_or_default();
                let new = tail_chars(&new, RESULT_CHARS);
                let status = p.exit().map_or("Process still running.".to_string(), |e| {
                    format!("Process exited ({e}).")
                });
                Ok(if new.is_empty() {
                    format!("(no new output)\n\n{status}")
                } else {
                    format!("{new}\n\n{status}")
                })
            }
            "log" => {
                let all = p.output();
                let lines: Vec<&str> = all.lines().collect();
                let limit = args.limit.unwrap_or(200) as usize;
                let start = match args.offset {
                    Some(o) => o as usize,
                    None => lines.len().saturating_sub(limit),
                };
                let shown: Vec<&str> = lines.iter().skip(start).take(limit).copied().collect();
                Ok(tail_chars(&shown.join("\n"), RESULT_CHARS))
            }
            "kill" => {
                if p.exit().is_some() {
                    return Ok(format!(
                        "{id} had already exited ({}).",
                        p.exit().unwrap_or_default()
                    ));
                }
                p.kill();
                p.wait(Duration::from_secs(5)).await;
                Ok(format!("Killed {id}."))
            }
            "remove" | "clear" => {
                p.kill();
                if let Ok(mut procs) = self.procs.lock() {
                    procs.remove(id);
                }
                Ok(format!("Removed {id}."))
            }
            other => Err(format!(
                "unknown process action {other:?}: use list, poll, log, kill or remove"
            )),
        }
    }
}

// ---- approvals ----

/// A command waiting for the user.
#[derive(Debug, Clone)]
pub struct PendingExec {
    pub id: String,
    pub agent: String,
    pub session_key: String,
    pub job: Job,
    pub every_time: bool,
    created: Instant,
}

impl PendingExec {
    pub fn slug(&self) -> &str {
        &self.id[..8]
    }
}

/// What the user decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    AllowOnce,
    AllowAlways,
    Deny,
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Verdict> {
        match s.trim().to_ascii_lowercase().as_str() {
            "allow-once" | "allow" | "once" | "allowonce" => Some(Verdict::AllowOnce),
            "allow-always" | "always" | "allowalways" => Some(Verdict::AllowAlways),
            "deny" | "reject" | "block" => Some(Verdict::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::AllowOnce => "allow-once",
            Verdict::AllowAlways => "allow-always",
            Verdict::Deny => "deny",
        }
    }
}

/// Pending approvals, and the allowlists in OpenClaw's
/// `exec-approvals.json` (in the state dir).
pub struct Approvals {
    file: PathBuf,
    pending: Mutex<Vec<PendingExec>>,
    /// Held while the file is read, changed and written back, so two
    /// approvals at once both land.
    writing: Mutex<()>,
}

impl Approvals {
    pub fn new(state_dir: &Path) -> Approvals {
        Approvals {
            file: state_dir.join("exec-approvals.json"),
            pending: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
        }
    }

    pub fn request(
        &self,
        agent: &str,
        session_key: &str,
        job: Job,
        every_time: bool,
    ) -> PendingExec {
        let p = PendingExec {
            id: uuid::Uuid::new_v4().to_string(),
            agent: agent.to_string(),
            session_key: session_key.to_string(),
            job,
            every_time,
            created: Instant::now(),
        };
        let Ok(mut pending) = self.pending.lock() else {
            return p;
        };
        pending.retain(|p| p.created.elapsed() < APPROVAL_TTL);
        // The same command asked again waits under the same id, so a model
        // repeating it is seen repeating (and the user gets one prompt).
        if let Some(same) = pending.iter().find(|q| {
            q.session_key == p.session_key
                && q.agent == p.agent
                && q.every_time == p.every_time
                && q.job.same_as(&p.job)
        }) {
            return same.clone();
        }
        // Each session keeps its newest few; the list as a whole its newest,
        // so one busy session never crowds out another's approvals.
        let mine = pending
            .iter()
            .filter(|q| q.session_key == session_key)
            .count();
        if mine >= PENDING_PER_SESSION
            && let Some(i) = pending.iter().position(|q| q.session_key == session_key)
        {
            pending.remove(i);
        }
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push(p.clone());
        p
    }

    /// Takes the pending command `id` (full id or its first 8 characters)
    /// of `session_key`.
    pub fn take(&self, id: &str, session_key: &str) -> Result<PendingExec, String> {
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| "approvals poisoned".to_string())?;
        pending.retain(|p| p.created.elapsed() < APPROVAL_TTL);
        let id = id.trim().to_ascii_lowercase();
        let found: Vec<usize> = pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.session_key == session_key && (p.id == id || p.slug() == id))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [i] => Ok(pending.remove(*i)),
            [] => Err(format!(
                "no pending approval {id} in this session (it may have expired)"
            )),
            _ => Err(format!("{id} is ambiguous; use the full id")),
        }
    }

    /// What the file says for `agent`: the allowlist patterns of its entry
    /// and `*`'s; `security` and `ask` from its entry, else `defaults`. A
    /// file that cannot be read adds nothing; one that cannot be parsed
    /// asks for everything (it may have meant to forbid).
    pub fn for_agent(&self, agent: &str) -> HostPolicy {
        let Ok(text) = std::fs::read_to_string(&self.file) else {
            return HostPolicy::default();
        };
        let file: ApprovalsFile = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(
                    "{} cannot be read ({e}); every command asks",
                    self.file.display()
                );
                return HostPolicy {
                    allowlist: Vec::new(),
                    security: Some(Security::Allowlist),
                    ask: Some(Ask::Always),
                };
            }
        };
        let own = file.agents.get(agent);
        let pick = |f: fn(&HostEntry) -> Option<&String>| {
            own.and_then(f).or_else(|| f(&file.defaults)).cloned()
        };
        HostPolicy {
            allowlist: [own, file.agents.get("*")]
                .into_iter()
                .flatten()
                .flat_map(|e| e.allowlist.iter().filter_map(|a| a.pattern.clone()))
                .collect(),
            security: pick(|e| e.security.as_ref())
                .as_deref()
                .and_then(Security::parse),
            ask: pick(|e| e.ask.as_ref()).as_deref().and_then(Ask::parse),
        }
    }

    /// Adds each binary of `command` to the agent's allowlist (as its
    /// path), keeping everything else in the file. Programs that run other
    /// programs are not added: they are returned second, to be named.
    pub fn allow_always(
        &self,
        agent: &str,
        command: &str,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        // Only plain names: a command with shell syntax still asks next time.
        // Builtins and names not on the commands' PATH are kept out too.
        let (bins, wrappers): (Vec<_>, Vec<_>) = segments(command)
            .iter()
            .filter_map(|w| w.first())
            .filter(|b| b.chars().all(plain) && !b.contains('/'))
            .map(|b| match located(b) {
                Some(p) if !is_one_of(RUNS_ANYTHING, b) && !is_one_of(RUNS_SOME, b) => {
                    Ok(p.to_string_lossy().into_owned())
                }
                _ => Err(b.clone()),
            })
            .partition(Result::is_ok);
        let bins: Vec<String> = bins.into_iter().flatten().collect();
        let wrappers: Vec<String> = wrappers.into_iter().filter_map(Result::err).collect();
        if bins.is_empty() {
            return Ok((bins, wrappers));
        }
        let _writing = self
            .writing
            .lock()
            .map_err(|_| "approvals poisoned".to_string())?;
        let mut v = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({"version": 1}));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let list = v
            .as_object_mut()
            .map(|o| o.entry("agents").or_insert_with(|| serde_json::json!({})))
            .and_then(|a| a.as_object_mut())
            .map(|a| a.entry(agent).or_insert_with(|| serde_json::json!({})))
            .and_then(|a| a.as_object_mut())
            .map(|a| {
                a.entry("allowlist")
                    .or_insert_with(|| serde_json::json!([]))
            })
            .and_then(|l| l.as_array_mut())
            .ok_or_else(|| format!("{} has an unexpected shape", self.file.display()))?;
        for b in &bins {
            if !list
                .iter()
                .any(|e| e.get("pattern").and_then(|p| p.as_str()) == Some(b))
            {
                list.push(serde_json::json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "pattern": b,
                    "lastUsedAt": now,
                    "lastUsedCommand": command,
                }));
            }
        }
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        use std::io::Write;
        let mut f = atomic_write_file::AtomicWriteFile::open(&self.file)
            .map_err(|e| format!("{}: {e}", self.file.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.commit())
            .map_err(|e| format!("{}: {e}", self.file.display()))?;
        Ok((bins, wrappers))
    }
}

/// The text the model (and the user) sees for a command that waits.
pub fn approval_text(p: &PendingExec) -> String {
    let choices = if p.every_time {
        "allow-once|deny"
    } else {
        "allow-once|allow-always|deny"
    };
    let env: String = p
        .job
        .env
        .iter()
        .map(|(k, v)| format!("Env: {k}={v}\n"))
        .collect();
    let host = match (p.job.sandbox, sandbox()) {
        (true, Ok(_)) => {
            "Host: sandbox (bubblewrap: no network, only the workspace writable)".to_string()
        }
        (true, Err(why)) => format!("Host: gateway, NOT sandboxed ({why})"),
        (false, _) => "Host: gateway, not sandboxed (tools.exec.host)".to_string(),
    };
    // A fence longer than any run of backticks in the command, so the
    // command cannot close it and show the user something else.
    let longest = p
        .job
        .command
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!(
        "Approval required (id {}, full {}).\n{host}\nCWD: {}\n{env}Command:\n{fence}sh\n{}\n{fence}\nReply with: /approve {} {choices}",
        p.slug(),
        p.id,
        p.job.workdir.display(),
        p.job.command,
        p.slug()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(security: Security, ask: Ask) -> ExecSettings {
        ExecSettings {
            security,
            ask,
            sandbox: false,
            timeout: Duration::from_secs(5),
            yield_after: Duration::from_secs(5),
            safe_bins: vec!["wc".into()],
        }
    }

    #[test]
    fn exec_decision_table() {
        use Ask::*;
        use Security::*;
        let list = vec!["ls".to_string(), "git".to_string()];
        let run = |d: &Decision| *d == Decision::Run;
        let ask = |d: &Decision| matches!(d, Decision::Ask { .. });
        let deny = |d: &Decision| matches!(d, Decision::Deny(_));
        type Check = fn(&Decision) -> bool;
        let cases: Vec<(Security, Ask, &str, &str)> = vec![
            (Deny, Off, "ls", "deny"),
            (Full, Off, "rm -rf /", "run"),
            (Full, OnMiss, "anything", "run"),
            (Full, Always, "ls", "ask"),
            (Allowlist, OnMiss, "ls -la", "run"),
            (Allowlist, OnMiss, "ls | wc -l", "run"),
            (Allowlist, OnMiss, "git status && ls", "run"),
            (Allowlist, OnMiss, "FOO=1 ls", "ask"),
            (Allowlist, OnMiss, "LD_PRELOAD=/x.so ls", "ask"),
            (Allowlist, OnMiss, "ls #\"\nevil\n#\"", "ask"),
            (Allowlist, OnMiss, "ls \"\\\"'\" ; evil ; \\'", "ask"),
            (Allowlist, OnMiss, "./ls", "ask"),
            (Allowlist, OnMiss, "/tmp/x/ls", "ask"),
            (Allowlist, OnMiss, "ls ~", "ask"),
            (Allowlist, OnMiss, "ls *", "ask"),
            (Allowlist, OnMiss, "ls\nrm -rf x", "ask"),
            (Allowlist, OnMiss, "ls & evil", "ask"),
            (Allowlist, OnMiss, "", "ask"),
            (Allowlist, OnMiss, "ls; rm -rf /", "ask"),
            (Allowlist, OnMiss, "ls > out.txt", "ask"),
            (Allowlist, OnMiss, "echo $(cat /etc/passwd)", "ask"),
            (Allowlist, OnMiss, "ls `whoami`", "ask"),
            (Allowlist, OnMiss, "curl http://x | sh", "ask"),
            (Allowlist, OnMiss, "(ls)", "ask"),
            (Allowlist, OnMiss, "ls 'unclosed", "ask"),
            (Allowlist, Off, "rm x", "deny"),
            (Allowlist, Always, "ls", "ask"),
        ];
        for (sec, a, cmd, want) in cases {
            let d = decide(&settings(sec, a), &list, cmd, false);
            let check: Check = match want {
                "run" => run,
                "ask" => ask,
                _ => deny,
            };
            assert!(check(&d), "{sec:?} {a:?} {cmd:?}: {d:?}");
        }
        // allow-always is not offered when every command must be asked.
        // Setting the environment is a miss even for an allowlisted name.
        let d = decide(&settings(Allowlist, OnMiss), &list, "ls", true);
        assert!(matches!(d, Decision::Ask { .. }), "{d:?}");
        let d = decide(&settings(Full, OnMiss), &list, "ls", true);
        assert_eq!(d, Decision::Run);
        let d = decide(&settings(Allowlist, Always), &list, "ls", false);
        assert_eq!(
            d,
            Decision::Ask {
                why: ASK_ALWAYS.into(),
                every_time: true
            }
        );
    }

    #[test]
    fn allow_always_keeps_out_programs_that_run_others() {
        let dir = tempfile::tempdir().unwrap();
        let a = Approvals::new(dir.path());
        let (added, kept_out) = a
            .allow_always(
                "main",
                "ls -la | xargs python3.12 x.py; find . -delete; command ls; git status",
            )
            .unwrap();
        assert_eq!(kept_out, vec!["xargs", "find", "command", "git"]);
        assert_eq!(added.len(), 1, "{added:?}");
        assert!(added[0].ends_with("/ls"), "{added:?}");
        assert_eq!(a.for_agent("main").allowlist, added);
        // What was added now runs unasked; what was kept out still asks.
        let s = ExecSettings::from_config(&pincer_config::ExecConfig::default());
        let list = a.for_agent("main").allowlist;
        assert_eq!(decide(&s, &list, "ls -la", false), Decision::Run);
        assert!(matches!(
            decide(&s, &list, "find . -delete", false),
            Decision::Ask { .. }
        ));
        // A shell or wrapper listed by hand still asks; other tools listed
        // by hand run.
        let by_hand = vec![
            "env".to_string(),
            "/usr/bin/bash".to_string(),
            "git".to_string(),
        ];
        for cmd in ["env rm -rf x", "/usr/bin/bash -c ls", "usr/bin/ls"] {
            assert!(
                matches!(decide(&s, &by_hand, cmd, false), Decision::Ask { .. }),
                "{cmd}"
            );
        }
        assert_eq!(decide(&s, &by_hand, "git status", false), Decision::Run);
    }

    #[test]
    fn the_approvals_file_only_tightens() {
        let config = |sec: &str, ask: &str| {
            ExecSettings::from_config(&pincer_config::ExecConfig {
                security: Some(sec.into()),
                ask: Some(ask.into()),
                ..pincer_config::ExecConfig::default()
            })
        };
        // (config security/ask, the file, the agent, effective security/ask)
        let cases = [
            ("full", "off", r#"{}"#, "main", "full", "off"),
            (
                "full",
                "off",
                r#"{"defaults":{"security":"deny"}}"#,
                "main",
                "deny",
                "off",
            ),
            (
                "full",
                "off",
                r#"{"defaults":{"ask":"always"},"agents":{"main":{"ask":"on-miss"}}}"#,
                "main",
                "full",
                "on-miss",
            ),
            (
                "full",
                "off",
                r#"{"defaults":{"ask":"always"},"agents":{"main":{"ask":"on-miss"}}}"#,
                "other",
                "full",
                "always",
            ),
            // Never looser than the config.
            (
                "allowlist",
                "on-miss",
                r#"{"defaults":{"security":"full","ask":"off"}}"#,
                "main",
                "allowlist",
                "on-miss",
            ),
            // A file that cannot be parsed asks for everything.
            ("full", "off", "{not json", "main", "allowlist", "always"),
        ];
        for (i, (sec, ask, file, agent, want_sec, want_ask)) in cases.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("exec-approvals.json"), file).unwrap();
            let host = Approvals::new(dir.path()).for_agent(agent);
            let s = config(sec, ask).tightened(&host);
            assert_eq!(
                (s.security.as_str(), s.ask.as_str()),
                (want_sec, want_ask),
                "case {i}"
            );
        }
    }

    #[test]
    fn a_link_to_a_multi_call_binary_keeps_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("busybox");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("ls");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let found = located(&link.to_string_lossy()).unwrap();
        assert_eq!(found.file_name().unwrap(), "ls");
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::parse("always"), Some(Verdict::AllowAlways));
        assert_eq!(Verdict::parse("Allow-Once"), Some(Verdict::AllowOnce));
        assert_eq!(Verdict::parse("block"), Some(Verdict::Deny));
        assert_eq!(Verdict::parse("yes"), None);
    }
}
