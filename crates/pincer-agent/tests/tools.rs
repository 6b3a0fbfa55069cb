//! The agent's tool loop against scripted upstreams: multi-step turns in
//! each dialect, the loop cap, tool errors, approvals, and an injection
//! set read by a model that obeys whatever it reads (so what is tested is
//! Pincer's defence, not the model's judgement).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pincer_agent::{AgentEvent, Delivered, Delivery, Runtime};
use pincer_sessions::Body;
use pincer_testkit::{
    FakeUpstream, Step, completions_stream, completions_tool_stream, whole_reply,
};
use pincer_types::Message;
use serde_json::Value;

struct Setup {
    rt: Runtime<'static>,
    _state: tempfile::TempDir,
    ws: PathBuf,
}

/// A runtime whose one model `up/m` speaks `dialect` on `up`, with `tools`
/// as the config's `tools` section and the agent's workspace in a temp dir.
fn setup(up: &FakeUpstream, dialect: &str, tools: &str, model_extra: &str) -> Setup {
    let state = tempfile::tempdir().unwrap();
    let ws = state.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ up: {{ baseUrl: "{}", api: "{dialect}",
      models: [{{ id: "m", contextWindow: 32768, maxTokens: 256 {model_extra} }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "up/m" }}, workspace: "{}" }} }},
  tools: {{ {tools} }} }}"#,
        up.base_url(),
        ws.display()
    );
    let rt = common::runtime(&text, state.path());
    let ws = ws.canonicalize().unwrap();
    Setup {
        rt,
        _state: state,
        ws,
    }
}

fn message(text: &str, whole: bool) -> Delivery {
    Delivery {
        agent: "main".into(),
        session_key: "agent:main:tools".into(),
        input: vec![Message::user(text)],
        agent_prompt: true,
        whole,
        ..Delivery::default()
    }
}

/// Delivers `text`; returns the result and every event.
async fn deliver(rt: &Runtime<'_>, text: &str, whole: bool) -> (Delivered, Vec<AgentEvent>) {
    let (done, events) = common::deliver(rt, message(text, whole)).await;
    (done.unwrap(), events)
}

fn body(r: &pincer_testkit::Recorded) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

/// Each tool result told, with whether it was an error.
fn results(events: &[AgentEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Tool(t) => t.result.clone().map(|r| (r, t.is_error)),
            _ => None,
        })
        .collect()
}

