//! One GGUF model loaded once and kept warm on its own thread, serving
//! requests from a fair queue and streaming each answer as `Event`s, the same
//! events every HTTP dialect produces.

use std::num::NonZeroU32;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use pincer_types::{
    ChatRequest, ErrorKind, Event, FinishReason, ProviderError, ThinkSplitter, Usage,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::EngineError;
use crate::queue::FairQueue;
use crate::template;
use crate::text::{StopScanner, Utf8Joiner};

/// The smallest context the engine allocates: enough for a short chat
/// without reallocating, small enough to keep memory low.
const MIN_CONTEXT: u32 = 1024;
/// llama.cpp's `LLAMA_FLASH_ATTN_TYPE_ENABLED`: needed for a quantized V
/// cache, and it keeps attention scratch memory independent of context size.
const FLASH_ATTENTION_ON: i32 = 1;
/// Prompt tokens decoded per llama.cpp call.
const BATCH: u32 = 512;

/// How to run a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Compute threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Largest prompt + output the engine will hold (the model's
    /// `contextWindow`), capped by what the model was trained for. Memory for
    /// it is taken step by step as conversations grow, not up front.
    pub context_window: u32,
    /// Output cap when a request names none (the model's `maxTokens`).
    pub max_tokens: u32,
    pub kv_cache: KvCache,
}

/// How the KV cache stores keys and values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KvCache {
    /// llama.cpp's default: 16-bit floats.
    F16,
    /// 8-bit blocks: half the memory of F16 for a perplexity change
    /// llama.cpp measures in the third decimal. The default, so the embedded
    /// model leaves room for everything else on small machines.
    #[default]
    Q8_0,
}

impl KvCache {
    pub fn parse(s: &str) -> Option<KvCache> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Some(KvCache::F16),
            "q8_0" | "q8" => Some(KvCache::Q8_0),
            _ => None,
        }
    }

    fn llama_type(self) -> KvCacheType {
        match self {
            KvCache::F16 => KvCacheType::F16,
            KvCache::Q8_0 => KvCacheType::Q8_0,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: None,
            context_window: 8192,
            max_tokens: 2048,
            kv_cache: KvCache::default(),
        }
    }
}

/// What the engine learned when it loaded the model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub reference: String,
    pub path: PathBuf,
    pub file_bytes: u64,
    pub parameters: u64,
    pub trained_context: u32,
    /// The window the engine enforces: the configured one, capped by training.
    pub context_window: u32,
    /// False when the GGUF has no chat template and ChatML is used instead.
    pub template_from_gguf: bool,
    pub threads: usize,
    pub load_time: Duration,
}

/// A loaded model. Clones share the model, its thread and its queue.
#[derive(Clone)]
pub struct LoadedModel {
    shared: Arc<Shared>,
    info: Arc<ModelInfo>,
}

struct Shared {
    queue: Mutex<FairQueue<Job>>,
    wake: Condvar,
    closing: AtomicBool,
    stats: Counters,
}

/// Running totals for this model since it was loaded.
#[derive(Default)]
struct Counters {
    started: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    prompt_tokens: AtomicU64,
    reused_tokens: AtomicU64,
    generated_tokens: AtomicU64,
}

/// What a loaded model has done so far (for metrics and status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Answers that began (requests abandoned while queued never begin).
    pub started: u64,
    pub completed: u64,
    /// Stopped early because the client went away.
    pub cancelled: u64,
    pub prompt_tokens: u64,
    /// Prompt tokens found already in the KV cache.
    pub reused_tokens: u64,
    pub generated_tokens: u64,
}

struct Job {
    req: ChatRequest,
    tx: mpsc::UnboundedSender<Result<Event, ProviderError>>,
}

