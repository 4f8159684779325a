#!/usr/bin/env python3
"""clip-audit vs transformers on a SigLIP B/16 checkpoint, end to end, side by side in one run.

  python3 scripts/bench-siglip-vs-python.py [--bin target/release/clip-audit] [--sizes 256]
      [--reps 3] [--threads 2] [--batch 32] [--work /tmp/clip-audit-siglip-bench]
      [--out reports/bench/siglip-vs-python.md] [--min-idle 0.9]

Run it from the repository root. It needs only the standard library itself; the Python side runs
scripts/siglip_zeroshot.py under --python (default: the reference kit's venv), and it reuses
scripts/bench-vs-python.py's process runner (wall = process start to exit, peak RSS, waiting for
an idle machine first) and the kit's make_images.py.

  1. checkpoint: `siglip_zeroshot.py build` writes a random-weight SigLIP B/16 (config.json,
     model.safetensors, spiece.model, preprocessor_config.json) in --work, once;
  2. images: make_images.py --n N per size (FairFace-style labels.csv);
  3. end to end, per size: `siglip_zeroshot.py classify` (SiglipModel + SiglipTokenizer +
     SiglipImageProcessor, PIL) and `clip-audit run --no-cache --probe probes/clip-paper-race.toml`
     on the same folder, alternating, --reps each; medians; ratio = clip-audit img/s / Python
     img/s (target >= 1.2x);
  4. agreement: predicted label per image, clip-audit vs Python.
Writes --out (Markdown) and the raw results beside it (.json).
"""
import argparse
import csv
import datetime
import importlib.util
import json
import os
import platform
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("bvp", os.path.join(REPO, "scripts", "bench-vs-python.py"))
bvp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bvp)


def predictions(path, column):
    with open(path, newline="") as f:
        return {os.path.basename(r.get("file") or r["image"]): r[column] for r in csv.DictReader(f)}


