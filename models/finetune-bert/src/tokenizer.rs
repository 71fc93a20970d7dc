//! Tokenisation for BERT and the families built like it: `tokenizer.json` through the
//! `tokenizers` crate (WordPiece, byte-level BPE, SentencePiece's Unigram alike), or, when only
//! `vocab.txt` exists, a WordPiece tokenizer built the way BERT's is (BERT normaliser honouring
//! `do_lower_case`, BERT pre-tokeniser, `[CLS] … [SEP] (… [SEP])` template), or, when only
//! `vocab.json` + `merges.txt` exist, RoBERTa's byte-level BPE (`<s> … </s></s> … </s>`).
//! Truncation to a maximum length; dynamic padding to the longest sequence of each batch.

use crate::classifier::BertBatch;
use candle_core::{Device, Tensor};
use finetune_core::{Error, Result};
use std::path::Path;
use std::path::PathBuf;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The tokenizer of a BERT checkpoint, applied as transformers'
/// `tokenizer(texts, truncation=True, padding=True, max_length=…)` applies it: `[CLS]`/`[SEP]`
/// added, sequences truncated to a maximum length, each batch padded to its longest sequence
/// with the checkpoint's pad token. Built by [`BertTokenizer::from_dir`].
pub struct BertTokenizer {
    inner: Tokenizer,
    max_length: usize,
    /// The file it was built from (`tokenizer.json` or `vocab.txt`), for messages.
    source: std::path::PathBuf,
}

/// `tokenizer_config.json` of a model folder (empty when there is none).
fn tokenizer_config(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("tokenizer_config.json");
    match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| Error::Record {
            path,
            msg: format!("not valid JSON: {e}"),
        }),
        Err(_) => Ok(serde_json::json!({})),
    }
}

/// The longest input a model takes: `model_max` (its `max_position_embeddings`), or the
/// tokenizer's `model_max_length` when smaller.
fn length_limit(cfg: &serde_json::Value, model_max: usize) -> usize {
    cfg["model_max_length"]
        .as_u64()
        .map(|m| (m as usize).min(model_max))
        .unwrap_or(model_max)
}

fn tok_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Record {
        path: path.to_path_buf(),
        msg: format!("cannot build the tokenizer: {e}"),
    }
}

/// The tokenizer of a model folder before truncation and padding, and the file it came from.
fn base_tokenizer(dir: &Path, cfg: &serde_json::Value) -> Result<(Tokenizer, PathBuf)> {
    let json = dir.join("tokenizer.json");
    let vocab = dir.join("vocab.txt");
    let (bpe_vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if json.is_file() {
        let t = Tokenizer::from_file(&json).map_err(|e| tok_err(&json, e))?;
        Ok((t, json))
    } else if vocab.is_file() {
        Ok((wordpiece(&vocab, cfg)?, vocab))
    } else if bpe_vocab.is_file() && merges.is_file() {
        Ok((byte_level_bpe(&bpe_vocab, &merges)?, bpe_vocab))
    } else {
        Err(Error::config(format!(
            "{}: holds none of tokenizer.json, vocab.txt, vocab.json + merges.txt",
            dir.display()
        )))
    }
}

/// BERT's WordPiece tokenizer from `vocab.txt`.
fn wordpiece(vocab: &Path, cfg: &serde_json::Value) -> Result<Tokenizer> {
    let lower = cfg["do_lower_case"].as_bool().unwrap_or(true);
    let wp = WordPiece::from_file(&vocab.to_string_lossy())
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| tok_err(vocab, e))?;
    let mut t = Tokenizer::new(wp);
    t.with_normalizer(Some(BertNormalizer::new(true, true, None, lower)))
        .map_err(|e| tok_err(vocab, e))?;
    t.with_pre_tokenizer(Some(BertPreTokenizer));
    let (cls, sep) = (
        special_id(&t, vocab, "[CLS]")?,
        special_id(&t, vocab, "[SEP]")?,
    );
    t.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    Ok(t)
}

/// RoBERTa's byte-level BPE from `vocab.json` + `merges.txt`, as transformers'
/// `RobertaTokenizerFast` builds it (no prefix space, offsets trimmed).
fn byte_level_bpe(vocab: &Path, merges: &Path) -> Result<Tokenizer> {
    let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| tok_err(vocab, e))?;
    let mut t = Tokenizer::new(bpe);
    t.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    t.with_decoder(Some(ByteLevel::default()));
    let (cls, sep) = (
        special_id(&t, vocab, "<s>")?,
        special_id(&t, vocab, "</s>")?,
    );
    t.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), sep), ("<s>".into(), cls))
            .trim_offsets(true)
            .add_prefix_space(false),
    ));
    Ok(t)
}