impl LoadedModel {
    /// Loads the GGUF on a new thread that then serves this model's requests.
    pub async fn load(
        path: &Path,
        reference: &str,
        options: EngineOptions,
    ) -> Result<LoadedModel, EngineError> {
        if !path.is_file() {
            return Err(EngineError::MissingFile(path.to_path_buf()));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(FairQueue::default()),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
            stats: Counters::default(),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let worker = Worker {
            path: path.to_path_buf(),
            reference: reference.to_string(),
            options,
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name(format!("pincer-engine {reference}"))
            .spawn(move || worker.run(ready_tx))
            .map_err(|e| EngineError::Backend(format!("cannot start the engine thread: {e}")))?;
        let info = ready_rx
            .await
            .map_err(|_| EngineError::Stopped(reference.to_string()))??;
        Ok(LoadedModel {
            shared,
            info: Arc::new(info),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Queues one answer. `session` is whose turn it is: sessions take turns,
    /// so one busy session cannot starve the others. Dropping the returned
    /// `Generation` cancels the request, queued or running.
    pub fn generate(&self, session: &str, req: ChatRequest) -> Generation {
        let (tx, rx) = mpsc::unbounded_channel();
        if self.shared.closing.load(Ordering::Acquire) {
            let _ = tx.send(Err(EngineError::Stopped(self.info.reference.clone()).into()));
        } else if let Ok(mut q) = self.shared.queue.lock() {
            q.push(session, Job { req, tx });
            self.shared.wake.notify_one();
        }
        Generation::new(rx)
    }

    /// False once the engine thread has stopped (after a llama.cpp failure):
    /// load the model again.
    pub fn is_usable(&self) -> bool {
        !self.shared.closing.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            started: get(&c.started),
            completed: get(&c.completed),
            cancelled: get(&c.cancelled),
            prompt_tokens: get(&c.prompt_tokens),
            reused_tokens: get(&c.reused_tokens),
            generated_tokens: get(&c.generated_tokens),
        }
    }

    /// Requests waiting for their turn (not counting the one running).
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().map(|q| q.len()).unwrap_or(0)
    }
}

impl Drop for LoadedModel {
    fn drop(&mut self) {
        // The last handle going away stops the thread and frees the model.
        if Arc::strong_count(&self.shared) == 1 {
            self.shared.closing.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
    }
}

/// One streamed answer. Ends with `Event::Done` or one error.
pub struct Generation {
    rx: mpsc::UnboundedReceiver<Result<Event, ProviderError>>,
    ended: bool,
}

impl Generation {
    fn new(rx: mpsc::UnboundedReceiver<Result<Event, ProviderError>>) -> Generation {
        Generation { rx, ended: false }
    }

    pub async fn next(&mut self) -> Option<Result<Event, ProviderError>> {
        if self.ended {
            return None;
        }
        let item = self.rx.recv().await;
        match &item {
            Some(Ok(Event::Done { .. })) | Some(Err(_)) => self.ended = true,
            Some(Ok(_)) => {}
            None => {
                // The engine thread went away without finishing: never let
                // that look like a complete answer.
                self.ended = true;
                return Some(Err(ProviderError::new(
                    ErrorKind::Server,
                    "the embedded engine stopped before the answer was complete",
                )));
            }
        }
        item
    }
}

/// llama.cpp's global state: set up once per process.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    // llama.cpp logs every tensor at load; Pincer reports what matters itself.
                    if std::env::var_os("PINCER_LLAMA_LOG").is_none() {
                        b.void_logs();
                    }
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Backend(e.clone()))
}

struct Worker {
    path: PathBuf,
    reference: String,
    options: EngineOptions,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(self, ready: oneshot::Sender<Result<ModelInfo, EngineError>>) {
        let started = Instant::now();
        let loaded = backend().and_then(|b| {
            let model = LlamaModel::load_from_file(b, &self.path, &LlamaModelParams::default())
                .map_err(|e| EngineError::Load {
                    path: self.path.clone(),
                    reason: e.to_string(),
                })?;
            Ok((b, model))
        });
        let (backend, model) = match loaded {
            Ok(x) => x,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let (template, from_gguf) = match template::model_template(&model) {
            Ok(t) => t,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let trained = model.n_ctx_train();
        let window = match trained {
            0 => self.options.context_window,
            t => self.options.context_window.min(t),
        };
        let threads = self
            .options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let info = ModelInfo {
            reference: self.reference.clone(),
            path: self.path.clone(),
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            parameters: model.n_params(),
            trained_context: trained,
            context_window: window,
            template_from_gguf: from_gguf,
            threads,
            load_time: started.elapsed(),
        };
        if ready.send(Ok(info)).is_err() {
            return;
        }
        let mut slot = Slot {
            model: &model,
            backend,
            template: &template,
            reference: &self.reference,
            window,
            threads,
            default_max: self.options.max_tokens,
            kv_cache: self.options.kv_cache,
            ctx: None,
            cached: Vec::new(),
            stats: &self.shared.stats,
        };
        while let Some(job) = self.next_job() {
            // llama-cpp-2 asserts on some FFI results; a panic must not
            // leave callers waiting, and the model is not trusted after one.
            let result = panic::catch_unwind(AssertUnwindSafe(|| slot.answer(&job)));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = job.tx.send(Err(e.into()));
                }
                Err(_) => {
                    let _ = job.tx.send(Err(EngineError::Decode(
                        "llama.cpp failed unexpectedly; the model will be reloaded".into(),
                    )
                    .into()));
                    self.shared.closing.store(true, Ordering::Release);
                    break;
                }
            }
        }
        self.fail_waiting();
    }

    /// Answers everyone still queued when the thread stops.
    fn fail_waiting(&self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            while let Some(job) = q.pop() {
                let _ = job
                    .tx
                    .send(Err(EngineError::Stopped(self.reference.clone()).into()));
            }
        }
    }

    /// Blocks until a request is waiting; `None` once the model is closing.
    fn next_job(&self) -> Option<Job> {
        let mut q = self.shared.queue.lock().ok()?;
        loop {
            if self.shared.closing.load(Ordering::Acquire) {
                return None;
            }
            q.retain(|j| !j.tx.is_closed());
            if let Some(job) = q.pop() {
                return Some(job);
            }
            q = self.shared.wake.wait(q).ok()?;
        }
    }
}

/// The model's working state on its thread: one context (the KV cache) and
/// the tokens it holds, reused when the next prompt starts the same way (a
/// chat's next turn re-reads only the new messages).
struct Slot<'m> {
    model: &'m LlamaModel,
    backend: &'static LlamaBackend,
    template: &'m LlamaChatTemplate,
    reference: &'m str,
    window: u32,
    threads: usize,
    default_max: u32,
    kv_cache: KvCache,
    ctx: Option<LlamaContext<'m>>,
    cached: Vec<LlamaToken>,
    stats: &'m Counters,
}

