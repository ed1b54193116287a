"""Compiled station recursions of the fast engine, with the SimPy engine's arithmetic.

Each kernel serves the visits of one station (a device, or one direction of a link) in arrival order
and does, operation for operation, what the SimPy objects do (:class:`simulator.device.Device`,
:class:`simulator.thermal.ThermalState`, :class:`simulator.network.Channel`), so the times it gives are
the same floating-point numbers, not approximations of them:

* a FIFO station with ``c`` servers starts a visit when it arrives or when the earliest server frees,
  whichever is later, and ends it ``work`` later; an arrival that finds every server busy and
  ``capacity`` visits waiting drops (``capacity`` 0: no waiting room);
* a throttling single-server device integrates the RC model between the same updates as the SimPy
  device and splits work at the same trip crossings;
* a link direction transmits one message at a time over its piecewise-constant bandwidth path (the
  inverse of the cumulative-bits function), then propagates for ``latency``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NEED_MORE_PATH = -1  # a link kernel ran past the generated bandwidth path: extend it and call again


@njit(cache=True)
def born_times(t: np.ndarray) -> np.ndarray:
    """When a mobile's requests are born in SimPy: its source sleeps ``t[k] - now`` after each one."""
    out = np.empty_like(t)
    now = 0.0
    for k in range(t.shape[0]):
        if t[k] > now:
            now = now + (t[k] - now)
        out[k] = now
    return out


@njit(cache=True)
def _waiting_room_full(start: np.ndarray, admitted: np.ndarray, n_adm: int, head: int, a: float,
                       capacity: int) -> tuple[bool, int]:
    """Whether an arrival at ``a`` finds ``capacity`` admitted visits still waiting (every server being
    busy), and the first admitted visit not yet started (visits start in admission order)."""
    while head < n_adm and start[admitted[head]] <= a:
        head += 1
    return n_adm - head >= capacity, head


@njit(cache=True)
def fifo_station(arrive: np.ndarray, work: np.ndarray, servers: int, capacity: int):
    """Start and end of every visit (in arrival order) at a FIFO station; ``capacity``: its waiting room
    (< 0: no limit).

    Returns ``(start, end, dropped)``; a dropped visit has start = end = its arrival.
    """
    n = arrive.shape[0]
    start = np.empty(n)
    end = np.empty(n)
    dropped = np.zeros(n, dtype=np.bool_)
    free = np.zeros(servers)
    admitted = np.empty(n, dtype=np.int64)
    n_adm, head = 0, 0  # visits admitted so far; those before ``head`` have started by now
    for i in range(n):
        a = arrive[i]
        s = 0
        for k in range(1, servers):
            if free[k] < free[s]:
                s = k
        if capacity >= 0 and free[s] > a:  # every server busy: is the waiting room full?
            full, head = _waiting_room_full(start, admitted, n_adm, head, a, capacity)
            if full:
                dropped[i] = True
                start[i] = a
                end[i] = a
                continue
        t1 = a if free[s] <= a else free[s]
        t2 = t1 + work[i] if work[i] > 1e-15 else t1  # Device.compute: no segment below 1e-15 s
        free[s] = t2
        start[i] = t1
        end[i] = t2
        admitted[n_adm] = i
        n_adm += 1
    return start, end, dropped


@njit(cache=True)
def _level_after(temp: float, level: int, trip_t: np.ndarray, hyst: float) -> int:
    """ThermalState._settle."""
    n = trip_t.shape[0]
    while level < n and temp >= trip_t[level] - 1e-6:
        level += 1
    while level > 0 and temp <= trip_t[level - 1] - hyst + 1e-6:
        level -= 1
    return level


@njit(cache=True)
def _time_to_change(temp: float, level: int, power: float, amb: float, r: float, tau: float,
                    trip_t: np.ndarray, hyst: float) -> float:
    """ThermalState.time_to_change."""
    n = trip_t.shape[0]
    if n == 0:
        return math.inf
    ss = amb + power * r
    best = math.inf
    if level < n:
        target = trip_t[level]
        if ss > target > temp:
            best = min(best, tau * math.log((temp - ss) / (target - ss)))
    if level > 0:
        target = trip_t[level - 1] - hyst
        if ss < target < temp:
            best = min(best, tau * math.log((temp - ss) / (target - ss)))
    return best


