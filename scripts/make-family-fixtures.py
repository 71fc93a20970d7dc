#!/usr/bin/env python3
"""Writes the tiny DistilBERT, RoBERTa and XLM-RoBERTa checkpoints under tests/fixtures/ that
the families' tests compare against: random weights with unusual sizes (hidden 36 with 3
heads, odd vocabularies, max_position_embeddings close to the input length), a tokenizer, and
the eval-mode logits transformers computes for fixed padded inputs (logits.json).

Run once in a throw-away virtual environment with torch, transformers, tokenizers and
safetensors installed:  python scripts/make-family-fixtures.py [OUT_DIR]
"""

import json
import pathlib
import sys

import torch
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders
from tokenizers import trainers
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
CORPUS = [
    "the movie was great and the actors were good",
    "a terrible film with a boring plot",
    "i loved every minute of it",
    "the worst thing i have seen this year",
    "an okay story , nothing special",
    "great music but weak dialogue",
]
TEXTS = ["the movie was great", "a boring film , nothing good", "i loved it"]
WORDS = sorted({w for line in CORPUS for w in line.split()})


def wordpiece_tokenizer():
    """A WordPiece tokenizer.json over the corpus' words, BERT's special tokens first."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]")
    return fast, len(vocab)


def byte_level_tokenizer():
    """RoBERTa's byte-level BPE trained on the corpus."""
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0),
                                                      trim_offsets=True, add_prefix_space=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    return fast, tok


def unigram_tokenizer():
    """XLM-RoBERTa's kind: a SentencePiece-style Unigram model with `<s> $A </s>`."""
    special = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=80, special_tokens=special, unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", cls_token="<s>", sep_token="</s>")
    return fast


def randomize(model, seed):
    """Weights far from the init's 0.02 spread, so every path moves the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def build(cls, config, seed, pad, ids):
    """A `cls` of `config` with randomized weights, and the attention mask of `ids`."""
    torch.manual_seed(0)
    model = cls(config)
    randomize(model, seed)
    return model, [[0 if t == pad else 1 for t in row] for row in ids]


def save(name, model, tokenizer, ids, mask):
    out = ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    enc = tokenizer(TEXTS, padding=True, truncation=True, max_length=10)
    with torch.no_grad():
        text_logits = model(input_ids=torch.tensor(enc["input_ids"]),
                            attention_mask=torch.tensor(enc["attention_mask"])).logits
    record = {
        "transformers": transformers.__version__,
        "input_ids": ids, "attention_mask": mask, "logits": logits.tolist(),
        "texts": TEXTS, "text_input_ids": enc["input_ids"],
        "text_attention_mask": enc["attention_mask"], "text_logits": text_logits.tolist(),
    }
    (out / "logits.json").write_text(json.dumps(record, indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    assert all(s < 1_000_000 for s in sizes.values()), sizes
    print(name, sizes)


def distilbert():
    tok, vocab = wordpiece_tokenizer()
    config = transformers.DistilBertConfig(
        vocab_size=vocab + 6, dim=36, n_heads=3, n_layers=2, hidden_dim=50,
        max_position_embeddings=12, dropout=0.1, attention_dropout=0.1,
        seq_classif_dropout=0.2, pad_token_id=0,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2})
    ids = [[2, 7, 9, 11, 13, 15, 17, 19, 21, 3], [2, 8, 10, 12, 3, 0, 0, 0, 0, 0],
           [2, 30, 31, 3, 0, 0, 0, 0, 0, 0]]
    model, mask = build(transformers.DistilBertForSequenceClassification, config, 1, 0, ids)
    save("distilbert", model, tok, ids, mask)


def roberta():
    tok, raw = byte_level_tokenizer()
    config = transformers.RobertaConfig(
        vocab_size=raw.get_vocab_size() + 3, hidden_size=36, num_attention_heads=3,
        num_hidden_layers=2, intermediate_size=50, max_position_embeddings=12,
        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        layer_norm_eps=1e-5, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    # max_position_embeddings 12 with padding id 1: ten tokens fill every position.
    ids = [[0, 40, 41, 42, 43, 44, 45, 46, 47, 2], [0, 50, 60, 70, 2, 1, 1, 1, 1, 1],
           [0, 80, 2, 1, 1, 1, 1, 1, 1, 1]]
    model, mask = build(transformers.RobertaForSequenceClassification, config, 2, 1, ids)
    save("roberta", model, tok, ids, mask)
    raw.model.save(str(ROOT / "roberta"))  # vocab.json + merges.txt, read when alone


def xlm_roberta():
    tok = unigram_tokenizer()
    config = transformers.XLMRobertaConfig(
        vocab_size=tok.vocab_size + 1, hidden_size=36, num_attention_heads=3,
        num_hidden_layers=1, intermediate_size=44, max_position_embeddings=13,
        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        layer_norm_eps=1e-5, hidden_act="gelu",
        id2label={0: "a", 1: "b", 2: "c", 3: "d"},
        label2id={"a": 0, "b": 1, "c": 2, "d": 3})
    ids = [[0, 10, 11, 12, 13, 14, 15, 16, 17, 2], [0, 20, 21, 2, 1, 1, 1, 1, 1, 1],
           [0, 30, 2, 1, 1, 1, 1, 1, 1, 1]]
    model, mask = build(transformers.XLMRobertaForSequenceClassification, config, 3, 1, ids)
    save("xlm-roberta", model, tok, ids, mask)


if __name__ == "__main__":
    distilbert()
    roberta()
    xlm_roberta()
