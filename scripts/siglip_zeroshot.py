"""Python peer of `clip-audit run` for SigLIP: transformers' SiglipModel + SiglipTokenizer +
SiglipImageProcessor (PIL backend), written the way a transformers user would. Used by
scripts/bench-siglip-vs-python.py as the speed and output reference; never by the tests.

  python siglip_zeroshot.py build --out DIR [--seed 0]
      writes a random-weight SigLIP B/16 checkpoint (google/siglip-base-patch16-224's shapes,
      vocabulary 32000, 64 text positions) with save_pretrained (config.json, model.safetensors),
      the SentencePiece spiece.model of tests/fixtures/tiny-siglip-spiece and a
      preprocessor_config.json (SiglipImageProcessor, 224x224, bicubic, mean/std 0.5)
  python siglip_zeroshot.py classify --model DIR --images DIR --labels CSV --out preds.csv
      [--batch 32] [--threads 2]
      encodes the 21 CLIP-paper prompts (the kit's common.PROMPTS, padded to 64), then per batch:
      PIL open -> processor -> get_image_features -> L2 norm -> exp(logit_scale)*cos + logit_bias ->
      sigmoid -> argmax; writes one row per image (file, pred, prob) and <out stem>.timing.json.
"""
import argparse
import csv
import json
import os
import shutil
import sys
import time

T0 = time.perf_counter()
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipTokenizer  # noqa: E402

T_IMPORT = time.perf_counter() - T0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kit_prompts():
    """The 21 prompts and labels of the reference kit's common.py."""
    kit = os.environ.get("CLIPREF_KIT") or os.path.join(REPO, "..", "shared", "reference")
    sys.path.insert(0, kit)
    from common import LABELS, PROMPTS  # noqa: E402
    return LABELS, PROMPTS


def build(args):
    torch.manual_seed(args.seed)
    config = SiglipConfig(
        text_config=dict(vocab_size=32000, max_position_embeddings=64, pad_token_id=1,
                         eos_token_id=3, bos_token_id=2),
        vision_config=dict(image_size=224, patch_size=16))
    model = SiglipModel(config).eval()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    shutil.copyfile(os.path.join(REPO, "tests", "fixtures", "tiny-siglip-spiece", "spiece.model"),
                    os.path.join(args.out, "spiece.model"))
    SiglipImageProcessorPil(size={"height": 224, "width": 224}).save_pretrained(args.out)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "SiglipTokenizer", "pad_token": "<pad>", "eos_token": "</s>",
                   "unk_token": "<unk>", "model_max_length": 64}, f)
    print(args.out)


def classify(args):
    torch.set_num_threads(args.threads)
    labels, prompts = kit_prompts()
    t = {"import_s": T_IMPORT}
    s = time.perf_counter()
    model = SiglipModel.from_pretrained(args.model).eval()
    tokenizer = SiglipTokenizer(os.path.join(args.model, "spiece.model"), pad_token="<pad>",
                                eos_token="</s>", unk_token="<unk>")
    processor = SiglipImageProcessorPil.from_pretrained(args.model)
    t["load_s"] = time.perf_counter() - s
    with open(args.labels, newline="") as f:
        rows = list(csv.DictReader(f))
    with torch.inference_mode():
        s = time.perf_counter()
        ids = tokenizer(prompts, padding="max_length", max_length=64, truncation=True,
                        return_tensors="pt")["input_ids"]
        text = model.get_text_features(input_ids=ids).pooler_output
        text = text / text.norm(dim=-1, keepdim=True)
        t["text_s"] = time.perf_counter() - s
        scale, bias = model.logit_scale.exp(), model.logit_bias
        preds, t_pre, t_enc = [], 0.0, 0.0
        for b in range(0, len(rows), args.batch):
            batch = rows[b:b + args.batch]
            s = time.perf_counter()
            images = [Image.open(os.path.join(args.images, r["file"])).convert("RGB") for r in batch]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            t_pre += time.perf_counter() - s
            s = time.perf_counter()
            image = model.get_image_features(pixel_values=pixels).pooler_output
            image = image / image.norm(dim=-1, keepdim=True)
            probs = torch.sigmoid(scale * image @ text.T + bias)
            top_p, top_i = probs.max(dim=-1)
            t_enc += time.perf_counter() - s
            for r, p, i in zip(batch, top_p.tolist(), top_i.tolist()):
                preds.append({"file": r["file"], "pred": labels[i], "prob": f"{p:.6f}"})
        t["preprocess_s"], t["image_encode_s"] = t_pre, t_enc
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "pred", "prob"])
        w.writeheader()
        w.writerows(preds)
    t["total_in_script_s"] = time.perf_counter() - T0
    t["n_images"], t["threads"], t["torch"] = len(preds), torch.get_num_threads(), torch.__version__
    with open(os.path.splitext(args.out)[0] + ".timing.json", "w") as f:
        json.dump(t, f, indent=1)
    print(json.dumps(t))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("classify")
    c.add_argument("--model", required=True)
    c.add_argument("--images", required=True)
    c.add_argument("--labels", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    build(args) if args.command == "build" else classify(args)


if __name__ == "__main__":
    main()
