#!/usr/bin/env python3
"""Build clip-audit's test fixtures and the reference values they are checked against.

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install -r scripts/requirements.txt
    /tmp/fx/bin/python scripts/make_fixtures.py            # writes tests/fixtures/

Everything is deterministic (seed 0). Tests never run Python: they read what this writes.

  tokenizer        OpenAI's BPE vocabulary (openai-clip 1.0.1 sdist from PyPI, sha256-checked)
                   turned into vocab.json/merges.txt, then tokenizer.json by transformers.
  tiny-clip/       random-weight CLIP in Hugging Face layout (text 32/64/2/4, vision 64/128/2/4,
                   image 64, patch 16, projection 32, quick_gelu, eos 49407), modern
                   preprocessor_config.json (shortest_edge 64, crop 64x64).
  tiny-clip-gelu/  the same shapes with hidden_act "gelu", layer_norm_eps 1e-6, the legacy eos id 2
                   (pooling at the largest id) and a legacy preprocessor_config.json
                   (feature_extractor_type, size 64, crop_size 64); config.json + weights only,
                   tests add the tokenizer.
  images/          small images of several sizes and modes (JPEG, PNG, WebP; gray, RGBA, 16-bit,
                   CMYK, EXIF-rotated, smaller than the crop).
  golden/tokens.json          ids of OpenAI's SimpleTokenizer (the reference for tokenization)
  golden/<model>.json         transformers outputs: pixel values, pooled and projected features,
                              normalised embeddings, logits, probabilities.
  golden/pixels224.safetensors  CLIPImageProcessor(use_fast=False) uint8 pixels (before rescale and
                              normalisation) at OpenAI's 224 setting, one [3,224,224] tensor per image.
  tiny-siglip/     random-weight SigLIP (transformers SiglipModel: text 64/128/2/4 with a 256-token
                   vocabulary and 64 positions, vision 64/128/2/4, image 64, patch 16,
                   gelu_pytorch_tanh, attention-pooling head, logit_bias) and the
                   preprocessor_config.json of SiglipImageProcessor (64x64, bilinear, mean/std 0.5).
  golden/tiny-siglip.json     transformers outputs for fixed token ids (padded to 64) and the
                              processor's pixels of images/: pooled features, normalised embeddings,
                              logits_per_image (exp(logit_scale)·cos + logit_bias), sigmoid probs.
  tiny-siglip-spiece/  tiny-siglip's files (copied) with a SentencePiece unigram spiece.model
                   (the `sentencepiece` package; <unk> 0, <pad> 1, <s> 2, </s> 3) instead of
                   tokenizer.json, as the google/siglip-* repositories ship.
  golden/tiny-siglip-spiece.json  transformers' SiglipTokenizer ids (canonicalised text, </s>,
                              padded with <pad> to 64) for the golden prompts.

  tiny-openclip/   random-weight OpenCLIP ViT written by open_clip_torch (`create_model(..., pretrained=None)`):
                   open_clip_config.json (model_cfg: embed 32, vision 64/2 layers/head_width 16/mlp 2,
                   image 64, patch 16; text 32/4 heads/2 layers/mlp 2; GELU; preprocess_cfg with
                   OpenAI mean/std, bicubic, shortest) and open_clip_model.safetensors; no tokenizer.json.
  golden/tiny-openclip.json   OpenCLIP's own outputs: its tokenizer's ids, its transform's pixels of
                              images/, encode_image/encode_text (unnormalised), normalised embeddings,
                              logits (exp(logit_scale)·cos) and softmax probs.

`--only siglip` rebuilds tiny-siglip/, tiny-siglip-spiece/ and their golden files alone, `--only
openclip` tiny-openclip/ and its golden file (the rest is left as it is).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
# transformers 5: CLIPImageProcessor is the torchvision backend; the PIL one is the reference
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

SDIST = "openai-clip-1.0.1.tar.gz"
SDIST_SHA256 = "cd40bf2f205c096c49524fcbff484339f793b52afd6e7ffad80a2fe108151721"
BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

RACES = ["white", "black", "indian", "east asian", "southeast asian", "middle eastern", "latino hispanic"]
LABELS = [f"{r} {g}" for r in RACES for g in ("man", "woman")] + [
    "animal", "gorilla", "chimpanzee", "orangutan", "thief", "criminal", "suspicious person"]

# Prompts whose ids must equal OpenAI's tokenizer: the 21 CLIP-paper labels in two templates, then
# punctuation, apostrophes, HTML entities, curly quotes, ligatures, white space and a long prompt.
EXTRA_PROMPTS = [
    "it's a dog's life, isn't it? 123 4.5",
    "A PHOTO of   a Thief!!",
    "a photo of a person (smiling), outdoors; blurry.",
    "Tom &amp; Jerry",
    "fish &amp;amp; chips",
    "&lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;single&#39;",
    "don\u2019t \u201cquote\u201d me",
    "\ufb01ne \ufb02ower",
    "naïve café résumé",
    "  leading and trailing \t spaces \n ",
    "emoji 😀 test ✓",
    "中文 テスト",
    "a " * 100 + "end",
]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def openai_tokenizer(work):
    """OpenAI's SimpleTokenizer module and BPE path, from the PyPI sdist."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                    "--no-binary", ":all:", "openai-clip==1.0.1", "-d", work], check=True)
    sdist = os.path.join(work, SDIST)
    assert sha256(sdist) == SDIST_SHA256, "openai-clip sdist checksum"
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if m.name.startswith("openai-clip-1.0.1/clip/")]
        tf.extractall(work, members=members, filter="data")
    clip_dir = os.path.join(work, "openai-clip-1.0.1", "clip")
    bpe = os.path.join(clip_dir, "bpe_simple_vocab_16e6.txt.gz")
    assert sha256(bpe) == BPE_SHA256, "BPE vocabulary checksum"
    sys.path.insert(0, clip_dir)
    import simple_tokenizer  # noqa: E402  (imported alone: clip/__init__ needs torch hub code)
    return simple_tokenizer, bpe


