#!/usr/bin/env bash
# make_seeds.sh — regenerate the tiny GGUF seed files in tests/fuzz/corpus/gguf/
# with gguf-py (llama.cpp's Python GGUF writer), an implementation independent of
# ours: test_gguf.c reads these files back and checks the values written here.
# Usage: tests/fuzz/make_seeds.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${1:-$root/.venv/bin/python}"
out="$root/tests/fuzz/corpus/gguf"
mkdir -p "$out"
"$py" - "$out" <<'PY'
import sys, numpy as np, gguf
from gguf import GGUFWriter, GGUFValueType as VT, GGMLQuantizationType as QT, GGUFEndian
out = sys.argv[1]

def model(path, endian=GGUFEndian.LITTLE):
    w = GGUFWriter(path, "seedarch", endianess=endian)
    w.add_uint32("seed.n", 7)
    w.add_float32("seed.eps", 0.5)
    w.add_string("seed.s", "hello")
    w.add_tensor("a", np.arange(16, dtype=np.float32).reshape(2, 8))
    q = np.zeros((1, 34), dtype=np.uint8)
    q[0, 0:2] = [0x00, 0x3c]               # d = 1.0 (f16)
    q[0, 2:] = np.arange(32, dtype=np.int8).view(np.uint8)
    w.add_tensor("b", q, raw_dtype=QT.Q8_0)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

model(f"{out}/seed_model.gguf")
model(f"{out}/seed_bigendian.gguf", GGUFEndian.BIG)

# same as seed_model but GGUF v2 (identical layout; only the version differs)
b = bytearray(open(f"{out}/seed_model.gguf", "rb").read())
b[4:8] = (2).to_bytes(4, "little")
open(f"{out}/seed_v2.gguf", "wb").write(b)

w = GGUFWriter(f"{out}/seed_vocab.gguf", "llama")
w.add_tokenizer_model("llama")
w.add_token_list(["<unk>", "a", "bb", ""])
w.add_token_scores([0.0, -1.0, -2.5, 3.0])
w.add_token_types([2, 1, 1, 1])
w.add_token_merges(["a a", "b b"])
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

w = GGUFWriter(f"{out}/seed_types.gguf", "types")
w.add_custom_alignment(64)
w.add_uint8("t.u8", 255); w.add_int8("t.i8", -128)
w.add_uint16("t.u16", 65535); w.add_int16("t.i16", -32768)
w.add_uint32("t.u32", 4294967295); w.add_int32("t.i32", -2147483648)
w.add_uint64("t.u64", 18446744073709551615); w.add_int64("t.i64", -9223372036854775808)
w.add_float32("t.f32", -1.5); w.add_float64("t.f64", 0.1)
w.add_bool("t.bool", True)
w.add_array("t.arr_i16", [-1, 2, -3])
w.add_key_value("t.arr_bool", [True, False, True], VT.ARRAY, VT.BOOL)
w.add_tensor("i", np.array([1, -2, 3, -4], dtype=np.int32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

# a whole (tiny) bert encoder, so that the fuzzer starts inside its config,
# tensor checks and WordPiece tokenizer: E 8, 2 heads, FFN 16, 1 layer, 4 positions
E, F, P = 8, 16, 4
rng = np.random.default_rng(1)
w = GGUFWriter(f"{out}/seed_bert.gguf", "bert")
w.add_context_length(P); w.add_embedding_length(E); w.add_feed_forward_length(F)
w.add_block_count(1); w.add_head_count(2); w.add_layer_norm_eps(1e-12)
w.add_causal_attention(False); w.add_pooling_type(gguf.PoolingType.MEAN)
toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u2581hi", "##x"[2:]]
w.add_tokenizer_model("bert"); w.add_token_list(toks); w.add_token_types([3, 3, 3, 3, 1, 1])
w.add_token_type_count(2); w.add_bos_token_id(2); w.add_sep_token_id(3); w.add_unk_token_id(1)
f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
w.add_tensor("token_embd.weight", f32(len(toks), E))
w.add_tensor("position_embd.weight", f32(P, E))
w.add_tensor("token_types.weight", f32(2, E))
w.add_tensor("token_embd_norm.weight", f32(E)); w.add_tensor("token_embd_norm.bias", f32(E))
for n, shape in (("attn_q", (E, E)), ("attn_k", (E, E)), ("attn_v", (E, E)),
                 ("attn_output", (E, E)), ("ffn_up", (F, E)), ("ffn_down", (E, F))):
    w.add_tensor(f"blk.0.{n}.weight", f32(*shape)); w.add_tensor(f"blk.0.{n}.bias", f32(shape[0]))
for n in ("attn_output_norm", "layer_output_norm"):
    w.add_tensor(f"blk.0.{n}.weight", f32(E)); w.add_tensor(f"blk.0.{n}.bias", f32(E))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
ls -l "$out"
