#!/usr/bin/env python3
"""clip-audit vs the Python reference pipeline, side by side in one benchmark run.

  $CLIPREF_HOME/venv/bin/python scripts/bench-vs-python.py [--bin target/release/clip-audit]
      [--model DIR] [--images DIR] [--sizes 256,2048] [--reps 3] [--threads 2] [--batch 32]
      [--work /tmp/clip-audit-bench] [--out reports/bench/bench-vs-python.md] [--min-idle 0.9]

Run it from the repository root. The script itself needs only the standard library; the Python
pipeline and the PyTorch measurements run in child processes under --python (default: the reference
kit's venv, $CLIPREF_HOME/venv/bin/python), with the kit's own scripts (shared/reference:
zeroshot.py, gemm_probe.py, make_images.py, common.py).

What it measures (every timed child waits first until the machine is >= --min-idle idle over 3 s,
as the kit's bench.py does; wall = process start to exit; peak RSS = os.wait4 ru_maxrss):

  1. image sets: for each --sizes N a folder with exactly N images + labels.csv (a subset of
     --images by symlinks, or make_images.py --n N in --work, reused while its MANIFEST matches);
  2. machine: CPU, cores, torch f32 GEMM GFLOP/s (gemm_probe.py, best shape) and clip-audit's own
     GEMM (`bench --format json` -> gemm.gflops); machine f32 peak = the larger;
  3. end to end, per size: zeroshot.py and `clip-audit run --no-cache`, alternating, --reps each;
     medians; ratio = clip-audit img/s / Python img/s (targets: >= 1.5x up to 256 images, >= 1.2x
     above); peak RSS per size and its growth from the smallest to the largest size (target <= 10%);
  4. agreement: `clip-audit classify` logits (the 21 prompts of common.PROMPTS, template "{label}")
     vs zeroshot.py --logits-out on the 256 set (max |diff|, target <= 1e-4; top-1 agreement where a
     disagreement with Python's top-2 gap < --tie-eps counts as a near-tie); `run` predicted_label
     vs zeroshot.py pred per image for every size;
  5. encoder only: `clip-audit bench --encoder-only --dtype f32 --format json` (img/s, GFLOP/s, % of
     machine peak, target >= 80%) and PyTorch get_image_features on random input (2 warm-ups, 8
     timed batches, median, like bench.py --encoder-only);
  6. bf16: `clip-audit bench --dtype bf16` (img/s, kernel) and `classify --dtype bf16` vs f32 on the
     first 64 images (top-1 agreement, max |logit error|); PyTorch bf16 autocast likewise;
  7. embedding cache: fresh --cache-dir, run A with the race probe, run B with the race+child probe
     on the same images: both walls, A/B (target >= 20x), B's run.json embedding_cache hits/misses.

Flags that a clip-audit binary lacks (checked in its --help) turn their cells into "n/a (reason)";
so does any failing step. Writes --out (Markdown) and the raw results as JSON beside it (same stem,
.json), and prints the Markdown. Child logs go to <work>/logs/.
"""
import argparse
import csv
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPREF_HOME = os.environ.get("CLIPREF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "clip-audit-reference")


def default_kit():
    for d in (os.environ.get("CLIPREF_KIT"), os.path.join(REPO, "shared", "reference"),
              os.path.join(os.path.dirname(REPO), "shared", "reference"), "/work/shared/reference"):
        if d and os.path.isfile(os.path.join(d, "zeroshot.py")):
            return os.path.abspath(d)
    return "/work/shared/reference"


def default_python():
    venv = os.path.join(CLIPREF_HOME, "venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


class NA(Exception):
    """A step that could not be measured; str(e) is the reason shown in the table."""


# ---------------------------------------------------------------- machine load and child processes

def cpu_jiffies():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, idle


def wait_quiet(min_idle, max_wait):
    """As the kit's bench.py: wait until the machine is >= min_idle idle over a 3 s window."""
    if min_idle <= 0:
        return None, 0.0
    t0 = time.time()
    while True:
        b0, i0 = cpu_jiffies()
        time.sleep(3.0)
        b1, i1 = cpu_jiffies()
        frac = (i1 - i0) / max((b1 - b0) + (i1 - i0), 1)
        if frac >= min_idle or time.time() - t0 > max_wait:
            return frac, time.time() - t0


class Runner:
    def __init__(self, args):
        self.args = args
        self.logs = os.path.join(args.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.commands = {}  # kind -> first command line run for it (for the report header)

    def run(self, tag, cmd, kind=None, cwd=None, wait=True, stdout_file=None):
        """Run cmd; return a record with wall s, own CPU s, peak RSS MiB, rc, others' CPU s, idle."""
        if kind and kind not in self.commands:
            self.commands[kind] = shlex.join(str(c) for c in cmd)
        idle, waited = wait_quiet(self.args.min_idle, self.args.max_wait) if wait else (None, 0.0)
        log_path = os.path.join(self.logs, tag + ".log")
        b0, _ = cpu_jiffies()
        with open(log_path, "w") as log:
            out = open(stdout_file, "w") if stdout_file else log
            try:
                t0 = time.perf_counter()
                p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=log, cwd=cwd or REPO)
                killer = threading.Timer(self.args.timeout, p.kill)
                killer.start()
                try:
                    _, status, ru = os.wait4(p.pid, 0)
                finally:
                    killer.cancel()
                wall = time.perf_counter() - t0
            finally:
                if stdout_file:
                    out.close()
        b1, _ = cpu_jiffies()
        own = ru.ru_utime + ru.ru_stime
        rc = os.waitstatus_to_exitcode(status)
        other = (b1 - b0) / HZ - own
        rec = {"tag": tag, "rc": rc, "wall_s": wall, "own_cpu_s": own, "peak_rss_mib": ru.ru_maxrss / 1024,
               "other_cpu_s": other, "clean": rc == 0 and other < 0.05 * wall,
               "idle_before": None if idle is None else round(idle, 3), "waited_s": round(waited, 1),
               "log": log_path}
        if rc != 0:
            tail = open(log_path, errors="replace").read().strip().splitlines()[-3:]
            rec["error"] = f"exit {rc}: " + " | ".join(tail)[-300:]
        return rec

    def capture(self, tag, cmd, kind=None, cwd=None, wait=True):
        """Run cmd with stdout to a file; return (record, stdout text)."""
        out_path = os.path.join(self.logs, tag + ".stdout")
        rec = self.run(tag, cmd, kind=kind, cwd=cwd, wait=wait, stdout_file=out_path)
        return rec, open(out_path, errors="replace").read()


def first_json(text):
    i = text.find("{")
    while i >= 0:
        try:
            return json.JSONDecoder().raw_decode(text[i:])[0]
        except ValueError:
            i = text.find("{", i + 1)
    raise NA("no JSON object in the output")


def med(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- helpers for tables

def f(x, nd=1, suffix=""):
    if isinstance(x, NAValue):
        return str(x)
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return f"{x:.{nd}f}{suffix}" if isinstance(x, float) else f"{x}{suffix}"
    return str(x)


class NAValue(str):
    pass


def na(reason):
    return NAValue(f"n/a ({reason})")


def verdict(ok):
    if ok is None:
        return "n/a"
    return "**pass**" if ok else "**FAIL**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- image sets, probes, FLOPs

def read_labels(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows


def manifest_ok(folder, n, ref_manifest):
    man = os.path.join(folder, "MANIFEST.sha256")
    lab = os.path.join(folder, "labels.csv")
    if not (os.path.isfile(man) and os.path.isfile(lab)):
        return False
    lines = [line.split() for line in open(man) if line.strip()]
    if len(lines) != n or len(read_labels(lab)) != n:
        return False
    if ref_manifest and [line for line in lines[:len(ref_manifest)]] != ref_manifest[:n]:
        return False
    for digest, name in lines:
        p = os.path.join(folder, name)
        if not os.path.isfile(p) or hashlib.sha256(open(p, "rb").read()).hexdigest() != digest:
            return False
    return True


def prepare_images(args, runner, n):
    """A folder holding exactly n images and a labels.csv that lists exactly them."""
    src_labels = os.path.join(args.images, "labels.csv")
    rows = read_labels(src_labels)
    if len(rows) == n:
        return args.images, "as given"
    if len(rows) > n:
        d = os.path.join(args.work, f"images-{n}")
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for r in rows[:n]:
            os.symlink(os.path.abspath(os.path.join(args.images, r["file"])), os.path.join(d, r["file"]))
        with open(src_labels, newline="") as fh:
            lines = fh.read().splitlines()
        with open(os.path.join(d, "labels.csv"), "w") as fh:
            fh.write("\n".join(lines[:n + 1]) + "\n")
        return d, f"first {n} of {args.images} (symlinks)"
    d = os.path.join(args.work, f"images-{n}")
    ref_man_path = os.path.join(args.images, "MANIFEST.sha256")
    ref_man = [line.split() for line in open(ref_man_path) if line.strip()] if os.path.isfile(ref_man_path) else None
    if manifest_ok(d, n, ref_man):
        return d, f"make_images.py --n {n} (reused, MANIFEST verified)"
    if os.path.isdir(d):
        shutil.rmtree(d)
    rec = runner.run(f"make_images_{n}", [args.python, "make_images.py", "--n", n, "--out", d],
                     kind="make_images", cwd=args.kit, wait=False)
    if rec["rc"] != 0:
        raise NA(f"make_images.py failed: {rec['error']}")
    if ref_man and not manifest_ok(d, n, ref_man):
        raise NA(f"{d}: its first images differ from {args.images}")
    return d, f"make_images.py --n {n}"


def probe_prompts(args, runner, probe):
    rec, out = runner.capture("probe_show_" + os.path.basename(probe), [args.bin, "probes", "show", probe], wait=False)
    if rec["rc"] != 0:
        raise NA(f"probes show failed: {rec.get('error')}")
    return re.findall(r'^\s+"(.*)"\s*$', out, flags=re.M)


def match_probes(args, runner, prompts_py, result):
    """Check the probe's prompts against common.PROMPTS; if they differ, use copies in --work whose
    template gives exactly common.PROMPTS (unless --probe-as-is)."""
    shipped = probe_prompts(args, runner, args.probe)
    info = {"probe": args.probe, "probe_b": args.probe_b, "shipped_prompts": shipped,
            "equal_to_common_PROMPTS": shipped == prompts_py}
    result["probe_check"] = info
    if shipped == prompts_py or args.probe_as_is:
        info["used"] = "as shipped"
        return args.probe, args.probe_b
    d = os.path.join(args.work, "probes")
    os.makedirs(d, exist_ok=True)
    text = open(args.probe).read()
    new, k = re.subn(r'^templates\s*=.*$', 'templates = ["a photo of a {label}"]', text, count=1, flags=re.M)
    if k != 1:
        info["used"] = "as shipped (no templates line to rewrite)"
        return args.probe, args.probe_b
    a = os.path.join(d, os.path.basename(args.probe))
    open(a, "w").write(new)
    b = os.path.join(d, os.path.basename(args.probe_b))
    shutil.copyfile(args.probe_b, b)  # its `extend` names the race probe by file name: resolves to the copy
    got = probe_prompts(args, runner, a)
    if got != prompts_py:
        info["used"] = "as shipped (rewritten copy still differs)"
        return args.probe, args.probe_b
    info["used"] = f"copies in {d} with templates = [\"a photo of a {{label}}\"] (prompts then equal common.PROMPTS)"
    return a, b


def encoder_gflop_per_image(model_dir):
    """Analytic multiply-add FLOPs (x2) of the CLIP vision tower + projection for one image."""
    c = json.load(open(os.path.join(model_dir, "config.json")))
    v = c["vision_config"]
    s, p, d, m, L = v["image_size"], v["patch_size"], v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"]
    proj = c.get("projection_dim") or v.get("projection_dim") or d
    patches = (s // p) ** 2
    t = patches + 1
    flops = 2 * patches * 3 * p * p * d  # patch embedding
    flops += L * (2 * t * 4 * d * d + 2 * t * 2 * d * m + 2 * 2 * t * t * d)  # qkv+o, mlp, attention
    flops += 2 * d * proj
    return flops / 1e9


# ---------------------------------------------------------------- logits comparison

def top2(row):
    idx = sorted(range(len(row)), key=lambda i: row[i], reverse=True)
    return idx[0], row[idx[0]] - row[idx[1]]


def compare_logits(ref, other, tie_eps):
    """ref, other: {key: [logits]}. Max |diff|, top-1 agreement, near-ties by ref's top-2 gap."""
    keys = [k for k in ref if k in other]
    if not keys:
        raise NA("no common images")
    maxd, agree, ties, unexplained = 0.0, 0, 0, []
    for k in keys:
        a, b = ref[k], other[k]
        if len(a) != len(b):
            raise NA(f"{k}: {len(a)} vs {len(b)} logits")
        maxd = max(maxd, max(abs(x - y) for x, y in zip(a, b)))
        ia, gap = top2(a)
        ib, _ = top2(b)
        if ia == ib:
            agree += 1
        elif gap < tie_eps:
            ties += 1
        else:
            unexplained.append({"image": k, "ref_top2_gap": gap})
    return {"n": len(keys), "missing": len(ref) - len(keys), "max_abs_diff": maxd, "top1_agree": agree,
            "top1_agree_pct": 100.0 * agree / len(keys), "near_tie_disagreements": ties,
            "other_disagreements": len(unexplained), "examples": unexplained[:5]}


def read_py_logits(path):
    out = {}
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        next(r)
        for row in r:
            out[row[0]] = [float(x) for x in row[1:]]
    return out


def classify_logits(args, runner, tag, images, labels_file, dtype=None):
    cmd = [args.bin, "--threads", args.threads, "classify", "--model", args.model, "--labels-file", labels_file,
           "--template", "{label}", "--format", "json", "--batch", args.batch]
    if dtype:
        cmd += ["--dtype", dtype]
    rec, out = runner.capture(tag, cmd + images, kind="classify" + (f"_{dtype}" if dtype else ""))
    if rec["rc"] != 0:
        raise NA(f"classify failed: {rec['error']}")
    js = first_json(out)
    return {os.path.basename(im["path"]): [float(x) for x in im["logits"]] for im in js["images"]}, js


# ---------------------------------------------------------------- child modes (run under --python)

def child_torch_encoder(a):
    import torch
    from transformers import CLIPModel

    torch.set_num_threads(a.threads)
    model = CLIPModel.from_pretrained(a.model).eval()
    size = model.config.vision_config.image_size
    pix = torch.randn(a.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
        for i in range(2 + 8):
            s = time.perf_counter()
            model.get_image_features(pixel_values=pix)
            if i >= 2:
                times.append(time.perf_counter() - s)
    print(json.dumps({"batch": a.batch, "threads": torch.get_num_threads(), "dtype": a.dtype,
                      "attn": model.config._attn_implementation, "batch_s": times,
                      "img_per_s_median": a.batch / statistics.median(times), "img_per_s_best": a.batch / min(times),
                      "torch": torch.__version__}))


def child_torch_logits(a):
    """Logits of the first --n images as zeroshot.py computes them, in f32 and under bf16 autocast."""
    sys.path.insert(0, a.kit)
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor
    from common import PROMPTS

    torch.set_num_threads(a.threads)
    model = CLIPModel.from_pretrained(a.model).eval()
    processor = CLIPProcessor.from_pretrained(a.model, use_fast=False)
    rows = read_labels(os.path.join(a.images, "labels.csv"))[:a.n]
    out = {"files": [r["file"] for r in rows]}
    with torch.inference_mode():
        tok = processor(text=PROMPTS, padding=True, return_tensors="pt")
        pixs = []
        for b in range(0, len(rows), a.batch):
            imgs = [Image.open(os.path.join(a.images, r["file"])) for r in rows[b:b + a.batch]]
            pixs.append(processor(images=imgs, return_tensors="pt")["pixel_values"])
        for dtype in ("f32", "bf16"):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                text = model.get_text_features(**tok).pooler_output.float()
                text = text / text.norm(dim=-1, keepdim=True)
                scale = model.logit_scale.exp().float()
                logits = []
                for pix in pixs:
                    img = model.get_image_features(pixel_values=pix).pooler_output.float()
                    img = img / img.norm(dim=-1, keepdim=True)
                    logits.extend((scale * img @ text.T).float().tolist())
            out[dtype] = logits
    print(json.dumps(out))


# ---------------------------------------------------------------- the benchmark steps

def step_machine(args, runner, caps, res):
    m = res["machine"]
    cpu = "unknown"
    flags = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    m.update({"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
              "avx512f": " avx512f" in flags, "amx_tile": " amx_tile" in flags,
              "mem_total_gib": round(int(open("/proc/meminfo").readline().split()[1]) / 2**20, 1)})
    rec, out = runner.capture("gemm_probe", [args.python, "gemm_probe.py", "--threads", args.threads],
                              kind="gemm_probe", cwd=args.kit)
    shapes = {k: float(v) for k, v in re.findall(r"^(\S+): ([\d.]+) GFLOP/s", out, flags=re.M)}
    m["torch_gemm"] = shapes if shapes else na(rec.get("error") or "no output")
    m["torch_gemm_gflops"] = max(shapes.values()) if shapes else None
    # clip-audit's own GEMM comes with its encoder bench (step_encoder); peak is settled there.


def rust_bench(args, runner, caps, dtype):
    if not caps["bench_json"]:
        raise NA("binary lacks bench --encoder-only/--format json")
    if dtype == "bf16" and not caps["bench_dtype"]:
        raise NA("binary lacks bench --dtype")
    cmd = [args.bin, "--threads", args.threads, "bench", "--model", args.model, "--encoder-only",
           "--batch", args.batch, "--reps", args.encoder_reps, "--format", "json"]
    if caps["bench_dtype"]:
        cmd += ["--dtype", dtype]
    rec, out = runner.capture(f"rust_bench_{dtype}", cmd, kind=f"rust_bench_{dtype}")
    if rec["rc"] != 0:
        raise NA(f"bench failed: {rec['error']}")
    js = first_json(out)
    js["_proc"] = rec
    return js


def torch_encoder(args, runner, dtype):
    rec, out = runner.capture(f"torch_encoder_{dtype}",
                              [args.python, os.path.abspath(__file__), "--child", "torch-encoder", "--dtype", dtype,
                               "--model", args.model, "--threads", args.threads, "--batch", args.batch],
                              kind=f"torch_encoder_{dtype}")
    if rec["rc"] != 0:
        raise NA(f"torch encoder failed: {rec['error']}")
    js = first_json(out)
    js["_proc"] = rec
    return js


def step_encoder(args, runner, caps, res):
    e = res["encoder"]
    gf_img = None
    try:
        gf_img = encoder_gflop_per_image(args.model)
    except Exception as ex:  # noqa: BLE001
        e["analytic_error"] = str(ex)
    e["analytic_gflop_per_image"] = gf_img
    try:
        e["rust_f32"] = rust_bench(args, runner, caps, "f32")
    except NA as ex:
        e["rust_f32"] = na(str(ex))
    try:
        e["torch_f32"] = torch_encoder(args, runner, "f32")
        if gf_img:
            e["torch_f32"]["gflops_analytic"] = e["torch_f32"]["img_per_s_median"] * gf_img
    except NA as ex:
        e["torch_f32"] = na(str(ex))
    m = res["machine"]
    rg = e["rust_f32"].get("gemm", {}).get("gflops") if isinstance(e["rust_f32"], dict) else None
    m["clip_audit_gemm_gflops"] = rg
    m["clip_audit_gemm_shape"] = e["rust_f32"].get("gemm", {}).get("shape") if isinstance(e["rust_f32"], dict) else None
    cands = [x for x in (m.get("torch_gemm_gflops"), rg) if x]
    m["f32_peak_gflops"] = max(cands) if cands else None
    if isinstance(e["rust_f32"], dict) and m["f32_peak_gflops"]:
        g = e["rust_f32"].get("encoder", {}).get("gflops")
        e["rust_f32_pct_of_peak"] = 100.0 * g / m["f32_peak_gflops"] if g else None


def step_end_to_end(args, runner, caps, res, sizes, probe_a):
    e2e = res["end_to_end"]
    for n in sizes:
        s = e2e.setdefault(str(n), {"n": n, "python": [], "rust": []})
        folder = s.get("images")
        if not folder:
            continue
        rust_extra = ["--no-cache"] if caps["no_cache"] else []
        for r in range(1, args.reps + 1):
            order = ("python", "rust") if r % 2 else ("rust", "python")
            for who in order:
                out = os.path.join(args.work, "out", f"{who}-{n}-r{r}")
                if os.path.isdir(out):
                    shutil.rmtree(out)
                os.makedirs(out)
                if who == "python":
                    cmd = [args.python, "zeroshot.py", "--model", args.model, "--images", folder,
                           "--labels", os.path.join(folder, "labels.csv"), "--out", os.path.join(out, "preds.csv"),
                           "--batch", args.batch, "--threads", args.threads, "--use-fast", "false",
                           "--logits-out", os.path.join(out, "logits.csv")]
                    rec = runner.run(f"python_{n}_r{r}", cmd, kind="python_e2e", cwd=args.kit)
                else:
                    cmd = [args.bin, "--threads", args.threads, "run", "--probe", probe_a,
                           "--dataset", os.path.join(folder, "labels.csv"), "--model", args.model, "--out", out,
                           "--batch", args.batch, "--predictions-csv"] + rust_extra
                    rec = runner.run(f"rust_{n}_r{r}", cmd, kind="rust_e2e")
                    if rec["rc"] == 0:
                        try:
                            rj = json.load(open(os.path.join(out, "run.json")))
                            rec["run_json"] = {k: rj.get(k) for k in ("classified", "skipped", "timings_s",
                                                                      "embedding_cache", "threads")}
                        except (OSError, ValueError) as ex:
                            rec["run_json_error"] = str(ex)
                rec["out"] = out
                rec["img_per_s"] = n / rec["wall_s"] if rec["rc"] == 0 else None
                s[who].append(rec)
                print(f"  {rec['tag']}: rc {rec['rc']}, wall {rec['wall_s']:.2f} s, "
                      f"{f(rec['img_per_s'], 1)} img/s, RSS {rec['peak_rss_mib']:.0f} MiB, "
                      f"other CPU {rec['other_cpu_s']:.2f} s", file=sys.stderr, flush=True)
        for who in ("python", "rust"):
            ok = [x for x in s[who] if x["rc"] == 0]
            s[f"{who}_median_wall_s"] = med([x["wall_s"] for x in ok])
            s[f"{who}_img_per_s"] = n / s[f"{who}_median_wall_s"] if ok else None
            s[f"{who}_median_rss_mib"] = med([x["peak_rss_mib"] for x in ok])
            s[f"{who}_max_rss_mib"] = max([x["peak_rss_mib"] for x in ok]) if ok else None
            s[f"{who}_clean_reps"] = sum(x["clean"] for x in ok)
        s["ratio"] = (s["rust_img_per_s"] / s["python_img_per_s"]
                      if s["rust_img_per_s"] and s["python_img_per_s"] else None)
        s["target"] = 1.5 if n <= 256 else 1.2
        s["pass"] = None if s["ratio"] is None else s["ratio"] >= s["target"]


def step_predictions(args, res, sizes):
    """clip-audit run's predicted_label vs zeroshot.py's pred, per size (first successful reps)."""
    for n in sizes:
        s = res["end_to_end"].get(str(n), {})
        py = next((x for x in s.get("python", []) if x["rc"] == 0), None)
        rs = next((x for x in s.get("rust", []) if x["rc"] == 0), None)
        if not py or not rs:
            s["predictions"] = na("no successful run of both")
            continue
        try:
            pp = {r["file"]: r["pred"] for r in read_labels(os.path.join(py["out"], "preds.csv"))}
            lg = read_py_logits(os.path.join(py["out"], "logits.csv"))
            rp = {r["id"]: r["predicted_label"] for r in read_labels(os.path.join(rs["out"], "predictions.csv"))}
        except (OSError, KeyError, ValueError) as ex:
            s["predictions"] = na(f"cannot read outputs: {ex}")
            continue
        same, ties, other = 0, 0, []
        for k, p in pp.items():
            if rp.get(k) == p:
                same += 1
            elif k in lg and top2(lg[k])[1] < args.tie_eps:
                ties += 1
            else:
                other.append({"image": k, "python": p, "clip_audit": rp.get(k),
                              "python_top2_gap": top2(lg[k])[1] if k in lg else None})
        s["predictions"] = {"n": len(pp), "same": same, "same_pct": 100.0 * same / max(len(pp), 1),
                            "near_tie_diffs": ties, "other_diffs": len(other), "missing_in_rust": sum(k not in rp for k in pp),
                            "examples": other[:5]}


def step_agreement(args, runner, res, sizes, labels_file):
    n = 256 if 256 in sizes else min(sizes)
    a = res["agreement"] = {"size": n}
    s = res["end_to_end"].get(str(n), {})
    py = next((x for x in s.get("python", []) if x["rc"] == 0), None)
    folder = s.get("images")
    if not folder:
        a["logits"] = na("no image set")
        return
    images = [os.path.join(folder, r["file"]) for r in read_labels(os.path.join(folder, "labels.csv"))]
    res["_images_for_bf16"] = images[:args.bf16_n]
    res["_folder_for_bf16"] = folder
    if not py:
        a["logits"] = na("no successful Python run to compare with")
        return
    try:
        ref = read_py_logits(os.path.join(py["out"], "logits.csv"))
        got, js = classify_logits(args, runner, f"classify_f32_{n}", images, labels_file)
        a["logits"] = compare_logits(ref, got, args.tie_eps)
        a["logits"]["skipped"] = len(js.get("skipped", []) or [])
        a["logits"]["pass"] = a["logits"]["max_abs_diff"] <= args.logit_tol and a["logits"]["other_disagreements"] == 0
    except NA as ex:
        a["logits"] = na(str(ex))


def step_bf16(args, runner, caps, res, labels_file):
    b = res["bf16"]
    try:
        b["rust_bench"] = rust_bench(args, runner, caps, "bf16")
    except NA as ex:
        b["rust_bench"] = na(str(ex))
    images = res.get("_images_for_bf16")
    if not caps["classify_dtype"]:
        b["rust_logits"] = na("binary lacks classify --dtype")
    elif not images:
        b["rust_logits"] = na("no image set")
    else:
        try:
            f32, _ = classify_logits(args, runner, "classify_f32_bf16set", images, labels_file, dtype="f32")
            bf, _ = classify_logits(args, runner, "classify_bf16", images, labels_file, dtype="bf16")
            b["rust_logits"] = compare_logits(f32, bf, args.tie_eps)
        except NA as ex:
            b["rust_logits"] = na(str(ex))
    try:
        b["torch_encoder"] = torch_encoder(args, runner, "bf16")
    except NA as ex:
        b["torch_encoder"] = na(str(ex))
    if not images:
        b["torch_logits"] = na("no image set")
    else:
        rec, out = runner.capture("torch_logits_bf16",
                                  [args.python, os.path.abspath(__file__), "--child", "torch-logits",
                                   "--model", args.model, "--images", res["_folder_for_bf16"], "--n", len(images),
                                   "--threads", args.threads, "--batch", args.batch, "--kit", args.kit],
                                  kind="torch_logits")
        if rec["rc"] != 0:
            b["torch_logits"] = na(f"torch logits failed: {rec['error']}")
        else:
            js = first_json(out)
            b["torch_logits"] = compare_logits(dict(zip(js["files"], js["f32"])), dict(zip(js["files"], js["bf16"])),
                                               args.tie_eps)


def step_cache(args, runner, caps, res, sizes, probe_a, probe_b):
    c = res["cache"]
    if not caps["cache_dir"]:
        for n in sizes:
            c[str(n)] = na("binary lacks run --cache-dir")
        return
    for n in sizes:
        folder = res["end_to_end"].get(str(n), {}).get("images")
        if not folder:
            c[str(n)] = na("no image set")
            continue
        cache = os.path.join(args.work, f"cache-{n}")
        if os.path.isdir(cache):
            shutil.rmtree(cache)
        os.makedirs(cache)
        recs = {}
        for name, probe in (("A", probe_a), ("B", probe_b)):
            out = os.path.join(args.work, "out", f"cache-{n}-{name}")
            if os.path.isdir(out):
                shutil.rmtree(out)
            cmd = [args.bin, "--threads", args.threads, "run", "--probe", probe, "--dataset",
                   os.path.join(folder, "labels.csv"), "--model", args.model, "--out", out, "--batch", args.batch,
                   "--cache-dir", cache]
            rec = runner.run(f"cache_{n}_{name}", cmd, kind=f"rust_cache_{name}")
            if rec["rc"] == 0:
                try:
                    rec["embedding_cache"] = json.load(open(os.path.join(out, "run.json"))).get("embedding_cache")
                except (OSError, ValueError) as ex:
                    rec["embedding_cache"] = na(str(ex))
            recs[name] = rec
        if recs["A"]["rc"] != 0 or recs["B"]["rc"] != 0:
            c[str(n)] = na("; ".join(r.get("error", "") for r in recs.values() if r["rc"] != 0))
            c[f"{n}_raw"] = recs
            continue
        ec = recs["B"].get("embedding_cache")
        ratio = recs["A"]["wall_s"] / recs["B"]["wall_s"]
        misses = ec.get("misses") if isinstance(ec, dict) else None
        c[str(n)] = {"a_wall_s": recs["A"]["wall_s"], "b_wall_s": recs["B"]["wall_s"], "ratio": ratio,
                     "a_cache": recs["A"].get("embedding_cache"), "b_cache": ec,
                     "hits": ec.get("hits") if isinstance(ec, dict) else None, "misses": misses,
                     "a_rss_mib": recs["A"]["peak_rss_mib"], "b_rss_mib": recs["B"]["peak_rss_mib"],
                     "pass": ratio >= 20 and misses == 0, "raw": recs}


# ---------------------------------------------------------------- the report

def abbreviate_images(command):
    """A command line with long runs of image paths cut to the first two and a count."""
    parts = command.split(" ")
    images = [i for i, p in enumerate(parts) if re.search(r"\.(jpe?g|png|webp)$", p, re.I)]
    if len(images) <= 3:
        return command
    kept = parts[:images[0] + 2] + [f"... ({len(images) - 2} more images)"] + parts[images[-1] + 1:]
    return " ".join(kept)


def render(args, res, caps):
    m, L = res["machine"], []
    L.append("# clip-audit vs Python reference pipeline")
    L.append("")
    L.append(f"- date: {res['date']}")
    L.append(f"- cpu: {m.get('cpu')} ({m.get('usable_cpus')} usable of {m.get('logical_cpus')} logical CPUs; "
             f"AVX-512 {f(m.get('avx512f'))}, AMX {f(m.get('amx_tile'))}; {m.get('mem_total_gib')} GiB)")
    L.append(f"- threads: {args.threads}; batch: {args.batch}; reps: {args.reps} (alternating, medians); "
             f"min idle before each timed child: {args.min_idle}")
    L.append(f"- model: `{args.model}`; images: `{args.images}`; sizes: {', '.join(map(str, res['sizes']))}")
    L.append(f"- clip-audit: `{args.bin}` ({res.get('bin_version', '?')}); capabilities from --help: "
             + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in caps.items()))
    L.append(f"- Python: `{args.python}` ({res.get('torch_version', '?')}); kit: `{args.kit}`")
    pc = res.get("probe_check", {})
    if pc:
        L.append(f"- probe prompts vs common.PROMPTS: `{pc.get('probe')}` "
                 f"{'equal' if pc.get('equal_to_common_PROMPTS') else 'DIFFER'}"
                 + ("" if pc.get("equal_to_common_PROMPTS") or not pc.get("shipped_prompts") else
                    f" (e.g. {pc['shipped_prompts'][0]!r} vs {res['prompts'][0]!r})")
                 + f"; runs use the probe {pc.get('used')}")
    L.append("")
    L.append("Commands (first of each kind):")
    L.append("")
    L.append("```")
    for k, v in res["commands"].items():
        L.append(f"# {k}\n{abbreviate_images(v)}")
    L.append("```")

    # end to end
    L.append("\n## End to end (images/s = N / median wall, wall = process start to exit)\n")
    rows = []
    for n in res["sizes"]:
        s = res["end_to_end"].get(str(n), {})
        if isinstance(s.get("error"), str):
            rows.append([n, s["error"], "", "", "", "", ""])
            continue
        def ips(who):
            v = s.get(f"{who}_img_per_s")
            errs = [x.get("error", "") for x in s.get(who, []) if x["rc"] != 0]
            return f(v, 2) if v is not None or not errs else na(errs[0][:120])
        rows.append([n, ips("python"), ips("rust"), f(s.get("ratio"), 2, "x"),
                     f"≥ {s.get('target')}x", verdict(s.get("pass")),
                     f"{s.get('python_clean_reps', 0)}/{len(s.get('python', []))} · "
                     f"{s.get('rust_clean_reps', 0)}/{len(s.get('rust', []))}"])
    L.append(table(["images", "Python img/s", "clip-audit img/s", "ratio", "target", "result",
                    "clean reps (Py · clip-audit)"], rows))
    if not caps["no_cache"]:
        L.append("\nThis binary has no `run --no-cache`; its runs were timed without it.")

    # RSS
    L.append("\n## Peak memory (median peak RSS over reps, MiB)\n")
    rows, rss_r, rss_p = [], {}, {}
    for n in res["sizes"]:
        s = res["end_to_end"].get(str(n), {})
        pr, rr = s.get("python_median_rss_mib"), s.get("rust_median_rss_mib")
        rss_r[n], rss_p[n] = rr, pr
        rows.append([n, f(pr, 0), f(rr, 0), verdict(None if pr is None or rr is None else rr <= pr)])
    L.append(table(["images", "Python RSS", "clip-audit RSS", "clip-audit ≤ Python"], rows))
    lo, hi = min(res["sizes"]), max(res["sizes"])
    if lo != hi and rss_r.get(lo) and rss_r.get(hi):
        growth = 100.0 * (rss_r[hi] - rss_r[lo]) / rss_r[lo]
        res["rss_growth_pct"] = growth
        L.append(f"\nclip-audit RSS at {hi} images vs {lo}: {growth:+.1f}% (target ≤ +10%): "
                 f"{verdict(growth <= 10.0)}"
                 + (f"; Python: {100.0 * (rss_p[hi] - rss_p[lo]) / rss_p[lo]:+.1f}%"
                    if rss_p.get(lo) and rss_p.get(hi) else ""))
    else:
        L.append("\nRSS flatness: n/a (needs two sizes)")

    # encoder
    e = res["encoder"]
    L.append("\n## Image encoder only (random input, f32)\n")
    rows = []
    pk = m.get("f32_peak_gflops")
    rb = e.get("rust_f32")
    if isinstance(rb, dict):
        enc = rb.get("encoder", {})
        pct = e.get("rust_f32_pct_of_peak")
        rows.append(["clip-audit", f(enc.get("images_per_s"), 1), f(enc.get("gflops"), 1), f(pct, 1, "%"),
                     f"≥ 80%: {verdict(None if pct is None else pct >= 80)}", enc.get("kernel", "")])
    else:
        rows.append(["clip-audit", rb, "", "", "", ""])
    tb = e.get("torch_f32")
    if isinstance(tb, dict):
        g = tb.get("gflops_analytic")
        rows.append(["PyTorch", f(tb.get("img_per_s_median"), 1), f(g, 1) + " (analytic)",
                     f(100.0 * g / pk, 1, "%") if g and pk else "n/a", "", f"attn={tb.get('attn')}"])
    else:
        rows.append(["PyTorch", tb, "", "", "", ""])
    L.append(table(["encoder", "img/s", "GFLOP/s", "% of f32 peak", "target", "kernel / notes"], rows))
    tg = m.get("torch_gemm")
    L.append(f"\nf32 peak = max(torch GEMM {f(m.get('torch_gemm_gflops'), 1)} GFLOP/s "
             f"[{', '.join(f'{k}: {v}' for k, v in tg.items()) if isinstance(tg, dict) else tg}], "
             f"clip-audit GEMM {f(m.get('clip_audit_gemm_gflops'), 1)} GFLOP/s "
             f"[{m.get('clip_audit_gemm_shape') or 'n/a'}]) = **{f(pk, 1)} GFLOP/s**. "
             f"Analytic encoder cost: {f(e.get('analytic_gflop_per_image'), 3)} GFLOP/image.")

    # bf16
    b = res["bf16"]
    nb = len(res.get("_images_for_bf16") or [])
    L.append(f"\n## bf16 (encoder on random input; logits on the first {nb} images of the {res['agreement'].get('size')} "
             f"set, each pipeline vs itself in f32)\n")
    rows = []
    rb16 = b.get("rust_bench")
    f32ips = rb.get("encoder", {}).get("images_per_s") if isinstance(rb, dict) else None
    rl = b.get("rust_logits")
    if isinstance(rb16, dict):
        enc = rb16.get("encoder", {})
        ips = enc.get("images_per_s")
        r1 = [f(ips, 1), f(ips / f32ips, 2, "x") if ips and f32ips else "n/a",
              f"{enc.get('kernel', '?')}; amx={rb16.get('amx')}; dtype={enc.get('dtype')}"]
    else:
        r1 = [rb16, "", ""]
    r1 += ([f(rl["top1_agree_pct"], 1, "%") + f" ({rl['top1_agree']}/{rl['n']})", f(rl["max_abs_diff"], 5)]
           if isinstance(rl, dict) else [rl, ""])
    rows.append(["clip-audit --dtype bf16"] + r1)
    tb16, tl = b.get("torch_encoder"), b.get("torch_logits")
    t32ips = tb.get("img_per_s_median") if isinstance(tb, dict) else None
    if isinstance(tb16, dict):
        ips = tb16.get("img_per_s_median")
        r2 = [f(ips, 1), f(ips / t32ips, 2, "x") if ips and t32ips else "n/a", "torch.autocast(cpu, bfloat16)"]
    else:
        r2 = [tb16, "", ""]
    r2 += ([f(tl["top1_agree_pct"], 1, "%") + f" ({tl['top1_agree']}/{tl['n']})", f(tl["max_abs_diff"], 5)]
           if isinstance(tl, dict) else [tl, ""])
    rows.append(["PyTorch bf16 autocast"] + r2)
    L.append(table(["pipeline", "encoder img/s", "vs own f32", "kernel", "top-1 agreement with f32",
                    "max abs logit error"], rows))

    # cache
    L.append("\n## Embedding cache (fresh --cache-dir; run A = race probe, run B = race+child probe, same images)\n")
    rows = []
    for n in res["sizes"]:
        c = res["cache"].get(str(n))
        if isinstance(c, dict):
            rows.append([n, f(c["a_wall_s"], 2), f(c["b_wall_s"], 3), f(c["ratio"], 1, "x"),
                         f"{f(c['hits'], 0)} / {f(c['misses'], 0)}", "≥ 20x, 0 misses", verdict(c["pass"])])
        else:
            rows.append([n, c, "", "", "", "≥ 20x, 0 misses", "n/a"])
    L.append(table(["images", "run A wall s", "run B wall s", "A / B", "B cache hits / misses", "target", "result"], rows))

    # agreement
    a = res["agreement"]
    L.append(f"\n## Agreement with the Python pipeline (f32)\n")
    lg = a.get("logits")
    rows = []
    if isinstance(lg, dict):
        rows.append([f"classify logits vs zeroshot.py --logits-out ({a['size']} images)", f(lg["max_abs_diff"], 6),
                     f"{lg['top1_agree']}/{lg['n']} ({lg['top1_agree_pct']:.1f}%)",
                     lg["near_tie_disagreements"], lg["other_disagreements"],
                     f"max ≤ {args.logit_tol:g}, 0 other: {verdict(lg.get('pass'))}"])
    else:
        rows.append([f"classify logits ({a.get('size')} images)", lg, "", "", "", ""])
    for n in res["sizes"]:
        p = res["end_to_end"].get(str(n), {}).get("predictions")
        if isinstance(p, dict):
            rows.append([f"run predicted_label vs zeroshot.py pred ({n} images)", "",
                         f"{p['same']}/{p['n']} ({p['same_pct']:.1f}%)", p["near_tie_diffs"], p["other_diffs"],
                         verdict(p["other_diffs"] == 0 and p["missing_in_rust"] == 0)])
        else:
            rows.append([f"run predicted_label ({n} images)", "", p, "", "", ""])
    L.append(table(["comparison", "max abs logit diff", "top-1 same", f"near-ties (gap < {args.tie_eps:g})",
                    "other differences", "result"], rows))

    # raw
    L.append("\n<details><summary>Raw per-rep numbers</summary>\n")
    rows = []
    for n in res["sizes"]:
        s = res["end_to_end"].get(str(n), {})
        for who in ("python", "rust"):
            for x in s.get(who, []):
                rows.append([x["tag"], x["rc"], f(x["wall_s"], 3), f(x.get("img_per_s"), 2), f(x["own_cpu_s"], 2),
                             f(x["peak_rss_mib"], 0), f(x["other_cpu_s"], 2), f(x["clean"]), f(x["idle_before"], 3)])
    for n in res["sizes"]:
        c = res["cache"].get(str(n))
        raw = c.get("raw") if isinstance(c, dict) else res["cache"].get(f"{n}_raw")
        for x in (raw or {}).values():
            rows.append([x["tag"], x["rc"], f(x["wall_s"], 3), "", f(x["own_cpu_s"], 2), f(x["peak_rss_mib"], 0),
                         f(x["other_cpu_s"], 2), f(x["clean"]), f(x["idle_before"], 3)])
    L.append(table(["run", "rc", "wall s", "img/s", "own CPU s", "peak RSS MiB", "others' CPU s", "clean", "idle before"],
                   rows))
    for label, obj in (("clip-audit bench f32", e.get("rust_f32")), ("clip-audit bench bf16", b.get("rust_bench")),
                       ("PyTorch encoder f32", e.get("torch_f32")), ("PyTorch encoder bf16", b.get("torch_encoder"))):
        if isinstance(obj, dict):
            L.append(f"\n{label}: `{json.dumps({k: v for k, v in obj.items() if k != '_proc'})}`")
    L.append(f"\nAll numbers: `{os.path.splitext(args.out)[0]}.json`; child logs: `{os.path.join(args.work, 'logs')}`.")
    L.append("\n</details>\n")
    return "\n".join(L)


# ---------------------------------------------------------------- main

def capabilities(args, runner):
    def help_of(*sub):
        try:
            return subprocess.run([args.bin, *sub, "--help"], capture_output=True, text=True, timeout=60).stdout
        except OSError:
            return ""
    run_h, bench_h, cls_h = help_of("run"), help_of("bench"), help_of("classify")
    caps = {"no_cache": "--no-cache" in run_h, "cache_dir": "--cache-dir" in run_h,
            "bench_json": "--encoder-only" in bench_h and "--format" in bench_h, "bench_dtype": "--dtype" in bench_h,
            "classify_dtype": "--dtype" in cls_h}
    if args.skip_new_flags:
        caps = {k: False for k in caps}
    return caps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "clip-audit"))
    ap.add_argument("--model", default=os.path.join(CLIPREF_HOME, "models", "vitb32"))
    ap.add_argument("--images", default=os.path.join(CLIPREF_HOME, "images"))
    ap.add_argument("--sizes", default="256,2048")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--work", default="/tmp/clip-audit-bench")
    ap.add_argument("--out", default=os.path.join(REPO, "reports", "bench", "bench-vs-python.md"))
    ap.add_argument("--min-idle", type=float, default=0.9, help="0 = do not wait")
    ap.add_argument("--max-wait", type=float, default=900, help="seconds to wait for idle before running anyway")
    ap.add_argument("--python", default=default_python(), help="interpreter with torch + transformers")
    ap.add_argument("--kit", default=default_kit(), help="the Python reference kit (shared/reference)")
    ap.add_argument("--probe", default=os.path.join(REPO, "probes", "clip-paper-race.toml"))
    ap.add_argument("--probe-b", default=None, help="probe for the cache re-run (default: probes/clip-paper-child.toml "
                                                    "or probes/clip-paper-race-child.toml)")
    ap.add_argument("--probe-as-is", action="store_true",
                    help="use --probe even if its prompts differ from common.PROMPTS (default: a matched copy)")
    ap.add_argument("--encoder-reps", type=int, default=5)
    ap.add_argument("--bf16-n", type=int, default=64)
    ap.add_argument("--tie-eps", type=float, default=1e-4)
    ap.add_argument("--logit-tol", type=float, default=1e-4)
    ap.add_argument("--timeout", type=float, default=3600, help="per child process, seconds")
    ap.add_argument("--skip-new-flags", action="store_true",
                    help="act as if the binary lacked --no-cache/--cache-dir/bench --format json/--dtype")
    ap.add_argument("--skip", default="", help="comma list of steps to skip: e2e,encoder,bf16,cache,agreement")
    ap.add_argument("--child", choices=["torch-encoder", "torch-logits"], help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="f32", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=64, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "torch-encoder":
        return child_torch_encoder(args)
    if args.child == "torch-logits":
        return child_torch_logits(args)

    for k in ("bin", "model", "images", "work", "out", "kit", "python", "probe"):
        v = getattr(args, k)
        if k != "python" or os.sep in v:
            setattr(args, k, os.path.abspath(v))
    if args.probe_b is None:
        cands = [os.path.join(REPO, "probes", p) for p in ("clip-paper-child.toml", "clip-paper-race-child.toml")]
        args.probe_b = next((p for p in cands if os.path.isfile(p)), cands[0])
    args.probe_b = os.path.abspath(args.probe_b)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    skip = set(x.strip() for x in args.skip.split(",") if x.strip())
    os.makedirs(args.work, exist_ok=True)
    sys.path.insert(0, args.kit)
    from common import PROMPTS  # noqa: E402  (the kit's prompt list, stdlib only)

    runner = Runner(args)
    caps = capabilities(args, runner)
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "sizes": sizes,
           "args": {k: v for k, v in vars(args).items() if k not in ("child", "dtype", "n")}, "capabilities": caps,
           "machine": {}, "end_to_end": {}, "encoder": {}, "bf16": {}, "cache": {}, "agreement": {},
           "prompts": PROMPTS, "commands": runner.commands}
    try:
        res["bin_version"] = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError as ex:
        res["bin_version"] = f"cannot run: {ex}"
    try:
        res["torch_version"] = "torch " + subprocess.run(
            [args.python, "-c", "import torch, transformers; print(torch.__version__, 'transformers', transformers.__version__)"],
            capture_output=True, text=True).stdout.strip()
    except OSError as ex:
        res["torch_version"] = f"cannot run: {ex}"
    labels_file = os.path.join(args.work, "prompts.txt")
    with open(labels_file, "w") as fh:
        fh.write("\n".join(PROMPTS) + "\n")

    def guarded(name, fn, *a):
        print(f"[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)
        try:
            fn(*a)
        except Exception as ex:  # noqa: BLE001 -- one failing part must not end the run
            res.setdefault("errors", {})[name] = f"{type(ex).__name__}: {ex}"
            print(f"  {name} failed: {type(ex).__name__}: {ex}", file=sys.stderr, flush=True)

    probes = {"a": args.probe, "b": args.probe_b}

    def do_probes():
        probes["a"], probes["b"] = match_probes(args, runner, PROMPTS, res)

    def do_images():
        for n in sizes:
            s = res["end_to_end"].setdefault(str(n), {"n": n, "python": [], "rust": []})
            try:
                s["images"], s["images_source"] = prepare_images(args, runner, n)
                # warm the page cache so the first timed run does not pay for cold reads
                for r in read_labels(os.path.join(s["images"], "labels.csv")):
                    open(os.path.join(s["images"], r["file"]), "rb").read()
            except NA as ex:
                s["error"] = na(str(ex))
        for name in os.listdir(args.model):
            p = os.path.join(args.model, name)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    while fh.read(1 << 24):
                        pass

    guarded("probes", do_probes)
    guarded("images", do_images)
    guarded("machine", step_machine, args, runner, caps, res)
    if "encoder" not in skip:
        guarded("encoder", step_encoder, args, runner, caps, res)
    if "e2e" not in skip:
        guarded("end_to_end", step_end_to_end, args, runner, caps, res, sizes, probes["a"])
        guarded("predictions", step_predictions, args, res, sizes)
    if "agreement" not in skip:
        guarded("agreement", step_agreement, args, runner, res, sizes, labels_file)
    if "bf16" not in skip:
        guarded("bf16", step_bf16, args, runner, caps, res, labels_file)
    if "cache" not in skip:
        guarded("cache", step_cache, args, runner, caps, res, sizes, probes["a"], probes["b"])

    md = render(args, res, caps)
    if res.get("errors"):
        md += "\n## Steps that failed\n\n" + "\n".join(f"- {k}: {v}" for k, v in res["errors"].items()) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(portable(md))
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        fh.write(portable(json.dumps({k: v for k, v in res.items() if not k.startswith("_")},
                                     indent=1, default=str)))
    print(md)


def portable(text):
    """The report without this machine's paths: the checkout as `.`, the home folder as `~`,
    the reference kit as `shared/reference`, so committed reports name no machine."""
    for path, name in ((os.path.join(os.path.dirname(REPO), "shared", "reference"), "shared/reference"),
                       (REPO + os.sep, ""), (REPO, "."), (os.path.expanduser("~"), "~")):
        text = text.replace(path, name)
    return text


if __name__ == "__main__":
    main()