def build_tokenizer(st, bpe, out):
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1: 49152 - 256 - 2 + 1]]
    vocab = list(st.bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {v: i for i, v in enumerate(vocab)}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(encoder, f, ensure_ascii=False)
        with open(os.path.join(tmp, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
        tok = CLIPTokenizer.from_pretrained(tmp)
        tok.model_max_length = 77
        tok.save_pretrained(tmp)
        os.makedirs(out, exist_ok=True)
        data = open(os.path.join(tmp, "tokenizer.json"), "rb").read()
        open(os.path.join(out, "tokenizer.json"), "wb").write(data)
    return encoder


def openai_ids(ref, text, context=77):
    sot, eot = ref.encoder["<|startoftext|>"], ref.encoder["<|endoftext|>"]
    ids = [sot] + ref.encode(text) + [eot]
    if len(ids) > context:  # clip.tokenize(truncate=True)
        ids = ids[:context]
        ids[-1] = eot
    return ids


def tiny_config(act, eps, eos):
    return CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, hidden_act=act,
                         layer_norm_eps=eps, bos_token_id=49406, eos_token_id=eos, pad_token_id=1),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           image_size=64, patch_size=16, hidden_act=act, layer_norm_eps=eps),
        projection_dim=32)


def make_images(out):
    """Small images covering the decoder's cases; returns file names in a fixed order."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)

    def scene(w, h):
        y, x = np.mgrid[0:h, 0:w]
        a = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256], -1)
        a = a + rng.integers(-12, 13, size=a.shape)
        a[h // 4: h // 2, w // 3: 2 * w // 3] = rng.integers(0, 256, size=3)
        return np.clip(a, 0, 255).astype(np.uint8)

    files = []

    def save(name, im, **kw):
        im.save(os.path.join(out, name), **kw)
        files.append(name)

    save("square_448.jpg", Image.fromarray(scene(448, 448)), quality=90)
    save("wide_640x480.png", Image.fromarray(scene(640, 480)))
    save("tall_333x517_gray.png", Image.fromarray(scene(333, 517)).convert("L"))
    save("rgba_300x200.png", Image.fromarray(np.dstack([scene(300, 200), rng.integers(0, 256, (200, 300))
                                                        .astype(np.uint8)]), "RGBA"))
    g16 = (scene(120, 90)[..., 0].astype(np.uint16) * 257 + rng.integers(0, 200, (90, 120))).astype(np.uint16)
    save("gray16_120x90.png", Image.fromarray(g16))
    save("cmyk_200x150.jpg", Image.fromarray(scene(200, 150)).convert("CMYK"), quality=95)
    save("small_100x60.webp", Image.fromarray(scene(100, 60)), lossless=True)
    rotated = Image.fromarray(scene(240, 160))
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    save("exif_rot6_240x160.jpg", rotated, quality=92, exif=exif.tobytes())
    save("tiny_7x5.png", Image.fromarray(scene(7, 5)))
    return files


def load_reference_image(path):
    """What a reviewer sees: EXIF orientation applied (clip-audit does this; transformers does not)."""
    return ImageOps.exif_transpose(Image.open(path))


def golden_model(model_dir, tok_dir, images_dir, image_files, prompts, out_path):
    model = CLIPModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    proc = CLIPImageProcessorPil.from_pretrained(model_dir)
    tok = CLIPTokenizer.from_pretrained(tok_dir)
    pil = [load_reference_image(os.path.join(images_dir, f)) for f in image_files]
    pix = proc(images=pil, return_tensors="pt")["pixel_values"]
    enc = tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        img_feat = model.get_image_features(pixel_values=pix).pooler_output
        txt_feat = model.get_text_features(input_ids=enc["input_ids"]).pooler_output
        vis_pooled = model.vision_model(pixel_values=pix).pooler_output
        txt_pooled = model.text_model(input_ids=enc["input_ids"]).pooler_output
        out = model(input_ids=enc["input_ids"], pixel_values=pix)
    r = lambda t: np.round(t.double().numpy(), 9).tolist()  # noqa: E731
    data = {
        "model": os.path.basename(model_dir),
        "prompts": prompts,
        "input_ids": enc["input_ids"].tolist(),
        "images": image_files,
        "pixel_values": r(pix),
        "vision_pooler_output": r(vis_pooled),
        "text_pooler_output": r(txt_pooled),
        "image_features": r(img_feat),
        "text_features": r(txt_feat),
        "image_embeds": r(out.image_embeds),
        "text_embeds": r(out.text_embeds),
        "logits_per_image": r(out.logits_per_image),
        "probs": r(out.logits_per_image.softmax(-1)),
        "logit_scale": float(model.logit_scale.item()),
    }
    with open(out_path, "w") as f:
        json.dump(data, f)


SIGLIP_IMAGES = ["square_448.jpg", "wide_640x480.png", "tall_333x517_gray.png", "small_100x60.webp"]


def tiny_siglip(out, images_dir, image_files=SIGLIP_IMAGES):
    """A random-weight SiglipModel and its golden values (token ids are fixed, not tokenized)."""
    from transformers import SiglipConfig, SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    config = SiglipConfig(
        text_config=dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=64, layer_norm_eps=1e-6,
                         pad_token_id=1, bos_token_id=2, eos_token_id=3),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           image_size=64, patch_size=16, layer_norm_eps=1e-6))
    torch.manual_seed(2)
    model = SiglipModel(config).eval()
    with torch.no_grad():  # the init leaves the scale and bias at constants; make them tell
        model.logit_scale.fill_(float(np.log(9.0)))
        model.logit_bias.fill_(-3.5)
    d = os.path.join(out, "tiny-siglip")
    model.save_pretrained(d, safe_serialization=True)
    for extra in ("generation_config.json", "processor_config.json"):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    proc_config = {"do_convert_rgb": None, "do_normalize": True, "do_rescale": True, "do_resize": True,
                   "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
                   "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 0.00392156862745098,
                   "size": {"height": 64, "width": 64}}
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(proc_config, f, indent=2)
    proc = SiglipImageProcessorPil(**{k: v for k, v in proc_config.items()
                                      if k not in ("image_processor_type", "do_convert_rgb")})
    pil = [load_reference_image(os.path.join(images_dir, f)).convert("RGB") for f in image_files]
    pix = proc(images=pil, return_tensors="pt")["pixel_values"]
    # prompts of several lengths, each ending in the eos id, padded to 64 with the pad id
    rng = np.random.default_rng(0)
    ids = []
    for n in (1, 3, 7, 12, 63):
        body = rng.integers(4, 256, size=n).tolist() + [3]
        ids.append(body + [1] * (64 - len(body)))
    input_ids = torch.tensor(ids)
    pooled = lambda o: getattr(o, "pooler_output", o)  # noqa: E731
    with torch.inference_mode():
        txt = pooled(model.get_text_features(input_ids=input_ids))
        img = pooled(model.get_image_features(pixel_values=pix))
        o = model(input_ids=input_ids, pixel_values=pix)
    r = lambda t: np.round(t.double().numpy(), 9).tolist()  # noqa: E731
    data = {
        "model": "tiny-siglip",
        "input_ids": ids,
        "images": image_files,
        "pixel_values": r(pix),
        "text_features": r(txt),
        "image_features": r(img),
        "text_embeds": r(o.text_embeds),
        "image_embeds": r(o.image_embeds),
        "logits_per_image": r(o.logits_per_image),
        "probs": r(torch.sigmoid(o.logits_per_image)),
        "logit_scale": float(model.logit_scale.exp().item()),
        "logit_bias": float(model.logit_bias.item()),
    }
    data["tokens"] = siglip_tokenizer(d)
    with open(os.path.join(out, "golden", "tiny-siglip.json"), "w") as f:
        json.dump(data, f)


def siglip_tokenizer(model_dir):
    """A SigLIP 2-style tokenizer.json (SentencePiece-like BPE over `▁`-split words, 256 ids:
    <unk> 0, <pad> 1, <bos> 2, <eos> 3, then merges learnt from the label prompts), written into
    the model folder; returns transformers' ids for the golden prompts (padded to 64)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    corpus = [f"a photo of a {lab}." for lab in LABELS] * 4 + EXTRA_PROMPTS
    trainer = trainers.BpeTrainer(vocab_size=256, special_tokens=["<unk>", "<pad>", "<bos>", "<eos>"],
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    assert tok.get_vocab_size() <= 256, tok.get_vocab_size()
    tok.post_processor = processors.TemplateProcessing(single="$A <eos>", special_tokens=[("<eos>", 3)])
    path = os.path.join(model_dir, "tokenizer.json")
    tok.save(path)
    ref = PreTrainedTokenizerFast(tokenizer_file=path, unk_token="<unk>", pad_token="<pad>",
                                  bos_token="<bos>", eos_token="<eos>")
    prompts = [f"a photo of a {lab}." for lab in LABELS] + EXTRA_PROMPTS
    enc = ref(prompts, padding="max_length", max_length=64, truncation=True)
    return [{"text": p, "ids": ids} for p, ids in zip(prompts, enc["input_ids"])]


def siglip_spiece(out):
    """tiny-siglip-spiece/: tiny-siglip's config, weights and preprocessor config (copied) with a
    SentencePiece unigram `spiece.model` instead of tokenizer.json (what the google/siglip-*
    repositories ship; <unk> 0, <pad> 1, <s> 2, </s> 3, as the config's pad and eos ids say), trained
    on the label prompts; golden/tiny-siglip-spiece.json holds transformers' SiglipTokenizer ids
    (text canonicalised, `</s>` appended, padded with <pad> to 64) for the golden prompts."""
    import io
    import shutil
    import sentencepiece as spm
    from transformers import SiglipTokenizer

    src, d = os.path.join(out, "tiny-siglip"), os.path.join(out, "tiny-siglip-spiece")
    os.makedirs(d, exist_ok=True)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copyfile(os.path.join(src, name), os.path.join(d, name))
    corpus = [f"a photo of a {lab}." for lab in LABELS] * 4 + EXTRA_PROMPTS
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=buf, model_type="unigram", vocab_size=250,
        hard_vocab_limit=False, unk_id=0, pad_id=1, bos_id=2, eos_id=3, pad_piece="<pad>",
        bos_piece="<s>", eos_piece="</s>", num_threads=1, minloglevel=2)
    path = os.path.join(d, "spiece.model")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    ref = SiglipTokenizer(path, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    # angle-bracket text that is not one of SiglipTokenizer's special tokens is canonicalised
    # like any other punctuation (clip-audit refuses prompts holding </s>, <unk> or <pad>)
    prompts = [f"a photo of a {lab}." for lab in LABELS] + EXTRA_PROMPTS + [
        "a photo of a <s> dog", "a photo of a </S> thief", "<b>bold</b> <PAD>"]
    enc = ref(prompts, padding="max_length", max_length=64, truncation=True)
    data = {"model": "tiny-siglip-spiece",
            "tokens": [{"text": p, "ids": ids} for p, ids in zip(prompts, enc["input_ids"])]}
    with open(os.path.join(out, "golden", "tiny-siglip-spiece.json"), "w") as f:
        json.dump(data, f)


OPENCLIP_CFG = {
    "embed_dim": 32,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 16, "mlp_ratio": 2.0,
                   "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2,
                 "mlp_ratio": 2.0},
}


