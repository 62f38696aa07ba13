"""A Hugging Face ``tokenizers`` tokenizer behind mia's tokenizer calls (torch-free).

The runtime tokenizes with the Rust ``tokenizers`` package from the ``tokenizer.json`` an
export carries, so serving needs neither torch nor transformers.  Ids are shifted by one
(mia id = tokenizer id + 1) so that 0 means padding whatever the tokenizer's own pad id
is; the text encoder shifts them back.  Truncation keeps the special tokens ([CLS] ...
[SEP]) that the pretrained tower was trained with.
"""

from __future__ import annotations

from pathlib import Path

from mia.core.errors import MiaError
from mia.core.tokenizer import tokenize

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
        self._tokenizer.enable_truncation(max(max_length, 2))
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
        from mia.core import atomic

        atomic.write_text(path, self.json)
