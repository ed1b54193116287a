"""RRC radio power states of a phone: idle -> promotion -> connected -> tail -> idle.

A phone's radio with an RRC model (``radio: {rrc: lte}`` in its device class) is idle until a transfer
needs it; it then *promotes* for ``promotion_s`` at ``promotion_w`` (the transfer waits: promotion delay
adds to latency), transfers at the transfer power of :class:`~simulator.device.RadioSpec` (as without
RRC), and after its last active transfer stays in the *tail* at ``tail_w`` for ``tail_s`` before going
idle. A transfer that starts within the tail cuts it short (no promotion) and the tail restarts after
it. ``rrc: none`` (the default) is the model without promotion or tail.

Energy attribution (exact, per request): a transfer that starts the radio from idle pays the promotion;
a transfer after which no other transfer of the phone is active pays a full tail ``tail_w * tail_s``
when it ends; a transfer that starts inside a tail is credited the part of that tail it cut short. So
each request pays for the tail time its transfers actually added, an isolated transfer pays promotion +
transfer + full tail, back-to-back transfers within the tail pay one tail (plus the gap), and the
per-request charges sum to the phone's total in ``devices.csv``.

Presets (one value per key, cited):
  * ``lte``: Huang et al., "A Close Examination of Performance and Power Characteristics of 4G LTE
    Networks", MobiSys 2012, Table 3 (LTE promotion and tail): promotion 260.1 ms at 1210.7 mW, tail
    11576.0 ms at 1060.0 mW.
  * ``wifi``: same paper, Table 3 (WiFi rows): promotion 79.1 ms at 124.4 mW, tail 238.1 ms at
    119.3 mW.
  (Transcribed from the paper's Table 3; the LTE row matches the issue's ~260 ms / 1.2 W / 11.6 s /
  1.06 W. The table text could not be re-read through this project's search tools when this was
  written: re-check against the PDF before publishing. No 5G preset yet: give 5G values explicitly.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .errors import ConfigError, unknown_key
from .schema import build, positive


@dataclass
class RrcSpec:
    """Promotion delay and power, tail time and power of a radio's RRC state machine."""

    promotion_s: float = 0.0
    promotion_w: float = 0.0
    tail_s: float = 0.0
    tail_w: float = 0.0
    source: str = ""

    def check(self, path: str) -> None:
        for k in ("promotion_s", "promotion_w", "tail_s", "tail_w"):
            positive(getattr(self, k), f"{path}.{k}", allow_zero=True)


PRESETS: dict[str, dict[str, Any]] = {
    # Huang et al., MobiSys 2012, Table 3 (LTE): Tpro 260.1 ms, Ppro 1210.7 mW, Ttail 11576.0 ms, Ptail 1060.0 mW
    "lte": {"promotion_s": 0.2601, "promotion_w": 1.2107, "tail_s": 11.576, "tail_w": 1.0600,
            "source": "Huang et al., MobiSys 2012, Table 3 (LTE)"},
    # Huang et al., MobiSys 2012, Table 3 (WiFi): Tpro 79.1 ms, Ppro 124.4 mW, Ttail 238.1 ms, Ptail 119.3 mW
    "wifi": {"promotion_s": 0.0791, "promotion_w": 0.1244, "tail_s": 0.2381, "tail_w": 0.1193,
             "source": "Huang et al., MobiSys 2012, Table 3 (WiFi)"},
}


def parse_rrc(value: Any, path: str) -> RrcSpec | None:
    """``none`` / a preset name / ``{preset: name, <overrides>}`` / explicit values -> RrcSpec or None."""
    if value is None or value == "none":
        return None
    key = path if isinstance(value, str) else f"{path}.preset"
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be none, a preset name ({', '.join(PRESETS)}) or a mapping")
    value = dict(value)
    preset = value.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise unknown_key(str(preset), key, PRESETS, what="RRC preset")
        value = {**PRESETS[preset], **value}
    return build(RrcSpec, value, path)


@dataclass
class RrcCharge:
    """What a request's transfers owe the RRC machine: promotion delay and energy, net tail energy."""

    promotion_s: float = 0.0
    promotion_j: float = 0.0
    tail_j: float = 0.0

    @property
    def energy_j(self) -> float:
        return self.promotion_j + self.tail_j


class RadioState:
    """One phone's RRC state: transfers active, when a promotion completes, when the tail ends."""

    def __init__(self, spec: RrcSpec):
        self.spec = spec
        self.active = 0
        self.ready_at = -math.inf  # end of the current promotion
        self.tail_end = -math.inf
        self.promotions = 0
        self.promotion_j = 0.0
        self.tail_j = 0.0

    def begin(self, now: float, charge: RrcCharge) -> float:
        """A transfer needs the radio at ``now``: returns the delay before it may start."""
        s = self.spec
        if self.active > 0:  # connected, or promoting for another transfer: wait for it, pay nothing
            self.active += 1
            return max(self.ready_at - now, 0.0)
        self.active = 1
        if now < self.tail_end:  # inside the tail: cut it short, credit the unused part
            credit = s.tail_w * (self.tail_end - now)
            self.tail_end = now
            self.tail_j -= credit
            charge.tail_j -= credit
            return 0.0
        self.ready_at = now + s.promotion_s
        self.promotions += 1
        e = s.promotion_w * s.promotion_s
        self.promotion_j += e
        charge.promotion_j += e
        charge.promotion_s += s.promotion_s
        return s.promotion_s

    def end(self, t: float, charge: RrcCharge) -> None:
        """A transfer released the radio at ``t``; the last one opens a full tail, charged now."""
        self.active -= 1
        if self.active == 0:
            self.tail_end = t + self.spec.tail_s
            e = self.spec.tail_w * self.spec.tail_s
            self.tail_j += e
            charge.tail_j += e

    def transmit(self, env, channel, nbytes: float, charge: RrcCharge, sending: bool):
        """SimPy process body: promotion if needed, then the channel's transfer; returns (wait, tx), or the
        channel's ``Lost`` when the message is lost to a failure of the link.

        The radio is released when the phone's part ends: uplink at the end of transmission, downlink
        when the reply arrives.
        """
        t0 = env.now
        delay = self.begin(t0, charge)
        if delay > 0:
            yield env.timeout(delay)
        result = yield from channel.transmit(nbytes)
        if not isinstance(result, tuple):  # a network.Lost (simulator/failures.py): released now
            self.end(env.now, charge)
            return result
        self.end(env.now - channel.latency_s if sending else env.now, charge)
        return result


def rrc_columns(df: pd.DataFrame, charges: dict[int, RrcCharge]) -> pd.DataFrame:
    """Add ``promotion_s`` and ``tail_energy_j`` per request (by request id) to a requests frame."""
    rid = df["request_id"].to_numpy()
    df["promotion_s"] = [charges[r].promotion_s if r in charges else 0.0 for r in rid]
    df["tail_energy_j"] = [charges[r].tail_j if r in charges else 0.0 for r in rid]
    return df
