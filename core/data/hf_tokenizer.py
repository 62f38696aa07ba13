"""A Hugging Face ``tokenizers`` tokenizer behind mia's tokenizer calls (torch-free).

The runtime tokenizes with the Rust ``tokenizers`` package from the ``tokenizer.json`` an
export carries, so serving needs neither torch nor transformers.  Ids are shifted by one
(mia id = tokenizer id + 1) so that 0 means padding whatever the tokenizer's own pad id
is; the text encoder shifts them back.  Truncation keeps the special tokens ([CLS] ...
[SEP]) that the pretrained tower was trained with, and never goes past a length the file
itself declares (CLIP's 77 positions).

:func:`clip_tokenizer` writes open_clip's BPE tokenizer as such a file, so a CLIP text
tower is served by the same class and the same ``tokenizers`` package.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from mia.core.base.errors import MiaError
from mia.core.data.tokenizer import tokenize

TOKENIZER_FILE = "tokenizer.json"


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise MiaError("this model needs the 'tokenizers' package, a dependency of mia-reid: "
                       "pip install 'tokenizers>=0.20'") from None
    return tokenizers


class HFTokenizer:
    kind = "hf"

    def __init__(self, tokenizer, json_text: str):
        self._tokenizer, self.json = tokenizer, json_text
        #: the longest encoding the tower reads, when the file declares one (its truncation)
        self.limit = (tokenizer.truncation or {}).get("max_length")
        tokenizer.no_padding()
        self._unk = tokenizer.token_to_id(getattr(tokenizer.model, "unk_token", "[UNK]") or "[UNK]")

    @classmethod
    def from_json(cls, json_text: str) -> "HFTokenizer":
        return cls(_tokenizers().Tokenizer.from_str(json_text), json_text)

    @classmethod
    def from_file(cls, path: str | Path) -> "HFTokenizer":
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise MiaError(f"{path}: cannot read the tokenizer ({exc})") from None
        except Exception as exc:  # the Rust side raises its own exception type for a malformed file
            raise MiaError(f"{path}: not a Hugging Face tokenizer.json ({str(exc)[:120]})") from None

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size() + 1

    def _encoding(self, text: str, max_length: int):
        self._tokenizer.enable_truncation(max(min(max_length, self.limit or max_length), 2))
        return self._tokenizer.encode(text)

    def encode(self, text: str, max_length: int) -> list[int]:
        return [i + 1 for i in self._encoding(text, max_length).ids]

    def token_spans(self, text: str, max_length: int) -> list[tuple[int, int]]:
        """Character span of each token; special tokens get (0, 0) and so never match a phrase."""
        return [tuple(span) for span in self._encoding(text, max_length).offsets]

    def unknown_words(self, text: str) -> list[str]:
        """Words that become the unknown token (rare for subword vocabularies)."""
        self._tokenizer.no_truncation()
        return [w for w in tokenize(text) if self._unk in self._tokenizer.encode(w, add_special_tokens=False).ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "json": self.json}

    def save(self, path: str | Path) -> None:
        from mia.core.base import atomic

        atomic.write_text(path, self.json)


# --------------------------------------------------------------------------- CLIP's BPE

CLIP_START, CLIP_END = "<start_of_text>", "<end_of_text>"
#: open_clip's SimpleTokenizer: 48,894 merges of the file's lines after the first
CLIP_MERGES = 49152 - 256 - 2
#: its pre-tokenizer (open_clip ``SimpleTokenizer.pat``): the special tokens, English
#: contractions, runs of letters, single digits, runs of anything else but whitespace
CLIP_PATTERN = (f"{CLIP_START}|{CLIP_END}"
                + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
#: HTML entities as open_clip decodes them (ftfy's pass, then html.unescape twice, which
#: also reads HTML's legacy forms: no semicolon, all capitals); ``&amp;`` first and three
#: times, so that ``&amp;amp;lt;`` ends as ``<`` there and here
CLIP_ENTITIES = (*[("&(?:amp|AMP);?", "&")] * 3, ("&(?:lt|LT);?", "<"), ("&(?:gt|GT);?", ">"),
                 ("&(?:quot|QUOT);?", '"'), ("&#0*39;?", "'"), ("&apos;", "'"))
_CASED = r"[\p{Lu}\p{Ll}\p{Lt}]"
_CASE_IGNORABLE = r"[\p{Mn}\p{Me}\p{Cf}\p{Lm}\p{Sk}'.:\u00b7\u2018\u2019\u2024\ufe52\uff07\uff0e\u0387\u05f4\u2027\ufe13\ufe55\uff1a]"


def _byte_symbols() -> list[str]:
    """The 256 printable characters that byte-level BPE writes bytes as (GPT-2's and
    CLIP's table: printable Latin-1 bytes stand for themselves, the rest are shifted
    past 255)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in kept]
    return [chr(b) for b in kept] + [chr(256 + i) for i in range(len(shifted))]