/// How an answer ended, when it ended on its own.
enum End {
    Finished(FinishReason),
    ClientGone,
}

impl<'m> Slot<'m> {
    fn answer(&mut self, job: &Job) -> Result<(), EngineError> {
        let prompt = template::render(self.model, self.template, &job.req.messages)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        let prompt_n = tokens.len() as u64;
        let window = u64::from(self.window);
        if prompt_n + 1 > window {
            return Err(EngineError::Overflow {
                model: self.reference.to_string(),
                prompt: prompt_n,
                window,
            });
        }
        let asked = job.req.max_tokens.unwrap_or(u64::from(self.default_max));
        let max_out = asked.min(window - prompt_n).max(1);
        self.ensure_context(prompt_n + max_out)?;
        let count = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        count(&self.stats.started, 1);

        let Some((reused, logits_at)) = self.feed_prompt(&tokens, &job.tx)? else {
            count(&self.stats.cancelled, 1);
            return Ok(());
        };
        count(&self.stats.prompt_tokens, prompt_n);
        count(&self.stats.reused_tokens, reused);
        let mut sampler = sampler(&job.req, self.model.n_vocab());
        let mut answer = Generated::new(&job.req.stop);
        let end = self.generate(&mut sampler, logits_at, max_out, &mut answer, &job.tx);
        count(&self.stats.generated_tokens, answer.tokens);
        let finish = match end? {
            End::Finished(f) => f,
            End::ClientGone => {
                count(&self.stats.cancelled, 1);
                return Ok(());
            }
        };
        count(&self.stats.completed, 1);
        let mut events = answer.finish();
        events.push(Event::Usage {
            usage: Usage {
                input: prompt_n - reused,
                output: answer.tokens,
                cache_read: reused,
                ..Usage::default()
            },
        });
        events.push(Event::Done { finish });
        for e in events {
            if job.tx.send(Ok(e)).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// A context that can hold `need` tokens: the current one when it is big
    /// enough, else a new one of the next power of two, up to the window.
    fn ensure_context(&mut self, need: u64) -> Result<(), EngineError> {
        let have = self.ctx.as_ref().map_or(0, |c| u64::from(c.n_ctx()));
        if have >= need {
            return Ok(());
        }
        let n_ctx = u32::try_from(need.next_power_of_two())
            .unwrap_or(u32::MAX)
            .max(MIN_CONTEXT)
            .min(self.window);
        // Free the old cache before allocating the new one.
        self.ctx = None;
        self.cached.clear();
        let threads = i32::try_from(self.threads).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(BATCH)
            .with_n_ubatch(BATCH)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(FLASH_ATTENTION_ON)
            .with_type_k(self.kv_cache.llama_type())
            .with_type_v(self.kv_cache.llama_type());
        let ctx =
            self.model
                .new_context(self.backend, params)
                .map_err(|e| EngineError::Context {
                    n_ctx,
                    reason: e.to_string(),
                })?;
        self.ctx = Some(ctx);
        Ok(())
    }

    /// Puts the prompt in the KV cache, reusing the part already there.
    /// Returns how many tokens were reused and where in the last batch the
    /// logits are, or `None` if the client left.
    fn feed_prompt(
        &mut self,
        tokens: &[LlamaToken],
        tx: &mpsc::UnboundedSender<Result<Event, ProviderError>>,
    ) -> Result<Option<(u64, i32)>, EngineError> {
        let common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        // At least one token is decoded, to get the logits for the first sample.
        let mut keep = common.min(tokens.len().saturating_sub(1));
        let ctx = self.context()?;
        let cleared = ctx
            .clear_kv_cache_seq(Some(0), u32::try_from(keep).ok(), None)
            .unwrap_or(false);
        if !cleared {
            ctx.clear_kv_cache();
            keep = 0;
        }
        self.cached.truncate(keep);

        let mut batch = LlamaBatch::new(BATCH as usize, 1);
        let rest = &tokens[keep..];
        let mut pos = keep;
        let mut logits_at = 0;
        for chunk in rest.chunks(BATCH as usize) {
            if tx.is_closed() {
                return Ok(None);
            }
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                let last = pos + i + 1 == tokens.len();
                batch
                    .add(*t, (pos + i) as i32, &[0], last)
                    .map_err(|e| EngineError::Decode(e.to_string()))?;
            }
            let ctx = self.context()?;
            ctx.decode(&mut batch)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
            self.cached.extend_from_slice(chunk);
            pos += chunk.len();
            logits_at = chunk.len() as i32 - 1;
        }
        Ok(Some((keep as u64, logits_at)))
    }

    fn generate(
        &mut self,
        sampler: &mut LlamaSampler,
        mut logits_at: i32,
        max_out: u64,
        answer: &mut Generated,
        tx: &mpsc::UnboundedSender<Result<Event, ProviderError>>,
    ) -> Result<End, EngineError> {
        let mut batch = LlamaBatch::new(1, 1);
        loop {
            if tx.is_closed() {
                return Ok(End::ClientGone);
            }
            let ctx = self.context()?;
            let token = sampler.sample(ctx, logits_at);
            if self.model.vocab().is_eog(token) {
                return Ok(End::Finished(FinishReason::Stop));
            }
            let piece = self.model.vocab().token_to_piece(token, false, None);
            answer.tokens += 1;
            let (events, stopped) = answer.push(&piece);
            for e in events {
                if tx.send(Ok(e)).is_err() {
                    return Ok(End::ClientGone);
                }
            }
            if stopped {
                return Ok(End::Finished(FinishReason::Stop));
            }
            if answer.tokens >= max_out {
                return Ok(End::Finished(FinishReason::Length));
            }
            batch.clear();
            batch
                .add(token, self.cached.len() as i32, &[0], true)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
            let ctx = self.context()?;
            ctx.decode(&mut batch)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
            self.cached.push(token);
            logits_at = 0;
        }
    }

    fn context(&mut self) -> Result<&mut LlamaContext<'m>, EngineError> {
        self.ctx
            .as_mut()
            .ok_or_else(|| EngineError::Stopped(self.reference.to_string()))
    }
}

