"""Loading the navigator to train: transformers model and tokenizer, offline.

Heavy packages (torch, transformers) are imported here, when training starts, so
the rest of flux-agent never pays for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flux_agent.training.recipe import ModelSpec

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_base(spec: ModelSpec, *, seed: int = 0, bf16: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) for `spec`, in float32 (or bfloat16 for an `hf` model when `bf16`)
    on the CPU; the trainer moves them."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig
    except ImportError as exc:
        raise RuntimeError(
            f"training needs the train extra: pip install -e '.[train]' ({exc})"
        ) from None
    if spec.source == "hf":
        if not spec.path:
            raise ValueError("model.source 'hf' needs model.path (a folder or model id)")
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
        dtype = torch.bfloat16 if bf16 else torch.float32
        model = AutoModelForCausalLM.from_pretrained(spec.path, dtype=dtype)
        return model, _with_pad(tokenizer)
    folder, gguf_file = _embedded_gguf()
    tokenizer = _with_pad(AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file))
    if spec.source == "embedded":
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=gguf_file, dtype=torch.float32
        )
        # transformers dequantises GGUF weights to float32 as it loads them, but leaves the
        # model marked "quantized with GGUF", which the trainer refuses; the mark is stale.
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
            model.config._is_quantized = False
        return model, tokenizer
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return AutoModelForCausalLM.from_config(config), tokenizer


def load_folder(path: Path | str, *, bf16: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) saved by `save_pretrained` in `path` (a trained navigator), in
    float32, or bfloat16 when `bf16`.

    Raises:
        RuntimeError: the train extra is missing.
        FileNotFoundError: `path` holds no model.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise RuntimeError(
            f"training needs the train extra: pip install -e '.[train]' ({exc})"
        ) from None
    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"no model in {path} (config.json is missing)")
    tokenizer = _with_pad(AutoTokenizer.from_pretrained(path))
    dtype = torch.bfloat16 if bf16 else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype), tokenizer


def _embedded_gguf() -> tuple[str, str]:
    from flux_agent.backends.llama_cpp import embedded_model_path

    path = embedded_model_path()
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise RuntimeError(
            "loading the embedded GGUF in transformers needs the gguf package: "
            "pip install -e '.[train]'"
        ) from None
    return str(path.parent), path.name


def _with_pad(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
