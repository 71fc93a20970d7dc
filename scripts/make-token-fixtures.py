#!/usr/bin/env python3
"""Writes the tiny token-classification checkpoints under tests/fixtures/ner/ that
tests/token_classification.rs compares against, as scripts/make-family-fixtures.py does for
sequence classification: a BertForTokenClassification and a DistilBertForTokenClassification
with random weights and unusual sizes (hidden 36 with 3 heads, odd vocabularies), a WordPiece
tokenizer whose vocabulary splits some words into pieces and lacks some characters; and a
RobertaForTokenClassification (padding id 1, so positions start at 2) with the byte-level BPE
tokenizer of the RoBERTa family fixture (tests/fixtures/roberta, trained on other words, so
names split into several pieces). In
logits.json what transformers computes: eval-mode logits of fixed padded ids, of texts
(`model(**tokenizer(text)).logits`), the word-piece alignment of pre-split words
(`word_ids()`), and the `ner` pipeline's entities with aggregation_strategy="first".

Run once in a throw-away virtual environment with torch and transformers installed:
    python scripts/make-token-fixtures.py [OUT_DIR]
"""

import json
import pathlib
import sys

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, pipeline

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/ner")
WORDS = ["john", "lives", "in", "new", "york", "and", "paris", "visited", "the", "city",
         "mary", "smith", "works", "at", "acme", "corp", "jo", "ber", "lin", ".", ","]
PIECES = ["##hn", "##son", "##s", "##ber", "##lin", "##ey", "##ork"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
TEXTS = ["John Johnson lives in New York.", "Mary visited Berlin and Paris, the city",
         "Smithey works at Acme Corp é"]
SPLIT = [["Johnson", "lives", "in", "Berlin", "é", "."], ["Mary", "Smith", "works"]]


def tokenizer():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + PIECES
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=16)
    return fast, len(vocab)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        # A steeper head, so the tags vary from token to token.
        model.classifier.weight.mul_(30.0)


def save(name, model, tok, ids=((2, 5, 6, 7, 8, 9, 3), (2, 10, 11, 3, 0, 0, 0)), pad=0):
    out = ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    ids = [list(row) for row in ids]
    mask = [[0 if t == pad else 1 for t in row] for row in ids]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    texts = []
    for text in TEXTS:
        enc = tok(text)
        with torch.no_grad():
            lg = model(**{k: torch.tensor([v]) for k, v in enc.items()}).logits[0]
        texts.append({"text": text, "input_ids": enc["input_ids"],
                      "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                      "logits": lg.tolist()})
    split = []
    for words in SPLIT:
        enc = tok(words, is_split_into_words=True)
        split.append({"words": words, "input_ids": enc["input_ids"],
                      "word_ids": enc.word_ids()})
    ner = pipeline("token-classification", model=str(out), tokenizer=str(out),
                   aggregation_strategy="first", device="cpu")
    entities = [[{"label": e["entity_group"], "start": e["start"], "end": e["end"],
                  "score": float(e["score"])} for e in ner(t)] for t in TEXTS]
    record = {"transformers": transformers.__version__, "labels": LABELS,
              "input_ids": ids, "attention_mask": mask, "logits": logits.tolist(),
              "texts": texts, "split_words": split, "entities": entities}
    (out / "logits.json").write_text(json.dumps(record, indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    assert all(s < 1_000_000 for s in sizes.values()), sizes
    print(name, sizes, entities)


def labels():
    return {"id2label": dict(enumerate(LABELS)), "label2id": {l: i for i, l in enumerate(LABELS)}}


def bert():
    tok, vocab = tokenizer()
    config = transformers.BertConfig(
        vocab_size=vocab + 3, hidden_size=36, num_attention_heads=3, num_hidden_layers=2,
        intermediate_size=50, max_position_embeddings=16, type_vocab_size=2,
        classifier_dropout=0.2, **labels())
    torch.manual_seed(0)
    model = transformers.BertForTokenClassification(config)
    randomize(model, 4)
    save("bert-token", model, tok)


def distilbert():
    tok, vocab = tokenizer()
    config = transformers.DistilBertConfig(
        vocab_size=vocab + 5, dim=36, n_heads=3, n_layers=2, hidden_dim=44,
        max_position_embeddings=16, dropout=0.1, attention_dropout=0.1, pad_token_id=0,
        **labels())
    torch.manual_seed(0)
    model = transformers.DistilBertForTokenClassification(config)
    randomize(model, 5)
    save("distilbert-token", model, tok)


def roberta():
    tok = PreTrainedTokenizerFast.from_pretrained(ROOT.parent / "roberta")
    for key in ("is_local", "local_files_only"):  # from_pretrained's, not the tokenizer's
        tok.init_kwargs.pop(key, None)
    config = transformers.RobertaConfig(
        vocab_size=len(tok) + 2, hidden_size=36, num_attention_heads=3, num_hidden_layers=2,
        intermediate_size=50, max_position_embeddings=40, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, classifier_dropout=0.2,
        **labels())
    torch.manual_seed(0)
    model = transformers.RobertaForTokenClassification(config)
    randomize(model, 6)
    # `<s> … </s>` then RoBERTa's padding id 1.
    ids = [[0, 40, 41, 42, 43, 44, 2], [0, 50, 60, 2, 1, 1, 1]]
    save("roberta-token", model, tok, ids, pad=1)


if __name__ == "__main__":
    bert()
    distilbert()
    roberta()