/// The sampling chain llama.cpp's server uses by default, after the
/// caller's repetition penalties; greedy at temperature 0.
fn sampler(req: &ChatRequest, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    let frequency = req.frequency_penalty.unwrap_or(0.0);
    let presence = req.presence_penalty.unwrap_or(0.0);
    if frequency != 0.0 || presence != 0.0 {
        // Over the last 64 tokens, llama-server's default window.
        chain.push(LlamaSampler::penalties(
            n_vocab, 64, 1.0, frequency, presence,
        ));
    }
    let t = req.temperature.unwrap_or(0.8);
    if t <= 0.0 {
        chain.push(LlamaSampler::greedy());
        return LlamaSampler::chain_simple(chain);
    }
    // llama.cpp's seeds are 32-bit; a caller's seed is folded into them.
    let seed = match req.seed {
        Some(s) => (s ^ (s >> 32)) as u32,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    };
    chain.extend([
        LlamaSampler::top_k(40),
        LlamaSampler::top_p(req.top_p.unwrap_or(0.95), 1),
        LlamaSampler::min_p(0.05, 1),
        LlamaSampler::temp(t),
        LlamaSampler::dist(seed),
    ]);
    LlamaSampler::chain_simple(chain)
}

/// The answer as it is generated: pieces to UTF-8, stop strings held back,
/// inline `<think>` blocks split off as reasoning.
struct Generated {
    utf8: Utf8Joiner,
    stops: StopScanner,
    think: ThinkSplitter,
    tokens: u64,
    stopped: bool,
}

impl Generated {
    fn new(stops: &[String]) -> Generated {
        Generated {
            utf8: Utf8Joiner::default(),
            stops: StopScanner::new(stops),
            think: ThinkSplitter::new(),
            tokens: 0,
            stopped: false,
        }
    }

    /// Events for one token's bytes, and whether a stop string ended the answer.
    fn push(&mut self, piece: &[u8]) -> (Vec<Event>, bool) {
        let text = self.utf8.push(piece);
        let scanned = self.stops.push(&text);
        let mut events = Vec::new();
        if !scanned.text.is_empty() {
            self.think.push(&scanned.text, &mut events);
        }
        self.stopped = scanned.stopped;
        (events, scanned.stopped)
    }

    fn finish(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.stopped {
            let tail = self.utf8.finish();
            let scanned = self.stops.push(&tail);
            let mut rest = scanned.text;
            if !scanned.stopped {
                rest.push_str(&self.stops.finish());
            }
            if !rest.is_empty() {
                self.think.push(&rest, &mut events);
            }
        }
        self.think.finish(&mut events);
        events
    }
}
