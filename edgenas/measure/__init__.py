"""Measuring: timing a session (`timing`), where a profile is measured and the one entry point `measure`
(`place`), and device fleets behind TVM's RPC tracker (`tracker`, `worker`, `fleet`, and `loopback`, a fleet
on this machine)."""
