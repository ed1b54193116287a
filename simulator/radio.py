"""A phone's radio: transfer power, and RRC power states idle -> promotion -> connected -> tail -> idle.

Transfer power (:class:`RadioSpec`) is ``base + slope x throughput`` per direction, the form of Huang
et al. (MobiSys 2012) and of the 5G measurements below; over a transfer of ``bits`` in ``seconds`` on
air it integrates exactly to ``base x seconds + slope x bits`` whatever the bandwidth path did.

A phone's radio with an RRC model (``radio: {rrc: lte}`` in its device class) is idle until a transfer
needs it; it then *promotes* for ``promotion_s`` at ``promotion_w`` (the transfer waits: promotion delay
adds to latency), transfers at the transfer power, and after its last active transfer stays in the
*tail* (connected, DRX) at ``tail_w`` for ``tail_s``. With an RRC_INACTIVE state (5G SA:
``inactive_s > 0``) it then sits in RRC_INACTIVE at ``inactive_w`` for ``inactive_s`` before going idle;
a transfer that finds it there *resumes* for ``resume_s`` at ``resume_w`` instead of a full promotion.
A transfer that starts within the tail cuts it short (no promotion) and the tail restarts after it.
``rrc: none`` (the default) is the model without promotion or tail.

When the radio is busy: an upload from the request until the end of its transmission; a reply from
when its first bit reaches the phone (one propagation delay after it was sent) until its last bit has
arrived. In between the radio idles in its tail, so a request sent to the edge pays the tail over both
propagation delays and the time it spends there, and the full tail starts when the reply has arrived.

Energy attribution (exact, per request): a transfer that starts the radio from idle pays the promotion
(from RRC_INACTIVE: the resume); a transfer after which no other transfer of the phone is active pays
a full tail ``tail_w * tail_s + inactive_w * inactive_s`` when it ends; a transfer that starts inside a
tail is credited the part of that tail it cut short. So each request pays for the tail time its
transfers actually added, an isolated transfer pays promotion + transfer + full tail, back-to-back
transfers within the tail pay one tail (plus the gap), and the per-request charges sum to the phone's
total in ``devices.csv``.

Presets (``rrc: NAME`` sets the RRC timers and powers; ``radio: {preset: NAME}`` sets those and the
transfer power; explicit keys override a preset's). Every value's source is next to it in
:data:`PRESETS`. Short names: "ARO" is AT&T's Application Resource Optimizer, ``attdevsupport/ARO`` at
6a42caea2dfd4b3cc2208801c3e00927dd3c4c80, file ``4.1.1/src/lte.conf``; "5G artifact" is the SIGCOMM 2021
artifact of Narayanan et al., "A Variegated Look at 5G in the Wild", ``SIGCOMM21-5G/artifact`` at
35aaf2857550c7f4c736fe9b01e894253a777e4e.
  * ``lte``: ARO's LTE profile. Its tail is inactivity timer + short DRX + long DRX = 0.1 + 0.02 + 10 =
    10.12 s (lte.conf lines 66, 69, 75; chained in ``RrcStateRange.java`` lines 405-426). It replaces
    the 11.576 s this preset had, transcribed from Huang et al. 2012 Table 3 but never re-read against
    the paper; ARO's file can be re-read line by line. That value stays as ``lte-huang2012``.
  * ``wifi``: Huang et al. 2012, Table 3 (WiFi rows), as transcribed before (not re-read).
  * ``5g-nsa-mmwave``, ``5g-nsa-lowband``, ``5g-sa``: timers and transfer-power slopes measured in the
    5G artifact; the per-state powers (the paper's Table 2) are not in it as data (its raw power traces
    are on external storage, not in the repository), so they are DERIVED from its whole-phone transfer
    fits minus an ASSUMED idle power, as stated next to each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .errors import ConfigError, unknown_key
from .schema import build, positive, require

MAX_TIMER_S = 3600.0  # an RRC timer longer than an hour describes no radio
MAX_POWER_W = 100.0  # a phone's radio draws a few watts


def _bounded(spec: Any, keys: tuple[str, ...], path: str, most: float, unit: str) -> None:
    """Each of ``keys`` of ``spec`` is None or in [0, most] (one clear line naming the key otherwise)."""
    for k in keys:
        v = getattr(spec, k)
        positive(v, f"{path}.{k}", allow_zero=True)
        require(v is None or v <= most, f"'{path}.{k}' must be at most {most:g} {unit}, got {v}")


def _with_preset(value: dict[str, Any], path: str, presets: dict[str, dict[str, Any]], what: str,
                 named: str | None = None) -> dict[str, Any]:
    """``value`` over the preset its ``preset`` key names, if any: explicit keys win; ``named`` is a key
    that takes the preset's name as well (a radio preset names its RRC preset). An unknown name is one
    error with a "did you mean"."""
    value = dict(value)
    preset = value.pop("preset", None)
    if preset is None:
        return value
    if preset not in presets:
        raise unknown_key(str(preset), f"{path}.preset", presets, what=what)
    return {**presets[preset], **({named: preset} if named else {}), **value}


@dataclass
class RrcSpec:
    """Promotion delay and power, tail time and power of a radio's RRC state machine, and the optional
    RRC_INACTIVE state (5G SA) with its resume delay and power."""

    promotion_s: float = 0.0
    promotion_w: float = 0.0
    tail_s: float = 0.0
    tail_w: float = 0.0
    inactive_s: float = 0.0  # time in RRC_INACTIVE after the tail, before idle (0: no such state)
    inactive_w: float = 0.0
    resume_s: float | None = None  # delay to resume from RRC_INACTIVE (needed when inactive_s > 0)
    resume_w: float = 0.0
    source: str = ""

    def check(self, path: str) -> None:
        _bounded(self, ("promotion_s", "tail_s", "inactive_s", "resume_s"), path, MAX_TIMER_S, "s")
        _bounded(self, ("promotion_w", "tail_w", "inactive_w", "resume_w"), path, MAX_POWER_W, "W")
        require(self.inactive_s == 0 or self.resume_s is not None,
                f"'{path}.resume_s' is needed with an RRC_INACTIVE state ('{path}.inactive_s' > 0): the delay "
                f"to resume from it")

    @property
    def rest_j(self) -> float:
        """Energy of a full tail: connected tail, then RRC_INACTIVE."""
        return self.tail_w * self.tail_s + self.inactive_w * self.inactive_s


# -- presets ---------------------------------------------------------------------------------------
# The 5G artifact's transfer fits (re-fitted here with its own script's binning,
# Data-Transfer-Power/MN-Transfer/plot-section4-figure11.py lines 58-223, on
# data-processed/MN-Transfer_combined.csv: avg_power [mW] against throughput [Mbit/s] per `network type`
# and `direction`, Verizon, one phone) are WHOLE-PHONE powers: base W at zero throughput + mW per Mbit/s.
#   mmwave uplink 5.624 W + 9.422 (R^2 0.93, 11 bins)   downlink 5.136 W + 1.807 (R^2 0.98, 15 bins)
#   NSALow uplink 3.204 W + 29.148 (R^2 0.76, 5 bins)   downlink 2.925 W + 13.518 (R^2 0.86, 5 bins)
# The artifact's own rule for radio power is "subtract the idle power from the total power for each
# state" (RRC-Power/README.md line 46), but these runs have no idle measurement. ASSUMPTION: idle =
# 2.338 W, the mean of the Verizon rows of Power-Model/MN-Wild/data-processed/baseline_power.csv
# (lines 2-34, column base_power; another experiment and phone, the nearest idle figure the artifact has).
_IDLE_5G_W = 2.338
# ASSUMPTION for every 5G preset: promotion, tail and resume draw the connected base power (the downlink
# intercept minus idle), as ARO's LTE profile has them close to its base (promotion 1.21 W, tail 1.06 W,
# base 1.2 W: lte.conf lines 93, 102, 117). The artifact measures these states' powers only in raw traces
# it does not carry (RRC-Power/data/PowerMonitor/*.csv are not in the repository's objects).
_MMWAVE_BASE_W = round(5.136 - _IDLE_5G_W, 4)  # 2.798 W
_LOWBAND_BASE_W = round(2.925 - _IDLE_5G_W, 4)  # 0.587 W
# Promotion from idle on NSA: the RRC-Power trace's idle -> LTE steps are 0.36, 0.32 and 0.29 s
# (RRC-Power/README.md lines 36-38: "last idle end" to "4g start"), mean 0.323 s; data flows on the LTE
# anchor from then, the NR leg is added 1.53-1.84 s later ("4g start" to "5g start"), which this model
# does not separate. The README does not name the trace's network.
_NSA_PROMOTION_S = 0.323

PRESETS: dict[str, dict[str, Any]] = {
    # ARO lte.conf: T_PROMOTION 0.26 (line 63), P_PROMOTION 1.21 W (93), tail 0.1 + 0.02 + 10 s (66, 69, 75),
    # P_TAIL 1.06 W (102; ARO averages DRX pings at 1.68 W over it, about 1.09 W: not modelled)
    "lte": {"promotion_s": 0.26, "promotion_w": 1.21, "tail_s": 10.12, "tail_w": 1.06,
            "source": "AT&T ARO 4.1.1/src/lte.conf lines 63, 66, 69, 75, 93, 102"},
    # Huang et al., MobiSys 2012, Table 3 (LTE): Tpro 260.1 ms, Ppro 1210.7 mW, Ttail 11576.0 ms, Ptail 1060.0 mW
    "lte-huang2012": {"promotion_s": 0.2601, "promotion_w": 1.2107, "tail_s": 11.576, "tail_w": 1.0600,
                      "source": "Huang et al., MobiSys 2012, Table 3 (LTE), transcribed, not re-read"},
    # Huang et al., MobiSys 2012, Table 3 (WiFi): Tpro 79.1 ms, Ppro 124.4 mW, Ttail 238.1 ms, Ptail 119.3 mW
    "wifi": {"promotion_s": 0.0791, "promotion_w": 0.1244, "tail_s": 0.2381, "tail_w": 0.1193,
             "source": "Huang et al., MobiSys 2012, Table 3 (WiFi), transcribed, not re-read"},
    # Verizon NSA mmWave: connected until idle at 11.2 s (RRC-Probe/plot-section4-figure10.py lines 137-140)
    "5g-nsa-mmwave": {"promotion_s": _NSA_PROMOTION_S, "promotion_w": _MMWAVE_BASE_W, "tail_s": 11.2,
                      "tail_w": _MMWAVE_BASE_W,
                      "source": "5G artifact: RRC-Probe/plot-section4-figure10.py lines 137-140 (tail), "
                                "RRC-Power/README.md lines 36-38 (promotion); powers derived (radio.py)"},
    # T-Mobile NSA low-band: connected until idle at 10.2 s (figure10.py lines 111-114)
    "5g-nsa-lowband": {"promotion_s": _NSA_PROMOTION_S, "promotion_w": _LOWBAND_BASE_W, "tail_s": 10.2,
                       "tail_w": _LOWBAND_BASE_W,
                       "source": "5G artifact: RRC-Probe/plot-section4-figure10.py lines 111-114 (tail); "
                                 "promotion ASSUMED as the NSA trace's; powers derived (radio.py)"},
    # T-Mobile SA low-band: RRC_CONNECTED until 10.2 s, RRC_INACTIVE until 15.0 s, then RRC_IDLE
    # (figure10.py lines 91-96). ASSUMPTIONS: promotion as the NSA trace's (no SA power trace in the
    # artifact); RRC_INACTIVE draws no more than idle (0 W; its power is not measured there); resume
    # 10 ms, 3GPP TR 38.913 section 7.5's control-plane latency target from a battery-efficient state
    # to continuous data (a requirement, not a measurement); powers as 5g-nsa-lowband (SA here is
    # low-band; the artifact's SA walking data gives no usable fit, R^2 < 0.1).
    "5g-sa": {"promotion_s": _NSA_PROMOTION_S, "promotion_w": _LOWBAND_BASE_W, "tail_s": 10.2,
              "tail_w": _LOWBAND_BASE_W, "inactive_s": 4.8, "inactive_w": 0.0, "resume_s": 0.010,
              "resume_w": _LOWBAND_BASE_W,
              "source": "5G artifact: RRC-Probe/plot-section4-figure10.py lines 91-96 (timers); resume "
                        "3GPP TR 38.913 7.5 target; other values ASSUMED or derived (radio.py)"},
}

# Transfer power per preset (radio: {preset: NAME}): base W and W per Mbit/s, each direction.
# Huang et al. 2012, Table 4: alpha_u 438.39 mW/Mbps, alpha_d 51.97 mW/Mbps, beta 1288.04 mW (as the
# phones of devices.yaml); ARO lte.conf lines 111 and 114 have the same slopes (its beta: 1.2 W, line 117)
_LTE_TRANSFER = {"tx_base_w": 1.28804, "tx_w_per_mbps": 0.43839, "rx_base_w": 1.28804, "rx_w_per_mbps": 0.05197}
# the 5G artifact's low-band fits above, idle (ASSUMED 2.338 W) subtracted from the intercepts
_LOWBAND_TRANSFER = {"tx_base_w": round(3.204 - _IDLE_5G_W, 4), "tx_w_per_mbps": 0.029148,
                     "rx_base_w": _LOWBAND_BASE_W, "rx_w_per_mbps": 0.013518}
TRANSFER_PRESETS: dict[str, dict[str, float]] = {
    "lte": _LTE_TRANSFER,
    "lte-huang2012": _LTE_TRANSFER,
    # ARO 4.1.1/src/WiFi.conf: POWER_WIFI_ACTIVE 0.403 W (line 25), no throughput term (its tail: 0.25 s,
    # line 65, against Huang's 0.2381 s in the RRC preset)
    "wifi": {"tx_base_w": 0.403, "tx_w_per_mbps": 0.0, "rx_base_w": 0.403, "rx_w_per_mbps": 0.0},
    # the 5G artifact's fits above, idle (ASSUMED 2.338 W) subtracted from the intercepts
    "5g-nsa-mmwave": {"tx_base_w": round(5.624 - _IDLE_5G_W, 4), "tx_w_per_mbps": 0.009422,
                      "rx_base_w": _MMWAVE_BASE_W, "rx_w_per_mbps": 0.001807},
    "5g-nsa-lowband": _LOWBAND_TRANSFER,
    "5g-sa": _LOWBAND_TRANSFER,  # ASSUMED: as 5g-nsa-lowband
}


def parse_rrc(value: Any, path: str) -> RrcSpec | None:
    """``none`` / a preset name / ``{preset: name, <overrides>}`` / explicit values -> RrcSpec or None."""
    if value is None or value == "none":
        return None
    if isinstance(value, str):  # a bare name: the error names the key itself, not a '.preset' under it
        if value not in PRESETS:
            raise unknown_key(value, path, PRESETS, what="RRC preset")
        value = {"preset": value}
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be none, a preset name ({', '.join(PRESETS)}) or a mapping")
    return build(RrcSpec, _with_preset(value, path, PRESETS, "RRC preset"), path)


@dataclass
class RadioSpec:
    """Radio power while sending/receiving: base watts plus watts per Mbit/s of throughput, per
    direction; and the RRC state machine (None: no promotion or tail)."""

    tx_base_w: float = 0.0
    tx_w_per_mbps: float = 0.0
    rx_base_w: float = 0.0
    rx_w_per_mbps: float = 0.0
    rrc: RrcSpec | None = field(default=None, metadata={"convert": parse_rrc})

    def check(self, path: str) -> None:
        _bounded(self, ("tx_base_w", "rx_base_w"), path, MAX_POWER_W, "W")
        _bounded(self, ("tx_w_per_mbps", "rx_w_per_mbps"), path, 10.0, "W per Mbit/s")

    def energy_j(self, bits: float, seconds: float, sending: bool) -> float:
        """Energy of one transfer: the integral of ``base + slope x rate(t)`` over its time on air, which is
        base power over its duration plus the per-bit term (the rate integrates to the bits)."""
        if sending:
            return self.tx_base_w * seconds + self.tx_w_per_mbps * bits / 1e6
        return self.rx_base_w * seconds + self.rx_w_per_mbps * bits / 1e6


def parse_radio(value: Any, path: str) -> RadioSpec | None:
    """A device's ``radio``: None, or a mapping with an optional ``preset`` (transfer power and RRC of
    :data:`TRANSFER_PRESETS` / :data:`PRESETS`) under explicit keys."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be a mapping (tx_base_w, tx_w_per_mbps, rx_base_w, rx_w_per_mbps, "
                          f"rrc) or {{preset: name}}")
    return build(RadioSpec, _with_preset(value, path, TRANSFER_PRESETS, "radio preset", named="rrc"), path)


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
    """One phone's RRC state: transfers active, when a promotion completes, when the tail (and the
    RRC_INACTIVE state after it) ends."""

    def __init__(self, spec: RrcSpec):
        self.spec = spec
        self.active = 0
        self.ready_at = -math.inf  # end of the current promotion
        self.tail_end = -math.inf  # end of the connected tail
        self.idle_at = -math.inf  # end of RRC_INACTIVE (= tail_end without that state)
        self.promotions = 0
        self.resumes = 0
        self.promotion_j = 0.0  # promotions and resumes
        self.tail_j = 0.0  # tails and RRC_INACTIVE

    def begin(self, now: float, charge: RrcCharge, at: float | None = None) -> float:
        """A transfer needs the radio at ``at`` (default now; a reply: when it reaches the phone), as known
        at ``now``: returns the delay from now before it may start."""
        if self.active > 0:  # connected, or promoting for another transfer: wait for it, pay nothing
            self.active += 1
            return max(self.ready_at - now, 0.0)
        self.active = 1
        delay = self._wake(now if at is None else at, charge, True)
        self.ready_at = now + delay
        return delay

    def _wake(self, t: float, charge: RrcCharge, delayed: bool) -> float:
        """The radio, no transfer active, is needed at ``t``: cut its tail (connected), resume it from
        RRC_INACTIVE, or promote it from idle; returns the delay that costs (booked when ``delayed``)."""
        s = self.spec
        if t < self.tail_end:  # inside the tail: cut it short, credit the unused part
            self._cut_tail(t, charge)
            return 0.0
        if t < self.idle_at:  # RRC_INACTIVE: resume
            self._cut_tail(t, charge)
            self.resumes += 1
            delay = s.resume_s or 0.0  # validated: given whenever RRC_INACTIVE exists
            e = s.resume_w * delay
        else:
            self.promotions += 1
            delay, e = s.promotion_s, s.promotion_w * s.promotion_s
        self.promotion_j += e
        charge.promotion_j += e
        if delayed:
            charge.promotion_s += delay
        return delay

    def _cut_tail(self, t: float, charge: RrcCharge) -> None:
        """The tail ends at ``t`` (a transfer reached the radio): credit its unused part to ``charge``."""
        s = self.spec
        credit = s.tail_w * max(self.tail_end - t, 0.0) + s.inactive_w * (self.idle_at - max(t, self.tail_end))
        self.tail_end = self.idle_at = t
        self.tail_j -= credit
        charge.tail_j -= credit

    def up_at(self, t: float) -> bool:
        """Whether the radio will be connected (active, or in its tail) at ``t`` >= now, as known now: a
        transfer active now opens a tail when it ends, so the radio counts as up (see :meth:`arrive` for
        a tail too short to last); a transfer that will start before ``t`` is not known yet."""
        return self.active > 0 or t < self.tail_end

    def arrive(self, t: float, charge: RrcCharge) -> None:
        """The first bit of a reply reaches the radio at ``t`` (now), which was up when it was sent.

        In its tail: the reply holds it from now (the tail is cut now, not when the reply was sent).
        Not up any more, which happens only when the tail of a transfer that was active when the reply
        was sent ran out in the meantime (a tail shorter than the propagation delay): it resumes or
        promotes; the energy is booked, not the delay (the reply was already on its way)."""
        if self.active == 0:
            self._wake(t, charge, False)
        self.active += 1

    def end(self, t: float, charge: RrcCharge) -> None:
        """A transfer released the radio at ``t``; the last one opens a full tail, charged now."""
        self.active -= 1
        if self.active == 0:
            self.tail_end = t + self.spec.tail_s
            self.idle_at = self.tail_end + self.spec.inactive_s
            e = self.spec.rest_j
            self.tail_j += e
            charge.tail_j += e

    def transmit(self, env, channel, nbytes: float, charge: RrcCharge, sending: bool):
        """SimPy process body: promotion if needed, then the channel's transfer; returns (wait, tx), or the
        channel's ``Lost`` when the message is lost to a failure of the link.

        The phone's radio is busy with an upload from the request until the end of its transmission,
        and with a reply from when its first bit reaches the phone (one propagation delay after it was
        sent) until its last bit does. Between the two it idles in its tail, so a reply that finds the
        radio up cuts the tail when it *arrives*, and the full tail starts when it has arrived. A reply
        that would find the radio idle promotes it first (its transmission waits for the promotion).
        """
        t0 = env.now
        lead = 0.0 if sending else channel.latency_s
        arrival = None
        if lead > 0 and self.up_at(t0 + lead):  # the radio takes the reply when it arrives
            arrival = env.timeout(lead)
            arrival.callbacks.append(lambda _ev: self.arrive(env.now, charge))
        else:  # idle (or resuming) by the time it arrives: judged then, the transmission waits from now
            delay = self.begin(t0, charge, t0 + lead)
            if delay > 0:
                yield env.timeout(delay)
        result = yield from channel.transmit(nbytes)
        if not isinstance(result, tuple):  # a network.Lost (simulator/failures.py): released now
            if arrival is None or arrival.processed:
                self.end(env.now, charge)
            else:  # lost before it reached the phone: the radio never took it
                arrival.callbacks.clear()
            return result
        self.end(env.now - channel.latency_s if sending else env.now, charge)
        return result


def rrc_columns(df: pd.DataFrame, charges: dict[int, RrcCharge]) -> pd.DataFrame:
    """Add ``promotion_s`` and ``tail_energy_j`` per request (by request id) to a requests frame."""
    rid = df["request_id"].to_numpy()
    df["promotion_s"] = [charges[r].promotion_s if r in charges else 0.0 for r in rid]
    df["tail_energy_j"] = [charges[r].tail_j if r in charges else 0.0 for r in rid]
    return df