fn special_id(t: &Tokenizer, file: &Path, token: &str) -> Result<u32> {
    t.token_to_id(token)
        .ok_or_else(|| tok_err(file, format!("vocabulary lacks {token}")))
}

/// The padding token: `tokenizer_config.json`'s `pad_token` (a string, or an added token's
/// `content`), else the one `tokenizer.json` pads with, else `[PAD]` or `<pad>`, whichever the
/// vocabulary has.
fn pad_token(cfg: &serde_json::Value, t: &Tokenizer) -> String {
    let configured = &cfg["pad_token"];
    configured
        .as_str()
        .or_else(|| configured["content"].as_str())
        .map(str::to_string)
        .or_else(|| t.get_padding().map(|p| p.pad_token.clone()))
        .or_else(|| {
            ["[PAD]", "<pad>"]
                .into_iter()
                .find(|p| t.token_to_id(p).is_some())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "[PAD]".into())
}

impl BertTokenizer {
    /// The largest `max_length` [`Self::from_dir`] accepts for the model folder `dir`.
    pub fn max_length_limit(dir: &Path, model_max: usize) -> Result<usize> {
        Ok(length_limit(&tokenizer_config(dir)?, model_max))
    }

    /// Loads the tokenizer of a model folder, truncating to `max_length` (which must not exceed
    /// `model_max` — the model's `max_position_embeddings` — nor `model_max_length`).
    pub fn from_dir(dir: &Path, max_length: usize, model_max: usize) -> Result<Self> {
        let cfg = tokenizer_config(dir)?;
        let limit = length_limit(&cfg, model_max);
        if max_length == 0 || max_length > limit {
            return Err(Error::config(format!(
                "max length {max_length} must be in 1..={limit} for this model"
            )));
        }
        let (mut inner, source) = base_tokenizer(dir, &cfg)?;
        let pad_token = pad_token(&cfg, &inner);
        let pad_id = inner.token_to_id(&pad_token).unwrap_or(0);
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| tok_err(dir, e))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        Ok(Self {
            inner,
            max_length,
            source,
        })
    }

    /// The length every sequence is truncated to, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether `other` turns every text into the same ids as this tokenizer, as far as can be
    /// told without the texts: the same vocabulary (tokens and ids, special ones included),
    /// the same padding id and the same ids for a probe text that exercises casing, accents,
    /// punctuation and word pieces. Two checkpoints of one tokenizer (a teacher and its
    /// student) agree; a cased and an uncased one, or WordPiece and BPE, do not.
    pub fn same_ids_as(&self, other: &Self) -> bool {
        const PROBE: &str = "Hello, WORLD! Café naïve: unbelievably 42 times — «quoted» 東京.";
        let ids = |t: &Self| {
            t.inner
                .encode(PROBE, true)
                .ok()
                .map(|e| e.get_ids().to_vec())
        };
        let pad = |t: &Self| t.inner.get_padding().map(|p| p.pad_id);
        self.inner.get_vocab(true) == other.inner.get_vocab(true)
            && pad(self) == pad(other)
            && ids(self).is_some()
            && ids(self) == ids(other)
    }

    /// Refuses a tokenizer that can produce ids the model has no embedding for (a tokenizer
    /// from another checkpoint): every id must be below the model's `vocab_size`.
    pub fn check_vocab_fits(&self, vocab_size: usize) -> Result<()> {
        let n = self.inner.get_vocab_size(true);
        if n > vocab_size {
            return Err(Error::Record {
                path: self.source.clone(),
                msg: format!(
                    "the tokenizer has {n} tokens but the model's vocab_size is {vocab_size}: \
                     it belongs to another model"
                ),
            });
        }
        Ok(())
    }

    /// Token ids of one text (with `[CLS]`/`[SEP]`, truncated, unpadded).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::config(format!("tokenizing `{text}`: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// A padded batch of single texts, or of text pairs when `pairs` is given.
    pub fn batch(
        &self,
        texts: &[&str],
        pairs: Option<&[&str]>,
        device: &Device,
    ) -> Result<BertBatch> {
        if texts.is_empty() {
            return Err(Error::config("cannot tokenize an empty batch"));
        }
        let encs = match pairs {
            Some(p) => {
                if p.len() != texts.len() {
                    return Err(Error::config("text and text-pair columns differ in length"));
                }
                let inputs: Vec<tokenizers::EncodeInput> =
                    texts.iter().zip(p).map(|(a, b)| (*a, *b).into()).collect();
                self.inner.encode_batch(inputs, true)
            }
            None => self.inner.encode_batch(texts.to_vec(), true),
        }
        .map_err(|e| Error::config(format!("tokenizing a batch: {e}")))?;
        let b = encs.len();
        let t = encs[0].get_ids().len();
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encs.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        Ok(BertBatch {
            input_ids: Tensor::from_vec(flat(&|e| e.get_ids()), (b, t), device)?,
            token_type_ids: Some(Tensor::from_vec(
                flat(&|e| e.get_type_ids()),
                (b, t),
                device,
            )?),
            attention_mask: Some(Tensor::from_vec(
                flat(&|e| e.get_attention_mask()),
                (b, t),
                device,
            )?),
        })
    }

    /// The tokens of a sentence given as words (transformers' `is_split_into_words=True`):
    /// special tokens added, truncated to the max length, each token's word noted.
    pub fn encode_words(&self, words: &[&str]) -> Result<WordPieces> {
        let input = tokenizers::EncodeInput::Single(words.to_vec().into());
        let enc = self
            .inner
            .encode_char_offsets(input, true)
            .map_err(|e| Error::config(format!("tokenizing words {words:?}: {e}")))?;
        Ok(WordPieces::of(&enc))
    }

    /// The tokens of a text with their character offsets into it (special tokens included,
    /// truncated to the max length).
    pub fn encode_text(&self, text: &str) -> Result<WordPieces> {
        let enc = self
            .inner
            .encode_char_offsets(text, true)
            .map_err(|e| Error::config(format!("tokenizing `{text}`: {e}")))?;
        Ok(WordPieces::of(&enc))
    }

    /// The prefix that marks a word's later pieces (WordPiece's `##`), when the model has one.
    pub fn continuing_subword_prefix(&self) -> Option<String> {
        match self.inner.get_model() {
            tokenizers::ModelWrapper::WordPiece(wp) => Some(wp.continuing_subword_prefix.clone()),
            tokenizers::ModelWrapper::BPE(bpe) => bpe.continuing_subword_prefix.clone(),
            _ => None,
        }
    }

    /// The token standing for text the vocabulary lacks (`[UNK]`), when the model has one.
    pub fn unk_token(&self) -> Option<String> {
        match self.inner.get_model() {
            tokenizers::ModelWrapper::WordPiece(wp) => Some(wp.unk_token.clone()),
            tokenizers::ModelWrapper::BPE(bpe) => bpe.unk_token.clone(),
            _ => None,
        }
    }

    /// A batch of sequences already tokenised, padded to the longest with the pad token
    /// (attention mask 0 there).
    pub fn pad(&self, seqs: &[&WordPieces], device: &Device) -> Result<BertBatch> {
        if seqs.is_empty() {
            return Err(Error::config("cannot build an empty batch"));
        }
        let pad = self.inner.get_padding().map(|p| p.pad_id).unwrap_or(0);
        let t = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for s in seqs {
            let n = s.ids.len();
            ids.extend(s.ids.iter().copied().chain(std::iter::repeat_n(pad, t - n)));
            types.extend(
                s.type_ids
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, t - n)),
            );
            mask.extend(std::iter::repeat_n(1u32, n).chain(std::iter::repeat_n(0, t - n)));
        }
        let b = seqs.len();
        Ok(BertBatch {
            input_ids: Tensor::from_vec(ids, (b, t), device)?,
            token_type_ids: Some(Tensor::from_vec(types, (b, t), device)?),
            attention_mask: Some(Tensor::from_vec(mask, (b, t), device)?),
        })
    }
}

/// One sequence's tokens and where each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct WordPieces {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Segment ids.
    pub type_ids: Vec<u32>,
    /// The token strings (`[CLS]`, `un`, `##seen`, …).
    pub tokens: Vec<String>,
    /// The word each token belongs to; `None` for special tokens.
    pub words: Vec<Option<usize>>,
    /// Each token's span in characters (of the text, or of its word for pre-split words).
    pub offsets: Vec<(usize, usize)>,
    /// Whether each token is a special token (`[CLS]`, `[SEP]`).
    pub special: Vec<bool>,
    /// Whether truncation cut tokens off.
    pub truncated: bool,
}

impl WordPieces {
    fn of(enc: &tokenizers::Encoding) -> Self {
        Self {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
            tokens: enc.get_tokens().to_vec(),
            words: enc
                .get_word_ids()
                .iter()
                .map(|w| w.map(|w| w as usize))
                .collect(),
            offsets: enc.get_offsets().to_vec(),
            special: enc
                .get_special_tokens_mask()
                .iter()
                .map(|&m| m == 1)
                .collect(),
            truncated: !enc.get_overflowing().is_empty(),
        }
    }
}
