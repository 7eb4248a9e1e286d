#!/usr/bin/env python3
"""The device check's arithmetic (run.sh calls it; Python 3, standard library only).

  report.py --budget PROBE.json SHARE   the VRAM budget for SHARE% of the FFN resident
  report.py --report OUT_DIR            OUT_DIR/report.json on stdout; exit 1 if a check failed

Checks (pass or fail): the build, every CUDA op against the CPU reference, every run
finished, and the GPU's token ids equal to the CPU's at each budget. Targets (measured
against, reported, never failing the check): decode at 100% resident against the GPU's
read-bandwidth limit on the bytes a token reads; hybrid decode time against max(GPU part,
CPU part) + 15% and against 3x the CPU alone; prompt throughput against the GPU's FP16
tensor peak.
"""
import glob
import json
import os
import sys

# Dense FP16 tensor-core peak, TFLOP/s, of the GPUs the project is lent (vendor figures
# for the SXM parts, without sparsity).
FP16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}


def budget(probe_path, share):
    d = json.load(open(probe_path))["device"]
    fixed = d["used"] - d["bytes"]["ffn"]
    share = float(share)
    if share <= 0:
        return fixed
    # Each layer's hot neurons are one 256-byte-aligned piece: room for the rounding.
    return int(fixed + share / 100.0 * d["ffn_all"] + 256 * len(d["hot_neurons"]))


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def per_token(run):
    """Decode-only figures per generated token, from a relu-serve-native --json run."""
    dec, info, dev = run["decode"], run["model_info"], run["device"]
    steps = max(1, dec["steps"])
    nd = dec["neurons_device"] / steps
    nh = dec["neurons_host"] / steps
    predictors = dev["bytes"]["predictors"] > 0
    # What a token reads on the device: attention and output (the non-FFN weights), the
    # predictors, and the active hot neurons' blocks; on the CPU: the active cold ones.
    dev_bytes = info["non_ffn_bytes"] + (info["predictor_bytes"] if predictors else 0) + nd * info["neuron_bytes"]
    cpu_bytes = nh * info["neuron_bytes"]
    out = {
        "tokens_per_s": run["timings"]["gen_tokens_per_s"],
        "ms_per_token": dec["wall_ms"] / steps,
        "device_busy_ms": dec["device_busy_ms"] / steps,
        "device_wait_ms": dec["device_wait_ms"] / steps,
        "cpu_ffn_ms": dec["host_ffn_ms"] / steps,
        "neurons_device": nd,
        "neurons_cpu": nh,
        "device_bytes": dev_bytes,
        "cpu_bytes": cpu_bytes,
        "device_gb_per_s": dev_bytes / (dec["device_busy_ms"] / steps) / 1e6 if dec["device_busy_ms"] > 0 else None,
        "cpu_gb_per_s": cpu_bytes / (dec["host_ffn_ms"] / steps) / 1e6 if dec["host_ffn_ms"] > 0 else None,
        "cpu_time_hidden": max(0.0, min(1.0, 1 - dec["device_wait_ms"] / dec["host_ffn_ms"])) if dec["host_ffn_ms"] > 0 else None,
        # steps run from a recording (CUDA graph) over the whole run, prompt step included
        "replayed_steps": run["hybrid"].get("replayed_steps"),
    }
    if any(v > 0 for v in dec["phase_ms"].values()):
        n_layer = info["n_layer"]
        out["phase_ms_per_layer"] = {k: v / steps / n_layer for k, v in dec["phase_ms"].items()}
        out["phase_ms_per_layer"]["cpu_ffn"] = dec["host_ffn_ms"] / steps / n_layer
    return out


