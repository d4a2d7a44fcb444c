"""Run `deepepi ARGS` with one fault injected at a chosen point (for tests/cli/test_hostile_faults.py).

Usage: python tests/helpers/fault_runner.py FAULT ARGS...
  kill-at-rename:NAME   SIGKILL this process when a temp file is about to be renamed onto NAME
  sigint-in-prepare     deliver SIGINT while the training data is being prepared (before run.json)
  sigint-before-fit     deliver SIGINT after the run is set up, before the first epoch ends
  sigint-after-epoch:N  deliver SIGINT once epoch N has been recorded
  sigint-at-rename:NAME  deliver SIGINT when a temp file is about to be renamed onto NAME
  sigterm-at-rename:NAME deliver SIGTERM at that moment
  fsize:BYTES           limit every file this process writes to BYTES (RLIMIT_FSIZE, SIGXFSZ ignored,
                        so a write past it fails with "File too large")
Several faults may be joined with "+". The signals are real (os.kill on this process); only the
moment is chosen.
"""

from __future__ import annotations

import os
import signal
import sys


def _signal_self(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)


def install(fault: str) -> None:
    for one in fault.split("+"):
        _install(one)


def _install(fault: str) -> None:
    name, _, arg = fault.partition(":")
    if name in ("sigint-at-rename", "sigterm-at-rename"):
        real_replace = os.replace
        sig = signal.SIGINT if name == "sigint-at-rename" else signal.SIGTERM

        fired = []

        def replace_then_signal(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            if os.path.basename(str(dst)) == arg and not fired:  # once: not again during the rollback
                fired.append(dst)
                _signal_self(sig)
            return real_replace(src, dst, *a, **k)

        os.replace = replace_then_signal
    elif name == "fsize":
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg), int(arg)))
    elif name == "kill-at-rename":
        real = os.replace

        def replace(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            if os.path.basename(str(dst)) == arg:
                _signal_self(signal.SIGKILL)
            return real(src, dst, *a, **k)

        os.replace = replace
    elif name == "sigint-in-prepare":
        from deepepi.train import run

        real_prepare = run.prepare

        def prepare(*a, **k):  # noqa: ANN002, ANN003, ANN202
            _signal_self(signal.SIGINT)
            return real_prepare(*a, **k)

        run.prepare = prepare
    elif name == "sigint-before-fit":
        from deepepi.train import run

        real_selector = run.Selector.from_model_config

        def from_model_config(*a, **k):  # noqa: ANN002, ANN003, ANN202
            _signal_self(signal.SIGINT)
            return real_selector(*a, **k)

        run.Selector.from_model_config = staticmethod(from_model_config)
    elif name == "sigint-after-epoch":
        from deepepi.train import run

        real_record = run.Job.record

        def record(self, entry, seconds, val_logits=None):  # noqa: ANN001, ANN202
            best = real_record(self, entry, seconds, val_logits)
            if entry["epoch"] == int(arg):
                _signal_self(signal.SIGINT)
            return best

        run.Job.record = record
    else:
        raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from deepepi.cli import main

    main(sys.argv[2:])
