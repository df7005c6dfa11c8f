"""The Keras arms: Keras 3 on TensorFlow (``keras``), JAX (``keras-jax``), torch (``keras-torch``).

Which backend a process uses is set before Keras is first imported, per process, by
``fwbench.registry.arms.activate`` (``KERAS_BACKEND``); nothing here pins it. Imported
without it, Keras falls back to its own default (TensorFlow).

When the backend is TensorFlow (``KERAS_BACKEND=tensorflow``, as ``activate`` sets it for the
``keras`` arm), importing this package imports TensorFlow once, quietly: its C++ start-up lines
(absl's "All log messages before absl::InitializeLog()", oneDNN and CPU-feature notices) are
dropped, anything else it prints is kept. ``fwbench train --framework-logs``
(``FWBENCH_FRAMEWORK_LOGS=1``) shows them all. Other backends never load TensorFlow here.
"""

import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ logging if loaded

# absl's pre-init warning, INFO/WARNING lines ("I0000 00:00:..."), and the CPU-feature notice
_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IW]\d{4} |To enable the following)")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with native stderr captured; replay all but the start-up notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [ln for ln in text.splitlines() if ln.strip() and not _NOISE.match(ln)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


if (
    os.environ.get("KERAS_BACKEND") == "tensorflow"
    and os.environ.get("FWBENCH_FRAMEWORK_LOGS") != "1"
    and "tensorflow" not in sys.modules
):
    _import_tensorflow_quietly()
