//! The web chat in a real browser: Debian's headless Chromium, driven over
//! WebDriver (chromium-driver) by `fantoccini`, against the gateway on a
//! port and a scripted model. A user's path: open the page, enter the
//! token, send a message and see the answer stream in, stop an answer,
//! switch model, start a new session, reload and find the history. The
//! screenshots in `docs/` are taken here (`PINCER_SCREENSHOTS=dir`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::TOKEN;
use fantoccini::{Client, ClientBuilder, Locator};
use pincer_testkit::{FakeUpstream, Step, free_port, sse_head};
use serde_json::{Value, json};

/// A model that answers with its own name, word by word; "slow" makes it
/// start and then stall (for the stop button).
fn model() -> FakeUpstream {
    FakeUpstream::responding(|body| {
        let v: Value = serde_json::from_str(body).unwrap_or_default();
        let model = v["model"].as_str().unwrap_or("?").to_string();
        let last = v["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let mut head = sse_head();
        let chunk = |t: &str| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": t}}]})
            )
            .into_bytes()
        };
        if last.contains("slow") {
            head.extend(chunk("Once upon a time"));
            return vec![Step::Send(head), Step::Sleep(Duration::from_secs(30))];
        }
        let mut steps = vec![Step::Send(head)];
        for w in ["Answer ", "from ", &model, ": **", &last, "** and `code`"] {
            steps.push(Step::Send(chunk(w)));
            steps.push(Step::Sleep(Duration::from_millis(30)));
        }
        steps.push(Step::Send(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n".to_vec(),
        ));
        steps
    })
}

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Client, Driver) {
    let driver = std::env::var("PINCER_TEST_CHROMEDRIVER").expect(NEEDS);
    let chromium = std::env::var("PINCER_TEST_CHROMIUM").expect(NEEDS);
    let port = free_port();
    let child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let guard = Driver(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1200,800"]}),
    );
    // WebDriver on loopback: plain HTTP, no TLS.
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    (client, guard)
}

const NEEDS: &str = "needs Chromium and chromium-driver (PINCER_TEST_CHROMIUM, PINCER_TEST_CHROMEDRIVER): scripts/test-deps installs them";

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    wait_all(c, css, &[text]).await
}

/// The first `css` element holding every one of `texts`, waited for.
async fn wait_all(c: &Client, css: &str, texts: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for e in c.find_all(Locator::Css(css)).await.unwrap_or_default() {
            let t = e.text().await.unwrap_or_default();
            if texts.iter().all(|x| t.contains(x)) {
                return t;
            }
            seen.push(t);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {css} with {texts:?}; saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(c: &Client, text: &str) {
    let input = c.find(Locator::Id("input")).await.unwrap();
    input.send_keys(text).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap(); // Enter
}

async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("PINCER_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

#[tokio::test]
#[ignore = "needs Chromium and chromium-driver (PINCER_TEST_CHROMIUM, PINCER_TEST_CHROMEDRIVER): scripts/test installs them and runs this"]
async fn a_user_chats_in_the_browser() {
    let up = model();
    let dir = tempfile::tempdir().unwrap();
    let addr = common::serve(&up.base_url(), dir.path()).await;
    let (c, _driver) = browser().await;
    c.goto(&format!("http://{addr}/")).await.unwrap();

    // The token: a wrong one is refused, the right one remembered.
    let token = c.find(Locator::Id("token")).await.unwrap();
    token.send_keys("wrong").await.unwrap();
    c.find(Locator::Id("login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#login-error", "unauthorized").await;
    shot(&c, "webchat-login.png").await;
    let token = c.find(Locator::Id("token")).await.unwrap();
    token.clear().await.unwrap();
    token.send_keys(TOKEN).await.unwrap();
    c.find(Locator::Id("login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#status", "connected").await;

    // A message, its answer streamed in and rendered as Markdown, with the
    // model, tokens and cost beside it.
    send(&c, "Hello").await;
    wait_text(&c, ".msg.user", "Hello").await;
    // The footer comes with the run's final event, after the last delta:
    // an answer is waited for with it.
    let answer = wait_all(
        &c,
        ".msg.assistant",
        &["Answer from m: Hello and code", "12 in · 7 out"],
    )
    .await;
    assert!(answer.contains("acme/m"), "{answer}");
    let bold = c.find(Locator::Css(".msg.assistant strong")).await.unwrap();
    assert_eq!(bold.text().await.unwrap(), "Hello");
    shot(&c, "webchat-answer.png").await;

    // Slash commands complete.
    let input = c.find(Locator::Id("input")).await.unwrap();
    input.send_keys("/mo").await.unwrap();
    wait_text(&c, "#suggest li", "/model").await;
    input.send_keys("\u{E004}").await.unwrap(); // Tab
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some("/model ")
    );
    input.clear().await.unwrap();

    // Stop an answer under way.
    send(&c, "Tell a slow story").await;
    wait_text(&c, ".msg.assistant", "Once upon a time").await;
    c.find(Locator::Id("stop"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, ".msg.assistant", "stopped").await;

    // Switch model: the next answer comes from the other one.
    let select = c.find(Locator::Id("model")).await.unwrap();
    select.select_by_value("acme/b").await.unwrap();
    wait_text(&c, ".msg.note", "acme/b").await;
    send(&c, "Again").await;
    // Finished (its footer shown), so the history read later holds it.
    wait_all(&c, ".msg.assistant", &["Answer from b: Again", " in · "]).await;

    // A new session starts empty and keeps its own conversation.
    c.find(Locator::Id("new-session"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        c.find_all(Locator::Css(".msg.user"))
            .await
            .unwrap()
            .is_empty()
    );
    send(&c, "Fresh start").await;
    wait_all(&c, ".msg.assistant", &["Fresh start", " in · "]).await;
    wait_text(&c, "#sessions li", "web-").await;

    // Reload: the token and the session are remembered, the history read
    // back from the gateway.
    c.refresh().await.unwrap();
    wait_text(&c, "#status", "connected").await;
    wait_text(&c, ".msg.user", "Fresh start").await;
    wait_text(&c, ".msg.assistant", "Answer from m: Fresh start").await;
    // And the first session is still there.
    let main = c
        .find(Locator::XPath(
            "//ul[@id='sessions']//button[text()='main']",
        ))
        .await
        .unwrap();
    main.click().await.unwrap();
    wait_text(&c, ".msg.user", "Hello").await;
    wait_text(&c, ".msg.assistant", "Answer from b: Again").await;
    shot(&c, "webchat-history.png").await;

    // A phone-sized screen, dark: the sessions behind the menu button.
    c.find(Locator::Id("theme"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let theme = c
        .execute("return document.documentElement.dataset.theme", vec![])
        .await
        .unwrap();
    assert_eq!(theme, json!("dark"));
    c.set_window_size(390, 844).await.unwrap();
    shot(&c, "webchat-phone.png").await;
    c.find(Locator::Id("menu"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#sessions li", "main").await;
    c.close().await.unwrap();
}