@njit(cache=True)
def thermal_station(arrive: np.ndarray, work: np.ndarray, capacity: int, idle_w: float, active_w: float,
                    exponent: float, amb: float, r: float, tau: float, init: np.ndarray, trip_t: np.ndarray,
                    trip_f: np.ndarray, hyst: float):
    """A throttling single-server FIFO device (``Device.serve``/``compute``/``update`` step by step), idle
    when the first visit arrives, starting from its books ``init`` = ``[energy_j, busy_s, temp_c, t_last,
    level]``.

    Returns ``(start, end, energy, dropped, state)``: per visit its start, end, the energy charged to it,
    whether it dropped, and the device's books at its last update (the caller closes them at the end).
    """
    n = arrive.shape[0]
    start = np.empty(n)
    end = np.empty(n)
    energy = np.zeros(n)
    dropped = np.zeros(n, dtype=np.bool_)
    admitted = np.empty(n, dtype=np.int64)
    n_adm, head = 0, 0
    dyn = active_w - idle_w
    e_dev, busy_s, temp, t_last, level = init[0], init[1], init[2], init[3], int(init[4])
    free = 0.0
    for i in range(n):
        a = arrive[i]
        if capacity >= 0 and free > a:  # the server is busy: is the waiting room full?
            full, head = _waiting_room_full(start, admitted, n_adm, head, a, capacity)
            if full:
                dropped[i] = True
                start[i] = a
                end[i] = a
                continue
        now = a if free <= a else free
        start[i] = now
        step = now - t_last  # update() before the server turns busy: idle power since the last update
        if step > 0:
            e_dev += idle_w * step  # no server busy: idle power at any frequency
            ss = amb + idle_w * r
            temp = ss + (temp - ss) * math.exp(-step / tau)
            t_last = now
            level = _level_after(temp, level, trip_t, hyst)
        remaining = work[i]  # then the work, in segments split where the throttle level changes
        e_req = 0.0
        while remaining > 1e-15:
            f = trip_f[level - 1] if level else 1.0
            dt = remaining / f
            p = idle_w + dyn * f ** exponent  # power_w() with the server busy, all of it the request's
            ttc = _time_to_change(temp, level, p, amb, r, tau, trip_t, hyst)
            if ttc < dt:
                dt = ttc
            now = now + dt
            step = now - t_last
            if step > 0:  # update(): the level has not changed since p was computed
                e_dev += p * step
                busy_s += step
                ss = amb + p * r
                temp = ss + (temp - ss) * math.exp(-step / tau)
                t_last = now
                level = _level_after(temp, level, trip_t, hyst)
            e_req += p * dt
            remaining -= dt * f
        energy[i] = e_req
        end[i] = now
        free = now
        admitted[n_adm] = i
        n_adm += 1
    state = np.array([e_dev, busy_s, temp, t_last, float(level)])
    return start, end, energy, dropped, state


@njit(cache=True)
def _bits_until(t: float, starts: np.ndarray, rates: np.ndarray, cum: np.ndarray) -> float:
    i = np.searchsorted(starts, t, side="right") - 1
    return cum[i] + rates[i] * (t - starts[i])


@njit(cache=True)
def link_station(arrive: np.ndarray, bits: np.ndarray, latency: float, starts: np.ndarray,
                 rates: np.ndarray, cum: np.ndarray):
    """One link direction (``Channel.transmit`` in arrival order): ``(start, end, out, status)``.

    ``end`` is when transmission ends, ``out`` when the message has arrived (one propagation later);
    ``status`` is :data:`NEED_MORE_PATH` when the bandwidth path (``starts``/``rates``/``cum`` as in
    :class:`~simulator.bandwidth.BandwidthPath`) ends too early, else 0.
    """
    n = arrive.shape[0]
    start = np.empty(n)
    end = np.empty(n)
    out = np.empty(n)
    free = 0.0
    last_start = starts[starts.shape[0] - 1]
    last_cum = cum[cum.shape[0] - 1]
    for i in range(n):
        now = arrive[i]
        s = now if free < now else free
        b = bits[i]
        if b <= 0:
            e = s
        else:
            if not last_start > s:
                return start, end, out, NEED_MORE_PATH
            target = _bits_until(s, starts, rates, cum) + b
            if last_cum < target:
                return start, end, out, NEED_MORE_PATH
            j = np.searchsorted(cum, target, side="left") - 1
            e = starts[j] + (target - cum[j]) / rates[j]
        free = e
        start[i] = s
        end[i] = e
        delay = e - now + latency
        out[i] = now + delay if delay > 0 else now
    return start, end, out, 0