def _char_class(codepoints) -> str:
    return "[" + "".join(f"\\x{{{c:x}}}" for c in sorted(codepoints)) + "]"


def clip_tokenizer(bpe_path: str | Path, context_length: int = 77) -> HFTokenizer:
    """open_clip's ``SimpleTokenizer`` (the vocabulary file ``bpe_path``, e.g. open_clip's
    ``bpe_simple_vocab_16e6.txt.gz``) as a ``tokenizers`` tokenizer: the same ids,
    ``<start_of_text>`` ... ``<end_of_text>``, truncated to ``context_length`` with the end
    token kept.

    open_clip cleans a caption in Python before splitting it: ftfy (ligatures, full-width
    forms, curly quotes, control characters, NFC), HTML entities, whitespace, lower case.
    The same steps become normalizers here, built from ftfy's own tables (ftfy comes with
    open_clip), so the deployed runtime needs neither.  Two of ftfy's repairs cannot be
    written as normalizers and are left out: mojibake (text decoded with the wrong codec)
    and HTML entities other than those in :data:`CLIP_ENTITIES`.
    """
    tokenizers = _tokenizers()
    from ftfy.chardata import CONTROL_CHARS, LIGATURES, WIDTH_MAP
    from tokenizers import AddedToken, Regex, models, normalizers, pre_tokenizers, processors

    try:
        with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except OSError as exc:
        raise MiaError(f"{bpe_path}: cannot read the CLIP vocabulary ({exc})") from None
    merges = [tuple(line.split()) for line in lines[1:CLIP_MERGES + 1]]
    symbols = _byte_symbols()
    vocabulary = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges), CLIP_START, CLIP_END]
    ids = {token: i for i, token in enumerate(vocabulary)}
    tokenizer = tokenizers.Tokenizer(models.BPE(ids, merges, end_of_word_suffix="</w>", fuse_unk=False))
    spaces = _char_class(c for c in range(0x110000) if chr(c).isspace())
    tokenizer.normalizer = normalizers.Sequence([
        *(normalizers.Replace(chr(c), text) for c, text in {**LIGATURES, **WIDTH_MAP}.items()),
        normalizers.Replace(Regex("[\u02bc\u2018-\u201b]"), "'"),  # ftfy's uncurl_quotes
        normalizers.Replace(Regex("[\u201c-\u201f]"), '"'),
        normalizers.Replace(Regex(_char_class(CONTROL_CHARS)), ""),
        normalizers.NFC(),
        *(normalizers.Replace(Regex(entity), text) for entity, text in CLIP_ENTITIES),
        normalizers.Replace(Regex(spaces + "+"), " "),  # str.split()'s whitespace
        normalizers.Strip(),
        # Python's lower() turns a word-final capital sigma into the final form
        normalizers.Replace(Regex(f"(?<={_CASED})\u03a3(?!{_CASE_IGNORABLE}*{_CASED})"), "\u03c2"),
        normalizers.Lowercase(),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.add_special_tokens([AddedToken(t, normalized=True, special=True) for t in (CLIP_START, CLIP_END)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLIP_START} $A {CLIP_END}", special_tokens=[(t, ids[t]) for t in (CLIP_START, CLIP_END)])
    tokenizer.enable_truncation(context_length)
    return HFTokenizer.from_json(tokenizer.to_str())
