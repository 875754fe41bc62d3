"""A tiny, fully local GPT-2 and byte-level BPE tokenizer, loadable with AutoModelForCausalLM / AutoTokenizer."""

from __future__ import annotations

from pathlib import Path

from tests.tiny import FILLER, NEGATIVE, POSITIVE

EOS = "<|endoftext|>"


def make_tiny_gpt2(path: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised 2-layer GPT-2 with a byte-level BPE trained on the tiny review vocabulary."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(POSITIVE + NEGATIVE + FILLER)] * 3 + [f"the film {i} was" for i in range(200)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=[EOS],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS)
    tokenizer.save_pretrained(path)
    eos_id = tok.token_to_id(EOS)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=128, n_embd=hidden, n_layer=layers, n_head=2,
                        bos_token_id=eos_id, eos_token_id=eos_id)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path
