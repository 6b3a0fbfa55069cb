//! `web_fetch`: a URL's readable text, for the model, inside the
//! untrusted-content markers. No SSRF into the user's network: the host is
//! resolved here and every address checked (loopback, private, link-local,
//! shared, multicast, unspecified and the like are refused unless
//! `tools.web.fetch.ssrfPolicy.dangerouslyAllowPrivateNetwork`, or the host
//! is in its `allowedHostnames`), the connection is
//! pinned to the address checked (no DNS rebinding), and each redirect is
//! checked the same way. Bodies are read up to a cap; the text is cut to
//! `maxChars`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;

use crate::untrusted::{Source, wrap};

const MAX_BODY_BYTES: usize = 2 << 20;

/// `tools.web.fetch`, resolved.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub enabled: bool,
    pub max_chars: usize,
    pub max_chars_cap: usize,
    pub timeout: Duration,
    pub max_redirects: usize,
    pub user_agent: String,
    pub allow_private: bool,
    /// Hosts that may be private (`ssrfPolicy.allowedHostnames`).
    pub allowed_hosts: Vec<String>,
    /// Hosts never fetched, redirects included (`blockedHostnames`).
    pub blocked_hosts: Vec<String>,
    /// When set, the only hosts fetched (`hostnameAllowlist`).
    pub only_hosts: Option<Vec<String>>,
}

impl FetchSettings {
    pub fn from_config(c: &pincer_config::WebFetchConfig) -> FetchSettings {
        let cap = c.max_chars_cap.unwrap_or(50_000) as usize;
        FetchSettings {
            enabled: c.enabled.unwrap_or(true),
            max_chars: (c.max_chars.unwrap_or(50_000) as usize).min(cap),
            max_chars_cap: cap,
            timeout: Duration::from_secs(c.timeout_seconds.unwrap_or(30)),
            max_redirects: c.max_redirects.unwrap_or(3) as usize,
            user_agent: c
                .user_agent
                .clone()
                .unwrap_or_else(|| format!("Pincer/{} (web_fetch)", env!("CARGO_PKG_VERSION"))),
            allow_private: c.allow_private_network.unwrap_or(false),
            allowed_hosts: c.allowed_hostnames.clone().unwrap_or_default(),
            blocked_hosts: c.blocked_hostnames.clone().unwrap_or_default(),
            only_hosts: c.only_hostnames.clone(),
        }
    }
}

/// Whether `host` is named by one of `patterns`: exactly, or as a
/// subdomain of a `*.example.com` (not its apex); case and a trailing dot
/// do not count.
fn host_listed(patterns: &[String], host: &str) -> bool {
    let norm = |h: &str| h.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = norm(host);
    patterns.iter().any(|p| {
        let p = norm(p);
        match p.strip_prefix("*.") {
            Some(apex) => host
                .strip_suffix(apex)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => p == host,
        }
    })
}

/// Whether `ip` is one the open web cannot be on.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared (CGNAT)
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // IPv4-compatible `::a.b.c.d` (deprecated, still routed by some
            // stacks): judged by the IPv4 address it holds.
            if s[..6].iter().all(|&x| x == 0) && !v6.is_loopback() && !v6.is_unspecified() {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_private(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 may reach anything
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                // 6to4 wraps an IPv4 address: judged by it.
                || (s[0] == 0x2002
                    && is_private(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[1] >> 8) as u8,
                        s[1] as u8,
                        (s[2] >> 8) as u8,
                        s[2] as u8,
                    ))))
        }
    }
}

/// Fetches `url` and returns the tool result text.
pub async fn fetch(s: &FetchSettings, url: &str, max_chars: Option<u64>) -> Result<String, String> {
    // One deadline for the whole fetch, redirects and lookups included.
    let whole = s.timeout + Duration::from_secs(1);
    tokio::time::timeout(whole, hops(s, url, max_chars))
        .await
        .map_err(|_| format!("fetching {url} took longer than {} s", whole.as_secs()))?
}