def report(out_dir):
    steps = []
    for line in open(os.path.join(out_dir, "steps.tsv")):
        name, rc, secs = line.rstrip("\n").split("\t")
        steps.append({"step": name, "exit": int(rc), "seconds": int(secs)})
    ops = load(os.path.join(out_dir, "ops.json")) or {}
    runs = {os.path.basename(p)[:-5]: load(p) for p in sorted(glob.glob(os.path.join(out_dir, "runs", "*.json")))}
    checks = []

    def check(name, ok, detail=""):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    failed_steps = [s["step"] for s in steps if s["exit"] != 0 and s["step"] not in ("configure", "total")]
    check("every step finished", not failed_steps, ", ".join(failed_steps))
    check("every CUDA op matches the CPU reference", ops.get("checks", 0) > 0 and ops.get("fails", 1) == 0,
          f"{ops.get('checks', 0)} checks, {ops.get('fails', '?')} failed: " +
          "; ".join(r["op"] for r in ops.get("results", []) if not r["ok"]))
    perf = ops.get("perf", {})
    bw = perf.get("read_gb_per_s")
    models = {}
    for m in ("tiny", "7b"):
        cpu = runs.get(f"{m}-cpu")
        if not cpu:
            continue
        entry = {"cpu": {"tokens_per_s": cpu["timings"]["gen_tokens_per_s"], "tokens": cpu["tokens"]}, "gpu": {}}
        # The CPU-only run's parts per generated token (attention, neuron choice, rest of
        # the FFN, output head): what the hybrid phases below are compared with.
        ph = cpu.get("engine", {}).get("gen_phase_ms")
        if ph:
            entry["cpu"]["phase_ms_per_token"] = {k: v / max(1, len(cpu["tokens"]) - 1) for k, v in ph.items()}
        for share in (0, 25, 50, 100):
            r = runs.get(f"{m}-gpu-{share}")
            if not r:
                check(f"{m} at {share}% ran", False)
                continue
            same = r["tokens"] == cpu["tokens"]
            check(f"{m}: GPU with {share}% of the FFN resident gives the CPU's token ids", same,
                  "" if same else f"cpu {cpu['tokens']} gpu {r['tokens']}")
            g = {"tokens_match_cpu": same, "ffn_on_device": r["device"]["bytes"]["ffn"] / max(1, r["device"]["ffn_all"]),
                 "vram_used": r["device"]["used"], "vram_budget": r["device"]["budget"], **per_token(r)}
            check(f"{m} at {share}%: VRAM used within the budget", r["device"]["used"] <= r["device"]["budget"],
                  f"{r['device']['used']} of {r['device']['budget']} bytes")
            eager = runs.get(f"{m}-gpu-{share}-nographs")
            if eager:  # the same run op by op: what recording the step as a graph saves
                g["op_by_op"] = per_token(eager)
                g["graphs_speedup"] = g["tokens_per_s"] / eager["timings"]["gen_tokens_per_s"] if eager["timings"]["gen_tokens_per_s"] else None
            prof = runs.get(f"{m}-gpu-{share}-profile")
            if prof:
                g["profiled"] = per_token(prof)
            p512 = runs.get(f"{m}-gpu-{share}-prompt512")
            if p512:
                g["prompt512_tokens_per_s"] = p512["timings"]["prompt_tokens_per_s"]
            if bw and g["device_bytes"]:
                g["device_limit_tokens_per_s"] = bw * 1e9 / g["device_bytes"]
                g["of_device_limit"] = g["tokens_per_s"] / g["device_limit_tokens_per_s"]
            entry["gpu"][str(share)] = g
        for t in (4, 8):
            a, b = runs.get(f"{m}-gpu-50-t{t}"), runs.get(f"{m}-cpu-t{t}")
            if a and b:
                entry.setdefault("threads", {})[str(t)] = {"gpu_50_tokens_per_s": a["timings"]["gen_tokens_per_s"],
                                                          "cpu_tokens_per_s": b["timings"]["gen_tokens_per_s"]}
        c512 = runs.get(f"{m}-cpu-prompt512")
        if c512:
            entry["cpu"]["prompt512_tokens_per_s"] = c512["timings"]["prompt_tokens_per_s"]
        models[m] = entry

    targets = {}
    big = models.get("7b")
    if big and "100" in big["gpu"] and big["gpu"]["100"].get("of_device_limit") is not None:
        v = big["gpu"]["100"]["of_device_limit"]
        targets["7b, all resident: decode >= 60% of the read-bandwidth limit"] = {"measured": v, "met": v >= 0.6}
    if big:
        for share in ("25", "50"):
            g = big["gpu"].get(share)
            if not g:
                continue
            bound = max(g["device_busy_ms"] + g["device_wait_ms"], g["cpu_ffn_ms"])
            targets[f"7b at {share}%: ms per token <= max(GPU part, CPU part) + 15%"] = {
                "measured": g["ms_per_token"], "bound": 1.15 * bound, "met": g["ms_per_token"] <= 1.15 * bound}
            x = g["tokens_per_s"] / big["cpu"]["tokens_per_s"] if big["cpu"]["tokens_per_s"] else 0
            targets[f"7b at {share}%: decode >= 3x the CPU alone"] = {"measured": x, "met": x >= 3}
    name = ops.get("device", "")
    peak = next((v for k, v in FP16_PEAK_TFLOPS.items() if k in name), None)
    tf = perf.get("matmul_f16_512x4096x4096_tflops")
    if peak and tf:
        targets["prompt products >= 50% of the FP16 tensor peak (512x4096x4096, F16 weights)"] = {
            "measured": tf / peak, "peak_tflops": peak, "met": tf / peak >= 0.5}
    summary = {
        "device": name,
        "passed": all(c["ok"] for c in checks),
        "checks_failed": [c["check"] + (": " + c["detail"] if c["detail"] else "") for c in checks if not c["ok"]],
        "targets": {k: v["met"] for k, v in targets.items()},
        "seconds": next((s["seconds"] for s in steps if s["step"] == "total"), None),
    }
    return {"summary": summary, "checks": checks, "steps": steps, "perf": perf, "models": models, "targets": targets}


def main(argv):
    if len(argv) == 4 and argv[1] == "--budget":
        print(budget(argv[2], argv[3]))
        return 0
    if len(argv) == 3 and argv[1] == "--report":
        r = report(argv[2])
        print(json.dumps(r, indent=1))
        return 0 if r["summary"]["passed"] else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
