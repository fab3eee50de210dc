"""Text LLM clients (TEM's LLM backends, the FEC-Bench judge, caption rewriting), with a disk cache: reruns are exact.

- `OpenAICompatibleClient`: any server speaking the OpenAI chat-completions API (vLLM, llama.cpp server, Ollama,
  TGI, OpenAI itself), called with plain `requests`.
- `TransformersChatClient`: any local transformers chat model by path (a `.gguf` file path also works).
Both decode greedily (temperature 0) so an answer depends only on model + prompt.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Protocol


class LLMError(ValueError):
    """An LLM backend could not be reached or answered in an unexpected shape."""


def default_cache_dir() -> Path:
    """$TEM_CACHE_DIR, else $HF_HOME/tem_llm_cache, else ~/.cache/huggingface/tem_llm_cache."""
    if os.environ.get("TEM_CACHE_DIR"):
        return Path(os.environ["TEM_CACHE_DIR"])
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(hf_home) / "tem_llm_cache"


class LLMClient(Protocol):
    model_id: str

    def complete(self, prompt: str, attempt: int = 0) -> str: ...


RETRY_TEMPERATURE = 1.0  # tries after the first are sampled (AutoDQ's calls use the API default, 1.0)


class DiskCache:
    """One JSON file per answer, named by sha256(model id + generation settings + full prompt)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()
        self._lock = threading.Lock()

    @staticmethod
    def key(model_id: str, settings: dict, prompt: str) -> str:
        payload = json.dumps({"model": model_id, "settings": settings, "prompt": prompt}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> str | None:
        path = self.directory / key[:2] / f"{key}.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))["answer"]

    def put(self, key: str, model_id: str, prompt: str, answer: str) -> None:
        path = self.directory / key[:2] / f"{key}.json"
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"model": model_id, "prompt": prompt, "answer": answer}), encoding="utf-8")
            temporary.replace(path)  # atomic: a crash never leaves half an answer in the cache


class CachedClient:
    """Wraps a client: answers come from the disk cache when present, else from the model (then stored).

    `attempt` 0 is the greedy call; attempt k >= 1 (a retry after an unusable answer) is sampled at
    RETRY_TEMPERATURE with seed k and cached under its own key."""

    def __init__(self, client: LLMClient, cache: DiskCache, settings: dict):
        self.client = client
        self.cache = cache
        self.settings = settings
        self.model_id = client.model_id
        self.calls = 0  # answers that had to come from the model in this process

    def complete(self, prompt: str, attempt: int = 0) -> str:
        settings = self.settings if attempt == 0 else {**self.settings, "retry": attempt, "temperature": RETRY_TEMPERATURE}
        key = DiskCache.key(self.model_id, settings, prompt)
        answer = self.cache.get(key)
        if answer is None:
            if attempt == 0:
                answer = self.client.complete(prompt)
            else:
                answer = self.client.complete(prompt, temperature=RETRY_TEMPERATURE, seed=attempt)
            self.calls += 1
            self.cache.put(key, self.model_id, prompt, answer)
        return answer


class OpenAICompatibleClient:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_tokens: int = 512, timeout: float = 120):
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.max_tokens = max_tokens
        self.timeout = timeout

    def complete(self, prompt: str, temperature: float = 0.0, seed: int | None = None) -> str:
        body = {
            "model": self.model_id,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": self.max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        return post_chat_completion(self.base_url, body, self.api_key, self.timeout, LLMError,
                                    endpoint="LLM endpoint", prefix="TEM: ")


def post_chat_completion(base_url: str, body: dict, api_key: str | None, timeout: float,
                         error: type[Exception], endpoint: str, prefix: str = "") -> str:
    """POST `body` to an OpenAI-compatible `<base_url>/chat/completions`; the answer's text ("" when empty). An
    unreachable endpoint, an HTTP error or an answer of another shape raises `error`, naming the `endpoint` (what
    the caller calls it) and the URL, after `prefix`."""
    import requests

    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = f"{base_url}/chat/completions"
    try:
        response = requests.post(url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as failure:
        raise error(f"{prefix}could not reach the {endpoint} {url}: {failure}") from failure
    if response.status_code != 200:
        raise error(f"{prefix}{endpoint} {url} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        return response.json()["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError) as failure:
        raise error(f"{prefix}unexpected answer from {url}: {response.text[:300]}") from failure


class TransformersChatClient:
    """A local chat model: a folder with a chat template, or a .gguf file (loaded with transformers' gguf support)."""

    def __init__(self, model_path: str, max_new_tokens: int = 512, device: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = model_path
        self.max_new_tokens = max_new_tokens
        path = Path(model_path)
        load_kwargs = {}
        if path.suffix == ".gguf":
            load_kwargs["gguf_file"] = path.name
            model_path = str(path.parent)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, **load_kwargs)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, **load_kwargs)
        if device:
            self.model.to(device)
        self.model.eval()

    def complete(self, prompt: str, temperature: float = 0.0, seed: int | None = None) -> str:
        import torch

        sampling = {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(seed or 0)
            sampling = {"do_sample": True, "temperature": temperature}
        inputs = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.model.device)
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sampling)
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def make_llm_client(
    model: str, base_url: str | None = None, api_key: str | None = None, cache_dir: str | None = None,
    max_tokens: int = 512,
) -> CachedClient:
    """An endpoint client when `base_url` is given, else a local transformers model at `model`; always cached."""
    if not model:
        raise ValueError("TEM: an LLM backend needs `llm_model` (a local path, or the model name at `llm_base_url`)")
    if base_url:
        client: LLMClient = OpenAICompatibleClient(base_url, model, api_key=api_key, max_tokens=max_tokens)
        settings = {"backend": "openai-compatible", "temperature": 0, "max_tokens": max_tokens}
    else:
        client = TransformersChatClient(model, max_new_tokens=max_tokens)
        settings = {"backend": "transformers", "do_sample": False, "max_new_tokens": max_tokens}
    return CachedClient(client, DiskCache(cache_dir), settings)