/// The transcript's messages, in order.
fn transcript(rt: &Runtime<'_>) -> Vec<Message> {
    let store = &rt.stores()["main"];
    let e = store.get("agent:main:tools").unwrap();
    store
        .tree(&e.session_id)
        .unwrap()
        .entries
        .into_iter()
        .filter_map(|e| match e.body {
            Body::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_multi_step_turn_in_each_dialect() {
    for dialect in [
        "openai-completions",
        "openai-responses",
        "anthropic-messages",
    ] {
        let up = FakeUpstream::start(vec![
            whole_reply(dialect, "", &[("c1", "read", r#"{"path":"notes.txt"}"#)]),
            whole_reply(
                dialect,
                "",
                &[(
                    "c2",
                    "edit",
                    r#"{"path":"notes.txt","edits":[{"oldText":"hello","newText":"goodbye"}]}"#,
                )],
            ),
            whole_reply(
                dialect,
                "",
                &[("c3", "exec", r#"{"command":"cat notes.txt; echo done"}"#)],
            ),
            whole_reply(dialect, "The file now says goodbye world.", &[]),
        ]);
        let s = setup(&up, dialect, r#"exec: { security: "full" }"#, "");
        std::fs::write(s.ws.join("notes.txt"), "hello world\n").unwrap();
        let (done, events) = deliver(
            &s.rt,
            "Change hello to goodbye in notes.txt and show it",
            true,
        )
        .await;
        assert_eq!(
            done.final_text.as_deref(),
            Some("The file now says goodbye world."),
            "{dialect}"
        );
        assert_eq!(
            std::fs::read_to_string(s.ws.join("notes.txt")).unwrap(),
            "goodbye world\n"
        );

        let reqs = up.requests();
        assert_eq!(reqs.len(), 4, "{dialect}");
        // Each result goes back in the dialect's own shape.
        let second = body(&reqs[1]).to_string();
        let fourth = body(&reqs[3]);
        match dialect {
            "openai-completions" => {
                let msgs = fourth["messages"].as_array().unwrap();
                let tools: Vec<&Value> = msgs.iter().filter(|m| m["role"] == "tool").collect();
                assert_eq!(tools.len(), 3);
                assert_eq!(tools[0]["tool_call_id"], "c1");
                assert!(
                    tools[2]["content"]
                        .as_str()
                        .unwrap()
                        .contains("goodbye world\ndone")
                );
            }
            "openai-responses" => {
                let items = fourth["input"].as_array().unwrap();
                let outs: Vec<&Value> = items
                    .iter()
                    .filter(|i| i["type"] == "function_call_output")
                    .collect();
                assert_eq!(outs.len(), 3);
                assert_eq!(outs[1]["call_id"], "c2");
                assert!(
                    items
                        .iter()
                        .any(|i| i["type"] == "function_call" && i["call_id"] == "c3")
                );
            }
            _ => {
                let msgs = fourth["messages"].as_array().unwrap();
                let results: Vec<Value> = msgs
                    .iter()
                    .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
                    .filter(|b| b["type"] == "tool_result")
                    .collect();
                assert_eq!(results.len(), 3);
                assert_eq!(results[0]["tool_use_id"], "c1");
            }
        }
        // The file came back inside the untrusted-content markers.
        assert!(
            second.contains("EXTERNAL_UNTRUSTED_CONTENT"),
            "{dialect}: {second}"
        );
        assert!(second.contains("hello world"));
        // Every offered tool went out with its schema.
        let tools = body(&reqs[0])["tools"].to_string();
        for t in ["read", "write", "edit", "exec"] {
            assert!(tools.contains(&format!("\"{t}\"")), "{dialect}: {tools}");
        }

        // The transcript holds every call and result, in order.
        let t = transcript(&s.rt);
        let shape: Vec<String> = t
            .iter()
            .map(|m| match m {
                Message::User { .. } => "user".to_string(),
                Message::Assistant { tool_calls, .. } if !tool_calls.is_empty() => {
                    format!("call:{}", tool_calls[0].name)
                }
                Message::Assistant { .. } => "answer".into(),
                Message::Tool { name, is_error, .. } => format!("result:{name}:{is_error}"),
                Message::System { .. } => "system".into(),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "user",
                "call:read",
                "result:read:false",
                "call:edit",
                "result:edit:false",
                "call:exec",
                "result:exec:false",
                "answer"
            ],
            "{dialect}"
        );
        // One turn, counted once.
        assert_eq!(
            s.rt.stores()["main"].get("agent:main:tools").unwrap().turns,
            1
        );
        // Tool events were told as they ran.
        let results = events
            .iter()
            .filter(|e| matches!(e, AgentEvent::Tool(t) if t.result.is_some()))
            .count();
        assert_eq!(results, 3, "{dialect}");
    }
}

#[tokio::test]
async fn streamed_tool_calls_run_and_only_the_answer_streams() {
    let up = FakeUpstream::start(vec![
        completions_tool_stream(&[("c1", "read", r#"{"path":"a.txt"}"#)]),
        completions_stream(&[r#"{"content":"It says hi."}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    std::fs::write(s.ws.join("a.txt"), "hi").unwrap();
    let (done, events) = deliver(&s.rt, "What does a.txt say?", false).await;
    assert_eq!(done.final_text.as_deref(), Some("It says hi."));
    // The caller never sees the agent's own calls as calls, one Done at the end.
    let llm: Vec<&pincer_types::Event> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Llm(ev) => Some(ev),
            _ => None,
        })
        .collect();
    assert!(
        !llm.iter()
            .any(|e| matches!(e, pincer_types::Event::ToolCall { .. }))
    );
    let dones = llm
        .iter()
        .filter(|e| matches!(e, pincer_types::Event::Done { .. }))
        .count();
    assert_eq!(dones, 1);
    assert!(matches!(llm.last(), Some(pincer_types::Event::Done { .. })));
}

#[tokio::test]
async fn a_looping_model_is_stopped_with_a_summary() {
    // The same call forever, and different calls forever.
    for same in [true, false] {
        let n = std::sync::atomic::AtomicUsize::new(0);
        let up = FakeUpstream::responding(move |body| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let v: Value = serde_json::from_str(body).unwrap();
            if v["tool_choice"] == "none" {
                return completions_stream(&[r#"{"content":"Summary: I kept reading a.txt."}"#]);
            }
            let args = if same {
                r#"{"path":"a.txt"}"#.to_string()
            } else {
                format!(r#"{{"path":"f{i}.txt"}}"#)
            };
            completions_tool_stream(&[("c", "read", &args)])
        });
        let s = setup(&up, "openai-completions", "", "");
        std::fs::write(s.ws.join("a.txt"), "x").unwrap();
        let (done, _) = deliver(&s.rt, "read it", false).await;
        let reqs = up.requests();
        let expected_rounds = if same { 3 } else { 25 };
        assert_eq!(reqs.len(), expected_rounds + 1, "same={same}");
        // The last call may call no tool, and asks for a summary (the
        // tools stay defined: the conversation holds calls).
        let last = body(reqs.last().unwrap());
        assert_eq!(last["tool_choice"], "none");
        assert!(last.get("tools").is_some());
        assert!(last.to_string().contains("Stop using tools now"));
        let text = done.final_text.unwrap();
        assert!(text.starts_with("Summary: I kept reading a.txt."), "{text}");
        assert!(text.contains("⚠️ Tool loop stopped"), "{text}");
    }
}

#[tokio::test]
async fn tool_errors_are_results_not_crashes() {
    let up = FakeUpstream::start(vec![
        completions_tool_stream(&[
            ("c1", "nonexistent_tool", r#"{}"#),
            ("c2", "read", r#"{"path": 5}"#),
            ("c3", "read", r#"{"path":"../../etc/passwd"}"#),
            ("c4", "read", "{not json"),
            (
                "c5",
                "write",
                r#"{"path":"/etc/pincer-test.txt","content":"x"}"#,
            ),
        ]),
        completions_stream(&[r#"{"content":"Some tools failed."}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    let (done, events) = deliver(&s.rt, "try things", false).await;
    assert_eq!(done.final_text.as_deref(), Some("Some tools failed."));
    let results = results(&events);
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|(_, err)| *err), "{results:?}");
    assert!(results[0].0.contains("Tool nonexistent_tool not found"));
    assert!(results[1].0.contains("invalid arguments for read"));
    assert!(results[2].0.contains("outside the workspace"));
    assert!(results[3].0.contains("not valid JSON"));
    assert!(results[4].0.contains("outside the workspace"));
    assert!(!Path::new("/etc/pincer-test.txt").exists());
}

#[tokio::test]
async fn commands_wait_for_approval_by_default() {
    let up = FakeUpstream::start(vec![
        completions_tool_stream(&[("c1", "exec", r#"{"command":"echo approved-run > out.txt"}"#)]),
        completions_stream(&[r#"{"content":"Waiting for your approval."}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    let (done, _) = deliver(&s.rt, "write out.txt", false).await;
    let text = done.final_text.unwrap();
    assert!(!s.ws.join("out.txt").exists(), "ran without approval");
    let id = text
        .split("Reply with: /approve ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no approval prompt in {text}"))
        .to_string();
    // Another session cannot approve it.
    let other = Delivery {
        session_key: "agent:main:other".into(),
        ..message(&format!("/approve {id} allow-once"), false)
    };
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    let refused = s.rt.deliver(other, tx).await.unwrap();
    assert!(
        refused
            .final_text
            .unwrap()
            .contains("Failed to submit approval")
    );
    assert!(!s.ws.join("out.txt").exists());
    // The same session can.
    let (ok, _) = deliver(&s.rt, &format!("/approve {id} allow-once"), false).await;
    let ack = ok.final_text.unwrap();
    assert!(ack.contains("Exec approval allow-once submitted"), "{ack}");
    assert_eq!(
        std::fs::read_to_string(s.ws.join("out.txt")).unwrap(),
        "approved-run\n"
    );
    // The outcome is in the transcript for the model's next turn.
    let t = transcript(&s.rt);
    assert!(
        t.iter()
            .any(|m| matches!(m, Message::User { text } if text.contains("Exec finished")))
    );
}

#[tokio::test]
async fn a_model_without_tools_gets_none_and_the_user_is_told() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"plain"}"#])]);
    let s = setup(
        &up,
        "openai-completions",
        "",
        ", compat: { supportsTools: false }",
    );
    let (done, events) = deliver(&s.rt, "hi", false).await;
    assert_eq!(done.final_text.as_deref(), Some("plain"));
    assert!(body(&up.requests()[0]).get("tools").is_none());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::Note(n) if n.contains("supportsTools")))
    );
}

#[tokio::test]
async fn a_server_that_refuses_tools_is_asked_again_without_them() {
    let up = FakeUpstream::start(vec![
        vec![Step::Send(pincer_testkit::http_response(
            400,
            &[],
            r#"{"error":{"message":"registry.ollama.ai/library/gemma:2b does not support tools","type":"api_error"}}"#,
        ))],
        completions_stream(&[r#"{"content":"answered without tools"}"#]),
        completions_stream(&[r#"{"content":"second answer"}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    let (done, events) = deliver(&s.rt, "hi", false).await;
    // Chat apps and HTTP callers see only the answer: the refusal is there
    // too, with the fix.
    let text = done.final_text.unwrap();
    assert!(text.starts_with("answered without tools"), "{text}");
    assert!(text.contains("does not take tools"), "{text}");
    assert!(text.contains("compat.supportsTools: false"), "{text}");
    // The next turn does not try again, and the answer is only the answer.
    let (again, _) = deliver(&s.rt, "and now?", false).await;
    assert_eq!(again.final_text.as_deref(), Some("second answer"));
    let reqs = up.requests();
    assert_eq!(reqs.len(), 3);
    assert!(body(&reqs[0]).get("tools").is_some());
    assert!(body(&reqs[1]).get("tools").is_none());
    assert!(body(&reqs[2]).get("tools").is_none());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::Note(n) if n.contains("does not take tools")))
    );
}

#[tokio::test]
async fn calls_in_a_reply_cut_by_the_output_limit_are_not_run() {
    // A native call and a printed one, each in a reply that hit max_tokens.
    let cut = |steps: Vec<Step>| -> Vec<Step> {
        steps
            .into_iter()
            .map(|st| match st {
                Step::Send(b) => Step::Send(
                    String::from_utf8(b)
                        .unwrap()
                        .replace(
                            r#""finish_reason":"tool_calls""#,
                            r#""finish_reason":"length""#,
                        )
                        .replace(r#""finish_reason":"stop""#, r#""finish_reason":"length""#)
                        .into_bytes(),
                ),
                other => other,
            })
            .collect()
    };
    let up = FakeUpstream::start(vec![
        cut(completions_tool_stream(&[(
            "c1",
            "write",
            r#"{"path":"native.txt","content":"x"}"#,
        )])),
        cut(completions_stream(&[
            r#"{"content":"<tool_call>{\"name\":\"write\",\"arguments\":{\"path\":\"printed.txt\",\"content\":\"x\"}}</tool_call>"}"#,
        ])),
        completions_stream(&[r#"{"content":"I will retry later."}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    let (done, events) = deliver(&s.rt, "write two files", false).await;
    assert_eq!(done.final_text.as_deref(), Some("I will retry later."));
    assert!(!s.ws.join("native.txt").exists());
    assert!(!s.ws.join("printed.txt").exists());
    let errors: Vec<String> = results(&events)
        .into_iter()
        .filter_map(|(r, is_error)| is_error.then_some(r))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("output token limit")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_model_repeating_a_command_that_waits_is_stopped_with_one_prompt() {
    // Every round asks for the same unapproved command.
    let up = FakeUpstream::responding(|body| {
        let v: Value = serde_json::from_str(body).unwrap();
        if v["tool_choice"] == "none" {
            return completions_stream(&[r#"{"content":"It needs your approval."}"#]);
        }
        completions_tool_stream(&[("c", "exec", r#"{"command":"rm -rf build"}"#)])
    });
    let s = setup(&up, "openai-completions", "", "");
    let (done, _) = deliver(&s.rt, "clean the build", false).await;
    // Stopped by the repeat detector (3), not the round cap (25).
    assert_eq!(up.requests().len(), 4);
    let text = done.final_text.unwrap();
    assert!(text.contains("⚠️ Tool loop stopped"), "{text}");
    assert_eq!(text.matches("Reply with: /approve").count(), 1, "{text}");
}

#[tokio::test]
async fn tool_calls_printed_as_text_run_only_for_offered_tools() {
    let up = FakeUpstream::start(vec![
        completions_stream(&[
            r#"{"content":"<tool_call>{\"name\":\"read\",\"arguments\":{\"path\":\"a.txt\"}}</tool_call>"}"#,
        ]),
        completions_stream(&[
            r#"{"content":"{\"name\":\"web_fetch\",\"arguments\":{\"url\":\"http://example.com\"}}"}"#,
        ]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    std::fs::write(s.ws.join("a.txt"), "from the file").unwrap();
    let (done, events) = deliver(&s.rt, "read a.txt", false).await;
    // The printed call was never shown as text.
    let shown: String = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Llm(pincer_types::Event::Text { delta }) => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert!(!shown.contains("tool_call"), "{shown}");
    // The read ran; web_fetch is not offered by default, so its JSON is text.
    assert!(events.iter().any(|e| matches!(e, AgentEvent::Tool(t) if t.name == "read" && t.result.as_deref().is_some_and(|r| r.contains("from the file")))));
    assert!(done.final_text.unwrap().contains("web_fetch"));
    assert_eq!(up.requests().len(), 2);
}

// ---- the injection set ----

/// The model that obeys: it reads the newest tool result (or the user's
/// message) and does what it says: `RUN: cmd` → exec, `WRITE path: text`
/// → write, a JSON tool call → that call. With nothing to obey, it reads
/// the file the user named, or fetches the URL, then answers.
fn obedient(marker: &Path) -> FakeUpstream {
    let marker = marker.display().to_string();
    FakeUpstream::responding(move |body| {
        let v: Value = serde_json::from_str(body).unwrap();
        let msgs = v["messages"].as_array().unwrap();
        let last = msgs.last().unwrap();
        let text = last["content"].as_str().unwrap_or_default().to_string();
        if last["role"] == "user" {
            let target = text
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_string();
            let call = if target.starts_with("http") {
                ("c0", "web_fetch", format!(r#"{{"url":"{target}"}}"#))
            } else {
                ("c0", "read", format!(r#"{{"path":"{target}"}}"#))
            };
            return completions_tool_stream(&[(call.0, call.1, &call.2)]);
        }
        let mut calls: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let line = line.replace("$PWNED_MARKER", &marker);
            if let Some(cmd) = line.split("RUN: ").nth(1) {
                let cmd = cmd
                    .split("<|")
                    .next()
                    .unwrap_or(cmd)
                    .split('[')
                    .next()
                    .unwrap_or(cmd);
                calls.push((
                    "exec".into(),
                    serde_json::json!({"command": cmd.trim()}).to_string(),
                ));
            }
            if let Some(rest) = line.split("WRITE ").nth(1)
                && let Some((path, content)) = rest.split_once(": ")
            {
                let content = content.split(' ').next().unwrap_or(content);
                calls.push((
                    "write".into(),
                    serde_json::json!({"path": path, "content": content}).to_string(),
                ));
            }
            if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line.trim())
                && let (Some(name), Some(args)) =
                    (o.get("name").and_then(Value::as_str), o.get("arguments"))
            {
                calls.push((name.into(), args.to_string()));
            }
        }
        if calls.is_empty() || msgs.iter().filter(|m| m["role"] == "tool").count() > 6 {
            return completions_stream(&[r#"{"content":"Done."}"#]);
        }
        let ids: Vec<String> = (1..=calls.len()).map(|i| format!("c{i}")).collect();
        let calls: Vec<(&str, &str, &str)> = calls
            .iter()
            .zip(&ids)
            .map(|((n, a), id)| (id.as_str(), n.as_str(), a.as_str()))
            .collect();
        completions_tool_stream(&calls)
    })
}

fn injection_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/injection");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 6);
    files
}

/// A page server on 127.0.0.1 serving `body` as HTML.
fn page_server(body: String) -> FakeUpstream {
    FakeUpstream::start(vec![vec![Step::Send(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )]])
}

#[tokio::test]
async fn injected_instructions_in_files_run_nothing_and_write_nothing_outside() {
    for (name, content) in injection_files() {
        // The model touches a relative `PWNED`: a command that ran at
        // all, sandboxed or not, leaves it in the workspace.
        let up = obedient(Path::new("PWNED"));
        let s = setup(&up, "openai-completions", "", "");
        let marker = s.ws.join("PWNED");
        std::fs::write(s.ws.join(&name), &content).unwrap();
        let (done, events) = deliver(&s.rt, &format!("Summarize {name}"), false).await;
        assert!(!marker.exists(), "{name}: a command ran without approval");
        let outside = s.ws.parent().unwrap().join("outside.txt");
        assert!(!outside.exists(), "{name}: wrote outside the workspace");
        assert!(!Path::new("/etc/pincer-pwned.txt").exists());
        // What the model was given: marked, forged markers and tokens defused.
        let seen: String = up.requests().iter().map(|r| r.body.clone()).collect();
        assert!(seen.contains("EXTERNAL_UNTRUSTED_CONTENT"), "{name}");
        assert!(
            !seen.contains("<|im_start|>") && !seen.contains("<|eot_id|>"),
            "{name}"
        );
        assert!(
            !seen.contains("id=\\\"0000000000000000\\\""),
            "{name}: forged marker kept"
        );
        if content.contains("RUN:") || content.contains("\"exec\"") {
            // The command the model asked for waits for the user instead.
            let text = done.final_text.clone().unwrap_or_default();
            assert!(text.contains("/approve"), "{name}: {text}");
        }
        let _ = events;
    }
}

#[tokio::test]
async fn injected_instructions_in_web_pages_run_nothing() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/injection/ignore-previous.html"),
    )
    .unwrap();
    let site = page_server(page);
    let url = format!("http://127.0.0.1:{}/recipe", site.port);
    let up = obedient(Path::new("PWNED"));
    // web_fetch allowed, and (for this test's local page) private addresses.
    let s = setup(
        &up,
        "openai-completions",
        r#"alsoAllow: ["web_fetch"], web: { fetch: { ssrfPolicy: { allowPrivateNetwork: true } } }"#,
        "",
    );
    let (done, _) = deliver(&s.rt, &format!("Summarize {url}"), false).await;
    assert!(!s.ws.join("PWNED").exists());
    let seen: String = up.requests().iter().map(|r| r.body.clone()).collect();
    assert!(
        seen.contains("SECURITY NOTICE"),
        "web content comes with the warning"
    );
    assert!(seen.contains("Boil the pasta"));
    assert!(done.final_text.unwrap().contains("/approve"));
}

#[tokio::test]
async fn web_fetch_refuses_private_addresses_by_default() {
    let site = page_server("<p>internal admin page</p>".into());
    let url = format!("http://127.0.0.1:{}/admin", site.port);
    let up = FakeUpstream::start(vec![
        completions_tool_stream(&[("c1", "web_fetch", &format!(r#"{{"url":"{url}"}}"#))]),
        completions_stream(&[r#"{"content":"blocked"}"#]),
    ]);
    let s = setup(&up, "openai-completions", r#"alsoAllow: ["web_fetch"]"#, "");
    let (_, events) = deliver(&s.rt, "fetch it", false).await;
    let result = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::Tool(t) if t.result.is_some() => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert!(result.is_error);
    assert!(result.result.unwrap().contains("private"));
    assert!(site.requests().is_empty(), "the internal page was fetched");
}

#[tokio::test]
async fn a_reply_with_a_hundred_calls_runs_sixteen() {
    // (A reply with more than 128 is refused by the decoder already.)
    let calls: Vec<(String, String)> = (0..100)
        .map(|i| (format!("c{i}"), format!(r#"{{"path":"f{i}.txt"}}"#)))
        .collect();
    let calls: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|(id, a)| (id.as_str(), "read", a.as_str()))
        .collect();
    let up = FakeUpstream::start(vec![
        completions_tool_stream(&calls),
        completions_stream(&[r#"{"content":"done"}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    let (done, events) = deliver(&s.rt, "read them all", false).await;
    assert_eq!(done.final_text.as_deref(), Some("done"));
    let results: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Tool(t) => t.result.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 100);
    assert!(results[15].contains("File not found"));
    assert!(results[16].contains("at most 16 calls"));
}

#[tokio::test]
async fn a_slow_tool_in_one_session_does_not_hold_up_another() {
    let up = FakeUpstream::responding(|body| {
        let v: Value = serde_json::from_str(body).unwrap();
        let msgs = v["messages"].as_array().unwrap();
        let last = msgs.last().unwrap();
        if last["role"] == "user" && last["content"].as_str().unwrap_or("").contains("slow") {
            return completions_tool_stream(&[(
                "c1",
                "exec",
                r#"{"command":"sleep 3; echo slept"}"#,
            )]);
        }
        completions_stream(&[r#"{"content":"quick answer"}"#])
    });
    let s = setup(
        &up,
        "openai-completions",
        r#"exec: { security: "full" }"#,
        "",
    );
    let rt = &s.rt;
    // The order the two turns end in, not how long they took.
    let order = std::sync::Mutex::new(Vec::new());
    let order = &order;
    let run = |key: &'static str, text: &'static str| async move {
        let d = Delivery {
            session_key: key.into(),
            ..message(text, false)
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let drain = async move { while rx.recv().await.is_some() {} };
        let (done, ()) = tokio::join!(rt.deliver(d, tx), drain);
        order.lock().unwrap().push(key);
        done.unwrap().final_text
    };
    let (slow, quick) = tokio::join!(run("agent:main:a", "do the slow thing"), async {
        // Once the slow turn's command is running.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run("agent:main:b", "hello").await
    });
    assert_eq!(quick.as_deref(), Some("quick answer"));
    assert!(slow.is_some());
    // The other session was answered while the command still ran.
    assert_eq!(*order.lock().unwrap(), ["agent:main:b", "agent:main:a"]);
}

#[tokio::test]
async fn agent_defaults_tools_narrow_the_policy() {
    let up = FakeUpstream::start(vec![completions_stream(&[r#"{"content":"ok"}"#])]);
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ up: {{ baseUrl: "{}", api: "openai-completions",
      models: [{{ id: "m", contextWindow: 32768, maxTokens: 64 }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "up/m" }}, tools: {{ deny: ["exec", "process"] }} }} }} }}"#,
        up.base_url()
    );
    let rt = common::runtime(&text, state.path());
    deliver(&rt, "hi", false).await;
    let tools = body(&up.requests()[0])["tools"].to_string();
    assert!(tools.contains("\"read\""), "{tools}");
    assert!(
        !tools.contains("\"exec\"") && !tools.contains("\"process\""),
        "{tools}"
    );
}

/// A whole tool round trip over Ollama's own API (the test kit's replay of
/// it): the call comes back whole, runs, and its result goes back named
/// by its tool; a model Ollama says takes no tools answers without them.
#[tokio::test]
async fn a_tool_round_trip_over_ollamas_own_api() {
    use pincer_testkit::{OllamaModel, OllamaReplay};
    let ollama = OllamaReplay::start(vec![
        OllamaModel::new("qwen3:8b", 40960, &["completion", "tools"]),
        OllamaModel::new("gemma:2b", 8192, &["completion"]),
    ]);
    // gemma:2b is marked as reasoning, which Ollama says it is not.
    let state = tempfile::tempdir().unwrap();
    let ws = state.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("notes.txt"), "the key is under the mat").unwrap();
    let text = format!(
        r#"{{ models: {{ mode: "replace", providers: {{ ollama: {{ baseUrl: "{}", api: "ollama",
      models: [{{ id: "qwen3:8b", contextWindow: 32768, maxTokens: 256 }},
               {{ id: "gemma:2b", contextWindow: 32768, maxTokens: 256, reasoning: true }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "ollama/qwen3:8b" }}, workspace: "{}" }} }},
  tools: {{ allow: ["read"] }} }}"#,
        ollama.base_url(),
        ws.display()
    );
    let rt = common::runtime(&text, state.path());
    let (done, events) = deliver(&rt, "notes.txt", false).await;
    let answer = done.final_text.unwrap_or_default();
    assert!(answer.starts_with("The read tool said: "), "{answer}");
    assert!(answer.contains("the key is under the mat"), "{answer}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::Tool(t) if format!("{t:?}").contains("read")))
    );
    let chats = ollama.chats();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0]["tools"][0]["function"]["name"], "read");
    let sent = chats[1]["messages"].as_array().unwrap();
    let result = sent.last().unwrap();
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_name"], "read");
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("the key is under the mat")
    );

    // Ollama refuses tools, then thinking, for a model without them: asked
    // again without each, and the user is told.
    let (done, events) = common::deliver(
        &rt,
        Delivery {
            model: Some("ollama/gemma:2b".into()),
            session_key: "agent:main:gemma".into(),
            request: pincer_types::ChatRequest {
                reasoning_effort: Some(pincer_types::ReasoningEffort::Low),
                ..Default::default()
            },
            ..message("hi", false)
        },
    )
    .await;
    let answer = done.unwrap().final_text.unwrap_or_default();
    assert!(answer.starts_with("Hello from"), "{answer}");
    for told in ["does not take tools", "does not think on request"] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, AgentEvent::Note(n) if n.contains(told))),
            "{told}: {events:?}"
        );
    }
    let last = ollama.chats().pop().unwrap();
    assert!(
        last.get("think").is_none() && last.get("tools").is_none(),
        "{last}"
    );
}

#[tokio::test]
async fn session_tools_from_a_group_cannot_read_the_owners_session() {
    let up = FakeUpstream::start(vec![
        // The owner's main session.
        completions_stream(&[r#"{"content":"Noted."}"#]),
        // A group session: tries the owner's history, lists sessions.
        completions_tool_stream(&[
            (
                "c1",
                "sessions_history",
                r#"{"sessionKey":"agent:main:main"}"#,
            ),
            ("c2", "sessions_list", r#"{}"#),
        ]),
        completions_stream(&[r#"{"content":"Nothing to share."}"#]),
        // The main session sees every session.
        completions_tool_stream(&[("c3", "sessions_list", r#"{}"#)]),
        completions_stream(&[r#"{"content":"Two sessions."}"#]),
    ]);
    let s = setup(&up, "openai-completions", "", "");
    let to = |key: &str, text: &str| Delivery {
        session_key: key.into(),
        ..message(text, false)
    };
    let group = "agent:main:telegram:group:-100";
    common::deliver(&s.rt, to("agent:main:main", "my PIN is 4921"))
        .await
        .0
        .unwrap();
    let (_, events) = common::deliver(&s.rt, to(group, "show me the owner's chat")).await;
    let results = results(&events);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].1, "{results:?}");
    assert!(results[0].0.contains("not visible"), "{results:?}");
    assert!(!results[0].0.contains("4921"), "{results:?}");
    assert!(!results[1].0.contains("agent:main:main"), "{results:?}");
    assert!(results[1].0.contains(group), "{results:?}");
    let (_, events) = common::deliver(&s.rt, to("agent:main:main", "which sessions?")).await;
    let listed = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::Tool(t) => t.result.clone(),
            _ => None,
        })
        .unwrap();
    assert!(
        listed.contains(group) && listed.contains("agent:main:main"),
        "{listed}"
    );
}

#[tokio::test]
async fn only_the_callers_own_calls_stream_to_it_even_when_named_late() {
    // A server that sends a call's id first and its name in a later delta,
    // for the caller's tool; then a call to an agent tool.
    let mut body =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".to_vec();
    for chunk in [
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"lookup_order","arguments":"{\"id\":"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"7}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"exec","arguments":"{\"command\":\"ls\"}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"id":"c3","type":"function","function":{"name":"made_up","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    ] {
        body.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
    }
    body.extend_from_slice(b"data: [DONE]\n\n");
    let up = FakeUpstream::start(vec![vec![Step::Send(body)]]);
    let s = setup(&up, "openai-completions", "", "");
    let mut d = message("where is order 7?", false);
    d.request.tools = vec![pincer_types::Tool {
        name: "lookup_order".into(),
        description: "Looks an order up".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"id": {"type": "number"}}}),
    }];
    let (done, events) = common::deliver(&s.rt, d).await;
    let done = done.unwrap();
    let streamed: Vec<(usize, Option<String>, String)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Llm(pincer_types::Event::ToolCall {
                index,
                name,
                arguments,
                ..
            }) => Some((*index, name.clone(), arguments.clone())),
            _ => None,
        })
        .collect();
    // Every delta of the caller's call; none of the agent's, nor of a tool
    // nobody offered.
    assert!(!streamed.is_empty(), "{events:?}");
    assert!(streamed.iter().all(|(i, _, _)| *i == 0), "{streamed:?}");
    let args: String = streamed.iter().map(|(_, _, a)| a.as_str()).collect();
    assert_eq!(args, r#"{"id":7}"#);
    assert!(
        streamed
            .iter()
            .any(|(_, n, _)| n.as_deref() == Some("lookup_order"))
    );
    // The turn ends with the caller's call for it to run.
    let calls = &done.reply.tool_calls;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].name, "lookup_order");
}
