"""Lumped RC thermal model with frequency throttling at trip points (with hysteresis).

``C dT/dt = P - (T - T_amb) / R``. Between events the power P is constant, so temperature follows the
closed form ``T(t) = T_ss + (T0 - T_ss) exp(-t / RC)`` with ``T_ss = T_amb + P R``; no polling.
Trip points ``[(temp_c, freq_factor), ...]`` in increasing temperature: the device runs at the factor of
the highest trip reached; it steps back up when T falls ``hysteresis_c`` below that trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import ConfigError
from .schema import positive, require


@dataclass
class ThermalSpec:
    """Thermal parameters of a device class (values and their sources live in devices.yaml)."""

    enabled: bool = False
    resistance_k_per_w: float = 10.0
    capacitance_j_per_k: float = 20.0
    ambient_c: float = 25.0
    initial_c: float | None = None
    trips: list[list[float]] = field(default_factory=list)
    hysteresis_c: float = 3.0

    def check(self, path: str) -> None:
        positive(self.resistance_k_per_w, f"{path}.resistance_k_per_w")
        positive(self.capacitance_j_per_k, f"{path}.capacitance_j_per_k")
        positive(self.hysteresis_c, f"{path}.hysteresis_c", allow_zero=True)
        last_t, last_f = -math.inf, 1.0
        for i, trip in enumerate(self.trips):
            if len(trip) != 2:
                raise ConfigError(f"'{path}.trips[{i}]' must be [temp_c, freq_factor], got {trip}")
            t, f = trip
            require(t > last_t, f"'{path}.trips' temperatures must increase ({t} after {last_t})")
            require(0 < f <= last_f,
                    f"'{path}.trips[{i}]' frequency factor must be in (0, {last_f}], got {f}")
            last_t, last_f = t, f

    @property
    def tau_s(self) -> float:
        return self.resistance_k_per_w * self.capacitance_j_per_k


class ThermalState:
    """Temperature and throttle level of one device, advanced exactly between events."""

    def __init__(self, spec: ThermalSpec, now: float = 0.0):
        self.spec = spec
        self.temp_c = spec.ambient_c if spec.initial_c is None else spec.initial_c
        self.t_last = now
        self.level = 0
        self._settle()

    @property
    def frequency(self) -> float:
        """Current frequency factor (1.0 = full speed)."""
        return self.spec.trips[self.level - 1][1] if self.level else 1.0

    def steady_state(self, power_w: float) -> float:
        return self.spec.ambient_c + power_w * self.spec.resistance_k_per_w

    def temperature_after(self, dt: float, power_w: float) -> float:
        """Closed-form temperature after ``dt`` seconds at constant power."""
        ss = self.steady_state(power_w)
        return ss + (self.temp_c - ss) * math.exp(-dt / self.spec.tau_s)

    def advance(self, now: float, power_w: float) -> None:
        """Integrate from the last update to ``now`` at the power held since then."""
        dt = now - self.t_last
        if dt > 0:
            self.temp_c = self.temperature_after(dt, power_w)
            self.t_last = now
        self._settle()

    def _settle(self) -> None:
        trips, hyst = self.spec.trips, self.spec.hysteresis_c
        while self.level < len(trips) and self.temp_c >= trips[self.level][0] - 1e-6:
            self.level += 1
        while self.level > 0 and self.temp_c <= trips[self.level - 1][0] - hyst + 1e-6:
            self.level -= 1

    def time_to_change(self, power_w: float) -> float:
        """Seconds until the throttle level changes at constant power (inf if it never does)."""
        trips = self.spec.trips
        if not trips:
            return math.inf
        ss, tau = self.steady_state(power_w), self.spec.tau_s
        candidates = []
        if self.level < len(trips):  # heating up to the next trip
            target = trips[self.level][0]
            if ss > target > self.temp_c:
                candidates.append(tau * math.log((self.temp_c - ss) / (target - ss)))
        if self.level > 0:  # cooling below the current trip minus hysteresis
            target = trips[self.level - 1][0] - self.spec.hysteresis_c
            if ss < target < self.temp_c:
                candidates.append(tau * math.log((self.temp_c - ss) / (target - ss)))
        return min(candidates, default=math.inf)