async fn hops(s: &FetchSettings, url: &str, max_chars: Option<u64>) -> Result<String, String> {
    let mut current =
        url::Url::parse(url.trim()).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let max_chars = max_chars
        .map(|m| (m as usize).max(100).min(s.max_chars_cap))
        .unwrap_or(s.max_chars);
    for _hop in 0..=s.max_redirects {
        if !matches!(current.scheme(), "http" | "https") {
            return Err(format!(
                "only http and https URLs can be fetched, not {}",
                current.scheme()
            ));
        }
        let host = current
            .host_str()
            .ok_or_else(|| "the URL has no host".to_string())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host_listed(&s.blocked_hosts, &host) {
            return Err(format!(
                "Blocked: {host} is in tools.web.fetch.ssrfPolicy.blockedHostnames"
            ));
        }
        if s.only_hosts
            .as_ref()
            .is_some_and(|only| !host_listed(only, &host))
        {
            return Err(format!(
                "Blocked: {host} is not in tools.web.fetch.ssrfPolicy.hostnameAllowlist"
            ));
        }
        let port = current.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(s.timeout, tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| format!("looking up {host} timed out"))?
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect();
        let Some(first) = addrs.first().copied() else {
            return Err(format!("{host} has no address"));
        };
        let trusted = s.allow_private || host_listed(&s.allowed_hosts, &host);
        if !trusted && addrs.iter().any(|a| is_private(a.ip())) {
            return Err(format!(
                "Blocked: {host} resolves to a private/internal/special-use IP address ({}); web_fetch reaches the public web only",
                first.ip()
            ));
        }
        // No proxy: one would resolve the name again, past the check.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(s.timeout)
            .user_agent(&s.user_agent)
            .resolve(&host, first)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let resp = client
            .get(current.clone())
            .header("Accept", "text/markdown, text/html;q=0.9, */*;q=0.1")
            .send()
            .await
            .map_err(|e| format!("fetching {current} failed: {}", without_url(&e)))?;
        let status = resp.status();
        if status.is_redirection() {
            let Some(location) = resp.headers().get(reqwest::header::LOCATION) else {
                return Err(format!("{current} answered {status} without a Location"));
            };
            let location = location
                .to_str()
                .map_err(|_| "a redirect Location that is not text".to_string())?;
            current = current
                .join(location)
                .map_err(|e| format!("bad redirect to {location:?}: {e}"))?;
            continue;
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        let mut cut = false;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| format!("reading {current} failed: {}", without_url(&e)))?;
            let room = MAX_BODY_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY_BYTES {
                cut = true;
                break;
            }
        }
        let raw = String::from_utf8_lossy(&body);
        let (title, text) = if content_type.contains("html")
            || (content_type.is_empty() && raw.trim_start().starts_with('<'))
        {
            let title = title_of(&raw);
            let html = body.clone();
            // Rendering 2 MB of HTML takes a while: off the async threads.
            let text = tokio::task::spawn_blocking(move || {
                html2text::from_read(html.as_slice(), 100)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&html).into_owned())
            })
            .await
            .map_err(|e| format!("rendering {current} failed: {e}"))?;
            (title, text)
        } else if content_type.starts_with("text/")
            || content_type.contains("json")
            || content_type.contains("xml")
            || content_type.is_empty()
        {
            (None, raw.into_owned())
        } else {
            return Err(format!(
                "{current} is {content_type}, which web_fetch cannot show as text"
            ));
        };
        let total = text.chars().count();
        let mut text: String = text.chars().take(max_chars).collect();
        let truncated = cut || total > max_chars;
        if truncated {
            text.push_str(&format!("\n[… cut at {max_chars} characters]"));
        }
        let status_line = status.as_u16().to_string();
        let final_url = current.to_string();
        let mut meta = vec![
            ("URL", final_url.as_str()),
            ("Status", status_line.as_str()),
        ];
        if let Some(t) = &title {
            meta.push(("Title", t.as_str()));
        }
        let wrapped = wrap(&text, Source::WebFetch, &meta, true);
        if !status.is_success() {
            return Err(format!("{final_url} answered HTTP {status}\n{wrapped}"));
        }
        return Ok(wrapped);
    }
    Err(format!(
        "too many redirects (more than {}, tools.web.fetch.maxRedirects)",
        s.max_redirects
    ))
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" for url ({u})"), "");
    }
    s
}

fn title_of(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title>")? + open_end;
    let t = html.get(open_end..end)?.trim();
    (!t.is_empty()).then(|| t.chars().take(256).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lists() {
        let l = vec!["nas.local".to_string(), "*.Example.com.".to_string()];
        for (host, want) in [
            ("nas.local", true),
            ("NAS.local.", true),
            ("a.nas.local", false),
            ("api.example.com", true),
            ("a.b.example.com", true),
            ("example.com", false),
            ("badexample.com", false),
        ] {
            assert_eq!(host_listed(&l, host), want, "{host}");
        }
    }

    #[test]
    fn private_addresses() {
        for (ip, private) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::ffff:127.0.0.1", true),
            ("::7f00:1", true),
            ("::a00:1", true),
            ("::808:808", false),
            ("93.184.216.34", false),
            ("2606:4700::1111", false),
            ("192.0.0.8", true),
            ("fec0::1", true),
            ("2002:7f00:1::", true),
            ("2002:5db8:d822::", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_private(ip), private, "{ip}");
        }
    }

    #[test]
    fn titles() {
        assert_eq!(
            title_of("<html><head><TITLE> Hi </TITLE>").as_deref(),
            Some("Hi")
        );
        assert_eq!(title_of("<p>none</p>"), None);
    }
}