def end_to_end(args, runner, model, folder, n):
    out = {"python": [], "rust": []}
    for r in range(1, args.reps + 1):
        for who in (("python", "rust") if r % 2 else ("rust", "python")):
            d = os.path.join(args.work, "out", f"{who}-{n}-r{r}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            if who == "python":
                cmd = [args.python, os.path.join(REPO, "scripts", "siglip_zeroshot.py"), "classify",
                       "--model", model, "--images", folder, "--labels", os.path.join(folder, "labels.csv"),
                       "--out", os.path.join(d, "preds.csv"), "--batch", args.batch, "--threads", args.threads]
            else:
                cmd = [args.bin, "--threads", args.threads, "run", "--probe",
                       os.path.join(REPO, "probes", "clip-paper-race.toml"), "--dataset",
                       os.path.join(folder, "labels.csv"), "--model", model, "--out", d, "--batch", args.batch,
                       "--predictions-csv", "--no-cache"]
            rec = runner.run(f"{who}_{n}_r{r}", cmd, kind=who)
            rec["out"] = d
            rec["img_per_s"] = n / rec["wall_s"] if rec["rc"] == 0 else None
            out[who].append(rec)
            print(f"  {rec['tag']}: rc {rec['rc']}, wall {rec['wall_s']:.2f} s, {bvp.f(rec['img_per_s'], 2)} img/s, "
                  f"RSS {rec['peak_rss_mib']:.0f} MiB, other CPU {rec['other_cpu_s']:.2f} s", file=sys.stderr)
    for who in ("python", "rust"):
        ok = [x for x in out[who] if x["rc"] == 0]
        out[f"{who}_median_wall_s"] = bvp.med([x["wall_s"] for x in ok])
        out[f"{who}_img_per_s"] = n / out[f"{who}_median_wall_s"] if ok else None
        out[f"{who}_median_rss_mib"] = bvp.med([x["peak_rss_mib"] for x in ok])
    if out["rust_img_per_s"] and out["python_img_per_s"]:
        out["ratio"] = out["rust_img_per_s"] / out["python_img_per_s"]
    out["agreement"] = agreement(out)
    return out


def agreement(out):
    """Share of images whose predicted label is the same in clip-audit's and Python's first run."""
    py = [x for x in out["python"] if x["rc"] == 0]
    rs = [x for x in out["rust"] if x["rc"] == 0]
    if not py or not rs:
        return None
    p = predictions(os.path.join(py[0]["out"], "preds.csv"), "pred")
    r = predictions(os.path.join(rs[0]["out"], "predictions.csv"), "predicted_label")
    same = sum(p[k] == r.get(k) for k in p)
    return {"images": len(p), "same": same}


def render(args, res):
    L = ["# clip-audit vs transformers: SigLIP B/16 end to end", "",
         f"- date: {res['date']}; machine: {res['cpu']}, {os.cpu_count()} cores; threads {args.threads}, "
         f"batch {args.batch}, {args.reps} alternating runs per side, medians",
         "- model: random-weight SigLIP B/16 (`google/siglip-base-patch16-224`'s shapes, 64 text positions, "
         "SentencePiece `spiece.model`), written by `scripts/siglip_zeroshot.py build`",
         "- Python: `scripts/siglip_zeroshot.py classify` (transformers SiglipModel + SiglipTokenizer + "
         "SiglipImageProcessor, PIL); clip-audit: `run --no-cache` with `probes/clip-paper-race.toml`",
         "- wall = process start to exit (imports, model load, 21 prompts, decode, preprocess, encode, write)", "",
         "| images | Python s | clip-audit s | Python img/s | clip-audit img/s | ratio | peak RSS Python / clip-audit MiB | same prediction |",
         "|---|---|---|---|---|---|---|---|"]
    for n, s in res["sizes"].items():
        a = s.get("agreement") or {}
        L.append(f"| {n} | {bvp.f(s['python_median_wall_s'], 2)} | {bvp.f(s['rust_median_wall_s'], 2)} | "
                 f"{bvp.f(s['python_img_per_s'], 2)} | {bvp.f(s['rust_img_per_s'], 2)} | "
                 f"**{bvp.f(s.get('ratio'), 2, '×')}** | {bvp.f(s['python_median_rss_mib'], 0)} / "
                 f"{bvp.f(s['rust_median_rss_mib'], 0)} | {a.get('same', 'n/a')} of {a.get('images', 'n/a')} |")
    L += ["", "Every run:", "", "| run | rc | wall s | img/s | peak RSS MiB | others' CPU s |", "|---|---|---|---|---|---|"]
    for s in res["sizes"].values():
        for rec in s["python"] + s["rust"]:
            L.append(f"| {rec['tag']} | {rec['rc']} | {rec['wall_s']:.2f} | {bvp.f(rec['img_per_s'], 2)} | "
                     f"{rec['peak_rss_mib']:.0f} | {rec['other_cpu_s']:.2f} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "clip-audit"))
    ap.add_argument("--python", default=bvp.default_python())
    ap.add_argument("--kit", default=bvp.default_kit())
    ap.add_argument("--sizes", default="256")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--batch", default="32")
    ap.add_argument("--work", default="/tmp/clip-audit-siglip-bench")
    ap.add_argument("--out", default=os.path.join(REPO, "reports", "bench", "siglip-vs-python.md"))
    ap.add_argument("--min-idle", type=float, default=0.9)
    ap.add_argument("--max-wait", type=float, default=120)
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    runner = bvp.Runner(args)
    model = os.path.join(args.work, "model")
    if not os.path.isfile(os.path.join(model, "model.safetensors")):
        rec = runner.run("build", [args.python, os.path.join(REPO, "scripts", "siglip_zeroshot.py"), "build",
                                   "--out", model], wait=False)
        if rec["rc"] != 0:
            sys.exit(f"building the checkpoint failed: {rec['error']}")
    res = {"date": datetime.date.today().isoformat(), "cpu": bvp_cpu(), "sizes": {}}
    for n in [int(x) for x in args.sizes.split(",")]:
        args.images = os.path.join(args.work, f"images-{n}")
        if not os.path.isfile(os.path.join(args.images, "labels.csv")):
            rec = runner.run(f"make_images_{n}", [args.python, "make_images.py", "--n", n, "--out", args.images],
                             cwd=args.kit, wait=False)
            if rec["rc"] != 0:
                sys.exit(f"make_images.py failed: {rec['error']}")
        res["sizes"][str(n)] = end_to_end(args, runner, model, args.images, n)
    text = render(args, res)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(text)


def bvp_cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
