"""The project's own measurements: the scripts behind the figures in the READMEs.

Run with ``python -m``; they are not commands of ``dotcom-mobile`` and no test runs them whole.

* :mod:`.perf_targets` - issue 5's latency targets for all four variants: ratios and pass/fail,
  the int8/fp32 ratio per CPU kind with that kind's target (issue 13).
* :mod:`.layer_speed` - fp32 vs int8 per layer from ETDumps; the int8-slower layers as patterns
  for ``quantize --keep-fp32-from``.
* :mod:`.int8_breakdown` - fp32 vs int8 of small graphs: why int8 is not faster on this CPU.
* :mod:`.measure_delegation` - partitions and delegated nodes of every variant and backend.
"""
