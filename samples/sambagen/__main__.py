"""``python3 -m samples.sambagen [--out DIR] [--check] [--only NAME...] [--keep] [-v]``.

Generate (default): provisions a throwaway Samba AD DC, writes ``samples/samba/NN_name.pcap``, the decryption keytab
``samba.test.keytab`` and ``samples/samba/MANIFEST``. ``--check``: regenerates every scenario into a temporary folder
and compares what TShark reads in each capture with the manifest; exit 1 with a diff when they differ, 2 when the
generator itself could not run. Needs root: it re-executes itself in private network and mount namespaces
(``unshare -n -m --propagation private``), where the DC listens on 127.0.0.1 and its mounts (``/etc/hosts``,
tmpfs over Samba's host folders) never reach the host.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from samples.kdcgen import runner

from . import manifest
from .capture import SambaCapture
from .dc import Dc
from .scenarios import Client, Scenario, select

log = logging.getLogger("samples.sambagen")

HERE: Final = Path(__file__).resolve().parent
SAMPLES: Final = HERE.parent
DEFAULT_OUT: Final = SAMPLES / "samba"
MANIFEST: Final = DEFAULT_OUT / "MANIFEST"
KEYTAB: Final = "samba.test.keytab"
TOTAL_TIMEOUT: Final = 300
NETNS_ENV: Final = "SAMBAGEN_IN_NETNS"
TOOLS: Final = ("samba", "samba-tool", "samba_spnupdate", "wbinfo", "ldbsearch", "smbclient", "kinit", "tcpdump",
                "tshark", "unshare", "mount", "ip")  # fmt: skip
UNSHARE: Final = ("-n", "-m", "--propagation", "private")


def _enter_namespaces(_args: argparse.Namespace, argv: list[str]) -> str | None:
    """Re-execute in fresh network and mount namespaces; returns why not when that is impossible."""
    if os.environ.get(NETNS_ENV):
        return None
    why = runner.unshare_refused(UNSHARE)
    if why is not None:
        return f"unshare -n -m is not allowed here: {why}"
    runner.reexec(UNSHARE, "samples.sambagen", NETNS_ENV, argv)


def generate(scenarios: list[Scenario], out: Path, work: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """The domain and every scenario, one capture each into ``out``; returns client logs and timings."""
    dc = Dc(work / "run")
    logs: dict[str, list[str]] = {}
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        dc.isolate()
        dc.provision()
        dc.start()
        dc.accounts()
        t0 = time.monotonic()
        for sc in scenarios:
            client = Client(dc, sc.name)
            logs[sc.name] = client.log
            if sc.prepare is not None:
                sc.prepare(client)
            with SambaCapture(out / f"{sc.name}.pcap", work):
                sc.act(client)
            log.info("%s captured", sc.name)
        dc.timings["scenarios"] = round(time.monotonic() - t0, 2)
        dc.export_keytab(out / KEYTAB)
    finally:
        dc.stop()
    return logs, dc.timings


def _produce(scenarios: list[Scenario], out: Path, work: Path) -> runner.Run:
    t0 = time.monotonic()
    logs, timings = generate(scenarios, out, work)
    timings["total"] = round(time.monotonic() - t0, 2)
    readings = {sc.name: manifest.read_pcap(out / f"{sc.name}.pcap", out / KEYTAB) for sc in scenarios}
    return runner.Run(logs, readings, " ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


GENERATOR: Final = runner.Generator(
    name="sambagen", doc=__doc__, default_out=DEFAULT_OUT, manifest=MANIFEST, book=manifest, tools=TOOLS,
    root_why="namespaces, mounts, tcpdump", timeout=TOTAL_TIMEOUT, select=select, isolate=_enter_namespaces,
    produce=_produce, keeps="domain, logs",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return runner.main(GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