def tiny_openclip(out, images_dir, image_files=SIGLIP_IMAGES):
    """A random-weight OpenCLIP ViT in open_clip's own Hub layout, and OpenCLIP's outputs."""
    import open_clip
    from safetensors.torch import load_file

    work = tempfile.mkdtemp(prefix="clip-audit-openclip-")
    with open(os.path.join(work, "tiny-openclip.json"), "w") as f:
        json.dump(OPENCLIP_CFG, f)
    open_clip.add_model_config(os.path.join(work, "tiny-openclip.json"))
    torch.manual_seed(3)
    model = open_clip.create_model("tiny-openclip", pretrained=None).eval()
    with torch.no_grad():  # make the scale tell (the init is log(1/0.07))
        model.logit_scale.fill_(float(np.log(20.0)))
    d = os.path.join(out, "tiny-openclip")
    os.makedirs(d, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(d, "open_clip_model.safetensors"))
    preprocess_cfg = {"mean": list(model.visual.image_mean), "std": list(model.visual.image_std),
                      "interpolation": "bicubic", "resize_mode": "shortest"}
    with open(os.path.join(d, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": OPENCLIP_CFG, "preprocess_cfg": preprocess_cfg}, f, indent=2)
    # what open_clip itself loads from the folder, and its transform and tokenizer
    model, preprocess = open_clip.create_model_from_pretrained("local-dir:" + d)
    model = model.eval()
    for k, v in load_file(os.path.join(d, "open_clip_model.safetensors")).items():
        assert torch.equal(model.state_dict()[k], v), k
    tokenizer = open_clip.get_tokenizer("local-dir:" + d)
    pil = [load_reference_image(os.path.join(images_dir, f)).convert("RGB") for f in image_files]
    pix = torch.stack([preprocess(im) for im in pil])
    prompts = [f"a photo of a {lab}." for lab in LABELS] + ["don't stop, won't stop!", "a " * 90 + "end"]
    ids = tokenizer(prompts)
    with torch.inference_mode():
        img = model.encode_image(pix)
        txt = model.encode_text(ids)
        img_n = img / img.norm(dim=-1, keepdim=True)
        txt_n = txt / txt.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * img_n @ txt_n.T
    r = lambda t: np.round(t.double().numpy(), 9).tolist()  # noqa: E731
    data = {
        "model": "tiny-openclip",
        "prompts": prompts,
        "input_ids": ids.tolist(),
        "images": image_files,
        "pixel_values": r(pix),
        "image_features": r(img),
        "text_features": r(txt),
        "image_embeds": r(img_n),
        "text_embeds": r(txt_n),
        "logits_per_image": r(logits),
        "probs": r(logits.softmax(-1)),
        "logit_scale": float(model.logit_scale.exp().item()),
    }
    with open(os.path.join(out, "golden", "tiny-openclip.json"), "w") as f:
        json.dump(data, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    ap.add_argument("--only", choices=["siglip", "openclip"], help="rebuild one family's fixture alone")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    torch.set_num_threads(2)
    if args.only == "siglip":
        images_dir = os.path.join(out, "images")
        tiny_siglip(out, images_dir)
        siglip_spiece(out)
        print("tiny-siglip written to", out)
        return
    if args.only == "openclip":
        tiny_openclip(out, os.path.join(out, "images"))
        print("tiny-openclip written to", out)
        return
    work = tempfile.mkdtemp(prefix="clip-audit-fixtures-")

    st, bpe = openai_tokenizer(work)
    ref = st.SimpleTokenizer(bpe_path=bpe)
    tiny = os.path.join(out, "tiny-clip")
    encoder = build_tokenizer(st, bpe, tiny)
    assert encoder == ref.encoder

    # tokens: OpenAI's ids are the reference
    prompts = [f"a photo of a {lab}." for lab in LABELS]
    prompts += [f"a photo of {'an' if lab[0] in 'aeiou' else 'a'} {lab}" for lab in LABELS]
    prompts += EXTRA_PROMPTS
    os.makedirs(os.path.join(out, "golden"), exist_ok=True)
    with open(os.path.join(out, "golden", "tokens.json"), "w", encoding="utf-8") as f:
        json.dump([{"text": p, "ids": openai_ids(ref, p)} for p in prompts], f, ensure_ascii=False, indent=0)

    # models
    torch.manual_seed(0)
    m = CLIPModel(tiny_config("quick_gelu", 1e-5, 49407)).eval()
    m.save_pretrained(tiny, safe_serialization=True)
    with open(os.path.join(tiny, "preprocessor_config.json"), "w") as f:
        json.dump({"crop_size": {"height": 64, "width": 64}, "do_center_crop": True, "do_convert_rgb": True,
                   "do_normalize": True, "do_rescale": True, "do_resize": True,
                   "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
                   "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
                   "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 64}}, f, indent=2)
    gelu = os.path.join(out, "tiny-clip-gelu")
    torch.manual_seed(1)
    m = CLIPModel(tiny_config("gelu", 1e-6, 2)).eval()
    m.save_pretrained(gelu, safe_serialization=True)
    with open(os.path.join(gelu, "preprocessor_config.json"), "w") as f:
        json.dump({"crop_size": 64, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                   "feature_extractor_type": "CLIPFeatureExtractor",
                   "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 64}, f, indent=2)
    for d in (tiny, gelu):  # keep only what clip-audit reads
        for extra in ("generation_config.json", "processor_config.json"):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))

    # images and pixels
    images_dir = os.path.join(out, "images")
    files = make_images(images_dir)
    proc224 = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                 do_rescale=False, do_normalize=False)
    pixels = {}
    for name in files:
        pv = proc224(images=[load_reference_image(os.path.join(images_dir, name))], return_tensors="np")
        arr = np.asarray(pv["pixel_values"][0])
        assert np.all(arr == np.round(arr)), name
        pixels[name] = torch.from_numpy(arr.astype(np.uint8).copy())
    save_file(pixels, os.path.join(out, "golden", "pixels224.safetensors"))

    golden_prompts = [f"a photo of a {lab}." for lab in LABELS] + ["don't stop, won't stop!", "a " * 90 + "end"]
    for d in (tiny, gelu):
        golden_model(d, tiny, images_dir, files, golden_prompts,
                     os.path.join(out, "golden", os.path.basename(d) + ".json"))
    tiny_siglip(out, images_dir)
    siglip_spiece(out)
    tiny_openclip(out, images_dir)
    print("fixtures written to", out)


if __name__ == "__main__":
    main()
