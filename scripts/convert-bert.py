#!/usr/bin/env python3
"""Convert a BERT-family embedding model (a Hugging Face / sentence-transformers
folder: config.json, model.safetensors, tokenizer.json or vocab.txt, and
optionally modules.json + 1_Pooling/config.json) into a GGUF that spillway and
llama.cpp both load: llama.cpp's `bert` architecture keys and tensor names, the
WordPiece vocabulary in its "phantom space" form (word-initial pieces carry a
U+2581 prefix, continuation pieces lose their "##"), the special tokens, and
the pooling type from the sentence-transformers config.

    scripts/convert-bert.py MODEL_DIR OUT.gguf [--outtype f16|f32] [--name NAME]

Example (the test model):
    scripts/convert-bert.py "$(scripts/fetch-model.sh minilm)" minilm.gguf

Needs only `gguf` and `numpy` (pinned in tests/requirements.txt); safetensors
files are read directly (an 8-byte header length, a JSON header, raw data).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

try:
    import gguf
except ImportError:  # pragma: no cover - a clear message beats a traceback
    sys.exit("convert-bert: the 'gguf' package is missing (pip install -r tests/requirements.txt)")

SAFETENSORS_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "BF16": None,  # no numpy dtype: widened from the raw bits below
    "I64": np.int64,  # e.g. position_ids buffers, which are skipped
    "I32": np.int32,
}


KEEP_F32 = ("position_embd.weight", "token_types.weight")


def die(msg):
    sys.exit("convert-bert: " + msg)


def read_safetensors(path):
    """{name: np.ndarray} from one .safetensors file (memory-mapped views)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            die(f"{path}: too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            die(f"{path}: header length {n} exceeds the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            die(f"{path}: header is not JSON ({e})")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (b0, b1) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            die(f"{path}: tensor '{name}' has dtype {dtype} (supported: F32, F16, BF16, F64, I64, I32)")
        if not 0 <= b0 <= b1 <= data.size:
            die(f"{path}: tensor '{name}' data [{b0}, {b1}) lies outside the file")
        raw = data[b0:b1]
        if dtype == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = raw.view(SAFETENSORS_DTYPES[dtype])
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            die(f"{path}: tensor '{name}' has {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape)
    return out


def load_json(path, required=True):
    if not os.path.exists(path):
        if required:
            die(f"{path} is missing")
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pooling_type(model_dir):
    """The sentence-transformers pooling module's mode, as gguf.PoolingType."""
    modules = load_json(os.path.join(model_dir, "modules.json"), required=False)
    if not modules:
        return None
    for m in modules:
        if m.get("type") != "sentence_transformers.models.Pooling":
            continue
        cfg = load_json(os.path.join(model_dir, m.get("path", ""), "config.json"))
        if cfg.get("pooling_mode_mean_tokens"):
            return gguf.PoolingType.MEAN
        if cfg.get("pooling_mode_cls_token"):
            return gguf.PoolingType.CLS
        if cfg.get("pooling_mode_lasttoken"):
            return gguf.PoolingType.LAST
        modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
        die(f"pooling mode {modes} in {m.get('path')}/config.json has no GGUF pooling type")
    return None


def load_vocab(model_dir):
    """(tokens by id, token types, normalizer flags, tokenizer.json or None)."""
    tj = load_json(os.path.join(model_dir, "tokenizer.json"), required=False)
    lowercase, strip_accents = True, None
    specials = set()
    if tj:
        model = tj.get("model", {})
        if model.get("type") != "WordPiece":
            die(f"tokenizer.json model type is {model.get('type')!r}, expected WordPiece")
        vocab = model["vocab"]
        for t in tj.get("added_tokens", []):
            vocab.setdefault(t["content"], t["id"])
            if t.get("special"):
                specials.add(t["content"])
        norm = tj.get("normalizer") or {}
        if norm.get("type") == "BertNormalizer":
            lowercase = bool(norm.get("lowercase", True))
            strip_accents = norm.get("strip_accents")
    else:
        path = os.path.join(model_dir, "vocab.txt")
        if not os.path.exists(path):
            die(f"{model_dir} has neither tokenizer.json nor vocab.txt")
        with open(path, encoding="utf-8") as f:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        tc = load_json(os.path.join(model_dir, "tokenizer_config.json"), required=False) or {}
        lowercase = bool(tc.get("do_lower_case", True))
        strip_accents = tc.get("strip_accents")
        specials = {tc.get(k) for k in ("unk_token", "sep_token", "pad_token", "cls_token",
                                         "mask_token") if tc.get(k)}
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for tok, i in vocab.items():
        tokens[i] = tok
    missing = [i for i, t in enumerate(tokens) if t is None]
    if missing:
        die(f"vocabulary has no token for ids {missing[:8]}")
    types = [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens]
    if strip_accents is None:  # BERT's rule: accents go with lowercasing
        strip_accents = lowercase
    return tokens, types, lowercase, bool(strip_accents)


def phantom(tok, ttype):
    """WordPiece piece -> GGUF form: '##x' -> 'x', other words -> U+2581 + word."""
    if ttype == gguf.TokenType.CONTROL:
        return tok
    return tok[2:] if tok.startswith("##") else "\u2581" + tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", choices=("f16", "f32"), default="f16",
                    help="type of the weight matrices (norms and biases stay f32); default f16")
    ap.add_argument("--name", help="general.name (default: the folder's name)")
    args = ap.parse_args()
    d = args.model_dir

    cfg = load_json(os.path.join(d, "config.json"))
    if cfg.get("model_type") != "bert":
        die(f"config.json model_type is {cfg.get('model_type')!r}; only 'bert' is supported")
    if cfg.get("hidden_act", "gelu") != "gelu":
        die(f"config.json hidden_act {cfg['hidden_act']!r} is not supported (only 'gelu', the "
            "erf form)")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        die(f"position_embedding_type {cfg['position_embedding_type']!r} is not supported")
    n_layer, n_embd = int(cfg["num_hidden_layers"]), int(cfg["hidden_size"])

    st_path = os.path.join(d, "model.safetensors")
    if not os.path.exists(st_path):
        die(f"{st_path} is missing (only safetensors checkpoints are read)")
    weights = read_safetensors(st_path)

    tokens, types, lowercase, strip_accents = load_vocab(d)
    if len(tokens) != int(cfg["vocab_size"]):
        die(f"vocabulary has {len(tokens)} tokens but config.json vocab_size is "
            f"{cfg['vocab_size']}")

    ftype = gguf.LlamaFileType.MOSTLY_F16 if args.outtype == "f16" else gguf.LlamaFileType.ALL_F32
    w = gguf.GGUFWriter(args.out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    w.add_name(args.name or os.path.basename(os.path.normpath(d)))
    w.add_file_type(int(ftype))
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_block_count(n_layer)
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_layer_norm_eps(float(cfg.get("layer_norm_eps", 1e-12)))
    w.add_causal_attention(False)
    pool = pooling_type(d)
    if pool is not None:
        w.add_pooling_type(pool)

    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([phantom(t, k) for t, k in zip(tokens, types)])
    w.add_token_types([int(k) for k in types])
    w.add_token_type_count(int(cfg.get("type_vocab_size", 1)))
    w.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)
    w.add_bool("tokenizer.ggml.normalizer.strip_accents", strip_accents)
    gguf.SpecialVocab(d, load_merges=False, n_vocab=len(tokens)).add_to_gguf(w)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    skip = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
    done = set()
    for hf_name in sorted(weights):
        name = hf_name[5:] if hf_name.startswith("bert.") else hf_name
        if name.endswith(".gamma"):
            name = name[:-6] + ".weight"
        if name.endswith(".beta"):
            name = name[:-5] + ".bias"
        if name in skip or name.startswith("cls."):
            continue
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            die(f"tensor '{hf_name}' has no GGUF name for the bert architecture")
        data = np.asarray(weights[hf_name], dtype=np.float32)
        # Vectors, norms and the small position / token-type tables stay f32
        # (llama.cpp adds the token-type row as it is, so it must be f32).
        if (data.ndim <= 1 or new.endswith("_norm.weight") or new in KEEP_F32
                or args.outtype == "f32"):
            data = data.astype(np.float32)
        else:
            data = data.astype(np.float16)
        w.add_tensor(new, np.ascontiguousarray(data))
        done.add(new)
    need = ["token_embd.weight", "position_embd.weight", "token_embd_norm.weight"]
    for n in need:
        if n not in done:
            die(f"the checkpoint has no tensor for '{n}'")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"convert-bert: wrote {args.out}: {n_layer} layers, n_embd {n_embd}, "
          f"{len(tokens)} tokens, {len(done)} tensors, {args.outtype}, pooling "
          f"{pool.name.lower() if pool is not None else 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
