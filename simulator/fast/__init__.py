"""The fast engine: the SimPy engine's answers without an event loop, for feed-forward scenarios.

When no decision depends on the state of the system (the policy's plan and exits depend only on the
request's own exit outputs, and nothing is shared, fails or batches), every request's path through the
network is known at arrival. The network is then a feed-forward net of FIFO stations, and each station
can be served in one pass over its visits in arrival order, stations taken upstream first. The station
recursions (:mod:`.kernels`) are compiled and do the SimPy objects' arithmetic step for step, so finish
times, energies and device books are the same numbers (tests compare them on every shipped scenario).

:mod:`.support` says what the engine covers (and why not, otherwise), :mod:`.paths` turns a policy into
per-sample paths, :mod:`.engine` simulates; ``engine: auto`` picks this engine where it applies.
"""