@njit(cache=True)
def device_books(starts: np.ndarray, ends: np.ndarray, idle_w: float, active_w: float, servers: int,
                 energy: float, busy_s: float, t_last: float):
    """Energy and busy server-seconds of a device without throttling, from its visits' service intervals
    (idle before the first), accumulated between consecutive service starts and ends (where the SimPy
    device updates its books) from the books ``energy``, ``busy_s`` at ``t_last``; returns the books and
    the time of the last update."""
    n = starts.shape[0]
    times = np.concatenate((starts, ends))
    delta = np.concatenate((np.ones(n, dtype=np.int64), -np.ones(n, dtype=np.int64)))
    order = np.argsort(times, kind="mergesort")
    dyn = active_w - idle_w
    busy = 0
    for k in range(2 * n):
        now = times[order[k]]
        dt = now - t_last
        if dt > 0:
            p = idle_w + dyn * busy / servers * 1.0
            energy += p * dt
            busy_s += busy * dt
            t_last = now
        busy += delta[order[k]]
    return energy, busy_s, t_last


@njit(cache=True)
def request_books(n: int, n_tiers: int, v_req, v_kind, v_index, alive, t_in, t_start, t_end, t_out, energy,
                  amount, from_mobile, power):
    """Per request, what its process adds up hop by hop (visits in request-major hop order): time on links,
    mobile compute energy, radio energy of links leaving the mobile (``power``: tx base W, tx W per Mbit/s,
    rx base W, rx W per Mbit/s), queueing and compute time per tier."""
    transfer = np.zeros(n)
    e_comp = np.zeros(n)
    e_radio = np.zeros(n)
    queue = np.zeros((n_tiers, n))
    compute = np.zeros((n_tiers, n))
    for v in range(v_req.shape[0]):
        if not alive[v]:
            continue
        r, k, i = v_req[v], v_kind[v], v_index[v]
        if k == 0:  # a device
            queue[i, r] += t_start[v] - t_in[v]
            compute[i, r] += t_end[v] - t_start[v]
            if i == 0:
                e_comp[r] += energy[v]
        else:
            transfer[r] += t_out[v] - t_in[v]
            if from_mobile[i]:
                tx = t_end[v] - t_start[v]
                if k == 1:
                    e_radio[r] += power[0] * tx + power[1] * amount[v] / 1e6
                else:
                    e_radio[r] += power[2] * tx + power[3] * amount[v] / 1e6
    return transfer, e_comp, e_radio, queue, compute


# -- the stations of one tier (or one link direction) at once: segments of visits, one per station --------
@njit(cache=True)
def fifo_segments(seg: np.ndarray, arrive: np.ndarray, work: np.ndarray, servers: int, capacity: int):
    """:func:`fifo_station` for each segment ``seg[s]:seg[s + 1]`` (one station each)."""
    n = arrive.shape[0]
    start, end, dropped = np.empty(n), np.empty(n), np.zeros(n, dtype=np.bool_)
    for s in range(seg.shape[0] - 1):
        lo, hi = seg[s], seg[s + 1]
        if hi > lo:
            a, b, c = fifo_station(arrive[lo:hi], work[lo:hi], servers, capacity)
            start[lo:hi], end[lo:hi], dropped[lo:hi] = a, b, c
    return start, end, dropped


@njit(cache=True)
def thermal_segments(seg: np.ndarray, arrive: np.ndarray, work: np.ndarray, capacity: int, idle_w: float,
                     active_w: float, exponent: float, amb: float, r: float, tau: float, init: np.ndarray,
                     trip_t: np.ndarray, trip_f: np.ndarray, hyst: float):
    """:func:`thermal_station` for each segment, from its books ``init[s]``; ``states[s]`` its books after."""
    n = arrive.shape[0]
    start, end, energy, dropped = np.empty(n), np.empty(n), np.zeros(n), np.zeros(n, dtype=np.bool_)
    states = init.copy()
    for s in range(seg.shape[0] - 1):
        lo, hi = seg[s], seg[s + 1]
        if hi > lo:
            a, b, e, d, st = thermal_station(arrive[lo:hi], work[lo:hi], capacity, idle_w, active_w, exponent,
                                             amb, r, tau, init[s], trip_t, trip_f, hyst)
            start[lo:hi], end[lo:hi], energy[lo:hi], dropped[lo:hi] = a, b, e, d
            states[s] = st
    return start, end, energy, dropped, states


