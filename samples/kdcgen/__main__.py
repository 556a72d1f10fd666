"""``python3 -m samples.kdcgen [--out DIR] [--check] [--only NAME...] [--keep]``.

Generate (default): writes ``samples/kdc/NN_name.pcap``, the decryption keytab and ``samples/MANIFEST``.
``--check``: regenerates every scenario into a temporary folder and compares what TShark reads in each capture with
``samples/MANIFEST``; exit 1 with a diff when they differ, 2 when the generator itself could not run.
Runs as root (tcpdump, ports 88/464); re-executes itself in a private network namespace (``unshare -n``) when it can,
so a KDC already on the host does not matter and the captures hold only this traffic.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from . import manifest, runner
from .capture import Capture
from .realm import Realm
from .scenarios import Client, Scenario, select

log = logging.getLogger("samples.kdcgen")

HERE: Final = Path(__file__).resolve().parent
SAMPLES: Final = HERE.parent
DEFAULT_OUT: Final = SAMPLES / "kdc"
MANIFEST: Final = SAMPLES / "MANIFEST"
TOTAL_TIMEOUT: Final = 420
NETNS_ENV: Final = "KDCGEN_IN_NETNS"
TOOLS: Final = ("krb5kdc", "kadmind", "kdb5_util", "kadmin.local", "kinit", "kvno", "ktutil", "tcpdump", "tshark",
                "faketime", "curl")  # fmt: skip


def _enter_netns(args: argparse.Namespace, argv: list[str]) -> None:
    """Re-execute in a fresh network namespace (only loopback, port 88 free); returns if that is not possible."""
    if args.no_netns or os.environ.get(NETNS_ENV) or not (shutil.which("unshare") and shutil.which("ip")):
        return
    if runner.unshare_refused(["-n"]) is not None:
        log.warning("unshare -n is not allowed here; using the host loopback (ports 88, 464, 749 must be free)")
        return
    runner.reexec(["-n"], "samples.kdcgen", NETNS_ENV, argv)


def _loopback_up() -> None:
    if os.environ.get(NETNS_ENV):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)


def generate(scenarios: list[Scenario[Client]], out: Path, work: Path) -> dict[str, list[str]]:
    """Run the realm and every scenario, one capture each into ``out``; returns the client log per scenario."""
    realm = Realm(work / "realm")
    logs: dict[str, list[str]] = {}
    t0 = time.monotonic()
    try:
        realm.create()
        realm.start()
        log.info("realm up in %.1f s", time.monotonic() - t0)
        for sc in scenarios:
            client = Client(realm, sc.name)
            logs[sc.name] = client.log
            if sc.prepare is not None:
                sc.prepare(client)
            if sc.keytab is not None:
                realm.start_http(sc.keytab)
            with Capture(out / f"{sc.name}.pcap", work):
                sc.act(client)
            log.info("%s captured", sc.name)
        realm.export_keytab(out / "example.test.keytab")
    finally:
        realm.stop()
    return logs


def _produce(scenarios: list[Scenario[Client]], out: Path, work: Path) -> runner.Run:
    _loopback_up()
    t0 = time.monotonic()
    logs = generate(scenarios, out, work)
    elapsed = time.monotonic() - t0
    readings = {sc.name: manifest.read_pcap(out / f"{sc.name}.pcap") for sc in scenarios}
    return runner.Run(logs, readings, f"{elapsed:.1f} s")


GENERATOR: Final = runner.Generator(
    name="kdcgen", doc=__doc__, default_out=DEFAULT_OUT, manifest=MANIFEST, book=manifest, tools=TOOLS,
    root_why="tcpdump on lo, KDC on port 88", timeout=TOTAL_TIMEOUT, select=select, isolate=_enter_netns,
    produce=_produce, keeps="realm, logs", check_took="in {}", no_netns=True,
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return runner.main(GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