@njit(cache=True)
def link_segments(seg: np.ndarray, arrive: np.ndarray, bits: np.ndarray, latency: float, starts: np.ndarray,
                  rates: np.ndarray, cum: np.ndarray, p_seg: np.ndarray, r_seg: np.ndarray):
    """:func:`link_station` for each segment, segment s over the path ``starts[p_seg[s]:p_seg[s + 1]]``
    (``cum`` alike, ``rates[r_seg[s]:r_seg[s + 1]]``); ``status[s]`` as link_station's."""
    n = arrive.shape[0]
    start, end, out = np.empty(n), np.empty(n), np.empty(n)
    status = np.zeros(seg.shape[0] - 1, dtype=np.int64)
    for s in range(seg.shape[0] - 1):
        lo, hi = seg[s], seg[s + 1]
        if hi > lo:
            a, b, c, st = link_station(arrive[lo:hi], bits[lo:hi], latency, starts[p_seg[s]:p_seg[s + 1]],
                                       rates[r_seg[s]:r_seg[s + 1]], cum[p_seg[s]:p_seg[s + 1]])
            start[lo:hi], end[lo:hi], out[lo:hi] = a, b, c
            status[s] = st
    return start, end, out, status


# -- bookkeeping of visits ---------------------------------------------------------------------------
@njit(cache=True)
def visits(pid: np.ndarray, n_hops: np.ndarray, mobile: np.ndarray, kind: np.ndarray, index: np.ndarray,
           amount: np.ndarray, offset: np.ndarray, attach: np.ndarray, att: np.ndarray):
    """Every visit of every request (request-major, hop order): its request, hop, kind, tier or link,
    amount and station (``offset[kind, index]`` plus the device on the request's mobile's path)."""
    n = 0
    for r in range(pid.shape[0]):
        n += n_hops[r]
    v_req = np.empty(n, dtype=np.int64)
    v_hop = np.empty(n, dtype=np.int64)
    v_kind = np.empty(n, dtype=np.int64)
    v_index = np.empty(n, dtype=np.int64)
    v_amount = np.empty(n)
    v_station = np.empty(n, dtype=np.int64)
    v = 0
    for r in range(pid.shape[0]):
        p = pid[r]
        for h in range(n_hops[r]):
            k, i = kind[p, h], index[p, h]
            v_req[v], v_hop[v], v_kind[v], v_index[v], v_amount[v] = r, h, k, i, amount[p, h]
            v_station[v] = offset[k, i] + att[mobile[r], attach[k, i]]
            v += 1
    return v_req, v_hop, v_kind, v_index, v_amount, v_station


@njit(cache=True)
def arrivals_in_order(idx: np.ndarray, seg: np.ndarray, v_hop: np.ndarray, v_req: np.ndarray, born: np.ndarray,
                      t_out: np.ndarray):
    """The visits ``idx`` of a block's stations (grouped by station, segment s = station s), each
    station's visits put in arrival order (stable: request order at equal times): ``(idx, arrival,
    first hop?)``. A visit arrives when its request is born (first hop) or its previous hop is over."""
    n = idx.shape[0]
    arr = np.empty(n)
    for k in range(n):
        v = idx[k]
        arr[k] = born[v_req[v]] if v_hop[v] == 0 else t_out[v - 1]
    out_idx = np.empty(n, dtype=np.int64)
    out_arr = np.empty(n)
    hop0 = np.empty(n, dtype=np.bool_)
    for s in range(seg.shape[0] - 1):
        lo, hi = seg[s], seg[s + 1]
        o = np.argsort(arr[lo:hi], kind="mergesort") + lo
        for k in range(hi - lo):
            out_idx[lo + k] = idx[o[k]]
            out_arr[lo + k] = arr[o[k]]
            hop0[lo + k] = v_hop[idx[o[k]]] == 0
    return out_idx, out_arr, hop0
